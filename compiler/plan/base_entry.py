"""A git base's whole side from the plan cache: with the cache warm, the base is neither loaded,
compiled, lowered nor judged again.

The entry (``compiler/plan/cache.py``, HMAC-authenticated like every entry) holds everything
the plan reads from the base side: its lowered graph (canonical JSON), its sorted diagnostics
(loading, compiling, lowering and the graph rules: the "new warnings" compare them), and a
payload with the system model (the ML summary and the governance section read it; its
origins pickled apart and read when first looked up), the spec files' texts (the spec digest
and the side's file list), the graph's reader table (``diff.readers_of``: the diff patches it
for the head rather than walk every input), the target's units of the base's lowering
(``plugins.lower_reusing``: parts of the graph, such as one model's objects, each under a key
covering everything the part reads), which the head's lowering takes where its keys match,
where each resource's JSON lies in the graph text, the graph's alert counts by SLA and its
digest, and the system's lineage (the governance section's base side). A warm plan leaves the
graph as the entry's bytes and parses a resource only when it looks it up
(``tables.TextResources``): for a one-line change, the few the head did not take.

The key names everything those depend on, taken before anything is parsed:

* the spec files' blobs at the commit: each one's name relative to the spec directory, its
  name as diagnostics show it (which depends on the working directory) and its bytes;
* the spec directory, the environment and the reading limits;
* the code: mlplane's version, the Python version and :func:`sealed.plugins_fingerprint` (the
  source of mlplane's compiler, targets and policies and of every installed target and policy
  pack, and the list of those plug-ins).

One input is not in the blobs: compiling checks that each ``policies.rego`` file exists in
the working tree's spec directory. The entry lists them, and a hit stands only while each is
still a file there.

The payload is a pickle. It is read only from an entry whose HMAC checked out under the
secret kept outside the repository, so only this user's mlplane wrote it; even so it is
unpickled with an allow-list (``compiler/core/pickled.py``: dataclasses and enumerations of
mlplane's and the installed plug-ins' modules, builtin containers, the read-only mapping of
the system model) and an entry that needs anything else is ignored. An entry is written only
when everything its payload names is what that allow-list reads back (``pickled.encoded``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from mlplane import __version__
from mlplane.compiler.core import pickled
from mlplane.compiler.core.diagnostics import Diagnostic, Location, SpecPath
from mlplane.compiler.core.graph import (
    Resource,
    ResourceGraph,
    add_known_needs,
    needs_in,
    unit_resources,
)
from mlplane.compiler.core.ir import System
from mlplane.compiler.core.lineage import Lineage, lineage
from mlplane.compiler.core.sealed import plugins_fingerprint
from mlplane.compiler.core.source import Limits
from mlplane.compiler.plan.cache import CACHE_FORMAT, Hit, PlanCache, fits
from mlplane.compiler.plan.gitsource import shown_name, spec_root
from mlplane.compiler.plan.lower import (
    Lowered,
    from_spans,
    from_text,
    gives_back,
    relative_namer,
    text_spans,
)
from mlplane.compiler.plan.model import ReaderTable
from mlplane.compiler.plan.tables import alert_counts


@dataclass(frozen=True)
class BaseKey:
    """An entry's key and the spec files' names: relative name -> name as diagnostics show it."""

    key: str
    shown: Mapping[str, str]
    root: Path


@dataclass(frozen=True)
class Stored:
    """The payload: what the plan reads from the base's compile besides graph and diagnostics."""

    system: System
    spec_files: dict[str, str]
    rego: tuple[str, ...]
    readers: ReaderTable
    units: dict[str, bytes] = field(default_factory=dict)
    """The target's units of the base's lowering by key (``plugins.lower_reusing``), each a
    :class:`StoredUnit` pickled apart so that a head unpickles only those it takes."""
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Resource name -> where its canonical JSON lies in the graph text (``lower.text_spans``):
    the head writes a resource of a unit it took by copying that text, and a resource is
    parsed from its span only when the plan looks it up (``lower.from_spans``)."""
    alerts: dict[str, int] = field(default_factory=dict)
    """The graph's alerting rules per SLA (``tables.alert_counts``), counted when stored."""
    graph_sha256: str = ""
    """The graph's digest, computed from the stored text (checked when stored)."""
    origins: bytes = b""
    """The system model's origins pickled apart (``system`` then holds none), unpickled when
    the plan first reads one (:class:`StoredOrigins`): tens of thousands of locations, of
    which a plan reads those of the base's lines only (an entry removed)."""
    lineage: Lineage | None = None
    """``lineage(system)`` (``compiler/core/lineage.py``), computed when stored: the governance
    section compares it with the head's instead of computing the base's again."""


@dataclass(frozen=True)
class StoredUnit:
    """One unit of the base's lowering and, when known, the needs (``Resource.needs``) of its
    resources in order, as the base's graph computed them for those very resources."""

    unit: object
    needs: tuple[tuple[str, ...], ...] | None


@dataclass(frozen=True)
class CachedBase:
    lowered: Lowered
    diagnostics: tuple[Diagnostic, ...]
    readers: ReaderTable
    units: Mapping[str, object]
    lineage: Lineage | None = None


class StoredOrigins(Mapping[SpecPath, Location]):
    """A stored system model's origins (``Stored.origins``), unpickled with the allow-list
    when first read. They were stored only when the allow-list reads them back
    (``pickled.encoded``), under a key that names this very code, and the entry's HMAC checked
    out: reading them back cannot fail, and if it ever did, the plan stops rather than locate
    a line wrongly."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._read: Mapping[SpecPath, Location] | None = None

    def _origins(self) -> Mapping[SpecPath, Location]:
        if self._read is None:
            found = pickled.value(self._data)
            if not isinstance(found, dict):
                raise RuntimeError("the plan cache entry's origins do not read back")
            self._read = found
        return self._read

    def __getitem__(self, path: SpecPath) -> Location:
        return self._origins()[path]

    def __iter__(self) -> Iterator[SpecPath]:
        return iter(self._origins())

    def __len__(self) -> int:
        return len(self._origins())


class StoredUnits(Mapping[str, object]):
    """A stored base's units by key, each unpickled (with the allow-list) when looked up; a
    unit that does not read back is None, which the target lowers again. It also holds the
    base's lowering and the spans of its resources in the graph text (``lower.BaseText``), and
    fills ``needs`` (``graph.known_needs``) with the stored needs of each unit's resources as
    it is looked up.

    Those needs are exact: each was computed by the base's graph from the very resource that
    was pickled into the unit, whose bytes were stored only when the allow-list reads back
    everything they name (``pickled.encoded``: each object is rebuilt by its constructor from
    its fields, or from its state) and are authenticated by the entry's HMAC, so the resource
    unpickled here equals it in every field that ``Resource.needs`` reads (parent,
    dependencies, provider, inputs)."""

    def __init__(
        self, encoded: Mapping[str, bytes], base: Lowered, spans: Mapping[str, tuple[int, int]]
    ) -> None:
        self._encoded = encoded
        self._read: dict[str, object] = {}
        self.base = base
        self.spans = spans
        self.needs: dict[int, tuple[Resource, tuple[str, ...]]] = {}

    def __getitem__(self, key: str) -> object:
        found = pickled.value(self._encoded[key])
        unit = found.unit if isinstance(found, StoredUnit) else None
        if isinstance(found, StoredUnit):
            add_known_needs(self.needs, unit, found.needs)
        self._read[key] = unit
        return unit

    def taken(self, key: str, unit: object) -> bool:
        """Whether ``unit`` is the very object this mapping gave for ``key``."""
        return self._read.get(key, self) is unit

    def __iter__(self) -> Iterator[str]:
        return iter(self._encoded)

    def __len__(self) -> int:
        return len(self._encoded)


def base_key(env: str, target: Path, blobs: Mapping[str, bytes], limits: Limits) -> BaseKey | None:
    """The key of the base side of ``env`` whose spec at ``target`` is ``blobs``; None when two
    files would share a relative name (nothing is cached then)."""
    root = spec_root(target)
    rename = relative_namer(root)
    names = {rename(shown_name(target, name)): name for name in blobs}
    if len(names) != len(blobs):
        return None
    shown = {relative: shown_name(target, name) for relative, name in names.items()}
    digest = hashlib.sha256()
    head = ["base side", CACHE_FORMAT, __version__, sys.version, plugins_fingerprint()]
    header = [*head, str(root), env, list(astuple(limits))]
    digest.update(json.dumps(header, ensure_ascii=True).encode("ascii"))
    for relative in sorted(names):
        for part in (relative.encode(), shown[relative].encode(), blobs[names[relative]]):
            digest.update(f"\0{len(part)}\0".encode("ascii"))
            digest.update(part)
    return BaseKey(digest.hexdigest(), shown, root)


def read_base(cache: PlanCache, key: BaseKey) -> CachedBase | None:
    """The base side stored under ``key``, when authentic, readable and still standing."""
    hit = cache.read_raw(key.key)
    stored = _loaded(hit.payload) if hit is not None and hit.payload else None
    if hit is None or stored is None:
        return None
    if not all((key.root / entry).is_file() for entry in stored.rego):
        return None
    system = stored.system
    if stored.origins:
        system = replace(system, origins=StoredOrigins(stored.origins))
    if stored.spans and stored.graph_sha256:
        lowered = from_spans(
            system, hit.graph, key.shown, stored.spec_files, stored.spans,
            stored.alerts, stored.graph_sha256,
        )  # fmt: skip
    else:
        try:
            text = str(hit.graph, "ascii")
        except ValueError:
            return None
        lowered = from_text(system, text, key.shown, stored.spec_files)
    units = StoredUnits(stored.units, lowered, stored.spans)
    return CachedBase(lowered, hit.diagnostics, stored.readers, units, stored.lineage)


def store_base(
    cache: PlanCache,
    key: BaseKey,
    lowered: Lowered,
    diagnostics: tuple[Diagnostic, ...],
    readers: ReaderTable,
) -> None:
    """Store a compiled base side, only when a hit would give back exactly the same side."""
    if not lowered.canonical or not gives_back(lowered, key.shown):
        return
    graph = lowered.lowered
    units = {
        key: data
        for key, unit in lowered.units.items()
        if (data := pickled.encoded(StoredUnit(unit, _needs(graph, unit))))
    }
    rego = lowered.system.policies.rego
    spans = text_spans(lowered)
    alerts = alert_counts(lowered.resources)
    digest = hashlib.sha256(lowered.canonical.encode("ascii")).hexdigest()
    if digest != lowered.graph_sha256:
        return
    system, origins = _origins_apart(lowered.system)
    stored = Stored(
        system, lowered.spec_files, rego, readers, units, spans, alerts, digest, origins,
        lineage(lowered.system),
    )  # fmt: skip
    payload = pickled.encoded(stored)  # None unless the allow-list reads it back
    hit = Hit(lowered.canonical, diagnostics, payload) if payload is not None else None
    if hit is not None and not fits(hit) and (units or stored.spans):
        # the units would make an entry too large to be read back: keep the side without them
        payload = pickled.encoded(replace(stored, units={}, spans={}, alerts={}, graph_sha256=""))
        hit = Hit(lowered.canonical, diagnostics, payload) if payload is not None else None
    if hit is not None:
        cache.write(key.key, hit)


def _origins_apart(system: System) -> tuple[System, bytes]:
    """``system`` without its origins, and its origins pickled (``pickled.encoded``); the
    system as it is and no bytes when they cannot be stored apart."""
    origins = pickled.encoded(dict(system.origins))
    if origins is None:
        return system, b""
    return replace(system, origins=MappingProxyType({})), origins


def _needs(graph: ResourceGraph | None, unit: object) -> tuple[tuple[str, ...], ...] | None:
    """The needs of ``unit``'s resources as ``graph`` computed them (:func:`needs_in`); None
    without a graph or when they are not its resources (the head walks them again)."""
    resources = unit_resources(unit)
    if graph is None or resources is None:
        return None
    return needs_in(graph, resources)


def _loaded(payload: bytes) -> Stored | None:
    found = pickled.value(payload)  # any damage or refusal means no entry, never an error
    return found if isinstance(found, Stored) else None
