"""What the resource changes mean for a model: its live serving redeployed, its pods restarted.

A reviewer reads "endpoint configuration replaced" as plumbing; what it means is that the live
endpoint moves to a new fleet. This module turns the resource changes of a model's serving into
one line of the ML summary per model, in the spec's terms, with the rollout that will carry it:

- AWS: a SageMaker ``Endpoint`` whose ``endpointConfigName`` changes (directly, or because the
  configuration it reads is replaced) is updated with ``UpdateEndpoint``, which deploys the new
  configuration to a new fleet and shifts the traffic to it as the endpoint's
  ``deploymentConfig`` says (blue/green: canary, linear or all at once, then the bake; or
  rolling batches); the line reads those settings from the head's endpoint. A replaced endpoint
  is deleted before it is created again (``deleteBeforeReplace``): no serving in between.
- Kubernetes: a serving workload (Deployment, StatefulSet, DaemonSet, Argo Rollout) whose pod
  template changes (the config hash of the ConfigMap the pods read, an image, the environment,
  a mounted Secret's or ConfigMap's name) restarts its pods, by the model's rollout.

In a ``production`` environment each line carries the risk flag ``production-model-redeployed``,
so ``--fail-on risk`` holds such a plan for review. The model is the one whose spec element
produced the resource (``origin.path`` under ``models.<name>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.plan.diff import parse_path
from mlplane.compiler.plan.model import ResourceChange, ResourceJson, SpecChange

REDEPLOY_RISK = "production-model-redeployed"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
WORKLOADS = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:argoproj.io/v1alpha1:Rollout",
    }
)
_TEMPLATE = ("spec", "template")
CONFIG_HASH = "mlplane.dev/config-hash"


def redeploys(
    changes: Iterable[ResourceChange], head: ir.System, resources: Mapping[str, ResourceJson]
) -> list[SpecChange]:
    """One summary line per model whose serving is redeployed (first resource wins)."""
    found: dict[str, SpecChange] = {}
    for change in changes:
        model = _model_of(change)
        if model is None or model not in head.models or model in found:
            continue
        text = None
        if change.type == ENDPOINT:
            text = _endpoint(change, resources.get(change.name))
        elif change.type in WORKLOADS:
            text = _workload(change, head.models[model])
        if text is not None:
            risks = (REDEPLOY_RISK,) if head.environment.production else ()
            line = f"model {model}: {text}"
            found[model] = SpecChange("models", model, "changed", line, change.source, risks)
    return [found[name] for name in sorted(found)]


def _model_of(change: ResourceChange) -> str | None:
    path = parse_path(change.source.path) if change.source.path else ()
    if len(path) >= 2 and path[0] == "models" and isinstance(path[1], str):
        return path[1]
    return None


def _endpoint(change: ResourceChange, resource: ResourceJson | None) -> str | None:
    if change.action == "replace":
        return (
            "the live endpoint is replaced: deleted, then created again (no serving until "
            "the new one is in service)"
        )
    if change.action != "update" or not any(
        parse_path(p.path)[:1] == ("endpointConfigName",) for p in change.changes
    ):
        return None
    config = (resource or {}).get("inputs", {}).get("deploymentConfig") or {}
    return f"the live endpoint is redeployed ({_deployment(config)})"


def _deployment(config: dict[str, Any]) -> str:
    """``blue/green, canary 25 %, bake 10 m`` from an endpoint's ``deploymentConfig``."""
    rolling = config.get("rollingUpdatePolicy")
    if isinstance(rolling, dict):
        size = (rolling.get("maximumBatchSize") or {}).get("value")
        wait = rolling.get("waitIntervalInSeconds")
        return f"rolling, {size} % of the fleet at a time, {_duration(wait)} apart"
    policy = config.get("blueGreenUpdatePolicy") or {}
    routing = policy.get("trafficRoutingConfiguration") or {}
    kind = routing.get("type", "ALL_AT_ONCE")
    bake = f"bake {_duration(routing.get('waitIntervalInSeconds'))}"
    if kind == "CANARY":
        return f"blue/green, canary {(routing.get('canarySize') or {}).get('value')} %, {bake}"
    if kind == "LINEAR":
        step = (routing.get("linearStepSize") or {}).get("value")
        return f"blue/green, linear steps of {step} %, {bake}"
    return f"blue/green, all at once, {bake}"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int) or seconds < 0:
        return "unknown"
    return f"{seconds // 60} m" if seconds % 60 == 0 and seconds else f"{seconds} s"


def _workload(change: ResourceChange, model: ir.Model) -> str | None:
    if change.action == "replace":
        return "pods replaced: the workload is deleted and created again, every pod at once"
    reasons = [
        _template_reason(path[len(_TEMPLATE) :])
        for path in (parse_path(p.path) for p in change.changes)
        if path[: len(_TEMPLATE)] == _TEMPLATE
    ]
    if not reasons:
        return None
    return f"pods restart ({', '.join(dict.fromkeys(reasons))}; {_rollout(model.serving.rollout)})"


def _template_reason(path: tuple[str | int, ...]) -> str:
    """What a pod-template path is, in a reviewer's words."""
    if path[:3] == ("metadata", "annotations", CONFIG_HASH):
        return "config hash"
    leaf = [p for p in path if isinstance(p, str)]
    if len(path) >= 4 and path[1] in ("containers", "initContainers"):
        field = path[3]
        if field == "image":
            return "image"
        if field in ("env", "envFrom"):
            return "env"
    if "secret" in leaf or "secretName" in leaf:
        return "mounted secret"
    if "configMap" in leaf:
        return "mounted config"
    return "pod template"


def _rollout(rollout: ir.Rollout) -> str:
    pause = (
        "" if rollout.pause_seconds is None else f", pause {_duration(int(rollout.pause_seconds))}"
    )
    if rollout.strategy == "canary":
        steps = ", ".join(f"{s} %" for s in rollout.steps)
        return f"canary {steps}{pause}"
    if rollout.strategy == "blueGreen":
        return f"blue/green{pause}"
    return f"{rollout.strategy} update"


_BEFORE_MODELS = ("system", "environment", "dataSources", "models")


def with_redeploys(lines: list[SpecChange], found: list[SpecChange]) -> list[SpecChange]:
    """The summary with the redeploy lines after the models' own lines."""
    at = sum(1 for line in lines if line.section in _BEFORE_MODELS)
    return [*lines[:at], *found, *lines[at:]]
