"""``mlplane plan`` runs the policy packs' graph rules on the head's lowered graph.

The AWS target lowers hardened graphs, so a target that wraps it and weakens the ``events``
bucket (SSE-S3 instead of KMS: ``aws.s3-kms-encrypted``, an error; versioning suspended:
``aws.s3-versioned``, a warning) stands in for a spec whose graph breaks the rules. Each test
commits the base in a throw-away git repository and plans the working tree, as CI does. What
must hold: an error fails the head as a spec error does, in every format, at the line of the
data source that produced the bucket; a warning is one of the head's diagnostics; tuning and
waivers work as in ``build``; and the rules judge a graph read back from the plan cache
exactly as a freshly lowered one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import plugins
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import Resource, ResourceGraph
from mlplane.compiler.plan import lower as plan_lower
from mlplane.compiler.plan import parallel as plan_parallel
from mlplane.compiler.plan import run as plan_run
from mlplane.compiler.plan.cache import PlanCache
from mlplane.compiler.plan.lower import graph_object
from tests import test_plan
from tests.test_plan import Repo, committed

pytest.importorskip("mlplane.targets.aws")
from tests.test_aws_target import SPEC  # imports the AWS target

KMS_RULE, VERSIONING_RULE = "aws.s3-kms-encrypted", "aws.s3-versioned"
GRAPH_CODES = (KMS_RULE, VERSIONING_RULE)
EVENTS_LINE = SPEC.splitlines().index("  events:") + 1
"""The line of ``dataSources.events``, the origin of the bucket and so of both findings."""
WAIVER = """\
  - policy: {policy}
    target: {target}
    reason: Migrating the bucket to the tier key (SEC-12)
    owner: data-platform@acme.example
    expires: "2030-01-31"
"""


class Weakened:
    """The AWS target, but the ``events`` bucket is encrypted with SSE-S3 and not versioned."""

    name = "aws"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # the rest of the target protocol: the inner one's
        return getattr(self.inner, name)

    def lower(self, system: Any, diagnostics: Diagnostics) -> ResourceGraph | None:
        graph = self.inner.lower(system, diagnostics)
        if graph is None:
            return None
        return ResourceGraph.build(graph.environment, graph.target, map(_weakened, graph))

    def emit(self, system: Any, graph: ResourceGraph) -> Any:
        return self.inner.emit(system, graph)


def _weakened(resource: Resource) -> Resource:
    if resource.name == "events-bucket-encryption":
        rule = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
        return replace(resource, inputs={**resource.inputs, "rules": [rule]})
    if resource.name == "events-bucket-versioning":
        status = {"status": "Suspended"}
        return replace(resource, inputs={**resource.inputs, "versioningConfiguration": status})
    return resource


@pytest.fixture
def weakened(monkeypatch: pytest.MonkeyPatch) -> None:
    real = dict(plugins.targets())
    monkeypatch.setattr(plugins, "targets", lambda: {**real, "aws": Weakened(real["aws"])})


@pytest.fixture
def hardened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """The AWS spec committed as ``spec/mlplane.yaml``; the cwd is the repository's root."""
    return committed(tmp_path, monkeypatch, SPEC)


@pytest.fixture
def repo(hardened: Repo, weakened: None) -> Repo:
    """:func:`hardened`, lowered by the :class:`Weakened` target."""
    del weakened
    return hardened


def plan(*args: str) -> Result:
    return test_plan.plan(*args, env="prod")


def plan_json(*args: str) -> dict[str, Any]:
    return test_plan.plan_json(*args, env="prod")


def graph_findings(document: dict[str, Any]) -> dict[str, tuple[str, str, int]]:
    """Graph rule id -> (severity, spec path, line) of the plan's diagnostics."""
    return {
        d["code"]: (d["severity"], d["path"], d["line"])
        for d in document["diagnostics"]
        if d["code"] in GRAPH_CODES
    }


def with_waivers(*items: tuple[str, str]) -> str:
    body = "".join(WAIVER.format(policy=p, target=t) for p, t in items)
    return SPEC + "waivers:\n" + body


def test_the_hardened_graph_plans_cleanly_after_the_rules_ran(
    hardened: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    original = plan_run.check_graph

    def spy(lowered: plan_lower.Lowered, diagnostics: Diagnostics) -> None:
        checked.append(lowered.system.environment.name)
        original(lowered, diagnostics)

    monkeypatch.setattr(plan_run, "check_graph", spy)
    monkeypatch.setattr(plan_parallel, "spare_core", lambda: False)  # the base in this process
    hardened.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 6}", "replicas: {min: 2, max: 8}")
    document = plan_json()
    assert document["status"] == "ok" and checked == ["prod", "prod"]  # head, then base
    assert not [d for d in document["diagnostics"] if d["code"].startswith("aws.")]
    assert document["summary"]["changes"] is True


def test_an_error_of_a_graph_rule_fails_the_head_in_every_format(repo: Repo) -> None:
    del repo
    text = plan()
    assert text.exit_code == 1, text.output
    where = f"spec/mlplane.yaml:{EVENTS_LINE}:"
    [line] = [x for x in text.output.splitlines() if f"[{KMS_RULE}]" in x]
    assert line.startswith(where) and ": error: " in line
    assert "bucket 'events-bucket' is not encrypted with KMS by default (AES256)" in line
    assert text.output.rstrip().endswith("no plan: the spec has errors")
    markdown = plan("--format", "markdown")
    assert markdown.exit_code == 1
    assert "**No plan:**" in markdown.output
    [item] = [x for x in markdown.output.splitlines() if f"[{KMS_RULE}]" in x]
    assert item.startswith(f"- `{where}") and ": error: " in item
    document = plan_json()
    assert document["status"] == "error" and document["head"]["status"] == "failed"
    assert document["head"]["errors"] == 1 and document["base"]["status"] == "none"
    assert graph_findings(document) == {
        KMS_RULE: ("error", "dataSources.events", EVENTS_LINE),
        VERSIONING_RULE: ("warning", "dataSources.events", EVENTS_LINE),
    }
    [kms] = [d for d in document["diagnostics"] if d["code"] == KMS_RULE]
    assert (kms["file"], kms["column"]) == ("spec/mlplane.yaml", 3)
    assert "CKV_AWS_145" in kms["hint"]


def test_no_plan_is_saved_when_a_graph_rule_fails(repo: Repo) -> None:
    result = plan("--out", "plan.json")
    assert result.exit_code == 1
    assert not (repo.root / "plan.json").exists()


def test_a_waiver_silences_the_finding_as_in_build(repo: Repo) -> None:
    repo.write("spec/mlplane.yaml", with_waivers((KMS_RULE, "dataSources.events")))
    document = plan_json()
    assert document["status"] == "ok", document["diagnostics"]
    assert graph_findings(document) == {
        VERSIONING_RULE: ("warning", "dataSources.events", EVENTS_LINE)
    }
    assert plan("--detailed-exitcode").exit_code == 2  # the waiver is a change
    repo.write(
        "spec/mlplane.yaml",
        with_waivers((KMS_RULE, "dataSources.*"), (VERSIONING_RULE, "dataSources.events")),
    )
    waived = plan_json()
    assert waived["status"] == "ok" and graph_findings(waived) == {}
    assert not [d for d in waived["diagnostics"] if d["code"] == "waiver-unmatched"]


def test_a_waiver_for_another_target_does_not_silence_it(repo: Repo) -> None:
    repo.write("spec/mlplane.yaml", with_waivers((KMS_RULE, "dataSources.lake")))
    document = plan_json()
    assert document["status"] == "error"
    assert graph_findings(document)[KMS_RULE] == ("error", "dataSources.events", EVENTS_LINE)


def test_graph_rules_are_tuned_as_in_build(repo: Repo) -> None:
    tuned = "policies:\n  rules:\n    aws.s3-kms-encrypted: {severity: warning}\n"
    tuned += "    aws.s3-versioned: {severity: off}\n"
    repo.write("spec/mlplane.yaml", SPEC + tuned)
    document = plan_json()
    assert document["status"] == "ok"
    assert graph_findings(document) == {KMS_RULE: ("warning", "dataSources.events", EVENTS_LINE)}


def test_graph_rules_run_on_a_head_lowering_read_from_the_plan_cache(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, cache_reads: list[bool]
) -> None:
    """The head is lowered through the cache here too: the second plan reads the head's
    lowering and the whole base side back from it, and the findings are the same."""
    monkeypatch.setattr(plan_parallel, "spare_core", lambda: False)
    cache = PlanCache.open(repo.root)
    assert cache is not None
    monkeypatch.setattr(
        plan_run,
        "lower",
        lambda compiled, env, _=None, known=None: plan_lower.lower(compiled, env, cache),
    )
    repo.write("spec/mlplane.yaml", with_waivers((KMS_RULE, "dataSources.events")))
    cold = plan_json()
    warm = plan_json()
    # cold: the head's lowering, the base side, the base's lowering; warm: head and base side
    assert cache_reads == [False, False, False, True, True]
    assert (
        graph_findings(warm)
        == graph_findings(cold)
        == {VERSIONING_RULE: ("warning", "dataSources.events", EVENTS_LINE)}
    )
    assert warm == cold


def test_a_graph_rebuilt_from_the_cache_is_the_lowered_graph(
    tmp_path: Path, weakened: None
) -> None:
    del weakened
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "mlplane.yaml").write_text(SPEC, encoding="utf-8")
    cache = PlanCache(tmp_path / "cache", b"k" * 32)

    def lowered() -> plan_lower.Lowered:
        compiled = compile_spec(tmp_path / "spec", ["prod"])
        found = plan_lower.lower(compiled, "prod", cache)
        assert found is not None
        return found

    fresh, cached = lowered(), lowered()
    assert fresh.lowered is not None and cached.lowered is None  # the second is a hit
    rebuilt = graph_object(cached)
    assert [r.to_json() for r in rebuilt] == json.loads(
        json.dumps([r.to_json() for r in fresh.lowered])
    )
    assert (rebuilt.environment, rebuilt.target) == ("prod", "aws")
    assert findings(fresh) == findings(cached) != []


def findings(lowered: plan_lower.Lowered) -> list[tuple[str, str, str, str]]:
    found = Diagnostics()
    plan_run.check_graph(lowered, found)
    return [(d.code, d.path, str(d.location), d.message) for d in found.sorted()]
