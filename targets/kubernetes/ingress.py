"""A public model's Ingress: host, path, class and TLS from ``serving.ingress``.

The Ingress routes ``https://<host><path>`` (a ``Prefix`` path, passed on unchanged) to the
model's Service through the controller of ``ingressClassName``. TLS terminates at the
controller with the certificate of ``tls``: an existing Secret (``secretName``), or a Secret
``<model>-tls`` that cert-manager's ingress-shim issues from the ``cert-manager.io/issuer`` or
``cert-manager.io/cluster-issuer`` annotation. When an issuer solves ACME HTTP-01 challenges,
its solver pods run in this namespace behind the default-deny policy, so the namespace gets a
policy letting the ingress controller reach them (port 8089, the solver's listen port).

Refused at the spec line: a public model without a host (an Ingress without one answers for
every name the controller serves), and a public model without TLS in a production environment
or when ``security.encryption.inTransit`` is required (a warning elsewhere).
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.targets.kubernetes import codes, mesh, names, network
from mlplane.targets.kubernetes.context import Lowering

INGRESS_API = "networking.k8s.io/v1"
ISSUER_ANNOTATION = "cert-manager.io/issuer"
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
SOLVER_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
SOLVER_PORT = 8089
"""cert-manager's ACME HTTP-01 solver pods: their label and listen port."""
SOLVER_POLICY = "mlplane-allow-acme-http01-solver"
NGINX_CLASS = "nginx"


def public_ingress(lowering: Lowering, model: ir.Model, spec: ir.Ingress) -> dict[str, Any]:
    """The Ingress of a public model (``spec`` checked by :func:`check_ingresses`)."""
    backend = {"service": {"name": model.name, "port": {"name": names.CONTAINER_PORT_NAME}}}
    path = {"path": spec.path, "pathType": "Prefix", "backend": backend}
    body: dict[str, Any] = {
        "ingressClassName": spec.class_name,
        "rules": [{"host": spec.host, "http": {"paths": [path]}}],
    }
    metadata = lowering.metadata(
        model.name, names.workload_labels(lowering.system, model, names.SERVING)
    )
    annotations = mesh_annotations(lowering, model, spec)
    if spec.tls is not None:
        body["tls"] = [{"hosts": [spec.host], "secretName": secret_name(model, spec.tls)}]
        annotations.update(issuer_annotations(spec.tls))
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": INGRESS_API, "kind": "Ingress", "metadata": metadata, "spec": body}


def mesh_annotations(lowering: Lowering, model: ir.Model, spec: ir.Ingress) -> dict[str, str]:
    """Under Istio STRICT mTLS, ingress-nginx (class ``nginx``, itself in the mesh) must send
    to the Service, not to pod addresses, with the Service's host name, so its sidecar
    recognises the destination and speaks mutual TLS to it."""
    if mesh.mesh_of(lowering) != mesh.ISTIO or spec.class_name != NGINX_CLASS:
        return {}
    host = f"{model.name}.{lowering.namespace}.svc.cluster.local"
    return {
        "nginx.ingress.kubernetes.io/service-upstream": "true",
        "nginx.ingress.kubernetes.io/upstream-vhost": host,
    }


def secret_name(model: ir.Model, tls: ir.IngressTls) -> str:
    """The referenced Secret, or ``<model>-tls``, which cert-manager writes."""
    return tls.secret_name if tls.secret_name is not None else names.tls_secret(model.name)


def issuer_annotations(tls: ir.IngressTls) -> dict[str, str]:
    if tls.issuer is not None:
        return {ISSUER_ANNOTATION: tls.issuer}
    if tls.cluster_issuer is not None:
        return {CLUSTER_ISSUER_ANNOTATION: tls.cluster_issuer}
    return {}


def issues_certificates(system: ir.System) -> bool:
    """Whether a public model's certificate comes from a cert-manager issuer."""
    return any(
        model.serving.exposure == "public"
        and model.serving.ingress is not None
        and model.serving.ingress.tls is not None
        and model.serving.ingress.tls.secret_name is None
        for model in system.models.values()
    )


def lower_solver_policy(lowering: Lowering, parent: str) -> None:
    """Under default deny, the ingress controller may reach cert-manager's HTTP-01 solver
    pods, so an ACME issuer can prove the host (DNS-01 issuers never start them)."""
    system = lowering.system
    if not (system.security.default_deny and issues_certificates(system)):
        return
    body = {
        "apiVersion": network.NETWORKING_API,
        "kind": "NetworkPolicy",
        "metadata": lowering.metadata(SOLVER_POLICY, names.system_labels(system)),
        "spec": {
            "podSelector": {"matchLabels": dict(SOLVER_LABELS)},
            "policyTypes": ["Ingress"],
            "ingress": [
                network.rule("ingress", network.internet_peers(lowering, "ingress"), (SOLVER_PORT,))
            ],
        },
    }
    origin = lowering.origin(("security", "network", "defaultDeny"))
    lowering.add(names.logical(system.name, "acme-solver-networkpolicy"), body, origin, parent)


def check_ingresses(lowering: Lowering) -> None:
    for model in lowering.system.models.values():
        if model.serving.exposure == "public":
            _check_ingress(lowering, model)


def _check_ingress(lowering: Lowering, model: ir.Model) -> None:
    system = lowering.system
    base: SpecPath = ("models", model.name, "serving")
    spec = model.serving.ingress
    if spec is None:
        path: SpecPath = (*base, "exposure")
        lowering.diagnostics.error(
            codes.INGRESS_HOST_MISSING,
            f"model {model.name!r} is exposed publicly but names no host: an Ingress without "
            "a host answers for every name its controller serves, and no certificate can "
            "match it",
            lowering.location(path),
            path,
            hint="add serving.ingress: {host: NAME, tls: {clusterIssuer: ISSUER}} "
            "(or tls: {secretName: SECRET} for an existing certificate)",
        )
        return
    if spec.tls is not None:
        return
    path = (*base, "ingress")
    required = system.environment.production or system.security.encryption_in_transit == (
        "required"
    )
    why = (
        f"environment {system.environment.name!r} is production"
        if system.environment.production
        else "security.encryption.inTransit is required"
    )
    message = f"the Ingress of model {model.name!r} serves {spec.host!r} in plain HTTP"
    hint = (
        "add tls: {clusterIssuer: ISSUER} (cert-manager issues the certificate) or "
        "tls: {secretName: SECRET} (an existing kubernetes.io/tls Secret)"
    )
    if required:
        lowering.diagnostics.error(
            codes.INGRESS_TLS_MISSING, f"{message}, and {why}", lowering.location(path), path, hint
        )
    else:
        lowering.diagnostics.warning(
            codes.INGRESS_TLS_MISSING, message, lowering.location(path), path, hint
        )
