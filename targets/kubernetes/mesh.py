"""``security.encryption.inTransit`` on Kubernetes: a service mesh encrypts pod-to-pod traffic.

The model servers speak plain HTTP; what encrypts the traffic between pods is the mesh the
environment names (``environments.<env>.kubernetes.mesh``), installed on the cluster:

* ``istio``: the namespace is labelled ``istio-injection: enabled`` and gets the
  PeerAuthentication ``default`` (``security.istio.io/v1``) with ``mtls.mode: STRICT``, so
  every sidecar refuses plaintext. Prometheus, outside the mesh, scrapes with Istio's
  certificates (the ServiceMonitor's ``tlsConfig`` reads them from :data:`ISTIO_CERTS`, where
  a sidecar in the Prometheus pod writes them with ``OUTPUT_CERTS``).
* ``linkerd``: the namespace is annotated ``linkerd.io/inject: enabled`` and
  ``config.linkerd.io/default-inbound-policy: all-authenticated``, so every proxy refuses
  clients without a mesh identity (Prometheus and the ingress controller must be meshed).

Under default deny, every pod may reach the mesh's control plane (certificates and
configuration): istiod on 15012, or Linkerd's identity (8080), destination (8086) and policy
(8090) controllers. Training pods get the mesh's native-sidecar annotation, so a finished
training Job completes instead of waiting forever on its proxy.

Without a mesh, ``inTransit: required`` is not enforced on this target: said at its line
(``kubernetes-in-transit-not-enforced``) as a warning, unless the environment says
``mesh: none`` (knowingly unencrypted), which a production environment may not say (an
error: it contradicts ``inTransit: required``).
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.targets.kubernetes import codes, names, network
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.settings import kubernetes_of

ISTIO = "istio"
LINKERD = "linkerd"
NONE = "none"

PEER_AUTHENTICATION_API = "security.istio.io/v1"
ISTIO_INJECTION_LABEL = "istio-injection"
ISTIO_NAMESPACE = "istio-system"
ISTIOD_PORTS = (15012,)
"""istiod's XDS and certificate port (TLS), which every sidecar dials."""
ISTIO_CERTS = "/etc/prom-certs"
"""Where the Prometheus pod's sidecar writes Istio's certificates (``OUTPUT_CERTS``)."""
ISTIO_NATIVE_SIDECAR = "sidecar.istio.io/native-sidecar"

LINKERD_INJECT = "linkerd.io/inject"
LINKERD_INBOUND_POLICY = "config.linkerd.io/default-inbound-policy"
LINKERD_NAMESPACE = "linkerd"
LINKERD_PORTS = (8080, 8086, 8090)
"""Linkerd's identity, destination and policy controllers, which every proxy dials."""
LINKERD_NATIVE_SIDECAR = "config.beta.linkerd.io/proxy-enable-native-sidecar"

CONTROL_PLANE_POLICY = "mlplane-allow-mesh-control-plane"
IN_TRANSIT_PATH: SpecPath = ("security", "encryption", "inTransit")


def mesh_of(lowering: Lowering) -> str | None:
    return kubernetes_of(lowering.system.environment.target_settings).mesh


def encrypts(lowering: Lowering) -> bool:
    return mesh_of(lowering) in (ISTIO, LINKERD)


def namespace_labels(lowering: Lowering) -> dict[str, str]:
    return {ISTIO_INJECTION_LABEL: "enabled"} if mesh_of(lowering) == ISTIO else {}


def namespace_annotations(lowering: Lowering) -> dict[str, str]:
    if mesh_of(lowering) != LINKERD:
        return {}
    return {LINKERD_INJECT: "enabled", LINKERD_INBOUND_POLICY: "all-authenticated"}


def job_pod_annotations(lowering: Lowering) -> dict[str, str]:
    """A Job's proxy as a native sidecar (an init container that Kubernetes stops when the
    main container ends), so the Job completes."""
    mesh = mesh_of(lowering)
    if mesh == ISTIO:
        return {ISTIO_NATIVE_SIDECAR: "true"}
    if mesh == LINKERD:
        return {LINKERD_NATIVE_SIDECAR: "true"}
    return {}


def scrape_tls(lowering: Lowering) -> dict[str, Any] | None:
    """The ServiceMonitor endpoint's ``scheme`` and ``tlsConfig`` under Istio STRICT mTLS
    (None: plain HTTP, which a meshed Prometheus's own proxy upgrades under Linkerd)."""
    if mesh_of(lowering) != ISTIO:
        return None
    return {
        "scheme": "https",
        "tlsConfig": {
            "caFile": f"{ISTIO_CERTS}/root-cert.pem",
            "certFile": f"{ISTIO_CERTS}/cert-chain.pem",
            "keyFile": f"{ISTIO_CERTS}/key.pem",
            # a workload certificate names a SPIFFE identity, never the pod's address
            "insecureSkipVerify": True,
        },
    }


def lower_mesh(lowering: Lowering, parent: str) -> None:
    """Istio's STRICT PeerAuthentication, and under default deny the egress of every pod to
    the mesh's control plane."""
    mesh = mesh_of(lowering)
    if mesh not in (ISTIO, LINKERD):
        return
    system = lowering.system
    path: SpecPath = ("environments", system.environment.name, "kubernetes", "mesh")
    origin = lowering.origin(path)
    labels = names.system_labels(system)
    if mesh == ISTIO:
        body = {
            "apiVersion": PEER_AUTHENTICATION_API,
            "kind": "PeerAuthentication",
            "metadata": lowering.metadata("default", labels),
            "spec": {"mtls": {"mode": "STRICT"}},
        }
        lowering.add(names.logical(system.name, "peerauthentication"), body, origin, parent)
    if not system.security.default_deny:
        return
    namespace, ports = (
        (ISTIO_NAMESPACE, ISTIOD_PORTS) if mesh == ISTIO else (LINKERD_NAMESPACE, LINKERD_PORTS)
    )
    policy = {
        "apiVersion": network.NETWORKING_API,
        "kind": "NetworkPolicy",
        "metadata": lowering.metadata(CONTROL_PLANE_POLICY, labels),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [network.rule("egress", [network.namespace_peer(namespace)], ports)],
        },
    }
    lowering.add(names.logical(system.name, "mesh-egress-networkpolicy"), policy, origin, parent)


def check_in_transit(lowering: Lowering) -> None:
    """``inTransit: required`` with nothing to enforce it is said at its line: a warning, or an
    error when a production environment says ``mesh: none``."""
    system = lowering.system
    if system.security.encryption_in_transit != "required" or encrypts(lowering):
        return
    mesh = mesh_of(lowering)
    production = system.environment.production
    if mesh == NONE and not production:
        return  # said knowingly: kubernetes.mesh: none
    env = system.environment.name
    message = (
        "security.encryption.inTransit is required, but nothing encrypts the traffic between "
        f"pods in environment {env!r}: the model servers speak plain HTTP"
    )
    refused = mesh == NONE
    if refused:
        message += f", and kubernetes.mesh is none in production environment {env!r}"
    hint = (
        f"set environments.{env}.kubernetes.mesh: istio or linkerd (installed on the cluster)"
        + ("" if production else ", or mesh: none to accept plain traffic in this environment")
    )
    location = lowering.location(IN_TRANSIT_PATH)
    if refused:
        lowering.diagnostics.error(
            codes.IN_TRANSIT_NOT_ENFORCED, message, location, IN_TRANSIT_PATH, hint
        )
    else:
        lowering.diagnostics.warning(
            codes.IN_TRANSIT_NOT_ENFORCED, message, location, IN_TRANSIT_PATH, hint
        )
