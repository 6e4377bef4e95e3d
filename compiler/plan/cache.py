"""A cache of lowered base graphs, so that planning against the same base twice lowers it once.

``mlplane plan`` compiles and lowers two sides; the base (``origin/main``) rarely changes while
a branch is worked on, and lowering is the larger part of its cost. So the lowered base graph
is kept in ``.mlplane/cache/plan/`` under the repository root (git-ignored, next to the state)
and found again by a key that names everything the lowering depends on:

* the spec files: each one's name relative to the spec directory, its name as diagnostics
  show it (which depends on the working directory) and its text;
* the environment and the target;
* the code: mlplane's version, ``sealed.code_fingerprint`` (``compiler/core/sealed.py``: a
  SHA-256 over the source files of the packages that lower (schema, compiler, targets) and of
  the target's own package (an editable install keeps its version while its code changes), the
  versions of the libraries that shape the result (pydantic, PyYAML, promql-parser:
  ``sealed.DEPENDENCIES``, and what each installed target declares as its ``libraries``)) and
  the Python version.

A plan stores a git base's whole side (``compiler/plan/base_entry.py``): besides the graph, its
diagnostics and a payload with the system model and spec texts, under a key taken from the
spec files' blobs, so that a warm plan neither loads, compiles, lowers nor judges the base. It must never change a plan, and a repository's contents are
untrusted (a pull request could commit a file into ``.mlplane/cache/``), so:

* every entry carries an HMAC-SHA256 over its key and contents under a random secret kept
  outside the repository (``$XDG_CACHE_HOME/mlplane/plan-cache.key``, else under
  ``~/.cache``; created on first use, mode 0600; ``compiler/core/sealed.py``, which the build
  cache shares): a corrupted, hand-edited, copied or planted
  entry fails the check and is ignored, as is an entry over :data:`MAX_ENTRY_BYTES`;
* entries are written to a temporary file and renamed into place (readers never see half an
  entry), only for lowerings without errors, and only when the graph can be given back exactly;
* a symbolic link anywhere in the cache's directories disables the cache, and an entry is read
  as every file mlplane reads back (``compiler/core/safe_read.py``): one that is not a regular
  file (a link, a device, a FIFO, which would block the reader) is not read;
* any problem (no home directory, a read-only disk) means no cache, never an error.

The graph is stored in the compact canonical JSON that the graph digest is computed from, so
writing an entry costs no second encoding and a hit recomputes the digest from the stored text.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlplane import __version__
from mlplane.compiler.core import safe_read, sealed
from mlplane.compiler.core.diagnostics import Diagnostic, diagnostic_json, diagnostic_of
from mlplane.compiler.plan.local_state import ensure_state_dir, termination_held

CACHE_FORMAT = 8
CACHE_DIR = Path(".mlplane") / "cache" / "plan"
MAX_ENTRY_BYTES = 128 * 2**20
MAX_ENTRIES = 16
"""The newest entries kept; older ones are removed after each write."""


@dataclass(frozen=True)
class Hit:
    """A cached lowering: the graph in canonical JSON and the diagnostics lowering added; for
    a whole base side (``compiler/plan/base_entry.py``), the side's diagnostics and, in
    ``payload``, what else the plan reads from the base's compile."""

    graph_text: str
    diagnostics: tuple[Diagnostic, ...]
    payload: bytes = b""


@dataclass(frozen=True)
class RawHit:
    """A :class:`Hit` with its graph left as the entry's ASCII bytes (tens of megabytes, not
    decoded nor copied: a plan that parses only some of its resources reads them there)."""

    graph: memoryview
    diagnostics: tuple[Diagnostic, ...]
    payload: bytes = b""


@dataclass(frozen=True)
class PlanCache:
    directory: Path
    secret: bytes

    @classmethod
    def open(cls, repository: Path) -> PlanCache | None:
        """The cache of ``repository``; None when it cannot be used safely."""
        directory = repository / CACHE_DIR
        secret = sealed.secret()
        if secret is None or not sealed.real_directories(repository, CACHE_DIR):
            return None
        return cls(directory, secret)

    def read(self, key: str) -> Hit | None:
        """The entry of ``key`` when present and authentic, else None."""
        raw = self.read_raw(key)
        return None if raw is None else _decoded(raw)

    def read_raw(self, key: str) -> RawHit | None:
        """:meth:`read`, the graph left as bytes (:class:`RawHit`): every read of the cache
        goes through here."""
        try:
            data = safe_read.read_regular(self.directory / f"{key}.entry", MAX_ENTRY_BYTES)
        except (OSError, safe_read.ReadBackError):
            return None
        return _raw(data, key, self.secret)

    def write(self, key: str, hit: Hit) -> None:
        """Store ``hit`` atomically; failures are ignored (a cache is never required)."""
        body = _body(hit)
        sealed_body = sealed.seal(self.secret, key, CACHE_FORMAT, body)
        try:
            with termination_held():  # a stopped plan child leaves no temporary file (git shows it)
                ensure_state_dir(self.directory)
                sealed.write_atomically(self.directory, f"{key}.entry", sealed_body)
            _prune(self.directory)
        except OSError:
            return


def fits(hit: Hit) -> bool:
    """Whether the entry of ``hit`` stays within :data:`MAX_ENTRY_BYTES` (a larger one would be
    written and never read back); the header takes well under 256 bytes."""
    return len(_body(hit)) + 256 <= MAX_ENTRY_BYTES


def entry_key(
    environment: str, target: str, files: Mapping[str, tuple[str, str]], target_module: str
) -> str:
    """The key of a lowering: ``files`` maps each spec file's name relative to the spec
    directory to (its name as diagnostics show it, its text)."""
    digest = hashlib.sha256()
    head = [CACHE_FORMAT, __version__, sys.version, sealed.code_fingerprint(target_module)]
    digest.update(json.dumps([*head, environment, target], ensure_ascii=True).encode("ascii"))
    for relative in sorted(files):
        shown, text = files[relative]
        for part in (relative, shown, text):
            data = part.encode("utf-8")
            digest.update(f"\0{len(data)}\0".encode("ascii"))
            digest.update(data)
    return digest.hexdigest()


def _body(hit: Hit) -> bytes:
    """Three parts: the diagnostics (one JSON line), the graph (compact canonical JSON, ASCII,
    so one line) and, after a newline when present, the payload's bytes to the end."""
    problems = json.dumps([diagnostic_json(d) for d in hit.diagnostics], ensure_ascii=True)
    body = problems.encode("ascii") + b"\n" + hit.graph_text.encode("ascii")
    return body + b"\n" + hit.payload if hit.payload else body


def _parsed(data: bytes, key: str, secret: bytes) -> Hit | None:
    """The parts of an entry (:func:`_raw`), the graph's text decoded."""
    raw = _raw(data, key, secret)
    return None if raw is None else _decoded(raw)


def _decoded(raw: RawHit) -> Hit | None:
    try:
        return Hit(str(raw.graph, "ascii"), raw.diagnostics, raw.payload)
    except ValueError:
        return None


def _raw(data: bytes, key: str, secret: bytes) -> RawHit | None:
    """The parts of an entry (header line, then :func:`_body`), cut by their newlines without
    copying the body (tens of megabytes) more than once: the graph's bytes (a view of
    ``data``) and the payload."""
    if sealed.unseal(data, key, CACHE_FORMAT, secret) is None:
        return None
    header_end = data.find(b"\n")
    try:
        problems_end = _line_end(data, header_end + 1)
        graph_end = _line_end(data, problems_end + 1)
        problems = tuple(
            diagnostic_of(item) for item in json.loads(data[header_end + 1 : problems_end])
        )
        graph = memoryview(data)[problems_end + 1 : graph_end]
        return RawHit(graph, problems, data[graph_end + 1 :])
    except (ValueError, TypeError, KeyError):
        return None


def _line_end(data: bytes, start: int) -> int:
    """Where the line from ``start`` ends: its newline, else the end of ``data``."""
    found = data.find(b"\n", start)
    return len(data) if found < 0 else found


def _prune(directory: Path) -> None:
    """Keep the :data:`MAX_ENTRIES` newest entries (by modification time, then name)."""
    entries = sorted(directory.glob("*.entry"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    for old in entries[:-MAX_ENTRIES]:
        old.unlink(missing_ok=True)
