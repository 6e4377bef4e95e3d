"""The build cache: what one build of an environment lowered and wrote per unit, so that the next
build into the same directory lowers and writes again only what changed.

A target that lowers in units (``plugins.lower_reusing``: the Kubernetes target's units are each
model's objects and each SLA's PrometheusRule, keyed by a SHA-256 of everything the unit reads,
``targets/kubernetes/reuse.py``) gives back every unit of its lowering; the build stores them,
with the texts the emitters wrote for each of their resources (``compiler/core/resource_texts.py``:
a resource's canonical JSON in ``resources.json``, a Kubernetes object's YAML document in
``manifests/``). The next build of that environment into that directory reads the entry; its
lowering takes each unit whose key it finds there (``Reuse.known``) instead of lowering it, and
its emitters take the texts of the resources of the units it took. Everything that looks across
units (the lowering's checks, the graph, its rules, the Pulumi program, monitoring, the
manifest) is made again by every build, so the output is byte for byte that of a build without
the cache (a property test builds, changes one model, SLA, source or setting, or inserts a line,
and compares every file with a build that has no cache).

Where: ``$XDG_CACHE_HOME/mlplane/build/`` (else ``~/.cache/mlplane/build/``), next to the secret
of the plan cache, never in a repository (whose contents are untrusted) nor in the output
directory (which holds only the files ``manifest.json`` lists). One entry per output directory
and environment (its file name is a digest of both); a build replaces it, and the
:data:`MAX_ENTRIES` newest entries within :data:`MAX_TOTAL_BYTES` are kept.

Key: an entry is taken only when its key is the build's: the cache's format, mlplane's version,
the Python version, ``plan.cache.plugins_fingerprint()`` (the source of mlplane's compiler,
targets and policies and of every installed plug-in, and the versions of the libraries that
shape a lowering), the environment, the target, the output directory and how each spec file is
named in the output (relative to the spec's directory: origins in ``resources.json`` are
written so). The spec's text is not in the entry's key: a unit's key covers what the unit reads
of the system model, and the texts stored with it are functions of its resources alone.

Safety, as the plan cache (``compiler/plan/cache.py``): every entry carries an HMAC-SHA256 under
the plan cache's secret (kept outside any repository, mode 0600), and one that fails it, is
over :data:`MAX_ENTRY_BYTES`, is not a regular file (a link, a FIFO) or does not parse is
ignored; units are unpickled with the plan cache's allow-list, and one that does not read back
is lowered again; entries are written to a temporary file and renamed into place; a symbolic
link in the cache's directories disables the cache; any problem means no cache, never an
error. ``--check`` reads the cache but never writes it. ``MLPLANE_NO_CACHE`` set to anything
but ``0`` or the empty string turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplane import __version__
from mlplane.compiler.core import safe_read
from mlplane.compiler.core.graph import Resource, ResourceGraph
from mlplane.compiler.core.resource_texts import ResourceTexts
from mlplane.compiler.plan.base_entry import _encoded, _value
from mlplane.compiler.plan.cache import (
    _mac,
    _real_directories,
    _secret,
    _write_atomically,
    plugins_fingerprint,
)

CACHE_FORMAT = 1
DISABLE_VARIABLE = "MLPLANE_NO_CACHE"
MAX_ENTRY_BYTES = 256 * 2**20
"""An entry of the 1,000-model benchmark spec's environment takes about 110 MB."""
MAX_ENTRIES = 8
MAX_TOTAL_BYTES = 1024 * 2**20
"""The newest entries kept, at most :data:`MAX_ENTRIES` and this many bytes together."""
_RELATIVE_DIR = Path("mlplane") / "build"


@dataclass(frozen=True)
class Slot:
    """Where one environment's entry for one output directory lies, and the key it must carry."""

    name: str
    key: str


@dataclass(frozen=True)
class BuildCache:
    directory: Path
    secret: bytes

    @classmethod
    def open(cls) -> BuildCache | None:
        """The user's build cache; None when it is turned off or cannot be used safely."""
        if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
            return None
        base = _cache_home()
        secret = _secret()
        if base is None or secret is None or not _real_directories(base, _RELATIVE_DIR):
            return None
        return cls(base / _RELATIVE_DIR, secret)

    def read(self, slot: Slot) -> Entry | None:
        """The entry of ``slot`` when present, authentic, of the slot's key and well formed."""
        try:
            data = safe_read.read_regular(self.directory / slot.name, MAX_ENTRY_BYTES)
        except (OSError, safe_read.ReadBackError):
            return None
        return _parsed(data, slot.key, self.secret)

    def touch(self, slot: Slot) -> None:
        """Mark the entry of ``slot`` as used now (the newest are kept)."""
        with contextlib.suppress(OSError):
            os.utime(self.directory / slot.name)

    def write(self, slot: Slot, body: bytes) -> None:
        """Store ``body`` under ``slot`` atomically, then prune; failures are ignored."""
        mac = _mac(self.secret, slot.key, body)
        header = json.dumps({"format": CACHE_FORMAT, "key": slot.key, "hmac": mac})
        data = header.encode("ascii") + b"\n" + body
        if len(data) > MAX_ENTRY_BYTES:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_atomically(self.directory, slot.name, data)
            _prune(self.directory, slot.name)
        except OSError:
            return


def slot_of(out_dir: Path, environment: str, target: str, file_names: Mapping[str, str]) -> Slot:
    """The slot of a build of ``environment`` (lowered by ``target``) into ``out_dir``;
    ``file_names`` maps each spec file's name as diagnostics show it to its name in the output."""
    where = json.dumps([str(out_dir.absolute()), environment], ensure_ascii=True)
    name = hashlib.sha256(where.encode("ascii")).hexdigest()[:40] + ".entry"
    head = [CACHE_FORMAT, __version__, sys.version, plugins_fingerprint(), target]
    names = sorted(file_names.items())
    key = json.dumps([*head, environment, str(out_dir.absolute()), names], ensure_ascii=True)
    return Slot(name, hashlib.sha256(key.encode("ascii")).hexdigest())


class Units(Mapping[str, object]):
    """An entry's units by key, each unpickled (with the plan cache's allow-list) when looked up;
    one that does not read back is None, which the target lowers again. Remembers what it gave
    for each key, so that the units a lowering took are known by identity."""

    def __init__(self, entry: Entry) -> None:
        self._entry = entry
        self.given: dict[str, object] = {}
        self.needs: dict[int, tuple[Resource, tuple[str, ...]]] = {}
        """``graph.known_needs``: the stored needs of the resources of each unit looked up."""

    def __getitem__(self, key: str) -> object:
        stored = self._entry.units[key]
        found = _value(bytes(self._entry.blobs[stored.start : stored.end]))
        self.given[key] = found
        resources = _resources(found)
        if stored.needs is not None and len(resources) == len(stored.needs):
            for resource, needs in zip(resources, stored.needs, strict=True):
                self.needs[id(resource)] = (resource, needs)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._entry.units)

    def __len__(self) -> int:
        return len(self._entry.units)

    def taken(self, key: str, unit: object) -> bool:
        """Whether the lowering's unit of ``key`` is the very object given for ``key``."""
        return unit is not None and self.given.get(key, self) is unit


_TextSpans = dict[str, list[tuple[str, int, int]]]
"""Kind -> (resource name, start, end) of each text in the blobs."""


@dataclass(frozen=True)
class Stored:
    """Where one unit lies in an entry's blobs (its pickle and its resources' texts), and the
    needs (``Resource.needs``) of its resources in order, as the graph that stored it computed
    them for those very resources (None: not known)."""

    start: int
    end: int
    texts: _TextSpans
    needs: tuple[tuple[str, ...], ...] | None


@dataclass
class Entry:
    """A parsed entry: the units by key, and the bytes they point into."""

    units: dict[str, Stored]
    blobs: memoryview

    def texts(self, key: str) -> dict[str, dict[str, str]]:
        """The texts of the unit of ``key`` by kind and resource name."""
        found: dict[str, dict[str, str]] = {}
        for kind, spans in self.units[key].texts.items():
            found[kind] = {name: str(self.blobs[a:b], "utf-8") for name, a, b in spans}
        return found


@dataclass
class Reusing:
    """One build's use of the cache: the slot, the entry read (if any) and its units."""

    cache: BuildCache
    slot: Slot
    entry: Entry | None
    units: Units | None = None
    texts: ResourceTexts = field(default_factory=ResourceTexts)

    @property
    def known(self) -> Mapping[str, object]:
        return self.units if self.units is not None else {}

    def take_texts(self, made: Mapping[str, object]) -> ResourceTexts:
        """The texts of the units the lowering took (``made``: every unit of the lowering)."""
        known: dict[str, dict[str, str]] = {}
        if self.entry is not None and self.units is not None:
            for key, unit in made.items():
                if self.units.taken(key, unit):
                    for kind, texts in self.entry.texts(key).items():
                        known.setdefault(kind, {}).update(texts)
        self.texts = ResourceTexts(known)
        return self.texts

    def store(self, made: Mapping[str, object], graph: ResourceGraph) -> None:
        """Write the entry of this build: every unit of ``made`` (the bytes read for those taken,
        else pickled and checked to read back equal) with its resources' texts and their needs
        in ``graph`` (the lowering's)."""
        if self._unchanged(made):
            self.cache.touch(self.slot)
            return
        body = _body(self, made, graph, with_texts=True)
        if body is not None and len(body) + 512 > MAX_ENTRY_BYTES:
            body = _body(self, made, graph, with_texts=False)
        if body is not None:
            self.cache.write(self.slot, body)

    def _unchanged(self, made: Mapping[str, object]) -> bool:
        """Whether the entry read holds what this build would store: the same units, each
        taken from it, and no text of their resources made afresh."""
        entry, units = self.entry, self.units
        if entry is None or units is None or made.keys() != entry.units.keys():
            return False
        if not all(units.taken(key, unit) for key, unit in made.items()):
            return False
        names = {r.name for unit in made.values() for r in _resources(unit)}
        known = self.texts.known
        return all(
            name in known.get(kind, {})
            for kind, texts in self.texts.made.items()
            for name in texts
            if name in names
        )


def reusing(cache: BuildCache | None, slot: Slot) -> Reusing | None:
    """The cache's use by one build (None without a cache), its entry read."""
    if cache is None:
        return None
    entry = cache.read(slot)
    found = Reusing(cache, slot, entry)
    if entry is not None:
        found.units = Units(entry)
    return found


def _body(
    reuse: Reusing, made: Mapping[str, object], graph: ResourceGraph, *, with_texts: bool
) -> bytes | None:
    """The entry's body: an index (one JSON line), then the units' and texts' bytes."""
    chunks: list[bytes] = []
    size = 0
    index: list[list[Any]] = []
    made_texts = reuse.texts.made if with_texts else {}
    for key in sorted(made):
        unit = made[key]
        data = _unit_bytes(reuse, key, unit)
        if data is None:
            continue
        spans: dict[str, list[list[Any]]] = {}
        resources = _resources(unit)
        names = [r.name for r in resources]
        texts: list[bytes] = []
        start = size + len(data)
        for kind in sorted(made_texts):
            of_kind = made_texts[kind]
            for name in names:
                text = of_kind.get(name)
                if text is not None:
                    encoded = text.encode("utf-8")
                    spans.setdefault(kind, []).append([name, start, start + len(encoded)])
                    texts.append(encoded)
                    start += len(encoded)
        index.append([key, size, size + len(data), spans, _needs(graph, resources)])
        chunks.append(data)
        chunks.extend(texts)
        size = start
    try:
        head = json.dumps({"units": index}, ensure_ascii=True).encode("ascii")
    except (TypeError, ValueError):
        return None
    return head + b"\n" + b"".join(chunks)


def _unit_bytes(reuse: Reusing, key: str, unit: object) -> bytes | None:
    """The pickled unit: the entry's bytes for a unit taken from it, else pickled afresh (None
    when it cannot be, or would not read back equal)."""
    if reuse.entry is not None and reuse.units is not None and reuse.units.taken(key, unit):
        stored = reuse.entry.units[key]
        return bytes(reuse.entry.blobs[stored.start : stored.end])
    return _encoded(unit)


def _resources(unit: object) -> tuple[Resource, ...]:
    """A unit's resources (units are the target's: one without a tuple of ``resources`` has
    none here, so nothing is stored with it but itself)."""
    resources = getattr(unit, "resources", None)
    if not isinstance(resources, tuple) or not all(isinstance(r, Resource) for r in resources):
        return ()
    return resources


def _needs(graph: ResourceGraph, resources: tuple[Resource, ...]) -> list[list[str]] | None:
    """The needs of ``resources`` as ``graph`` computed them, when each is the very resource of
    its name in ``graph``; else None (a later build walks them)."""
    if any(graph.get(r.name) is not r for r in resources):
        return None
    return [list(graph.needs[r.name]) for r in resources]


def _parsed(data: bytes, key: str, secret: bytes) -> Entry | None:
    header_end = data.find(b"\n")
    if header_end < 0:
        return None
    body = memoryview(data)[header_end + 1 :]
    try:
        header = json.loads(data[:header_end])
        if not isinstance(header, dict) or header.get("key") != key:
            return None
        if header.get("format") != CACHE_FORMAT or not isinstance(header.get("hmac"), str):
            return None
        if not hmac.compare_digest(header["hmac"], _mac(secret, key, body)):
            return None
        index_end = data.find(b"\n", header_end + 1)
        index = json.loads(data[header_end + 1 : index_end]) if index_end > 0 else None
        blobs = memoryview(data)[index_end + 1 :]
        return Entry(_units_of(index, len(blobs)), blobs)
    except (ValueError, TypeError, KeyError):
        return None


def _units_of(index: Any, size: int) -> dict[str, Stored]:
    """The index of an authentic entry, checked in shape (a wrong one raises ``ValueError``)."""
    if not isinstance(index, dict) or not isinstance(index.get("units"), list):
        raise ValueError("malformed index")
    found: dict[str, Stored] = {}
    for key, start, end, spans, needs in index["units"]:
        texts: _TextSpans = {}
        for kind, items in dict(spans).items():
            texts[str(kind)] = [(str(n), _within(a, size), _within(b, size)) for n, a, b in items]
        found[str(key)] = Stored(_within(start, size), _within(end, size), texts, _names(needs))
    return found


def _names(needs: Any) -> tuple[tuple[str, ...], ...] | None:
    if needs is None:
        return None
    found = tuple(tuple(names) for names in needs)
    if not all(type(name) is str for names in found for name in names):
        raise ValueError("malformed needs")
    return found


def _within(offset: Any, size: int) -> int:
    if type(offset) is not int or not 0 <= offset <= size:
        raise ValueError("offset out of range")
    return offset


def _cache_home() -> Path | None:
    base = os.environ.get("XDG_CACHE_HOME") or (
        str(Path.home() / ".cache") if "HOME" in os.environ else ""
    )
    return Path(base) if base and Path(base).is_absolute() else None


def _prune(directory: Path, keep: str) -> None:
    """Keep the newest entries: at most :data:`MAX_ENTRIES`, :data:`MAX_TOTAL_BYTES` together;
    the entry just written (``keep``) stays."""
    entries: list[tuple[int, str, int]] = []
    for path in directory.glob("*.entry"):
        with contextlib.suppress(OSError):
            info = path.lstat()
            entries.append((info.st_mtime_ns, path.name, info.st_size))
    entries.sort(reverse=True)
    total = 0
    for count, (_, name, size) in enumerate(entries):
        total += size
        if name != keep and (count >= MAX_ENTRIES or total > MAX_TOTAL_BYTES):
            with contextlib.suppress(OSError):
                (directory / name).unlink()
