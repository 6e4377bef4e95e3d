"""Running one side of a plan in a forked child process while the parent works on the other.

``mlplane plan`` compiles and lowers the head and the base, two independent pieces of pure work;
on a machine with a second core the base can run beside the head. A forked child starts at once
(no re-import, unlike ``spawn``) and sends its result back pickled through a pipe.

Whether to fork is the caller's choice (``mlplane plan`` forks when :func:`spare_core` says a
core is idle: the results are the same either way, only the time differs). Fork is only used
where it is safe: on Linux, and only while the process runs a single thread
(forking a threaded process can leave a lock held forever in the child). Anything else, and any
failure of the child (an exception, a crash, a result that cannot be pickled), means the work is
done again in the parent, so the result, and any exception, is what a sequential run gives.
The child ends with ``os._exit``: it never runs the parent's ``atexit`` handlers or buffers.
A child whose result is not wanted is stopped with SIGTERM, which it holds while it writes its
cache entry (``local_state.termination_held``), and killed only if it has not ended within
:data:`CANCEL_GRACE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mlplane.compiler.build.environments import free_cores
from mlplane.compiler.core.pickled import Pickler

T = TypeVar("T")
CANCEL_GRACE_SECONDS = 10.0
"""How long a cancelled child may take to end (it may be writing a cache entry) before it is
killed."""


def _pickled(value: object) -> bytes:
    """``value`` pickled with the read-only mappings of the system model (``core/pickled.py``)."""
    buffer = io.BytesIO()
    Pickler(buffer).dump(value)
    return buffer.getvalue()


@dataclass
class Pending(Generic[T]):
    """Work running in a child (``pid``), or to be done on :meth:`result` (``pid`` None)."""

    work: Callable[[], T]
    pid: int | None = None
    reader: int | None = None

    def result(self) -> T:
        """The child's result; the work done here when there is no child or it failed."""
        if self.pid is None or self.reader is None:
            return self.work()
        with os.fdopen(self.reader, "rb") as stream:
            data = stream.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = self.reader = None
        if status != 0 or not data:
            return self.work()
        found: T = pickle.loads(data)  # noqa: S301 - from our own child, never from outside
        return found

    def cancel(self) -> None:
        """Stop the child (its result is not wanted): SIGTERM, which it holds while it writes
        local state, then SIGKILL after :data:`CANCEL_GRACE_SECONDS`."""
        if self.pid is None or self.reader is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.002)
        os.close(self.reader)
        self.pid = self.reader = None


def fork_is_safe() -> bool:
    return sys.platform == "linux" and threading.active_count() == 1 and hasattr(os, "fork")


def spare_core() -> bool:
    """Whether a second core is likely idle, estimated as for a multi-environment build
    (``environments.free_cores``: the load average less this process's own share, bounded by
    what runs now). On a busy machine the child only competes with the parent, and pickling
    the result costs more than the overlap gains (``benchmarks/plan_bench.py``)."""
    return free_cores() >= 1


def start(work: Callable[[], T]) -> Pending[T]:
    """Run ``work`` in a forked child when that is safe; else later, in this process."""
    if not fork_is_safe():
        return Pending(work)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        _child(work, writer)
    os.close(writer)
    return Pending(work, pid, reader)


def _child(work: Callable[[], Any], writer: int) -> None:
    """Run ``work``, write its pickled result, exit 0; exit 1 on any failure."""
    code = 1
    try:
        signal.signal(
            signal.SIGTERM, signal.SIG_DFL
        )  # stopped as cancel() asks, whatever the parent set
        data = _pickled(work())
        with os.fdopen(writer, "wb") as stream:
            stream.write(data)
        code = 0
    except BaseException:  # noqa: S110 - the parent does the work again, and reports
        pass
    finally:
        os._exit(code)
