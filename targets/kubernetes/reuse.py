"""Reuse of lowered units: one model's objects, one SLA's PrometheusRule.

A plan lowers its head while the base's lowering sits in the plan cache; for a one-line change
almost every model and SLA lowers to exactly what the base's did. ``lower`` (``lower.py``) runs
each model (:func:`lower.lower_model`) and each SLA's rule object as a *unit*: what the unit
adds to the lowering (resources, name claims, diagnostics) is recorded as a :class:`Unit` under
a key, and a later lowering whose unit has the same key takes the recorded unit instead of
lowering it again.

The key is a SHA-256 of everything the unit may read (:class:`Keys`):

* the *context*: the whole system model except the models, the SLAs and the origins of paths
  under ``models.<name>`` and ``slas.<name>``: metadata, environment and its target settings,
  data sources, security (secrets, network allows), alerting, waivers, policies, CI and the
  origins of every other path;
* the unit's own model (or SLA) object, which holds its origin, and the origins of every path
  under it (so which paths are written and where: ``Lowering.origin`` finds the nearest
  written ancestor);
* what it reads of other models and SLAs (:func:`model_reads`, :func:`sla_reads`): for a
  model, the models at the other end of a ``security.network.allow`` entry that names it
  (its network policy reads their ports and whether they train or score in batch) and the SLAs
  whose subject it is (its rollout's analysis gates on them); for an SLA, its subject model
  (a drift SLA reads the model's drift features).

Locations are part of the key, so a reused unit's origins are those a fresh lowering would
give; a line inserted above a model moves its locations and it is lowered again. A test
(``tests/test_kubernetes_reuse.py``) runs every model's and SLA's lowering with the system's
models, SLAs, origins and secret sources wrapped so that each read is recorded, and fails on a
read outside :func:`model_reads`/:func:`sla_reads`; a property test checks that a lowering
reusing the units of another spec equals a fresh one, resource for resource.

Everything that looks across units (the spec checks, the namespace-wide objects, the Secrets,
the open-egress checks, alerting, the name-collision check) runs on every lowering.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, SpecPath
from mlplane.compiler.core.graph import Resource
from mlplane.targets.kubernetes import network
from mlplane.targets.kubernetes.context import Claim, Lowering

UNIT_SECTIONS = ("models", "slas")
"""The spec sections whose entries are units: their origins are keyed per entry."""


@dataclass(frozen=True, slots=True)
class Unit:
    """What one unit added to a lowering, in the order it added them."""

    resources: tuple[Resource, ...]
    claims: tuple[Claim, ...]
    diagnostics: tuple[Diagnostic, ...]


@dataclass(frozen=True, slots=True)
class Reads:
    """The models and SLAs (by name) whose objects and origins a unit may read."""

    models: frozenset[str]
    slas: frozenset[str]


@dataclass
class Reuse:
    """The units a lowering may take (``known``, by key) and the units it made (``made``)."""

    known: Mapping[str, object] = field(default_factory=dict)
    made: dict[str, Unit] = field(default_factory=dict)
    reused: int = 0


def model_reads(lowering: Lowering, model: ir.Model) -> Reads:
    """What the lowering of ``model`` may read of other models and of SLAs."""
    endpoint = network.model_endpoint(model.name)
    peers = {model.name}
    ends = [a.destination for a in lowering.allows_from.get(endpoint, ())]
    ends += [a.source for a in lowering.allows_to.get(endpoint, ())]
    for end in ends:
        found = network.parse_endpoint(end)
        if found.kind == "models":
            peers.add(found.name)
    slas = lowering.slas_by_subject.get(model.name, frozenset())
    return Reads(frozenset(peers), slas)


def sla_reads(system: ir.System, sla: ir.Sla) -> Reads:
    """What the rule object of ``sla`` may read of models and of other SLAs."""
    models = (
        frozenset({sla.subject}) if sla.subject_kind == "model" and sla.subject else frozenset()
    )
    return Reads(models, frozenset({sla.name}))


class Keys:
    """The keys of one system's units (see the module's documentation).

    Each model's and SLA's part (its object and the origins under it) is encoded once: the
    object as the digest of its ``repr`` text (the system model is frozen dataclasses, tuples,
    read-only mappings with sorted keys, strings and numbers, whose ``repr`` gives every field;
    :func:`_repr_digest` remembers it for an object shared by several environments), the
    origins as tuples (path, file, line, column) in :func:`_encoded` form (``marshal``'s
    version 2: no references, no interning marks, so the bytes are a function of the value
    alone, in whatever process and under whatever hash seed, and three times faster to make
    than their ``repr``)."""

    def __init__(self, lowering: Lowering) -> None:
        system = lowering.system
        self._lowering = lowering
        entries: dict[tuple[str, str], list[_Written]] = {}
        rest: list[_Written] = []
        for path, at in system.origins.items():
            written = (path, at.file, at.line, at.column)
            if len(path) >= 2 and path[0] in UNIT_SECTIONS:
                entries.setdefault((path[0], str(path[1])), []).append(written)
            else:
                rest.append(written)
        self._entries = entries
        context = replace(
            system, models=ir.frozen_map(()), slas=ir.frozen_map(()), origins=MappingProxyType({})
        )
        self._context = _digest(context, rest)
        self._parts: dict[tuple[str, str], bytes] = {}

    def of_model(self, model: ir.Model) -> str:
        return self._key("model", model.name, model_reads(self._lowering, model))

    def of_sla(self, sla: ir.Sla) -> str:
        return self._key("sla", sla.name, sla_reads(self._lowering.system, sla))

    def _key(self, kind: str, name: str, reads: Reads) -> str:
        digest = hashlib.sha256(self._context)
        digest.update(repr((kind, name)).encode())
        for section, names in (("models", reads.models), ("slas", reads.slas)):
            for entry in sorted(names):
                digest.update(self._part(section, entry))
        return digest.hexdigest()

    def _part(self, section: str, name: str) -> bytes:
        """The digest of one model's or SLA's object and the origins under it."""
        found = self._parts.get((section, name))
        if found is None:
            system = self._lowering.system
            value = (system.models if section == "models" else system.slas).get(name)
            digest = hashlib.sha256(repr((section, name)).encode())
            digest.update(_repr_digest(value))
            digest.update(_encoded(self._entries.get((section, name))))
            found = self._parts[section, name] = digest.digest()
        return found


_Written = tuple[SpecPath, str, int, int]


def _digest(value: object, written: list[_Written] | None) -> bytes:
    """SHA-256 of ``value``'s ``repr`` (which never holds a NUL: ``repr`` escapes it in a
    string), a NUL, and :func:`_encoded` of the origins ``written``."""
    digest = hashlib.sha256(repr(value).encode())
    digest.update(b"\0")
    digest.update(_encoded(written))
    return digest.digest()


def _repr_digest(value: object) -> bytes:
    """SHA-256 of ``value``'s ``repr``, remembered by the object's identity (holding the object,
    so that its identity is not given to another): the system model of each environment built
    in one process shares every model and SLA object that no overlay changed
    (``frontend/system_model.py``), and the ``repr`` of a frozen value does not change."""
    found = _REPRS.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    digest = hashlib.sha256(repr(value).encode()).digest()
    if len(_REPRS) >= _REPRS_KEPT:
        _REPRS.clear()
    _REPRS[id(value)] = (value, digest)
    return digest


_REPRS: dict[int, tuple[object, bytes]] = {}
_REPRS_KEPT = 20_000
"""At most this many objects are remembered (then all are forgotten): a 1,000-model system has
some 3,400 models and SLAs."""


def _encoded(written: list[_Written] | None) -> bytes:
    """The origins as ``marshal`` writes them in its version 2, which round-trips (so two
    lists give the same bytes only when equal) and marks neither shared nor interned strings
    (so the bytes do not depend on the process); a mark byte tells it from the ``repr`` text
    that a value ``marshal`` cannot write (none that a spec path holds) is given instead."""
    try:
        return b"m" + marshal.dumps(written, _MARSHAL_VERSION)
    except ValueError:
        return b"r" + repr(written).encode()


_MARSHAL_VERSION = 2
"""The last version without references to objects written before (version 3 adds them, and
marks interned strings, which depend on the process's history)."""
