"""``mlplane build``: compile one environment, lower it with its target, write every output.

    spec --compile_spec--> system --target.lower--> graph --emitters--> files --writer--> out/

The output directory holds the target's own files (``target.emit``), the files of every graph
emitter (the Pulumi project under ``pulumi/``), ``resources.json`` (the canonical graph, what
``plan`` diffs) and ``manifest.json`` (every other file with its SHA-256). Everything is decided
in memory first; only then does the writer touch the disk, atomically (``compiler/build/writer.py``),
so a failing emitter leaves the previous output byte-identical.

Outputs depend only on the spec: spec files are named relative to the spec's directory (never
by how the user spelled the path, nor by an absolute path of the build machine), keys are sorted,
and nothing records a time. ``check=True`` builds in memory and compares with the directory.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from mlplane import __version__
from mlplane.compiler.build.pipeline import CompileResult, target_of
from mlplane.compiler.build.writer import check_tree, read_tree, sha256, special_files
from mlplane.compiler.core import canonical, pickled, plugins, safe_read
from mlplane.compiler.core.diagnostics import Diagnostics, Location
from mlplane.compiler.core.graph import Resource, ResourceGraph, fields_as_held
from mlplane.compiler.core.ir import System
from mlplane.compiler.core.provenance import GENERATOR, header_line, spec_file_names

MANIFEST = "manifest.json"
RESOURCES = "resources.json"
MANIFEST_VERSION = 1
HEADER_LINES = 3
"""A text file's header must be within its first lines (after a shebang or similar)."""

Finding = Literal["missing", "stale", "hand-edited", "extra", "not-a-file"]


class BuildError(Exception):
    """An emitter broke a rule of the output (unsafe path, duplicate file, missing header):
    a bug in a target or emitter, never a user's mistake."""


@dataclass
class BuildResult:
    """What a build did, or (with ``check``) what it found; nothing is written on errors."""

    compiled: CompileResult
    out_dir: Path
    environment: str = ""
    files: tuple[str, ...] = ()
    """Every file of the output, relative to ``out_dir``, sorted (``manifest.json`` included)."""
    findings: tuple[tuple[str, Finding], ...] = ()
    """``--check``: (path, finding) for each file that is not current, sorted by path."""
    checked: bool = False
    written: tuple[str, ...] = ()
    """The files the build wrote; the others held the same bytes already and were kept."""
    taken: tuple[int, int] = (0, 0)
    """From the build cache (``compiler/build/cache.py``): the lowering's units taken, and the
    per-resource texts the emitters took."""

    @property
    def diagnostics(self) -> Diagnostics:
        return self.compiled.diagnostics

    @property
    def ok(self) -> bool:
        return self.compiled.ok and not self.findings and bool(self.files)


def default_out_dir(environment: str) -> Path:
    """``build/<env>`` below the current directory."""
    return Path("build") / environment


def build(
    target_path: Path,
    env: str,
    out_dir: Path | None = None,
    check: bool = False,
    *,
    policies: bool = False,
    today: date | None = None,
) -> BuildResult:
    """Build environment ``env`` of the spec at ``target_path`` into ``out_dir``.

    With ``policies`` (as ``mlplane build`` runs it) the policy packs run as in ``mlplane
    validate``, and the graph rules on the lowered graph, and a spec that breaks a rule is not
    built; ``today`` decides which waivers have expired (None: none has).

    Raises ``UnknownEnvironmentError`` (a usage error), ``UnsafePathError`` and
    ``OutputLockedError`` (the destination cannot be used), ``ReadBackError`` (the output's
    ``manifest.json`` is a link, a special file, too large, too deep or malformed, so what the
    build may replace is unknown) and :class:`BuildError` (a bug).
    """
    out = out_dir if out_dir is not None else default_out_dir(env)
    _, results = build_many(
        target_path, [env], lambda _: out, check, policies=policies, today=today
    )
    return results[0]


def build_many(
    target_path: Path,
    environments: Sequence[str] | None,
    out_dir_of: Callable[[str], Path] = default_out_dir,
    check: bool = False,
    *,
    policies: bool = False,
    today: date | None = None,
    workers: int | None = None,
    record: bool = False,
) -> tuple[CompileResult, list[BuildResult]]:
    """Build each of ``environments`` (None: every environment of the spec) into
    ``out_dir_of(name)`` from one compile of the spec, the environments lowered in parallel
    (``compiler/build/environments.py``); each output is replaced atomically, and none when any
    environment fails. One result per environment, in order (in name order for None; none when
    the spec failed before its environments were known); they share the compile, whose
    diagnostics are those of every environment (returned first, also when there is no result).
    ``record``: a build that would change nothing is not done again (``compiler/build/record.py``),
    and its compile result then holds no document nor system models."""
    from mlplane.compiler.build.environments import build_environments

    run = build_environments(
        target_path,
        environments,
        out_dir_of,
        check=check,
        policies=policies,
        today=today,
        workers=workers,
        record=record,
    )
    names = [request.environment for request in run.requests]
    if not names:
        names = list(environments) if environments is not None else sorted(run.compiled.systems)
    results: list[BuildResult] = []
    for name in names:
        result = BuildResult(run.compiled, out_dir_of(name), name, checked=check)
        outcome = run.outcomes.get(name)
        if outcome is not None and outcome.files:
            result.files = outcome.files
            result.findings = outcome.findings
            result.written = outcome.written if run.compiled.ok and not check else ()
            result.taken = outcome.taken
        results.append(result)
    return run.compiled, results


def output_files(
    system: System, graph: ResourceGraph, target: plugins.Target, root: Path | None
) -> dict[str, bytes]:
    """Every file of one environment's output, in memory (``root``: the spec's directory)."""
    system, graph = _rebased(system, graph, root)
    with canonical.shared_fragments():  # the program's data file reuses resources.json's texts
        texts = _emitted(system, graph, target)
    return _with_manifest(system, graph, texts)


def _target_of(system: System, diagnostics: Diagnostics) -> plugins.Target | None:
    return target_of(system, diagnostics)


def _emitted(system: System, graph: ResourceGraph, target: plugins.Target) -> dict[str, str]:
    """The target's files plus every graph emitter's plus ``resources.json``; no overlaps."""
    producers: list[tuple[str, Callable[[System, ResourceGraph], Mapping[str, str]]]] = [
        (f"target {target.name}", target.emit)
    ]
    producers += [(f"emitter {n}", e.emit) for n, e in sorted(plugins.emitters().items())]
    texts: dict[str, str] = {RESOURCES: graph.canonical_json()}
    for producer, emit in producers:
        for path, text in emit(system, graph).items():
            if path in texts or path == MANIFEST:
                raise BuildError(f"{producer} emits {path!a}, which another producer also writes")
            texts[path] = text
    return texts


def _with_manifest(
    system: System, graph: ResourceGraph, texts: Mapping[str, str]
) -> dict[str, bytes]:
    header = header_line(system)
    files = {path: text.encode("utf-8") for path, text in texts.items()}
    for path, text in texts.items():
        if not path.endswith(".json") and not any(header in line for line in _head(text)):
            raise BuildError(f"{path!a} does not start with the generated-file header")
    files[MANIFEST] = manifest_json(system, graph, files).encode("utf-8")
    check_tree(files)
    return files


def _head(text: str) -> list[str]:
    """``text.splitlines()[:HEADER_LINES]`` without splitting a whole large file: a prefix
    holding more than that many lines holds those lines whole."""
    size = 4096
    while True:
        lines = text[:size].splitlines()
        if len(lines) > HEADER_LINES or size >= len(text):
            return lines[:HEADER_LINES]
        size *= 8


def manifest_json(system: System, graph: ResourceGraph, files: Mapping[str, bytes]) -> str:
    """``manifest.json``: provenance, and every other output file with its size and SHA-256."""
    document = {
        "version": MANIFEST_VERSION,
        "generator": {"name": GENERATOR, "version": __version__},
        "header": header_line(system),
        "note": (
            "Generated files: do not edit. Text files carry the header above as a comment; "
            "JSON files (this manifest, resources.json) cannot hold comments, so this manifest "
            "names their generator. `mlplane build --check` compares the output with these hashes."
        ),
        "system": system.name,
        "spec": list(spec_file_names(system)),
        "environment": graph.environment,
        "target": graph.target,
        "files": [
            {"path": path, "sha256": sha256(data), "size": len(data)}
            for path, data in sorted(files.items())
        ],
    }
    return canonical.canonical_json(document)


def recorded_hashes(out_dir: Path, strict: bool = False) -> dict[str, str] | None:
    """Path -> SHA-256 from an existing ``manifest.json`` written by mlplane, else None.

    The manifest is read as every file mlplane reads back (``compiler/core/safe_read.py``): a
    regular file, not a link, of at most :data:`MAX_MANIFEST_BYTES`, bounded JSON depth, the
    shape of a manifest. A missing manifest, or one another generator wrote, is None; one that
    breaks those rules raises ``ReadBackError`` when ``strict`` (a build, which must know what
    it may replace) and is None otherwise (``--check``, which reports the file as not current).
    """
    if out_dir.is_symlink() or not out_dir.is_dir():
        return None  # no output here, or one check_destination refuses
    path = out_dir / MANIFEST
    try:
        document = safe_read.read_json(path, MAX_MANIFEST_BYTES)
        found = safe_read.validated(document, _MANIFEST, safe_read.shown(path), "a manifest")
    except FileNotFoundError:
        return None
    except safe_read.ReadBackError:
        if strict:
            raise
        return None
    if found.generator.name != GENERATOR:
        return None
    return {entry.path: entry.sha256 for entry in found.files}


MAX_MANIFEST_BYTES = 16 * 2**20
"""Some 100,000 files' worth of entries."""


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)


class _Generator(_Shape):
    name: str


class _Entry(_Shape):
    path: str
    sha256: str


class _Manifest(_Shape):
    """The fields of ``manifest.json`` a build reads back (see :func:`manifest_json`)."""

    generator: _Generator
    files: list[_Entry]


_MANIFEST: TypeAdapter[_Manifest] = TypeAdapter(_Manifest)


def compare(out_dir: Path, files: Mapping[str, bytes]) -> tuple[tuple[str, Finding], ...]:
    """What differs between the output that would be written and ``out_dir``.

    *stale*: the spec or mlplane changed since the build; *hand-edited*: the file no longer has
    the hash its manifest recorded; *missing*, *extra*; *not-a-file*: a symlink or special file.
    """
    on_disk = read_tree(out_dir)
    recorded = recorded_hashes(out_dir) or {}
    findings: dict[str, Finding] = {path: "not-a-file" for path in special_files(out_dir)}
    for path in sorted(set(files) | set(on_disk)):
        if path in findings:
            continue
        if path not in on_disk:
            findings[path] = "missing"
        elif path not in files:
            findings[path] = "extra"
        elif on_disk[path] != files[path]:
            edited = path in recorded and sha256(on_disk[path]) != recorded[path]
            findings[path] = "hand-edited" if edited and path != MANIFEST else "stale"
    return tuple(sorted(findings.items()))


def _rebased(
    system: System, graph: ResourceGraph, root: Path | None
) -> tuple[System, ResourceGraph]:
    """``system`` and ``graph`` with every spec file named relative to the spec's directory.

    Diagnostics name files as the user typed them (relative to the working directory), which is
    right for a terminal but would make the output depend on where the build ran.
    """
    if root is None:
        return system, graph
    relocate = _Relocator(output_name(root))
    moved: ResourceGraph = relocate(graph)
    if moved is not graph and "needs" in vars(graph):
        vars(moved)["needs"] = graph.needs  # names, inputs and parents are the same
    return relocate(system), moved


def output_name(root: Path) -> Callable[[str], str]:
    """A spec file's name as the output writes it (relative to the spec's directory ``root``),
    from its name as diagnostics show it (relative to the working directory)."""
    base = root.resolve()
    cwd = Path.cwd()

    @cache  # one answer per spec file, however many locations name it
    def rename(name: str) -> str:
        try:
            return (cwd / name).resolve().relative_to(base).as_posix()
        except (OSError, ValueError):
            return PurePath(name).name

    return rename


def _relocated(value: Any, rename: Callable[[str], str]) -> Any:
    """A copy of frozen dataclasses with every ``Location.file`` renamed (:class:`_Relocator`)."""
    return _Relocator(rename)(value)


_ATOMS = frozenset({str, int, float, bool, type(None), bytes})


class _Relocator:
    """Copies frozen dataclasses, tuples and ``MappingProxyType`` mappings with every
    ``Location.file`` renamed; everything else (plain dicts and lists: JSON inputs) is shared.

    A value in which nothing was renamed is returned itself, not copied, and each object is
    copied once however often it is shared (a memo by identity, for the lifetime of one call),
    so relabelling a 1,000-model system and its graph costs one walk, not a deep copy.
    """

    def __init__(self, rename: Callable[[str], str]) -> None:
        self.rename = rename
        self.memo: dict[int, Any] = {}
        self.keep: list[Any] = []  # the originals, alive while their ids are memo keys
        self.fields: dict[type, tuple[str, ...] | None] = {}
        self.builders: dict[
            type, tuple[Callable[[Any], tuple[Any, ...]] | None, dict[str, int]]
        ] = {}

    def __call__(self, value: Any) -> Any:
        kind = type(value)
        if kind in _ATOMS:
            return value
        key = id(value)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._copy(kind, value)
            self.keep.append(value)
        return found

    def _copy(self, kind: type, value: Any) -> Any:
        if kind is Location:
            file = self.rename(value.file)
            return value if file == value.file else Location(file, value.line, value.column)
        if kind is tuple:
            items = tuple(map(self, value))
            return value if _same(items, value) else items
        if kind is MappingProxyType:
            values = list(map(self, value.values()))
            if _same(values, value.values()):
                return value
            return MappingProxyType(dict(zip(value.keys(), values, strict=True)))
        names = self._fields(kind, value)
        if names is None:
            return value
        changes = {}
        for name in names:
            item = getattr(value, name)
            moved = self(item)
            if moved is not item:
                changes[name] = moved
        return self._replaced(kind, value, changes) if changes else value

    def _replaced(self, kind: type, value: Any, changes: dict[str, Any]) -> Any:
        """``dataclasses.replace(value, **changes)``; for a dataclass its constructor rebuilds by
        position (``pickled.fields_getter``), built from its fields in one call (a relocated
        1,000-model system and graph replace some 40,000 objects)."""
        found = self.builders.get(kind)
        if found is None:
            getter = fields_as_held if kind is Resource else pickled.fields_getter(kind)
            order = {f.name: i for i, f in enumerate(fields(kind))} if getter else {}
            found = self.builders[kind] = (getter, order)
        getter, order = found
        if getter is None:
            return replace(value, **changes)
        values = list(getter(value))
        for name, moved in changes.items():
            values[order[name]] = moved
        return kind(*values)

    def _fields(self, kind: type, value: Any) -> tuple[str, ...] | None:
        if kind not in self.fields:
            dataclass = is_dataclass(value) and not isinstance(value, type)
            self.fields[kind] = _location_fields(kind) if dataclass else None
        return self.fields[kind]


def _location_fields(kind: type) -> tuple[str, ...]:
    """The init fields of dataclass ``kind`` whose annotation allows a ``Location`` inside; all
    of them when the annotations cannot be resolved."""
    names = [f.name for f in fields(kind) if f.init and (kind, f.name) not in _NO_LOCATION]
    try:
        hints = typing.get_type_hints(kind)
    except (NameError, TypeError):
        return tuple(names)
    return tuple(name for name in names if name not in hints or _may_hold(hints[name]))


_NO_LOCATION = frozenset({(Resource, "inputs")})
"""Fields whose annotation allows anything but whose values hold no ``Location``: a resource's
inputs are JSON values (``compiler/core/graph.py``), never read by relabelling, so a resource
taken from the build cache keeps them unread (``graph.Deferred``)."""

_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


def _may_hold(hint: Any) -> bool:
    """Whether a value annotated ``hint`` may hold a ``Location``: False only for scalars and
    containers of scalars (a dataclass annotation may be a subclass with more fields: True)."""
    if hint in _PLAIN:
        return False
    origin = typing.get_origin(hint)
    if origin is Literal:
        return False
    if origin in (typing.Union, types.UnionType, tuple, list, dict, frozenset, set) or origin in (
        Mapping,
        Sequence,
    ):
        return any(arg is not Ellipsis and _may_hold(arg) for arg in typing.get_args(hint))
    return not (isinstance(hint, type) and issubclass(hint, enum.Enum))


def _same(copies: Iterable[Any], originals: Iterable[Any]) -> bool:
    return all(a is b for a, b in zip(copies, originals, strict=True))
