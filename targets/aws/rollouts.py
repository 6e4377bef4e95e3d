"""A model's rollout as the SageMaker endpoint's ``deploymentConfig``.

- ``rolling``: ``rollingUpdatePolicy``, a quarter of the fleet at a time;
- ``canary``: ``blueGreenUpdatePolicy`` with ``CANARY`` traffic routing sized by the first step
  (SageMaker shifts the rest at once after the wait; later steps are not expressible);
- ``blueGreen``: ``blueGreenUpdatePolicy`` with ``ALL_AT_ONCE`` after the pause;
- ``shadow``: the endpoint configuration gets a shadow variant, updated all at once.

Every policy carries ``autoRollbackConfiguration`` with the model's rollback alarms: without
alarms SageMaker cannot roll a bad version back, so ``lower`` refuses such a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlplane.compiler.core import ir

ROLLING_BATCH_PERCENT = 25
ROLLING_WAIT_SECONDS = 60
DEFAULT_BAKE_SECONDS = 600
"""How long SageMaker watches the alarms before a shift when the spec sets no pause."""


def _wait(rollout: ir.Rollout) -> int:
    pause = rollout.pause_seconds
    return DEFAULT_BAKE_SECONDS if pause is None else int(pause)


def update_policy(rollout: ir.Rollout) -> dict[str, Any]:
    """The rolling or blue/green update policy of ``rollout`` (camelCase wire form)."""
    if rollout.strategy == "rolling":
        return {
            "rollingUpdatePolicy": {
                "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": ROLLING_BATCH_PERCENT},
                "waitIntervalInSeconds": ROLLING_WAIT_SECONDS,
            }
        }
    routing: dict[str, Any] = {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": _wait(rollout)}
    if rollout.strategy == "canary":
        routing = {
            "type": "CANARY",
            "canarySize": {"type": "CAPACITY_PERCENT", "value": rollout.steps[0]},
            "waitIntervalInSeconds": _wait(rollout),
        }
    return {"blueGreenUpdatePolicy": {"trafficRoutingConfiguration": routing}}


def deployment_config(rollout: ir.Rollout, alarm_names: Sequence[str]) -> dict[str, Any]:
    config = update_policy(rollout)
    if alarm_names:
        alarms = [{"alarmName": name} for name in alarm_names]
        config["autoRollbackConfiguration"] = {"alarms": alarms}
    return config
