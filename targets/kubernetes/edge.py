"""The edge profile (``environments.<env>.kubernetes.profile: edge``): models on edge nodes.

An edge environment is one cluster whose edge nodes (k3s agents, KubeEdge edge nodes) carry a
label and usually a taint, one node per site. A served model becomes a **DaemonSet** on those
nodes instead of a Deployment or Rollout:

* placement: a required node affinity on the edge label and the site label (any value of
  each: a node that names no site is no site), and on the residency label when the model reads
  data with a residency; the edge taint is tolerated;
* rollout by sites: ``updateStrategy.rollingUpdate.maxUnavailable`` is ``sitesAtOnce`` percent
  of the edge nodes, never a traffic weight (canary and blue-green are refused);
* images are pinned by digest (always, whatever ``security.images.requireDigest`` says) and
  pulled ``IfNotPresent``: they must be on the node before the rollout (pre-loaded, such as
  k3s air-gap images), so a pod starts while the site's link is down;
* the model artifact is copied into a pod-local ``emptyDir`` by an init container (no
  ``hostPath``, which Pod Security ``restricted`` forbids), which survives container restarts;
* probes are the server's own HTTP endpoints: nothing remote decides readiness;
* scraping: with ``remoteWrite`` a Prometheus agent per edge node (a ``PrometheusAgent`` in
  DaemonSet mode) scrapes the models' pods on its node through a ``PodMonitor`` and sends the
  series to the central Prometheus, buffering them in its write-ahead log while the link is
  down; each series carries the node's site label as ``site`` (the PodMonitor attaches node
  metadata, which a ClusterRole lets the agent read); the models get no ServiceMonitor then,
  so the central Prometheus does not scrape the same pods across the link;
* a replica count is ignored with a warning (one pod per edge node);
* no public exposure unless ``allowPublic`` says so.
"""

from __future__ import annotations

import re
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.targets.kubernetes import codes, names, pods, servers
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.settings import EdgeSettings, kubernetes_of

PULL_POLICY = "IfNotPresent"
"""Never ``Always``: a pod restarted while the site is offline starts from the node's image."""
ARTIFACT_VOLUME = "model-artifact"
ARTIFACT_DIR = "/models"
ARTIFACT_SIZE = "10Gi"
LOADER_CONTAINER = "fetch-artifact"
AGENT_LABEL = "mlplane.dev/edge-agent"
"""Marks the PodMonitors the edge agents select (the central Prometheus does not)."""
AGENT_API = "monitoring.coreos.com/v1alpha1"
MONITOR_API = "monitoring.coreos.com/v1"
GLOBAL = "global"
SITE_SERIES_LABEL = "site"
"""The label of every series an edge agent sends: the value of the node's ``siteLabel``."""
NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def edge_of(lowering: Lowering) -> EdgeSettings | None:
    """The edge settings of the environment, or None on the cloud profile."""
    return kubernetes_of(lowering.system.environment.target_settings).edge


def _settings_path(lowering: Lowering, *rest: str) -> SpecPath:
    return ("environments", lowering.system.environment.name, "kubernetes", *rest)


# --- refusals ---------------------------------------------------------------------------------


def check_model(lowering: Lowering, model: ir.Model, edge: EdgeSettings) -> None:
    """The located refusals of a model on the edge profile."""
    serving_path = ("models", model.name, "serving")
    if model.image.digest is None:
        path: SpecPath = ("models", model.name, "image")
        lowering.diagnostics.error(
            codes.EDGE_IMAGE_UNPINNED,
            f"model {model.name!r} runs on edge nodes, which start pods from the images already "
            f"on the node: {model.image.text!r} is not pinned by digest, so what a site runs "
            "would depend on when it last pulled",
            lowering.location(path),
            path,
            hint="write the image as REPOSITORY@sha256:<digest>",
        )
    if model.serving.exposure == "public" and not edge.allow_public:
        path = (*serving_path, "exposure")
        lowering.diagnostics.error(
            codes.EDGE_PUBLIC,
            f"model {model.name!r} is exposed publicly from edge sites",
            lowering.location(path),
            path,
            hint="set exposure: internal, or kubernetes.edge.allowPublic: true to expose it "
            "knowingly",
        )
    if model.serving.rollout.strategy in ("canary", "blueGreen"):
        path = (*serving_path, "rollout")
        _unsupported(
            lowering,
            path,
            f"model {model.name!r} asks for a {model.serving.rollout.strategy} rollout, which "
            "shifts traffic weights; on edge nodes a rollout replaces the pods of a percentage of "
            "sites at a time (kubernetes.edge.sitesAtOnce)",
            "use strategy: rolling",
        )
    if model.serving.autoscaling_metric is not None:
        path = (*serving_path, "autoscaling")
        _unsupported(
            lowering,
            path,
            f"model {model.name!r} autoscales, but an edge model runs one pod per edge node",
            "remove serving.autoscaling for this environment",
        )
    if model.artifact is not None and edge.artifact_loader is None:
        path = ("models", model.name, "artifact")
        _unsupported(
            lowering,
            path,
            f"model {model.name!r} names an artifact, which edge pods copy into a local volume "
            "with an init container, but kubernetes.edge.artifactLoader names no image for it",
            "set kubernetes.edge.artifactLoader to an image pinned by digest",
        )
    check_replicas(lowering, model)
    check_residency(lowering, model)


def check_replicas(lowering: Lowering, model: ir.Model) -> None:
    """A warning: the replica count is not an error (the DaemonSet still serves the model),
    but the number of pods is the number of matching edge nodes, whatever the spec says."""
    serving = model.serving
    if (serving.replicas_min, serving.replicas_max) == (1, 1):
        return
    path: SpecPath = ("models", model.name, "serving", "replicas")
    lowering.diagnostics.warning(
        codes.EDGE_REPLICAS_IGNORED,
        f"model {model.name!r} asks for {serving.replicas_min} to {serving.replicas_max} "
        "replicas, but on edge nodes it runs one pod on each edge node of its sites (a "
        "DaemonSet): the count is ignored here, and no PodDisruptionBudget is made",
        lowering.location(path),
        path,
        hint="set serving.replicas: null in this environment's overrides (one pod per node)",
    )


def check_spec(lowering: Lowering) -> None:
    """The edge profile's refusals (``checks.check_spec``): nothing on the cloud profile."""
    edge = edge_of(lowering)
    if edge is None:
        return
    check_environment(lowering, edge)
    for _, model in sorted(lowering.system.models.items()):
        check_model(lowering, model, edge)


def check_environment(lowering: Lowering, edge: EdgeSettings) -> None:
    loader = edge.artifact_loader
    if loader is not None and "@sha256:" not in loader:
        path = _settings_path(lowering, "edge", "artifactLoader")
        lowering.diagnostics.error(
            codes.EDGE_IMAGE_UNPINNED,
            f"the artifact loader image {loader!r} is not pinned by digest",
            lowering.location(path),
            path,
            hint="write the image as REPOSITORY@sha256:<digest>",
        )


def _unsupported(lowering: Lowering, path: SpecPath, message: str, hint: str) -> None:
    lowering.diagnostics.error(
        codes.EDGE_UNSUPPORTED, message, lowering.location(path), path, hint=hint
    )


def residencies(lowering: Lowering, model: ir.Model) -> tuple[str, ...]:
    """The residencies (other than ``global``) of the data the model reads: its inputs and
    what they derive from, sorted."""
    sources = lowering.system.data_sources
    read: set[str] = set()
    for name in model.inputs:
        for each in (name, *sources[name].upstream):
            found = sources[each].residency
            if found is not None and found != GLOBAL:
                read.add(found)
    return tuple(sorted(read))


def check_residency(lowering: Lowering, model: ir.Model) -> None:
    """Two residencies are refused: an edge site holds the data of one."""
    read = residencies(lowering, model)
    if len(read) > 1:
        path = ("models", model.name, "inputs")
        lowering.diagnostics.error(
            codes.EDGE_RESIDENCY,
            f"model {model.name!r} reads data bound to {', '.join(read)}; its pods would run at "
            f"sites whose {edge_label(lowering)} is one of them and hold the others' data there",
            lowering.location(path),
            path,
            hint="split the model per residency, or serve it from a cloud environment",
        )


def edge_label(lowering: Lowering) -> str:
    edge = edge_of(lowering)
    return edge.residency_label if edge is not None else "residency label"


# --- the workload -----------------------------------------------------------------------------


def node_affinity(edge: EdgeSettings, residency_value: str | None) -> dict[str, Any]:
    """Edge nodes that name their site (both labels with any value), and of the model's
    residency when bound: a node without a site label is no site, and gets no model."""
    expressions: list[dict[str, Any]] = [{"key": edge.node_label, "operator": "Exists"}]
    if edge.site_label != edge.node_label:
        expressions.append({"key": edge.site_label, "operator": "Exists"})
    if residency_value is not None:
        expressions.append(
            {"key": edge.residency_label, "operator": "In", "values": [residency_value]}
        )
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]
            }
        }
    }


def update_strategy(edge: EdgeSettings) -> dict[str, Any]:
    """A percentage of the edge nodes (sites) at a time; no surge (one pod per node)."""
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": f"{edge.sites_at_once}%", "maxSurge": 0},
    }


def daemon_set(
    lowering: Lowering, model: ir.Model, deployment: dict[str, Any], edge: EdgeSettings
) -> dict[str, Any]:
    """The model's Deployment (``serving.workload``) turned into a DaemonSet on edge nodes."""
    spec = deployment["spec"]
    template = spec["template"]
    pod = template["spec"]
    read = residencies(lowering, model)
    pod["affinity"] = node_affinity(edge, read[0] if len(read) == 1 else None)
    if edge.taint is not None:
        pod["tolerations"] = [
            *pod.get("tolerations", []),
            {"key": edge.taint, "operator": "Exists"},
        ]
    if model.artifact is not None and edge.artifact_loader is not None:
        _add_artifact(pod, model.artifact, edge.artifact_loader)
    for container in (*pod.get("initContainers", []), *pod["containers"]):
        container["imagePullPolicy"] = PULL_POLICY
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": deployment["metadata"],
        "spec": {
            "revisionHistoryLimit": spec["revisionHistoryLimit"],
            "selector": spec["selector"],
            "template": template,
            "updateStrategy": update_strategy(edge),
        },
    }


def _add_artifact(pod: dict[str, Any], artifact: str, loader: str) -> None:
    """An init container copies the artifact into a pod-local volume the server reads."""
    (main,) = pod["containers"]
    mount = {"name": ARTIFACT_VOLUME, "mountPath": ARTIFACT_DIR}
    env = [
        {"name": "MLPLANE_MODEL_ARTIFACT", "value": artifact},
        {"name": "MLPLANE_MODEL_DIR", "value": ARTIFACT_DIR},
    ]
    init = {
        "name": LOADER_CONTAINER,
        "image": loader,
        "imagePullPolicy": PULL_POLICY,
        "resources": main["resources"],
        "securityContext": pods.container_security_context(),
        "env": env,
        "volumeMounts": [
            mount,
            *(m for m in main["volumeMounts"] if m["name"] == pods.TMP_VOLUME),
        ],
    }
    pod["initContainers"] = [*pod.get("initContainers", []), init]
    pod["volumes"].append({"name": ARTIFACT_VOLUME, "emptyDir": {"sizeLimit": ARTIFACT_SIZE}})
    main["volumeMounts"].append({**mount, "readOnly": True})
    main["env"].append({"name": "MLPLANE_MODEL_DIR", "value": ARTIFACT_DIR})


# --- monitoring that buffers ------------------------------------------------------------------


def agent_scrapes(lowering: Lowering) -> bool:
    """True when edge agents scrape the models (the models then get PodMonitors)."""
    edge = edge_of(lowering)
    return edge is not None and edge.remote_write is not None


def agent_name(system: ir.System) -> str:
    return names.logical(system.name, "edge-agent")


def site_label_source(edge: EdgeSettings) -> str:
    """The discovery label under which Prometheus attaches the node's site label to a target
    (``attachMetadata.node``): every character a label name cannot hold becomes ``_``."""
    return "__meta_kubernetes_node_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", edge.site_label)


def pod_monitor(lowering: Lowering, model: ir.Model, edge: EdgeSettings) -> dict[str, Any]:
    """What the agent on a model pod's node scrapes: that pod's metrics port and path, with
    the node's site label copied onto every series as ``site``."""
    labels = {
        **names.workload_labels(lowering.system, model, names.SERVING),
        AGENT_LABEL: agent_name(lowering.system),
    }
    return {
        "apiVersion": MONITOR_API,
        "kind": "PodMonitor",
        "metadata": lowering.metadata(model.name, labels),
        "spec": {
            "selector": {"matchLabels": names.selector(model.name, names.SERVING)},
            "namespaceSelector": {"matchNames": [lowering.namespace]},
            "podMetricsEndpoints": [
                {
                    "port": servers.metrics_port_name(model),
                    "path": servers.metrics_path(model),
                    "interval": "30s",
                    "scheme": "http",
                    "relabelings": [
                        {
                            "action": "replace",
                            "sourceLabels": [site_label_source(edge)],
                            "targetLabel": SITE_SERIES_LABEL,
                        }
                    ],
                }
            ],
            "attachMetadata": {"node": True},
        },
    }


def prometheus_agent(lowering: Lowering, edge: EdgeSettings, url: str) -> dict[str, Any]:
    """One Prometheus agent per edge node (``mode: DaemonSet``, which needs the Prometheus
    Operator's ``PrometheusAgentDaemonSet`` feature gate): it scrapes the PodMonitors of this
    system on its own node and remote-writes to the central Prometheus, keeping what it could
    not send in its write-ahead log until the link returns."""
    system = lowering.system
    name = agent_name(system)
    affinity = node_affinity(edge, None)
    spec: dict[str, Any] = {
        "mode": "DaemonSet",
        "serviceAccountName": name,
        "podMonitorSelector": {"matchLabels": {AGENT_LABEL: name}},
        "podMonitorNamespaceSelector": {"matchLabels": {NAMESPACE_LABEL: lowering.namespace}},
        "remoteWrite": [{"url": url}],
        "externalLabels": {"mlplane_environment": system.environment.name},
        "affinity": affinity,
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": pods.pod_security_context(),
    }
    if edge.taint is not None:
        spec["tolerations"] = [{"key": edge.taint, "operator": "Exists"}]
    return {
        "apiVersion": AGENT_API,
        "kind": "PrometheusAgent",
        "metadata": lowering.metadata(name, dict(names.system_labels(system))),
        "spec": spec,
    }


def node_reader_name(lowering: Lowering) -> str:
    """Cluster-wide, so named after the namespace as well as the system."""
    return names.logical(lowering.namespace, agent_name(lowering.system))


def node_reader(lowering: Lowering) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ClusterRole and its binding to read the nodes, whose site label the agent copies
    onto the series (``attachMetadata.node`` of the PodMonitors needs to list and watch them;
    nodes are cluster-scoped, so a Role cannot grant it)."""
    name = node_reader_name(lowering)
    account = agent_name(lowering.system)
    metadata = {"name": name, "labels": dict(names.system_labels(lowering.system))}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata,
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": dict(metadata),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": lowering.namespace}],
    }
    return role, binding


def agent_access(lowering: Lowering) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The agent's ServiceAccount (its token mounted: the agent discovers pods through the
    API), and a Role and RoleBinding to list the pods it scrapes."""
    name = agent_name(lowering.system)
    labels = dict(names.system_labels(lowering.system))
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": lowering.metadata(name, labels),
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": lowering.metadata(name, labels),
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": lowering.metadata(name, labels),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": lowering.namespace}],
    }
    return account, role, binding


def lower_environment(lowering: Lowering, root: str) -> None:
    """The environment-wide edge objects: the agents and their access."""
    edge = edge_of(lowering)
    if edge is None or edge.remote_write is None or not lowering.system.models:
        return
    origin = lowering.origin(_settings_path(lowering, "edge", "remoteWrite"))
    name = agent_name(lowering.system)
    account, role, binding = agent_access(lowering)
    lowering.add(names.logical(name, "serviceaccount"), account, origin, root)
    lowering.add(names.logical(name, "role"), role, origin, root)
    lowering.add(names.logical(name, "rolebinding"), binding, origin, root)
    reader, reader_binding = node_reader(lowering)
    lowering.add(names.logical(name, "clusterrole"), reader, origin, root)
    lowering.add(names.logical(name, "clusterrolebinding"), reader_binding, origin, root)
    needs = (
        names.logical(name, "serviceaccount"),
        names.logical(name, "rolebinding"),
        names.logical(name, "clusterrolebinding"),
    )
    body = prometheus_agent(lowering, edge, edge.remote_write)
    lowering.add(names.logical(name, "prometheusagent"), body, origin, root, needs)
