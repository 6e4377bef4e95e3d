"""Reading a spec as it was at a git revision, without touching the working tree or the index.

``mlplane plan`` compares the working tree (the head) with a base revision (``HEAD``,
``origin/main``, a commit). The base is read from git's object database only: ``rev-parse`` to
resolve the revision, ``ls-tree`` to list the spec files at that commit and one
``cat-file --batch`` process to read their blobs. Nothing is checked out, so a plan never
disturbs a developer's uncommitted work and a CI job needs no second clone.

Why so careful with the revision (docs/quality.md row 34): ``--base`` often comes from a pull
request's metadata, and a value like ``--upload-pack=evil`` or ``-oProxyCommand=...`` would be
read by git as an option. Revisions are therefore checked *before* git runs: no leading ``-``,
no control characters, and the ref name must satisfy the rules of ``git check-ref-format``
(a trailing ``~N``/``^N`` ancestry suffix is allowed, and full or abbreviated object names). On
top of that every call is an argument list (never a shell) and ``--end-of-options``/``--``
separate options from the operand.

The blobs go through the same loader as working-tree files (``load_bytes``), named as the files
would be named in the working tree, so diagnostics and plan lines point at familiar paths, and
the same size limits apply (checked from ``ls-tree``'s sizes before any blob is read).

Which repository git reads (docs/quality.md row 36). A pull request can commit a directory that
looks like a repository to git (``HEAD``, ``config``, ``objects/``, ``refs/``) next to the spec;
git started inside it would discover it and obey its ``config``, which can name a promisor
remote whose ``uploadpack`` command git runs on a missing object, an ``fsmonitor`` command or a
hooks directory. So git never discovers anything from the spec directory:

- :func:`find_repository` walks up from the spec's path in Python to the first ``.git``. A
  ``.git`` *directory* is the repository (git refuses to check out any path named ``.git``, so a
  commit cannot plant one). A ``.git`` *file* (``gitdir: ...``, written by git for submodules
  and linked worktrees) is followed only to a directory inside the ``.git`` directory of a
  repository enclosing it, or, when no repository encloses it, to ``<repository>/worktrees/<n>``
  outside its own tree whose ``gitdir`` file names it back (a linked worktree). Anything else —
  a ``.git`` that is a link, that is not a git directory, or a ``.git`` file pointing elsewhere —
  is refused with an error located at that ``.git``; it never redirects git.
- The repository found is checked by git's own ownership rule (``safe.directory``): one
  ``rev-parse --absolute-git-dir`` from the work tree's root, with ``GIT_CEILING_DIRECTORIES``
  at its parent and implicit bare repositories refused, must name the same git directory.
- Every other call names the repository explicitly (``--git-dir``, ``--work-tree``) and
  overrides on the command line, above any configuration file, the keys that make git run
  programs: ``core.fsmonitor=false``, ``core.hooksPath`` to the null device, every transport
  disabled (``protocol.allow=never``, an empty ``GIT_ALLOW_PROTOCOL``, ``GIT_NO_LAZY_FETCH``), so
  a plan never fetches and never runs an upload-pack, SSH or proxy command.
- git's environment is built, not inherited: ``PATH``, the home and temporary directories and
  ``GIT_CONFIG_GLOBAL`` pass through; every other ``GIT_*`` variable (``GIT_DIR``,
  ``GIT_WORK_TREE``, ``GIT_CONFIG_COUNT``/``KEY``/``VALUE``, ``GIT_CONFIG_PARAMETERS``, ...) and
  every secret of the caller (passphrases, cloud keys) are left out. The system configuration is
  not read (``GIT_CONFIG_NOSYSTEM``). The user's global configuration is read: it is theirs, no
  spec can write it, and it is where git honours ``safe.directory``; the keys above are
  overridden whatever it says.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostics, Location
from mlplane.compiler.core.source import DEFAULT_LIMITS, Limits, LoadedFile
from mlplane.compiler.frontend.document import (
    SPEC_SUFFIXES,
    Document,
    assemble,
    display_name,
    escaped_name,
    utf8_name,
)
from mlplane.compiler.frontend.loader import load_bytes
from mlplane.compiler.plan import codes as plan_codes

GIT_TIMEOUT_SECONDS = 60
MAX_REVISION_LENGTH = 256
_OBJECT_NAME = re.compile(r"[0-9a-fA-F]{4,64}")
_ANCESTRY = re.compile(r"(?:[~^][0-9]*)*\Z")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for credentials
    "GIT_OPTIONAL_LOCKS": "0",  # never refresh (write) the index as a side effect
    "GIT_NO_REPLACE_OBJECTS": "1",  # read the objects the commit really names
    "GIT_LITERAL_PATHSPECS": "1",  # a spec path is a path, never a glob
    "GIT_CONFIG_NOSYSTEM": "1",  # no system-wide configuration
    "GIT_NO_LAZY_FETCH": "1",  # a missing object is an error, never a fetch (git >= 2.44)
    "GIT_ALLOW_PROTOCOL": "",  # no transport at all, whatever any configuration allows
    "GIT_PROTOCOL_FROM_USER": "0",
    "LC_ALL": "C",
}
_PASSED_THROUGH = frozenset(
    {"PATH", "HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "TMPDIR", "SUDO_UID"}
    | {"SYSTEMROOT", "USERPROFILE", "HOMEDRIVE", "HOMEPATH"}  # git for Windows finds its home
)
"""The only variables of the caller's environment git sees (see the module's docstring)."""
HARDENING = (
    *("-c", "safe.bareRepository=explicit"),
    *("-c", "core.fsmonitor=false"),
    *("-c", f"core.hooksPath={os.devnull}"),
    *("-c", "protocol.allow=never"),
)
"""Given on git's command line, which overrides every configuration file."""
MAX_GITFILE_BYTES = 4096
_SYMLINK = "120000"
BaseStatus = Literal["loaded", "absent", "failed"]


class GitError(Exception):
    """git could not be run or reported an error; the message is safe to show."""

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(message)
        self.where = where


class RepositoryRefused(GitError):
    """The ``.git`` above the spec is not one mlplane runs git against (located at it)."""


def git_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment git runs with: built from ``environ``, never inherited whole."""
    kept = {key: value for key, value in environ.items() if key in _PASSED_THROUGH}
    return {**kept, **_GIT_ENV}


def revision_problem(revision: str) -> str | None:
    """Why ``revision`` is refused before git sees it, or None when it is acceptable."""
    if not revision:
        return "the revision is empty"
    if len(revision) > MAX_REVISION_LENGTH:
        return f"the revision is longer than {MAX_REVISION_LENGTH} characters"
    if revision.startswith("-"):
        return "a revision cannot start with '-' (git would read it as an option)"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in revision):
        return "the revision contains control characters"
    suffix = _ANCESTRY.search(revision)
    name = revision[: suffix.start()] if suffix else revision
    if _OBJECT_NAME.fullmatch(name):
        return None
    return ref_name_problem(name)


def ref_name_problem(name: str) -> str | None:
    """The rules of ``git check-ref-format --allow-onelevel``, checked in Python."""
    if not name or name == "@":
        return "the revision names no ref"
    if _REF_FORBIDDEN.search(name):
        return "a ref name cannot contain spaces or any of ~ ^ : ? * [ \\"
    if "@{" in name or ".." in name or "//" in name:
        return "a ref name cannot contain '@{', '..' or '//'"
    if name.startswith("/") or name.endswith(("/", ".")):
        return "a ref name cannot start with '/' or end with '/' or '.'"
    for part in name.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "no part of a ref name can start with '.' or end with '.lock'"
    return None


@dataclass(frozen=True)
class Repository:
    """A repository found by :func:`find_repository`: never discovered by git."""

    work_tree: Path
    git_dir: Path
    marker: Path
    """The ``.git`` directory or file that was found."""


def find_repository(start: Path) -> Repository | None:
    """The repository holding ``start`` (a file or directory), found by walking up to the first
    ``.git``; None when there is none. Raises :class:`RepositoryRefused` for a ``.git`` mlplane
    will not follow (the rules are in the module's docstring)."""
    directory = (start if start.is_dir() else start.parent).resolve()
    for candidate in (directory, *directory.parents):
        marker = candidate / ".git"
        kind = _kind(marker)
        if kind == "absent":
            continue
        if kind == "directory":
            if not _is_git_directory(marker):
                raise _refused(marker, "is a directory, but not a git directory")
            return Repository(candidate, marker, marker)
        if kind == "file":
            return Repository(candidate, _followed(marker), marker)
        raise _refused(marker, "is neither a directory nor a regular file (a link?)")
    return None


def _kind(path: Path) -> Literal["absent", "directory", "file", "other"]:
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "absent"
    except OSError as error:
        raise _refused(path, f"cannot be examined ({error.strerror})") from None
    if stat.S_ISDIR(mode):
        return "directory"
    return "file" if stat.S_ISREG(mode) else "other"


def _is_git_directory(path: Path) -> bool:
    """What git itself requires of a git directory: a ``HEAD`` file and an object store (its
    own, or a common directory's for a linked worktree)."""
    if not (path / "HEAD").is_file():
        return False
    return (path / "commondir").is_file() or (
        (path / "objects").is_dir() and (path / "refs").is_dir()
    )


def _followed(marker: Path) -> Path:
    """The git directory a ``.git`` file names, when mlplane follows it."""
    try:
        with marker.open("rb") as handle:
            text = handle.read(MAX_GITFILE_BYTES + 1)
    except OSError as error:
        raise _refused(marker, f"cannot be read ({error.strerror})") from None
    line = text.decode("utf-8", "replace").strip()
    if len(text) > MAX_GITFILE_BYTES or not line.startswith("gitdir:") or "\n" in line:
        raise _refused(marker, "is not a 'gitdir: <path>' file")
    target = (marker.parent / line.removeprefix("gitdir:").strip()).resolve()
    if not target.is_dir() or not _is_git_directory(target):
        raise _refused(marker, "names something that is not a git directory")
    enclosing = _enclosing_git_directory(marker.parent)
    if enclosing is not None:
        if not target.is_relative_to(enclosing):
            raise _refused(
                marker,
                "points outside the .git directory of the repository enclosing it "
                f"({display_name(enclosing)}); only submodules and worktrees kept there are used",
            )
        return target
    if not _is_linked_worktree(marker, target):
        raise _refused(
            marker, "is neither a submodule's nor a linked worktree's (git worktree add) .git"
        )
    return target


def _enclosing_git_directory(directory: Path) -> Path | None:
    """The ``.git`` directory of the nearest repository above ``directory``."""
    for parent in directory.parents:
        if _kind(parent / ".git") == "directory":
            return (parent / ".git").resolve()
    return None


def _is_linked_worktree(marker: Path, target: Path) -> bool:
    """``target`` is ``<repository>/worktrees/<name>``, outside the tree of ``marker``, and its
    ``gitdir`` file names ``marker`` back, as ``git worktree add`` leaves them."""
    if target.parent.name != "worktrees" or target.is_relative_to(marker.parent):
        return False
    try:
        back = (target / "gitdir").read_bytes()[: MAX_GITFILE_BYTES + 1]
    except OSError:
        return False
    named = Path(os.fsdecode(back.strip()))
    return len(back) <= MAX_GITFILE_BYTES and named.resolve() == marker.resolve()


def _refused(marker: Path, problem: str) -> RepositoryRefused:
    message = f"{display_name(marker)} {problem}; git is not run against it"
    return RepositoryRefused(message, Location(display_name(marker), 1, 1))


@dataclass(frozen=True)
class Git:
    """git run against one repository, named explicitly, with options before operands, the
    hardening options and environment, and no shell."""

    repository: Repository

    @classmethod
    def of(cls, start: Path) -> Git | None:
        """git for the repository holding ``start``, checked by git's ownership rule; None
        outside a repository."""
        found = find_repository(start)
        if found is None:
            return None
        git = cls(found)
        git.check_ownership()
        return git

    def run(self, args: Sequence[str], stdin: bytes | None = None, check: bool = True) -> bytes:
        """git's standard output; on failure a :class:`GitError` (``check``) or ``b""``."""
        done = self.call(args, stdin)
        if check and done.returncode != 0:
            raise GitError(f"git {args[0]} failed: {_last_line(done.stderr, done.returncode)}")
        return done.stdout if done.returncode == 0 else b""

    def call(
        self, args: Sequence[str], stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        explicit = [
            f"--git-dir={self.repository.git_dir}",
            f"--work-tree={self.repository.work_tree}",
        ]
        return _spawn([*explicit, *args], self.repository.work_tree, stdin, {})

    def check_ownership(self) -> None:
        """Let git judge the repository's owner (``safe.directory``) as it would if it had found
        it: discovery from the work tree's root only, which holds the ``.git`` found."""
        ceiling = {"GIT_CEILING_DIRECTORIES": os.fsdecode(self.repository.work_tree.parent)}
        done = _spawn(["rev-parse", "--absolute-git-dir"], self.repository.work_tree, None, ceiling)
        if b"dubious ownership" in done.stderr:
            raise GitError(
                f"git refuses {display_name(self.repository.work_tree)}: it is owned by someone "
                "else (git's safe.directory setting in your global configuration can allow it)"
            )
        if done.returncode != 0:
            raise GitError(f"git rev-parse failed: {_last_line(done.stderr, done.returncode)}")
        named = Path(os.fsdecode(done.stdout.rstrip(b"\n")))
        if named.resolve() != self.repository.git_dir.resolve():
            raise _refused(self.repository.marker, "is not the git directory git itself finds")

    def commit_of(self, revision: str) -> str | None:
        """The full commit id ``revision`` names, or None when it names none."""
        problem = revision_problem(revision)
        if problem is not None:
            raise GitError(f"revision {revision!a} refused: {problem}")
        args = ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"]
        out = self.run(args, check=False).decode("ascii", "replace").strip()
        return out or None


def _spawn(
    args: Sequence[str], cwd: Path, stdin: bytes | None, extra: Mapping[str, str]
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *HARDENING, *args],
            cwd=cwd,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env={**git_environment(os.environ), **extra},
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (it is needed to read the base revision)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[-1]} did not finish within {GIT_TIMEOUT_SECONDS}s") from None


def head_commit(directory: Path) -> str | None:
    """The commit checked out in the repository holding ``directory`` (None outside git, in
    a repository without commits, or when the repository is refused)."""
    try:
        git = Git.of(directory)
        return git.commit_of("HEAD") if git is not None else None
    except GitError:
        return None


@dataclass
class SpecAtRevision:
    """The spec as one revision had it: ``absent`` when the path did not exist there (a first
    deployment), ``failed`` with diagnostics when it could not be read or loaded."""

    revision: str
    commit: str | None
    status: BaseStatus
    document: Document | None = None


@dataclass(frozen=True)
class _Entry:
    mode: str
    kind: str
    oid: str
    size: int
    name: str


def read_spec_at(
    target: Path, revision: str, diagnostics: Diagnostics, limits: Limits = DEFAULT_LIMITS
) -> SpecAtRevision:
    """Load the spec at ``target`` (a working-tree path) as ``revision`` had it.

    Git problems (a refused or unknown revision, no repository) are error diagnostics and a
    ``failed`` result; so are the loader's problems with the old files.
    """
    found = read_blobs_at(target, revision, diagnostics, limits)
    return load_blobs(target, found, diagnostics, limits)


@dataclass(frozen=True)
class BlobsAtRevision:
    """The spec files of ``target`` at ``revision`` as bytes, not yet loaded (``status``
    ``loaded`` when they were read)."""

    revision: str
    commit: str | None
    status: BaseStatus
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    """Spec file name (in the spec directory) -> its bytes at the commit."""


def read_blobs_at(
    target: Path, revision: str, diagnostics: Diagnostics, limits: Limits = DEFAULT_LIMITS
) -> BlobsAtRevision:
    """The first half of :func:`read_spec_at`: resolve the revision, list and read the spec
    files' blobs, with the same checks and diagnostics, without loading them."""
    problem = revision_problem(revision)
    if problem is not None:
        shown = _printable(revision)
        diagnostics.error(
            plan_codes.GIT_REVISION_INVALID, f"base revision {shown!a} refused: {problem}", None
        )
        return BlobsAtRevision(revision, None, "failed")
    try:
        return _read(target, revision, diagnostics, limits)
    except GitError as error:
        code = plan_codes.GIT_REPOSITORY_REFUSED if isinstance(error, RepositoryRefused) else None
        diagnostics.error(code or plan_codes.GIT_ERROR, str(error), error.where)
        return BlobsAtRevision(revision, None, "failed")


def load_blobs(
    target: Path, found: BlobsAtRevision, diagnostics: Diagnostics, limits: Limits = DEFAULT_LIMITS
) -> SpecAtRevision:
    """The second half of :func:`read_spec_at`: load the blobs :func:`read_blobs_at` read."""
    if found.status != "loaded":
        return SpecAtRevision(found.revision, found.commit, found.status)
    document = _load(target, dict(found.blobs), diagnostics, limits)
    status: BaseStatus = "loaded" if document is not None else "failed"
    return SpecAtRevision(found.revision, found.commit, status, document)


def shown_name(target: Path, name: str) -> str:
    """The name diagnostics give the spec file ``name`` of the spec at ``target``."""
    return _display(target, name)


def spec_root(target: Path) -> Path:
    """The spec directory of ``target`` (what a loaded document's ``root`` is)."""
    return target.resolve() if target.is_dir() else target.resolve().parent


def _read(target: Path, revision: str, diagnostics: Diagnostics, limits: Limits) -> BlobsAtRevision:
    directory = target if target.is_dir() else target.parent
    git = Git.of(directory)
    if git is None:
        raise GitError(f"{display_name(directory)} is not inside a git repository; use --base none")
    commit = git.commit_of(revision)
    if commit is None and revision == "HEAD":
        raise GitError("the repository has no commit yet; use --base none for a first deployment")
    if commit is None:
        raise GitError(f"unknown revision {_printable(revision)!a}: it names no commit here")
    listed = _list(git, commit, _relative(target, git.repository.work_tree))
    if listed is None:
        return BlobsAtRevision(revision, commit, "absent")
    blobs = _selected(git, listed, target, diagnostics, limits)
    if blobs is None:
        return BlobsAtRevision(revision, commit, "failed")
    data = _cat(git, [entry.oid for entry in blobs.values()])
    return BlobsAtRevision(
        revision, commit, "loaded", {name: data[entry.oid] for name, entry in blobs.items()}
    )


def _relative(target: Path, top: Path) -> str:
    try:
        return target.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        raise GitError(f"{display_name(target)} lies outside its git repository") from None


@dataclass(frozen=True)
class _Listing:
    entries: list[_Entry]
    single_file: bool
    """The spec path names a file (then its one entry is the spec, whatever its name)."""


def _list(git: Git, commit: str, relative: str) -> _Listing | None:
    """The entries of the spec path at ``commit``; None when the path does not exist there."""
    if relative in ("", "."):
        return _Listing(_ls_tree(git, commit, None), single_file=False)
    found = _ls_tree(git, commit, relative)
    if not found:
        return None
    if found[0].kind == "tree":
        return _Listing(_ls_tree(git, commit, relative + "/"), single_file=False)
    return _Listing(found, single_file=True)


def _ls_tree(git: Git, commit: str, path: str | None) -> list[_Entry]:
    args = ["ls-tree", "-z", "-l", "--full-tree", "--end-of-options", commit]
    out = git.run([*args, "--", path] if path is not None else args)
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid, size = meta.decode("ascii").split()
        name = PurePosixPath(os.fsdecode(raw_path)).name
        entries.append(_Entry(mode, kind, oid, int(size) if size.isdigit() else 0, name))
    return entries


def _selected(
    git: Git, listing: _Listing, target: Path, diagnostics: Diagnostics, limits: Limits
) -> dict[str, _Entry] | None:
    """The spec files of ``listing`` by name, as ``discover`` picks them in the working tree;
    None (with diagnostics) when a limit is exceeded or a link cannot be followed."""
    blobs = [e for e in listing.entries if e.kind == "blob"]
    regular = {e.name: e for e in blobs if e.mode != _SYMLINK}
    chosen: dict[str, _Entry] = {}
    for entry in sorted(blobs, key=lambda e: e.name):
        if not listing.single_file and not _is_spec_name(entry.name):
            continue
        if not utf8_name(entry.name):
            named = Location(escaped_name(_display(target, entry.name)), 1, 1)
            message = "the file name is not valid UTF-8 at the base revision; rename the file"
            diagnostics.error(codes.NOT_UTF8, message, named)
            continue
        real = (
            _follow(git, entry, regular, target, diagnostics) if entry.mode == _SYMLINK else entry
        )
        if real is not None:
            chosen[entry.name] = _Entry(real.mode, real.kind, real.oid, real.size, entry.name)
    if diagnostics.has_errors or not _within_limits(chosen, target, diagnostics, limits):
        return None
    if not chosen:
        where = display_name(target)
        diagnostics.error(
            codes.NO_SPEC_FILES, f"no *.yaml or *.yml files in {where} at the base", None
        )
        return None
    return chosen


def _is_spec_name(name: str) -> bool:
    return name.endswith(SPEC_SUFFIXES) and not name.startswith(".")


def _follow(
    git: Git, link: _Entry, regular: dict[str, _Entry], target: Path, diagnostics: Diagnostics
) -> _Entry | None:
    """A symbolic link is followed only to a regular file of the same directory. Its blob (the
    link's text) is tiny, so it is read here, before the size checks of the real files."""
    name = os.fsdecode(_cat(git, [link.oid])[link.oid])
    found = regular.get(name) if "/" not in name else None
    if found is None:
        where = Location(_display(target, link.name), 1, 1)
        message = f"{link.name} is a symbolic link out of the spec directory at the base revision"
        diagnostics.error(codes.PATH_OUTSIDE_ROOT, message, where)
    return found


def _within_limits(
    chosen: dict[str, _Entry], target: Path, diagnostics: Diagnostics, limits: Limits
) -> bool:
    if len(chosen) > limits.max_files:
        message = (
            f"the base revision holds {len(chosen)} spec files; the limit is {limits.max_files}"
        )
        diagnostics.error(codes.FILE_TOO_LARGE, message, None)
        return False
    for name, entry in chosen.items():
        if entry.size > limits.max_file_bytes:
            message = (
                f"spec file is {entry.size:,} bytes; the limit is {limits.max_file_bytes:,} bytes"
            )
            diagnostics.error(codes.FILE_TOO_LARGE, message, Location(_display(target, name), 1, 1))
    total = sum(entry.size for entry in chosen.values())
    if total > limits.max_total_bytes:
        message = f"the spec's files add up to more than {limits.max_total_bytes // 2**20} MiB"
        diagnostics.error(codes.FILE_TOO_LARGE, message, None)
    return not diagnostics.has_errors


def _cat(git: Git, oids: list[str]) -> dict[str, bytes]:
    """Blob contents by object id, from one ``git cat-file --batch`` process."""
    out = git.run(["cat-file", "--batch"], stdin="".join(f"{oid}\n" for oid in oids).encode())
    found: dict[str, bytes] = {}
    position = 0
    for _ in oids:
        end = out.index(b"\n", position)
        header = out[position:end].decode("ascii", "replace").split()
        if len(header) == 2 and header[1] == "missing":
            raise GitError(
                f"object {header[0]} is not in this clone (a partial clone?); mlplane never "
                "fetches, so fetch the base revision first"
            )
        if len(header) != 3 or header[1] != "blob":
            raise GitError(f"git cat-file could not read object {header[0] if header else '?'}")
        size = int(header[2])
        found[header[0]] = out[end + 1 : end + 1 + size]
        position = end + 1 + size + 1
    return found


def _load(
    target: Path, files: dict[str, bytes], diagnostics: Diagnostics, limits: Limits
) -> Document | None:
    loaded: list[LoadedFile] = []
    for name in sorted(files):
        result, problems = load_bytes(files[name], _display(target, name), limits)
        diagnostics.extend(problems)
        if result is not None:
            loaded.append(result)
    if diagnostics.has_errors or not loaded:
        return None
    document = assemble(loaded, diagnostics)
    document.root = spec_root(target)
    return document


def _display(target: Path, name: str) -> str:
    """The name the working tree's loader would give the file ``name`` of the spec."""
    return display_name(target / name if target.is_dir() else target.parent / name)


def _last_line(stderr: bytes, returncode: int) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return _printable(lines[-1]) if lines else f"exit status {returncode}"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)[:200]
