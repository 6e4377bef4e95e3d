"""The edge profile of the Kubernetes target (``targets/kubernetes/edge.py``).

Placement on labelled edge nodes, the rollout by a percentage of sites, pre-pulled images, the
artifact in a local volume, the buffering agent and the refusals are read from the lowered
objects; the emitted manifests are judged by ``kubernetes-validate --strict`` and ``checkov``,
and the printed program is run under Pulumi's mock runtime.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.targets.kubernetes import codes, edge, emit_manifests, lower
from tests.judges import checkov_failed, checkov_kubernetes
from tests.pulumi_sdk import require_pulumi_sdk
from tests.specs import BASE, DIGEST, compile_text
from tests.test_kubernetes_network import compiled, lowered

LOADER = f"ghcr.io/acme/artifact-loader@{DIGEST}"
EDGE_DEV = "  dev:\n    target: kubernetes\n"


def edge_spec(settings: str = "{}", model: str = "") -> str:
    """BASE with dev on the edge profile; ``model`` is inserted under the scorer."""
    text = BASE.replace(
        EDGE_DEV,
        EDGE_DEV + f"    kubernetes:\n      profile: edge\n      edge: {settings}\n",
    )
    if model:
        text = text.replace("    inputs: [features]\n", f"    inputs: [features]\n{model}")
    return text


AGENT = "{remoteWrite: {host: prometheus.central.example}, sitesAtOnce: 10}"


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def errors_of(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    result = compile_text(tmp_path, text)
    if result.ok:
        found = Diagnostics()
        assert lower(result.systems["dev"], found) is None
        diagnostics = list(found)
    else:
        diagnostics = list(result.sorted_diagnostics())
    return sorted((d.code, d.location.line) for d in diagnostics if d.severity.name == "ERROR")


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- placement and rollout --------------------------------------------------------------------


def test_a_model_becomes_a_daemon_set_on_edge_nodes_of_its_data_s_residency(
    tmp_path: Path,
) -> None:
    objects, _ = lowered(compiled(tmp_path, edge_spec(AGENT)))
    assert not by_kind(objects, "Deployment")
    assert not by_kind(objects, "PodDisruptionBudget")
    (daemon,) = by_kind(objects, "DaemonSet")
    pod = daemon["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = terms["nodeSelectorTerms"]
    # features derives from events (residency eu): the pods run only at eu sites
    assert term["matchExpressions"] == [
        {"key": "node-role.kubernetes.io/edge", "operator": "Exists"},
        {"key": "topology.kubernetes.io/zone", "operator": "Exists"},
        {"key": "mlplane.dev/residency", "operator": "In", "values": ["eu"]},
    ]
    assert {"key": "node-role.kubernetes.io/edge", "operator": "Exists"} in pod["tolerations"]
    assert daemon["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0},
    }
    assert {c["imagePullPolicy"] for c in pod["containers"]} == {"IfNotPresent"}
    assert all("hostPath" not in v for v in pod["volumes"])


def test_configured_labels_and_no_taint_are_followed(tmp_path: Path) -> None:
    settings = "{nodeLabel: example.com/site-role, taint: null, residencyLabel: example.com/zone}"
    objects, _ = lowered(compiled(tmp_path, edge_spec(settings)))
    (daemon,) = by_kind(objects, "DaemonSet")
    pod = daemon["spec"]["template"]["spec"]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    keys = [e["key"] for e in term["nodeSelectorTerms"][0]["matchExpressions"]]
    assert keys == ["example.com/site-role", "topology.kubernetes.io/zone", "example.com/zone"]
    assert "tolerations" not in pod
    assert daemon["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == "25%"


def _expressions(pod: dict[str, Any]) -> list[dict[str, Any]]:
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (selector,) = term["nodeSelectorTerms"]
    return list(selector["matchExpressions"])


def test_the_site_label_places_the_models_and_the_agents_on_sites_only(tmp_path: Path) -> None:
    settings = "{siteLabel: example.com/store, remoteWrite: {host: prometheus.central.example}}"
    objects, _ = lowered(compiled(tmp_path, edge_spec(settings)))
    (daemon,) = by_kind(objects, "DaemonSet")
    (agent,) = by_kind(objects, "PrometheusAgent")
    wanted = {"key": "example.com/store", "operator": "Exists"}
    assert wanted in _expressions(daemon["spec"]["template"]["spec"])
    assert wanted in _expressions(agent["spec"])
    # the residency still narrows the models (not the agents, which serve every model)
    assert "mlplane.dev/residency" in {
        e["key"] for e in _expressions(daemon["spec"]["template"]["spec"])
    }
    assert "mlplane.dev/residency" not in {e["key"] for e in _expressions(agent["spec"])}


def test_a_site_label_equal_to_the_node_label_is_required_once(tmp_path: Path) -> None:
    settings = "{nodeLabel: example.com/store, siteLabel: example.com/store}"
    objects, _ = lowered(compiled(tmp_path, edge_spec(settings)))
    (daemon,) = by_kind(objects, "DaemonSet")
    keys = [e["key"] for e in _expressions(daemon["spec"]["template"]["spec"])]
    assert keys == ["example.com/store", "mlplane.dev/residency"]


def test_the_agents_label_every_series_with_the_node_s_site(tmp_path: Path) -> None:
    settings = "{siteLabel: example.com/store-id, remoteWrite: {host: prometheus.central.example}}"
    objects, _ = lowered(compiled(tmp_path, edge_spec(settings)))
    (monitor,) = by_kind(objects, "PodMonitor")
    assert monitor["spec"]["attachMetadata"] == {"node": True}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["relabelings"] == [
        {
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_node_label_example_com_store_id"],
            "targetLabel": "site",
        }
    ]
    # attaching node metadata needs the agent to list and watch the nodes, cluster-wide
    (agent,) = by_kind(objects, "PrometheusAgent")
    (role,) = by_kind(objects, "ClusterRole")
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    assert "namespace" not in role["metadata"] and "namespace" not in binding["metadata"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (subject,) = binding["subjects"]
    assert subject["name"] == agent["spec"]["serviceAccountName"]
    assert subject["namespace"] == agent["metadata"]["namespace"]
    # named after the namespace: two environments of one cluster do not share it
    assert role["metadata"]["name"].startswith(agent["metadata"]["namespace"] + "-")


def _warnings(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    found = Diagnostics()
    assert lower(result.systems["dev"], found) is not None
    return sorted((d.code, d.location.line) for d in found if d.severity.name == "WARNING")


def test_a_replica_count_on_edge_is_a_located_warning(tmp_path: Path) -> None:
    text = edge_spec()
    line = line_of(text, "      replicas: {min: 2, max: 4}")
    assert (codes.EDGE_REPLICAS_IGNORED, line) in _warnings(tmp_path, text)
    objects, _ = lowered(compiled(tmp_path, text))
    assert not by_kind(objects, "PodDisruptionBudget")


def test_no_replica_warning_without_a_count_nor_on_the_cloud_profile(tmp_path: Path) -> None:
    text = edge_spec().replace("      replicas: {min: 2, max: 4}\n", "")
    for name, spec_text in (("edge", text), ("cloud", BASE)):
        (tmp_path / name).mkdir()
        found = {c for c, _ in _warnings(tmp_path / name, spec_text)}
        assert codes.EDGE_REPLICAS_IGNORED not in found, name


def test_an_environment_s_replicas_override_is_where_the_warning_points(tmp_path: Path) -> None:
    text = edge_spec().replace("      replicas: {min: 2, max: 4}\n", "")
    text = text.replace(
        "      edge: {}\n",
        "      edge: {}\n    overrides:\n      models:\n        scorer:\n"
        "          serving:\n            replicas: {min: 0, max: 3}\n",
    )
    line = line_of(text, "replicas: {min: 0, max: 3}")
    assert (codes.EDGE_REPLICAS_IGNORED, line) in _warnings(tmp_path, text)


def test_the_cloud_profile_is_unchanged(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, BASE))
    assert not by_kind(objects, "DaemonSet")
    (deployment,) = by_kind(objects, "Deployment")
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    assert by_kind(objects, "ServiceMonitor")


def test_the_artifact_is_copied_into_a_local_volume_by_an_init_container(tmp_path: Path) -> None:
    text = edge_spec(f"{{artifactLoader: {LOADER}}}", "    artifact: s3://acme-models/scorer/\n")
    objects, _ = lowered(compiled(tmp_path, text))
    (daemon,) = by_kind(objects, "DaemonSet")
    pod = daemon["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["image"] == LOADER
    assert init["imagePullPolicy"] == "IfNotPresent"
    assert {"name": "MLPLANE_MODEL_ARTIFACT", "value": "s3://acme-models/scorer/"} in init["env"]
    volume = next(v for v in pod["volumes"] if v["name"] == edge.ARTIFACT_VOLUME)
    assert "emptyDir" in volume
    (main,) = pod["containers"]
    mount = next(m for m in main["volumeMounts"] if m["name"] == edge.ARTIFACT_VOLUME)
    assert mount["readOnly"] is True


# --- monitoring that buffers ------------------------------------------------------------------


def test_with_remote_write_an_agent_per_edge_node_scrapes_pod_monitors(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, edge_spec(AGENT)))
    assert not by_kind(objects, "ServiceMonitor")
    (monitor,) = by_kind(objects, "PodMonitor")
    (agent,) = by_kind(objects, "PrometheusAgent")
    spec = agent["spec"]
    assert spec["mode"] == "DaemonSet"
    assert spec["remoteWrite"] == [{"url": "https://prometheus.central.example/api/v1/write"}]
    selected = spec["podMonitorSelector"]["matchLabels"]
    assert selected.items() <= monitor["metadata"]["labels"].items()
    assert (
        "readinessProbe"
        in by_kind(objects, "DaemonSet")[0]["spec"]["template"]["spec"]["containers"][0]
    )
    (binding,) = by_kind(objects, "RoleBinding")
    assert binding["subjects"][0]["name"] == spec["serviceAccountName"]


def test_without_remote_write_the_central_prometheus_scrapes(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, edge_spec()))
    assert by_kind(objects, "ServiceMonitor")
    assert not by_kind(objects, "PrometheusAgent")


# --- refusals ---------------------------------------------------------------------------------


def test_an_unpinned_image_is_refused_on_edge_even_when_digests_are_not_required(
    tmp_path: Path,
) -> None:
    text = edge_spec().replace(f"ghcr.io/acme/scorer@{DIGEST}", "ghcr.io/acme/scorer:1.0.0")
    text += "security:\n  images: {requireDigest: false}\n"
    line = line_of(text, "ghcr.io/acme/scorer:1.0.0")
    assert (codes.EDGE_IMAGE_UNPINNED, line) in errors_of(tmp_path, text)


@pytest.mark.parametrize(
    ("model", "settings", "code", "needle"),
    [
        ("      exposure: public\n", "{}", codes.EDGE_PUBLIC, "exposure: public"),
        (
            "      rollout: {strategy: canary, steps: [10, 50]}\n",
            "{}",
            codes.EDGE_UNSUPPORTED,
            "rollout:",
        ),
        ("", "{}", codes.EDGE_UNSUPPORTED, "artifact:"),
    ],
    ids=["public", "canary", "artifact-without-loader"],
)
def test_refusals_are_located(
    tmp_path: Path, model: str, settings: str, code: str, needle: str
) -> None:
    text = edge_spec(settings)
    if needle == "artifact:":
        text = text.replace(
            "    inputs: [features]\n",
            "    inputs: [features]\n    artifact: s3://acme-models/scorer/\n",
        )
    else:
        text = text.replace("      resources: {cpu: 500m", model + "      resources: {cpu: 500m", 1)
    assert (code, line_of(text, needle)) in errors_of(tmp_path, text)


def test_public_exposure_is_allowed_when_said(tmp_path: Path) -> None:
    text = edge_spec("{allowPublic: true}").replace(
        "      resources: {cpu: 500m", "      exposure: public\n      resources: {cpu: 500m", 1
    )
    assert codes.EDGE_PUBLIC not in {code for code, _ in errors_of_or_none(tmp_path, text)}


def errors_of_or_none(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    result = compile_text(tmp_path, text)
    found = Diagnostics()
    if result.ok:
        lower(result.systems["dev"], found)
    return [(d.code, d.location.line) for d in found]


def test_data_of_two_residencies_is_refused_at_the_inputs(tmp_path: Path) -> None:
    text = edge_spec().replace(
        "    derivedFrom: [events]\n",
        "    derivedFrom: [events]\n  us-events:\n    type: stream\n"
        "    uri: kafka://broker:9092/us\n    classification: internal\n    residency: us\n",
    )
    text = text.replace("    inputs: [features]\n", "    inputs: [features, us-events]\n")
    line = line_of(text, "inputs: [features, us-events]")
    assert (codes.EDGE_RESIDENCY, line) in errors_of(tmp_path, text)


# --- judges -----------------------------------------------------------------------------------


def _graph(tmp_path: Path) -> tuple[ir.System, ResourceGraph]:
    text = edge_spec(
        f"{{artifactLoader: {LOADER}, remoteWrite: {{host: prometheus.central.example}}}}",
        "    artifact: s3://acme-models/scorer/\n",
    )
    system = compiled(tmp_path, text)
    found = Diagnostics()
    graph = lower(system, found)
    assert graph is not None, [d.one_line() for d in found]
    return system, graph


def emitted(tmp_path: Path, kinds: tuple[str, ...]) -> Path:
    system, graph = _graph(tmp_path)
    out = tmp_path / "out"
    for name, body in emit_manifests(system, graph).items():
        if not name.endswith(".yaml"):
            continue
        kept = [d for d in yaml.safe_load_all(body) if d and d["kind"] in kinds]
        if kept:
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump_all(kept), encoding="utf-8")
    return out


BUILT_IN = (
    "DaemonSet",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Service",
    "NetworkPolicy",
)


@pytest.mark.judge
def test_edge_manifests_pass_kubernetes_validate(tmp_path: Path, kubernetes_validate: str) -> None:
    files = sorted(map(str, emitted(tmp_path, BUILT_IN).rglob("*.yaml")))
    done = subprocess.run(
        [kubernetes_validate, "--strict", *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "resource daemonset/scorer" in output


@pytest.mark.judge
def test_edge_manifests_pass_checkov(tmp_path: Path, checkov: str) -> None:
    out = emitted(tmp_path, ("DaemonSet", "NetworkPolicy", "ClusterRole", "ClusterRoleBinding"))
    reports = checkov_kubernetes(checkov, out)
    assert checkov_failed(reports) == []
    judged = {p["resource"].split(".")[0] for r in reports for p in r["results"]["passed_checks"]}
    assert "DaemonSet" in judged, judged


@pytest.mark.slow
def test_the_printed_program_registers_exactly_the_edge_graph(tmp_path: Path) -> None:
    require_pulumi_sdk("pulumi_kubernetes")
    from tests.pulumi_roundtrip import assert_round_trip, registrations_of

    system, graph = _graph(tmp_path)
    assert_round_trip(graph, registrations_of(graph, system, tmp_path / "program"))
