"""The seams through which targets, graph emitters and policy packs join the pipeline.

``compiler/`` never imports ``targets/`` or ``policies/`` by name: they are found through the
entry-point groups ``mlplane.targets``, ``mlplane.emitters`` and ``mlplane.policies`` (declared
in ``pyproject.toml``), which is also how a third party adds a target or an organisation adds its
policy pack.

What the compiler must know about a target's resources and environments comes from the target
too: which input changes force a replacement (:class:`ReplaceTable`), which resource types hold
data or serve traffic (:class:`RiskyTypes`), its environment settings, which it builds from
the spec (``ir.TargetSettings``) and describes for the plan summary (:class:`SettingField`), the
residency they imply (:class:`SettingResidency`), the namespace they name, the cloud account
they deploy into (:class:`CloudAccount`), the plan's risk flags it raises
(:class:`RiskCode`, :class:`ModelRisk`) and what a change of a model's serving resources means
(:class:`ServingChange`).
CI providers join through ``mlplane.ci`` (:class:`CiProvider`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, get_args, runtime_checkable

from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics, SpecPath
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.ir import Model, System, TargetSettings
from mlplane.schema import models as spec

TARGET_GROUP = "mlplane.targets"
POLICY_GROUP = "mlplane.policies"
EMITTER_GROUP = "mlplane.emitters"
CI_GROUP = "mlplane.ci"


@dataclass(frozen=True, slots=True)
class ReplaceTable:
    """Which input changes force the provider to replace (delete and re-create) a resource.

    Every type token that starts with ``prefix`` is replaced when one of ``common`` changes,
    and a type listed in ``rows`` also when one of its own fields changes. Fields are input
    paths in the graph's wire form; ``[*]`` matches every element of a list.
    """

    prefix: str
    common: tuple[str, ...]
    rows: Mapping[str, tuple[str, ...]]

    def fields(self, token: str) -> tuple[str, ...]:
        """Every field of ``token`` whose change forces a replacement (none if not ours)."""
        if not token.startswith(self.prefix):
            return ()
        return self.common + self.rows.get(token, ())


@dataclass(frozen=True, slots=True)
class RiskyTypes:
    """Resource types whose deletion or replacement loses data, or interrupts serving."""

    data: frozenset[str] = frozenset()
    serving: frozenset[str] = frozenset()
    data_notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """What deleting or replacing a data type means, where the type's name does not say it."""


@dataclass(frozen=True, slots=True)
class SettingField:
    """One environment setting of a target as the plan summary compares it.

    ``path`` is the spec path below ``environments.<env>``; ``show`` reads an environment's
    settings (of any target: settings of another target read as unset) as text; ``risk``
    returns the risk code a change raises, if any.
    """

    label: str
    path: SpecPath
    show: Callable[[TargetSettings], str]
    risk: Callable[[TargetSettings, TargetSettings], str | None] | None = None
    unremarkable: str | None = None
    """A value the compliance report leaves out (the default, which says nothing there); the
    plan still shows it on a changed line."""


@dataclass(frozen=True, slots=True)
class SettingResidency:
    """The residency an environment's target settings place it in (an AWS region's).

    The environment's declared ``residency`` defaults to it, and a declared one that differs is
    refused at its line, with the setting (``path`` below ``environments.<env>``) as the related
    location: "its ``setting`` ``value`` is in ``residency``".
    """

    residency: str
    path: SpecPath
    setting: str
    """How the message names the setting (``AWS region``)."""
    noun: str
    """How the related location and the hint name it (``region``)."""
    value: str


@dataclass(frozen=True, slots=True)
class CloudAccount:
    """The cloud account and region an environment's target settings deploy into: the region
    the role CI assumes requests credentials in unless ``ci.environments.<env>`` names one, and
    the account that role is expected in (another one is warned about)."""

    region: str
    account_id: str


@dataclass(frozen=True, slots=True)
class RiskCode:
    """A risk flag of the plan that only a target raises (``docs/plan.md`` lists them all)."""

    code: str
    meaning: str
    """One line: what the change is."""
    note: str | None = None
    """What it means and what to do, appended to the flagged line's text."""


@dataclass(frozen=True, slots=True)
class ModelRisk:
    """A change of one model field that is a risk on this target (an instance type change of
    an autoscaled SageMaker endpoint): ``path`` below ``models.<name>``; ``risk`` returns the
    code of one of the target's :class:`RiskCode` for the old and new model, or None."""

    path: SpecPath
    risk: Callable[[Model, Model], str | None]


@dataclass(frozen=True, slots=True)
class ServingChange:
    """A planned change of one resource that a model's spec produced, as its target reads it."""

    type: str
    """The resource's type token."""
    action: str
    """``update`` or ``replace``."""
    paths: tuple[tuple[str | int, ...], ...]
    """The changed input paths, parsed (``("spec", "template", "metadata", ...)``)."""
    inputs: Mapping[str, Any]
    """The resource's inputs in the head (empty when it is not there)."""
    model: Model
    """The model in the head."""
    rollout: str
    """The model's rollout as the plan words it (``canary 25 %, 50 %, pause 5 m``)."""


@runtime_checkable
class Target(Protocol):
    """A back end: lowers a system model to a resource graph and emits files from it.

    A target may also have ``check(system, diagnostics) -> None``: the refusals of ``lower``
    that need no graph, reported the same way, so that ``mlplane validate`` reports what the
    build would refuse without paying for the lowering (:func:`check_target`).
    It may have ``after_apply`` and ``before_destroy`` (:data:`DeployStep`): steps of its own
    that ``mlplane apply`` runs after the engine's ``up`` and ``mlplane destroy`` before the
    engine's destroy (:func:`after_apply`, :func:`before_destroy`).
    It may have ``lower_reusing`` (:data:`LowerReusing`): ``lower`` in units that a plan's
    head takes from the base's lowering when their keys match (:func:`lower_reusing`).
    It may have ``libraries``: the distributions (PyPI names) besides mlplane's own whose
    versions shape what it lowers, which the plan cache keys (:func:`libraries`).
    """

    name: str

    def lower(self, system: System, diagnostics: Diagnostics) -> ResourceGraph | None:
        """The resource graph of ``system``; None (with diagnostics) when it cannot be lowered."""
        ...

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        """Files as ``{relative posix path: text}``; pure, no I/O."""
        ...

    def settings(self, environment: spec.Environment) -> TargetSettings:
        """The environment's target-specific settings (``ir.Environment.target_settings``)."""
        ...

    @property
    def unset_settings(self) -> TargetSettings:
        """This target's settings with nothing set: how an environment of another target reads."""
        ...

    @property
    def replace_table(self) -> ReplaceTable:
        """Which input changes of this target's resources force a replacement."""
        ...

    @property
    def risky_types(self) -> RiskyTypes:
        """This target's resource types that hold data or serve traffic."""
        ...

    @property
    def setting_fields(self) -> Sequence[SettingField]:
        """The environment settings the plan summary compares, in the order it shows them."""
        ...

    def residency(self, environment: spec.Environment) -> SettingResidency | None:
        """The residency the environment's settings imply (None: they imply none)."""
        ...

    @property
    def namespace_path(self) -> SpecPath | None:
        """The setting, below ``environments.<env>``, that names the namespace of the system's
        resources and series (``ir.Environment.namespace``), where the plan points a namespace
        change; None: the target has none, the namespace is always ``<system>-<env>``."""
        ...

    def namespace(self, environment: spec.Environment) -> str | None:
        """The namespace the environment's settings name (None: ``<system>-<env>``)."""
        ...

    def cloud_account(self, environment: spec.Environment) -> CloudAccount | None:
        """The cloud account and region the environment deploys into (None: none of its
        settings name one)."""
        ...

    @property
    def risk_codes(self) -> Sequence[RiskCode]:
        """The risk flags this target's settings, model risks and redeploys raise."""
        ...

    @property
    def model_risks(self) -> Sequence[ModelRisk]:
        """Changes of model fields that are risks on this target."""
        ...

    def redeploy(self, change: ServingChange) -> str | None:
        """What ``change`` does to the model's live serving, in a reviewer's words
        (``the live endpoint is redeployed (...)``); None when it does not redeploy it."""
        ...


@runtime_checkable
class Emitter(Protocol):
    """Files from any target's resource graph (the Pulumi project), next to the target's own.

    A seam rather than an import, so that ``compiler/build/outputs.py`` runs the Pulumi program printer of
    ``targets/`` without importing it by name (see this module's docstring).
    """

    name: str

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        """Files as ``{relative posix path: text}``; pure, no I/O."""
        ...


@runtime_checkable
class PolicyPack(Protocol):
    """A set of policy rules (see ``policies/``)."""

    name: str

    def rules(self) -> Sequence[Any]: ...


class CiChanges(Protocol):
    """How a repository differs from the CI files a provider generates."""

    @property
    def changed(self) -> tuple[str, ...]:
        """Generated files that are missing or differ."""
        ...

    @property
    def obsolete(self) -> tuple[str, ...]:
        """Files written earlier that the spec no longer produces."""
        ...

    @property
    def foreign(self) -> tuple[str, ...]:
        """Files in the way that the provider did not write (never touched)."""
        ...

    @property
    def stale(self) -> tuple[str, ...]: ...


@runtime_checkable
class CiProvider(Protocol):
    """A CI provider for ``mlplane ci`` (``targets/ci/`` registers ``github`` and ``gitlab``)."""

    @property
    def name(self) -> str: ...

    def check(self, system: System) -> Sequence[Diagnostic]:
        """Located errors of the CI this provider would write (``mlplane ci`` writes nothing
        while there are any); pure, no I/O."""
        ...

    def emit(self, system: System, spec_path: str) -> Mapping[str, str]:
        """The CI files as ``{path relative to the repository root: text}``; pure, no I/O."""
        ...

    def repository_root(self, spec: Path) -> Path | None: ...

    def spec_path_in(self, root: Path, spec: Path) -> str: ...

    def compare(self, root: Path, system: System, files: Mapping[str, str]) -> CiChanges: ...

    def apply(self, root: Path, files: Mapping[str, str], changes: CiChanges) -> None:
        """Write the changed files and remove the obsolete ones (never a foreign file)."""
        ...


class PluginError(Exception):
    """An installed plug-in is broken (import error or wrong shape)."""


def _load(group: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for entry in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            found[entry.name] = entry.load()
        except Exception as error:  # a broken third-party plug-in must not look like our bug
            raise PluginError(
                f"plug-in {entry.name!r} ({entry.value}) of {group} failed to load: {error}"
            ) from error
    return found


@cache
def targets() -> Mapping[str, Target]:
    loaded = _load(TARGET_GROUP)
    for name, target in loaded.items():
        if not isinstance(target, Target):
            raise PluginError(f"plug-in {name!r} of {TARGET_GROUP} is not a Target")
    return loaded


def libraries() -> tuple[str, ...]:
    """The ``libraries`` of every installed target, sorted, each once."""
    found: set[str] = set()
    for target in targets().values():
        declared = getattr(target, "libraries", ())
        if not isinstance(declared, tuple) or not all(isinstance(d, str) for d in declared):
            raise PluginError(f"target {target.name!r}: libraries must be a tuple of names")
        found.update(declared)
    return tuple(sorted(found))


@cache
def policy_packs() -> Mapping[str, PolicyPack]:
    loaded = _load(POLICY_GROUP)
    for name, pack in loaded.items():
        if not isinstance(pack, PolicyPack):
            raise PluginError(f"plug-in {name!r} of {POLICY_GROUP} is not a PolicyPack")
    return loaded


@cache
def emitters() -> Mapping[str, Emitter]:
    loaded = _load(EMITTER_GROUP)
    for name, emitter in loaded.items():
        if not isinstance(emitter, Emitter):
            raise PluginError(f"plug-in {name!r} of {EMITTER_GROUP} is not an Emitter")
    return loaded


@cache
def ci_providers() -> Mapping[str, CiProvider]:
    loaded = _load(CI_GROUP)
    for name, provider in loaded.items():
        if not isinstance(provider, CiProvider):
            raise PluginError(f"plug-in {name!r} of {CI_GROUP} is not a CiProvider")
    return loaded


def ordered_targets() -> list[Target]:
    """The installed targets in the order the language lists them (``environments.<env>.target``
    in ``schema/models.py``), then any others by name: the order of the plan's environment
    lines and of the printed replace table."""
    listed = get_args(spec.Environment.model_fields["target"].annotation)
    installed = targets()
    rank = {name: index for index, name in enumerate(listed)}
    return [installed[n] for n in sorted(installed, key=lambda n: (rank.get(n, len(rank)), n))]


def check_target(target: Target, system: System, diagnostics: Diagnostics) -> None:
    """Report what ``target`` would refuse to lower of ``system``: with its ``check`` when it
    has one (no graph is built), else by lowering it and dropping the graph."""
    check: Callable[[System, Diagnostics], None] | None = getattr(target, "check", None)
    if check is not None:
        check(system, diagnostics)
    else:
        target.lower(system, diagnostics)


LowerReusing = Callable[
    [System, Diagnostics, Mapping[str, object]],
    tuple[ResourceGraph | None, Mapping[str, object], int],
]
"""``(system, diagnostics, known units by key) -> (graph, every unit by key, units reused)``."""


def lower_reusing(
    target: Target, system: System, diagnostics: Diagnostics, known: Mapping[str, object]
) -> tuple[ResourceGraph | None, Mapping[str, object], int]:
    """Lower ``system`` with the target's ``lower_reusing`` when it has one: a lowering in
    units (parts of the graph, each under a key covering everything it reads), taking from
    ``known`` the units whose key it finds there, giving back every unit it holds (to be
    known to a later lowering) and how many it took. Units are opaque here, and a value of
    ``known`` that is not one of the target's units is lowered again. Without the hook: the
    plain lowering, no units. Either way the graph is the one ``lower`` returns.

    The hook counts only when the class that defines ``lower`` defines it too: a target that
    overrides ``lower`` and leaves the rest to another (a subclass, or a wrapper forwarding
    attributes) would otherwise be lowered by the other's hook, not by its own ``lower``."""
    if _owner(type(target), "lower_reusing") != _owner(type(target), "lower"):
        return target.lower(system, diagnostics), {}, 0
    hook: LowerReusing = getattr(target, "lower_reusing")  # noqa: B009 (typed)
    return hook(system, diagnostics, known)


def _owner(kind: type, name: str) -> type | None:
    """The class of ``kind``'s method resolution order that defines ``name``."""
    return next((c for c in kind.__mro__ if name in vars(c)), None)


class DeployStepError(Exception):
    """A target's own step around the engine (:func:`after_apply`, :func:`before_destroy`)
    failed; the message says what and why."""


DeployStep = Callable[[System, Mapping[str, Any], Mapping[str, str], Callable[[str], None]], None]
"""``(system, resources by name as in resources.json, process environment, echo)``."""


def after_apply(target: Target, system: System, resources: Mapping[str, Any],
                environ: Mapping[str, str], echo: Callable[[str], None]) -> None:  # fmt: skip
    """Run the target's ``after_apply`` step, if it has one: what ``mlplane apply`` does after
    the engine's ``up`` that no resource of the engine does (the kubernetes target registers
    Kubeflow recurring runs through the Kubeflow Pipelines API). Raises DeployStepError."""
    step: DeployStep | None = getattr(target, "after_apply", None)
    if step is not None:
        step(system, resources, environ, echo)


def before_destroy(target: Target, system: System, resources: Mapping[str, Any],
                   environ: Mapping[str, str], echo: Callable[[str], None]) -> None:  # fmt: skip
    """Run the target's ``before_destroy`` step, if it has one: what ``mlplane destroy`` undoes
    before the engine's destroy (the registrations of ``after_apply``). Raises DeployStepError."""
    step: DeployStep | None = getattr(target, "before_destroy", None)
    if step is not None:
        step(system, resources, environ, echo)


def setting_residency(environment: spec.Environment) -> SettingResidency | None:
    """The residency that ``environment``'s target reads from its settings (none without the
    target installed)."""
    target = targets().get(environment.target)
    return target.residency(environment) if target is not None else None


def namespace(environment: spec.Environment) -> str | None:
    """The namespace ``environment``'s settings name (none without the target installed)."""
    target = targets().get(environment.target)
    return target.namespace(environment) if target is not None else None


def namespace_path(target_name: str) -> SpecPath | None:
    """Where the settings of an environment of ``target_name`` name its namespace."""
    target = targets().get(target_name)
    return target.namespace_path if target is not None else None


def cloud_account(environment: spec.Environment) -> CloudAccount | None:
    """The cloud account ``environment``'s target deploys into (none without the target
    installed)."""
    target = targets().get(environment.target)
    return target.cloud_account(environment) if target is not None else None


def target_settings(environment: spec.Environment) -> TargetSettings:
    """The settings of ``environment`` as its target builds them; without the target installed,
    settings that no one reads (the build then reports the missing target)."""
    target = targets().get(environment.target)
    return target.settings(environment) if target is not None else TargetSettings()
