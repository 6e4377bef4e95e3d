"""``mlplane plan``: plans between git revisions of small specs, in all three formats.

Each test builds a git repository in ``tmp_path`` (commit the base, edit the working tree) and
runs the CLI in it, so the plan is computed exactly as a user or CI would get it. The tests use
the installed ``kubernetes`` target when there is one and ``tests/fake_target.py`` otherwise;
assertions on resources are phrased so they hold for both (the fake lowers each model to a
Deployment, the real target to a Deployment or Rollout and more).

The diff, replace-table and risk rules are tested target-independently in
``tests/test_plan_rules.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import plugins
from mlplane.compiler.plan.markdown import BUDGET, TRUNCATED
from tests import fake_target
from tests.specs import BASE

ROOT = Path(__file__).resolve().parent.parent
PLAN_SCHEMA = json.loads((ROOT / "docs" / "plan.schema.json").read_text(encoding="utf-8"))
_VALIDATOR = jsonschema.Draft202012Validator(PLAN_SCHEMA)
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}


class Repo:
    """A throw-away git repository with a spec under ``spec/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args]
        env = {**os.environ, **GIT_ENV}
        done = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, env=env, check=True
        )
        return done.stdout.strip()

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def edit(self, relative: str, old: str, new: str) -> None:
        text = (self.root / relative).read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not in {relative} exactly once"
        self.write(relative, text.replace(old, new))

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real Kubernetes target when installed, else the fake; yields which one."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    if "kubernetes" in plugins.targets():
        yield "real"
    else:
        fake_target.install(monkeypatch)
        yield "fake"


@pytest.fixture
def repo(tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """A repository whose first commit holds ``tests/specs.BASE`` as ``spec/mlplane.yaml``; the
    working directory is its root, so spec files are named ``spec/...`` in plans."""
    del target
    made = Repo(tmp_path / "repo")
    made.write("spec/mlplane.yaml", BASE)
    made.commit("base")
    monkeypatch.chdir(made.root)
    return made


def committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Repo:
    """A repository whose first commit holds ``text`` as ``spec/mlplane.yaml``, with git's
    identity and a private cache; the working directory is its root."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    made = Repo(tmp_path / "repo")
    made.write("spec/mlplane.yaml", text)
    made.commit("base")
    monkeypatch.chdir(made.root)
    return made


def plan(*args: str, env: str = "dev") -> Result:
    return CliRunner().invoke(cli, ["plan", "spec", "--env", env, *args])


def plan_json(*args: str, env: str = "dev") -> dict[str, Any]:
    """The JSON plan, validated against the plan schema."""
    result = plan("--format", "json", *args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    document: dict[str, Any] = json.loads(result.output)
    _VALIDATOR.validate(document)
    return document


def all_formats(*args: str) -> tuple[str, str, dict[str, Any]]:
    return plan(*args).output, plan("--format", "markdown", *args).output, plan_json(*args)


def model_entry(name: str) -> str:
    """The BASE spec's ``scorer`` model entry, renamed."""
    start = BASE.index("\nmodels:\n") + len("\nmodels:\n")
    return BASE[start : BASE.index("\nslas:")].replace("  scorer:", f"  {name}:", 1) + "\n"


def risk_codes(document: dict[str, Any]) -> set[str]:
    return {risk["code"] for risk in document["risks"]}


# --- unchanged, first deployment ---------------------------------------------------------------


def test_unchanged_spec_has_no_changes_in_every_format(repo: Repo) -> None:
    text, markdown, document = all_formats()
    assert "No changes." in text
    assert "**No changes. The head and the base describe the same system.**" in markdown
    assert document["summary"]["changes"] is False
    assert document["resources"] == [] and document["specChanges"] == []
    assert plan("--detailed-exitcode").exit_code == 0
    assert document["base"]["commit"] == document["head"]["commit"] == repo.git("rev-parse", "HEAD")
    assert document["base"]["specSha256"] == document["head"]["specSha256"]
    assert document["base"]["graphSha256"] == document["head"]["graphSha256"]


def test_base_none_creates_everything(repo: Repo) -> None:
    text, markdown, document = all_formats("--base", "none")
    summary = document["summary"]
    assert summary["create"] == document["head"]["resources"] > 0
    assert summary["update"] == summary["replace"] == summary["delete"] == 0
    assert document["base"] == {
        **document["base"],
        "kind": "none",
        "status": "none",
        "commit": None,
    }
    assert "model scorer ADDED: sklearn 1.0.0, replicas 2–4, rolling, internal" in text
    assert "data source events ADDED (stream, pii, eu)" in text
    assert f"Plan: {summary['create']} to create, 0 to update" in text
    assert markdown.startswith("<!-- mlplane-plan:demo:dev -->\n")
    assert plan("--base", "none", "--detailed-exitcode").exit_code == 2


# --- the acceptance scenarios --------------------------------------------------------------------


def test_changed_replicas(repo: Repo) -> None:
    repo.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 3, max: 6}")
    text, markdown, document = all_formats()
    line = "model scorer: replicas 2–4 → 3–6"
    assert f"~ {line}  (spec/mlplane.yaml:" in text
    assert f"`{line}`" in markdown
    summary = document["summary"]
    assert summary["update"] >= 1
    assert summary["create"] == summary["delete"] == summary["replace"] == 0
    (change,) = document["specChanges"]
    assert change["text"] == line and change["action"] == "changed"
    assert change["source"]["file"] == "spec/mlplane.yaml"
    assert change["source"]["path"] == "models.scorer.serving.replicas"
    replicas = [
        p for r in document["resources"] for p in r["changes"] if p["path"] == "spec.replicas"
    ]
    assert {"kind": "changed", "old": 2, "new": 3} in [
        {k: p[k] for k in ("kind", "old", "new")} for p in replicas
    ]
    assert document["risks"] == []
    assert plan("--detailed-exitcode").exit_code == 2
    assert plan("--fail-on", "risk").exit_code == 0


def test_added_model(repo: Repo) -> None:
    repo.edit("spec/mlplane.yaml", "\nslas:", "\n" + model_entry("ranker") + "slas:")
    text, _, document = all_formats()
    assert "+ model ranker ADDED: sklearn 1.0.0, replicas 2–4, rolling, internal" in text
    created = [r for r in document["resources"] if r["action"] == "create"]
    assert created and all("ranker" in r["name"] for r in created)
    assert all(r["source"]["path"].startswith("models.ranker") for r in created)
    assert document["summary"]["delete"] == 0
    # the new model reads personal data: the one governance change, and its flag
    assert risk_codes(document) == {"personal-data-consumer-added"}
    changes = document["governance"]["changes"]
    assert {(c["kind"], c["subject"], c["source"]["path"]) for c in changes} == {
        ("personal-data-consumer-added", "models.ranker", "models.ranker")
    }
    flagged = [r["message"] for r in document["risks"]]
    assert flagged == [c["text"] for c in changes] and len(flagged) == len(changes) >= 1


def test_deleted_data_source(repo: Repo) -> None:
    extra = "  clicks:\n    type: stream\n    uri: kafka://broker:9092/clicks\n    classification: internal\n"
    repo.edit("spec/mlplane.yaml", "\nmodels:\n", "\n" + extra + "models:\n")
    repo.commit("add clicks")
    repo.edit("spec/mlplane.yaml", extra, "")
    text, markdown, document = all_formats()
    assert "- data source clicks REMOVED ⚠  (base spec/mlplane.yaml:" in text
    assert "`data source clicks REMOVED` ⚠ — base `spec/mlplane.yaml:" in markdown
    assert "data-source-removed" in risk_codes(document)
    (change,) = document["specChanges"]
    assert change["source"]["side"] == "base"
    assert plan("--fail-on", "risk").exit_code == 1
    assert plan("--fail-on", "risk", "--detailed-exitcode").exit_code == 1


def test_renamed_spec_file_is_no_change(repo: Repo) -> None:
    split = BASE.index("slas:")
    repo.write("spec/mlplane.yaml", BASE[:split])
    repo.write("spec/slas.yaml", "apiVersion: mlplane.dev/v1\nkind: MLSystem\n" + BASE[split:])
    repo.commit("split")
    repo.git("mv", "spec/slas.yaml", "spec/objectives.yaml")
    text, _, document = all_formats()
    assert "No changes." in text
    assert document["base"]["files"] == ["mlplane.yaml", "slas.yaml"]
    assert document["head"]["files"] == ["mlplane.yaml", "objectives.yaml"]
    assert document["base"]["specSha256"] != document["head"]["specSha256"]
    # (the graph hashes may differ: resources.json records each resource's origin file, and a
    # target that lowers the SLAs, as the Kubernetes target does, points into the renamed file)


def test_broken_base_is_reported_and_head_shown_as_all_create(repo: Repo) -> None:
    repo.write("spec/mlplane.yaml", BASE.replace("models:", "models: [", 1))
    broken = repo.commit("broken")
    repo.write("spec/mlplane.yaml", BASE)
    text, markdown, document = all_formats()
    assert f"warning: the base HEAD ({broken[:12]}) does not compile (1 error(s))" in text
    assert "[yaml-syntax]" in text and "(at the base)" in text
    assert "does not compile" in markdown
    assert document["status"] == "ok"
    assert document["base"]["status"] == "failed" and document["base"]["errors"] == 1
    assert document["base"]["diagnostics"][0]["code"] == "yaml-syntax"
    assert document["summary"]["create"] == document["head"]["resources"]
    assert plan("--detailed-exitcode").exit_code == 2


def test_base_revision_and_first_deployment(repo: Repo) -> None:
    first = repo.git("rev-parse", "HEAD")
    repo.edit("spec/mlplane.yaml", "objective: 99.9", "objective: 99.95")
    repo.commit("tighter")
    document = plan_json("--base", first[:10])
    assert document["base"]["commit"] == first
    assert [c["text"] for c in document["specChanges"]] == [
        "SLA scorer-availability: objective 99.9% → 99.95%: 3 alerts regenerated"
    ]
    repo.write("other/mlplane.yaml", BASE)
    result = CliRunner().invoke(cli, ["plan", "other", "--env", "dev", "--format", "json"])
    moved = json.loads(result.output)
    assert moved["base"]["status"] == "absent"
    assert moved["warnings"] == [
        f"no spec at base HEAD ({repo.git('rev-parse', 'HEAD')[:12]}): a first deployment, everything is created"
    ]


def test_new_environment_at_head(repo: Repo) -> None:
    repo.edit("spec/mlplane.yaml", "  prod:\n", "  staging:\n    target: kubernetes\n  prod:\n")
    result = CliRunner().invoke(cli, ["plan", "spec", "--env", "staging", "--format", "json"])
    document = json.loads(result.output)
    assert document["base"]["status"] == "new-environment"
    assert document["summary"]["create"] == document["head"]["resources"]


# --- risk flags --------------------------------------------------------------------------------


def test_risk_flags_of_relaxing_changes(repo: Repo) -> None:
    spec = "spec/mlplane.yaml"
    repo.edit(spec, "slas:\n", "security:\n  network: {defaultDeny: true}\nslas:\n")
    repo.write(spec, (repo.root / spec).read_text() + WAIVER.format(expires="2026-01-31"))
    repo.commit("secure")
    repo.edit(spec, "network: {defaultDeny: true}", "network: {defaultDeny: false}")
    repo.edit(spec, "expires: 2026-01-31", "expires: 2027-06-30")
    repo.edit(
        spec,
        "      resources: {cpu: 500m, memory: 1Gi}\n",
        "      resources: {cpu: 500m, memory: 1Gi}\n      exposure: public\n"
        "      ingress: {host: scoring.acme.example, tls: {secretName: scoring-cert}}\n",
    )
    repo.edit(
        spec,
        "    classification: pii\n    residency: eu",
        "    classification: internal\n    residency: eu",
    )
    repo.edit(
        spec,
        "slas:\n  scorer-availability:\n    model: scorer\n    objective: 99.9\n    indicator: availability\n",
        "",
    )
    text, markdown, document = all_formats()
    assert risk_codes(document) >= {
        "default-deny-disabled",
        "waiver-extended",
        "exposure-public",
        "classification-downgraded",
        "sla-removed",
    }
    assert "security policy: default deny on → off ⚠" in text
    assert "data source events: classification pii → internal ⚠" in text
    assert "model scorer: exposure internal → public ⚠" in text
    assert "SLA scorer-availability REMOVED: 3 alerts removed ⚠" in text
    assert "expires 2026-01-31 → 2027-06-30 ⚠" in text
    assert "#### ⚠ Risk flags" in markdown and "| `exposure-public` |" in markdown
    assert plan("--fail-on", "risk").exit_code == 1


WAIVER = """\
waivers:
  - policy: data.retention-bounded
    target: dataSources.events
    reason: "Chargebacks need it (RISK-1)"
    owner: dpo@acme.example
    expires: {expires}
"""


def test_added_waiver_is_a_risk(repo: Repo) -> None:
    repo.write("spec/mlplane.yaml", BASE + WAIVER.format(expires="2026-01-31"))
    document = plan_json()
    assert risk_codes(document) == {"waiver-added"}
    assert document["summary"]["changes"] is True
    assert document["resources"] == []


# --- the PR comment ------------------------------------------------------------------------------


MANAGED_SOURCE = """\
  raw:
    type: objectStore
    uri: s3://demo-raw/events/
    classification: pii
    residency: eu
    managed: true
"""


def test_new_warnings_are_the_ones_the_base_lacks(repo: Repo, target: str) -> None:
    if target == "fake":
        pytest.skip("the warning comes from the kubernetes target")
    repo.edit("spec/mlplane.yaml", "\nmodels:\n", "\n" + MANAGED_SOURCE + "models:\n")
    text, markdown, document = all_formats()
    assert "New warnings (1):" in text
    assert re.search(r"spec/mlplane\.yaml:\d+:\d+: warning: data source 'raw' is managed", text)
    # the demo spec also has warnings of its own (egress to a DNS-named host stays open, and
    # no mesh encrypts its pod traffic), at the base as at the head: counted, not new
    assert "⚠ new warnings: 1, 2 more also at the base</summary>" in markdown
    assert "`[kubernetes-not-lowered]`" in markdown
    assert document["summary"]["newWarnings"] == 1
    total = document["summary"]["warnings"]
    assert total == 3
    (new,) = document["newWarnings"]
    assert new["code"] == "kubernetes-not-lowered"
    assert new["path"] == "dataSources.raw.managed"
    # Committed and moved down two lines: the same warning, so nothing is new.
    repo.commit("a managed source")
    repo.edit("spec/mlplane.yaml", "  raw:\n", "  # raw events\n  # kept for a year\n  raw:\n")
    text, markdown, document = all_formats()
    assert document["summary"]["newWarnings"] == 0
    assert document["summary"]["warnings"] == total
    assert document["newWarnings"] == []
    assert "New warnings" not in text and "new warnings" not in markdown
    # A first deployment: every warning is new.
    text, _, document = all_formats("--base", "none")
    assert "New warnings (3):" in text
    codes = sorted(d["code"] for d in document["newWarnings"])
    assert codes == [
        "kubernetes-egress-open",
        "kubernetes-in-transit-not-enforced",
        "kubernetes-not-lowered",
    ]


def test_warnings_of_a_base_that_does_not_compile_cannot_be_compared(
    repo: Repo, target: str
) -> None:
    if target == "fake":
        pytest.skip("the warning comes from the kubernetes target")
    repo.edit("spec/mlplane.yaml", "\nmodels:\n", "\n" + MANAGED_SOURCE + "models:\n")
    repo.commit("a managed source")
    repo.edit("spec/mlplane.yaml", "framework: sklearn", "framework: [broken")
    repo.commit("broken")
    repo.edit("spec/mlplane.yaml", "framework: [broken", "framework: sklearn")
    text, markdown, document = all_formats()
    assert document["base"]["status"] == "failed"
    assert document["newWarnings"] is None and document["summary"]["newWarnings"] is None
    # the managed source's, the open egress and the unencrypted pod traffic
    assert "Warnings at the head (3):" in text
    assert "⚠ warnings at the head: 3</summary>" in markdown


def test_markdown_of_a_large_change_stays_within_budget(repo: Repo) -> None:
    models = "".join(model_entry(f"m{i:03d}") for i in range(120))
    repo.edit("spec/mlplane.yaml", "\nslas:", "\n" + models + "slas:")
    markdown = plan("--format", "markdown").output
    full = plan().output
    assert len(full) > BUDGET
    assert len(markdown) <= BUDGET
    assert TRUNCATED in markdown
    assert markdown.count("<details>") == markdown.count("</details>")
    assert markdown.count("```") % 2 == 0


def test_markdown_keeps_spec_text_inside_code(repo: Repo) -> None:
    hostile = "ping @admins <img src=x onerror=alert(1)> | `x` [link](http://evil.example)"
    repo.write(
        "spec/mlplane.yaml",
        BASE
        + WAIVER.format(expires="2026-01-31").replace(
            "Chargebacks need it (RISK-1)", hostile.replace('"', "'")
        ),
    )
    markdown = plan("--format", "markdown").output
    outside = re.sub(r"(`+)(?:(?!\1).)+?\1", "", markdown)
    for needle in ("@admins", "<img", "](http", "onerror"):
        assert needle not in outside
    assert "<img" in markdown  # shown, inside a code span


# --- errors, usage, outputs --------------------------------------------------------------------


def test_head_with_errors_is_an_error_in_every_format(repo: Repo) -> None:
    repo.edit("spec/mlplane.yaml", "framework: sklearn", "framework: sklearn\n    frameworkk: x")
    result = plan("--detailed-exitcode")
    assert result.exit_code == 1
    assert "no plan: the spec has errors" in result.output and "[unknown-field]" in result.output
    document = plan_json()
    assert document["status"] == "error" and document["diagnostics"][0]["code"] == "unknown-field"
    markdown = plan("--format", "markdown").output
    assert markdown.startswith("<!-- mlplane-plan:demo:dev -->") and "**No plan:**" in markdown


def test_unknown_environment(repo: Repo) -> None:
    result = CliRunner().invoke(cli, ["plan", "spec", "--env", "qa"])
    assert result.exit_code == 2 and "environment 'qa' is not defined" in result.output
    detailed = CliRunner().invoke(cli, ["plan", "spec", "--env", "qa", "--detailed-exitcode"])
    assert detailed.exit_code == 1


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "spec", "--env", "dev", "--detailed-exitcode", "--format", "yaml"],
        ["plan", "spec", "--detailed-exitcode"],
        ["plan", "spec", "--env", "dev", "--detailed-exitcode", "--no-such-option"],
        ["drift", "spec"],
        ["drift", "spec", "--env", "dev", "--yes"],
    ],
)
def test_usage_errors_exit_1_where_2_means_changes_or_drift(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "Usage: " in result.output and "\nError: " in result.output


def test_usage_errors_of_plan_without_detailed_exitcode_stay_2() -> None:
    result = CliRunner().invoke(cli, ["plan", "spec", "--env", "dev", "--format", "yaml"])
    assert result.exit_code == 2 and "Invalid value for '--format'" in result.output


def test_saved_plan_is_bound_to_commits_and_hashes(repo: Repo, tmp_path: Path) -> None:
    from mlplane.compiler.build.outputs import build
    from mlplane.compiler.plan.lower import graph_digest

    base = repo.git("rev-parse", "HEAD")
    repo.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 3, max: 6}")
    repo.commit("scale")
    out = tmp_path / "plan.json"
    result = plan("--base", "HEAD~1", "--out", str(out))
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    _VALIDATOR.validate(saved)
    assert saved["head"]["commit"] == repo.git("rev-parse", "HEAD")
    assert saved["base"]["commit"] == base and saved["base"]["ref"] == "HEAD~1"
    built = build(Path("spec"), "dev", tmp_path / "build")
    resources_json = (tmp_path / "build" / "resources.json").read_text()
    assert saved["head"]["graphSha256"] == graph_digest(json.loads(resources_json))
    assert re.fullmatch(r"[0-9a-f]{64}", saved["head"]["specSha256"])
    assert built.ok


def test_json_plan_is_deterministic(repo: Repo) -> None:
    repo.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 3, max: 6}")
    assert plan("--format", "json").output == plan("--format", "json").output


def test_schema_lists_every_risk_code() -> None:
    from mlplane.compiler.plan.risk import risk_codes

    assert set(PLAN_SCHEMA["$defs"]["riskCode"]["enum"]) == set(risk_codes())
    jsonschema.Draft202012Validator.check_schema(PLAN_SCHEMA)


# --- mlplane graph -------------------------------------------------------------------------------


def test_graph_json_is_resources_json(repo: Repo, tmp_path: Path) -> None:
    from mlplane.compiler.build.outputs import build

    result = CliRunner().invoke(cli, ["graph", "spec", "--env", "dev"])
    assert result.exit_code == 0
    build(Path("spec"), "dev", tmp_path / "out")
    assert result.output == (tmp_path / "out" / "resources.json").read_text()


def test_graph_dot_escapes_labels(repo: Repo) -> None:
    from mlplane.compiler.build.graph_dot import dot_string, render_dot

    result = CliRunner().invoke(cli, ["graph", "spec", "--env", "dev", "--format", "dot"])
    assert result.exit_code == 0
    assert result.output.startswith('digraph "demo-dev" {')
    assert '-> "scorer' in result.output or '"scorer' in result.output
    assert dot_string('a"b\\c\nd') == '"a\\"b\\\\c\\\\u{000A}d"'
    hostile = {
        "resources": [{"type": "x:y:Z", "name": 'n"];evil', "dependsOn": [], "parent": None}]
    }
    assert '"n\\"];evil"' in render_dot(json.dumps(hostile), "t")


class WithRules:
    """The current target plus one PrometheusRule holding the monitoring target's rules, as the
    Kubernetes target will carry them: lets the plan count the alerts of each SLA."""

    name = "kubernetes"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # the rest of the target protocol: the inner one's
        return getattr(self.inner, name)

    def lower(self, system: Any, diagnostics: Any) -> Any:
        from mlplane.compiler.core.graph import Resource, ResourceGraph
        from mlplane.targets.monitoring import prometheus_rule_spec

        graph = self.inner.lower(system, diagnostics)
        root = next(r.name for r in graph if r.type == "mlplane:index:System")
        inputs = {"metadata": {"name": "slo-rules"}, "spec": prometheus_rule_spec(system)}
        token = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
        rules = Resource(
            token, f"{system.name}-rules", inputs, system.environment.origin, parent=root
        )
        return ResourceGraph.build(graph.environment, graph.target, [*graph, rules])

    def emit(self, system: Any, graph: Any) -> Any:
        return self.inner.emit(system, graph)


LATENCY_SLA = "  scorer-latency:\n    model: scorer\n    objective: 99\n    indicator: {latency: {threshold: 250ms}}\n"


def test_sla_change_counts_regenerated_alerts(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_target.install(monkeypatch, WithRules(plugins.targets()["kubernetes"]))
    repo.write("spec/mlplane.yaml", BASE + LATENCY_SLA)
    repo.commit("latency SLA")
    repo.edit("spec/mlplane.yaml", "threshold: 250ms", "threshold: 100ms")
    document = plan_json()
    (line,) = [c["text"] for c in document["specChanges"]]
    assert re.fullmatch(
        r"SLA scorer-latency: latency threshold 250ms → 100ms: \d+ alerts regenerated", line
    )
    assert "demo-rules" in [r["name"] for r in document["resources"] if r["action"] == "update"]
    repo.edit("spec/mlplane.yaml", LATENCY_SLA.replace("250ms", "100ms"), "")
    removed = plan_json()
    assert "sla-removed" in risk_codes(removed)
    assert re.search(
        r"SLA scorer-latency REMOVED: \d+ alerts removed", removed["specChanges"][0]["text"]
    )
