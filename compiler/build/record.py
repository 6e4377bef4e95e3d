"""Build records: a build that would change nothing is not done again.

``mlplane build`` and ``mlplane build --check`` compile, lower and emit every environment they
are asked for, even when nothing changed since the last build: on the 1,000-model benchmark spec
some 4.5 s for three environments, to write nothing. A *record* of each successful build lets the
next one see that nothing it reads changed and that each output still holds exactly what it
wrote, and stop there, with the same report and exit status.

A record belongs to one invocation: the command, the working directory, the spec path as
given, the environments asked for (or all), whether the policies run and the ``--policy``
directories. It holds:

* what the build read: each spec file's name as diagnostics show it and the SHA-256 of its bytes,
  and the spec directory; each organisation policy file (``policies.rego``) the policy stage
  read, the file it resolves to and the SHA-256 of the text it read;
* what else the result depends on: mlplane's version, the Python version,
  ``sealed.plugins_fingerprint()`` (the source of mlplane and of every installed plug-in, and the
  versions of the libraries that shape a lowering), regopy's version (it evaluates the policy
  files), the date waivers were judged by and the reading limits;
* what the build gave: its diagnostics and waived findings, and per environment its output
  directory and the SHA-256 of every file of its output (``manifest.json`` lists the others'
  digests; its own is taken from its bytes).

A build with records (:func:`find`) reads its spec files as the loader does (the same size and
file-kind checks) and, when a record matches all of the above, takes each output's lock and
refuses an unusable destination as a build does, then hashes every file below each output
directory: when each holds exactly the recorded files with the recorded digests (no file
missing, extra, changed or special), that is the build's result. Anything else (a changed byte
in a spec or policy file, a hand-edited, missing or extra output file, another day, another
version of mlplane or of a plug-in) means the build runs in full, as without records, and
records its result when it succeeded: compiled without errors and, with ``--check``, found
every output current. A build records only what it read: when a spec file's text changed
while it compiled, nothing is recorded.

``mlplane validate`` keeps records the same way (:func:`validated`), of every run that found
no error, with each environment's counts (its summary line) instead of outputs,
and the listing of its ``--policy`` directories (a file added there is a change): a replay
gives the recorded diagnostics, which the command renders in the format asked.

Safety, as the build cache (``compiler/build/cache.py``): records live under
``$XDG_CACHE_HOME/mlplane/build-records/`` (else ``~/.cache``), never in a repository nor in an
output directory, each sealed with an HMAC-SHA256 of its key and contents under the caches'
secret (``compiler/core/sealed.py``); one that fails the check, is too large, is not a regular
file or does not parse is ignored; they are written atomically; a symbolic link in the
directories turns them off, and so does ``MLPLANE_NO_CACHE``. Any problem means no record,
never an error. The :data:`MAX_RECORDS` most recently written are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from mlplane import __version__
from mlplane.compiler.build.cache import private_directory
from mlplane.compiler.build.pipeline import CompileResult, compile_spec, no_cyclic_gc
from mlplane.compiler.core import safe_read, sealed
from mlplane.compiler.core.diagnostics import (
    Diagnostic,
    Diagnostics,
    Severity,
    code_info,
    diagnostic_json,
    diagnostic_of,
    register_code,
)
from mlplane.compiler.core.source import DEFAULT_LIMITS, Limits
from mlplane.compiler.frontend.document import discover, display_name
from mlplane.compiler.frontend.loader import read_spec_file, spec_text
from mlplane.compiler.policy.rego import policy_dir_files

RECORD_FORMAT = 1
MAX_RECORD_BYTES = 16 * 2**20
"""A record read back at most (three environments of the 1,000-model benchmark spec: about
0.3 MB)."""
MAX_RECORDS = 64
SUFFIX = ".record"
_RELATIVE_DIR = Path("mlplane") / "build-records"


@dataclass(frozen=True)
class Call:
    """What identifies a build (or a validate): where it runs, what it reads, how."""

    target: Path
    environments: tuple[str, ...] | None
    policies: bool
    today: date | None
    limits: Limits
    command: str = "build"
    policy_dirs: tuple[Path, ...] = ()
    """``mlplane validate --policy``: directories whose ``*.rego`` files the policies read."""

    def identity(self) -> str:
        """The record's name: the same for ``build`` and ``build --check`` of the same thing."""
        dirs = [str(directory) for directory in self.policy_dirs]
        where = [
            self.command,
            str(Path.cwd().absolute()),
            str(self.target),
            self.environments,
            self.policies,
            dirs,
        ]
        return hashlib.sha256(json.dumps(where, ensure_ascii=True).encode("ascii")).hexdigest()

    def listing(self) -> list[str]:
        """The files below :attr:`policy_dirs` (a file added there is a change)."""
        return [str(path) for path in policy_dir_files(self.policy_dirs)]

    def context(self) -> list[Any]:
        """Everything besides the files read that the build's result depends on."""
        code = [__version__, sys.version, sealed.plugins_fingerprint(), _version("regopy")]
        today = None if self.today is None else self.today.isoformat()
        return [RECORD_FORMAT, code, today, list(astuple(self.limits))]


@dataclass(frozen=True)
class SpecRead:
    """The spec files as a build reads them: names as diagnostics show them, and bytes."""

    names: tuple[str, ...]
    data: tuple[bytes, ...]
    root: Path

    @property
    def digest(self) -> str:
        digest = hashlib.sha256(str(self.root).encode("utf-8", "surrogateescape"))
        for name, data in zip(self.names, self.data, strict=True):
            for part in (name.encode("utf-8", "surrogateescape"), data):
                digest.update(f"\0{len(part)}\0".encode("ascii"))
                digest.update(part)
        return digest.hexdigest()

    def sources(self) -> dict[str, str] | None:
        """Name -> text, as the compile's ``sources``; None when one does not decode."""
        texts: dict[str, str] = {}
        for name, data in zip(self.names, self.data, strict=True):
            text = spec_text(data)
            if text is None:
                return None
            texts[name] = text
        return texts


@dataclass(frozen=True)
class Output:
    """One environment's output as recorded: its directory and each file's SHA-256."""

    environment: str
    out_dir: str
    digests: Mapping[str, str]


@dataclass(frozen=True)
class Counts:
    """What ``mlplane validate`` says of one environment that compiled."""

    environment: str
    production: bool
    system: str
    models: int
    data_sources: int
    slas: int


def counts_of(compiled: CompileResult) -> tuple[Counts, ...]:
    """The counts of each environment's system model, in name order."""
    return tuple(
        Counts(
            name,
            system.environment.production,
            system.name,
            len(system.models),
            len(system.data_sources),
            len(system.slas),
        )
        for name, system in sorted(compiled.systems.items())
    )


@dataclass(frozen=True)
class Recorded:
    """A record that matched what the build would read."""

    diagnostics: tuple[Diagnostic, ...]
    waived: tuple[Diagnostic, ...]
    outputs: tuple[Output, ...]
    counts: tuple[Counts, ...] = ()

    def compiled(self, sources: dict[str, str]) -> CompileResult:
        """The recorded compile's result: its diagnostics, waived findings and the spec's
        texts (no document nor system models)."""
        compiled = CompileResult(Diagnostics(), sources)
        compiled.diagnostics.extend(self.diagnostics)
        compiled.waived.extend(self.waived)
        return compiled


def read_spec(target: Path, limits: Limits) -> SpecRead | None:
    """The spec files of ``target``, read as ``load_spec`` reads them; None on any problem
    (the build then reports it)."""
    problems = Diagnostics()
    paths = discover(target, problems, limits)
    if problems.items or not paths:
        return None
    names: list[str] = []
    data: list[bytes] = []
    for path in paths:
        name = display_name(path)
        found, errors = read_spec_file(path, name, limits)
        if found is None or errors or len(found) > limits.max_file_bytes:
            return None
        names.append(name)
        data.append(found)
    if sum(map(len, data)) > limits.max_total_bytes:
        return None
    root = target.resolve() if target.is_dir() else target.resolve().parent
    return SpecRead(tuple(names), tuple(data), root)


@dataclass(frozen=True)
class Records:
    directory: Path
    secret: bytes

    @classmethod
    def open(cls) -> Records | None:
        """The user's build records; None when turned off or unusable."""
        found = private_directory(_RELATIVE_DIR)
        return None if found is None else cls(*found)

    def find(self, call: Call, spec: SpecRead) -> Recorded | None:
        """The record of ``call`` when everything it read is as it was; None otherwise."""
        name = call.identity()
        path = self.directory / f"{name}{SUFFIX}"
        body = sealed.read_sealed(path, _key(name), RECORD_FORMAT, self.secret, MAX_RECORD_BYTES)
        if body is None:
            return None
        try:
            return _matched(json.loads(bytes(body)), call, spec)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def store(
        self,
        call: Call,
        spec: SpecRead,
        compiled: CompileResult,
        outputs: Sequence[Output] = (),
        counts: Sequence[Counts] = (),
    ) -> None:
        """Record a build (``outputs``) or a validate (``counts``) of ``call`` that read
        ``spec``; nothing when the compile read other texts than ``spec`` holds (a file
        changed meanwhile) or a policy file is no longer what it read. Failures are ignored."""
        if spec.sources() != dict(compiled.sources):
            return
        reads = _policy_reads(compiled.policy_files)
        if reads is None:
            return
        found = (*compiled.diagnostics.sorted(), *compiled.waived.sorted())
        infos = [code_info(code) for code in sorted({d.code for d in found})]
        document = {
            "context": call.context(),
            "spec": spec.digest,
            "policies": reads,
            "codes": [[i.code, i.summary, str(i.severity), i.sensitive] for i in infos],
            "diagnostics": [diagnostic_json(d) for d in compiled.diagnostics.sorted()],
            "waived": [diagnostic_json(d) for d in compiled.waived.sorted()],
            "outputs": [
                {"environment": o.environment, "out": o.out_dir, "files": dict(o.digests)}
                for o in outputs
            ],
            "counts": [astuple(environment) for environment in counts],
            "listing": call.listing(),
        }
        body = json.dumps(document, ensure_ascii=True, sort_keys=True).encode("ascii")
        name = call.identity()
        file = f"{name}{SUFFIX}"
        key, secret = _key(name), self.secret
        if sealed.write_sealed(
            self.directory, file, key, RECORD_FORMAT, secret, body, MAX_RECORD_BYTES
        ):
            _prune(self.directory)


def validated(
    target: Path,
    environments: Sequence[str] | None,
    today: date | None,
    policy_dirs: Sequence[Path],
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[CompileResult, tuple[Counts, ...]]:
    """``compile_spec`` as ``mlplane validate`` runs it (policies, the organisation's policy
    files below ``policy_dirs`` and the target checks), with the counts of each environment;
    or, when the last validate of the same thing read the same files and found no error, its
    diagnostics again (the result then holds no document nor system models). A run with
    errors is not recorded: some depend on the machine (a policy stopped by its CPU limit, an
    SDK not installed), and a spec with errors is about to change anyway. Raises what
    ``compile_spec`` raises."""
    names = None if environments is None else tuple(environments)
    call = Call(target, names, True, today, limits, "validate", tuple(policy_dirs))
    book = Records.open()
    spec = read_spec(target, limits) if book is not None else None
    if book is not None and spec is not None:
        with no_cyclic_gc():
            found = book.find(call, spec)
            sources = spec.sources()
            if found is not None and sources is not None:
                return found.compiled(sources), found.counts
    compiled = compile_spec(
        target,
        environments,
        limits,
        policies=True,
        today=today,
        policy_dirs=policy_dirs,
        check_targets=True,
    )
    counts = counts_of(compiled)
    if book is not None and spec is not None and compiled.ok:
        book.store(call, spec, compiled, counts=counts)
    return compiled, counts


def _key(name: str) -> str:
    return f"build record/{name}"


def _matched(document: dict[str, Any], call: Call, spec: SpecRead) -> Recorded | None:
    if document["context"] != call.context() or document["spec"] != spec.digest:
        return None
    if document["listing"] != call.listing():
        return None
    for item in document["policies"]:
        opened, resolved, digest = (str(part) for part in item)
        if _policy_digest(Path(opened), resolved) != digest:
            return None
    if call.policies:
        from mlplane.compiler.policy.engine import installed_rules

        installed_rules()  # registers the policy rules' codes, as the policy stage would
    for code, summary, severity, sensitive in document["codes"]:
        if not _known_code(str(code), str(summary), Severity(severity), sensitive is True):
            return None
    outputs = tuple(
        Output(
            str(item["environment"]),
            str(item["out"]),
            {str(path): str(digest) for path, digest in dict(item["files"]).items()},
        )
        for item in document["outputs"]
    )
    counts = tuple(_counts(item) for item in document["counts"])
    return Recorded(
        tuple(diagnostic_of(item) for item in document["diagnostics"]),
        tuple(diagnostic_of(item) for item in document["waived"]),
        outputs,
        counts,
    )


def _counts(item: Sequence[Any]) -> Counts:
    environment, production, system, models, sources, slas = item
    numbers = (models, sources, slas)
    if type(production) is not bool or not all(type(n) is int for n in numbers):
        raise TypeError("malformed counts")
    return Counts(str(environment), production, str(system), models, sources, slas)


def _known_code(code: str, summary: str, severity: Severity, sensitive: bool) -> bool:
    """Whether ``code`` is registered as the record has it, registering it when it is not (an
    organisation policy's code is registered when its file is loaded, which a replayed build
    does not do); False when it is registered otherwise."""
    try:
        info = code_info(code)
    except KeyError:
        register_code(code, summary, severity, sensitive=sensitive)
        return True
    return (info.summary, info.severity, info.sensitive) == (summary, severity, sensitive)


def _policy_reads(files: Mapping[Path, str]) -> list[list[str]] | None:
    """[as opened, resolved, SHA-256 of the text] of each policy file, sorted; None when one
    no longer holds the text the build read."""
    reads: list[list[str]] = []
    for path, text in sorted(files.items()):
        try:
            resolved = str(path.resolve(strict=True))
        except (OSError, RuntimeError):
            return None
        digest = _text_digest(text)
        if _policy_digest(path, resolved) != digest:
            return None
        reads.append([str(path), resolved, digest])
    return reads


def _policy_digest(path: Path, resolved: str) -> str | None:
    """The SHA-256 of the text of the policy file ``path`` when it still resolves to
    ``resolved`` and is a regular file that decodes; None otherwise."""
    try:
        if str(path.resolve(strict=True)) != resolved or not path.is_file():
            return None
        return _text_digest(path.read_text(encoding="utf-8"))
    except (OSError, RuntimeError, UnicodeDecodeError):
        return None


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def output_digests(files: Mapping[str, bytes], manifest: str) -> dict[str, str] | None:
    """Every file's SHA-256 by path: those ``manifest`` (``manifest.json``, as ``files`` hold
    it) lists, and its own; None when it does not list exactly the other files."""
    data = files.get(manifest)
    if data is None:
        return None
    try:
        listed = {str(e["path"]): str(e["sha256"]) for e in json.loads(data)["files"]}
    except (ValueError, TypeError, KeyError):
        return None
    if set(listed) != set(files) - {manifest}:
        return None
    return {**listed, manifest: hashlib.sha256(data).hexdigest()}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def _prune(directory: Path) -> None:
    """Keep the :data:`MAX_RECORDS` most recently written records."""
    records: list[tuple[int, str]] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
                records.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
    records.sort(reverse=True)
    for _, name in records[MAX_RECORDS:]:
        with contextlib.suppress(OSError):
            (directory / name).unlink()
