"""What mlplane's caches share to keep entries that a repository cannot forge nor poison: the
HMAC secret kept outside any repository, the MAC of an entry, atomic writes into a cache's own
directory, the check that a cache's directories are no links, and the fingerprint of the code
that an entry's key names.

Both caches use these: the plan cache (``compiler/plan/cache.py``, inside the repository under
``.mlplane/cache/plan/``, whose contents are untrusted) and the build cache
(``compiler/build/cache.py``, under the user's cache home).

* The secret: 32 random bytes, hex, in ``$XDG_CACHE_HOME/mlplane/plan-cache.key`` (else under
  ``~/.cache``), created on first use with mode 0600 and never replaced once another process
  wrote it; one that is not a private regular file, or is malformed, means no secret (and so no
  cache), as does a cache home that is not an absolute path.
* The fingerprint: a SHA-256 over the source of mlplane's lowering packages, of its policies
  and of every installed target and policy pack (found through their entry points, without
  importing them), the list of those plug-ins, and the versions of the libraries that shape a
  lowering (:data:`DEPENDENCIES` and each installed target's declared ``libraries``): an
  editable install keeps its version while its code changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.metadata
import importlib.util
import json
import os
import secrets
import tempfile
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from mlplane.compiler.core import plugins, safe_read

KEY_FILE = "plan-cache.key"
"""The secret's file under ``<cache home>/mlplane/`` (named for the cache that first used it)."""
MLPLANE_PACKAGES = ("mlplane", "mlplane.schema", "mlplane.compiler", "mlplane.targets")
"""What a lowering runs (policies judge the system model, they do not change the graph)."""
DEPENDENCIES = ("pydantic", "pydantic-core", "PyYAML", "promql-parser")
"""Libraries whose behaviour reaches the system model or the graph of every target: their
versions are fingerprinted (an absent one as ``absent``), with those each installed target
declares as its ``libraries`` (``plugins.libraries``: a target's own SDKs, which only it knows)."""


def cache_home() -> Path | None:
    """``$XDG_CACHE_HOME``, else ``~/.cache``; None when neither is set or it is not absolute."""
    base = os.environ.get("XDG_CACHE_HOME") or (
        str(Path.home() / ".cache") if "HOME" in os.environ else ""
    )
    return Path(base) if base and Path(base).is_absolute() else None


def secret() -> bytes | None:
    """The HMAC secret, created on first use; None when there is nowhere safe to keep it."""
    base = cache_home()
    if base is None:
        return None
    path = base / "mlplane" / KEY_FILE
    try:
        return _read_secret(path) or _create_secret(path)
    except OSError:
        return None


def _read_secret(path: Path) -> bytes | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not path.is_file() or path.is_symlink() or info.st_mode & 0o077:
        raise OSError("the cache key is not a private regular file")
    text = path.read_text(encoding="ascii").strip()
    if len(text) != 64:
        raise OSError("the cache key is malformed")
    return bytes.fromhex(text)


def _create_secret(path: Path) -> bytes:
    """Write a new secret without ever replacing one another process wrote first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    found = _read_secret(path)
    if found is None:
        raise OSError("the cache key vanished")
    return found


def mac(secret: bytes, key: str, body: bytes | memoryview) -> str:
    """HMAC-SHA256 (hex) of ``key``, a newline and ``body`` under ``secret`` (fed in two parts:
    an entry's body is tens of megabytes, not copied to be joined)."""
    found = hmac.new(secret, key.encode("ascii") + b"\n", hashlib.sha256)
    found.update(body)
    return found.hexdigest()


def seal(secret: bytes, key: str, version: int, body: bytes) -> bytes:
    """A cache file: one JSON line naming its format ``version``, ``key`` and the :func:`mac`
    of ``key`` and ``body``, then ``body``."""
    header = json.dumps({"format": version, "key": key, "hmac": mac(secret, key, body)})
    return header.encode("ascii") + b"\n" + body


def unseal(data: bytes, key: str, version: int, secret: bytes) -> memoryview | None:
    """The body of a file :func:`seal` wrote (a view of ``data``, not copied) when its header
    names ``key`` and ``version`` and its HMAC checks out; else None (damaged, planted, of
    another format or key), never an error."""
    header_end = data.find(b"\n")
    if header_end < 0:
        return None
    body = memoryview(data)[header_end + 1 :]
    try:
        header = json.loads(data[:header_end])
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return None
    if not isinstance(header, dict) or header.get("key") != key:
        return None
    found = header.get("hmac")
    if header.get("format") != version or not isinstance(found, str):
        return None
    return body if hmac.compare_digest(found, mac(secret, key, body)) else None


def real_directories(root: Path, relative: Path) -> bool:
    """Whether every existing component of ``relative`` under ``root`` is a real directory (no
    symbolic link, nothing else): a cache with a link in its directories is not used."""
    probe = root
    for part in relative.parts:
        probe = probe / part
        if probe.is_symlink() or (probe.exists() and not probe.is_dir()):
            return False
    return True


def write_atomically(directory: Path, name: str, data: bytes) -> None:
    """Write ``data`` as ``directory/name`` through a temporary file renamed into place (a
    reader never sees half a file); ``directory`` is created private (0700) when missing.
    Raises ``OSError`` as the disk does; the temporary file is removed on any failure."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_sealed(path: Path, key: str, version: int, secret: bytes, limit: int) -> memoryview | None:
    """The body of the sealed file ``path`` when it is a regular file of at most ``limit`` bytes
    (``safe_read.read_regular``) that :func:`unseal` accepts under ``key``; else None."""
    try:
        data = safe_read.read_regular(path, limit)
    except (OSError, safe_read.ReadBackError):
        return None
    return unseal(data, key, version, secret)


def write_sealed(
    directory: Path, name: str, key: str, version: int, secret: bytes, body: bytes, limit: int
) -> bool:
    """Seal ``body`` under ``key`` and write it as ``directory/name`` atomically, unless the
    sealed file would exceed ``limit`` bytes (it would never be read back); whether it was."""
    data = seal(secret, key, version, body)
    if len(data) > limit:
        return False
    try:
        write_atomically(directory, name, data)
    except OSError:
        return False
    return True


@cache
def plugins_fingerprint() -> str:
    """SHA-256 over every installed target and policy pack (their entry points) and
    :func:`code_fingerprint` of mlplane with its policies and of each plug-in's top-level
    package: what compiling, lowering and judging a spec run, whichever target it names."""
    digest = hashlib.sha256()
    modules = {"mlplane.policies"}
    for group in (plugins.TARGET_GROUP, plugins.POLICY_GROUP):
        for entry in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
            digest.update(f"{group}\0{entry.name}\0{entry.value}\0".encode())
            modules.add(entry.value.partition(":")[0])
    for module in sorted(modules):
        digest.update(f"{module}\0{code_fingerprint(module)}\0".encode())
    return digest.hexdigest()


@cache
def plugin_packages() -> frozenset[str]:
    """The top-level packages of the installed targets and policy packs (once per process)."""
    return frozenset(
        entry.value.partition(":")[0].split(".", maxsplit=1)[0]
        for group in (plugins.TARGET_GROUP, plugins.POLICY_GROUP)
        for entry in entry_points(group=group)
    )


@cache
def code_fingerprint(target_module: str) -> str:
    """SHA-256 over the versions of :data:`DEPENDENCIES` and of the installed targets'
    ``libraries``, and the source of mlplane's lowering packages and of the target's top-level
    package (relative file names and bytes, sorted). Computed once per process: some 150
    files, a few milliseconds."""
    top = target_module.split(".", maxsplit=1)[0]
    packages = MLPLANE_PACKAGES if top == "mlplane" else (*MLPLANE_PACKAGES, top)
    if target_module == "mlplane.policies":
        packages = (*MLPLANE_PACKAGES, target_module)
    digest = hashlib.sha256()
    for dependency in (*DEPENDENCIES, *plugins.libraries()):
        digest.update(f"{dependency}\0{_version_of(dependency)}\0".encode())
    for package in packages:
        digest.update(f"{package}\0".encode())
        for name, data in _package_sources(package):
            digest.update(f"{package}\0{name}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _package_sources(package: str) -> list[tuple[str, bytes]]:
    """(relative name, bytes) of the ``.py`` files directly in or below ``package``, found
    without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return []
    roots = [Path(p) for p in spec.submodule_search_locations or ()]
    if not roots and spec.origin:
        return [(Path(spec.origin).name, Path(spec.origin).read_bytes())]
    found: list[tuple[str, bytes]] = []
    for root in roots:
        pattern = "*.py" if package == "mlplane" else "**/*.py"
        for path in sorted(root.glob(pattern)):
            found.append((path.relative_to(root).as_posix(), path.read_bytes()))
    return found
