"""The build cache: what one build of an environment lowered and wrote per unit, so that the next
build into the same directory lowers and writes again only what changed.

A target that lowers in units (``plugins.lower_reusing``: the Kubernetes target's units are each
model's objects and each SLA's PrometheusRule, keyed by a SHA-256 of everything the unit reads,
``targets/kubernetes/reuse.py``) gives back every unit of its lowering; the build stores each,
with the texts the emitters wrote for its resources (``compiler/core/resource_texts.py``: a
resource's canonical JSON in ``resources.json``, a Kubernetes object's YAML document in
``manifests/``, a PrometheusRule's group in ``monitoring/rules.yaml``, a statement's arguments in
the Pulumi program, the secret config keys its inputs read) and the needs its resources had in
the graph (``graph.known_needs``). The next build of that environment into that directory takes
each unit whose key it finds (``Reuse.known``) instead of lowering it, its graph takes their
needs instead of walking their inputs, and its emitters take the texts of their resources.
Everything that looks across units (the lowering's checks, the graph and its rules, the
program's order, variables and options, the rule tests, the manifest) is made again by every
build, so the output is byte for byte that of a build without the cache (a property test
builds, changes one model, SLA, source or setting, or inserts a line, and compares every file
with a build that has no cache).

Where: ``$XDG_CACHE_HOME/mlplane/build/`` (else ``~/.cache/mlplane/build/``), next to the caches'
secret (``compiler/core/sealed.py``), never in a repository (whose contents are untrusted) nor in
the output directory (which holds only the files ``manifest.json`` lists). One *slot* per output
directory and environment (a directory named by a digest of both) holds an ``index`` (unit key ->
file) and the units spread over :data:`PACKS` files by a digest of the slot's key and the unit's
key: a build writes again only the files that hold a unit it lowered afresh (or no longer holds),
then the index, and removes the slot's files the index no longer names, so a one-model rebuild
writes a few files of some 570 KB, not the whole cache (about 148 MB for an environment of the
1,000-model benchmark spec; one file per unit took longer to write than to pickle). The
:data:`MAX_ENTRIES` most recently used slots within :data:`MAX_TOTAL_BYTES` are kept.

Key: a slot is read only when its index carries the build's key: the cache's format, mlplane's
version, the Python version, ``sealed.plugins_fingerprint()`` (the source of mlplane's
compiler, targets and policies and of every installed plug-in, and the versions of the libraries
that shape a lowering), the environment, the target, the output directory and how each spec file
is named in the output (relative to the spec's directory: origins in ``resources.json`` are
written so). The spec's text is not in that key: a unit's key covers what the unit reads of the
system model, and what is stored with it is a function of its resources alone.

Safety, as the plan cache (``compiler/plan/cache.py``), through what both share in floor 1: every
file carries an HMAC-SHA256 of its key and contents under the secret of ``compiler/core/sealed.py``
(kept outside any repository, mode 0600); one that fails it, is too large, is not a regular file (a
link, a FIFO) or does not parse is ignored; units are pickled and unpickled as the plan cache's are,
with the allow-list of ``compiler/core/pickled.py``, and one that does not read back is lowered
again; files are written to a temporary file and renamed into place; a symbolic link in the cache's
directories disables the cache; any problem means no cache, never an error. ``--check`` reads the
cache and never writes it. ``MLPLANE_NO_CACHE`` set to anything but ``0`` or the empty string turns
it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplane import __version__
from mlplane.compiler.core import pickled, safe_read, sealed
from mlplane.compiler.core.graph import (
    Resource,
    ResourceGraph,
    add_known_needs,
    needs_in,
    unit_resources,
)
from mlplane.compiler.core.resource_texts import ResourceTexts

CACHE_FORMAT = 4
DISABLE_VARIABLE = "MLPLANE_NO_CACHE"
INDEX = "index"
UNIT_SUFFIX = ".unit"
PACKS = 256
"""The files a slot's units are spread over (a 1,000-model environment's 3,386 units: about
13 a file, 570 KB): few enough to write and read quickly, many enough that a change of one
model rewrites a file or two."""
MAX_FILE_BYTES = 64 * 2**20
"""A file of units or an index read back at most (on the 1,000-model benchmark spec about
570 KB and 260 KB)."""
MAX_ENTRIES = 8
MAX_TOTAL_BYTES = 1024 * 2**20
"""The most recently used slots kept: at most :data:`MAX_ENTRIES`, this many bytes together
(one environment of the 1,000-model benchmark spec takes about 148 MB)."""
_RELATIVE_DIR = Path("mlplane") / "build"
_HEADER_BYTES = 512
"""More than a file's header line takes (its format, key and HMAC)."""


@dataclass(frozen=True)
class Slot:
    """One output directory and environment: its directory's name and the key of its index."""

    name: str
    key: str

    def unit_file(self, unit_key: str) -> str:
        """The file that holds a unit: one of :data:`PACKS`, by a digest of the slot's key and
        the unit's."""
        digest = hashlib.sha256(f"{self.key}\0{unit_key}".encode()).digest()
        return f"{digest[0] % PACKS:02x}{UNIT_SUFFIX}"

    def file_key(self, name: str) -> str:
        """The key a file of the slot is authenticated under: the slot's and its name."""
        return f"{self.key}/{name}"


@dataclass(frozen=True)
class BuildCache:
    directory: Path
    secret: bytes

    @classmethod
    def open(cls) -> BuildCache | None:
        """The user's build cache; None when it is turned off or cannot be used safely."""
        found = private_directory(_RELATIVE_DIR)
        return None if found is None else cls(*found)

    def usable(self, slot: Slot) -> bool:
        """Whether the directory of ``slot`` is not a link (nor anything else but a directory)
        where it exists: asked once per build, before :meth:`read` and :meth:`write`."""
        return sealed.real_directories(self.directory, Path(slot.name))

    def read(self, slot: Slot, name: str, key: str) -> memoryview | None:
        """The body of the file ``name`` of ``slot`` when it is a regular file, authentic under
        ``key`` and not too large; else None."""
        path = self.directory / slot.name / name
        return sealed.read_sealed(path, key, CACHE_FORMAT, self.secret, MAX_FILE_BYTES)

    def write(self, slot: Slot, name: str, key: str, body: bytes) -> bool:
        """Store ``body`` as the file ``name`` of ``slot``, atomically; whether it was."""
        directory, secret = self.directory / slot.name, self.secret
        return sealed.write_sealed(
            directory, name, key, CACHE_FORMAT, secret, body, MAX_FILE_BYTES
        )

    def finish(self, slot: Slot, index: Mapping[str, str], changed: bool) -> None:
        """Write the index of ``slot`` (when ``changed``, else mark it used), remove the slot's
        files it does not name, and prune the slots; failures are ignored."""
        if changed:
            body = json.dumps({"units": dict(sorted(index.items()))}, ensure_ascii=True)
            if not self.write(slot, INDEX, slot.key, body.encode("ascii")):
                return
        else:
            with contextlib.suppress(OSError):
                os.utime(self.directory / slot.name / INDEX, follow_symlinks=False)
        keep = {*index.values(), INDEX}
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory / slot.name):
                if entry.name not in keep and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
        _prune(self.directory, slot.name)


def private_directory(relative: Path) -> tuple[Path, bytes] | None:
    """``relative`` below the user's cache directory, and the caches' secret; None when
    ``MLPLANE_NO_CACHE`` turns the build's caches off, or they cannot be kept safely there (no
    cache directory, no secret, a link on the way)."""
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return None
    base = sealed.cache_home()
    secret = sealed.secret()
    if base is None or secret is None or not sealed.real_directories(base, relative):
        return None
    return base / relative, secret


def slot_of(out_dir: Path, environment: str, target: str, file_names: Mapping[str, str]) -> Slot:
    """The slot of a build of ``environment`` (lowered by ``target``) into ``out_dir``;
    ``file_names`` maps each spec file's name as diagnostics show it to its name in the output."""
    where = json.dumps([str(out_dir.absolute()), environment], ensure_ascii=True)
    name = hashlib.sha256(where.encode("ascii")).hexdigest()[:40]
    head = [CACHE_FORMAT, __version__, sys.version, sealed.plugins_fingerprint(), target]
    names = sorted(file_names.items())
    key = json.dumps([*head, environment, str(out_dir.absolute()), names], ensure_ascii=True)
    return Slot(name, hashlib.sha256(key.encode("ascii")).hexdigest())


_TextSpans = dict[str, list[tuple[str, int, int]]]
"""Kind -> (resource name, start, end) of each text in a unit's blob."""


@dataclass(frozen=True)
class StoredUnit:
    """A unit's file, read: its pickled unit, its resources' texts and the needs (``Resource.needs``)
    of its resources in order, as the graph that stored it computed them for those very
    resources (None: not known)."""

    unit: memoryview
    texts: _TextSpans
    """Kind -> (resource name, start, end) of each text in :attr:`text`."""
    needs: tuple[tuple[str, ...], ...] | None
    text: str
    """The texts of every unit of the file, joined (decoded once a file, not once a text)."""

    def add_texts(self, known: dict[str, dict[str, str]]) -> None:
        """Enter the texts into ``known`` by kind and resource name."""
        text = self.text
        for kind, spans in self.texts.items():
            into = known.get(kind)
            if into is None:
                into = known[kind] = {}
            for name, start, end in spans:
                into[name] = text[start:end]


class Units(Mapping[str, object]):
    """A slot's units by key, each read and unpickled (with ``pickled``'s allow-list) when
    looked up; one that does not read back is None, which the target lowers again. Remembers
    what it gave for each key, so that the units a lowering took are known by identity, and the
    stored needs of their resources (``graph.known_needs``)."""

    def __init__(self, cache: BuildCache, slot: Slot, index: Mapping[str, str]) -> None:
        self._cache, self._slot, self.index = cache, slot, index
        self.given: dict[str, object] = {}
        self.stored: dict[str, StoredUnit] = {}
        self.needs: dict[int, tuple[Resource, tuple[str, ...]]] = {}
        self._packs: dict[str, Mapping[str, StoredUnit]] = {}

    def __getitem__(self, key: str) -> object:
        stored = self._pack(self.index[key]).get(key)
        found = pickled.value(bytes(stored.unit)) if stored is not None else None
        self.given[key] = found
        if stored is not None and found is not None:
            self.stored[key] = stored
            add_known_needs(self.needs, found, stored.needs)
        return found

    def _pack(self, name: str) -> Mapping[str, StoredUnit]:
        """The units of the file ``name`` (none when it does not read back), read once."""
        found = self._packs.get(name)
        if found is None:
            body = self._cache.read(self._slot, name, self._slot.file_key(name))
            try:
                found = _stored(body) if body is not None else {}
            except (ValueError, TypeError, KeyError):
                found = {}
            self._packs[name] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def taken(self, key: str, unit: object) -> bool:
        """Whether the lowering's unit of ``key`` is the very object read for ``key``."""
        return key in self.stored and self.given.get(key) is unit


@dataclass
class Reusing:
    """One build's use of the cache: the slot and its units (None: none could be read)."""

    cache: BuildCache
    slot: Slot
    units: Units | None = None
    texts: ResourceTexts = field(default_factory=ResourceTexts)

    @property
    def known(self) -> Mapping[str, object]:
        return self.units if self.units is not None else {}

    @property
    def needs(self) -> Mapping[int, tuple[Resource, tuple[str, ...]]]:
        return self.units.needs if self.units is not None else {}

    def take_texts(self, made: Mapping[str, object]) -> ResourceTexts:
        """The texts of the units the lowering took (``made``: every unit of the lowering)."""
        known: dict[str, dict[str, str]] = {}
        if self.units is not None:
            for key, unit in made.items():
                if self.units.taken(key, unit):
                    self.units.stored[key].add_texts(known)
        self.texts = ResourceTexts(known)
        return self.texts

    def store(self, made: Mapping[str, object], graph: ResourceGraph) -> None:
        """Store this build's units (``made``), then the index. A file whose units were all
        taken from it, and which held no other, is kept; any other is written again with its
        units: the pickle read for one taken, else pickled afresh (``pickled.encoded``: only
        what the allow-list reads back), each with its resources' texts and their needs in
        ``graph`` (the lowering's)."""
        try:
            self.cache.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            return
        if not self.cache.usable(self.slot):
            return
        packs: dict[str, list[str]] = {}
        for key in sorted(made):
            packs.setdefault(self.slot.unit_file(key), []).append(key)
        before: dict[str, set[str]] = {}
        for key, name in (self.units.index if self.units is not None else {}).items():
            before.setdefault(name, set()).add(key)
        index: dict[str, str] = {}
        wrote = False
        for name, keys in sorted(packs.items()):
            stored: list[str] | None = keys
            if not self._kept(keys, before.get(name), made):
                stored = self._written(name, keys, made, graph)
                wrote = True
            if stored is None:
                return
            index.update(dict.fromkeys(stored, name))
        previous = self.units.index if self.units is not None else None
        self.cache.finish(self.slot, index, wrote or previous != index)

    def _kept(self, keys: list[str], before: set[str] | None, made: Mapping[str, object]) -> bool:
        """Whether a file holds exactly ``keys`` (``before``), each taken from it."""
        units = self.units
        if units is None or set(keys) != before:
            return False
        return all(units.taken(key, made[key]) for key in keys)

    def _written(
        self, name: str, keys: list[str], made: Mapping[str, object], graph: ResourceGraph
    ) -> list[str] | None:
        """Write the file ``name`` with the units of ``keys`` that can be stored; those keys
        (none when the file would be too large to read back), or None when it could not be
        written."""
        entries = [(key, data, made[key]) for key in keys if (data := self._bytes(key, made[key]))]
        body = _pack_body(entries, self.texts.made, graph)
        if len(body) + _HEADER_BYTES > MAX_FILE_BYTES:
            return []
        if not self.cache.write(self.slot, name, self.slot.file_key(name), body):
            return None
        return [key for key, _, _ in entries]

    def _bytes(self, key: str, unit: object) -> bytes | None:
        """The unit pickled: the bytes read for a unit taken, else pickled afresh (None when it
        holds what the allow-list would not read back)."""
        if self.units is not None and self.units.taken(key, unit):
            return bytes(self.units.stored[key].unit)
        return pickled.encoded(unit)


def reusing(cache: BuildCache | None, slot: Slot) -> Reusing | None:
    """The cache's use by one build (None without a cache), its slot's index read."""
    if cache is None:
        return None
    found = Reusing(cache, slot)
    body = cache.read(slot, INDEX, slot.key) if cache.usable(slot) else None
    try:
        index = _index(json.loads(bytes(body))) if body is not None else None
    except (ValueError, TypeError):
        index = None
    if index is not None:
        found.units = Units(cache, slot, index)
    return found


def _pack_body(
    entries: list[tuple[str, bytes, object]],
    texts: Mapping[str, Mapping[str, str]],
    graph: ResourceGraph,
) -> bytes:
    """A file of units (key, pickle, unit): one JSON line (by key: where its pickle lies, where
    its resources' texts lie in the texts joined, and their needs; where those texts lie),
    then the pickles, then the texts joined, in UTF-8."""
    chunks: list[bytes] = []
    written: list[str] = []
    start = at = 0
    heads: dict[str, dict[str, Any]] = {}
    for key, data, unit in entries:
        resources = unit_resources(unit) or ()  # a unit without them stores only itself
        chunks.append(data)
        head: dict[str, Any] = {"unit": [start, start + len(data)], "texts": {}}
        start += len(data)
        for kind in sorted(texts):
            of_kind = texts[kind]
            for resource in resources:
                text = of_kind.get(resource.name)
                if text is not None:
                    head["texts"].setdefault(kind, []).append([resource.name, at, at + len(text)])
                    written.append(text)
                    at += len(text)
        head["needs"] = needs_in(graph, resources)
        heads[key] = head
    joined = "".join(written).encode("utf-8")
    document = {"units": heads, "texts": [start, start + len(joined)]}
    line = json.dumps(document, ensure_ascii=True).encode("ascii")
    return line + b"\n" + b"".join(chunks) + joined


def _index(value: Any) -> dict[str, str] | None:
    """An index's units (key -> file name of this slot), checked in shape."""
    units = value.get("units") if isinstance(value, dict) else None
    if not isinstance(units, dict):
        return None
    if not all(type(k) is str and _unit_name(v) for k, v in units.items()):
        return None
    return units


def _unit_name(name: Any) -> bool:
    return type(name) is str and name.endswith(UNIT_SUFFIX) and "/" not in name and name[0] != "."


def _stored(body: memoryview) -> dict[str, StoredUnit]:
    """A file's units by key, checked in shape (a wrong one raises ``ValueError``)."""
    head_end = _line_end(body)
    document = json.loads(bytes(body[:head_end]))
    heads = document["units"]
    blob = body[head_end + 1 :]
    size = len(blob)
    first, last = (_within(offset, size) for offset in document["texts"])
    text = str(blob[first:last], "utf-8")
    length = len(text)
    found: dict[str, StoredUnit] = {}
    for key, head in dict(heads).items():
        start, end = (_within(offset, first) for offset in head["unit"])
        texts: _TextSpans = {}
        for kind, items in dict(head["texts"]).items():
            spans = [(str(n), _within(a, length), _within(b, length)) for n, a, b in items]
            texts[str(kind)] = spans
        found[str(key)] = StoredUnit(blob[start:end], texts, _names(head["needs"]), text)
    return found


def _line_end(body: memoryview) -> int:
    """Where the first line of ``body`` ends, found in growing pieces (the head is a small part
    of a file of some 600 KB, which is not copied whole to find it); ``ValueError`` when no
    line ends."""
    start, step = 0, 1 << 14
    while start < len(body):
        found = bytes(body[start : start + step]).find(b"\n")
        if found >= 0:
            return start + found
        start, step = start + step, step * 2
    raise ValueError("no head")


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


def _prune(directory: Path, keep: str) -> None:
    """Keep the most recently used slots (by their index's time): at most :data:`MAX_ENTRIES`,
    :data:`MAX_TOTAL_BYTES` together; the slot just used (``keep``) stays."""
    slots: list[tuple[int, str, int]] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not entry.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                used = os.stat(Path(entry.path) / INDEX, follow_symlinks=False).st_mtime_ns
                slots.append((used, entry.name, _size(Path(entry.path))))
    slots.sort(reverse=True)
    total = 0
    for count, (_, name, size) in enumerate(slots):
        total += size
        if name != keep and (count >= MAX_ENTRIES or total > MAX_TOTAL_BYTES):
            shutil.rmtree(directory / name, ignore_errors=True)


def _size(slot: Path) -> int:
    total = 0
    for entry in os.scandir(slot):
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
    return total
