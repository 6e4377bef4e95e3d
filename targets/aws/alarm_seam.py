"""The call into the alarms module (``alarms.py``): served models in, rollback alarms out.

The alarms module lowers the SLAs to CloudWatch alarms, SNS topics and a dashboard; the endpoint
of each model names its rollback alarms in ``autoRollbackConfiguration`` and depends on them.
Each model's rollback alarms read the metrics of its endpoint configuration's fleet only (the
configuration's name is passed as a reference), so during a blue/green deployment they watch
the new fleet.
Without the module (an older build of this target) no alarms are lowered and ``lower`` reports
nothing about rollback, so the rest of the target stays usable.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

from mlplane.compiler.core.graph import ref
from mlplane.targets.aws import names
from mlplane.targets.aws.context import Lowering
from mlplane.targets.aws.serving import Serving


@dataclass(frozen=True, slots=True)
class Rollback:
    """One model's rollback alarms: CloudWatch names and logical resource names."""

    names: tuple[str, ...]
    resources: tuple[str, ...]


def _alarms_module() -> ModuleType | None:
    try:
        return importlib.import_module("mlplane.targets.aws.alarms")
    except ImportError:
        return None


def lower(
    lowering: Lowering, served: Mapping[str, Serving], kms_key: str | None, parent: str
) -> Mapping[str, Rollback]:
    """Run the alarms module and add its resources; empty when it is absent or nothing is served."""
    module = _alarms_module()
    if module is None or kms_key is None:
        return {}
    models = {
        name: module.ServedModel(
            model=name,
            endpoint_name=item.endpoint_name,
            variant_name=names.VARIANT,
            origin=lowering.system.models[name].origin,
            config_name=ref(item.config, "name"),
        )
        for name, item in served.items()
    }
    result = module.lower_alarms(
        lowering.system,
        models,
        provider=lowering.provider,
        kms_key=kms_key,
        parent=parent,
        diagnostics=lowering.diagnostics,
    )
    lowering.resources.extend(result.resources)
    return {
        name: Rollback(
            tuple(result.rollback_alarm_names.get(name, ())),
            tuple(result.rollback_alarm_resources.get(name, ())),
        )
        for name in served
    }


def check(lowering: Lowering) -> None:
    """What the alarms module refuses or leaves out (receivers SNS cannot deliver to, SLAs
    without a CloudWatch equivalent), reported without building a graph: the module runs on
    the endpoint names the lowering would use and its resources are dropped. ``mlplane
    validate`` reports through this what the build reports through :func:`lower`."""
    module = _alarms_module()
    system = lowering.system
    if module is None or not (system.models or system.slas):
        return
    models = {
        name: module.ServedModel(
            model=name,
            endpoint_name=names.endpoint(system, name),
            variant_name=names.VARIANT,
            origin=model.origin,
            config_name=None,
        )
        for name, model in system.models.items()
    }
    module.lower_alarms(
        system,
        models,
        provider=lowering.provider,
        kms_key=names.key("alerts"),  # the alerts key of keys.lower_alerts_key
        parent=None,
        diagnostics=lowering.diagnostics,
    )
