"""Network isolation: default deny, DNS, and one NetworkPolicy per workload from the spec.

The namespace gets a default-deny policy for ingress and egress and one egress allow to
kube-dns. Each model's serving pods then get a policy with the spec's ``security.network.allow``
entries that involve the model, egress to the data sources it reads and to its artifact, and
ingress from the monitoring namespace (``kubernetes.monitoring.monitoringNamespace``) for
scraping; its training pods get the same egress and
no ingress. An allow from ``models.X`` admits X's serving and training pods alike, as both
get X's egress. ``internet`` as a source is the ingress controller's namespace.

NetworkPolicy selects peers by labels and addresses, not host names. A URI's host becomes a
peer when it is an IP address (an ``ipBlock``), an in-cluster Service name
(``NAME.NAMESPACE.svc[.cluster.local]``: that namespace) or a host the environment places
(``kubernetes.hosts``); any other host is reached on its port at every address, and
:func:`check_open_egress` says so at the line that names it (an FQDN policy needs a CNI
extension).
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from mlplane.compiler.core import ir
from mlplane.compiler.core.ir import Origin
from mlplane.targets.kubernetes import codes, names, servers
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.settings import kubernetes_of

NETWORKING_API = "networking.k8s.io/v1"
KUBE_DNS_NAMESPACE = "kube-system"
KUBE_DNS_POD_LABELS = {"k8s-app": "kube-dns"}

PUBLIC_EXCEPT_V4 = (
    "10.0.0.0/8",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
)
PUBLIC_EXCEPT_V6 = ("fc00::/7", "fe80::/10")
"""Egress to ``internet`` excludes private, carrier-grade NAT and link-local ranges (the latter
holds cloud metadata endpoints, which hand out node credentials)."""

DEFAULT_PORTS: dict[str, int] = {
    "abfss": 443, "az": 443, "bigquery": 443, "feast": 6566, "gs": 443, "hdfs": 8020,
    "hf": 443, "https": 443, "kafka": 9092, "kinesis": 443, "mysql": 3306, "oci": 443,
    "postgres": 5432, "postgresql": 5432, "pubsub": 443, "redis": 6379, "redshift": 5439,
    "s3": 443, "snowflake": 443, "sqlserver": 1433,
}  # fmt: skip
"""The port a scheme's client connects to when the URI names none (HTTPS for cloud APIs)."""

LOCAL_SCHEMES = frozenset({"file"})
CLUSTER_SERVICE_SUFFIXES = (".svc", ".svc.cluster.local")
"""In-cluster Service names (``NAME.NAMESPACE.svc``, with the default cluster domain): their
namespace is known, so egress to them is limited to that namespace."""

Rule = dict[str, Any]
Direction = Literal["ingress", "egress"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    kind: Literal["models", "dataSources", "namespace", "cidr", "internet"]
    name: str


@functools.lru_cache(maxsize=8192)
def parse_endpoint(text: str) -> Endpoint:
    """An endpoint of ``security.network.allow`` (the schema has checked its form).

    Cached: each allow rule's ends are parsed again for every model that the rule involves."""
    if text == "internet":
        return Endpoint("internet", "")
    if text.startswith(("namespace:", "cidr:")):
        kind, _, name = text.partition(":")
        return Endpoint(kind, name)  # type: ignore[arg-type]
    kind, _, name = text.partition(".")
    return Endpoint(kind, name)  # type: ignore[arg-type]


def model_endpoint(model: str) -> str:
    """The one text that :func:`parse_endpoint` reads as ``Endpoint("models", model)``: so the
    allow entries of a model are found by their text (``Lowering.allows_from``/``allows_to``)."""
    return f"models.{model}"


@dataclass(frozen=True, slots=True)
class UriTarget:
    address: str | None
    """The host as an IP network (``10.1.2.3/32``) when the URI names an address, else None."""
    port: int | None
    local: bool
    host: str = ""
    namespace: str | None = None
    """The namespace of an in-cluster Service name (``NAME.NAMESPACE.svc``), else None."""


@functools.lru_cache(maxsize=4096)
def uri_target(uri: str) -> UriTarget:
    """Where ``uri`` leads, as a policy sees it; remembered (a function of the text alone,
    and frozen): models, batch jobs and drift jobs ask about the same few data sources."""
    parts = urlsplit(uri)
    if parts.scheme in LOCAL_SCHEMES:
        return UriTarget(None, None, True)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    host = (parts.hostname or "").lower()
    try:
        address = str(ipaddress.ip_network(host))
    except ValueError:
        address = None
    return UriTarget(address, port, False, host, _service_namespace(host))


def _service_namespace(host: str) -> str | None:
    for suffix in CLUSTER_SERVICE_SUFFIXES:
        if host.endswith(suffix):
            labels = host.removesuffix(suffix).split(".")
            if len(labels) == 2 and all(labels):
                return labels[1]
    return None


def placed_peers(lowering: Lowering, host: str) -> tuple[str, ...] | None:
    """Where ``environments.<env>.kubernetes.hosts`` places ``host`` (an exact name first,
    then the longest ``*.suffix`` that matches), or None."""
    hosts = dict(kubernetes_of(lowering.system.environment.target_settings).hosts)
    if host in hosts:
        return hosts[host]
    wildcards = [key for key in hosts if key.startswith("*.") and host.endswith(key[1:])]
    return hosts[max(wildcards, key=len)] if wildcards else None


def host_peers(lowering: Lowering, target: UriTarget, direction: Direction) -> list[Rule] | None:
    """The peers a URI's host stands for, or None when its addresses are unknown."""
    if target.address is not None:
        return _ip_blocks(((target.address, ()),))
    if target.namespace is not None:
        return [namespace_peer(target.namespace)]
    placed = placed_peers(lowering, target.host)
    if placed is None:
        return None
    peers: list[Rule] = []
    for text in placed:
        peers += address_peers(lowering, parse_endpoint(text), direction)
    return peers


def address_peers(lowering: Lowering, end: Endpoint, direction: Direction) -> list[Rule]:
    """The peers of a ``namespace:``, ``cidr:`` or ``internet`` endpoint."""
    if end.kind == "namespace":
        return [namespace_peer(end.name)]
    if end.kind == "cidr":
        return _ip_blocks(((end.name, ()),))
    return internet_peers(lowering, direction)


def tcp_ports(ports: Iterable[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in sorted(set(ports))]


def rule(direction: Direction, peers: list[dict[str, Any]], ports: Iterable[int]) -> Rule:
    """One rule; no peers means any peer, no ports means every port."""
    body: Rule = {}
    if peers:
        body["from" if direction == "ingress" else "to"] = peers
    listed = tcp_ports(ports)
    if listed:
        body["ports"] = listed
    return body


def unique(rules: Iterable[Rule]) -> list[Rule]:
    """Rules without repeats, in first-seen order (deterministic: inputs are ordered)."""
    seen: dict[str, Rule] = {}
    for item in rules:
        seen.setdefault(json.dumps(item, sort_keys=True), item)
    return list(seen.values())


def _ip_blocks(cidrs: Iterable[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for cidr, excluded in cidrs:
        block: dict[str, Any] = {"cidr": cidr}
        if excluded:
            block["except"] = list(excluded)
        blocks.append({"ipBlock": block})
    return blocks


def internet_peers(lowering: Lowering, direction: Direction) -> list[dict[str, Any]]:
    """Ingress from the internet arrives through the ingress controller's pods: it admits
    their namespace (``kubernetes.ingressNamespace``), not every address; egress to it is
    every public address (private, carrier-grade NAT and link-local ranges excluded)."""
    if direction == "ingress":
        settings = kubernetes_of(lowering.system.environment.target_settings)
        return [namespace_peer(settings.ingress_namespace)]
    return _ip_blocks((("0.0.0.0/0", PUBLIC_EXCEPT_V4), ("::/0", PUBLIC_EXCEPT_V6)))


def model_peer(model: str, component: str = names.SERVING) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": names.selector(model, component)}}


def model_client_peers(lowering: Lowering, model: str) -> list[dict[str, Any]]:
    """The pods an allow ``from: models.X`` admits: X's serving pods and, when X trains or
    scores in batch, its training and batch pods, which get the same egress as its serving
    pods."""
    peers = [model_peer(model)]
    found = lowering.system.models.get(model)
    if found is not None and found.training is not None:
        peers.append(model_peer(model, names.TRAINING))
    if found is not None and found.batch is not None:
        peers.append(model_peer(model, names.BATCH))
    return peers


def namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {names.NAMESPACE_NAME_LABEL: namespace}}}


# --- namespace-wide policies ---------------------------------------------------------------


def lower_namespace_policies(lowering: Lowering, parent: str) -> None:
    system = lowering.system
    origin = lowering.origin(("security", "network", "defaultDeny"))
    labels = names.system_labels(system)
    deny = policy(lowering, "mlplane-default-deny", labels, {}, ["Ingress", "Egress"])
    lowering.add(names.logical(system.name, "default-deny-networkpolicy"), deny, origin, parent)
    dns_peer = {
        **namespace_peer(KUBE_DNS_NAMESPACE),
        "podSelector": {"matchLabels": KUBE_DNS_POD_LABELS},
    }
    dns = policy(lowering, "mlplane-allow-dns", labels, {}, ["Egress"])
    dns["spec"]["egress"] = [
        {
            "to": [dns_peer],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    lowering.add(names.logical(system.name, "dns-egress-networkpolicy"), dns, origin, parent)


def policy(
    lowering: Lowering,
    name: str,
    labels: dict[str, str],
    match: dict[str, str],
    types: list[str],
) -> dict[str, Any]:
    """A NetworkPolicy selecting ``match`` (every pod when empty), without rules yet."""
    return {
        "apiVersion": NETWORKING_API,
        "kind": "NetworkPolicy",
        "metadata": lowering.metadata(name, labels),
        "spec": {"podSelector": {"matchLabels": match} if match else {}, "policyTypes": types},
    }


# --- per-model policies --------------------------------------------------------------------


def lower_model_policies(lowering: Lowering, model: ir.Model, parent: str) -> None:
    system = lowering.system
    egress = egress_rules(lowering, model)
    serving = policy(
        lowering,
        model.name,
        names.workload_labels(system, model, names.SERVING),
        names.selector(model.name, names.SERVING),
        ["Ingress", "Egress"],
    )
    serving["spec"]["ingress"] = ingress_rules(lowering, model)
    serving["spec"]["egress"] = egress
    origin = lowering.origin(("models", model.name))
    lowering.add(names.logical(model.name, "networkpolicy"), serving, origin, parent)
    if model.training is None:
        return
    training = policy(
        lowering,
        names.training(model.name),
        names.workload_labels(system, model, names.TRAINING),
        names.selector(model.name, names.TRAINING),
        ["Ingress", "Egress"],
    )
    training["spec"]["egress"] = egress
    origin = lowering.origin(("models", model.name, "training"))
    lowering.add(names.logical(model.name, "training-networkpolicy"), training, origin, parent)


def ingress_rules(lowering: Lowering, model: ir.Model) -> list[Rule]:
    rules: list[Rule] = []
    for allow in lowering.allows_to.get(model_endpoint(model.name), ()):
        peers = _ingress_peers(lowering, parse_endpoint(allow.source), allow.origin)
        if peers is not None:
            rules.append(rule("ingress", peers, allow.ports or (model.serving.port,)))
    scrape = (servers.metrics_port(model),)  # the port Prometheus scrapes (Triton: 8002)
    rules.append(rule("ingress", [namespace_peer(monitoring_namespace(lowering))], scrape))
    return unique(rules)


def monitoring_namespace(lowering: Lowering) -> str:
    """Where Prometheus runs (``kubernetes.monitoring.monitoringNamespace``, default
    ``monitoring``): it is let in to scrape the models."""
    return kubernetes_of(lowering.system.environment.target_settings).monitoring_namespace


def _ingress_peers(
    lowering: Lowering, source: Endpoint, origin: Origin
) -> list[dict[str, Any]] | None:
    if source.kind == "models":
        return model_client_peers(lowering, source.name)
    if source.kind != "dataSources":
        return address_peers(lowering, source, "ingress")
    data_source = lowering.system.data_sources.get(source.name)
    target = uri_target(data_source.uri) if data_source else None
    peers = host_peers(lowering, target, "ingress") if target and not target.local else None
    if peers is not None:
        return peers
    _not_enforced(lowering, origin, "its source is a data source reached by host name")
    return None


def egress_rules(lowering: Lowering, model: ir.Model) -> list[Rule]:
    rules: list[Rule] = []
    for allow in lowering.allows_from.get(model_endpoint(model.name), ()):
        found = _egress_rule(lowering, parse_endpoint(allow.destination), allow)
        if found is not None:
            rules.append(found)
    for name in model.inputs:
        source = lowering.system.data_sources[name]
        path = ("models", model.name, "inputs")
        found = uri_rule(lowering, source.uri, (), lowering.origin(path), f"data source {name!r}")
        if found is not None:
            rules.append(found)
    if model.artifact is not None:
        origin = lowering.origin(("models", model.name, "artifact"))
        found = uri_rule(
            lowering, model.artifact, (), origin, f"the artifact of model {model.name!r}"
        )
        if found is not None:
            rules.append(found)
    return unique(rules)


def _egress_rule(lowering: Lowering, destination: Endpoint, allow: ir.NetworkAllow) -> Rule | None:
    if destination.kind == "models":
        target = lowering.system.models[destination.name]
        return rule("egress", [model_peer(target.name)], allow.ports or (target.serving.port,))
    if destination.kind != "dataSources":
        return rule("egress", address_peers(lowering, destination, "egress"), allow.ports)
    source = lowering.system.data_sources[destination.name]
    return uri_rule(lowering, source.uri, allow.ports, allow.origin, f"data source {source.name!r}")


def uri_rule(
    lowering: Lowering, uri: str, ports: tuple[int, ...], origin: Origin, what: str
) -> Rule | None:
    """Egress to the host of ``uri`` on its port: to the peers its host stands for
    (:func:`host_peers`), else to every address (:func:`check_open_egress` reports it)."""
    target = uri_target(uri)
    if target.local:
        return None
    chosen = ports or ((target.port,) if target.port is not None else ())
    if not chosen:
        lowering.diagnostics.warning(
            codes.EGRESS_PORT_UNKNOWN,
            f"no port is known for {what}: its URI names none and its scheme has no default, "
            "so egress to it stays denied",
            origin.location,
            origin.path,
            hint="add a security.network.allow entry for it with ports: [...]",
        )
        return None
    return rule("egress", host_peers(lowering, target, "egress") or [], chosen)


def check_open_egress(lowering: Lowering) -> None:
    """Egress the policies leave open to every address: one warning per URI, at the line that
    names its host, listing the models whose pods reach it."""
    system = lowering.system
    open_uris: dict[tuple[str, ...], tuple[str, str, set[int], set[str]]] = {}
    placed: dict[str, tuple[UriTarget, bool]] = {}  # a URI's target, and whether peers place it

    def note(
        path: tuple[str, ...], uri: str, ports: tuple[int, ...], what: str, model: str
    ) -> None:
        judged = placed.get(uri)
        if judged is None:  # models read the same sources: each URI is judged once
            target = uri_target(uri)
            judged = placed[uri] = (
                target,
                target.local or bool(host_peers(lowering, target, "egress")),
            )
        target, closed = judged
        chosen = ports or ((target.port,) if target.port is not None else ())
        if closed or not chosen:
            return
        found = open_uris.setdefault(path, (target.host, what, set(), set()))
        found[2].update(chosen)
        found[3].add(model)

    for model in system.models.values():
        reached: list[tuple[str, tuple[int, ...]]] = [(name, ()) for name in model.inputs]
        for allow in lowering.allows_from.get(model_endpoint(model.name), ()):
            end = parse_endpoint(allow.destination)
            if end.kind == "dataSources" and end.name in system.data_sources:
                reached.append((end.name, allow.ports))
        for name, ports in reached:
            uri = system.data_sources[name].uri
            note(("dataSources", name, "uri"), uri, ports, f"data source {name!r}", model.name)
        if model.artifact is not None:
            what = f"the artifact of model {model.name!r}"
            note(("models", model.name, "artifact"), model.artifact, (), what, model.name)
    environment = system.environment.name
    for path, (host, target_what, open_ports, models) in sorted(open_uris.items()):
        origin = lowering.origin(path)
        listed = ", ".join(str(port) for port in sorted(open_ports))
        pods = ", ".join(repr(name) for name in sorted(models))
        lowering.diagnostics.warning(
            codes.EGRESS_OPEN,
            f"egress to {target_what} (host {host!r}) is open to every address on port {listed} "
            f"for the pods of {pods}: a NetworkPolicy selects peers by address or label, "
            "never by DNS name",
            origin.location,
            origin.path,
            hint=f"say where {host!r} is under environments.{environment}.kubernetes"
            ".hosts (cidr:ADDRESS/PREFIX, namespace:NAME or internet), or name it by IP "
            "address or as an in-cluster Service (NAME.NAMESPACE.svc)",
        )


def check_unenforced_allows(lowering: Lowering) -> None:
    """Allows between two endpoints that are not models of this system have no pod to attach
    a rule to: say so instead of dropping them silently."""
    for allow in lowering.system.security.allow:
        kinds = {parse_endpoint(allow.source).kind, parse_endpoint(allow.destination).kind}
        if "models" not in kinds:
            _not_enforced(lowering, allow.origin, "neither end is a model of this system")


def _not_enforced(lowering: Lowering, origin: Origin, why: str) -> None:
    lowering.diagnostics.warning(
        codes.ALLOW_NOT_ENFORCED,
        f"this network allow cannot be expressed as a NetworkPolicy rule: {why}",
        origin.location,
        origin.path,
    )
