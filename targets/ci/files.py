"""Where the CI files go in a repository, and which of the files there are stale.

``mlplane ci`` writes into a repository that also holds the team's own files, so it is careful
about what it replaces: a file is written only when its content differs, replaced only when
``mlplane ci`` wrote it (the generated header says so), removed only when it is one of ours
that the spec no longer produces, and never reached through a symbolic link. All writes go
through ``compiler.build.writer.write_new_file`` (temporary file, then rename: a reader sees the old
file or the new one, never half of one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import TypeAdapter, ValidationError

from mlplane.compiler.build.writer import UnsafePathError, check_relative_path, write_new_file
from mlplane.compiler.core.plugins import CiChanges
from mlplane.schema.ci import RepoPath

_REPO_PATH: TypeAdapter[str] = TypeAdapter(RepoPath)


class CiPathError(ValueError):
    """The spec or the output cannot be placed in a repository (a usage error)."""


@dataclass(frozen=True, slots=True)
class Changes:
    """How the repository differs from what the spec generates."""

    changed: tuple[str, ...]
    """Generated files that are missing or differ (written by :func:`apply`)."""
    obsolete: tuple[str, ...]
    """Files ``mlplane ci`` wrote earlier that the spec no longer produces (removed)."""
    foreign: tuple[str, ...]
    """Files in the way that ``mlplane ci`` did not write (never touched)."""

    @property
    def stale(self) -> tuple[str, ...]:
        return tuple(sorted((*self.changed, *self.obsolete, *self.foreign)))


def repository_root(spec: Path) -> Path | None:
    """The nearest directory at or above ``spec`` that holds ``.git`` (as git finds it)."""
    here = spec.resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return None


def spec_path_in(root: Path, spec: Path) -> str:
    """``spec`` relative to ``root`` as a safe POSIX path ('.' for the root itself)."""
    try:
        relative = spec.resolve().relative_to(root.resolve())
    except ValueError:
        raise CiPathError(
            f"the spec {spec} lies outside {root}: set ci.specPath in the spec, or choose --out"
        ) from None
    text = PurePosixPath(*relative.parts).as_posix() if relative.parts else "."
    try:
        return _REPO_PATH.validate_python(text)
    except ValidationError:
        raise CiPathError(
            f"the spec's path in the repository ({text!r}) has characters CI cannot carry "
            "safely: set ci.specPath to a plain path"
        ) from None


def compare(
    root: Path, files: Mapping[str, str], pattern: str, generated: Callable[[str], bool]
) -> Changes:
    """What :func:`apply` would change below ``root``; ``pattern`` globs every file the
    provider may produce, ``generated`` recognises the ones ``mlplane ci`` wrote."""
    changed: list[str] = []
    foreign: list[str] = []
    for relative, text in sorted(files.items()):
        current = _read(root, check_relative_path(relative))
        if current == text:
            continue
        (foreign if current is not None and not generated(current) else changed).append(relative)
    obsolete = [
        relative
        for relative in _matching(root, pattern)
        if relative not in files and generated(_read(root, relative) or "")
    ]
    return Changes(tuple(changed), tuple(obsolete), tuple(foreign))


def apply(root: Path, files: Mapping[str, str], changes: CiChanges) -> None:
    """Write the changed files and remove the obsolete ones (never the foreign ones)."""
    for relative in changes.changed:
        target = _target(root, relative)
        write_new_file(target, files[relative])
        target.chmod(0o644)  # a file for the repository, readable like its neighbours
    for relative in changes.obsolete:
        _target(root, relative).unlink()


def _target(root: Path, relative: str) -> Path:
    """``root/relative``, refusing a symbolic link anywhere on the way (a hostile checkout
    could point ``.github`` elsewhere)."""
    path = root
    for part in check_relative_path(relative).split("/"):
        path = path / part
        if path.is_symlink():
            raise UnsafePathError(f"{path} is a symbolic link; refusing to write through it")
    return path


def _read(root: Path, relative: str) -> str | None:
    path = _target(root, relative)
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""  # not ours: a generated file is always UTF-8


def _matching(root: Path, pattern: str) -> list[str]:
    directory, _, name = pattern.rpartition("/")
    base = root / directory if directory else root
    if not base.is_dir() or base.is_symlink():
        return []
    return sorted(
        f"{directory}/{path.name}" if directory else path.name
        for path in base.glob(name)
        if path.is_file() and not path.is_symlink() and os.sep not in path.name
    )
