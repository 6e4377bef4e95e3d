"""Assembling spec files into one document, and finding the files of a spec.

A spec is one file or one directory of ``*.yaml``/``*.yml`` files describing one system. Named
sections (``models``, ``dataSources`` ...) merge across files by entry name; a name defined twice
is an error citing both places. Singleton sections (``metadata``, ``security`` ...) live in one
file. ``waivers`` concatenate. Every file may repeat ``apiVersion`` and ``kind``; they must agree.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostics, Location, Related, SpecPath
from mlplane.compiler.core.source import DEFAULT_LIMITS, Limits, LoadedFile
from mlplane.compiler.frontend.loader import load_path

NAMED_SECTIONS = ("environments", "dataSources", "models", "slas")
LIST_SECTIONS = ("waivers",)
HEADER_KEYS = ("apiVersion", "kind")
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class Document:
    """The assembled spec: plain data plus where every path was written."""

    data: dict[str, Any]
    values: dict[SpecPath, Location] = field(default_factory=dict)
    keys: dict[SpecPath, Location] = field(default_factory=dict)
    raw: dict[SpecPath, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """Display name -> source text, for excerpts."""
    root: Path | None = None
    """The spec directory (or the directory of a single spec file)."""

    def location(self, path: SpecPath) -> Location | None:
        """The key's position if ``path`` is a mapping entry, else the value's, else a parent's."""
        probe = path
        while True:
            found = self.keys.get(probe) or self.values.get(probe)
            if found is not None or not probe:
                return found
            probe = probe[:-1]

    def value_location(self, path: SpecPath) -> Location | None:
        probe = path
        while True:
            found = self.values.get(probe) or self.keys.get(probe)
            if found is not None or not probe:
                return found
            probe = probe[:-1]


def display_name(path: Path) -> str:
    """A stable, relative (when possible) name for messages: never an absolute machine path
    when the file lies under the working directory."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (OSError, RuntimeError):  # a symbolic link loop: name the link itself
        absolute = Path(os.path.abspath(path))
        cwd = Path.cwd().resolve()
        return absolute.relative_to(cwd).as_posix() if absolute.is_relative_to(cwd) else str(path)
    except ValueError:
        return path.as_posix()


def discover(target: Path, diagnostics: Diagnostics, limits: Limits = DEFAULT_LIMITS) -> list[Path]:
    """The spec files of ``target`` (a file or a directory), sorted by name."""
    if target.is_file():
        return [target]
    if not target.is_dir():
        diagnostics.error(
            codes.IO_ERROR, f"{display_name(target)}: no such file or directory", None
        )
        return []
    root = target.resolve()
    found: list[Path] = []
    for entry in sorted(os.scandir(target), key=lambda e: e.name):
        if not entry.name.endswith(SPEC_SUFFIXES) or entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if not utf8_name(entry.name):
            diagnostics.error(
                codes.NOT_UTF8,
                "the file name is not valid UTF-8; rename the file",
                Location(escaped_name(display_name(path)), 1, 1),
            )
            continue
        if entry.is_symlink() and _link_loops(path):
            diagnostics.error(
                codes.IO_ERROR,
                f"{display_name(path)} is a symbolic link that leads in a loop",
                Location(display_name(path), 1, 1),
            )
            continue
        if entry.is_symlink() and not path.resolve().is_relative_to(root):
            diagnostics.error(
                codes.PATH_OUTSIDE_ROOT,
                f"{display_name(path)} is a symbolic link to a file outside the spec directory",
                Location(display_name(path), 1, 1),
            )
            continue
        if path.is_file():
            found.append(path)
    if not found and not diagnostics.has_errors:
        diagnostics.error(
            codes.NO_SPEC_FILES, f"no *.yaml or *.yml files in {display_name(target)}", None
        )
    if len(found) > limits.max_files:
        diagnostics.error(
            codes.FILE_TOO_LARGE,
            f"{display_name(target)} holds {len(found)} spec files; the limit is {limits.max_files}",
            None,
        )
        return []
    return found


def utf8_name(name: str) -> bool:
    """Whether a file name decoded from the file system is UTF-8 (undecodable bytes arrive as
    lone surrogates, which no output can encode)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escaped_name(name: str) -> str:
    """``name`` with lone surrogates (undecodable bytes) shown as ``\\u{DCXX}``."""
    return "".join(c if not 0xD800 <= ord(c) <= 0xDFFF else f"\\u{{{ord(c):04X}}}" for c in name)


def _link_loops(path: Path) -> bool:
    try:
        path.resolve(strict=True)
    except RuntimeError:
        return True
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def load_spec(
    target: Path,
    diagnostics: Diagnostics,
    limits: Limits = DEFAULT_LIMITS,
    sources: dict[str, str] | None = None,
) -> Document | None:
    """Load and assemble every spec file of ``target``; None when anything failed. ``sources``
    receives the text of each file that decoded (for the excerpts of the loader's errors)."""
    paths = discover(target, diagnostics, limits)
    total = 0
    loaded: list[LoadedFile] = []
    for path in paths:
        name = display_name(path)
        with contextlib.suppress(OSError):  # unreadable files are reported by the loader
            total += path.stat().st_size
        if total > limits.max_total_bytes:
            diagnostics.error(
                codes.FILE_TOO_LARGE,
                f"the spec's files add up to more than {limits.max_total_bytes // 2**20} MiB",
                Location(name, 1, 1),
            )
            return None
        result, problems = load_path(path, name, limits, sources)
        diagnostics.extend(problems)
        if result is not None:
            loaded.append(result)
    if diagnostics.has_errors or not loaded:
        return None
    root = target.resolve() if target.is_dir() else target.resolve().parent
    document = assemble(loaded, diagnostics)
    document.root = root
    return document


def assemble(files: list[LoadedFile], diagnostics: Diagnostics) -> Document:
    """Merge loaded files into one document (see the module docstring for the rules)."""
    document = Document(data={})
    owners: dict[SpecPath, Location] = {}
    for loaded in files:
        document.files[loaded.name] = loaded.text
        offsets = {
            key: len(document.data[key])
            for key in LIST_SECTIONS
            if isinstance(document.data.get(key), list)
        }
        for key, value in loaded.data.items():
            _merge_section(document, loaded, key, value, owners, diagnostics)
        _copy_positions(document, loaded, offsets)
    return document


def _copy_positions(document: Document, loaded: LoadedFile, offsets: dict[str, int]) -> None:
    """Copy a file's positions in one pass; list sections continuing a list shift by an offset."""
    if not document.values:
        document.values.update(loaded.values)
        document.keys.update(loaded.keys)
        document.raw.update(loaded.raw)
        return
    for path, location in loaded.values.items():
        if path:
            document.values[_shift(path, offsets)] = location
    for path, location in loaded.keys.items():
        document.keys[_shift(path, offsets)] = location
    for path, text in loaded.raw.items():
        document.raw[_shift(path, offsets)] = text


def _shift(path: SpecPath, offsets: dict[str, int]) -> SpecPath:
    offset = offsets.get(path[0], 0) if isinstance(path[0], str) else 0
    if not offset or len(path) < 2:
        return path
    index = path[1]
    assert isinstance(index, int)
    return (path[0], index + offset, *path[2:])


def _merge_section(
    document: Document,
    loaded: LoadedFile,
    key: str,
    value: Any,
    owners: dict[SpecPath, Location],
    diagnostics: Diagnostics,
) -> None:
    data = document.data
    here = loaded.location((key,))
    if key not in data:
        data[key] = (
            dict(value)
            if isinstance(value, dict)
            else list(value)
            if isinstance(value, list)
            else value
        )
        owners[(key,)] = here
        if isinstance(value, dict) and key in NAMED_SECTIONS:
            for name in value:
                owners[(key, name)] = loaded.location((key, name))
        return
    if key in HEADER_KEYS:
        if data[key] != value:
            diagnostics.error(
                codes.CONFLICTING_SECTION,
                f"{key} differs between spec files",
                here,
                (key,),
                related=(Related(owners[(key,)], f"first {key} is here"),),
            )
        return
    if key in NAMED_SECTIONS and isinstance(value, dict) and isinstance(data[key], dict):
        _merge_named(document, loaded, key, value, owners, diagnostics)
        return
    if key in LIST_SECTIONS and isinstance(value, list) and isinstance(data[key], list):
        data[key].extend(value)
        return
    diagnostics.error(
        codes.CONFLICTING_SECTION,
        f"section {key!r} is defined in more than one spec file; keep it in one file",
        here,
        (key,),
        related=(Related(owners[(key,)], f"{key} is first defined here"),),
    )


def _merge_named(
    document: Document,
    loaded: LoadedFile,
    key: str,
    value: dict[str, Any],
    owners: dict[SpecPath, Location],
    diagnostics: Diagnostics,
) -> None:
    section = document.data[key]
    for name, entry in value.items():
        path: SpecPath = (key, name)
        if name in section:
            diagnostics.error(
                codes.DUPLICATE_NAME,
                f"{key} entry {name!r} is defined in two spec files",
                loaded.location(path),
                path,
                related=(Related(owners[path], f"{name!r} is first defined here"),),
            )
            continue
        section[name] = entry
        owners[path] = loaded.location(path)
