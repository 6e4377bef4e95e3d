"""CI applies only what was reviewed, with credentials for the state it writes.

- ``mlplane ci`` refuses an environment it would apply whose Pulumi state is in S3 without an
  AWS role (``ci-aws-role-missing``, at the environment's line): its jobs would have no
  credentials. With a role, every GitHub apply and drift job of that environment assumes it
  through OIDC, and only those jobs hold ``id-token: write``.
- The apply scripts run for real (POSIX sh, the real ``mlplane plan``, a git repository with two
  commits): the plan job saves the plan of the merged commit and records whether it has risk
  flags; the apply step applies exactly that saved file (``apply --plan``), and refuses a risky
  plan unless the job says it was approved.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core.yamltext import load
from mlplane.targets.ci import emit
from mlplane.targets.ci.scripts import SCRIPTS
from tests.test_ci import EXAMPLES, EXAMPLES_DIR, case_system

VENV_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"


def _git(repo: Path, *argv: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", *argv], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def _repository(tmp_path: Path, *, keep_ci: bool) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES_DIR / "fraud-scoring", repo)
    spec = repo / "mlplane.yaml"
    text = spec.read_text(encoding="utf-8")
    if not keep_ci:
        spec.write_text(text[: text.index("\nci:\n")], encoding="utf-8")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


# --- S3 state needs a role ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_s3_state_without_a_role_is_a_located_error(tmp_path: Path, provider: str) -> None:
    repo = _repository(tmp_path, keep_ci=False)
    result = CliRunner().invoke(cli, ["ci", str(repo), "--provider", provider])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if "[ci-aws-role-missing]" in line]
    spec_lines = (repo / "mlplane.yaml").read_text(encoding="utf-8").splitlines()
    where = {int(re.search(r"mlplane\.yaml:(\d+):", line).group(1)) for line in lines}  # type: ignore[union-attr]
    assert {spec_lines[n - 1].strip() for n in where} == {"prod:", "prod-aws:"}
    assert "ci.environments.prod.aws.roleArn" in result.output
    assert not (repo / ".github").exists() and not (repo / ".gitlab-ci.yml").exists()


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_s3_environment_assumes_its_role_in_apply_and_drift(
    example: str, tmp_path: Path
) -> None:
    system = case_system(example, tmp_path)
    docs: dict[str, Any] = {
        path: load(text) for path, text in emit(system, "github", f"examples/{example}").items()
    }
    roles = {env.name: env.role for env in system.ci.environments if env.apply}
    s3 = {env.name for env in system.ci.environments if env.apply and env.state_scheme == "s3"}
    assert s3, example
    for path, doc in docs.items():
        for job_id, job in doc["jobs"].items():
            env = job.get("env", {}).get("MLPLANE_ENV")
            deploys = job_id.startswith(("apply-", "drift-"))
            assumed = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
            if deploys and env in s3:
                role = roles[env]
                assert role is not None
                (step,) = assumed
                assert step["with"]["role-to-assume"] == role.role_arn
                assert step["with"]["aws-region"] == role.region
            assert ("id-token" in job["permissions"]) == bool(assumed), (path, job_id)


# --- the reviewed plan is what gets applied ------------------------------------------------------


def _sh(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def merged(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose last commit is a merge to deploy; returns it and the commit before."""
    repo = _repository(tmp_path, keep_ci=True)
    return repo, _git(repo, "rev-parse", "HEAD")


def _change(repo: Path, old: str, new: str) -> None:
    spec = repo / "mlplane.yaml"
    text = spec.read_text(encoding="utf-8")
    assert old in text
    spec.write_text(text.replace(old, new, 1), encoding="utf-8")
    _git(repo, "commit", "-q", "-am", "change")


def _plan_then_apply(
    repo: Path, before: str, tmp_path: Path, approved: str | None
) -> tuple[str, subprocess.CompletedProcess[str], list[str]]:
    base_env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "MLPLANE_ENV": "dev",
        "MLPLANE_SPEC": ".",
        "MLPLANE_BEFORE": before,
    }
    planned = _sh(SCRIPTS["plan-for-apply"], repo, base_env)
    assert planned.returncode == 0, planned.stderr
    risk = (repo / "plan" / "dev.risk").read_text(encoding="utf-8").strip()
    # The apply step with a recording stand-in for mlplane (Pulumi is not what is tested here).
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    record = tmp_path / "calls"
    (shim / "mlplane").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{record}"\n')
    (shim / "mlplane").chmod(0o755)
    env = {**base_env, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    if approved is not None:
        env["MLPLANE_RISK_APPROVED"] = approved
    applied = _sh(SCRIPTS["apply"], repo, env)
    calls = record.read_text().splitlines() if record.exists() else []
    return risk, applied, calls


@pytest.mark.slow
def test_a_risk_free_plan_is_applied_from_its_saved_file(
    merged: tuple[Path, str], tmp_path: Path
) -> None:
    repo, before = merged
    _change(repo, "replicas: {min: 4, max: 20}", "replicas: {min: 5, max: 20}")
    risk, applied, calls = _plan_then_apply(repo, before, tmp_path, approved=None)
    assert risk == "none"
    assert applied.returncode == 0, applied.stderr
    assert calls == ["apply --env=dev --plan=plan/dev.json --yes -- ."]
    saved = (repo / "plan" / "dev.json").read_text(encoding="utf-8")
    assert _git(repo, "rev-parse", "HEAD") in saved  # the plan of the merged commit


@pytest.mark.slow
@pytest.mark.parametrize("approved", [None, "false", "true"])
def test_a_risky_plan_is_applied_only_when_approved(
    merged: tuple[Path, str], tmp_path: Path, approved: str | None
) -> None:
    repo, before = merged
    _change(repo, "\n    classification: pii", "\n    classification: internal")
    risk, applied, calls = _plan_then_apply(repo, before, tmp_path, approved=approved)
    assert risk == "flagged"
    if approved == "true":
        assert applied.returncode == 0, applied.stderr
        assert calls == ["apply --env=dev --plan=plan/dev.json --yes -- ."]
    else:
        assert applied.returncode == 1
        assert "risk flags" in applied.stderr and calls == []


def test_the_github_apply_job_applies_the_plan_job_s_artifact(tmp_path: Path) -> None:
    system = case_system("fraud-scoring", tmp_path)
    files = emit(system, "github", "examples/fraud-scoring")
    doc: Any = load(files[".github/workflows/mlplane-fraud-scoring-apply.yml"])
    jobs = doc["jobs"]
    for env in (e.name for e in system.ci.environments if e.apply):
        plan, approve, apply = jobs[f"plan-{env}"], jobs[f"approve-{env}"], jobs[f"apply-{env}"]
        assert "environment" not in plan and "secrets." not in str(plan)
        uploaded = [s for s in plan["steps"] if "upload-artifact" in s.get("uses", "")]
        fetched = [s for s in apply["steps"] if "download-artifact" in s.get("uses", "")]
        assert uploaded[0]["with"]["name"] == fetched[0]["with"]["name"]
        assert {f"plan-{env}", f"approve-{env}"} <= set(apply["needs"])
        assert f"needs.plan-{env}.outputs.risk == 'none'" in apply["if"]
        assert f"needs.approve-{env}.result == 'success'" in apply["if"]
        assert approve["environment"] == f"mlplane-risk-{env}"
        assert approve["permissions"] == {"actions": "read"}
        assert apply["steps"][-1]["run"] == SCRIPTS["apply"]
