"""GitHub Actions: the apply workflow (after merge) and the scheduled drift check.

Apply: three jobs per applied environment. ``plan-<env>`` (read-only, no secrets) plans the
merged commit against the commit the push moved the branch from, saves it with ``plan --out``
and gates it with ``--fail-on risk``; ``approve-<env>`` runs only when the plan has risk flags,
in the ``mlplane-risk-<env>`` environment whose required reviewers approve it (the job checks
this run's review history, so an environment without reviewers fails closed);
``apply-<env>`` applies exactly that saved plan (``apply --plan``), and only when it is
risk-free or approved. The apply jobs are chained by ``needs:`` in the order the spec declares
them. Each apply job names its ``environment:`` (so the repository's protection rules, required
reviewers and environment secrets apply), holds the stack's ``concurrency:`` group without
cancelling a running apply, installs the Pulumi CLI from a checksum-verified archive, gets cloud
credentials only through OIDC (``id-token: write`` only where a role is assumed), and uses no
cache of any kind. Automatic environments run on every push to the default branch; manual ones
only when someone starts the workflow by hand and chooses them — and only from the default
branch, so an unmerged branch can never be applied.

Drift: the same jobs' set-up with ``mlplane drift``, on a schedule; a job fails when drift is
found and writes the report into its summary. Drift uses a separate concurrency group: GitHub
cancels a *pending* job when another one joins its group, and a drift check must never cancel a
pending apply.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.targets.ci.context import CiContext, needs_passphrase, pulumi_env, session_name
from mlplane.targets.ci.github import (
    download,
    install_steps,
    permissions,
    run,
    runs_on,
    upload,
    workflow_path,
)
from mlplane.targets.ci.pins import uses


def apply_workflow(context: CiContext) -> dict[str, Any]:
    applied = context.applied
    jobs: dict[str, Any] = {}
    for index, env in enumerate(applied):
        previous = f"apply-{applied[index - 1].name}" if index else None
        jobs[f"plan-{env.name}"] = _plan_job(context, env)
        jobs[f"approve-{env.name}"] = _approve_job(context, env)
        jobs[f"apply-{env.name}"] = _apply_job(context, env, previous)
    return {
        "name": f"mlplane apply ({context.system})",
        "on": {
            "push": {
                "branches": [context.ci.default_branch],
                "paths": [context.spec_glob(), workflow_path(context.system, "apply")],
            },
            "workflow_dispatch": {
                "inputs": {
                    "environment": {
                        "description": "The environment to apply",
                        "type": "choice",
                        "options": [env.name for env in applied],
                        "required": True,
                    }
                }
            },
        },
        "permissions": {},
        "env": {**context.shared_env(), **pulumi_env()},
        "jobs": jobs,
    }


def drift_workflow(context: CiContext) -> dict[str, Any]:
    jobs = {f"drift-{env.name}": _drift_job(context, env) for env in context.applied}
    return {
        "name": f"mlplane drift ({context.system})",
        "on": {"schedule": [{"cron": context.cron}], "workflow_dispatch": {}},
        "permissions": {},
        "env": {**context.shared_env(), **pulumi_env()},
        "jobs": jobs,
    }


def risk_gate(env: ir.CiEnvironment) -> str:
    """The GitHub environment whose required reviewers approve a risky plan of ``env``."""
    return f"mlplane-risk-{env.name}"


def _plan_artifact(env: ir.CiEnvironment) -> str:
    return f"mlplane-apply-plan-{env.name}"


def _own_group(context: CiContext, env: ir.CiEnvironment, what: str) -> dict[str, Any]:
    """A group of this run only: GitHub cancels a *pending* job when another joins its group,
    and a newer push must never cancel the plan or the approval that an older apply waits for."""
    group = f"{context.stack(env)}-{what}-${{{{ github.run_id }}}}"
    return {"group": group, "cancel-in-progress": False}


def _plan_job(context: CiContext, env: ir.CiEnvironment) -> dict[str, Any]:
    """The reviewed plan: computed offline from git objects (no state, no secrets), saved with
    ``--out`` for ``apply --plan`` and flagged by ``--fail-on risk``."""
    steps = [*install_steps(context, full_history=True)]
    step = run(f"Plan {env.name}", "plan-for-apply")
    steps.append({"id": "plan", **step})
    steps.append(upload(_plan_artifact(env), "plan"))
    return {
        "name": f"plan {env.name}",
        "if": _apply_condition(context, env, chained=False),
        "runs-on": runs_on(context),
        "timeout-minutes": 20,
        "concurrency": _own_group(context, env, "plan"),
        "permissions": permissions(contents=("read", "check out the spec and its history")),
        "env": {"MLPLANE_ENV": env.name, "MLPLANE_BEFORE": "${{ github.event.before }}"},
        "outputs": {"risk": "${{ steps.plan.outputs.risk }}"},
        "steps": steps,
    }


def _approve_job(context: CiContext, env: ir.CiEnvironment) -> dict[str, Any]:
    """Runs only for a plan with risk flags, in the risk gate's environment: GitHub starts it
    after one of its required reviewers approves, and the job checks that one did."""
    plan = f"plan-{env.name}"
    branch = f"github.ref == 'refs/heads/{context.ci.default_branch}'"
    return {
        "name": f"approve the risky plan of {env.name}",
        "needs": plan,
        "if": f"${{{{ !cancelled() && {branch} && needs.{plan}.outputs.risk == 'flagged' }}}}",
        "runs-on": runs_on(context),
        "timeout-minutes": 10,
        "environment": risk_gate(env),
        "concurrency": _own_group(context, env, "approve"),
        "permissions": permissions(actions=("read", "read this run's deployment reviews")),
        "env": {
            "MLPLANE_ENV": env.name,
            "MLPLANE_RISK_GATE": risk_gate(env),
            "GH_TOKEN": "${{ github.token }}",
            "GH_REPO": "${{ github.repository }}",
        },
        "steps": [run("Check the approval", "approve-risk-github")],
    }


def _apply_job(context: CiContext, env: ir.CiEnvironment, previous: str | None) -> dict[str, Any]:
    plan, approve = f"plan-{env.name}", f"approve-{env.name}"
    job: dict[str, Any] = {"name": f"apply {env.name}"}
    job["needs"] = [*([previous] if previous is not None else []), plan, approve]
    reviewed = (
        f"needs.{plan}.result == 'success' && (needs.{plan}.outputs.risk == 'none' || "
        f"needs.{approve}.result == 'success')"
    )
    job["if"] = _apply_condition(context, env, chained=True, reviewed=reviewed)
    job.update(_deploy_settings(context, env, group=context.stack(env), minutes=60))
    job["env"]["MLPLANE_RISK_APPROVED"] = f"${{{{ needs.{approve}.result == 'success' }}}}"
    job["steps"] = [
        *_deploy_steps(context, env),
        download(_plan_artifact(env), "plan"),
        run("Apply the reviewed plan", "apply", _secrets(env)),
    ]
    return job


def _drift_job(context: CiContext, env: ir.CiEnvironment) -> dict[str, Any]:
    job: dict[str, Any] = {"name": f"drift {env.name}"}
    job.update(_deploy_settings(context, env, group=f"{context.stack(env)}-drift", minutes=30))
    job["steps"] = [*_deploy_steps(context, env), run("Drift check", "drift", _secrets(env))]
    return job


def _apply_condition(
    context: CiContext, env: ir.CiEnvironment, *, chained: bool, reviewed: str = ""
) -> str:
    """Pushes apply the automatic environments; a manual run applies the one chosen. Both only
    from the default branch. ``!cancelled() && !failure()`` lets a job run when the one it
    needs was skipped (not chosen, or a risk-free plan's approval), but never after it failed;
    ``reviewed`` adds the plan's verdict."""
    branch = f"github.ref == 'refs/heads/{context.ci.default_branch}'"
    chosen = f"(github.event_name == 'workflow_dispatch' && inputs.environment == '{env.name}')"
    trigger = f"(github.event_name == 'push' || {chosen})" if env.apply == "auto" else chosen
    guard = "!cancelled() && !failure() && " if chained else ""
    verdict = f" && {reviewed}" if reviewed else ""
    return f"${{{{ {guard}{branch} && {trigger}{verdict} }}}}"


def _deploy_settings(
    context: CiContext, env: ir.CiEnvironment, *, group: str, minutes: int
) -> dict[str, Any]:
    grants: dict[str, tuple[str, str]] = {"contents": ("read", "check out the spec")}
    if env.role is not None:
        grants["id_token"] = ("write", "assume the AWS role through OIDC")
    return {
        "runs-on": runs_on(context),
        "timeout-minutes": minutes,
        "environment": env.name,
        "concurrency": {"group": group, "cancel-in-progress": False},
        "permissions": permissions(**grants),
        "env": {"MLPLANE_ENV": env.name},
    }


def _deploy_steps(context: CiContext, env: ir.CiEnvironment) -> list[dict[str, Any]]:
    steps = [
        *install_steps(context),
        run("Install the Pulumi CLI (checksum verified)", "install-pulumi"),
    ]
    if env.role is not None:
        steps.append(_aws_credentials(context, env.role, env))
    return steps


def _aws_credentials(context: CiContext, role: ir.CiRole, env: ir.CiEnvironment) -> dict[str, Any]:
    return {
        "name": "AWS credentials (OIDC)",
        "uses": uses("configure-aws-credentials"),
        "with": {
            "role-to-assume": role.role_arn,
            "aws-region": role.region,
            "role-session-name": session_name(context.system, env),
            "mask-aws-account-id": True,
        },
    }


def _secrets(env: ir.CiEnvironment) -> dict[str, str]:
    """The environment's secrets the deploy step reads (GitHub gives them only to jobs that name
    the environment); cloud credentials are never among them."""
    names = ["MLPLANE_KUBECONFIG"] if env.target == "kubernetes" else []
    names.append("PULUMI_CONFIG_PASSPHRASE" if needs_passphrase(env) else "PULUMI_ACCESS_TOKEN")
    return {name: f"${{{{ secrets.{name} }}}}" for name in names}
