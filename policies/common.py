"""What the built-in rules share: the pack they register in, classifications, path helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.compiler.policy.engine import RulePack

PACK = RulePack("builtin")
"""The built-in pack; ``policies/__init__.py`` exposes it as the ``builtin`` entry point."""

PERSONAL = frozenset({"pii", "phi"})
"""Data about people: GDPR/HIPAA-grade handling."""
CLASSIFIED = PERSONAL | {"confidential"}
"""Data that must not leave the organisation's control."""
DAY = 86_400.0


def written(system: ir.System, path: SpecPath) -> bool:
    """Whether ``path`` is written in the effective spec (not a default)."""
    return path in system.origins


def first_written(system: ir.System, *paths: SpecPath) -> SpecPath:
    """The first of ``paths`` that the user wrote, else the last (located at its ancestor)."""
    return next((path for path in paths if written(system, path)), paths[-1])


def env_path(system: ir.System, *rest: str) -> SpecPath:
    return ("environments", system.environment.name, *rest)


def upstream_sources(system: ir.System, model: ir.Model) -> tuple[ir.DataSource, ...]:
    """Every data source the model reads: its inputs first, then their lineage (by name).

    Remembered per system (by identity, the last few, like :func:`availability_slas`): three
    rules ask for every model's, each a walk over some 25 sources on the benchmark spec."""
    index = _upstream_index(system)
    known = index.get(model.name)
    if known is not None and known[0] is model:
        return known[1]
    get, inputs = system.data_sources.get, model.inputs
    direct = set(inputs)
    found = [source for name in inputs if (source := get(name)) is not None]
    found += [
        source
        for name in model.upstream
        if name not in direct and (source := get(name)) is not None
    ]
    index[model.name] = (model, tuple(found))
    return index[model.name][1]


def _upstream_index(system: ir.System) -> dict[str, tuple[ir.Model, tuple[ir.DataSource, ...]]]:
    return _of_system(_UPSTREAM, system, dict)


_UPSTREAM: list[tuple[ir.System, dict[str, tuple[ir.Model, tuple[ir.DataSource, ...]]]]] = []
"""The last few systems' upstream sources by model name, with the model they are of."""


def personal_upstream(system: ir.System, model: ir.Model) -> list[ir.DataSource]:
    return [s for s in upstream_sources(system, model) if s.classification in PERSONAL]


def through(system: ir.System, model: ir.Model, source: str) -> str:
    """How the model reaches ``source``: ``'a'`` when it reads it, ``'a' through 'b'`` else."""
    if source in model.inputs:
        return repr(source)
    via = next(
        (name for name in model.inputs if source in system.data_sources[name].upstream), None
    )
    return f"{source!r} through {via!r}" if via else repr(source)


def availability_slas(system: ir.System, model: str) -> tuple[ir.Sla, ...]:
    """The availability SLAs of ``model`` (indexed once per system: rules ask for every model;
    tuples, so that no caller can change what the next one is given)."""
    return _of_system(_AVAILABILITY, system, lambda: _availability_index(system)).get(model, ())


def _availability_index(system: ir.System) -> dict[str, tuple[ir.Sla, ...]]:
    built: dict[str, list[ir.Sla]] = {}
    for sla in system.slas.values():
        if sla.subject_kind == "model" and sla.indicator.kind == "availability" and sla.subject:
            built.setdefault(sla.subject, []).append(sla)
    return {subject: tuple(slas) for subject, slas in built.items()}


_AVAILABILITY: list[tuple[ir.System, dict[str, tuple[ir.Sla, ...]]]] = []
"""The last few systems' indexes, by identity (a System is not hashable)."""


Index = TypeVar("Index")

KEPT_SYSTEMS = 4
"""How many systems' indexes each table keeps (a compile's environments, most recent first)."""


def _of_system(
    table: list[tuple[ir.System, Index]], system: ir.System, make: Callable[[], Index]
) -> Index:
    """The index ``table`` holds for the very object ``system`` (the table keeps it, so its
    identity is not reused), else ``make()``, kept in front of the last few."""
    for cached, index in table:
        if cached is system:
            return index
    made = make()
    table[:] = [(system, made), *table[: KEPT_SYSTEMS - 1]]
    return made


def days(seconds: float) -> str:
    return f"{seconds / DAY:g}d"
