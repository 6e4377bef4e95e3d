"""The fraud example's ``edge`` environment (``examples/fraud-scoring/edge.yaml``).

Its build golden (``tests/golden/build/fraud-scoring/edge``, kept by
``tests/test_build_golden.py``, which runs kubernetes-validate on it) is judged here by checkov as
a whole, its program is run under Pulumi's mock runtime, and what the environment says is read
back from the lowered objects. The plan summary shows a change of profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.targets.kubernetes import codes, lower
from tests.judges import checkov_failed, checkov_kubernetes
from tests.pulumi_sdk import require_pulumi_sdk
from tests.specs import BASE, DIGEST
from tests.test_plan import committed, plan_json

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "fraud-scoring"
GOLDEN = REPO / "tests" / "golden" / "build" / "fraud-scoring" / "edge"


def _system() -> tuple[ir.System, ResourceGraph, Diagnostics]:
    result = compile_spec(EXAMPLE, ["edge"])
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    system = result.systems["edge"]
    found = Diagnostics()
    graph = lower(system, found)
    assert graph is not None, [d.one_line() for d in found]
    return system, graph, found


def _objects(graph: ResourceGraph) -> list[dict[str, Any]]:
    return [dict(r.inputs) for r in graph if not r.component]


def test_the_edge_environment_serves_the_scorer_at_eu_sites_only() -> None:
    _, graph, found = _system()
    objects = _objects(graph)
    kinds = {o["kind"] for o in objects}
    assert "DaemonSet" in kinds
    assert not kinds & {"Deployment", "Rollout", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert not kinds & {
        "CronJob",
        "ServiceMonitor",
        "Ingress",
    }  # trained and batch-scored centrally
    (daemon,) = [o for o in objects if o["kind"] == "DaemonSet"]
    pod = daemon["spec"]["template"]["spec"]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "node-role.kubernetes.io/edge", "operator": "Exists"},
        {"key": "topology.kubernetes.io/zone", "operator": "Exists"},
        {"key": "mlplane.dev/residency", "operator": "In", "values": ["eu"]},
    ]
    assert daemon["spec"]["updateStrategy"]["rollingUpdate"] == {
        "maxUnavailable": "25%",
        "maxSurge": 0,
    }
    assert [c["name"] for c in pod["initContainers"]] == ["fetch-artifact"]
    # the environment clears the replica count: no warning that it is ignored
    assert codes.EDGE_REPLICAS_IGNORED not in {d.code for d in found}
    (agent,) = [o for o in objects if o["kind"] == "PrometheusAgent"]
    assert agent["spec"]["remoteWrite"] == [
        {"url": "https://prometheus.risk.acme.example/api/v1/write"}
    ]


@pytest.mark.judge
def test_the_edge_golden_passes_checkov(checkov: str) -> None:
    manifests = GOLDEN / "manifests"
    reports = checkov_kubernetes(checkov, manifests)
    assert checkov_failed(reports) == []
    judged = {p["resource"].split(".")[0] for r in reports for p in r["results"]["passed_checks"]}
    assert {"DaemonSet", "ClusterRole", "ClusterRoleBinding"} <= judged, judged


def test_the_edge_program_registers_exactly_its_graph(tmp_path: Path) -> None:
    require_pulumi_sdk("pulumi_kubernetes")
    from tests.pulumi_roundtrip import assert_round_trip, registrations_of

    system, graph, _ = _system()
    assert_round_trip(graph, registrations_of(graph, system, tmp_path / "program"))


DEV = "  dev:\n    target: kubernetes\n"
EDGE = DEV + "    kubernetes:\n      profile: edge\n      edge: {sitesAtOnce: 10}\n"


def test_the_plan_shows_a_change_of_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = committed(tmp_path, monkeypatch, BASE)
    head = BASE.replace(DEV, EDGE)
    repo.write("spec/mlplane.yaml", head)
    document = plan_json()
    texts = [c["text"] for c in document["specChanges"]]
    line = (
        "environment dev: profile cloud → edge, sites by topology.kubernetes.io/zone, "
        "10 % at a time"
    )
    assert line in texts, texts
    (change,) = [c for c in document["specChanges"] if c["text"] == line]
    assert change["source"]["line"] == head.splitlines().index("      profile: edge") + 1


def test_the_plan_words_an_edge_redeploy_by_sites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = BASE.replace(DEV, EDGE)
    repo = committed(tmp_path, monkeypatch, base)
    repo.write("spec/mlplane.yaml", base.replace(DIGEST, "sha256:" + "cd" * 32))
    texts = [c["text"] for c in plan_json()["specChanges"]]
    assert "model scorer: pods restart (image; 10 % of the sites at a time)" in texts, texts
