"""What the resource changes mean for a model: its live serving redeployed, its pods restarted.

A reviewer reads "endpoint configuration replaced" as plumbing; what it means is that the live
endpoint moves to a new fleet. This module turns the resource changes of a model's serving into
one line of the ML summary per model, in the spec's terms, with the rollout that will carry it.
What a change of a resource means is the target's knowledge (``Target.redeploy`` in
``compiler/core/plugins.py``): on AWS, a SageMaker endpoint redeployed to a new fleet
(``targets/aws/redeploy.py``); on Kubernetes, a serving workload whose pods restart
(``targets/kubernetes/redeploy.py``).

In a ``production`` environment each line carries the risk flag ``production-model-redeployed``,
so ``--fail-on risk`` holds such a plan for review. The model is the one whose spec element
produced the resource (``origin.path`` under ``models.<name>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mlplane.compiler.core import ir, plugins
from mlplane.compiler.plan.diff import parse_path
from mlplane.compiler.plan.model import ResourceChange, ResourceJson, SpecChange

REDEPLOY_RISK = "production-model-redeployed"


def redeploys(
    changes: Iterable[ResourceChange], head: ir.System, resources: Mapping[str, ResourceJson]
) -> list[SpecChange]:
    """One summary line per model whose serving is redeployed (first resource wins)."""
    target = plugins.targets().get(head.environment.target)
    if target is None:
        return []
    found: dict[str, SpecChange] = {}
    for change in changes:
        model = _model_of(change)
        if model is None or model not in head.models or model in found:
            continue
        if change.action not in ("update", "replace"):
            continue  # a created or deleted resource redeploys nothing that runs
        text = target.redeploy(_serving_change(change, head.models[model], resources))
        if text is not None:
            risks = (REDEPLOY_RISK,) if head.environment.production else ()
            line = f"model {model}: {text}"
            found[model] = SpecChange("models", model, "changed", line, change.source, risks)
    return [found[name] for name in sorted(found)]


def _serving_change(
    change: ResourceChange, model: ir.Model, resources: Mapping[str, ResourceJson]
) -> plugins.ServingChange:
    return plugins.ServingChange(
        type=change.type,
        action=change.action,
        paths=tuple(parse_path(p.path) for p in change.changes),
        inputs=(resources.get(change.name) or {}).get("inputs") or {},
        model=model,
        rollout=_rollout(model.serving.rollout),
    )


def _model_of(change: ResourceChange) -> str | None:
    path = parse_path(change.source.path) if change.source.path else ()
    if len(path) >= 2 and path[0] == "models" and isinstance(path[1], str):
        return path[1]
    return None


def _duration(seconds: int) -> str:
    return f"{seconds // 60} m" if seconds % 60 == 0 and seconds else f"{seconds} s"


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
