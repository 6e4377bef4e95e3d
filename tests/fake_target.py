"""A small stand-in target, so that the build tests do not depend on any real target's lowering.

It lowers a system to a graph derived only from the system model (a namespace, and per model a
component, a ServiceAccount and a Deployment that reads a secret), and emits one README per
model. It implements the whole target protocol (``compiler/core/plugins.py``) with its own small
tables, so the plan and policy tests exercise the seam rather than the real target's tables: its
settings (the cluster context), the residency they imply (a context ``NAME@ZONE`` runs in
``ZONE``), what forces a replacement, what holds data or serves traffic, its own risk flags
(``fake-context-changed`` for a context change; ``fake-capacity-lowered`` when a model's
minimum replicas go down) and its redeploy lines (a Deployment whose replicas change is
rescaled). Nothing of it is known to ``compiler/``, which is what a third-party target is. Run
as a script, it installs itself as the ``kubernetes`` target and runs the CLI, so the
determinism and lock tests can build in subprocesses:

    python tests/fake_target.py build SPEC --env dev --out DIR
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

if __name__ == "__main__":  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlplane.compiler.core import plugins
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import Resource, ResourceGraph, ResourceOptions, secret_ref
from mlplane.compiler.core.ir import Model, Origin, System, TargetSettings
from mlplane.compiler.core.plugins import (
    CloudAccount,
    ModelRisk,
    ReplaceTable,
    RiskCode,
    RiskyTypes,
    ServingChange,
    SettingField,
    SettingResidency,
)
from mlplane.compiler.core.provenance import header_line
from mlplane.schema import models as spec


@dataclass(frozen=True, slots=True)
class FakeSettings(TargetSettings):
    kube_context: str | None = None


UNSET = FakeSettings()
TABLE = ReplaceTable(
    "kubernetes:",
    ("metadata.name", "metadata.namespace"),
    MappingProxyType({"kubernetes:apps/v1:Deployment": ("spec.selector",)}),
)
RISKY = RiskyTypes(
    data=frozenset({"kubernetes:core/v1:Namespace"}),
    serving=frozenset({"kubernetes:apps/v1:Deployment"}),
)


CONTEXT_CHANGED = "fake-context-changed"
CAPACITY_LOWERED = "fake-capacity-lowered"
RISKS = (
    RiskCode(CONTEXT_CHANGED, "the fake target's cluster context changes"),
    RiskCode(
        CAPACITY_LOWERED,
        "a model's minimum replicas go down on the fake target",
        "fewer pods serve the same traffic",
    ),
)


def _context(settings: TargetSettings) -> str:
    own = settings if isinstance(settings, FakeSettings) else UNSET
    return own.kube_context or "default"


def _capacity_risk(old: Model, new: Model) -> str | None:
    lowered = new.serving.replicas_min < old.serving.replicas_min
    return CAPACITY_LOWERED if lowered else None


class FakeTarget:
    name = "kubernetes"
    replace_table = TABLE
    risky_types = RISKY
    unset_settings = UNSET
    setting_fields: Sequence[SettingField] = (
        SettingField(
            "cluster context", ("kubernetes", "context"), _context, lambda a, b: CONTEXT_CHANGED
        ),
    )
    risk_codes: Sequence[RiskCode] = RISKS
    model_risks: Sequence[ModelRisk] = (ModelRisk(("serving", "replicas"), _capacity_risk),)

    def settings(self, environment: spec.Environment) -> FakeSettings:
        kube = environment.kubernetes
        return FakeSettings(kube.context) if kube else UNSET

    def residency(self, environment: spec.Environment) -> SettingResidency | None:
        """A context ``NAME@ZONE`` runs in residency ``ZONE``."""
        context = environment.kubernetes.context if environment.kubernetes else None
        if context is None or "@" not in context:
            return None
        zone = context.rsplit("@", 1)[1]
        return SettingResidency(
            zone, ("kubernetes", "context"), "cluster context", "context", context
        )

    namespace_path = ("kubernetes", "namespace")

    def namespace(self, environment: spec.Environment) -> str | None:
        kube = environment.kubernetes
        return kube.namespace if kube else None

    def cloud_account(self, environment: spec.Environment) -> CloudAccount | None:
        """None: the fake cluster belongs to no cloud account."""
        del environment
        return None

    def redeploy(self, change: ServingChange) -> str | None:
        """A Deployment whose replicas change is rescaled."""
        if change.type != "kubernetes:apps/v1:Deployment" or change.action != "update":
            return None
        if ("spec", "replicas") not in change.paths:
            return None
        return f"rescaled to {change.inputs['spec']['replicas']} pods ({change.rollout})"

    def lower(self, system: System, diagnostics: Diagnostics) -> ResourceGraph | None:
        del diagnostics
        namespace = system.environment.namespace
        env = system.environment
        resources = [
            Resource("mlplane:index:System", system.name, {}, env.origin, component=True),
            Resource(
                "kubernetes:core/v1:Namespace",
                f"{system.name}-namespace",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                env.origin,
                parent=system.name,
                options=ResourceOptions(protect=env.production),
            ),
        ]
        for model in system.models.values():
            resources += _model_resources(
                system, model.name, model.serving.replicas_min, model.origin
            )
        return ResourceGraph.build(env.name, self.name, resources)

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        header = f"<!-- {header_line(system)} -->\n"
        return {
            f"notes/{r.name}.md": header + f"{len(r.inputs)} inputs\n"
            for r in graph
            if r.type == "mlplane:index:Model"
        }


def _model_resources(system: System, model: str, replicas: int, origin: Origin) -> list[Resource]:
    namespace = system.environment.namespace
    component = f"{system.name}-{model}"
    metadata = {"name": model, "namespace": namespace}
    env = [{"name": "TOKEN", "value": secret_ref(f"{model}-token")}]
    container = {"name": model, "image": "ghcr.io/acme/x@sha256:" + "0" * 64, "env": env}
    spec = {"replicas": replicas, "template": {"spec": {"containers": [container]}}}
    needs = (f"{system.name}-namespace",)
    return [
        Resource(
            "mlplane:index:Model",
            component,
            {"model": model},
            origin,
            parent=system.name,
            component=True,
        ),
        Resource(
            "kubernetes:core/v1:ServiceAccount",
            f"{component}-sa",
            {"metadata": metadata},
            origin,
            component,
            needs,
        ),
        Resource(
            "kubernetes:apps/v1:Deployment",
            f"{component}-deployment",
            {"metadata": metadata, "spec": spec},
            origin,
            component,
            needs,
        ),
    ]


FAKE = FakeTarget()


def install(
    monkeypatch: Any, target: object = FAKE, extra_emitters: Mapping[str, object] | None = None
) -> None:
    """Make ``plugins.targets()`` (and optionally ``plugins.emitters()``) return fakes."""
    real_emitters = dict(plugins.emitters())
    monkeypatch.setattr(plugins, "targets", lambda: {"kubernetes": target} if target else {})
    monkeypatch.setattr(plugins, "emitters", lambda: {**real_emitters, **(extra_emitters or {})})


if __name__ == "__main__":
    plugins.targets = lambda: {"kubernetes": FAKE}  # type: ignore[assignment]
    from mlplane.compiler.cli.main import main

    main(sys.argv[1:])
