"""Locks of a local (``file://``) state backend left behind by a run that was killed.

The Pulumi engine locks a stack while it updates it: a second ``mlplane apply`` of the same stack
is refused with "the stack is currently locked" until the first ends. A run that is killed
(``kill -9``, an out-of-memory kill, a CI job cancelled) cannot release its lock, and every later
run is refused until someone runs ``pulumi cancel``. For a local backend the lock file names the
process that holds it (``{"pid", "hostname", ...}`` under ``.pulumi/locks/<org>/<project>/<stack>/``):
when that process is gone from this machine the lock is stale and is removed before the engine
runs, so the next apply completes the interrupted one. A lock held by a live process, or taken
on another machine, is never touched.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

LOCKS = Path(".pulumi") / "locks"
MAX_LOCK_BYTES = 64 * 1024
"""A lock file is a few dozen bytes; anything larger is not one the engine wrote."""


@dataclass(frozen=True)
class StaleLock:
    path: Path
    pid: int
    timestamp: str


def local_root(backend: str) -> Path | None:
    """The directory of a ``file://`` backend, or None for any other backend."""
    parsed = urlparse(backend)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parsed.path))


def stale_locks(backend: str, project: str, stack: str) -> list[StaleLock]:
    """The stack's lock files whose process ran on this machine and no longer runs."""
    root = local_root(backend)
    if root is None:
        return []
    directory = root / LOCKS
    found: list[StaleLock] = []
    for path in sorted(directory.glob(f"*/{_plain(project)}/{_plain(stack)}/*.json")):
        lock = _read(path)
        if lock is None:
            continue
        pid, host, timestamp = lock
        if host == socket.gethostname() and not _running(pid):
            found.append(StaleLock(path, pid, timestamp))
    return found


def remove(lock: StaleLock) -> None:
    """Delete the lock file and the attributes file the backend writes beside it."""
    lock.path.unlink(missing_ok=True)
    lock.path.with_name(lock.path.name + ".attrs").unlink(missing_ok=True)


STACKS = Path(".pulumi") / "stacks"


def empty_attributes(backend: str, project: str, stack: str) -> list[Path]:
    """The stack's checkpoint attribute files that are empty: a run killed between creating one
    and writing it leaves it so (the checkpoint itself is written to a temporary file and
    renamed), and the engine then refuses to open the stack ("failed to load checkpoint:
    EOF"). Removing it is a repair: the backend reads a missing attribute file as none."""
    root = local_root(backend)
    if root is None:
        return []
    directory = root / STACKS / _plain(project)
    found = []
    for name in (f"{_plain(stack)}.json.attrs", f"{_plain(stack)}.json.bak.attrs"):
        path = directory / name
        if not path.is_symlink() and path.is_file() and path.stat().st_size == 0:
            found.append(path)
    return found


def _plain(name: str) -> str:
    # Stack and project names are checked plain names; never let one act as a glob pattern.
    return "".join(ch for ch in name if ch.isalnum() or ch in "-_.")


def _read(path: Path) -> tuple[int, str, str] | None:
    try:
        if path.is_symlink() or path.stat().st_size > MAX_LOCK_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    pid, host = data.get("pid"), data.get("hostname")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(host, str):
        return None
    return pid, host, str(data.get("timestamp", ""))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process that its parent has not reaped yet holds no lock any more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # pid (comm) state ...: comm may hold spaces and parentheses, the state follows the last ')'.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
