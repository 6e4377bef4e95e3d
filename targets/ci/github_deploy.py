"""GitHub Actions: the apply workflow (after merge) and the scheduled drift check.

Apply: one job per applied environment, chained by ``needs:`` in the order the spec declares
them. Each job names its ``environment:`` (so the repository's protection rules, required
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
from mlplane.targets.ci.github import install_steps, permissions, run, runs_on, workflow_path
from mlplane.targets.ci.pins import uses


def apply_workflow(context: CiContext) -> dict[str, Any]:
    applied = context.applied
    jobs: dict[str, Any] = {}
    for index, env in enumerate(applied):
        previous = f"apply-{applied[index - 1].name}" if index else None
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


def _apply_job(context: CiContext, env: ir.CiEnvironment, previous: str | None) -> dict[str, Any]:
    job: dict[str, Any] = {"name": f"apply {env.name}"}
    if previous is not None:
        job["needs"] = previous
    job["if"] = _apply_condition(context, env, chained=previous is not None)
    job.update(_deploy_settings(context, env, group=context.stack(env), minutes=60))
    job["steps"] = [*_deploy_steps(context, env), run("Apply", "apply", _secrets(env))]
    return job


def _drift_job(context: CiContext, env: ir.CiEnvironment) -> dict[str, Any]:
    job: dict[str, Any] = {"name": f"drift {env.name}"}
    job.update(_deploy_settings(context, env, group=f"{context.stack(env)}-drift", minutes=30))
    job["steps"] = [*_deploy_steps(context, env), run("Drift check", "drift", _secrets(env))]
    return job


def _apply_condition(context: CiContext, env: ir.CiEnvironment, *, chained: bool) -> str:
    """Pushes apply the automatic environments; a manual run applies the one chosen. Both only
    from the default branch. ``!cancelled() && !failure()`` lets a job run when the one it
    needs was skipped (not chosen), but never after it failed."""
    branch = f"github.ref == 'refs/heads/{context.ci.default_branch}'"
    chosen = f"(github.event_name == 'workflow_dispatch' && inputs.environment == '{env.name}')"
    trigger = f"(github.event_name == 'push' || {chosen})" if env.apply == "auto" else chosen
    guard = "!cancelled() && !failure() && " if chained else ""
    return f"${{{{ {guard}{branch} && {trigger} }}}}"


def _deploy_settings(
    context: CiContext, env: ir.CiEnvironment, *, group: str, minutes: int
) -> dict[str, Any]:
    grants: dict[str, tuple[str, str]] = {"contents": ("read", "check out the spec")}
    if env.aws_role is not None:
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
    if env.aws_role is not None:
        steps.append(_aws_credentials(context, env.aws_role, env))
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
