"""Who can reach whom under the generated NetworkPolicies.

The policies are judged by a small evaluator written from the Kubernetes NetworkPolicy
semantics (https://kubernetes.io/docs/concepts/services-networking/network-policies/): a pod
selected by a policy of a direction is isolated in that direction and admits only what one of
those policies' rules admits (the union); a rule without ``from``/``to`` admits every peer, one
without ``ports`` every port; a peer with only ``podSelector`` selects pods of the policy's own
namespace, with only ``namespaceSelector`` every pod of the selected namespaces, with both the
selected pods of the selected namespaces; an ``ipBlock`` selects addresses in its CIDR and not
in its ``except`` ranges. A connection is allowed when the source's egress and the
destination's ingress both allow it. Namespaces carry ``kubernetes.io/metadata.name``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics
from mlplane.targets.kubernetes import codes, lower
from tests.specs import BASE, compile_text

NAMESPACE_LABEL = "kubernetes.io/metadata.name"


# --- the evaluator --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]
    ip: str = "10.244.0.10"


@dataclass(frozen=True)
class External:
    ip: str


Peer = Pod | External


@dataclass
class Cluster:
    policies: list[dict[str, Any]]
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def labels_of(self, namespace: str) -> dict[str, str]:
        return {**self.namespace_labels.get(namespace, {}), NAMESPACE_LABEL: namespace}

    def allowed(self, source: Peer, destination: Peer, port: int, protocol: str = "TCP") -> bool:
        return self._side(source, destination, port, protocol, "Egress") and self._side(
            destination, source, port, protocol, "Ingress"
        )

    def _side(self, pod: Peer, other: Peer, port: int, protocol: str, direction: str) -> bool:
        if not isinstance(pod, Pod):
            return True  # outside the cluster: no policy applies to it
        selecting = [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == pod.namespace
            and direction in p["spec"].get("policyTypes", ["Ingress"])
            and _selects(p["spec"]["podSelector"], pod.labels)
        ]
        if not selecting:
            return True  # not isolated in this direction
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key) or []
                ports = rule.get("ports") or []
                peer_ok = not peers or any(
                    self._peer_matches(peer, other, policy["metadata"]["namespace"])
                    for peer in peers
                )
                port_ok = not ports or any(_port_matches(p, port, protocol) for p in ports)
                if peer_ok and port_ok:
                    return True
        return False

    def _peer_matches(self, peer: dict[str, Any], other: Peer, own_namespace: str) -> bool:
        if "ipBlock" in peer:
            address = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            if address not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
        if not isinstance(other, Pod):
            return False
        if "namespaceSelector" in peer:
            if not _selects(peer["namespaceSelector"], self.labels_of(other.namespace)):
                return False
        elif other.namespace != own_namespace:
            return False
        return "podSelector" not in peer or _selects(peer["podSelector"], other.labels)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _port_matches(entry: dict[str, Any], port: int, protocol: str) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    if "port" not in entry:
        return True
    end = entry.get("endPort", entry["port"])
    return bool(entry["port"] <= port <= end)


def test_the_evaluator_follows_the_documented_semantics() -> None:
    deny = {"metadata": {"namespace": "a"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    web = Pod("a", {"app": "web"})
    other = Pod("b", {"app": "x"})
    assert Cluster([]).allowed(other, web, 80)
    assert not Cluster([deny]).allowed(other, web, 80)
    allow = {
        "metadata": {"namespace": "a"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "b"}}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                }
            ],
        },
    }
    cluster = Cluster([deny, allow])
    assert cluster.allowed(other, web, 80)
    assert not cluster.allowed(other, web, 81)
    assert not cluster.allowed(Pod("c", {}), web, 80)
    assert not cluster.allowed(External("203.0.113.9"), web, 80)


# --- systems under test ---------------------------------------------------------------------

DEV_NAMESPACE = "demo-dev"


def compiled(tmp_path: Path, text: str, env: str = "dev") -> ir.System:
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    return result.systems[env]


def lowered(system: ir.System) -> tuple[list[dict[str, Any]], list[Diagnostic]]:
    diagnostics = Diagnostics()
    graph = lower(system, diagnostics)
    assert graph is not None, [d.one_line() for d in diagnostics]
    return [dict(r.inputs) for r in graph if not r.component], list(diagnostics)


def cluster_of(objects: list[dict[str, Any]]) -> Cluster:
    return Cluster([o for o in objects if o["kind"] == "NetworkPolicy"])


def serving_pod(model: str, namespace: str = DEV_NAMESPACE) -> Pod:
    labels = {"app.kubernetes.io/name": model, "app.kubernetes.io/component": "serving"}
    return Pod(namespace, labels, "10.244.1.5")


def training_pod(model: str, namespace: str = DEV_NAMESPACE) -> Pod:
    labels = {"app.kubernetes.io/name": model, "app.kubernetes.io/component": "training"}
    return Pod(namespace, labels, "10.244.2.5")


def with_environment_settings(text: str, settings: str) -> str:
    old = "  dev:\n    target: kubernetes\n"
    assert old in text
    return text.replace(old, old + f"    kubernetes: {settings}\n")


def with_source_uri(text: str, uri: str) -> str:
    old = "    uri: feast://demo\n"
    assert old in text
    return text.replace(old, f"    uri: {uri}\n")


def with_allows(text: str, *allows: str) -> str:
    body = "".join(f"      - {allow}\n" for allow in allows)
    return text + f"security:\n  network:\n    allow:\n{body}"


def warnings(found: list[Diagnostic], code: str) -> list[Diagnostic]:
    return [d for d in found if d.code == code]


# --- 1. egress is limited to where the spec says its endpoints are --------------------------


def test_egress_to_a_data_source_by_dns_name_is_open_and_reported_at_its_uri(
    tmp_path: Path,
) -> None:
    text = with_source_uri(BASE, "feast://features.example.com:6566")
    objects, found = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    assert cluster.allowed(serving_pod("scorer"), External("10.9.9.9"), 6566)
    assert not cluster.allowed(serving_pod("scorer"), External("10.9.9.9"), 6567)
    (warning,) = warnings(found, codes.EGRESS_OPEN)
    assert warning.location is not None
    assert (
        warning.location.line
        == text.splitlines().index("    uri: feast://features.example.com:6566") + 1
    )
    assert "features.example.com" in warning.message and "6566" in warning.message
    assert "DNS name" in warning.message


def test_a_uri_reached_by_several_models_is_one_warning_naming_them_all(tmp_path: Path) -> None:
    """Each URI is judged once and every model reading it is listed, with every port it is
    reached on (its own, and those allows give); a URI the environment places warns of none."""
    text = with_source_uri(BASE, "feast://features.example.com:6566")
    model = BASE[BASE.index("\nmodels:\n") + len("\nmodels:\n") : BASE.index("slas:\n")]
    text = text.replace("slas:\n", model.replace("scorer", "ranker") + "slas:\n")
    text = with_allows(text, "{from: models.ranker, to: dataSources.features, ports: [7000]}")
    objects, found = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    assert cluster.allowed(serving_pod("ranker"), External("10.9.9.9"), 7000)
    assert not cluster.allowed(serving_pod("scorer"), External("10.9.9.9"), 7000)
    (warning,) = warnings(found, codes.EGRESS_OPEN)
    assert "on port 6566, 7000 for the pods of 'ranker', 'scorer'" in warning.message
    placed = with_environment_settings(text, '{hosts: {"features.example.com": [internet]}}')
    assert not warnings(lowered(compiled(tmp_path, placed))[1], codes.EGRESS_OPEN)


def test_egress_to_an_in_cluster_service_reaches_its_namespace_only(tmp_path: Path) -> None:
    text = with_source_uri(BASE, "feast://feature-server.feast.svc.cluster.local:6566")
    objects, found = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    scorer = serving_pod("scorer")
    assert cluster.allowed(scorer, Pod("feast", {"app": "feature-server"}), 6566)
    assert not cluster.allowed(scorer, Pod("other", {"app": "feature-server"}), 6566)
    assert not cluster.allowed(scorer, External("10.9.9.9"), 6566)
    assert not cluster.allowed(scorer, External("198.51.100.7"), 6566)
    assert not warnings(found, codes.EGRESS_OPEN)


def test_egress_to_an_ip_address_reaches_that_address_only(tmp_path: Path) -> None:
    text = with_source_uri(BASE, "feast://10.30.0.7:6566")
    objects, found = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    assert cluster.allowed(serving_pod("scorer"), External("10.30.0.7"), 6566)
    assert not cluster.allowed(serving_pod("scorer"), External("10.30.0.8"), 6566)
    assert not warnings(found, codes.EGRESS_OPEN)


def test_hosts_the_environment_places_are_reached_there_only(tmp_path: Path) -> None:
    text = with_source_uri(BASE, "feast://features.db.internal:6566")
    text = with_environment_settings(
        text, '{hosts: {"*.db.internal": ["cidr:10.40.8.0/24"], "artifacts": [internet]}}'
    )
    text = text.replace(
        "    inputs: [features]\n", "    inputs: [features]\n    artifact: s3://artifacts/scorer/\n"
    )
    objects, found = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    scorer = serving_pod("scorer")
    assert cluster.allowed(scorer, External("10.40.8.20"), 6566)
    assert not cluster.allowed(scorer, External("10.41.0.1"), 6566)
    # the artifact's bucket is placed on the internet: public addresses only, no metadata
    assert cluster.allowed(scorer, External("52.95.110.1"), 443)
    assert not cluster.allowed(scorer, External("10.0.0.5"), 443)
    assert not cluster.allowed(scorer, External("169.254.169.254"), 443)
    assert not warnings(found, codes.EGRESS_OPEN)


# --- 2. from: internet admits the ingress controller's namespace ------------------------------

PUBLIC = BASE.replace(
    "      resources: {cpu: 500m, memory: 1Gi}\n",
    "      resources: {cpu: 500m, memory: 1Gi}\n      exposure: public\n"
    "      ingress: {host: scoring.acme.example, tls: {secretName: scoring-cert}}\n",
)


def test_internet_ingress_admits_the_ingress_controller_not_every_address(tmp_path: Path) -> None:
    text = with_allows(PUBLIC, "{from: internet, to: models.scorer, ports: [8080]}")
    objects, _ = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    scorer = serving_pod("scorer")
    controller = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    assert cluster.allowed(controller, scorer, 8080)
    assert not cluster.allowed(External("198.51.100.7"), scorer, 8080)
    assert not cluster.allowed(External("10.0.0.9"), scorer, 8080)
    assert not cluster.allowed(Pod("default", {}), scorer, 8080)


def test_the_ingress_namespace_is_an_environment_setting(tmp_path: Path) -> None:
    text = with_allows(PUBLIC, "{from: internet, to: models.scorer, ports: [8080]}")
    text = with_environment_settings(text, "{ingressNamespace: traefik}")
    objects, _ = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    assert cluster.allowed(Pod("traefik", {}), serving_pod("scorer"), 8080)
    assert not cluster.allowed(Pod("ingress-nginx", {}), serving_pod("scorer"), 8080)


# --- 3. a model's training job reaches the models its model may call ------------------------

TWO_MODELS = BASE.replace(
    "slas:\n",
    f"""  ranker:
    framework: sklearn
    version: "1.0.0"
    image: ghcr.io/acme/ranker@sha256:{"cd" * 32}
    serving:
      resources: {{cpu: 500m, memory: 1Gi}}
    training:
      schedule: "0 3 * * *"
      image: ghcr.io/acme/ranker-train@sha256:{"ef" * 32}
      resources: {{cpu: "2", memory: 8Gi, gpu: 1}}
slas:
""",
)


def test_a_training_job_calling_another_model_is_admitted_by_it(tmp_path: Path) -> None:
    text = with_allows(TWO_MODELS, "{from: models.ranker, to: models.scorer, ports: [8080]}")
    objects, _ = lowered(compiled(tmp_path, text))
    cluster = cluster_of(objects)
    scorer = serving_pod("scorer")
    assert cluster.allowed(serving_pod("ranker"), scorer, 8080)
    assert cluster.allowed(training_pod("ranker"), scorer, 8080)
    assert not cluster.allowed(training_pod("ranker"), scorer, 9090)
    # the allow goes one way: the scorer may not call the ranker or its training pods
    assert not cluster.allowed(scorer, serving_pod("ranker"), 8080)
    assert not cluster.allowed(scorer, training_pod("ranker"), 8080)
    # training pods admit nothing
    assert not cluster.allowed(Pod("monitoring", {}), training_pod("ranker"), 8080)
