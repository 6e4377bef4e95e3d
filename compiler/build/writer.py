"""Writing files safely: atomically, never through a symlink, never outside the output root.

Two writers:
- :func:`write_new_file` writes one file (``mlplane init``): temporary file, then rename.
- :func:`replace_tree` replaces a whole output directory (``mlplane build``): the new tree is
  written into a temporary directory *next to* the destination (same file system, so renames are
  atomic), read back and verified, then swapped in: one ``renameat2(RENAME_EXCHANGE)`` on
  Linux, elsewhere old aside, new in, old removed (a failure of the second rename puts the old
  tree back). Any failure before the swap leaves the destination byte-identical.
  It is :func:`stage_tree` (staging only; a build of several environments stages each in its
  own worker process) followed by :func:`swap_in`.

Incremental: a file whose bytes are already those of the destination's file (a regular file
with one link and no permission beyond 0644, compared byte for byte, not by its recorded hash, so a hand-edit
is never kept) is not written again but hard-linked into the staging tree: after the swap it is
the same inode, with its old modification time, and only changed files were written (and
fsynced). Where links are not possible the file is written.

Paths come from emitters, which may (through a bug) carry spec text into a file name, so every
relative path is checked first (:func:`check_relative_path`): no absolute paths, no ``..``, no
backslashes, no control characters, normalised, and no two paths that collide on a
case-insensitive file system. The destination must be a real directory (not a symlink) that is
new, empty, or a previous output holding only files that output recorded (plus tool directories
such as Pulumi's ``venv``); a symlink inside it is refused too. A build never deletes a file it
did not write.

:func:`output_lock` makes concurrent builds into one directory fail fast instead of interleaving.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

RUNTIME_DIRECTORIES = frozenset({"venv", "__pycache__"})
"""Directories that tools create inside an output (Pulumi's virtualenv, Python's bytecode cache):
skipped by the symlink scan and by :func:`read_tree`, and removed with the old tree on a rebuild."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIRECTORY_MODE = 0o755
_FILE_MODE = 0o644


class UnsafePathError(Exception):
    """The destination is a symbolic link or otherwise unsafe to write."""


class OutputLockedError(Exception):
    """Another process holds the lock of the output directory."""


def write_new_file(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically: readers see the old file or the new one, never half.

    Refuses a symlinked destination, so a hostile checkout cannot redirect the write.
    """
    if target.is_symlink():
        raise UnsafePathError(f"{target} is a symbolic link; refusing to write through it")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_output_file(target: Path, text: str) -> None:
    """Write one output file (``plan --out``) under the rules of ``build --out``: a relative
    path must not pass through a symbolic link (:func:`check_ancestors`), its directory must
    already exist (nothing is created), the file itself must not be a link or a directory, and
    the write is atomic (a temporary file in the same directory, then rename)."""
    check_ancestors(target)
    parent = target.parent
    if not parent.is_dir():
        raise UnsafePathError(f"the directory {parent} does not exist; create it first")
    if target.is_symlink():
        raise UnsafePathError(f"{target} is a symbolic link; refusing to write through it")
    if target.exists() and not target.is_file():
        raise UnsafePathError(f"{target} exists and is not a regular file")
    write_new_file(target, text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_relative_path(path: str) -> str:
    """``path`` if it is a safe, normalised, relative POSIX path inside the output root."""
    problem = _path_problem(path)
    if problem:
        raise UnsafePathError(f"refusing to write {path!a}: {problem}")
    return path


def _path_problem(path: str) -> str | None:
    if not path:
        return "empty path"
    if _CONTROL.search(path):
        return "control character in the path"
    if "\\" in path:
        return "backslash in the path"
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        return "absolute path"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "the path is not normalised (empty, '.' or '..' component)"
    if PurePosixPath(path).as_posix() != path:
        return "the path is not normalised"
    if any(part in RUNTIME_DIRECTORIES for part in parts[:-1]):
        return "the path lies in a directory reserved for tools"
    return None


def check_tree(files: Mapping[str, bytes]) -> None:
    """Every path safe; no case-insensitive duplicates; no file that is also a directory."""
    seen: dict[str, str] = {}
    for path in files:
        check_relative_path(path)
        other = seen.setdefault(path.casefold(), path)
        if other != path:
            raise UnsafePathError(f"{path!a} and {other!a} collide on case-insensitive systems")
    folded = set(seen)
    for path in files:
        parents = PurePosixPath(path.casefold()).parents
        clash = next((str(p) for p in parents if str(p) in folded), None)
        if clash is not None:
            raise UnsafePathError(f"{clash!a} is both a file and the directory of {path!a}")


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[Path]:
    """Hold ``<out>.lock`` (next to the output) exclusively; fail at once if someone else does.

    ``flock`` on a lock file rather than on the directory, because the directory is replaced.
    The file is removed on release; a process that locked the file just before it was removed
    notices (the path no longer names its file) and locks the new one instead.
    """
    lock_path = out_dir.parent / f"{out_dir.name}.lock"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    handle = _acquire(lock_path)
    try:
        yield lock_path
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock_path.unlink()
        os.close(handle)


def _acquire(lock_path: Path) -> int:
    for _ in range(100):
        try:
            handle = os.open(
                lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
            )
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise UnsafePathError(
                    f"{lock_path} is a symbolic link; refusing to use it"
                ) from None
            raise
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise OutputLockedError(
                f"another mlplane build is writing {lock_path.parent / lock_path.name[:-5]} "
                f"(it holds {lock_path}); try again when it has finished"
            ) from None
        if _same_file(handle, lock_path):
            return handle
        os.close(handle)  # released and removed by its holder between our open and our lock
    raise OutputLockedError(f"could not lock {lock_path}: it keeps being replaced")


def _same_file(handle: int, path: Path) -> bool:
    try:
        current = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle)
    return (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)


def check_destination(out_dir: Path, previous: frozenset[str] | None, replacing: bool) -> None:
    """Refuse an output directory that is unsafe to replace (or, for ``--check``, to read).

    ``previous`` lists the files a previous build recorded there (None: no such record). Refused:
    a symlinked or non-directory output and, when ``replacing``, a symlink inside it, a
    non-empty directory without a record, or one with files the record does not list (Pulumi
    state, a user's notes): replacing the tree would delete them, and a build never deletes what
    it did not write. Tool directories (:data:`RUNTIME_DIRECTORIES`) are the exception.
    """
    if out_dir.is_symlink():
        raise UnsafePathError(f"{out_dir} is a symbolic link; refusing to write through it")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UnsafePathError(f"{out_dir} exists and is not a directory")
    if not replacing or not any(out_dir.iterdir()):
        return  # --check reads without following links and reports them as findings
    links = special_files(out_dir)
    if links:
        raise UnsafePathError(
            f"{out_dir} contains symbolic links or special files ({', '.join(links[:5])}); "
            "refusing to replace it"
        )
    if previous is None:
        raise UnsafePathError(
            f"{out_dir} is not empty and holds no mlplane build output (no manifest.json); "
            "refusing to replace it: choose a new or empty directory with --out"
        )
    foreign = sorted(set(_walk(out_dir)) - previous)
    if foreign:
        raise UnsafePathError(
            f"{out_dir} holds files that mlplane did not write ({', '.join(foreign[:5])}); "
            "refusing to replace it: move them out of the output directory first"
        )


def check_ancestors(out_dir: Path) -> None:
    """Refuse a relative output path that passes through a symlink (``build -> ~/.ssh``).

    A repository can commit a symlink named like the default output's parent; following it would
    write outside the working tree. An absolute ``--out`` is the user's explicit choice, and its
    ancestors may legitimately be links (``/tmp`` on macOS), so only relative paths are checked.
    """
    if out_dir.is_absolute():
        return
    for ancestor in reversed(out_dir.parents[:-1]):
        if ancestor.is_symlink():
            raise UnsafePathError(f"{ancestor} is a symbolic link; refusing to write through it")


def replace_tree(out_dir: Path, files: Mapping[str, bytes]) -> tuple[str, ...]:
    """Make ``out_dir`` hold exactly ``files``, atomically (see the module docstring); the
    files actually written (the others were unchanged and are kept, see :func:`stage_tree`).

    The caller holds :func:`output_lock` and has run :func:`check_destination`.
    """
    remove_leftovers(out_dir)
    staged = stage_tree(out_dir, files)
    swap_in(staged.path, out_dir)
    return staged.written


@dataclass(frozen=True)
class Staged:
    """A verified tree next to its destination, not yet swapped in."""

    path: Path
    written: tuple[str, ...]
    """The files written afresh; the others were hard-linked from the destination."""


def stage_tree(out_dir: Path, files: Mapping[str, bytes]) -> Staged:
    """Write ``files`` into a new temporary directory next to ``out_dir``, linking the files
    whose bytes ``out_dir`` already holds, and verify it; removed again on any failure.

    The caller holds :func:`output_lock`, has run :func:`check_destination` and, once per
    build, :func:`remove_leftovers`.
    """
    check_tree(files)
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    written: list[str] = []
    try:
        for relative, data in sorted(files.items()):
            if not _link_unchanged(out_dir, staging, relative, data):
                _write_file(staging, relative, data)
                written.append(relative)
        _sync_files(staging, written)
        _verify(staging, files, written)
        os.chmod(staging, _DIRECTORY_MODE)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Staged(staging, tuple(written))


def swap_in(staging: Path, out_dir: Path) -> None:
    """Put the staged tree at ``out_dir`` atomically (:func:`_swap`) and sync the directory."""
    try:
        _swap(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    _fsync_directory(out_dir.parent)


def _link_unchanged(out_dir: Path, staging: Path, relative: str, data: bytes) -> bool:
    """Hard-link ``out_dir/relative`` into ``staging`` when it holds exactly ``data``."""
    current = out_dir.joinpath(*relative.split("/"))
    try:
        status = os.lstat(current)
        if not _linkable(status, len(data)):
            return False
        handle = os.open(current, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(handle, "rb") as stream:
            if stream.read(len(data) + 1) != data:
                return False
        target = staging.joinpath(*relative.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True, mode=_DIRECTORY_MODE)
        os.link(current, target, follow_symlinks=False)
    except OSError:
        return False  # absent, unreadable, or no hard links here: written afresh
    return True


def _linkable(status: os.stat_result, size: int) -> bool:
    return (
        stat.S_ISREG(status.st_mode)
        and stat.S_IMODE(status.st_mode) & ~_FILE_MODE == 0  # no more than a fresh write gets
        and status.st_nlink == 1
        and status.st_size == size
    )


def _write_file(root: Path, relative: str, data: bytes) -> None:
    """Write a new file (not yet synced: :func:`_sync_files`)."""
    target = root.joinpath(*relative.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True, mode=_DIRECTORY_MODE)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    handle = os.open(target, flags, _FILE_MODE)
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)


def _sync_files(root: Path, written: Sequence[str]) -> None:
    """Flush every file ``written`` under ``root`` to disk before the tree is swapped in.

    After all of them are written, and a few at a time (``fsync`` lets other threads run): the
    file system then commits its journal for several files at once (``benchmarks/README.md``)."""
    paths = [root.joinpath(*relative.split("/")) for relative in written]
    if len(paths) < _SYNC_ALONE:
        for path in paths:
            _sync_file(path)
        return
    with ThreadPoolExecutor(max_workers=_SYNC_THREADS) as pool:
        for _ in pool.map(_sync_file, paths):
            pass  # an error raises here


_SYNC_ALONE = 8
"""Fewer files than this are synced one after the other, without threads."""
_SYNC_THREADS = 8


def _sync_file(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _verify(staging: Path, files: Mapping[str, bytes], written: Sequence[str]) -> None:
    """Check the staged tree: exactly ``files``, regular files of the intended sizes, and each
    file ``written`` read back with the intended bytes. A file linked from the destination
    (:func:`_link_unchanged`) is not read again: its bytes were read and compared just before
    the link was made, and it was not written."""
    found = set(_walk(staging))
    if found != set(files):
        raise OSError(f"the staged output differs from the plan: {sorted(found ^ set(files))}")
    for relative, data in files.items():
        if os.lstat(staging.joinpath(*relative.split("/"))).st_size != len(data):
            raise OSError(f"{relative} was not written intact")
    for relative in written:
        path = staging.joinpath(*relative.split("/"))
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(handle, "rb") as stream:
            if stream.read(len(files[relative]) + 1) != files[relative]:
                raise OSError(f"{relative} was not written intact")


def _swap(staging: Path, out_dir: Path) -> None:
    """Put ``staging`` at ``out_dir``: one atomic exchange where the kernel offers it (Linux
    ``renameat2(RENAME_EXCHANGE)``), else old aside, new in, and the old back on failure."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    if _exchange(staging, out_dir):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old tree
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    os.rmdir(aside)  # a fresh unique name; rename needs it absent
    os.rename(out_dir, aside)
    try:
        os.rename(staging, out_dir)
    except BaseException:
        os.rename(aside, out_dir)
        raise
    shutil.rmtree(aside, ignore_errors=True)


_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> bool:
    """Swap two directory entries atomically; False when the system cannot (then nothing moved)."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is None:
        return False
    at_cwd = -100
    result = function(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def remove_leftovers(out_dir: Path) -> None:
    """Staging and set-aside trees of a build that was killed (we hold the lock: none is live)."""
    for prefix in (f".{out_dir.name}.tmp-", f".{out_dir.name}.old-"):
        for leftover in out_dir.parent.glob(prefix + "*"):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` (tool directories skipped), never following a symlink;
    symlinks and other special files are left out (:func:`special_files` lists them)."""
    found: dict[str, bytes] = {}
    for relative in _walk(root):
        handle = os.open(root / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(handle, "rb") as stream:
            found[relative] = stream.read()
    return found


def tree_digests(root: Path) -> dict[str, str] | None:
    """The SHA-256 of every file :func:`read_tree` reads, by path, each hashed as it is read
    rather than held; None when ``root`` holds a special file (:func:`special_files`), or
    cannot be read."""
    try:
        if special_files(root):
            return None
        found: dict[str, str] = {}
        for relative in _walk(root):
            handle = os.open(root / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(handle, "rb") as stream:
                found[relative] = hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError:
        return None
    return found


def special_files(root: Path) -> list[str]:
    """Paths below ``root`` that are not regular files or directories (symlinks, sockets ...)."""
    special: list[str] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d not in RUNTIME_DIRECTORIES]
        for name in [*subdirectories, *files]:
            path = Path(directory, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) or stat.S_ISLNK(mode):
                special.append(path.relative_to(root).as_posix())
    return sorted(special)


def _walk(root: Path) -> Iterator[str]:
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(
            d
            for d in subdirectories
            if d not in RUNTIME_DIRECTORIES and not Path(directory, d).is_symlink()
        )
        for name in sorted(files):
            path = Path(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                yield path.relative_to(root).as_posix()
