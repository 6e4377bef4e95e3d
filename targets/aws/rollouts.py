"""A model's rollout as the SageMaker endpoint's ``deploymentConfig`` (deployment guardrails).

Every strategy but ``rolling`` is a blue/green deployment: SageMaker provisions a new (green)
fleet beside the old (blue) one, shifts traffic to it, and rolls everything back to the blue
fleet when one of the rollback alarms fires while it watches them.

- ``rolling``: ``rollingUpdatePolicy``, a quarter of the fleet at a time, 60 s apart;
- ``canary`` with one step, or steps that are not evenly spaced: ``CANARY`` traffic routing
  sized by the first step (SageMaker's canary has exactly two shifts: the canary, then the rest;
  later steps of the spec are not expressible);
- ``canary`` whose steps are ``s, 2s, 3s, ...`` up to the last multiple of ``s`` under 100
  (``[25, 50, 75]``): ``LINEAR`` routing of ``s`` % per step, exactly the spec's steps;
- ``blueGreen``: ``ALL_AT_ONCE`` - all traffic moves to the green fleet in one shift, then the
  bake period (``rollout.pause``) during which the alarms watch the green fleet while the blue
  fleet stays provisioned, so a rollback is an instant traffic shift. SageMaker has no preview
  stage without traffic (the Kubernetes target's preview Service): the bake is after the shift;
- ``shadow``: the endpoint configuration gets a shadow variant, updated ``ALL_AT_ONCE``.

Waits, chosen on purpose:

- ``waitIntervalInSeconds`` (0-3600): the bake after each traffic shift, ``rollout.pause`` or
  600 s; for ``ALL_AT_ONCE`` the same value (SageMaker's guide calls the watch after the last
  shift the final baking period);
- ``terminationWaitInSeconds`` (0-3600, SageMaker's default is 0: the blue fleet would go as
  soon as the last shift is done): the same bake again, so the blue fleet outlives the last
  shift by the pause and a late alarm still finds it;
- ``maximumExecutionTimeoutInSeconds`` (600-14400 in the provider, SageMaker allows 28800): the
  sum of every wait plus :data:`PROVISION_SECONDS` for launching and health-checking the green
  fleet; past it SageMaker stops and rolls back. ``checks.py`` refuses a rollout whose waits do
  not fit (``aws-rollout-pause``).

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
"""How long SageMaker watches the alarms after a shift when the spec sets no pause."""
PROVISION_SECONDS = 3600
"""Allowance for launching, loading and health-checking a fleet (large GPU images and model
artifacts take minutes), added to the waits in the execution timeout."""
MAX_EXECUTION_SECONDS = 14_400
"""``maximumExecutionTimeoutInSeconds`` the provider accepts (600 to 14400)."""
MIN_EXECUTION_SECONDS = 600
MIN_LINEAR_PERCENT = 10
MAX_LINEAR_PERCENT = 50
"""SageMaker's linear step: 10 to 50 % of the fleet."""


def bake_seconds(rollout: ir.Rollout) -> int:
    pause = rollout.pause_seconds
    return DEFAULT_BAKE_SECONDS if pause is None else int(pause)


def linear_step(rollout: ir.Rollout) -> int | None:
    """The step ``s`` when the canary steps are exactly ``s, 2s, ...`` below 100 (``LINEAR``)."""
    steps = rollout.steps
    if rollout.strategy != "canary" or len(steps) < 2:
        return None
    step = steps[0]
    expected = list(range(step, 100, step))
    if list(steps) != expected or not MIN_LINEAR_PERCENT <= step <= MAX_LINEAR_PERCENT:
        return None
    return step


def routing(rollout: ir.Rollout) -> dict[str, Any]:
    """The ``trafficRoutingConfiguration`` of a blue/green rollout."""
    wait = bake_seconds(rollout)
    linear = linear_step(rollout)
    if linear is not None:
        size = {"type": "CAPACITY_PERCENT", "value": linear}
        return {"type": "LINEAR", "linearStepSize": size, "waitIntervalInSeconds": wait}
    if rollout.strategy == "canary":
        size = {"type": "CAPACITY_PERCENT", "value": rollout.steps[0]}
        return {"type": "CANARY", "canarySize": size, "waitIntervalInSeconds": wait}
    return {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": wait}


def total_wait_seconds(rollout: ir.Rollout) -> int:
    """Every wait of the deployment: the bakes after each shift and the termination wait."""
    if rollout.strategy == "rolling":
        return (100 // ROLLING_BATCH_PERCENT) * ROLLING_WAIT_SECONDS
    wait = bake_seconds(rollout)
    linear = linear_step(rollout)
    shifts = -(-100 // linear) if linear is not None else (2 if rollout.strategy == "canary" else 1)
    return shifts * wait + wait


def execution_timeout(rollout: ir.Rollout) -> int:
    """The waits plus the provisioning allowance, within the provider's limits."""
    wanted = total_wait_seconds(rollout) + PROVISION_SECONDS
    return max(MIN_EXECUTION_SECONDS, min(wanted, MAX_EXECUTION_SECONDS))


def update_policy(rollout: ir.Rollout) -> dict[str, Any]:
    """The rolling or blue/green update policy of ``rollout`` (camelCase wire form)."""
    if rollout.strategy == "rolling":
        return {
            "rollingUpdatePolicy": {
                "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": ROLLING_BATCH_PERCENT},
                "waitIntervalInSeconds": ROLLING_WAIT_SECONDS,
                "maximumExecutionTimeoutInSeconds": execution_timeout(rollout),
            }
        }
    return {
        "blueGreenUpdatePolicy": {
            "trafficRoutingConfiguration": routing(rollout),
            "terminationWaitInSeconds": bake_seconds(rollout),
            "maximumExecutionTimeoutInSeconds": execution_timeout(rollout),
        }
    }


def deployment_config(rollout: ir.Rollout, alarm_names: Sequence[str]) -> dict[str, Any]:
    config = update_policy(rollout)
    if alarm_names:
        alarms = [{"alarmName": name} for name in alarm_names]
        config["autoRollbackConfiguration"] = {"alarms": alarms}
    return config
