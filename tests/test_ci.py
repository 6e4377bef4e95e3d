"""CI workflows (targets/ci): golden files, the external judges, and QUALITY §B "CI workflows".

Every example is generated for both providers, plus one case (``recsys-gpu-oidc``) that turns on
what the examples leave off: an AWS role through OIDC, explicit auto/manual lists and custom
runner labels. The judges (zizmor in its default and pedantic personas, check-jsonschema with the
vendored GitHub and GitLab schemas) run once per case, in a module-scoped fixture.

``MLPLANE_ACCEPT=1 pytest tests/test_ci.py`` rewrites the golden files under tests/golden/ci/.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlplane import __version__
from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.yamltext import load
from mlplane.targets.ci import emit
from mlplane.targets.ci.pins import ACTIONS
from mlplane.targets.ci.scripts import SCRIPTS
from tests.judges import require_judge

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"
GOLDEN_DIR = Path(__file__).resolve().parent / "golden" / "ci"
PROVIDERS = ("github", "gitlab")
ACCEPT = os.environ.get("MLPLANE_ACCEPT") == "1"

GIT_COMMIT = "4f6c1e0d9b8a7c6e5d4f3a2b1c0d9e8f7a6b5c4d"
OIDC_CI = """
ci:
  runner: [ubuntu-24.04, linux]
  python: "3.13"
  apply:
    auto: [dev, prod-aws]
    manual: [prod]
  environments:
    prod:
      aws: {roleArn: "arn:aws:iam::581736204925:role/mlplane-recsys-state", region: us-east-1}
    prod-aws:
      aws: {roleArn: "arn:aws:iam::491823746150:role/mlplane-recsys-deploy"}
  drift: {schedule: "@daily"}
  install:
    git: {url: "https://github.com/acme/mlplane", commit: "4f6c1e0d9b8a7c6e5d4f3a2b1c0d9e8f7a6b5c4d"}
"""
"""Replaces the ``ci:`` section of a copy of the GPU recommender: dev keeps its local state, so it also shows the
ci-local-state warning (and is applied anyway, as asked); mlplane comes from a pinned commit."""

EXAMPLES = sorted(
    p.name for p in EXAMPLES_DIR.iterdir() if p.is_dir() and not p.name.startswith(".")
)
CASES = (*EXAMPLES, "recsys-gpu-oidc")
TRIGGERS = {"pull_request", "push", "schedule", "workflow_dispatch"}
PIN = re.compile(r"^[^@]+@[0-9a-f]{40}$")
PIN_LINE = re.compile(r"^\s*(- )?uses: (?P<ref>\S+) # (?P<version>v\d+\.\d+\.\d+)$")
DIGEST_IMAGE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


# --- generating ------------------------------------------------------------------------------------


def case_spec(case: str, directory: Path) -> Path:
    """The spec of ``case``: an example as it is, or the OIDC variant in ``directory``."""
    if case != "recsys-gpu-oidc":
        return EXAMPLES_DIR / case
    copy = directory / "recsys-gpu-oidc"
    shutil.copytree(EXAMPLES_DIR / "recsys-gpu", copy, dirs_exist_ok=True)
    spec = copy / "mlplane.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text[: text.index("\nci:\n")] + OIDC_CI, encoding="utf-8")
    return copy


def case_system(case: str, directory: Path) -> ir.System:
    result = compile_spec(case_spec(case, directory))
    assert result.ok, [d.message for d in result.sorted_diagnostics()]
    return next(iter(result.systems.values()))


def case_files(case: str, directory: Path) -> dict[str, dict[str, str]]:
    """``{provider: {path: text}}``; the spec path is where the example lives in this repo."""
    system = case_system(case, directory)
    return {provider: emit(system, provider, f"examples/{case}") for provider in PROVIDERS}


@pytest.fixture(scope="module", params=CASES)
def case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One case: its files, parsed documents, and the judges' verdicts (run once here)."""
    directory = tmp_path_factory.mktemp(request.param)
    files = case_files(request.param, directory)
    out = directory / "out"
    for provider, texts in files.items():
        for relative, text in texts.items():
            target = out / provider / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return {
        "name": request.param,
        "files": files,
        "docs": {p: {path: load(text) for path, text in t.items()} for p, t in files.items()},
        "out": out,
    }


def github_docs(case: dict[str, Any]) -> dict[str, Any]:
    docs: dict[str, Any] = case["docs"]["github"]
    return docs


def gitlab_doc(case: dict[str, Any]) -> Any:
    return case["docs"]["gitlab"][".gitlab-ci.yml"]


def jobs_of(doc: Any) -> dict[str, Any]:
    jobs: dict[str, Any] = doc["jobs"]
    return jobs


def steps(doc: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in jobs_of(doc).items():
        for step in job.get("steps", []):
            yield job_id, step


def kind(path: str) -> str:
    return path.rsplit("-", 1)[-1].removesuffix(".yml")


# --- golden files ----------------------------------------------------------------------------------


def test_golden_files(case: dict[str, Any]) -> None:
    for provider, files in case["files"].items():
        directory = GOLDEN_DIR / case["name"] / provider
        if ACCEPT:
            shutil.rmtree(directory, ignore_errors=True)
            for relative, text in files.items():
                (directory / relative).parent.mkdir(parents=True, exist_ok=True)
                (directory / relative).write_text(text, encoding="utf-8")
        stored = {
            path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }
        assert stored == files, f"{case['name']}/{provider} differs; MLPLANE_ACCEPT=1 rewrites it"


# --- the external judges -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def judged(case: dict[str, Any]) -> dict[str, subprocess.CompletedProcess[str]]:
    zizmor, check = require_judge("zizmor"), require_judge("check-jsonschema")
    out: Path = case["out"]
    workflows = sorted(str(p) for p in (out / "github").rglob("*.yml"))

    def judge(*argv: str, cwd: Path = out) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=120
        )

    return {
        "zizmor": judge(
            zizmor, "--offline", "--no-config", ".github/workflows", cwd=out / "github"
        ),
        "zizmor-pedantic": judge(
            zizmor,
            "--offline",
            "--no-config",
            "--persona",
            "pedantic",
            ".github/workflows",
            cwd=out / "github",
        ),
        "github-schema": judge(check, "--builtin-schema", "vendor.github-workflows", *workflows),
        "gitlab-schema": judge(
            check, "--builtin-schema", "vendor.gitlab-ci", str(out / "gitlab" / ".gitlab-ci.yml")
        ),
    }


@pytest.mark.judge
@pytest.mark.parametrize("judge", ["zizmor", "zizmor-pedantic"])
def test_zizmor_finds_nothing(judged: dict[str, Any], judge: str) -> None:
    result = judged[judge]
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "No findings to report" in report and "suppressed" not in report, report


@pytest.mark.judge
@pytest.mark.parametrize("judge", ["github-schema", "gitlab-schema"])
def test_check_jsonschema_accepts(judged: dict[str, Any], judge: str) -> None:
    result = judged[judge]
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.judge
def test_actionlint_finds_nothing(case: dict[str, Any], actionlint: str) -> None:
    """actionlint (expressions, job graph, needs/outputs, runner labels, shell via shellcheck
    when installed) on every generated GitHub workflow; ``-config-file`` names the custom runner
    labels of the OIDC case, as a repository's actionlint.yaml would."""
    github = case["out"] / "github"
    config = case["out"] / "actionlint.yaml"
    config.write_text("self-hosted-runner:\n  labels: [linux]\n", encoding="utf-8")
    workflows = sorted(str(p) for p in (github / ".github" / "workflows").glob("*.yml"))
    result = subprocess.run(
        [actionlint, "-no-color", "-config-file", str(config), *workflows],
        check=False,
        cwd=github,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# --- QUALITY §B: GitHub Actions ----------------------------------------------------------------------


def test_only_safe_triggers(case: dict[str, Any]) -> None:
    for path, doc in github_docs(case).items():
        assert set(doc["on"]) <= TRIGGERS, path
    for text in case["files"]["github"].values():
        for banned in ("pull_request_target", "workflow_run", "secrets: inherit"):
            assert banned not in text


def test_permissions_are_empty_at_the_top_and_granted_per_job(case: dict[str, Any]) -> None:
    for path, doc in github_docs(case).items():
        assert doc["permissions"] == {}, path
        for job_id, job in jobs_of(doc).items():
            assert isinstance(job["permissions"], dict) and job["permissions"], (path, job_id)
            assert "write-all" not in str(job["permissions"]) and "read-all" not in str(job)


def test_every_uses_is_pinned_with_a_version_comment(case: dict[str, Any]) -> None:
    pinned = {f"{pin.action}@{pin.commit}": pin.version for pin in ACTIONS.values()}
    for path, text in case["files"]["github"].items():
        for _, step in steps(github_docs(case)[path]):
            if "uses" in step:
                assert PIN.match(step["uses"]), step["uses"]
        for line in text.splitlines():
            if line.strip().startswith(("uses:", "- uses:")):
                match = PIN_LINE.match(line)
                assert match, line
                assert pinned[match["ref"]] == match["version"], line


def test_checkout_never_persists_credentials(case: dict[str, Any]) -> None:
    checkouts = 0
    for doc in github_docs(case).values():
        for _, step in steps(doc):
            if step.get("uses", "").startswith("actions/checkout@"):
                checkouts += 1
                assert step["with"]["persist-credentials"] is False
    assert checkouts


def test_every_run_is_a_known_script_without_expressions(case: dict[str, Any]) -> None:
    known = set(SCRIPTS.values())
    for doc in github_docs(case).values():
        for _, step in steps(doc):
            if "run" in step:
                assert step["run"] in known
                assert "${{" not in step["run"]


def test_apply_jobs_are_gated_locked_and_uncached(case: dict[str, Any]) -> None:
    for path, doc in github_docs(case).items():
        if kind(path) not in ("apply", "drift"):
            continue
        for job_id, job in jobs_of(doc).items():
            if job_id.startswith(("plan-", "approve-")):
                continue  # no state, no secrets: see test_apply_applies_the_reviewed_plan
            assert job["environment"] == job["env"]["MLPLANE_ENV"], job_id
            assert job["concurrency"]["cancel-in-progress"] is False
            assert job["concurrency"]["group"].startswith("mlplane-")
            for step in job["steps"]:
                assert "cache" not in step.get("uses", "")
                assert "cache" not in step.get("with", {})


def test_apply_runs_only_from_the_default_branch(case: dict[str, Any]) -> None:
    for path, doc in github_docs(case).items():
        if kind(path) == "apply":
            assert doc["on"]["push"]["branches"] == ["main"]
            for job in jobs_of(doc).values():
                assert "github.ref == 'refs/heads/main'" in job["if"]


def test_id_token_only_where_a_role_is_assumed_and_never_on_pull_requests(
    case: dict[str, Any],
) -> None:
    for path, doc in github_docs(case).items():
        for job_id, job in jobs_of(doc).items():
            assumes = any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"])
            assert ("id-token" in job["permissions"]) == assumes, (path, job_id)
            if kind(path) == "pr":
                assert "id-token" not in job["permissions"]
                assert "secrets." not in str(job)


def test_pull_request_jobs_hold_one_grant_each(case: dict[str, Any]) -> None:
    (doc,) = [d for p, d in github_docs(case).items() if kind(p) == "pr"]
    jobs = jobs_of(doc)
    assert jobs["validate"]["permissions"] == {"contents": "read"}
    assert jobs["plan"]["permissions"] == {"contents": "read"}
    assert jobs["comment"]["permissions"] == {"pull-requests": "write"}
    writes = {job_id for job_id, job in jobs.items() if "write" in job["permissions"].values()}
    assert writes == {"code-scanning", "comment"}
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert same_repo in jobs["comment"]["if"] and same_repo in jobs["code-scanning"]["if"]
    assert list(doc["on"]) == ["pull_request"]


def test_the_plan_reaches_the_summary_and_an_artifact(case: dict[str, Any]) -> None:
    (doc,) = [d for p, d in github_docs(case).items() if kind(p) == "pr"]
    plan = jobs_of(doc)["plan"]["steps"]
    planned = [s["env"]["MLPLANE_ENV"] for s in plan if s.get("run") == SCRIPTS["plan"]]
    assert planned == [env.name for env in case_environments(case)]
    assert "GITHUB_STEP_SUMMARY" in SCRIPTS["plan"]
    assert any("upload-artifact" in s.get("uses", "") for s in plan)
    assert "<!-- mlplane-plan:${MLPLANE_SYSTEM}:${MLPLANE_ENV} -->" in SCRIPTS["comment-github"]


def test_apply_jobs_follow_the_declared_order(case: dict[str, Any]) -> None:
    applied = [env.name for env in case_environments(case) if env.apply is not None]
    for path, doc in github_docs(case).items():
        if kind(path) == "apply":
            jobs = jobs_of(doc)
            assert [job for job in jobs if job.startswith("apply-")] == [
                f"apply-{name}" for name in applied
            ]
            for before, after in itertools.pairwise(applied):
                assert jobs[f"apply-{after}"]["needs"][0] == f"apply-{before}"


def case_environments(case: dict[str, Any]) -> tuple[ir.CiEnvironment, ...]:
    system = case_system(case["name"], case["out"].parent)
    return system.ci.environments


# --- GitLab CI ------------------------------------------------------------------------------------------


def gitlab_jobs(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in gitlab_doc(case).items() if k.startswith("mlplane-")}


def test_gitlab_images_are_pinned_by_digest(case: dict[str, Any]) -> None:
    doc = gitlab_doc(case)
    assert DIGEST_IMAGE.match(doc["default"]["image"])
    assert all("image" not in job for job in gitlab_jobs(case).values())


def test_gitlab_scripts_are_known_constants(case: dict[str, Any]) -> None:
    known = set(SCRIPTS.values())
    for job in gitlab_jobs(case).values():
        assert all(entry in known for entry in job["script"])
        assert "before_script" not in job and "after_script" not in job


def test_gitlab_merge_requests_validate_and_plan(case: dict[str, Any]) -> None:
    jobs = gitlab_jobs(case)
    merge_request = '$CI_PIPELINE_SOURCE == "merge_request_event"'
    for name, job in jobs.items():
        if job["stage"] == "validate" or name.startswith("mlplane-plan-"):
            assert job["rules"][0]["if"] == merge_request, name
        elif job["stage"] == "plan":  # the plans that apply jobs apply: after merge only
            assert name.startswith("mlplane-deploy-plan-"), name
            assert "CI_DEFAULT_BRANCH" in job["rules"][0]["if"], name
    planned = [name for name in jobs if name.startswith("mlplane-plan-")]
    assert len(planned) == len(case_environments(case))


def test_gitlab_apply_is_locked_per_stack_and_gated(case: dict[str, Any]) -> None:
    envs = {env.name: env for env in case_environments(case)}
    for name, job in gitlab_jobs(case).items():
        if job["stage"] not in ("apply", "drift"):
            continue
        env = envs[job["variables"]["MLPLANE_ENV"]]
        assert job["environment"]["name"] == env.name
        assert (
            job["resource_group"]
            == f"mlplane-{gitlab_doc(case)['variables']['MLPLANE_SYSTEM']}-{env.name}"
        )
        if job["stage"] == "apply":
            manual = job["rules"][0].get("when") == "manual"
            assert manual == (env.apply == "manual" or name.endswith("-risky")), name
            assert "CI_DEFAULT_BRANCH" in job["rules"][0]["if"]
        assert ("id_tokens" in job) == (env.role is not None)


def test_every_install_step_reads_the_pinned_requirement_from_env(case: dict[str, Any]) -> None:
    """The requirement (a release, or a commit) is a value in ``env:``; the script is constant."""
    wanted = (
        f"mlplane @ git+https://github.com/acme/mlplane@{GIT_COMMIT}"
        if case["name"] == "recsys-gpu-oidc"
        else f"mlplane=={__version__}"
    )
    for doc in github_docs(case).values():
        assert doc["env"]["MLPLANE_REQUIREMENT"] == wanted
        for _job, step in steps(doc):
            assert wanted not in step.get("run", "")
    assert gitlab_doc(case)["variables"]["MLPLANE_REQUIREMENT"] == wanted
