"""``mlplane apply``, ``destroy`` and ``drift`` up to the Automation API boundary.

The boundary is :func:`mlplane.compiler.deploy.engine.open_stack`; these tests replace it with a
recording engine (never Pulumi's internals) and replace :func:`deploy.require_pulumi` where the
test is about what happens once the CLI is there. One test runs the real ``pulumi`` CLI and is
skipped where it is not installed (it cannot be installed on our machines; docs/architecture.md, Decisions).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import plugins
from mlplane.compiler.deploy import engine as deploy
from mlplane.compiler.deploy import stack as plan_stack
from mlplane.compiler.deploy.engine import Drifted, Outcome
from mlplane.compiler.deploy.stack import backend_url, passphrase_problem, secret_values, stack_name
from mlplane.compiler.plan.applied import record_path
from tests import fake_target
from tests.test_plan import GIT_ENV, Repo

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class FakeEngine:
    """Records what the verbs ask of the engine; answers are set per test."""

    up_outcome: Outcome = field(default_factory=lambda: Outcome(True))
    drifted: list[Drifted] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    workspaces: list[deploy.Workspace] = field(default_factory=list)

    def preview(self, echo: Callable[[str], None]) -> Outcome:
        self.calls.append("preview")
        echo("+ 12 to create")
        return Outcome(True)

    def up(self, echo: Callable[[str], None]) -> Outcome:
        self.calls.append("up")
        return self.up_outcome

    def destroy(self, echo: Callable[[str], None]) -> Outcome:
        self.calls.append("destroy")
        return Outcome(True)

    def drift(self, echo: Callable[[str], None]) -> list[Drifted]:
        self.calls.append("drift")
        return self.drifted


@dataclass
class Console:
    interactive: bool = True
    answer: str = ""
    confirmed: bool = True
    lines: list[str] = field(default_factory=list)

    def echo(self, text: str) -> None:
        self.lines.append(text)

    def confirm(self, prompt: str) -> bool:
        self.lines.append(prompt)
        return self.confirmed

    def ask(self, prompt: str) -> str:
        self.lines.append(prompt)
        return self.answer


EXAMPLE = ROOT / "examples" / "fraud-scoring"
SYSTEM = "fraud-scoring"
STACK = "fraud-scoring-dev"
SCALE = ("replicas: {min: 1, max: 2}", "replicas: {min: 1, max: 3}")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """The fraud-scoring example (it passes every policy, as apply requires) committed under
    ``spec/``; waiver expiry judged on a fixed date."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    if "kubernetes" not in plugins.targets():
        fake_target.install(monkeypatch)
    monkeypatch.setattr(plan_stack, "today", lambda: date(2026, 6, 1))
    made = Repo(tmp_path / "repo")
    shutil.copytree(EXAMPLE, made.root / "spec")
    made.commit("base")
    monkeypatch.chdir(made.root)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "only-for-tests")
    return made


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    """The pulumi CLI counts as present and open_stack hands out a recording engine."""
    fake = FakeEngine()

    def open_stack(workspace: deploy.Workspace) -> FakeEngine:
        fake.calls.append("open_stack")
        fake.workspaces.append(workspace)
        return fake

    monkeypatch.setattr(deploy, "require_pulumi", lambda: None)
    monkeypatch.setattr(deploy, "open_stack", open_stack)
    return fake


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def save_plan(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "plan.json"
    result = run("plan", "spec", "--env", "dev", "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    return out


def report(result: Any) -> None:
    raise AssertionError(f"the build failed: {result.diagnostics}")


# --- without the CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["apply", "destroy", "drift"])
def test_without_the_pulumi_cli_nothing_is_done(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    monkeypatch.setattr(deploy.shutil, "which", lambda name: None)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("nothing may run without the pulumi CLI")

    monkeypatch.setattr(deploy.builder, "build", never)
    monkeypatch.setattr(deploy, "open_stack", never)
    extra = ["--yes"] if verb != "drift" else []
    result = run(verb, "spec", "--env", "dev", *extra)
    assert result.exit_code == 1
    assert "the pulumi CLI is not on PATH" in result.output
    assert "https://www.pulumi.com/docs/install/" in result.output
    assert "Nothing was done" in result.output
    assert not (repo.root / ".mlplane").exists()


# --- apply ---------------------------------------------------------------------------------------


def test_stale_saved_plan_is_refused_before_any_pulumi_call(
    repo: Repo, engine: FakeEngine, tmp_path: Path
) -> None:
    saved = save_plan(tmp_path, "--base", "none")
    repo.edit("spec/mlplane.yaml", *SCALE)
    result = run("apply", "spec", "--env", "dev", "--plan", str(saved), "--yes")
    assert result.exit_code == 1
    assert (
        "the saved plan no longer matches what would be applied; nothing was done" in result.output
    )
    assert "the spec files changed since the plan was made" in result.output
    assert "graph hash differs" in result.output
    assert engine.calls == []
    repo.commit("scale")
    result = run("apply", "spec", "--env", "dev", "--plan", str(saved), "--yes")
    assert "the plan was made at commit" in result.output
    assert engine.calls == []


def test_apply_of_a_current_plan_applies_and_records(
    repo: Repo, engine: FakeEngine, tmp_path: Path
) -> None:
    saved = save_plan(tmp_path, "--base", "none")
    result = run("apply", "spec", "--env", "dev", "--plan", str(saved), "--yes")
    assert result.exit_code == 0, result.output
    assert engine.calls == ["open_stack", "preview", "up"]
    assert f"Applied stack {STACK}; recorded in .mlplane/applied/{STACK}.json." in result.output
    record = json.loads(record_path(repo.root, SYSTEM, "dev").read_text())
    plan = json.loads(saved.read_text())
    assert record["graphSha256"] == plan["head"]["graphSha256"]
    assert record["commit"] == plan["head"]["commit"]
    (workspace,) = engine.workspaces
    assert workspace.stack == STACK
    assert workspace.backend == (repo.root / ".mlplane" / "state").resolve().as_uri()
    assert (repo.root / ".mlplane" / "state").is_dir()
    unchanged = run("plan", "spec", "--env", "dev", "--base", "applied", "--detailed-exitcode")
    assert unchanged.exit_code == 0 and "No changes." in unchanged.output
    repo.edit("spec/mlplane.yaml", *SCALE)
    changed = run("plan", "spec", "--env", "dev", "--base", "applied", "--format", "json")
    document = json.loads(changed.output)
    assert document["base"]["kind"] == "applied" and document["base"]["status"] == "compiled"
    assert [c["text"] for c in document["specChanges"]] == ["model scorer: replicas 1–2 → 1–3"]


def test_plan_reviewed_against_another_base_than_deployed_is_refused(
    repo: Repo, engine: FakeEngine, tmp_path: Path
) -> None:
    assert run("apply", "spec", "--env", "dev", "--yes").exit_code == 0
    repo.edit("spec/mlplane.yaml", "objective: 99.95", "objective: 99.9")
    repo.commit("tighter")
    saved = save_plan(tmp_path, "--base", "none")
    engine.calls.clear()
    result = run("apply", "spec", "--env", "dev", "--plan", str(saved), "--yes")
    assert result.exit_code == 1
    assert "re-plan with --base applied" in result.output
    assert engine.calls == []
    good = save_plan(tmp_path, "--base", "applied")
    assert run("apply", "spec", "--env", "dev", "--plan", str(good), "--yes").exit_code == 0


def test_apply_names_list_elements_it_left_in_place(repo: Repo, engine: FakeEngine) -> None:
    """An element added outside git to a declared list is invisible to the engine's diff: the
    apply succeeds, then a drift check names what is still there (the e2e tier shows the real
    engine doing this)."""
    urn = f"urn:pulumi:{STACK}::{SYSTEM}::kubernetes:networking.k8s.io/v1:NetworkPolicy::np"
    engine.up_outcome = Outcome(True, grown=(urn,))
    engine.drifted = [Drifted(urn, "update", ("spec.egress[2]",))]
    result = run("apply", "spec", "--env", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert engine.calls == ["open_stack", "preview", "up", "drift"]
    assert "warning: np: spec.egress[2] changed outside git and left in place" in result.output
    engine.calls.clear()
    engine.up_outcome, engine.drifted = Outcome(True), []
    assert run("apply", "spec", "--env", "dev", "--yes").exit_code == 0
    assert engine.calls == ["open_stack", "preview", "up"]


def test_apply_without_a_terminal_needs_yes(repo: Repo, engine: FakeEngine) -> None:
    result = run("apply", "spec", "--env", "dev")
    assert result.exit_code == 2
    assert "pass --yes" in result.output
    assert engine.calls == []


def test_apply_asks_on_a_terminal(repo: Repo, engine: FakeEngine) -> None:
    console = Console(confirmed=False)
    assert deploy.apply(Path("spec"), "dev", console, report) == 1
    assert engine.calls == ["open_stack", "preview"]
    assert f"Apply these changes to stack {STACK}?" in console.lines
    assert not record_path(repo.root, SYSTEM, "dev").exists()
    assert deploy.apply(Path("spec"), "dev", Console(), report) == 0
    assert engine.calls[-1] == "up"


def test_failed_resources_fail_the_apply_with_their_spec_lines(
    repo: Repo, engine: FakeEngine
) -> None:
    resources = json.loads(run("graph", "spec", "--env", "dev").output)["resources"]
    victim = next(
        r for r in resources if not r["component"] and r["origin"]["path"].startswith("models.")
    )
    urn = f"urn:pulumi:{STACK}::{SYSTEM}::{victim['type']}::{victim['name']}"
    engine.up_outcome = Outcome(False, (urn,), "update failed")
    result = run("apply", "spec", "--env", "dev", "--yes")
    assert result.exit_code == 1
    where = f"{victim['origin']['file']}:{victim['origin']['line']} ({victim['origin']['path']})"
    assert f"{victim['name']}: declared at {where}" in result.output
    assert not record_path(repo.root, SYSTEM, "dev").exists()


def test_missing_passphrase_stops_before_pulumi(
    repo: Repo, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    result = run("apply", "spec", "--env", "dev", "--yes")
    assert result.exit_code == 1 and "set PULUMI_CONFIG_PASSPHRASE" in result.output
    assert engine.calls == []


def test_saved_plan_file_that_is_not_a_plan(repo: Repo, engine: FakeEngine, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"kind": "something"}')
    result = run("apply", "spec", "--env", "dev", "--plan", str(bogus), "--yes")
    assert result.exit_code == 1 and "is not an mlplane plan" in result.output
    assert engine.calls == []


# --- destroy and drift ---------------------------------------------------------------------------


def test_destroy_requires_the_environment_name(repo: Repo, engine: FakeEngine) -> None:
    assert run("apply", "spec", "--env", "dev", "--yes").exit_code == 0
    engine.calls.clear()
    assert deploy.destroy(Path("spec"), "dev", Console(answer="prod"), report) == 1
    assert "destroy" not in engine.calls
    assert run("destroy", "spec", "--env", "dev").exit_code == 2
    assert deploy.destroy(Path("spec"), "dev", Console(answer="dev"), report) == 0
    assert engine.calls[-1] == "destroy"
    assert not record_path(repo.root, SYSTEM, "dev").exists()


def test_drift_maps_resources_to_spec_lines(repo: Repo, engine: FakeEngine) -> None:
    result = run("drift", "spec", "--env", "dev")
    assert result.exit_code == 0 and "No drift" in result.output
    resources = json.loads(run("graph", "spec", "--env", "dev").output)["resources"]
    victim = next(r for r in resources if r["origin"]["path"].startswith("models.scorer."))
    urn = f"urn:pulumi:{STACK}::{SYSTEM}::{victim['type']}::{victim['name']}"
    engine.drifted = [Drifted(urn, "update", ("spec",))]
    result = run("drift", "spec", "--env", "dev")
    assert result.exit_code == 2
    origin = victim["origin"]
    assert (
        f"~ {victim['name']}: update [spec]; declared at {origin['file']}:{origin['line']} ({origin['path']})"
        in result.output
    )


# --- the pieces ----------------------------------------------------------------------------------


def test_backend_urls(tmp_path: Path) -> None:
    assert backend_url(None, tmp_path) == (tmp_path / ".mlplane" / "state").resolve().as_uri()
    assert (
        backend_url("file://.mlplane/state", tmp_path)
        == (tmp_path / ".mlplane/state").resolve().as_uri()
    )
    for url in ("s3://bucket/prefix", "https://api.pulumi.com", "file:///srv/state", "gs://b"):
        assert backend_url(url, tmp_path) == url


def test_passphrase_comes_from_the_environment_only() -> None:
    assert passphrase_problem("file:///x", {}) is not None
    assert passphrase_problem("s3://b", {"PULUMI_CONFIG_PASSPHRASE": "p"}) is None
    assert passphrase_problem("s3://b", {"PULUMI_CONFIG_PASSPHRASE_FILE": "/run/p"}) is None
    assert passphrase_problem("https://api.pulumi.com", {}) is None


def test_stack_names_refuse_option_lookalikes() -> None:
    assert stack_name("fraud-scoring", "prod") == "fraud-scoring-prod"
    for system, env in (("--config=evil", "dev"), ("-x", "dev"), ("a b", "dev"), ("a", "b;c")):
        with pytest.raises(ValueError, match="not a plain Pulumi stack name"):
            stack_name(system, env)


def test_secret_config_from_environment_variables() -> None:
    environ = {"MLPLANE_SECRET_FEAST_TOKEN": "t0k", "OTHER": "x"}
    assert secret_values(["feast-token", "missing"], environ) == {"feast-token": "t0k"}


def test_state_directory_is_ignored_by_git() -> None:
    lines = (ROOT / ".gitignore").read_text().splitlines()
    assert ".mlplane/" in lines


# --- the real engine ---------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("pulumi") is None, reason="the pulumi CLI is not installed (it is not on PyPI)"
)
def test_real_pulumi_apply_drift_destroy(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph of component resources only (no cluster needed) on the local file backend, with
    the program run by this interpreter (no virtualenv to create, so no network)."""
    from mlplane.compiler.core.graph import Resource, ResourceGraph

    class Components(fake_target.FakeTarget):
        name = "kubernetes"

        def lower(self, system: Any, diagnostics: Any) -> ResourceGraph:
            root = Resource(
                "mlplane:index:System", system.name, {}, system.environment.origin, component=True
            )
            models = [
                Resource(
                    "mlplane:index:Model",
                    f"{name}-model",
                    {},
                    m.origin,
                    parent=system.name,
                    component=True,
                )
                for name, m in system.models.items()
            ]
            return ResourceGraph.build(system.environment.name, "kubernetes", [root, *models])

        def emit(self, system: Any, graph: Any) -> dict[str, str]:
            return {}

    real = plugins.emitters()["pulumi"]

    class LocalPython:
        name = "pulumi"

        def emit(self, system: Any, graph: Any) -> dict[str, str]:
            files = dict(real.emit(system, graph))
            files["pulumi/Pulumi.yaml"] = files["pulumi/Pulumi.yaml"].replace(
                "  options:\n    toolchain: pip\n    virtualenv: venv\n", ""
            )
            return files

    monkeypatch.setattr(plugins, "targets", lambda: {"kubernetes": Components()})
    monkeypatch.setattr(plugins, "emitters", lambda: {"pulumi": LocalPython()})
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("PULUMI_SKIP_UPDATE_CHECK", "1")
    monkeypatch.setenv("PULUMI_HOME", str(repo.root.parent / "pulumi-home"))
    assert run("apply", "spec", "--env", "dev", "--yes").exit_code == 0
    assert record_path(repo.root, SYSTEM, "dev").exists()
    assert run("drift", "spec", "--env", "dev").exit_code == 0
    assert run("destroy", "spec", "--env", "dev", "--yes").exit_code == 0


def test_the_stack_is_given_the_secret_keys_the_program_reads() -> None:
    """The config keys an apply sets (read from ``resources.json``) are those the generated
    program reads through secret markers, in every environment of every example."""
    from mlplane.compiler.build.pipeline import compile_spec, target_of
    from mlplane.compiler.core.diagnostics import Diagnostics
    from tests.pulumi_roundtrip import graph_secret_keys

    systems = [
        system
        for example in sorted((Path(__file__).parent.parent / "examples").iterdir())
        for system in compile_spec(example).systems.values()
    ]
    read = 0
    for system in systems:
        target = target_of(system, Diagnostics())
        graph = target.lower(system, Diagnostics()) if target is not None else None
        assert graph is not None
        document = json.loads(graph.canonical_json())
        keys = {key for r in document["resources"] for key in plan_stack._secret_keys(r["inputs"])}
        assert sorted(keys) == graph_secret_keys(graph)
        read += len(keys)
    assert read  # the examples read secrets through the stack's config
