"""Lowering one compiled environment for a plan: its graph as plain JSON, named two ways, and
its digest; optionally through the plan cache (``compiler/plan/cache.py``: one lowering per
entry). A git base's whole side is cached by ``compiler/plan/base_entry.py``, which rebuilds
its graph with :func:`from_text`.

Both sides of a plan are lowered here, the same way, so that a resource compares equal across
them; the graphs are hashed as ``mlplane build`` writes them (``resources.json``, spec files
named relative to the spec directory). The graph rules of the policy packs read a
``ResourceGraph``, not JSON: :func:`graph_object` gives the target's own graph, or rebuilds it
from the JSON when the lowering came from the cache, which stores only JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from mlplane.compiler.build import outputs as build
from mlplane.compiler.build.pipeline import CompileResult, no_cyclic_gc
from mlplane.compiler.core import canonical
from mlplane.compiler.core.diagnostics import Diagnostic, Location
from mlplane.compiler.core.graph import (
    KnownNeeds,
    Resource,
    ResourceGraph,
    ResourceOptions,
    known_needs,
)
from mlplane.compiler.core.ir import Origin, System
from mlplane.compiler.core.plugins import Target, lower_reusing
from mlplane.compiler.frontend.document import Document
from mlplane.compiler.plan.cache import Hit, PlanCache, entry_key
from mlplane.compiler.plan.diff import parse_path
from mlplane.compiler.plan.model import ResourceJson
from mlplane.compiler.plan.tables import SharedResources, Spans, TextResources, renamed

Text = str | tuple[bytes | memoryview, ...]
"""A graph's compact canonical JSON: as a string, or as ASCII bytes in parts."""
T = TypeVar("T", str, bytes | memoryview)


@dataclass(frozen=True)
class Lowered:
    """One compiled environment, lowered: the system model and its graph as JSON."""

    system: System
    resources: Mapping[str, ResourceJson]
    """By name, spec files named as diagnostics name them (for plan lines): a dictionary, or
    for a base read from the plan cache and a head that took units from it, a table that
    parses a resource when it is first looked up (``compiler/plan/tables.py``)."""
    spec_files: dict[str, str]
    """Spec file name relative to the spec directory -> text, as compiled."""
    graph_sha256: str
    """:func:`graph_digest` of ``graph``, computed from the text the graph was parsed from."""
    text: Text = field(default="", repr=False, compare=False)
    """That text: ``graph`` in compact canonical JSON (what the plan cache stores); or its
    ASCII bytes in parts, in order (a base read from the plan cache, a head that copied the
    base's text: :func:`graph_reusing`), joined when :attr:`canonical` is first asked for."""
    lowered: ResourceGraph | None = field(default=None, repr=False, compare=False)
    """The graph the target returned; None when the lowering came from the plan cache."""
    units: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)
    """The target's units of this lowering by key, when it was lowered with ``known`` units
    (``plugins.lower_reusing``); what the base's cache entry keeps for a later head."""
    reused: int = field(default=0, repr=False, compare=False)
    """How many of them were taken from the ``known`` units rather than lowered."""

    parsed: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    """:attr:`graph` when it was parsed already (else parsed when first asked for)."""

    @property
    def canonical(self) -> str:
        """:attr:`text` as one string."""
        if not isinstance(self.text, str):
            object.__setattr__(self, "text", b"".join(self.text).decode("ascii"))
        assert isinstance(self.text, str)
        return self.text

    def ascii(self) -> bytes | memoryview:
        """:attr:`text` as ASCII bytes (without a copy when held as one part)."""
        if isinstance(self.text, str):
            return self.text.encode("ascii")
        return self.text[0] if len(self.text) == 1 else b"".join(self.text)

    @property
    def graph(self) -> dict[str, Any]:
        """The graph as ``resources.json`` holds it (spec files relative to the spec
        directory): ``canonical`` parsed (a warm plan never asks for it)."""
        if self.parsed is None:
            object.__setattr__(self, "parsed", json.loads(self.canonical))
        assert self.parsed is not None
        return self.parsed

    def graph_text(self) -> str:
        """Exactly the bytes of ``resources.json`` (``ResourceGraph.canonical_json``)."""
        return canonical.canonical_json(self.graph)

    @property
    def spec_sha256(self) -> str:
        return spec_hash(self.spec_files)


def graph_digest(graph: Mapping[str, Any]) -> str:
    """SHA-256 of a graph document (``resources.json`` parsed) in compact canonical JSON: sorted
    keys, no whitespace, ASCII. Compact rather than the file's bytes because the indented form
    needs Python's slow JSON encoder: hashing 12,000 resources took seconds."""
    return hashlib.sha256(_canonical(graph).encode("ascii")).hexdigest()


def _canonical(graph: Mapping[str, Any]) -> str:
    return _ENCODE(graph)


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode
"""``json.dumps`` with these settings, without making an encoder for every call (the graph's
text is also written one resource at a time: :func:`text_spans`, :func:`graph_reusing`)."""


def spec_hash(files: Mapping[str, str]) -> str:
    """SHA-256 over the spec files sorted by name: for each, its name (relative to the spec
    directory), a NUL, its length in bytes, a NUL and its UTF-8 text as compiled (a leading
    byte-order mark dropped). Lengths make the encoding unambiguous."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode("utf-8")
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def lower(
    compiled: CompileResult,
    env: str,
    cache: PlanCache | None = None,
    known: Mapping[str, object] | None = None,
) -> Lowered | None:
    """Lower ``env`` with its target (``build``'s own steps); None with diagnostics. With a
    ``cache``, an authentic entry for the same spec, environment and code replaces the lowering
    (``compiler/plan/cache.py``), and a fresh lowering is stored. With ``known`` (units of an
    earlier lowering, by key), the target lowers in units and takes those whose key it finds
    (``plugins.lower_reusing``); the result holds its units for a later lowering."""
    found = compiled.systems[env]
    target = build._target_of(found, compiled.diagnostics)
    if target is None:
        return None
    with no_cyclic_gc():  # the graph is acyclic; see ``no_cyclic_gc``
        names = _cache_names(compiled.document) if cache is not None else None
        if cache is None or names is None:
            return _lowered_now(compiled, found, target, known)
        key = entry_key(env, found.environment.target, names, type(target).__module__)
        hit = cache.read(key)
        if hit is not None:
            compiled.diagnostics.extend(hit.diagnostics)
            return _from_cache(found, hit.graph_text, names, compiled.document)
        before = len(compiled.diagnostics)
        lowered = _lowered_now(compiled, found, target)
        if lowered is not None:
            _store(cache, key, lowered, names, tuple(compiled.diagnostics)[before:])
        return lowered


def _lowered_now(
    compiled: CompileResult,
    found: System,
    target: Target,
    known: Mapping[str, object] | None = None,
) -> Lowered | None:
    units: Mapping[str, object] = {}
    reused = 0
    if known is None:
        graph = target.lower(found, compiled.diagnostics)
    else:
        needs = known.needs if isinstance(known, BaseText) else {}
        with known_needs(needs):
            graph, units, reused = lower_reusing(target, found, compiled.diagnostics, known)
    if graph is None or compiled.diagnostics.has_errors:
        return None
    taken = _taken(known, units) if isinstance(known, BaseText) else None
    if taken and isinstance(known, BaseText):
        lowered = graph_reusing(found, graph, compiled.document, known, taken)
    else:
        lowered = lowered_graph(found, graph.to_json(), compiled.document)
    return replace(lowered, lowered=graph, units=units, reused=reused)


@runtime_checkable
class BaseText(Protocol):
    """Known units that come with the base's lowering: the graph text of each resource of a
    unit the head took is copied from the base's (:func:`graph_reusing`), and the graph check
    takes the needs of its resources from ``needs`` (``graph.known_needs``)."""

    base: Lowered
    spans: Mapping[str, tuple[int, int]]
    needs: KnownNeeds

    def taken(self, key: str, unit: object) -> bool: ...


def _taken(known: BaseText, units: Mapping[str, object]) -> set[str]:
    """The names of the resources of the units the head took from ``known`` unchanged."""
    names: set[str] = set()
    for key, unit in units.items():
        if known.taken(key, unit):
            resources = getattr(unit, "resources", ())
            names.update(r.name for r in resources if isinstance(r, Resource))
    return names


def text_spans(lowered: Lowered) -> dict[str, tuple[int, int]]:
    """Resource name -> the span of its canonical JSON in ``lowered.canonical`` (empty when
    the text is not the resources' texts joined as :func:`graph_reusing` joins them)."""
    text = lowered.canonical
    resources = lowered.graph.get("resources")
    marker = '"resources":['
    at = text.find(marker)
    if at < 0 or not isinstance(resources, list):
        return {}
    spans: dict[str, tuple[int, int]] = {}
    position = at + len(marker)
    for resource in resources:
        piece = _canonical(resource)
        if not text.startswith(piece, position):
            return {}
        spans[str(resource["name"])] = (position, position + len(piece))
        position += len(piece) + 1
    return spans if _joined(lowered.graph, [text[a:b] for a, b in spans.values()]) == text else {}


def _joined(document: Mapping[str, Any], pieces: list[str]) -> str:
    """``_canonical(document)``, its resources given as their canonical texts: the same text,
    since compact JSON with sorted keys writes a list as its items' texts joined by commas (a
    piece may be several items' texts already joined). The text is made by one join of all
    its parts (:func:`_parts`): each concatenation of a graph's tens of megabytes would copy
    it again."""
    return "".join(_parts(document, pieces, str))


def _parts(document: Mapping[str, Any], pieces: list[T], encode: Callable[[str], T]) -> list[T]:
    """The parts of :func:`_joined`'s text in order, the resources' ``pieces`` as given and
    the rest ``encode``d (as text, or as ASCII bytes)."""
    out = [encode("{")]
    for key in sorted(document):
        if len(out) > 1:
            out.append(encode(","))
        out += (encode(_canonical_value(key)), encode(":"))
        if key != "resources":
            out.append(encode(_canonical_value(document[key])))
            continue
        out.append(encode("["))
        comma = encode(",")
        for index, piece in enumerate(pieces):
            if index:
                out.append(comma)
            out.append(piece)
        out.append(encode("]"))
    out.append(encode("}"))
    return out


def _ascii(text: str) -> bytes | memoryview:
    return text.encode("ascii")


def _canonical_value(value: Any) -> str:
    return _ENCODE(value)


def graph_reusing(
    system: System, graph: ResourceGraph, source: Document | None, base: BaseText, taken: set[str]
) -> Lowered:
    """:func:`lowered_graph` of ``graph``, where each resource named in ``taken`` (of a unit
    taken from the base's lowering, so equal to the base's resource of that name) is written
    by copying the base's text instead of converting and encoding it again, and is looked up
    in the base's resources (:class:`SharedResources`) rather than parsed again. The text is
    kept as ASCII bytes in parts (slices of the base's, the base's own bytes when it came from
    the plan cache), hashed part by part, and joined (:attr:`Lowered.canonical`) and parsed
    (:attr:`Lowered.graph`) only when asked for."""
    rename = relative_namer(source.root if source else None)
    old = base.base
    text = old.ascii()
    pieces: list[bytes | memoryview] = []
    own: dict[str, ResourceJson] = {}
    run: list[int] = []  # the span in ``text`` of the base's resources copied last, in a row
    for resource in graph.resources:
        span = base.spans.get(resource.name) if resource.name in taken else None
        if span is not None and resource.name in old.resources:
            if run and run[1] + 1 == span[0]:
                run[1] = span[1]  # the next resource of the base's text: one slice for both
            else:
                _flush(text, run, pieces)
                run = [span[0], span[1]]
            continue
        _flush(text, run, pieces)
        run = []
        raw = resource.to_json()
        piece = _canonical(renamed(raw, rename))
        value: dict[str, Any] = json.loads(piece)
        pieces.append(piece.encode("ascii"))
        own[resource.name] = renamed(value, _origin_file(raw))
    _flush(text, run, pieces)
    shown = SharedResources((r.name for r in graph.resources), own, old.resources)
    header = {**ResourceGraph(graph.environment, graph.target, ()).to_json(), "resources": []}
    parts = _parts(header, pieces, _ascii)
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return Lowered(system, shown, spec_texts(source), digest.hexdigest(), tuple(parts))


def _flush(text: bytes | memoryview, run: list[int], pieces: list[bytes | memoryview]) -> None:
    """Add the span ``run`` of ``text`` (resources' texts joined by commas) to ``pieces``."""
    if run:
        pieces.append(text[run[0] : run[1]])


def _cache_names(document: Document | None) -> dict[str, tuple[str, str]] | None:
    """Relative name -> (shown name, text) of each spec file: the part of the cache key that
    the spec gives; None when two files would share a relative name (nothing is cached)."""
    if document is None:
        return None
    rename = relative_namer(document.root)
    names = {rename(shown): (shown, text) for shown, text in document.files.items()}
    return names if len(names) == len(document.files) else None


def _from_cache(
    system: System, text: str, names: Mapping[str, tuple[str, str]], source: Document | None
) -> Lowered:
    """The :class:`Lowered` that :func:`lowered_graph` made of the same lowering: the stored
    text is the rebased graph, files are shown again by the names of the key."""
    graph: dict[str, Any] = json.loads(text)
    shown = _shown_by(names)
    resources: dict[str, ResourceJson] = {
        str(r["name"]): renamed(r, shown) for r in graph["resources"]
    }
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    return Lowered(system, resources, spec_texts(source), digest, text, parsed=graph)


def from_text(
    system: System, text: str, shown: Mapping[str, str], spec_files: dict[str, str]
) -> Lowered:
    """The :class:`Lowered` of a graph stored as its compact canonical ``text`` (rebased), its
    spec files shown again by ``shown`` (relative name -> name as diagnostics show it)."""
    graph: dict[str, Any] = json.loads(text)
    rename = _shown_as(shown)
    resources: dict[str, ResourceJson] = {
        str(r["name"]): renamed(r, rename) for r in graph["resources"]
    }
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    return Lowered(system, resources, spec_files, digest, text, parsed=graph)


def from_spans(
    system: System,
    text: bytes | memoryview,
    shown: Mapping[str, str],
    spec_files: dict[str, str],
    spans: Spans,
    alerts: Mapping[str, int],
    digest: str,
) -> Lowered:
    """:func:`from_text` of a graph given as its text's ASCII bytes, whose resources lie at
    ``spans`` of it (every one of them, in order: :func:`text_spans`), with its alert counts
    and its digest as computed from the same text when it was stored: each resource is parsed
    when first looked up (:class:`TextResources`), the text decoded and the graph's values
    parsed only when asked for."""
    resources = TextResources(text, spans, _shown_as(shown), alerts)
    return Lowered(system, resources, spec_files, digest, (text,))


def gives_back(lowered: Lowered, shown: Mapping[str, str]) -> bool:
    """Whether :func:`from_text` of ``lowered``'s text with ``shown`` names every resource's
    spec file as ``lowered`` does (what a cache entry must give back)."""
    rename = _shown_as(shown)
    again = (renamed(r, rename).get("origin") for r in lowered.graph["resources"])
    return all(a == r.get("origin") for a, r in zip(again, lowered.resources.values(), strict=True))


def _shown_as(shown: Mapping[str, str]) -> Callable[[str], str]:
    return lambda relative: shown.get(relative, relative)


def _shown_by(names: Mapping[str, tuple[str, str]]) -> Callable[[str], str]:
    return lambda relative: names[relative][0] if relative in names else relative


def _store(
    cache: PlanCache,
    key: str,
    lowered: Lowered,
    names: Mapping[str, tuple[str, str]],
    added: tuple[Diagnostic, ...],
) -> None:
    """Cache ``lowered`` only if a hit would give back exactly the same resources."""
    shown = _shown_by(names)
    again = (renamed(r, shown).get("origin") for r in lowered.graph["resources"])
    if all(a == r.get("origin") for a, r in zip(again, lowered.resources.values(), strict=True)):
        cache.write(key, Hit(lowered.canonical, added))


def lowered_graph(system: System, document: Mapping[str, Any], source: Document | None) -> Lowered:
    """``document`` (``ResourceGraph.to_json()``) as plain JSON values, once rebased (spec files
    named relative to the spec directory, as ``resources.json`` names them) and once as plan
    lines show it (files named as diagnostics name them).

    One compact canonical dump serves both the conversion to plain JSON values (lists, not
    tuples: what a graph read back from a file or a cache holds) and :func:`graph_digest`, so
    the slow part, encoding some ten thousand resources, happens once."""
    rename = relative_namer(source.root if source else None)
    raw = document["resources"]
    rebased = {**document, "resources": [renamed(r, rename) for r in raw]}
    text = _canonical(rebased)
    graph: dict[str, Any] = json.loads(text)
    shown = [renamed(r, _origin_file(o)) for r, o in zip(graph["resources"], raw, strict=True)]
    resources: dict[str, ResourceJson] = {str(r["name"]): r for r in shown}
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    return Lowered(system, resources, spec_texts(source), digest, text, parsed=graph)


def _origin_file(resource: Mapping[str, Any]) -> Callable[[str], str]:
    """A renamer that gives back ``resource``'s own origin file (the display name)."""
    origin = resource.get("origin")
    original = origin.get("file") if isinstance(origin, dict) else None
    return lambda name: original if isinstance(original, str) else name


def spec_texts(document: Document | None) -> dict[str, str]:
    if document is None:
        return {}
    rename = relative_namer(document.root)
    return {rename(name): text for name, text in document.files.items()}


def relative_namer(root: Path | None) -> Callable[[str], str]:
    base, cwd = (root.resolve() if root else None), Path.cwd()

    @cache
    def rename(name: str) -> str:
        try:
            return (cwd / name).resolve().relative_to(base).as_posix() if base else Path(name).name
        except (OSError, ValueError):
            return Path(name).name

    return rename


def graph_object(lowered: Lowered) -> ResourceGraph:
    """The lowered graph as a ``ResourceGraph`` (what graph rules read): the target's own, or,
    for a lowering from the plan cache, one rebuilt from its resources, spec files named as
    diagnostics name them, so that a finding is located as on a fresh lowering."""
    if lowered.lowered is not None:
        return lowered.lowered
    resources = tuple(_resource(r) for r in lowered.resources.values())
    graph = lowered.graph
    return ResourceGraph(str(graph["environment"]), str(graph["target"]), resources)


def _resource(data: ResourceJson) -> Resource:
    """The inverse of ``Resource.to_json`` (inputs stay JSON values: lists, not tuples)."""
    origin = data["origin"]
    location = Location(str(origin["file"]), int(origin["line"]), int(origin["column"]))
    options = data.get("options") or {}
    return Resource(
        type=str(data["type"]),
        name=str(data["name"]),
        inputs=data.get("inputs") or {},
        origin=Origin(parse_path(str(origin["path"])), location),
        parent=data.get("parent"),
        depends_on=tuple(data.get("dependsOn") or ()),
        options=ResourceOptions(
            protect=bool(options.get("protect")),
            retain_on_delete=bool(options.get("retainOnDelete")),
            delete_before_replace=bool(options.get("deleteBeforeReplace")),
            ignore_changes=tuple(options.get("ignoreChanges") or ()),
            additional_secret_outputs=tuple(options.get("additionalSecretOutputs") or ()),
            provider=options.get("provider"),
        ),
        component=bool(data.get("component")),
    )


def graph_of(compiled: CompileResult, env: str) -> ResourceGraph | None:
    """The resource graph of ``env`` (for ``mlplane graph``); None with diagnostics."""
    found = compiled.systems[env]
    target = build._target_of(found, compiled.diagnostics)
    return target.lower(found, compiled.diagnostics) if target is not None else None
