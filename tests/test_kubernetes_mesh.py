"""``security.encryption.inTransit: required`` on Kubernetes: enforced by the environment's mesh
or reported at its line, never silently ignored.

Istio's PeerAuthentication and the ServiceMonitor's TLS endpoint are checked against the
upstream CRD schemas (``tests/crds/``, copied from the Go modules named in each file), with
unknown fields refused as ``kubectl --validate=strict`` does; the built-in objects go through
``kubernetes-validate --strict`` and ``checkov``; the control-plane egress through the
NetworkPolicy evaluator of ``tests/test_kubernetes_network.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics, Severity
from mlplane.targets.kubernetes import codes, emit_manifests, lower
from tests.judges import checkov_failed, checkov_kubernetes
from tests.specs import BASE, compile_text
from tests.test_kubernetes_network import (
    Pod,
    cluster_of,
    compiled,
    lowered,
    serving_pod,
    training_pod,
)

CRDS = Path(__file__).resolve().parent / "crds"
IN_TRANSIT = "  encryption: {atRest: required, inTransit: required}\n"
TRAINING = (
    '    training: {schedule: "0 3 * * *", image: ghcr.io/acme/train@sha256:' + "cd" * 32 + "}\n"
)
PUBLIC = (
    "      exposure: public\n"
    "      ingress: {host: scoring.acme.example, tls: {clusterIssuer: letsencrypt}}\n"
)
RESOURCES = "      resources: {cpu: 500m, memory: 1Gi}\n"


def spec(
    dev: str | None = None,
    prod: str | None = None,
    *,
    in_transit: str = "required",
    public: bool = False,
) -> str:
    """BASE with a trained, optionally public scorer, inTransit written, and each
    environment's kubernetes.mesh (None: not written)."""
    text = BASE.replace("    inputs: [features]\n", "    inputs: [features]\n" + TRAINING)
    if public:
        text = text.replace(RESOURCES, RESOURCES + PUBLIC)
    for env, mesh in (("dev", dev), ("prod", prod)):
        old = f"  {env}:\n    target: kubernetes\n"
        if mesh is not None:
            text = text.replace(old, old + f"    kubernetes: {{mesh: {mesh}}}\n")
    allow = "    allow: [{from: internet, to: models.scorer, ports: [8080]}]\n" if public else ""
    security = IN_TRANSIT.replace("required}", f"{in_transit}}}")
    return text + "security:\n" + security + "  network:\n    defaultDeny: true\n" + allow


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def diagnostics_of(tmp_path: Path, text: str, env: str) -> tuple[bool, list[Diagnostic]]:
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    found = Diagnostics()
    graph = lower(result.systems[env], found)
    return graph is not None, [d for d in found if d.code == codes.IN_TRANSIT_NOT_ENFORCED]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


# --- not enforced: said at the inTransit line --------------------------------------------------


def test_without_a_mesh_in_transit_is_reported_at_its_line(tmp_path: Path) -> None:
    text = spec()
    ok, (warning,) = diagnostics_of(tmp_path, text, "dev")
    assert ok and warning.severity is Severity.WARNING
    assert warning.location is not None
    assert warning.location.line == line_of(text, "inTransit: required")
    assert "plain HTTP" in warning.message
    assert warning.hint is not None and "mesh" in warning.hint
    # production too: the servers are built, and the plain traffic is said at the same line
    ok, (warning,) = diagnostics_of(tmp_path, text, "prod")
    assert ok and warning.severity is Severity.WARNING


def test_mesh_none_acknowledges_plain_traffic_outside_production_only(tmp_path: Path) -> None:
    text = spec(dev="none", prod="none")
    assert diagnostics_of(tmp_path, text, "dev") == (True, [])
    ok, (error,) = diagnostics_of(tmp_path, text, "prod")
    assert not ok and error.severity is Severity.ERROR
    assert "none" in error.message and "production" in error.message
    assert error.location is not None
    assert error.location.line == line_of(text, "inTransit: required")


def test_optional_in_transit_needs_no_mesh(tmp_path: Path) -> None:
    assert diagnostics_of(tmp_path, spec(in_transit="optional"), "prod") == (True, [])


@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_a_mesh_enforces_it(tmp_path: Path, mesh: str) -> None:
    assert diagnostics_of(tmp_path, spec(prod=mesh), "prod") == (True, [])


# --- istio -----------------------------------------------------------------------------------


def unknown_fields(document: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the schema does not declare (a structural schema prunes them; a strict client
    refuses them)."""
    if isinstance(document, dict) and "properties" in schema:
        found = []
        for key, value in document.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(value, schema["properties"][key], f"{path}.{key}")
        return found
    if isinstance(document, dict) and isinstance(schema.get("additionalProperties"), dict):
        extra = schema["additionalProperties"]
        return [f for k, v in document.items() for f in unknown_fields(v, extra, f"{path}.{k}")]
    if isinstance(document, list) and "items" in schema:
        return [f for i, v in enumerate(document) for f in unknown_fields(v, schema["items"])]
    return []


def test_unknown_fields_finds_what_a_strict_client_refuses() -> None:
    schema = crd_schema("istio-peerauthentication-v1.json")["properties"]["spec"]
    assert unknown_fields({"mtls": {"mode": "STRICT"}}, schema) == []
    assert unknown_fields({"mtls": {"mode": "STRICT", "strict": True}}, schema) == [".mtls.strict"]
    assert unknown_fields({"portLevelMtls": {"8080": {"mod": "STRICT"}}}, schema) == [
        ".portLevelMtls.8080.mod"
    ]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"mtls": {"mode": "strict"}}, schema)


def crd_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CRDS / name).read_text(encoding="utf-8"))
    return schema


def test_istio_gets_strict_mutual_tls_valid_for_the_upstream_crd(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, spec(prod="istio"), "prod"))
    (namespace,) = of_kind(objects, "Namespace")
    assert namespace["metadata"]["labels"]["istio-injection"] == "enabled"
    (peer,) = of_kind(objects, "PeerAuthentication")
    assert peer["apiVersion"] == "security.istio.io/v1"
    assert peer["metadata"]["namespace"] == "demo-prod"
    assert peer["metadata"]["name"] == "default"  # the namespace-wide policy
    assert "selector" not in peer["spec"]  # every workload of the namespace
    assert peer["spec"]["mtls"]["mode"] == "STRICT"
    schema = crd_schema("istio-peerauthentication-v1.json")
    jsonschema.validate(peer, schema)
    # every CRD object may carry apiVersion, kind and metadata; the rest is the CRD's
    assert set(peer) == {"apiVersion", "kind", "metadata", "spec"}
    assert unknown_fields(peer["spec"], schema["properties"]["spec"], ".spec") == []


def test_prometheus_scrapes_istio_pods_over_mutual_tls(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, spec(prod="istio"), "prod"))
    (monitor,) = of_kind(objects, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    tls = endpoint["tlsConfig"]
    assert {tls["caFile"], tls["certFile"], tls["keyFile"]} == {
        "/etc/prom-certs/root-cert.pem",
        "/etc/prom-certs/cert-chain.pem",
        "/etc/prom-certs/key.pem",
    }
    schema = crd_schema("servicemonitor-endpoint.json")
    jsonschema.validate(endpoint, schema)
    assert unknown_fields(endpoint, schema) == []
    # without a mesh the endpoint stays plain
    objects, _ = lowered(compiled(tmp_path, spec(dev="none"), "dev"))
    (monitor,) = of_kind(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["scheme"] == "http"
    assert "tlsConfig" not in monitor["spec"]["endpoints"][0]


def test_istio_sidecars_reach_istiod_only(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, spec(prod="istio"), "prod"))
    cluster = cluster_of(objects)
    istiod = Pod("istio-system", {"app": "istiod"})
    for pod in (serving_pod("scorer", "demo-prod"), training_pod("scorer", "demo-prod")):
        assert cluster.allowed(pod, istiod, 15012)
        assert not cluster.allowed(pod, istiod, 15010)  # plaintext XDS stays closed
        assert not cluster.allowed(pod, Pod("linkerd", {}), 8086)
    # without a mesh nothing is opened
    objects, _ = lowered(compiled(tmp_path, spec(dev="none"), "dev"))
    assert not cluster_of(objects).allowed(serving_pod("scorer"), istiod, 15012)


def test_training_jobs_complete_under_a_mesh(tmp_path: Path) -> None:
    for mesh, annotation in (
        ("istio", "sidecar.istio.io/native-sidecar"),
        ("linkerd", "config.beta.linkerd.io/proxy-enable-native-sidecar"),
    ):
        objects, _ = lowered(compiled(tmp_path, spec(prod=mesh), "prod"))
        (job,) = of_kind(objects, "CronJob")
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
        assert pod["annotations"] == {annotation: "true"}


def test_ingress_nginx_sends_to_the_service_under_istio(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, spec(prod="istio", public=True), "prod"))
    (ingress,) = of_kind(objects, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/service-upstream"] == "true"
    assert (
        annotations["nginx.ingress.kubernetes.io/upstream-vhost"]
        == "scorer.demo-prod.svc.cluster.local"
    )
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"


# --- linkerd ---------------------------------------------------------------------------------


def test_linkerd_injects_and_refuses_unauthenticated_clients(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, spec(prod="linkerd"), "prod"))
    (namespace,) = of_kind(objects, "Namespace")
    assert namespace["metadata"]["annotations"] == {
        "linkerd.io/inject": "enabled",
        "config.linkerd.io/default-inbound-policy": "all-authenticated",
    }
    assert "istio-injection" not in namespace["metadata"]["labels"]
    assert not of_kind(objects, "PeerAuthentication")
    cluster = cluster_of(objects)
    scorer = serving_pod("scorer", "demo-prod")
    for port in (8080, 8086, 8090):
        assert cluster.allowed(scorer, Pod("linkerd", {}), port)
    assert not cluster.allowed(scorer, Pod("linkerd", {}), 9995)
    assert not cluster.allowed(scorer, Pod("istio-system", {}), 15012)


# --- judges ----------------------------------------------------------------------------------


def write_manifests(tmp_path: Path, text: str) -> Path:
    system = compiled(tmp_path, text, "prod")
    graph = lower(system, Diagnostics())
    assert graph is not None
    root = tmp_path / "out"
    for name, body in emit_manifests(system, graph).items():
        if name.endswith(".yaml"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(body, encoding="utf-8")
    return root


@pytest.mark.judge
@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_mesh_objects_pass_kubernetes_validate(
    tmp_path: Path, kubernetes_validate: str, mesh: str
) -> None:
    root = write_manifests(tmp_path, spec(prod=mesh, public=True))
    kept = tmp_path / "builtin.yaml"
    documents = [
        d
        for path in sorted(root.rglob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if d and d["kind"] in ("Namespace", "NetworkPolicy", "CronJob", "Ingress")
    ]
    kept.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    done = subprocess.run(
        [kubernetes_validate, "--strict", str(kept)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resource networkpolicy/mlplane-allow-mesh-control-plane" in done.stdout + done.stderr


@pytest.mark.judge
def test_mesh_manifests_pass_checkov(tmp_path: Path, checkov: str) -> None:
    root = write_manifests(tmp_path, spec(prod="istio", public=True))
    reports = checkov_kubernetes(checkov, root)
    assert checkov_failed(reports) == []
    assert sum(r["summary"]["parsing_errors"] for r in reports) == 0
