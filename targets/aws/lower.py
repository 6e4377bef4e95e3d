"""Lowering a system model to the AWS resource graph of one environment.

The graph is a tree for ``pulumi preview``: a ``mlplane:index:System`` component holds the
environment's provider, the KMS keys, the access-log bucket, the managed buckets and the alarms;
one ``mlplane:index:Model`` component per model holds its execution role, log group, SageMaker
model, endpoint configuration, endpoint and scaling. Checks run first (``checks.py``); the steps
still run after an error so one build shows every problem, and ``lower`` then returns no graph.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.targets.aws import (
    alarm_seam,
    batch,
    buckets,
    checks,
    codes,
    keys,
    names,
    roles,
    serving,
    training,
)
from mlplane.targets.aws.context import Lowering, model_tier
from mlplane.targets.aws.provider import lower_provider

TARGET_NAME = "aws"


def lower(system: ir.System, diagnostics: Diagnostics) -> ResourceGraph | None:
    """The resource graph of ``system``, or None when the spec cannot be lowered (see the
    diagnostics, each located at the spec line at fault)."""
    found = Diagnostics()
    lowering = Lowering(system, found)
    checks.check_spec(lowering)
    root = names.system_component(system)
    lowering.add_component(root, names.SYSTEM_COMPONENT_TYPE, lowering.origin(("metadata",)), None)
    lower_provider(lowering, root)
    lower_data_plane(lowering, root)
    served = {name: lower_model(lowering, model, root) for name, model in system.models.items()}
    alerts = keys.lower_alerts_key(lowering, root) if system.models or system.slas else None
    rollback = alarm_seam.lower(lowering, served, alerts, root)
    for name, model in system.models.items():
        lower_endpoint(lowering, model, served[name], rollback)
    keys.lower_tier_keys(lowering, tiers_in_use(lowering), root)
    diagnostics.extend(found)
    if found.has_errors:
        return None
    return ResourceGraph.build(system.environment.name, TARGET_NAME, lowering.resources)


def check_volume_keys(lowering: Lowering) -> None:
    """The notes of the volumes SageMaker refuses a KMS key for (instance types with local NVMe
    storage: ``serving.tier_volume_key``), without building anything: what ``mlplane
    validate`` reports with the checks. It asks the functions the lowering takes each volume's
    key from, for the endpoints, training jobs and batch transforms the lowering makes."""
    for _, model in sorted(lowering.system.models.items()):
        serving.volume_key(lowering, model)
        if model.training is not None and training.lowered(model):
            assert model.training.instance_type is not None
            training.training_volume_key(lowering, model, model.training.instance_type)
        if model.batch is not None and model.batch.inputs and batch.ready(lowering, model):
            batch.volume_key(lowering, model, model.batch)


def tiers_in_use(lowering: Lowering) -> dict[str, bool]:
    """Classification tiers that need a key -> whether endpoint log groups use it."""
    system = lowering.system
    tiers = {managed.tier: False for managed in buckets.managed_buckets(system)}
    for model in system.models.values():
        tiers[model_tier(system, model)] = True
    for model in system.models.values():
        if model.batch is not None:
            tiers.setdefault(batch.batch_tier(system, model, model.batch), False)
    return tiers


def lower_data_plane(lowering: Lowering, root: str) -> None:
    """The managed buckets, logging into the environment's log bucket."""
    managed = buckets.managed_buckets(lowering.system)
    if not managed:
        return
    logs = buckets.lower_log_bucket(lowering, root)
    for bucket in managed:
        buckets.lower_bucket(lowering, bucket, names.key(bucket.tier), logs, root)


def lower_model(lowering: Lowering, model: ir.Model, root: str) -> serving.Serving:
    component = names.model_component(model.name)
    lowering.add_component(component, names.MODEL_COMPONENT_TYPE, model.origin, root)
    role = roles.lower_role(lowering, model, component)
    training.lower_training(lowering, model, component)
    batch.lower_batch(lowering, model, component)
    return serving.lower_serving(lowering, model, role, component)


def lower_endpoint(
    lowering: Lowering,
    model: ir.Model,
    served: serving.Serving,
    rollback: Mapping[str, alarm_seam.Rollback],
) -> None:
    alarms = rollback.get(model.name)
    if alarms is not None and not alarms.names:
        path = ("models", model.name, "serving", "rollout")
        lowering.diagnostics.error(
            codes.ROLLBACK_WITHOUT_ALARMS,
            f"model {model.name!r} has no rollback alarm, so SageMaker could not roll a bad "
            "deployment back",
            lowering.location(path),
            path,
            f"add an SLA on model {model.name!r} (availability or latency)",
        )
    alarm_names, resources = (alarms.names, alarms.resources) if alarms else ((), ())
    policy = roles.lower_rollback_policy(lowering, model, alarm_names, served.component)
    needs = (*resources, policy) if policy is not None else resources
    serving.lower_endpoint(lowering, model, served, alarm_names, needs)
