"""The sandboxed process that evaluates organisation policies in Rego (see compiler/policy/rego.py).

Started by ``rego.py`` as ``python -I -X utf8 -m mlplane.compiler.policy.rego_worker`` with an
empty environment, it imports only the standard library and ``regopy``, then locks itself in:

- its standard output and error (file descriptors 1 and 2, where rego-cpp's ``print`` writes)
  go to a private temporary file; what a query printed is read back, at most ``PRINT_LIMIT``
  bytes, and returned as data, never written anywhere. Replies travel on a duplicate of the
  original standard output;
- every other descriptor is closed and ``RLIMIT_NOFILE`` set to one above the highest one in use,
  so nothing can open a file or a socket; ``RLIMIT_FSIZE`` bounds what ``print`` can write and
  ``RLIMIT_CORE`` is 0 (a crash leaves no core file holding the input);
- before each query the soft ``RLIMIT_CPU`` is set to the CPU time used so far plus the limit of
  the request: a runaway query is killed by the kernel (SIGXCPU), which the parent reports.

Protocol: one JSON object per line in each direction. Requests: ``{"op": "load", "modules":
[[key, text], ...]}``, ``{"op": "input", "input": ...}``, ``{"op": "query", "query": str,
"cpu": seconds}``. Replies: ``{"ok": true}`` or ``{"ok": false, "error": text}`` for the first
two; a query replies ``{"ok", "result", "error", "printed", "truncated"}`` where ``result`` is
the first expression of the query's answer (``null`` when undefined). End of input ends the
worker.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import resource
import signal
import sys
import tempfile
from typing import Any, BinaryIO

PRINT_LIMIT = 4096
"""Bytes of ``print`` output kept per query (the rest is dropped and marked truncated)."""
FILE_LIMIT = 1 << 20
"""RLIMIT_FSIZE: what ``print`` may write in total before writes fail."""


def _libc() -> Any:
    try:
        return ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no C library to ask
        return None


_LIBC = _libc()


def _libc_flush() -> None:
    """Flush C stdio (rego-cpp's std::cout writes through it) into the capture file."""
    flush = getattr(_LIBC, "fflush", None)
    if flush is not None:
        flush(None)


class Worker:
    def __init__(self, regopy: Any, replies: BinaryIO, capture: int) -> None:
        self.regopy = regopy
        self.shared = regopy.rego_shared
        self.replies = replies
        self.capture = capture
        self.interpreter: Any = None

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "load":
            return self.load(request["modules"])
        if op == "input":
            self.interpreter.set_input(self.regopy.Input(request["input"]))
            return {"ok": True}
        if op == "query":
            return self.query(str(request["query"]), float(request["cpu"]))
        return {"ok": False, "error": f"unknown request {op!r}"}

    def load(self, modules: list[list[str]]) -> dict[str, Any]:
        interpreter = self.regopy.Interpreter()
        interpreter.log_level = self.regopy.LogLevel.NONE
        for key, text in modules:
            try:
                interpreter.add_module(key, text)
            except self.regopy.RegoError as error:
                return {"ok": False, "error": str(error)}
        self.interpreter = interpreter
        return {"ok": True}

    def query(self, query: str, cpu: float) -> dict[str, Any]:
        _limit_cpu(cpu)
        shared = self.shared
        output = shared.rego_query(self.interpreter._impl, query)
        try:
            ok = bool(shared.rego_output_ok(output))
            text = shared.rego_output_string(output)
        finally:
            shared.rego_free_output(output)
        _limit_cpu(None)
        printed, truncated = self.printed()
        reply: dict[str, Any] = {"ok": False, "result": None, "error": None}
        reply.update(printed=printed, truncated=truncated)
        if not ok:
            reply["error"] = text
            return reply
        if text == "undefined":
            reply["ok"] = True
            return reply
        try:
            answer = json.loads(text)
        except ValueError:  # rego-cpp reports some errors (trace, recursion) as an ok answer
            reply["error"] = text
            return reply
        first = answer[0] if isinstance(answer, list) and answer else answer
        expressions = first.get("expressions") if isinstance(first, dict) else None
        reply["ok"] = True
        reply["result"] = expressions[0] if expressions else None
        return reply

    def printed(self) -> tuple[str, bool]:
        """What the last query printed (bounded), and whether more was dropped; then empty."""
        _libc_flush()
        fd = self.capture
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, PRINT_LIMIT) if size else b""
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        return data.decode("utf-8", "replace"), size > PRINT_LIMIT or size >= FILE_LIMIT


def _limit_cpu(seconds: float | None) -> None:
    """Soft RLIMIT_CPU at the CPU time used so far plus ``seconds`` (None: lift it again)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if seconds is None:
        soft = hard
    else:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _data_size() -> int | None:
    """VmData of this process in bytes (Linux), which includes the allocator's reservation:
    RLIMIT_DATA is set above it (RLIMIT_AS cannot be: the reservation is huge)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


_REPLIES, _CAPTURE = 3, 4
"""The descriptors the worker keeps besides 0 (requests), 1 and 2 (both the capture file)."""


def _lock_in() -> tuple[BinaryIO, int]:
    """Move replies off fd 1, capture fds 1 and 2 in a private file, close everything else
    and forbid new descriptors (see the module docstring): afterwards fds 0-4 are the only
    ones, and ``RLIMIT_NOFILE`` is 5, so no number is left for a new file or socket."""
    replies = os.dup(1)
    capture = tempfile.TemporaryFile()  # noqa: SIM115 - only its descriptor is kept
    parked = [os.dup2(replies, 1000), os.dup2(capture.fileno(), 1001)]
    os.close(replies)
    capture.close()
    os.closerange(3, 1000)
    os.dup2(parked[0], _REPLIES)
    os.dup2(parked[1], _CAPTURE)
    os.dup2(_CAPTURE, 1)
    os.dup2(_CAPTURE, 2)
    os.closerange(_CAPTURE + 1, 1 << 16)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails, nothing dies
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = _CAPTURE + 1
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (top, top if hard == resource.RLIM_INFINITY else min(hard, top))
    )
    return os.fdopen(_REPLIES, "wb", buffering=0), _CAPTURE


def main() -> int:
    requests = sys.stdin.buffer
    try:  # before locking in: importing opens files
        import regopy  # type: ignore[import-untyped]
        from regopy import rego_shared  # noqa: F401 - the raw query API used by Worker.query
    except ImportError as error:
        sys.stdout.buffer.write(json.dumps({"ok": False, "error": str(error)}).encode() + b"\n")
        return 1
    os.environ.clear()  # the C environment too: opa.runtime().env reads it
    regopy.Interpreter()  # the allocator reserves its address space on first use
    data = _data_size()
    replies, capture = _lock_in()
    if data is not None and len(sys.argv) > 1:
        limit = data + int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    worker = Worker(regopy, replies, capture)
    replies.write(b'{"ok": true}\n')
    for line in requests:
        try:
            reply = worker.handle(json.loads(line))
        except Exception as error:
            reply = {"ok": False, "error": f"{error.__class__.__name__}: {error}"}
        replies.write(json.dumps(reply).encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
