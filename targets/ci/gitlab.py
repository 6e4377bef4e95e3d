"""GitLab CI: ``.gitlab-ci.yml`` for validate and plan on merge requests, apply after merge, and
the drift check on a pipeline schedule.

- Merge request pipelines (``$CI_PIPELINE_SOURCE == "merge_request_event"``) validate the spec and
  plan every environment against the merge base; the plan is an artifact of each job and, when a
  project token is configured as ``MLPLANE_GITLAB_TOKEN``, one note per environment on the merge
  request, found by its hidden marker and updated in place. Merge requests from forks run in the
  fork's project, where that variable does not exist: they get the artifacts only.
- Pushes to the default branch plan each applied environment (``mlplane-deploy-plan-<env>``:
  ``plan --out`` against the commit the push moved the branch from, ``--fail-on risk``), then
  apply exactly that saved plan (``apply --plan``) in declared order: one job per environment
  with ``environment:``, the stack's ``resource_group`` as the lock (GitLab queues, never
  cancels), and ``when: manual`` for manual environments. A plan with risk flags is refused by
  that job; ``mlplane-apply-<env>-risky`` (always manual, same protected environment) applies
  it after review, so whoever the environment lets deploy approves it. AWS credentials come from an
  OIDC ``id_tokens`` entry exchanged by the AWS SDK (``AWS_ROLE_ARN`` +
  ``AWS_WEB_IDENTITY_TOKEN_FILE``), never from stored keys.
- Scheduled pipelines run ``mlplane drift`` per environment (GitLab keeps schedules in its UI:
  create one with the cron from ``ci.drift.schedule``).

Every job runs in the pinned python image; every ``script:`` entry comes from ``scripts.py``.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.targets.ci import scripts
from mlplane.targets.ci.context import CiContext, pulumi_env, session_name

GITLAB_FILE = ".gitlab-ci.yml"
MERGE_REQUEST = '$CI_PIPELINE_SOURCE == "merge_request_event"'
DEFAULT_BRANCH = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
PUSH_TO_DEFAULT = f'{DEFAULT_BRANCH} && $CI_PIPELINE_SOURCE == "push"'
SCHEDULE = '$CI_PIPELINE_SOURCE == "schedule"'


def gitlab_ci(context: CiContext) -> dict[str, Any]:
    data: dict[str, Any] = {
        "workflow": {"rules": [{"if": MERGE_REQUEST}, {"if": DEFAULT_BRANCH}]},
        "stages": ["validate", "plan", "apply", "drift"],
        "default": _defaults(context),
        "variables": {
            **context.shared_env(),
            **pulumi_env(),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
        "mlplane-validate": _validate_job(context),
    }
    for env in context.environments:
        data[f"mlplane-plan-{env.name}"] = _plan_job(context, env)
    applied = context.applied
    for env in applied:
        data[f"mlplane-deploy-plan-{env.name}"] = _deploy_plan_job(context, env)
    for index, env in enumerate(applied):
        previous = f"mlplane-apply-{applied[index - 1].name}" if index else None
        data[f"mlplane-apply-{env.name}"] = _apply_job(context, env, previous)
        data[f"mlplane-apply-{env.name}-risky"] = _apply_job(context, env, None, risky=True)
    for env in applied:
        data[f"mlplane-drift-{env.name}"] = _drift_job(context, env)
    return data


def _defaults(context: CiContext) -> dict[str, Any]:
    defaults: dict[str, Any] = {"image": context.gitlab_image}
    if context.ci.runner:
        defaults["tags"] = list(context.ci.runner)
    return defaults


def _script(*names: str) -> list[str]:
    return [scripts.SCRIPTS[name] for name in names]


def _changes(context: CiContext) -> list[str]:
    return [context.spec_glob(gitlab=True), GITLAB_FILE]


def _validate_job(context: CiContext) -> dict[str, Any]:
    return {
        "stage": "validate",
        "rules": [{"if": MERGE_REQUEST, "changes": _changes(context)}],
        "interruptible": True,
        "script": _script("install-mlplane", "validate"),
    }


def _plan_job(context: CiContext, env: ir.CiEnvironment) -> dict[str, Any]:
    return {
        "stage": "plan",
        "rules": [{"if": MERGE_REQUEST, "changes": _changes(context)}],
        "interruptible": True,
        "variables": {
            "MLPLANE_ENV": env.name,
            "MLPLANE_BASE": "$CI_MERGE_REQUEST_DIFF_BASE_SHA",
            "GIT_DEPTH": "0",
        },
        "script": _script("install-mlplane", "plan", "note-gitlab"),
        "artifacts": {
            "name": f"mlplane-plan-{env.name}",
            "paths": ["plan/"],
            "expire_in": "14 days",
        },
    }


def _deploy_plan_job(context: CiContext, env: ir.CiEnvironment) -> dict[str, Any]:
    """The plan the apply job applies: offline (no state, no secrets), saved with ``--out``."""
    return {
        "stage": "plan",
        "rules": [{"if": PUSH_TO_DEFAULT, "changes": _changes(context)}],
        "interruptible": False,
        "variables": {
            "MLPLANE_ENV": env.name,
            "MLPLANE_BEFORE": "$CI_COMMIT_BEFORE_SHA",
            "GIT_DEPTH": "0",
        },
        "script": _script("install-mlplane", "plan-for-apply"),
        "artifacts": {
            "name": f"mlplane-deploy-plan-{env.name}",
            "paths": ["plan/"],
            "expire_in": "14 days",
        },
    }


def _apply_job(
    context: CiContext, env: ir.CiEnvironment, previous: str | None, *, risky: bool = False
) -> dict[str, Any]:
    """Applies the saved plan of ``mlplane-deploy-plan-<env>``; ``risky``: the manual job that
    applies it even with risk flags, after review."""
    rule: dict[str, Any] = {"if": PUSH_TO_DEFAULT, "changes": _changes(context)}
    if env.apply == "manual" or risky:
        rule["when"] = "manual"
    if risky:
        rule["allow_failure"] = True  # never blocks the pipeline: played only for a risky plan
    job: dict[str, Any] = {"stage": "apply", "rules": [rule]}
    needs: list[dict[str, Any]] = [{"job": f"mlplane-deploy-plan-{env.name}", "artifacts": True}]
    if previous is not None:
        needs.append({"job": previous, "optional": True})
    job["needs"] = needs
    job.update(_deploy_settings(context, env, action=None))
    if risky:
        job["variables"]["MLPLANE_RISK_APPROVED"] = "true"
    job["script"] = _script("install-mlplane", "install-pulumi", "apply")
    return job


def _drift_job(context: CiContext, env: ir.CiEnvironment) -> dict[str, Any]:
    job: dict[str, Any] = {"stage": "drift", "rules": [{"if": SCHEDULE}]}
    job.update(_deploy_settings(context, env, action="verify"))
    job["script"] = _script("install-mlplane", "install-pulumi", "drift")
    job["artifacts"] = {
        "name": f"mlplane-drift-{env.name}",
        "when": "always",
        "paths": ["drift/"],
        "expire_in": "30 days",
    }
    return job


def _deploy_settings(
    context: CiContext, env: ir.CiEnvironment, *, action: str | None
) -> dict[str, Any]:
    environment: dict[str, Any] = {"name": env.name}
    if action is not None:
        environment["action"] = action
    if env.production:
        environment["deployment_tier"] = "production"
    settings: dict[str, Any] = {
        "environment": environment,
        "resource_group": context.stack(env),
        "interruptible": False,
        "variables": {"MLPLANE_ENV": env.name, **_aws_variables(context, env)},
    }
    if env.role is not None:
        settings["id_tokens"] = {"MLPLANE_AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}}
    return settings


def _aws_variables(context: CiContext, env: ir.CiEnvironment) -> dict[str, str]:
    role = env.role
    if role is None:
        return {}
    return {
        "AWS_ROLE_ARN": role.role_arn,
        "AWS_REGION": role.region,
        "AWS_ROLE_SESSION_NAME": session_name(context.system, env),
    }
