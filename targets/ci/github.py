"""GitHub Actions: the pull request workflow, and the steps every workflow shares.

The pull request workflow is built so that a fork's pull request is as safe as the maintainers'
own: it triggers on ``pull_request`` only (the fork's code runs with a read-only token and no
secrets), and splits the work into jobs whose token can do exactly one thing each:

- ``validate`` (``contents: read``) — annotations on the spec lines and a SARIF report;
- ``code-scanning`` (``security-events: write``) — uploads that report; only for pull requests
  from this repository, because GitHub gives forks no write token anyway;
- ``plan`` (``contents: read``) — the offline plan of every environment into the job summary and
  an artifact: no credentials exist in this job, so it is the same for forks;
- ``comment`` (``pull-requests: write`` only) — one comment per environment, found by its hidden
  marker and updated in place, through the preinstalled ``gh``; same-repository only.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.yamltext import Commented
from mlplane.targets.ci import scripts
from mlplane.targets.ci.context import GITHUB_RUNNER, CiContext
from mlplane.targets.ci.pins import uses

SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
"""True only for pull requests from a branch of this repository (never for forks)."""


def workflow_path(system: str, kind: str) -> str:
    return f".github/workflows/mlplane-{system}-{kind}.yml"


# --- steps and job parts shared by the workflows -------------------------------------------------


def runs_on(context: CiContext) -> str | list[str]:
    labels = list(context.ci.runner) or [GITHUB_RUNNER]
    return labels[0] if len(labels) == 1 else labels


def permissions(**grants: tuple[str, str]) -> dict[str, Commented]:
    """Per-job permissions, each with the reason on its line (``name=(level, why)``)."""
    return {name.replace("_", "-"): Commented(level, why) for name, (level, why) in grants.items()}


def checkout(*, full_history: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {"persist-credentials": False}
    if full_history:
        options["fetch-depth"] = 0
    return {"name": "Check out", "uses": uses("checkout"), "with": options}


def setup_python(context: CiContext) -> dict[str, Any]:
    """No ``cache:``: a cache restored from another branch could carry poisoned packages."""
    return {
        "name": "Set up Python",
        "uses": uses("setup-python"),
        "with": {"python-version": context.ci.python},
    }


def run(name: str, script: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"name": name}
    if env:
        step["env"] = env
    step["run"] = scripts.SCRIPTS[script]
    return step


def install_steps(context: CiContext, *, full_history: bool = False) -> list[dict[str, Any]]:
    return [
        checkout(full_history=full_history),
        setup_python(context),
        run("Install mlplane", "install-mlplane"),
    ]


def upload(name: str, path: str) -> dict[str, Any]:
    return {
        "name": f"Keep {path}",
        "uses": uses("upload-artifact"),
        "with": {
            "name": name,
            "path": path,
            "if-no-files-found": "error",
            "retention-days": 14,
        },
    }


def download(name: str, path: str) -> dict[str, Any]:
    return {
        "name": f"Fetch {name}",
        "uses": uses("download-artifact"),
        "with": {"name": name, "path": path},
    }


# --- the pull request workflow --------------------------------------------------------------------


def pull_request_workflow(context: CiContext) -> dict[str, Any]:
    own = workflow_path(context.system, "pr")
    return {
        "name": f"mlplane plan ({context.system})",
        "on": {"pull_request": {"paths": [context.spec_glob(), own]}},
        "permissions": {},
        "concurrency": {
            "group": f"mlplane-{context.system}-pr-${{{{ github.event.pull_request.number }}}}",
            "cancel-in-progress": True,
        },
        "env": context.shared_env(),
        "jobs": {
            "validate": _validate_job(context),
            "code-scanning": _code_scanning_job(context),
            "plan": _plan_job(context),
            "comment": _comment_job(context),
        },
    }


def _validate_job(context: CiContext) -> dict[str, Any]:
    return {
        "name": "validate",
        "runs-on": runs_on(context),
        "timeout-minutes": 15,
        "permissions": permissions(contents=("read", "check out the spec")),
        "steps": [
            *install_steps(context),
            run("SARIF report", "sarif"),
            upload("mlplane-sarif", "mlplane.sarif"),
            run("Validate", "validate-github"),
        ],
    }


def _code_scanning_job(context: CiContext) -> dict[str, Any]:
    return {
        "name": "code scanning",
        "needs": "validate",
        "if": f"${{{{ !cancelled() && {SAME_REPOSITORY} }}}}",
        "runs-on": runs_on(context),
        "timeout-minutes": 10,
        "permissions": permissions(
            actions=("read", "upload-sarif reads the run (private repositories)"),
            contents=("read", "upload-sarif reads the commit (private repositories)"),
            security_events=("write", "upload the SARIF report to code scanning"),
        ),
        "steps": [
            download("mlplane-sarif", "."),
            {
                "name": "Upload to code scanning",
                "uses": uses("upload-sarif"),
                "with": {"sarif_file": "mlplane.sarif", "category": f"mlplane-{context.system}"},
            },
        ],
    }


def _plan_job(context: CiContext) -> dict[str, Any]:
    steps = [*install_steps(context, full_history=True)]
    steps += [
        run(f"Plan {env.name}", "plan", {"MLPLANE_ENV": env.name}) for env in context.environments
    ]
    steps.append(upload("mlplane-plan", "plan"))
    return {
        "name": "plan",
        "runs-on": runs_on(context),
        "timeout-minutes": 20,
        "permissions": permissions(contents=("read", "check out the spec and its base")),
        "env": {"MLPLANE_BASE": "${{ github.event.pull_request.base.sha }}"},
        "steps": steps,
    }


def _comment_job(context: CiContext) -> dict[str, Any]:
    env = {
        "GH_TOKEN": "${{ github.token }}",
        "GH_REPO": "${{ github.repository }}",
        "PR_NUMBER": "${{ github.event.pull_request.number }}",
    }
    return {
        "name": "comment",
        "needs": "plan",
        "if": SAME_REPOSITORY,
        "runs-on": runs_on(context),
        "timeout-minutes": 10,
        "permissions": permissions(pull_requests=("write", "create or update the plan comment")),
        "env": env,
        "steps": [download("mlplane-plan", "plan"), *_comment_steps(context.environments)],
    }


def _comment_steps(environments: tuple[ir.CiEnvironment, ...]) -> list[dict[str, Any]]:
    return [
        run(f"Comment the plan of {env.name}", "comment-github", {"MLPLANE_ENV": env.name})
        for env in environments
    ]
