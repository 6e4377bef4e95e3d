"""The seams through which targets, graph emitters and policy packs join the pipeline.

``compiler/`` never imports ``targets/`` or ``policies/`` by name: they are found through the
entry-point groups ``mlplane.targets``, ``mlplane.emitters`` and ``mlplane.policies`` (declared
in ``pyproject.toml``), which is also how a third party adds a target or an organisation adds its
policy pack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.ir import System

TARGET_GROUP = "mlplane.targets"
POLICY_GROUP = "mlplane.policies"
EMITTER_GROUP = "mlplane.emitters"


@runtime_checkable
class Target(Protocol):
    """A back end: lowers a system model to a resource graph and emits files from it."""

    name: str

    def lower(self, system: System, diagnostics: Diagnostics) -> ResourceGraph | None:
        """The resource graph of ``system``; None (with diagnostics) when it cannot be lowered."""
        ...

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        """Files as ``{relative posix path: text}``; pure, no I/O."""
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
