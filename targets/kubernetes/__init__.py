"""The Kubernetes target: lowers a system to a resource graph and emits files from it.

See README.md in this folder for what it emits, its prerequisites on the cluster and what it
does not support. Importing this package registers the target's diagnostic codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mlplane.compiler.core import plugins
from mlplane.compiler.core.diagnostics import Diagnostics, SpecPath
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.ir import System
from mlplane.schema import models as spec
from mlplane.targets.kubernetes import codes as codes
from mlplane.targets.kubernetes import kubeflow_register, redeploy, replace
from mlplane.targets.kubernetes import settings as target_settings
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.lower import TARGET_NAME, check_without_lowering, lower
from mlplane.targets.kubernetes.manifests import emit_manifests
from mlplane.targets.kubernetes.reuse import Reuse


class KubernetesTarget:
    """The ``kubernetes`` entry of the ``mlplane.targets`` entry-point group."""

    name = TARGET_NAME
    libraries = ("kfp", "kfp-kubernetes", "kfp-pipeline-spec", "protobuf", "docstring-parser")
    """What shapes the Kubeflow lowering besides this package: the SDK (``kfp``,
    ``kfp-kubernetes``) compiles training pipelines (``kubeflow_compile.py``), written through
    the pipeline IR's package (``kfp-pipeline-spec``) and ``protobuf``, with every component's
    interface read by ``docstring-parser``; the plan cache keys their versions."""

    def lower(self, system: System, diagnostics: Diagnostics) -> ResourceGraph | None:
        return lower(system, diagnostics)

    def lower_reusing(
        self, system: System, diagnostics: Diagnostics, known: Mapping[str, object]
    ) -> tuple[ResourceGraph | None, Mapping[str, object], int]:
        """``lower``, by units (``reuse.py``): those found in ``known`` are taken from it."""
        reuse = Reuse(known)
        graph = lower(system, diagnostics, reuse)
        return graph, reuse.made, reuse.reused

    def check(self, system: System, diagnostics: Diagnostics) -> None:
        """What ``lower`` refuses before it builds anything, what its network policies warn of
        and its notes of the workloads' defaults (``lower.check_without_lowering``), for
        ``mlplane validate``, which builds no graph."""
        check_without_lowering(Lowering(system, diagnostics))

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        return emit_manifests(system, graph)

    def after_apply(
        self,
        system: System,
        resources: Mapping[str, Any],
        environ: Mapping[str, str],
        echo: Callable[[str], None],
    ) -> None:
        """Register the Kubeflow recurring runs of the build (``kubeflow_register.py``)."""
        kubeflow_register.after_apply(system, resources, environ, echo)

    def before_destroy(
        self,
        system: System,
        resources: Mapping[str, Any],
        environ: Mapping[str, str],
        echo: Callable[[str], None],
    ) -> None:
        """Delete the environment's Kubeflow recurring runs (``kubeflow_register.py``)."""
        kubeflow_register.before_destroy(system, resources, environ, echo)

    def settings(self, environment: spec.Environment) -> target_settings.KubernetesSettings:
        return target_settings.settings(environment)

    @property
    def unset_settings(self) -> target_settings.KubernetesSettings:
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
        """None: a cluster's settings do not say where it runs (``residency`` does)."""
        del environment
        return None

    @property
    def namespace_path(self) -> SpecPath:
        return target_settings.NAMESPACE_PATH

    def namespace(self, environment: spec.Environment) -> str | None:
        return target_settings.namespace(environment)

    def cloud_account(self, environment: spec.Environment) -> plugins.CloudAccount | None:
        """None: a cluster's settings name no cloud account."""
        del environment
        return None

    @property
    def risk_codes(self) -> Sequence[plugins.RiskCode]:
        return target_settings.RISK_CODES

    @property
    def model_risks(self) -> Sequence[plugins.ModelRisk]:
        return ()

    def redeploy(self, change: plugins.ServingChange) -> str | None:
        return redeploy.redeploy(change)


TARGET = KubernetesTarget()

__all__ = ["TARGET", "KubernetesTarget", "emit_manifests", "lower"]
