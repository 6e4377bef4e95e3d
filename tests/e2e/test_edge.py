"""The fraud example's edge environment, applied for real on tainted, labelled edge nodes.

The cluster (``tools/e2e/up.sh``) has CPU and GPU nodes and three edge nodes, each labelled
``node-role.kubernetes.io/edge``, with a site (``topology.kubernetes.io/zone``) and a residency
(``mlplane.dev/residency``: two ``eu``, one ``us``) and tainted ``node-role.kubernetes.io/edge``.
``kubectl apply --server-side`` of ``build/edge/manifests/`` (not a dry run): the API server
validates every object (the PrometheusAgent and PodMonitor against prometheus-operator's CRDs),
Pod Security admission enforces ``restricted``, the DaemonSet controller and the scheduler place
the scorer's pods, and kwok makes them Ready. The scorer reads EU data: its pods must run on
exactly the two EU edge nodes, none on the US edge node nor on the other nodes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import delete_namespace, kubectl, kubectl_json

pytestmark = pytest.mark.e2e

ENVIRONMENT = "edge"
EDGE_LABEL = "node-role.kubernetes.io/edge"
RESIDENCY_LABEL = "mlplane.dev/residency"


def _nodes(env: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        n["metadata"]["name"]: n["metadata"].get("labels", {})
        for n in kubectl_json(env, "get", "nodes")["items"]
    }


def _wait_daemon_set_ready(
    env: dict[str, str], namespace: str, name: str, timeout: float = 240
) -> dict[str, Any]:
    """The DaemonSet once every pod it wants is scheduled, up to date and Ready."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = kubectl_json(env, "get", "daemonset", name, "-n", namespace).get("status", {})
        wanted = status.get("desiredNumberScheduled", 0)
        if wanted and status.get("numberReady") == wanted == status.get("updatedNumberScheduled"):
            return status
        time.sleep(2)
    events = kubectl(env, "get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)
    pytest.fail(
        f"daemonset {name} not ready after {timeout:.0f}s: {status}\n{events.stdout[-4000:]}"
    )


def _cluster_scoped(manifests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (d["kind"].lower(), d["metadata"]["name"])
        for d in manifests
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding")
    ]


def test_edge_pods_run_ready_on_exactly_the_edge_nodes_of_their_residency(
    repo_factory: Any,
) -> None:
    repo = repo_factory("fraud-scoring")
    out = repo.path / "build"
    repo.mlplane("build", "--env", ENVIRONMENT, "--out", str(out))
    manifests = out / "manifests"
    documents = [
        d
        for f in sorted(manifests.glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text(encoding="utf-8"))
        if d
    ]
    namespace = next(d["metadata"]["name"] for d in documents if d["kind"] == "Namespace")
    (daemon,) = [d for d in documents if d["kind"] == "DaemonSet"]
    nodes = _nodes(repo.env)
    edge_nodes = {n for n, labels in nodes.items() if EDGE_LABEL in labels}
    eu_sites = {n for n in edge_nodes if nodes[n].get(RESIDENCY_LABEL) == "eu"}
    assert len(eu_sites) >= 2 and edge_nodes - eu_sites and set(nodes) - edge_nodes, (
        f"the e2e cluster lacks edge nodes of two residencies beside other nodes: {nodes}"
    )
    try:
        done = kubectl(
            repo.env, "apply", "--server-side", "--field-manager=mlplane-e2e", "-f", str(manifests),
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"the API server refused objects:\n{done.stderr}"
        labels = kubectl_json(repo.env, "get", "namespace", namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        status = _wait_daemon_set_ready(repo.env, namespace, daemon["metadata"]["name"])
        assert status["desiredNumberScheduled"] == len(eu_sites)
        pods = kubectl_json(repo.env, "get", "pods", "-n", namespace)["items"]
        placed = {p["spec"].get("nodeName") for p in pods}
        assert placed == eu_sites, f"pods on {placed}, EU edge nodes {eu_sites}"
        for pod in pods:
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            assert pod["status"].get("phase") == "Running", pod["status"]
            assert conditions.get("Ready") == "True", pod["status"]
        # the buffering agent and the scrape it selects were accepted by their CRDs' schemas
        for kind in ("prometheusagents.monitoring.coreos.com", "podmonitors.monitoring.coreos.com"):
            assert kubectl_json(repo.env, "get", kind, "-n", namespace)["items"], kind
    finally:
        delete_namespace(repo.env, namespace)
        for kind, name in _cluster_scoped(documents):
            kubectl(repo.env, "delete", kind, name, "--ignore-not-found", check=False)
