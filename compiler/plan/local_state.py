"""``.mlplane/``: mlplane's local state in a repository, which git must never pick up.

Three commands create it, each through :func:`ensure_state_dir` before its first write: ``plan``
(the plan cache, ``.mlplane/cache/plan/``), ``apply`` (the record of the last apply,
``.mlplane/applied/``) and ``apply``/``destroy``/``drift`` with the default local Pulumi backend
(``.mlplane/state/``). The directory gets its own ``.gitignore`` holding ``*`` the moment it is
created (and whenever it lacks one), so ``git add -A`` in a repository whose own ``.gitignore``
does not list ``.mlplane/`` (one not made by ``mlplane init``) still commits none of it: the
state can hold resource outputs, the cache and the records are local, and none of it is
reviewed. An existing ``.gitignore`` there is left as it is (a user may have changed it), and a
``.mlplane`` that is a symbolic link is not written into.

A writer that may be stopped (``plan``'s forked base child, stopped with SIGTERM when the head
fails) holds SIGTERM while it makes the directory and writes into it (:func:`termination_held`):
stopped between creating ``.mlplane`` and renaming its ``.gitignore`` into place, it would leave
a temporary file that git shows.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlplane.compiler.build.writer import write_new_file

STATE_DIR = ".mlplane"
GITIGNORE = (
    "# mlplane's local state and cache (plan cache, applied records, Pulumi state): never "
    "committed\n*\n"
)


def state_dir_of(path: Path) -> Path | None:
    """The ``.mlplane`` directory that ``path`` is (or lies below), or None."""
    for candidate in (path, *path.parents):
        if candidate.name == STATE_DIR:
            return candidate
    return None


def ensure_state_dir(path: Path) -> None:
    """Before writing at or below ``path``: when it is in a ``.mlplane`` directory, create that
    directory (private to the user) with its ``.gitignore``. Raises ``OSError`` when they
    cannot be written."""
    state = state_dir_of(path)
    if state is None or state.is_symlink():
        return
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    ignore = state / ".gitignore"
    if not ignore.exists() and not ignore.is_symlink():
        write_new_file(ignore, GITIGNORE)


@contextmanager
def termination_held() -> Iterator[None]:
    """SIGTERM held (blocked in this thread) for the block, and delivered after it: a process
    stopped with SIGTERM while it writes local state stops once its files are in place. SIGKILL
    and SIGINT are not held."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
