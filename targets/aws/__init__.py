"""The AWS target: lowers a system to a resource graph on ``pulumi_aws``.

See README.md in this folder for what it creates, what it only references and what needs a
real account to verify. Importing this package registers the target's diagnostic codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlplane.compiler.core import plugins
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.ir import System
from mlplane.schema import models as spec
from mlplane.targets.aws import checks, redeploy, replace, risks
from mlplane.targets.aws import codes as codes
from mlplane.targets.aws import settings as target_settings
from mlplane.targets.aws.context import Lowering
from mlplane.targets.aws.lower import TARGET_NAME, check_volume_keys, lower


class AwsTarget:
    """The ``aws`` entry of the ``mlplane.targets`` entry-point group."""

    name = TARGET_NAME

    def lower(self, system: System, diagnostics: Diagnostics) -> ResourceGraph | None:
        return lower(system, diagnostics)

    def check(self, system: System, diagnostics: Diagnostics) -> None:
        """What ``lower`` refuses (``checks.check_spec``, and the alarms' refusals) and its
        notes of the volumes left without a KMS key (``lower.check_volume_keys``), for
        ``mlplane validate``, which builds no graph."""
        lowering = Lowering(system, diagnostics)
        checks.check_without_lowering(lowering)
        check_volume_keys(lowering)

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        """No files of its own: the Pulumi program and monitoring come from the emitters."""
        del system, graph
        return {}

    def settings(self, environment: spec.Environment) -> target_settings.AwsSettings:
        return target_settings.settings(environment)

    @property
    def unset_settings(self) -> target_settings.AwsSettings:
        return target_settings.UNSET

    @property
    def replace_table(self) -> plugins.ReplaceTable:
        return replace.TABLE

    @property
    def risky_types(self) -> plugins.RiskyTypes:
        return replace.RISKY_TYPES

    @property
    def setting_fields(self) -> Sequence[plugins.SettingField]:
        return target_settings.SETTING_FIELDS

    def residency(self, environment: spec.Environment) -> plugins.SettingResidency | None:
        return target_settings.residency(environment)

    @property
    def namespace_path(self) -> None:
        """None: no AWS setting names a namespace (the system's is ``<system>-<env>``)."""
        return None

    def namespace(self, environment: spec.Environment) -> str | None:
        del environment
        return None

    def cloud_account(self, environment: spec.Environment) -> plugins.CloudAccount | None:
        return target_settings.cloud_account(environment)

    @property
    def risk_codes(self) -> Sequence[plugins.RiskCode]:
        return risks.RISK_CODES

    @property
    def model_risks(self) -> Sequence[plugins.ModelRisk]:
        return risks.MODEL_RISKS

    def redeploy(self, change: plugins.ServingChange) -> str | None:
        return redeploy.redeploy(change)


TARGET = AwsTarget()

__all__ = ["TARGET", "AwsTarget", "lower"]
