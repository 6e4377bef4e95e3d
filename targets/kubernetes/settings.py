"""The Kubernetes settings of an environment (``environments.<env>.kubernetes``) that only this
target reads; the namespace is the system model's own (``ir.Environment.namespace``), because
the monitoring emitter labels every series with it."""

from __future__ import annotations

from dataclasses import dataclass

from mlplane.compiler.core import ir
from mlplane.compiler.core.plugins import SettingField
from mlplane.schema import models as spec


@dataclass(frozen=True, slots=True)
class KubernetesSettings(ir.TargetSettings):
    kube_context: str | None = None
    """The kubeconfig context to deploy with; None: the current one."""


UNSET = KubernetesSettings()


def settings(environment: spec.Environment) -> KubernetesSettings:
    kube = environment.kubernetes
    return KubernetesSettings(kube.context) if kube else UNSET


def kubernetes_of(found: ir.TargetSettings) -> KubernetesSettings:
    """``found`` if these are Kubernetes settings, else :data:`UNSET`."""
    return found if isinstance(found, KubernetesSettings) else UNSET


SETTING_FIELDS: tuple[SettingField, ...] = (
    SettingField(
        "cluster context",
        ("kubernetes", "context"),
        lambda s: kubernetes_of(s).kube_context or "default",
    ),
)
"""The plan summary's lines for these settings, in order."""
