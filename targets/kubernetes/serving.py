"""A model's serving objects: workload, Service, autoscaler, disruption budget, scraping.

``rolling`` serves through a Deployment; ``canary`` and ``blueGreen`` through an Argo Rollouts
``Rollout`` (``rollouts.py``); a public model's Ingress is ``ingress.py``'s. When the model autoscales, the workload leaves ``replicas`` to
the HorizontalPodAutoscaler, so re-applying the program does not fight the autoscaler.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlplane.compiler.core import ir
from mlplane.targets.kubernetes import mesh, names, pods, rollouts, servers, storage
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.monitoring import presets

RPS_METRIC = "mlplane_model_requests_per_second"
CONCURRENCY_METRIC = "mlplane_model_requests_in_flight"
"""Per-pod custom metrics for ``rps`` and ``concurrency`` autoscaling, recorded by the model's
own PrometheusRule (:func:`autoscaling_rule`) from its runtime's series, so that they exist
whatever the runtime exports; a custom-metrics API (such as prometheus-adapter) must serve them
(see the README for the adapter rule)."""

CONFIG_HASH_ANNOTATION = "mlplane.dev/config-hash"
REVISION_HISTORY = 5
MONITOR_API = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "30s"


def service_account(lowering: Lowering, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": lowering.metadata(name, labels),
        "automountServiceAccountToken": False,
    }


def data_sources_config(lowering: Lowering, model: ir.Model) -> dict[str, Any] | None:
    """The URIs of the data sources the model reads: referenced, never created here."""
    if not model.inputs:
        return None
    data = {name: lowering.system.data_sources[name].uri for name in model.inputs}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": lowering.metadata(
            names.data_sources_config(model.name),
            names.workload_labels(lowering.system, model, names.SERVING),
        ),
        "data": dict(sorted(data.items())),
    }


def config_env(model: ir.Model, config: dict[str, Any] | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "MLPLANE_MODEL_NAME", "value": model.name},
        {"name": "MLPLANE_MODEL_VERSION", "value": model.version},
    ]
    if model.artifact is not None:
        env.append({"name": "MLPLANE_MODEL_ARTIFACT", "value": model.artifact})
    if config is not None:
        ref_name = config["metadata"]["name"]
        env += [
            {
                "name": names.env_var("mlplane-data-source", key, "uri"),
                "valueFrom": {"configMapKeyRef": {"name": ref_name, "key": key}},
            }
            for key in config["data"]
        ]
    return env


def config_hash(config: dict[str, Any] | None) -> str:
    """A digest of the config the pods read, so a changed URI rolls the pods."""
    text = json.dumps(config["data"] if config else {}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def serving_quantities(lowering: Lowering, model: ir.Model) -> pods.Quantities:
    """The CPU and memory of the model's server (``pods.quantities``: the defaults, said)."""
    origin = lowering.origin(("models", model.name, "serving", "resources"))
    what = f"model {model.name!r}"
    return pods.quantities(lowering, model.serving.resources, pods.SERVING_DEFAULTS, origin, what)


def serving_template(
    lowering: Lowering, model: ir.Model, inputs: pods.PodInputs, config: dict[str, Any] | None
) -> dict[str, Any]:
    """The hardened pod template of the model's server."""
    resources = model.serving.resources
    chosen = serving_quantities(lowering, model)
    main = pods.serving_container(model, pods.resource_requirements(chosen, resources.gpu), inputs)
    labels = names.workload_labels(lowering.system, model, names.SERVING)
    spec = pods.pod_spec(model.name, main, inputs, resources.gpu)
    storage.apply(
        spec, storage.serving_storage(model, storage.memory_of(resources, pods.SERVING_DEFAULTS))
    )
    template = pods.pod_template(labels, spec)
    template["metadata"]["annotations"] = {CONFIG_HASH_ANNOTATION: config_hash(config)}
    return template


def workload(
    lowering: Lowering,
    model: ir.Model,
    inputs: pods.PodInputs,
    config: dict[str, Any] | None,
    analysis: str | None,
) -> dict[str, Any]:
    """A Deployment for ``rolling``, else an Argo Rollouts Rollout."""
    serving = model.serving
    spec: dict[str, Any] = {
        "revisionHistoryLimit": REVISION_HISTORY,
        "selector": {"matchLabels": names.selector(model.name, names.SERVING)},
        "template": serving_template(lowering, model, inputs, config),
    }
    if serving.autoscaling_metric is None:
        spec["replicas"] = serving.replicas_min
    api, kind = ("apps/v1", "Deployment")
    if serving.rollout.strategy == "rolling":
        spec["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        }
    else:
        api, kind = rollouts.ROLLOUTS_API, "Rollout"
        spec["strategy"] = rollouts.strategy(model, analysis)
    labels = names.workload_labels(lowering.system, model, names.SERVING)
    metadata = lowering.metadata(model.name, labels)
    if kind == "Rollout":
        metadata["annotations"] = dict(rollouts.DELETION_ANNOTATIONS)
    return {"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec}


def service(lowering: Lowering, model: ir.Model, name: str, role: str) -> dict[str, Any]:
    """A ClusterIP Service; ``role`` labels it (``serving`` or ``preview``) for ServiceMonitor."""
    labels = {
        **names.workload_labels(lowering.system, model, names.SERVING),
        names.COMPONENT_LABEL: role,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": lowering.metadata(name, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector(model.name, names.SERVING),
            "ports": service_ports(model),
        },
    }


def service_ports(model: ir.Model) -> list[dict[str, Any]]:
    """The model's port; and the runtime's metrics port when it has its own (Triton 8002),
    so the ServiceMonitor can scrape it through the Service's endpoints."""
    ports = [
        {
            "name": names.CONTAINER_PORT_NAME,
            "port": model.serving.port,
            "targetPort": names.CONTAINER_PORT_NAME,
            "protocol": "TCP",
        }
    ]
    if servers.server(model).metrics_port is not None:
        ports.append(
            {
                "name": servers.METRICS_PORT_NAME,
                "port": servers.metrics_port(model),
                "targetPort": servers.METRICS_PORT_NAME,
                "protocol": "TCP",
            }
        )
    return ports


def autoscaler(lowering: Lowering, model: ir.Model, target: dict[str, Any]) -> dict[str, Any]:
    serving = model.serving
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": lowering.metadata(
            model.name, names.workload_labels(lowering.system, model, names.SERVING)
        ),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": target["apiVersion"],
                "kind": target["kind"],
                "name": target["metadata"]["name"],
            },
            "minReplicas": max(1, serving.replicas_min),
            "maxReplicas": serving.replicas_max,
            "metrics": [autoscaling_metric(serving)],
        },
    }


def autoscaling_metric(serving: ir.Serving) -> dict[str, Any]:
    """cpu/memory: utilisation of requests; rps/concurrency: a per-pod custom metric."""
    metric, target = serving.autoscaling_metric, serving.autoscaling_target
    if metric in ("cpu", "memory"):
        return {
            "type": "Resource",
            "resource": {
                "name": metric,
                "target": {"type": "Utilization", "averageUtilization": target},
            },
        }
    name = RPS_METRIC if metric == "rps" else CONCURRENCY_METRIC
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": name},
            "target": {"type": "AverageValue", "averageValue": str(target)},
        },
    }


def autoscaling_rule(lowering: Lowering, model: ir.Model) -> dict[str, Any] | None:
    """The PrometheusRule recording the per-pod metric an ``rps`` or ``concurrency``
    autoscaler reads, from the model's runtime's series (``presets``); None for ``cpu`` and
    ``memory``, which metrics-server serves."""
    metric = model.serving.autoscaling_metric
    if metric not in ("rps", "concurrency"):
        return None
    namespace = lowering.namespace
    if metric == "rps":
        record = RPS_METRIC
        expr = presets.requests_per_pod(model.runtime, model.name, namespace)
    else:
        record = CONCURRENCY_METRIC
        expr = presets.in_flight_per_pod(model.runtime, model.name, namespace)
    group = {
        "name": f"mlplane/{lowering.system.name}/{model.name}/autoscaling",
        "rules": [{"record": record, "expr": expr}],
    }
    return {
        "apiVersion": MONITOR_API,
        "kind": "PrometheusRule",
        "metadata": lowering.metadata(
            names.logical(model.name, "autoscaling"),
            names.workload_labels(lowering.system, model, names.SERVING),
        ),
        "spec": {"groups": [group]},
    }


def disruption_budget(lowering: Lowering, model: ir.Model) -> dict[str, Any]:
    """At most one pod down at a time during voluntary disruptions (node drains)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": lowering.metadata(
            model.name, names.workload_labels(lowering.system, model, names.SERVING)
        ),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": names.selector(model.name, names.SERVING)},
        },
    }


def service_monitor(lowering: Lowering, model: ir.Model) -> dict[str, Any]:
    """Scrapes the runtime's metrics port and path (``servers.py``), over Istio's mutual TLS
    under an Istio mesh (``mesh.py``). A Rollout's pods carry ``rollouts-pod-template-hash``;
    ``podTargetLabels`` copies it onto every series, so the rollout analysis can read the new
    version's pods apart from the stable ones."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": names.selector(model.name, names.SERVING)},
        "namespaceSelector": {"matchNames": [lowering.namespace]},
        "endpoints": [
            {
                "port": servers.metrics_port_name(model),
                "path": servers.metrics_path(model),
                "interval": SCRAPE_INTERVAL,
                "scheme": "http",
                **(mesh.scrape_tls(lowering) or {}),
            }
        ],
    }
    if model.serving.rollout.strategy != "rolling":
        spec["podTargetLabels"] = [rollouts.POD_HASH_LABEL]
    return {
        "apiVersion": MONITOR_API,
        "kind": "ServiceMonitor",
        "metadata": lowering.metadata(
            model.name, names.workload_labels(lowering.system, model, names.SERVING)
        ),
        "spec": spec,
    }
