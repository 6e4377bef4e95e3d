"""``mlplane apply`` registers the recurring runs of ``training.engine: kubeflow`` with the Kubeflow
Pipelines API, and ``mlplane destroy`` deletes them first.

The recsys-gpu example's prod environment is built once (its ranker trains on Kubeflow), with
its ``kubeflow.endpoint`` pointed at a loopback server that holds the generated KFP client's
request/response contract (``tests/kfp_api.py``); no real KFP API server runs here. The Pipeline
and PipelineVersion the engine would have created are put into the server by their built
names, as the Kubernetes-native API lists them.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import plugins
from mlplane.compiler.deploy import engine as deploy
from mlplane.compiler.deploy import stack as plan_stack
from mlplane.targets.kubernetes import kubeflow_register as kfr
from tests.kfp_api import KfpState, serving
from tests.test_deploy import Console, FakeEngine
from tests.test_plan import GIT_ENV, Repo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "recsys-gpu"
ENDPOINT = "https://kubeflow.acme.internal/pipeline"
ENV = "prod"
NAMESPACE = "recsys"
EXPERIMENT = "mlplane-recsys-prod"
RUN = "ranker-training"


@dataclass(frozen=True)
class Build:
    model: Any
    resources: dict[str, Any]
    pipeline: str
    version: str


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[str, KfpState]]:
    with serving("/pipeline") as served:
        yield served


@pytest.fixture(scope="module")
def build(api: tuple[str, KfpState], tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The example's prod environment, built once, its endpoint on the loopback server."""
    spec = tmp_path_factory.mktemp("spec") / "recsys-gpu"
    shutil.copytree(EXAMPLE, spec)
    text = (spec / "mlplane.yaml").read_text(encoding="utf-8")
    assert text.count(ENDPOINT) == 1
    (spec / "mlplane.yaml").write_text(text.replace(ENDPOINT, api[0]), encoding="utf-8")

    def report(result: Any) -> None:
        raise AssertionError(f"the build failed: {result.diagnostics}")

    with plan_stack.rebuilt(spec, ENV, report) as built:
        runs = kfr.desired_runs(built.resources)
        assert [run.display_name for run in runs] == [RUN]
        return Build(built.model, built.resources, runs[0].pipeline, runs[0].pipeline_version)


@pytest.fixture
def state(api: tuple[str, KfpState], build: Build) -> KfpState:
    """The server emptied, holding the built Pipeline and its PipelineVersion."""
    served = api[1]
    for held in (served.experiments, served.pipelines, served.versions, served.runs):
        held.clear()
    served.requests.clear()
    served.failures.clear()
    served.raw.clear()
    served.page_size_cap = 200
    served.add_pipeline(build.pipeline, NAMESPACE, [build.version, f"{build.pipeline}-next"])
    return served


def apply(build: Build, resources: dict[str, Any] | None = None, **environ: str) -> list[str]:
    lines: list[str] = []
    kfr.after_apply(build.model, resources or build.resources, environ, lines.append)
    return lines


def with_version(build: Build, version: str) -> dict[str, Any]:
    """The build's resources with the recurring run naming another PipelineVersion (a new
    build of a changed pipeline gets a new version name, and nothing else of the run moves)."""
    resources = copy.deepcopy(build.resources)
    for resource in resources.values():
        data = resource["inputs"].get("data") or {}
        if kfr.RECURRING_RUN_KEY in data:
            body = json.loads(data[kfr.RECURRING_RUN_KEY])
            body["pipeline_objects"]["pipeline_version"] = version
            data[kfr.RECURRING_RUN_KEY] = json.dumps(body)
    return resources


def without_runs(build: Build) -> dict[str, Any]:
    return {
        name: resource
        for name, resource in build.resources.items()
        if kfr.RECURRING_RUN_KEY not in (resource["inputs"].get("data") or {})
    }


def test_apply_registers_the_recurring_run_of_the_built_version(
    build: Build, state: KfpState
) -> None:
    lines = apply(build, MLPLANE_KUBEFLOW_TOKEN="t0ken")
    assert state.changes() == [("POST", "/experiments"), ("POST", "/recurringruns")]
    (experiment,) = state.experiments.values()
    assert (experiment.display_name, experiment.namespace) == (EXPERIMENT, NAMESPACE)
    (run,) = state.runs.values()
    assert run.display_name == RUN
    assert run.experiment_id == experiment.experiment_id
    assert run.namespace == NAMESPACE
    assert run.pipeline_version_reference.pipeline_version_id == state.version_id(build.version)
    assert run.trigger.cron_schedule.cron == "0 30 4 * * *"  # the ranker's "30 4 * * *"
    assert (run.max_concurrency, run.no_catchup, run.mode) == ("1", True, "ENABLE")
    assert run.status == "ENABLED"
    assert {r.authorization for r in state.requests} == {"Bearer t0ken"}
    assert f"  Kubeflow recurring run {RUN} ({EXPERIMENT}): created" in lines


def test_a_second_apply_changes_nothing(build: Build, state: KfpState) -> None:
    apply(build)
    before = dict(state.runs)
    state.requests.clear()
    lines = apply(build)
    assert state.changes() == []
    assert state.runs == before
    assert f"  Kubeflow recurring run {RUN} ({EXPERIMENT}): unchanged" in lines
    assert {r.authorization for r in state.requests} == {None}  # no token: none is sent


def test_a_new_pipeline_version_replaces_the_run(build: Build, state: KfpState) -> None:
    apply(build)
    (old,) = state.runs
    state.requests.clear()
    apply(build, with_version(build, f"{build.pipeline}-next"))
    assert state.changes() == [("DELETE", f"/recurringruns/{old}"), ("POST", "/recurringruns")]
    (run,) = state.runs.values()
    version = state.version_id(f"{build.pipeline}-next")
    assert run.pipeline_version_reference.pipeline_version_id == version


def test_a_run_the_spec_no_longer_has_is_deleted(build: Build, state: KfpState) -> None:
    apply(build)
    (old,) = state.runs
    state.requests.clear()
    apply(build, without_runs(build))
    assert state.changes() == [("DELETE", f"/recurringruns/{old}")]
    assert state.runs == {}


def test_runs_are_listed_page_by_page(build: Build, state: KfpState) -> None:
    apply(build)
    (experiment,) = state.experiments
    duplicate = copy.deepcopy(next(iter(state.runs.values())))
    duplicate.recurring_run_id = "twin"
    state.runs["twin"] = duplicate  # the same run registered twice, on a second page
    state.page_size_cap = 1
    state.requests.clear()
    apply(build)
    assert state.changes() == [("DELETE", "/recurringruns/twin")]
    listed = [r for r in state.requests if r.path == "/recurringruns" and r.method == "GET"]
    assert [r.query.get("page_token", "") for r in listed] == ["", "1"]
    assert all(r.query["experiment_id"] == experiment for r in listed)


def test_destroy_deletes_every_run_first(build: Build, state: KfpState) -> None:
    apply(build)
    (old,) = state.runs
    state.requests.clear()
    lines: list[str] = []
    kfr.before_destroy(build.model, build.resources, {}, lines.append)
    assert state.changes() == [("DELETE", f"/recurringruns/{old}")]
    assert f"  Kubeflow recurring run {RUN} ({EXPERIMENT}): deleted" in lines


def test_without_runs_or_experiment_nothing_is_created(build: Build, state: KfpState) -> None:
    apply(build, without_runs(build))
    assert state.changes() == []
    assert [r.path for r in state.requests] == ["/experiments"]


def test_an_unknown_version_is_looked_up_again_then_refused(
    build: Build, state: KfpState, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(kfr.time, "sleep", pauses.append)
    with pytest.raises(plugins.DeployStepError) as raised:
        apply(build, with_version(build, f"{build.pipeline}-missing"))
    assert pauses == [kfr.LOOKUP_PAUSE] * (kfr.LOOKUP_ATTEMPTS - 1)
    message = str(raised.value)
    assert f"does not know PipelineVersion '{build.pipeline}-missing'" in message
    assert "Kubernetes-native API mode" in message
    assert [p for m, p in state.changes()] == ["/experiments"]  # no run was created


def test_a_refusal_of_the_api_is_reported_with_its_message(build: Build, state: KfpState) -> None:
    state.failures[("GET", "/experiments")] = (403, "user is not authorized in namespace recsys")
    with pytest.raises(plugins.DeployStepError) as raised:
        apply(build)
    assert str(raised.value) == (
        f"list experiments at the Kubeflow Pipelines API {build_endpoint(build)} failed: "
        "HTTP 403 Forbidden: user is not authorized in namespace recsys"
    )


def test_an_unreachable_api_is_reported(build: Build, state: KfpState) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = moved_to(build, f"http://127.0.0.1:{port}")
    with pytest.raises(plugins.DeployStepError, match="could not be reached"):
        kfr.after_apply(model, build.resources, {}, lambda line: None)


def moved_to(build: Build, endpoint: str) -> Any:
    """The build's system model with its Kubeflow Pipelines endpoint at ``endpoint``."""
    system = build.model
    settings = system.environment.target_settings
    moved = type(settings)(**{**_fields(settings), "kubeflow_endpoint": endpoint})
    environment = type(system.environment)(
        **{**_fields(system.environment), "target_settings": moved}
    )
    return type(system)(**{**_fields(system), "environment": environment})


def build_endpoint(build: Build) -> str:
    return str(build.model.environment.target_settings.kubeflow_endpoint)


def _fields(value: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


# --- through mlplane apply and destroy -------------------------------------------------------------


def _applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: tuple[str, KfpState], state: KfpState
) -> tuple[FakeEngine, Callable[[Any], None]]:
    """The example applied through ``mlplane apply`` (the engine replaced by a fake) against
    the fake Kubeflow Pipelines API: the engine, and the build reporter to pass on."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(plan_stack, "today", lambda: date(2026, 6, 1))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "only-for-tests")
    monkeypatch.setenv("MLPLANE_KUBEFLOW_TOKEN", "from-ci")
    repo = Repo(tmp_path / "repo")
    shutil.copytree(EXAMPLE, repo.root / "spec")
    repo.edit("spec/mlplane.yaml", ENDPOINT, api[0])
    repo.commit("base")
    monkeypatch.chdir(repo.root)
    fake = FakeEngine()
    monkeypatch.setattr(deploy, "require_pulumi", lambda: None)
    monkeypatch.setattr(deploy, "open_stack", lambda workspace: fake)

    def report(result: Any) -> None:
        raise AssertionError(f"the build failed: {result.diagnostics}")

    console = Console()
    assert deploy.apply(Path("spec"), ENV, console, report, yes=True) == 0
    assert fake.calls == ["preview", "up"]
    (run,) = state.runs.values()
    assert run.display_name == RUN
    assert {r.authorization for r in state.requests} == {"Bearer from-ci"}
    applied = console.lines.index(next(ln for ln in console.lines if ln.startswith("Applied")))
    assert console.lines[applied + 1] == f"Registering Kubeflow recurring runs at {api[0]}:"
    return fake, report


def test_apply_registers_after_up_and_destroy_unregisters_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: tuple[str, KfpState], state: KfpState
) -> None:
    fake, report = _applied(tmp_path, monkeypatch, api, state)
    state.requests.clear()
    state.failures[("GET", "/recurringruns")] = (503, "the API server is restarting")
    refused = Console()
    with pytest.raises(deploy.DeployError, match="nothing was destroyed") as raised:
        deploy.destroy(Path("spec"), ENV, refused, report, yes=True)
    assert "--skip-target-cleanup" in str(raised.value)  # how to go on when it cannot succeed
    assert fake.calls == ["preview", "up"]  # the engine's destroy never ran
    state.failures.clear()
    assert deploy.destroy(Path("spec"), ENV, Console(), report, yes=True) == 0
    assert fake.calls == ["preview", "up", "destroy"]
    assert state.runs == {}


def test_destroy_without_the_target_cleanup_leaves_the_runs_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: tuple[str, KfpState], state: KfpState
) -> None:
    """A Kubeflow Pipelines API that no longer answers need not block the destroy for ever:
    with ``--skip-target-cleanup`` the engine's destroy runs, the runs are not asked about."""
    fake, report = _applied(tmp_path, monkeypatch, api, state)
    state.requests.clear()
    state.failures[("GET", "/recurringruns")] = (503, "gone")
    console = Console()
    assert deploy.destroy(Path("spec"), ENV, console, report, yes=True, target_cleanup=False) == 0
    assert fake.calls == ["preview", "up", "destroy"]
    assert state.requests == []  # the API was not called
    (run,) = state.runs.values()
    assert run.display_name == RUN  # left as it is
    assert any("--skip-target-cleanup" in line for line in console.lines)


def test_the_cli_passes_skip_target_cleanup_to_the_destroy(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    def destroy(*args: Any) -> int:
        seen.append(args[5])
        return 0

    monkeypatch.setattr(deploy, "destroy", destroy)
    for flags in ([], ["--skip-target-cleanup"]):
        result = CliRunner().invoke(cli, ["destroy", "spec", "--env", ENV, "--yes", *flags])
        assert result.exit_code == 0, result.output
    assert seen == [True, False]


def test_what_the_api_sends_is_printed_safely(build: Build, state: KfpState) -> None:
    apply(build)
    planted = copy.deepcopy(next(iter(state.runs.values())))
    planted.recurring_run_id = "planted"
    planted.display_name = "x\x1b[2J\u202eevil\nline"  # not the build's: deleted, and shown
    state.runs["planted"] = planted
    lines = apply(build)
    assert any(
        line.startswith("  Kubeflow recurring run x\\u{001B}[2J\\u{202E}evil (") for line in lines
    )
    assert not any("\x1b" in line or "\u202e" in line for line in lines)
    state.failures[("GET", "/experiments")] = (500, "boom\x1b[31m\nsecond line")
    with pytest.raises(plugins.DeployStepError) as raised:
        apply(build)
    assert str(raised.value).endswith("HTTP 500 Internal Server Error: boom\\u{001B}[31m")


# --- what a gateway, a sign-in page or a hostile server answers instead -------------------------


def refusal(build: Build, state: KfpState, **environ: str) -> str:
    with pytest.raises(plugins.DeployStepError) as raised:
        apply(build, **environ)
    return str(raised.value)


def test_a_sign_in_page_in_the_apis_place_is_refused(build: Build, state: KfpState) -> None:
    page = b"<html><body>Sign in to Kubeflow</body></html>"
    state.raw[("GET", "/experiments")] = (200, {"Content-Type": "text/html"}, page)
    message = refusal(build, state)
    assert "list experiments" in message
    assert "not a JSON object (Content-Type text/html)" in message
    assert state.changes() == []  # no experiment was made from an empty-looking answer


def test_a_redirect_is_not_followed(build: Build, state: KfpState) -> None:
    login = "https://sso.acme.internal/auth?next=/pipeline"
    state.raw[("GET", "/experiments")] = (302, {"Location": login}, b"")
    message = refusal(build, state, MLPLANE_KUBEFLOW_TOKEN="t0ken")
    assert f"HTTP 302 Found: redirected to {login}" in message
    assert "MLPLANE_KUBEFLOW_TOKEN" in message
    assert [r.path for r in state.requests] == ["/experiments"]


def test_a_page_token_that_never_ends_is_refused(build: Build, state: KfpState) -> None:
    apply(build)
    state.requests.clear()
    endless = json.dumps({"recurringRuns": [], "next_page_token": "again"}).encode()
    state.raw[("GET", "/recurringruns")] = (200, {"Content-Type": "application/json"}, endless)
    message = refusal(build, state)
    assert "list recurring runs" in message and "page token 'again' twice" in message
    assert len([r for r in state.requests if r.path == "/recurringruns"]) == 2


def test_an_answer_larger_than_the_limit_is_refused(
    build: Build, state: KfpState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kfr, "ANSWER_LIMIT", 4096)
    huge = json.dumps({"experiments": [], "padding": "x" * 100_000}).encode()
    state.raw[("GET", "/experiments")] = (200, {"Content-Type": "application/json"}, huge)
    assert "answered more than 4096 bytes" in refusal(build, state)
    assert state.changes() == []


def test_a_malformed_field_is_refused(build: Build, state: KfpState) -> None:
    apply(build)
    (experiment,) = state.experiments
    run = {"recurring_run_id": "r1", "display_name": RUN, "max_concurrency": "lots"}
    listed = json.dumps({"recurringRuns": [run]}).encode()
    state.raw[("GET", "/recurringruns")] = (200, {"Content-Type": "application/json"}, listed)
    message = refusal(build, state)
    assert "list recurring runs" in message and "max_concurrency" in message
    assert experiment in state.experiments


def test_a_created_object_without_its_id_is_refused(build: Build, state: KfpState) -> None:
    state.raw[("POST", "/experiments")] = (200, {"Content-Type": "application/json"}, b"{}")
    message = refusal(build, state)
    assert "create experiment" in message and "experiment_id" in message
    assert not any(r.path == "/recurringruns" for r in state.requests)


def test_the_token_is_never_printed_even_when_the_api_echoes_it(
    build: Build, state: KfpState
) -> None:
    state.failures[("GET", "/experiments")] = (401, "bad header: Bearer s3cret-t0ken")
    message = refusal(build, state, MLPLANE_KUBEFLOW_TOKEN="s3cret-t0ken")
    assert "s3cret-t0ken" not in message
    assert "bad header: Bearer ***" in message


def test_a_pipeline_of_another_namespace_is_not_used(build: Build, state: KfpState) -> None:
    (pipeline_id,) = state.pipelines
    elsewhere = {"pipeline_id": pipeline_id, "name": build.pipeline, "namespace": "team-b"}
    answer = json.dumps(elsewhere).encode()
    path = f"/pipelines/names/{build.pipeline}"
    state.raw[("GET", path)] = (200, {"Content-Type": "application/json"}, answer)
    message = refusal(build, state)
    assert f"Pipeline {build.pipeline!r} of namespace 'team-b'" in message
    assert not any(r.path == "/recurringruns" and r.method == "POST" for r in state.requests)


def test_a_version_is_found_by_its_name_before_display_names(build: Build, state: KfpState) -> None:
    from kfp_server_api import models

    (pipeline_id,) = state.pipelines
    impostor = models.V2beta1PipelineVersion(
        pipeline_id=pipeline_id,
        pipeline_version_id="impostor",
        name=f"{build.pipeline}-other",
        display_name=build.version,
    )
    state.versions[pipeline_id].insert(0, impostor)
    apply(build)
    (run,) = state.runs.values()
    assert run.pipeline_version_reference.pipeline_version_id == state.version_id(build.version)


def test_an_experiment_is_found_on_any_page_when_the_filter_is_ignored(
    build: Build, state: KfpState
) -> None:
    apply(build)
    (experiment,) = state.experiments
    for index in range(3):  # listed before mlplane's, one per page
        other = copy.deepcopy(state.experiments[experiment])
        other.experiment_id, other.display_name = f"other-{index}", f"team-{index}"
        state.experiments = {other.experiment_id: other, **state.experiments}
    state.ignores_filter, state.page_size_cap = True, 1
    state.requests.clear()
    try:
        lines = apply(build)
    finally:
        state.ignores_filter = False
    assert state.changes() == []  # no second experiment
    assert f"  Kubeflow recurring run {RUN} ({EXPERIMENT}): unchanged" in lines


def test_an_answer_dripped_slower_than_the_timeout_is_refused(
    build: Build, state: KfpState, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(kfr, "REQUEST_TIMEOUT", 1)
    state.drip[("GET", "/experiments")] = (b'{"experiments": []}' + b" " * 200, 0.05)
    started = time.monotonic()
    try:
        message = refusal(build, state)
    finally:
        state.drip.clear()
    assert time.monotonic() - started < 5
    assert "list experiments" in message and "took more than 1 s" in message
    assert state.changes() == []


def test_an_endpoint_whose_certificate_is_not_trusted_is_refused_before_the_token_goes(
    build: Build, tmp_path: Path
) -> None:
    """TLS is verified (against certifi's bundle): a self-signed certificate for the very
    address is refused in the handshake, saying why, and no request reaches the server."""
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate to serve")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with serving("/pipeline", tls=(cert, key)) as (endpoint, served):
        with pytest.raises(plugins.DeployStepError) as raised:
            kfr.after_apply(
                moved_to(build, endpoint),
                build.resources,
                {"MLPLANE_KUBEFLOW_TOKEN": "s3cret-t0ken"},
                lambda line: None,
            )
        assert served.requests == []
    message = str(raised.value)
    assert "certificate verify failed" in message, message
    assert "a private CA is not supported yet" in message
    assert "s3cret-t0ken" not in message
