"""What a planned change of a model's SageMaker endpoint does to its live serving (the plan's
``Target.redeploy``, see ``compiler/plan/redeploy.py``).

An ``Endpoint`` whose ``endpointConfigName`` changes (directly, or because the configuration it
reads is replaced) is updated with ``UpdateEndpoint``, which deploys the new configuration to a
new fleet and shifts the traffic to it as the endpoint's ``deploymentConfig`` says (blue/green:
canary, linear or all at once, then the bake; or rolling batches); the line reads those settings
from the head's endpoint. A replaced endpoint is deleted before it is created again
(``deleteBeforeReplace``): no serving in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplane.compiler.core.plugins import ServingChange

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"


def redeploy(change: ServingChange) -> str | None:
    if change.type != ENDPOINT:
        return None
    if change.action == "replace":
        return (
            "the live endpoint is replaced: deleted, then created again (no serving until "
            "the new one is in service)"
        )
    if change.action != "update" or not any(p[:1] == ("endpointConfigName",) for p in change.paths):
        return None
    config = change.inputs.get("deploymentConfig") or {}
    return f"the live endpoint is redeployed ({_deployment(config)})"


def _deployment(config: Mapping[str, Any]) -> str:
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
