"""Who reaches a model from outside: the Ingress of a public model (host, path, class, TLS),
the refusals at the spec line when it would answer for any host or in plain HTTP, the path
cert-manager's HTTP-01 solver needs under default deny, and the monitoring namespace that may
scrape the models.

The Ingress is judged by ``kubernetes-validate --strict`` and ``checkov``; the policies by the
NetworkPolicy evaluator of ``tests/test_kubernetes_network.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics, Severity
from mlplane.targets.kubernetes import codes, emit_manifests, lower
from tests.judges import checkov_failed, checkov_kubernetes
from tests.specs import BASE, codes_of, compile_text
from tests.test_kubernetes_network import (
    Pod,
    cluster_of,
    compiled,
    lowered,
    serving_pod,
    with_allows,
    with_environment_settings,
)

INTERNET = "{from: internet, to: models.scorer, ports: [8080]}"
RESOURCES = "      resources: {cpu: 500m, memory: 1Gi}\n"


def public(ingress: str | None, *, in_transit: str = "required") -> str:
    """BASE with the scorer exposed publicly (admitted from the internet), with ``ingress``."""
    block = RESOURCES + "      exposure: public\n"
    if ingress is not None:
        block += f"      ingress: {ingress}\n"
    text = with_allows(BASE.replace(RESOURCES, block), INTERNET)
    # prod's pods talk through Linkerd (inTransit enforced; it leaves the Ingress alone)
    prod = "  prod:\n    target: kubernetes\n"
    text = text.replace(prod, prod + "    kubernetes: {mesh: linkerd}\n")
    return text + f"  encryption: {{atRest: required, inTransit: {in_transit}}}\n"


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def lowered_with(system: ir.System) -> tuple[bool, list[Diagnostic]]:
    found = Diagnostics()
    graph = lower(system, found)
    return graph is not None, list(found)


# --- the Ingress ----------------------------------------------------------------------------

ISSUED = "{host: scoring.acme.example, path: /v1, className: traefik, tls: {clusterIssuer: le}}"


def test_a_public_model_gets_host_class_path_and_tls(tmp_path: Path) -> None:
    objects, _ = lowered(compiled(tmp_path, public(ISSUED), "prod"))
    (ingress,) = of_kind(objects, "Ingress")
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "le"}
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "traefik"
    (rule,) = spec["rules"]
    assert rule["host"] == "scoring.acme.example"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/v1" and path["pathType"] == "Prefix"
    assert path["backend"] == {"service": {"name": "scorer", "port": {"name": "http"}}}
    # the certificate cert-manager issues covers the host the rule serves
    assert spec["tls"] == [{"hosts": ["scoring.acme.example"], "secretName": "scorer-tls"}]


def test_an_existing_certificate_is_referenced_and_nothing_is_issued(tmp_path: Path) -> None:
    text = public("{host: scoring.acme.example, tls: {secretName: scoring-cert}}")
    objects, _ = lowered(compiled(tmp_path, text, "prod"))
    (ingress,) = of_kind(objects, "Ingress")
    assert "annotations" not in ingress["metadata"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/"
    assert ingress["spec"]["tls"][0]["secretName"] == "scoring-cert"
    names = {o["metadata"]["name"] for o in of_kind(objects, "NetworkPolicy")}
    assert "mlplane-allow-acme-http01-solver" not in names


def test_an_issuer_in_the_namespace_is_annotated(tmp_path: Path) -> None:
    text = public("{host: scoring.acme.example, tls: {issuer: acme}}")
    objects, _ = lowered(compiled(tmp_path, text, "prod"))
    (ingress,) = of_kind(objects, "Ingress")
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/issuer": "acme"}


# --- refusals, at the line at fault ---------------------------------------------------------


def test_a_public_model_without_a_host_is_refused_at_its_exposure(tmp_path: Path) -> None:
    text = public(None)
    result = compile_text(tmp_path, text)
    for system in result.systems.values():
        ok, found = lowered_with(system)
        assert not ok
        (error,) = [d for d in found if d.code == codes.INGRESS_HOST_MISSING]
        assert error.severity is Severity.ERROR
        assert error.location is not None
        assert error.location.line == line_of(text, "exposure: public")
        assert "host" in error.message and error.hint is not None


def test_plain_http_is_refused_in_production(tmp_path: Path) -> None:
    text = public("{host: scoring.acme.example}", in_transit="optional")
    result = compile_text(tmp_path, text)
    ok, found = lowered_with(result.systems["prod"])
    assert not ok
    (error,) = [d for d in found if d.code == codes.INGRESS_TLS_MISSING]
    assert error.severity is Severity.ERROR
    assert error.location is not None and error.location.line == line_of(text, "ingress:")
    assert "production" in error.message
    # outside production, with inTransit optional, it is said but built
    ok, found = lowered_with(result.systems["dev"])
    assert ok
    (warning,) = [d for d in found if d.code == codes.INGRESS_TLS_MISSING]
    assert warning.severity is Severity.WARNING


def test_plain_http_is_refused_wherever_in_transit_encryption_is_required(
    tmp_path: Path,
) -> None:
    text = public("{host: scoring.acme.example}", in_transit="required")
    result = compile_text(tmp_path, text)
    ok, found = lowered_with(result.systems["dev"])
    assert not ok
    (error,) = [d for d in found if d.code == codes.INGRESS_TLS_MISSING]
    assert "inTransit" in error.message


@pytest.mark.parametrize(
    ("ingress", "code", "needle"),
    [
        ("{host: a.example, tls: {issuer: x, secretName: y}}", "contradiction", "exactly one"),
        ("{host: a.example, tls: {}}", "missing-field", "exactly one"),
        ("{host: 10.0.0.1}", "invalid-format", "IP address"),
        ("{host: a.example, port: 80}", "unknown-field", "port"),
    ],
)
def test_the_schema_refuses_an_ingress_that_cannot_work(
    tmp_path: Path, ingress: str, code: str, needle: str
) -> None:
    result = compile_text(tmp_path, public(ingress))
    assert code in codes_of(result)
    assert any(needle in d.message for d in result.sorted_diagnostics() if d.code == code)


def test_an_ingress_on_an_internal_model_is_a_contradiction(tmp_path: Path) -> None:
    text = public("{host: a.example, tls: {issuer: x}}").replace(
        "exposure: public", "exposure: internal"
    )
    result = compile_text(tmp_path, text)
    assert "contradiction" in codes_of(result)


# --- cert-manager's HTTP-01 solver and Prometheus get through default deny -------------------

SOLVER = {"acme.cert-manager.io/http01-solver": "true"}


def test_the_ingress_controller_reaches_the_acme_solver_pods_only(tmp_path: Path) -> None:
    text = with_environment_settings(public(ISSUED), "{ingressNamespace: traefik}")
    objects, _ = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    solver = Pod("demo-dev", SOLVER)
    assert cluster.allowed(Pod("traefik", {}), solver, 8089)
    assert not cluster.allowed(Pod("traefik", {}), solver, 8080)
    assert not cluster.allowed(Pod("other", {}), solver, 8089)
    # the solver policy admits nothing else to the models
    assert not cluster.allowed(Pod("traefik", {}), serving_pod("scorer"), 8089)
    assert cluster.allowed(Pod("traefik", {}), serving_pod("scorer"), 8080)


def test_prometheus_scrapes_from_the_configured_monitoring_namespace(tmp_path: Path) -> None:
    text = with_environment_settings(BASE, "{monitoring: {monitoringNamespace: observability}}")
    objects, _ = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    scorer = serving_pod("scorer")
    assert cluster.allowed(Pod("observability", {}), scorer, 8080)
    assert not cluster.allowed(Pod("monitoring", {}), scorer, 8080)
    # unset, it is the kube-prometheus default
    objects, _ = lowered(compiled(tmp_path, BASE))
    assert cluster_of(objects).allowed(Pod("monitoring", {}), scorer, 8080)


def test_rollout_analysis_asks_the_prometheus_of_the_monitoring_namespace(
    tmp_path: Path,
) -> None:
    canary = RESOURCES + "      rollout: {strategy: canary, steps: [50]}\n"
    text = with_environment_settings(
        BASE.replace(RESOURCES, canary), "{monitoring: {monitoringNamespace: observability}}"
    )
    objects, _ = lowered(compiled(tmp_path, text))
    (template,) = of_kind(objects, "AnalysisTemplate")
    addresses = {m["provider"]["prometheus"]["address"] for m in template["spec"]["metrics"]}
    assert addresses == {"http://prometheus-operated.observability.svc:9090"}


# --- judges ---------------------------------------------------------------------------------


def emitted(tmp_path: Path, text: str) -> list[Path]:
    system = compiled(tmp_path, text, "prod")
    found = Diagnostics()
    graph = lower(system, found)
    assert graph is not None
    files = []
    for name, body in emit_manifests(system, graph).items():
        if not name.endswith(".yaml"):
            continue
        documents = [d for d in yaml.safe_load_all(body) if d]
        kept = [d for d in documents if d["kind"] in ("Ingress", "NetworkPolicy")]
        if kept:
            path = tmp_path / "out" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump_all(kept), encoding="utf-8")
            files.append(path)
    return files


@pytest.mark.judge
def test_the_ingress_and_solver_policy_pass_kubernetes_validate(
    tmp_path: Path, kubernetes_validate: str
) -> None:
    files = emitted(tmp_path, public(ISSUED))
    done = subprocess.run(
        [kubernetes_validate, "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "resource ingress/scorer" in output
    assert "resource networkpolicy/mlplane-allow-acme-http01-solver" in output


@pytest.mark.judge
def test_the_ingress_passes_checkov(tmp_path: Path, checkov: str) -> None:
    emitted(tmp_path, public(ISSUED))
    out = tmp_path / "out"
    reports = checkov_kubernetes(checkov, out)
    assert checkov_failed(reports) == []
    ingress_checks = [
        p for r in reports for p in r["results"]["passed_checks"] if "Ingress" in p["resource"]
    ]
    assert ingress_checks, "checkov judged no Ingress"
