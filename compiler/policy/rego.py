"""Organisation policies in Rego: the input document they read and the results they return.

Rego files come from ``policies: {rego: [path ...]}`` in the spec (relative to the spec
directory, which they may not leave) and from ``mlplane validate --policy DIR`` (every ``*.rego``
below DIR). They are evaluated with ``regopy`` (rego-cpp), once per environment, against
``to_policy_input(system)``, in a sandbox (a pull request's spec brings its own Rego files):

- **Forbidden built-ins, refused before anything runs.** Every reference of a module is read
  with a small Rego lexer (comments and string literals are single tokens, so they can neither
  hide nor fake a call; ``opa.runtime``, ``opa . runtime`` and ``opa["runtime"]`` all read
  ``opa.runtime``). A reference to a name of ``_FORBIDDEN`` (environment, network, randomness,
  the clock, ``trace``; every built-in OPA marks nondeterministic) is a ``rego-forbidden-builtin``
  error at its ``file:line:col``, and no module of the pack is evaluated.
- **The clock is the date of waivers.** Every query runs ``with time.now_ns as`` 00:00 UTC of
  ``today`` (``--today``, else the date the CLI judges waivers by); with ``today=None``,
  ``time.now_ns`` is forbidden as well.
- **A separate process** (``rego_worker``, started with ``python -I`` and an empty environment,
  which it also clears for C code): regopy is loaded only there. After loading it the worker
  closes every descriptor but its pipes and a private capture file and sets ``RLIMIT_NOFILE``
  so that no file or socket can be opened; ``RLIMIT_DATA`` allows ``MEMORY_BYTES`` beyond the
  allocator's reservation (``RLIMIT_AS`` cannot be used: snmalloc reserves 256 GiB up front).
- **Time limits per query** (one module, one environment): ``CPU_SECONDS`` of CPU time
  (``RLIMIT_CPU``, raised before each query) and ``WALL_SECONDS`` of wall clock as a backstop
  (the parent kills the worker). A query stopped by a limit is a ``rego-timeout`` error, a crash
  of rego-cpp (it segfaults on some hostile input) or an exhausted memory limit a ``rego-error``,
  both at the module's ``package`` line; that module is not asked again, the others go on in a
  new worker.
- **print() is captured**: rego-cpp writes it to file descriptor 1, which in the worker is a
  private file; each query's output (at most 4 KiB) comes back as data and is shown as one
  ``rego-print`` note at the module's first ``print`` call, escaped like a JSON string (no
  control character or line break reaches any output format).
- Answers that are not JSON (rego-cpp reports some evaluation errors that way) and evaluation
  errors are ``rego-error`` diagnostics, located in the module when rego-cpp names a position.

Input (``input``), version 1: the system model of ``compiler/core/ir.py`` as JSON, every field
under its IR name in camelCase, without the ``origin`` bookkeeping. Mappings are sorted by name
and lists keep spec order; durations are seconds, CPU millicores, memory bytes; absent values
are ``null``. ``tests/test_policies_rego.py`` pins the shape, so that renaming an IR field
cannot silently change what organisation policies read (bump ``INPUT_VERSION`` then)::

    {"version": 1, "name", "owner", "description", "labels": {...},
     "environment": {"name", "target", "production", "residency", "namespace",
                     "kubeContext", "awsRegion", "awsAccountId", "awsVpc": {"subnetIds",
                     "securityGroupIds"} | null, "awsDeployRoleArn", "state"},
     "dataSources": {NAME: {"name", "type", "uri", "classification", "residency",
                            "retentionSeconds", "encryption", "freshnessSeconds", "derivedFrom",
                            "upstream", "owner", "description", "managed"}},
     "models": {NAME: {"name", "framework", "version", "image": {"text", "registry",
                       "repository", "tag", "digest"}, "artifact", "runtime", "inputs",
                       "upstream", "secrets", "serving": {"replicasMin", "replicasMax",
                       "autoscalingMetric", "autoscalingTarget", "resources": {"cpuMillis",
                       "memoryBytes", "gpu", "cpu", "memory"}, "rollout": {"strategy", "steps",
                       "pauseSeconds"}, "exposure", "port", "healthPath", "metricsPath",
                       "instanceType", "dataCapture": {"destination", "samplingPercentage"} |
                       null},
                       "explainabilityRequired", "explainabilityMethod", "drift": {"method",
                       "threshold", "features", "windowSeconds"} | null, "training":
                       {"schedule", "image", "resources", "timeoutSeconds"} | null, "owner",
                       "description"}},
     "security": {"encryptionAtRest", "encryptionInTransit", "defaultDeny", "allow": [{"source",
                  "destination", "ports"}], "allowedRegistries", "requireDigest", "access":
                  [{"principal", "actions", "resources"}], "secrets": {NAME: {"name", "ref",
                  "scheme"}}},
     "slas": {NAME: {"name", "objective", "windowSeconds", "subjectKind", "subject",
                     "indicator": {"kind", "latencyThresholdSeconds", "maxAgeSeconds",
                     "driftThreshold", "ratioErrors", "ratioTotal"}, "owner", "description"}},
     "alerting": {...}, "waivers": [...], "policies": {"severities", "rego", "params"}}

``upstream`` is the transitive lineage (a model's includes its inputs). ``policies.params``
maps each rule id to the ``policies.rules.<id>.params`` the spec gives it, as written (numbers,
strings, lists and mappings; a duration is its text, ``"30d"``); a Rego policy's own are under
its id (``input.policies.params["rego.max-replicas"]``), accepted unchecked because a module
declares no schema, so a module reads each value with a default (``object.get``) and a spec
tunes an organisation policy's thresholds as it tunes the built-in rules'. Result contract: a
module's package must be ``mlplane.<anything>``; its ``deny`` (errors) and ``warn`` (warnings)
are sets of ``{"msg": string, "path": string | array}``. ``path`` is a spec path of the
effective spec, written ``models.scorer.serving`` or ``["models", "scorer", "serving"]``; the
finding is located at that line (or the package line of the policy when the path does not
exist). The findings' code, the policy id that ``policies.rules`` and waivers name, is
``rego.<last package segment>`` with ``_`` written ``-`` (``package mlplane.acme.no_public_pii``
-> ``rego.no-public-pii``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mlplane.compiler.core import codes, ir, plugins
from mlplane.compiler.core.diagnostics import (
    Diagnostic,
    Diagnostics,
    Location,
    Severity,
    SpecPath,
    register_code,
)
from mlplane.compiler.frontend.document import display_name
from mlplane.compiler.policy.engine import ExternalFindings, Finding, Raised

INPUT_VERSION = 1
REGO_SUMMARY = "an organisation policy written in Rego"
_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([A-Za-z_][A-Za-z0-9_.]*)", re.MULTILINE)
_ERROR = re.compile(
    r"\(error \d+:(?P<module>m\d+)\|(?P<offset>\d+)\|\d+\s*\(errormsg \d+:(?P<msg>[^\n]*)\)"
)
_ERROR_MESSAGE = re.compile(r"\(errormsg \d+:([^\n]*)\)")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
Json = dict[str, Any]
_HIDDEN = frozenset({"origin", "origins"})
_CONTRACT = "see the result contract in compiler/policy/rego.py (deny/warn sets of {msg, path})"


def regopy_problem() -> str | None:
    """Why Rego policies cannot be evaluated here, or None. rego-cpp's allocator (snmalloc)
    reserves a very large address space when the library loads and aborts the process,
    uncatchably, under an address-space limit (``RLIMIT_AS``; it failed here with 256 GiB and
    worked with 1 TiB): the sandbox inherits the limit, so a limited process gets a diagnostic
    instead. Nothing is imported here: regopy loads only in the sandbox process."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, AttributeError, OSError):  # pragma: no cover - not a POSIX system
        return "Rego evaluation needs a POSIX system (its sandbox uses resource limits)"
    if limit != resource.RLIM_INFINITY and limit < 2**40:
        return "Rego evaluation (regopy) cannot run under an address-space limit (ulimit -v)"
    if importlib.util.find_spec("regopy") is None:  # pragma: no cover - wheel missing
        return "the regopy package is not installed (pip install regopy)"
    if not sys.executable:  # pragma: no cover - embedded interpreters
        return "Rego evaluation needs a Python executable to start its sandbox process"
    return None


def to_policy_input(system: ir.System) -> Json:
    """The resolved model of one environment as plain JSON data (see the module docstring)."""
    shown = _json(system)
    assert isinstance(shown, dict)
    return {"version": INPUT_VERSION, **shown}


def _json(value: Any) -> Any:
    """Dataclasses become objects with camelCase keys (without origins), mappings objects,
    tuples arrays; scalars stay. Recursion only follows the IR's few levels of nesting."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    if isinstance(value, ir.Environment):
        return _environment(value)
    return {key: _json(getattr(value, name)) for name, key in _fields(type(value))}


def _environment(env: ir.Environment) -> Json:
    """The environment with its target's opaque settings in its place, flattened: every
    installed target's settings appear under their own keys (``kubeContext``, ``awsRegion``,
    ...), null in an environment of another target, as in version 1 of the input."""
    shown: dict[str, Any] = {}
    for name, key in _fields(ir.Environment):
        if name != "target_settings":
            shown[key] = _json(getattr(env, name))
            continue
        for target in plugins.ordered_targets():
            unset = target.unset_settings
            own = env.target_settings if isinstance(env.target_settings, type(unset)) else unset
            shown.update((k, _json(getattr(own, n))) for n, k in _fields(type(unset)))
    return shown


def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, camelCase key) of a dataclass, origins left out; computed once per class."""
    known = _FIELDS.get(cls)
    if known is None:
        assert is_dataclass(cls), cls
        known = tuple((f.name, _camel(f.name)) for f in fields(cls) if f.name not in _HIDDEN)
        _FIELDS[cls] = known
    return known


_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# --- evaluating Rego --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Module:
    """One loaded .rego file."""

    key: str
    """The name the interpreter knows it by (``m0``, ``m1`` ...), never a path."""
    file: str
    text: str
    package: str
    policy_id: str
    package_location: Location


def policy_id(package: str) -> str:
    """``mlplane.acme.no_public_pii`` -> ``rego.no-public-pii``."""
    last = package.rsplit(".", 1)[-1].lower().replace("_", "-")
    return "rego." + re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "", last)).strip("-")


def rego_files(
    system: ir.System, root: Path | None, dirs: Sequence[Path], diagnostics: Diagnostics
) -> list[Path]:
    """The .rego files to load: the spec's own (which must exist inside the spec directory,
    symlinks included; a problem is reported at its ``policies.rego`` entry), then those below
    the ``--policy`` directories (or files), sorted."""
    found: list[Path] = []
    base = root or Path(".")
    for index, relative in enumerate(system.policies.rego):
        problem = _path_problem(base / relative, base)
        if problem is None:
            found.append(base / relative)
            continue
        path = ("policies", "rego", index)
        diagnostics.error(codes.REGO_ERROR, problem, system.locate(path), path)
    return found + policy_dir_files(dirs)


def policy_dir_files(dirs: Sequence[Path]) -> list[Path]:
    """The .rego files below the ``--policy`` directories (a file given as one is itself), each
    directory's sorted, in the order of ``dirs``."""
    found: list[Path] = []
    for directory in dirs:
        found += [directory] if directory.is_file() else sorted(directory.rglob("*.rego"))
    return found


# --- the sandbox ---------------------------------------------------------------------------------

CPU_SECONDS = 10
"""CPU time one query (one module, one environment) may use before the kernel stops it."""
WALL_SECONDS = 120.0
"""Wall-clock backstop per query (generous: CPU time is the measure, the machine may be busy)."""
MEMORY_BYTES = 2 << 30
"""Memory the sandbox may allocate beyond what it holds after loading rego-cpp."""
REPLY_BYTES = 256 << 20
"""Largest reply read from the sandbox (a policy returning a gigantic result is an error)."""
PRINTED_CHARACTERS = 500
"""Characters of one query's ``print`` output shown in its note (escaped)."""

_FORBIDDEN: dict[str, str] = {
    "opa.runtime": "it reads mlplane's environment variables and configuration",
    "http.send": "it reaches the network",
    "net.lookup_ip_addr": "it reaches the network (DNS)",
    "rand.intn": "its result is random",
    "uuid.rfc4122": "its result is random",
    "io.jwt.encode_sign": "its signatures can be random",
    "io.jwt.encode_sign_raw": "its signatures can be random",
    "io.jwt.decode_verify": "it reads the clock",
    "json.match_schema": "it may fetch remote schemas",
    "json.verify_schema": "it may fetch remote schemas",
    "crypto.x509.parse_and_verify_certificates": "it reads the clock",
    "crypto.x509.parse_and_verify_certificates_with_options": "it reads the clock",
    "providers.aws.sign_req": "it reads the clock",
    "trace": "rego-cpp cannot evaluate it (print() works: its output becomes notes)",
}
"""Built-ins an organisation policy may not name, and why: every built-in OPA's capabilities
mark nondeterministic (``opa capabilities --current``; a judge test keeps this in step) but
``time.now_ns``, plus those that read the clock or the network without that mark, and ``trace``.
``time.now_ns`` is allowed: it
answers the start (00:00 UTC) of the date mlplane judges waivers by (``--today``); without a
date it is forbidden too."""
_NOW = "time.now_ns"
_SANDBOX_HINT = (
    "organisation policies run in a sandbox: no environment, network, randomness or clock "
    "(time.now_ns() is 00:00 UTC of --today); see compiler/policy/rego.py"
)
_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<comment>#[^\n]*)|(?P<string>\"(?:[^\"\\\n]|\\.)*\"?)"
    r"|(?P<raw>`[^`]*`?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>.)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    offset: int


def _tokens(text: str) -> list[_Token]:
    """Rego's significant tokens: comments and white space dropped, each string literal one
    token (so neither can hide or fake a call); numbers and operators are one-character
    tokens, which is all the reference reader below needs."""
    return [
        _Token(match.lastgroup or "other", match.group(), match.start())
        for match in _TOKEN.finditer(text)
        if match.lastgroup not in ("space", "comment")
    ]


def _literal(token: _Token) -> str | None:
    """The value of a string token (None if it does not decode)."""
    if token.kind == "raw":
        return token.text[1:-1]
    try:
        value = json.loads(token.text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def references(text: str) -> list[tuple[str, int]]:
    """Every reference of a module that starts with a name, as (dotted name, offset of its
    first character): ``time.now_ns``, ``time . now_ns`` and ``time["now_ns"]`` all read
    ``time.now_ns``. A name preceded by ``.`` continues a reference and starts none."""
    tokens = _tokens(text)
    found: list[tuple[str, int]] = []
    for index, token in enumerate(tokens):
        if token.kind != "name" or (index and tokens[index - 1].text == "."):
            continue
        parts, at = [token.text], index + 1
        while at + 1 < len(tokens):
            step, following = tokens[at], tokens[at + 1]
            if step.text == "." and following.kind == "name":
                parts.append(following.text)
                at += 2
                continue
            closing = tokens[at + 2] if at + 2 < len(tokens) else None
            value = _literal(following) if following.kind in ("string", "raw") else None
            if step.text == "[" and value is not None and closing and closing.text == "]":
                parts.append(value)
                at += 3
                continue
            break
        found.append((".".join(parts), token.offset))
    return found


def forbidden_calls(text: str, today: date | None) -> list[tuple[str, str, int]]:
    """(built-in, why it is forbidden, offset) for every reference to a forbidden built-in,
    or to anything below one (``opa.runtime().env`` names ``opa.runtime``)."""
    forbidden = dict(_FORBIDDEN)
    if today is None:
        forbidden[_NOW] = "it reads the clock (no date was given: pass --today)"
    found = []
    for name, offset in references(text):
        parts = name.split(".")
        for length in range(1, len(parts) + 1):
            prefix = ".".join(parts[:length])
            if prefix in forbidden:
                found.append((prefix, forbidden[prefix], offset))
                break
    return found


def _now_ns(today: date) -> int:
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    return int(midnight.timestamp()) * 1_000_000_000


class _Stopped(Exception):
    """The sandbox process ended a query without answering (limit, crash, timeout)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Sandbox:
    """One sandbox process (``rego_worker``) and its line-of-JSON conversation."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-X", "utf8", "-m", _WORKER, str(MEMORY_BYTES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            close_fds=True,
        )
        self._buffer = b""
        self._finalizer = weakref.finalize(self, _end, self.process)
        ready = self.call(None, WALL_SECONDS)
        if not ready.get("ok"):
            self.close()
            raise _Stopped(codes.REGO_ERROR, f"the sandbox did not start: {ready.get('error')}")

    def call(self, request: Json | None, seconds: float, cpu: float = 0) -> Json:
        """Send ``request`` and wait at most ``seconds`` for the reply (``cpu``: the query's
        CPU limit, named in the timeout message)."""
        process = self.process
        assert process.stdin is not None and process.stdout is not None
        try:
            if request is not None:
                process.stdin.write(json.dumps(request).encode("ascii") + b"\n")
                process.stdin.flush()
            line = self._line(process.stdout.fileno(), time.monotonic() + seconds)
        except TimeoutError:
            self.close()
            raise _Stopped(
                codes.REGO_TIMEOUT, f"evaluation took longer than {seconds:g} s and was stopped"
            ) from None
        except (OSError, ValueError):
            line = None
        if line is None:
            raise self._died(cpu)
        reply = json.loads(line)
        assert isinstance(reply, dict)
        return reply

    def _line(self, fd: int, deadline: float) -> bytes | None:
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > REPLY_BYTES:
                self.close()
                raise _Stopped(codes.REGO_ERROR, f"its result exceeds {REPLY_BYTES >> 20} MiB")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _died(self, cpu: float) -> _Stopped:
        try:
            status = self.process.wait(timeout=WALL_SECONDS)
        except subprocess.TimeoutExpired:  # pragma: no cover - closed its pipe but lives on
            status = None
        self.close()
        if status == -signal.SIGXCPU:
            return _Stopped(
                codes.REGO_TIMEOUT,
                f"evaluation used more than {cpu:g} s of CPU time and was stopped",
            )
        what = _signal_name(status)
        return _Stopped(
            codes.REGO_ERROR,
            f"the evaluation crashed ({what}); memory is limited to "
            f"{MEMORY_BYTES >> 20} MiB beyond the interpreter's own",
        )

    def close(self) -> None:
        self._finalizer()


_WORKER = "mlplane.compiler.policy.rego_worker"


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop a sandbox process: close its input (it exits), kill it if it does not."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    if process.poll() is None:
        process.kill()
    process.wait()


def _signal_name(status: int | None) -> str:
    if status is None or status >= 0:
        return f"exit status {status}"
    try:
        return signal.Signals(-status).name
    except ValueError:
        return f"signal {-status}"


class RegoPolicies(ExternalFindings):
    """The Rego modules of one compile, evaluated for each environment in one sandbox process
    (restarted after a query that broke it; a module whose query broke it is not asked again)."""

    def __init__(self, modules: Sequence[Module], today: date | None = None) -> None:
        self.modules = tuple(modules)
        self.today = today
        self._sandbox: _Sandbox | None = None
        self._input: Json | None = None
        self._sent = False
        self._stopped: set[str] = set()
        self._broken = False
        self._loading_error = ""
        self.read: dict[Path, str] = {}
        """The files :meth:`load` read, as opened, and the text each gave."""

    @classmethod
    def load(
        cls, files: Sequence[Path], diagnostics: Diagnostics, today: date | None = None
    ) -> RegoPolicies:
        modules: list[Module] = []
        refused = False
        read: dict[Path, str] = {}
        for index, path in enumerate(files):
            module = _read_module(f"m{index}", path, diagnostics)
            if module is not None:
                read[path] = module.text
                refused |= _refuse_forbidden(module, today, diagnostics)
                modules.append(module)
                register_code(module.policy_id, REGO_SUMMARY)
        policies = cls(modules, today)
        policies._broken = refused  # nothing of a pack with a forbidden call is evaluated
        policies.read = read
        return policies

    def known_ids(self, system: ir.System) -> frozenset[str]:
        return frozenset(module.policy_id for module in self.modules)

    def findings(self, system: ir.System, diagnostics: Diagnostics) -> Iterable[Raised]:
        if self._broken or not self.modules:
            return []
        problem = regopy_problem()
        if problem is not None:
            hint = "no Rego policy was evaluated: remove the cause, or validate without them"
            self._fail(self.modules[0], problem, diagnostics, hint)
            return []
        self._input, self._sent = to_policy_input(system), False
        raised: list[Raised] = []
        for module in self.modules:
            if self._broken:
                break
            if module.key in self._stopped:
                continue
            result = self._query(module, diagnostics)
            raised += _results(system, module, result, diagnostics)
        return raised

    def close(self) -> None:
        """End the sandbox process (it also ends when this object is collected)."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def _ready(self) -> _Sandbox | None:
        """The sandbox with the modules loaded and this environment's input set; None when
        loading failed (the reason is reported)."""
        if self._sandbox is None:
            sandbox = _Sandbox()
            modules = [[module.key, module.text] for module in self.modules]
            loaded = sandbox.call({"op": "load", "modules": modules}, WALL_SECONDS)
            self._sandbox, self._sent = sandbox, False
            if not loaded.get("ok"):
                self._loading_error = str(loaded.get("error"))
                return None
        if not self._sent:
            reply = self._sandbox.call({"op": "input", "input": self._input}, WALL_SECONDS)
            if not reply.get("ok"):
                raise _Stopped(codes.REGO_ERROR, f"the input was refused: {reply.get('error')}")
            self._sent = True
        return self._sandbox

    def _query(self, module: Module, diagnostics: Diagnostics) -> Any:
        query = f"data.{module.package}"
        if self.today is not None:
            query += f" with {_NOW} as {_now_ns(self.today)}"
        try:
            sandbox = self._ready()
            if sandbox is None:
                self._report_parse(self._loading_error, diagnostics)
                return None
            request = {"op": "query", "query": query, "cpu": CPU_SECONDS}
            reply = sandbox.call(request, WALL_SECONDS, CPU_SECONDS)
        except _Stopped as stopped:
            self.close()
            self._stopped.add(module.key)
            hint = (
                f"each query gets {CPU_SECONDS} s of CPU time and {MEMORY_BYTES >> 20} MiB of "
                "memory; " + _SANDBOX_HINT
            )
            _error(
                module.package_location, module, stopped.message, diagnostics, hint, stopped.code
            )
            return None
        _printed(module, reply, diagnostics)
        if not reply.get("ok"):
            self._report_runtime(module, str(reply.get("error")), diagnostics)
            return None
        return reply.get("result")

    def _report_runtime(self, module: Module, text: str, diagnostics: Diagnostics) -> None:
        by_key = {known.key: known for known in self.modules}
        matches = [match for match in _ERROR.finditer(text) if match["module"] in by_key]
        for match in matches:
            found = by_key[match["module"]]
            location = _offset_location(found, int(match["offset"]))
            _error(location, found, f"evaluation failed: {match['msg'].strip()}", diagnostics)
        if not matches:
            message = _ERROR_MESSAGE.search(text)
            shown = message[1].strip() if message else _first_line(text)
            _error(module.package_location, module, f"evaluation failed: {shown}", diagnostics)

    def _report_parse(self, text: str, diagnostics: Diagnostics) -> None:
        self._broken = True
        by_key = {module.key: module for module in self.modules}
        matches = list(_ERROR.finditer(text))
        for match in matches:
            module = by_key.get(match["module"])
            if module is not None:
                location = _offset_location(module, int(match["offset"]))
                _error(location, module, match["msg"].strip(), diagnostics)
        if not matches:
            self._fail(self.modules[0], _first_line(text), diagnostics)

    def _fail(
        self, module: Module, message: str, diagnostics: Diagnostics, hint: str = _CONTRACT
    ) -> None:
        self._broken = True
        _error(module.package_location, module, message, diagnostics, hint)


def _refuse_forbidden(module: Module, today: date | None, diagnostics: Diagnostics) -> bool:
    """Report every forbidden built-in the module names; True if there is one."""
    found = forbidden_calls(module.text, today)
    for name, why, offset in found:
        diagnostics.error(
            codes.REGO_FORBIDDEN_BUILTIN,
            f"organisation policy {module.package}: {name} is not allowed: {why}",
            _offset_location(module, offset),
            "",
            _SANDBOX_HINT,
        )
    return bool(found)


def _printed(module: Module, reply: Json, diagnostics: Diagnostics) -> None:
    """What a query printed, as one note at the module's first print() call: escaped (no
    control character, no line break, nothing that a terminal or a CI log would act on)."""
    text = reply.get("printed")
    if not isinstance(text, str) or not text:
        return
    shown = json.dumps(text.rstrip("\n"))[1:-1]
    if len(shown) > PRINTED_CHARACTERS or reply.get("truncated"):
        shown = shown[:PRINTED_CHARACTERS] + " ... (truncated)"
    offset = next((at for name, at in references(module.text) if name == "print"), None)
    where = module.package_location if offset is None else _offset_location(module, offset)
    diagnostics.add(
        Diagnostic(
            codes.REGO_PRINT,
            Severity.INFO,
            f"organisation policy {module.package} printed: {shown}",
            where,
            hint="print() output is captured by the sandbox and shown escaped, never written out",
        )
    )


def _read_module(key: str, path: Path, diagnostics: Diagnostics) -> Module | None:
    name = display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        message = f"cannot read {name}: {error.__class__.__name__}"
        diagnostics.error(codes.REGO_ERROR, message, Location(name, 1, 1))
        return None
    match = _PACKAGE.search(text)
    package = match[1] if match else ""
    line = text.count("\n", 0, match.start(1)) + 1 if match else 1
    location = Location(name, line, 1)
    if not package.startswith("mlplane.") or not policy_id(package)[5:]:
        diagnostics.error(
            codes.REGO_ERROR,
            f"{name}: an organisation policy's package must be mlplane.<name>, not {package or 'missing'!r}",
            location,
        )
        return None
    return Module(key, name, text, package, policy_id(package), location)


def _path_problem(path: Path, root: Path) -> str | None:
    try:
        path.resolve(strict=True).relative_to(root.resolve())
    except (FileNotFoundError, NotADirectoryError):
        return f"policy file {display_name(path)} does not exist"
    except ValueError:
        return f"policy file {display_name(path)} resolves outside the spec directory"
    if not path.is_file():
        return f"policy file {display_name(path)} is not a file"
    return None


def _results(
    system: ir.System, module: Module, value: Any, diagnostics: Diagnostics
) -> list[Raised]:
    if not isinstance(value, dict):
        return []
    raised: list[Raised] = []
    for key, severity in (("deny", Severity.ERROR), ("warn", Severity.WARNING)):
        items = value.get(key, [])
        if not isinstance(items, list):
            _error(
                module.package_location,
                module,
                f"{key} must be a set of {{msg, path}}",
                diagnostics,
            )
            continue
        for item in items:
            finding = _finding(system, module, item, diagnostics)
            if finding is not None:
                where = None if finding.path else module.package_location
                raised.append(
                    Raised(finding, severity, f"organisation policy {module.file}", where)
                )
    return raised


def _finding(
    system: ir.System, module: Module, item: Any, diagnostics: Diagnostics
) -> Finding | None:
    message = item.get("msg") if isinstance(item, dict) else None
    path = spec_path(item.get("path")) if isinstance(item, dict) else None
    if not isinstance(message, str) or not message or path is None:
        _error(
            module.package_location,
            module,
            f"a result is not {{msg: string, path: string | array}}: {str(item)[:200]}",
            diagnostics,
        )
        return None
    if path and path[:1] in system.origins:  # else only the document root would match
        return Finding(message, path, rule=module.policy_id)
    shown = ".".join(str(part) for part in path)
    return Finding(
        f"{message} (path {shown!r} is not in the spec; reported at the policy)",
        (),
        rule=module.policy_id,
    )


def spec_path(value: Any) -> SpecPath | None:
    """A result's ``path`` as a spec path: ``a.b[0]`` or ``["a", "b", 0]``; None if malformed."""
    if isinstance(value, list) and all(
        isinstance(p, str | int) and not isinstance(p, bool) for p in value
    ):
        return tuple(value)
    if not isinstance(value, str):
        return None
    parts = [(int(index) if index else name) for name, index in _SEGMENT.findall(value)]
    return tuple(parts)


def _offset_location(module: Module, offset: int) -> Location:
    before = module.text[:offset]
    return Location(module.file, before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def _error(
    location: Location,
    module: Module,
    message: str,
    diagnostics: Diagnostics,
    hint: str = _CONTRACT,
    code: str = codes.REGO_ERROR,
) -> None:
    diagnostics.error(code, f"organisation policy {module.package}: {message}", location, "", hint)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")[:300]


class RegoSource(ExternalFindings):
    """Each environment's Rego policies, loaded once per distinct file list (an environment's
    overrides may add files), plus every ``*.rego`` below the ``--policy`` directories."""

    def __init__(
        self,
        root: Path | None,
        dirs: Sequence[Path],
        diagnostics: Diagnostics,
        today: date | None = None,
    ) -> None:
        self.root = root
        self.dirs = tuple(dirs)
        self.diagnostics = diagnostics
        self.today = today
        self._loaded: dict[tuple[str, ...], RegoPolicies] = {}
        self.read: dict[Path, str] = {}
        """Every policy file read, as opened, and its text (``mlplane build`` records them:
        ``compiler/build/record.py``)."""

    def policies(self, system: ir.System) -> RegoPolicies:
        key = system.policies.rego
        if key not in self._loaded:
            files = rego_files(system, self.root, self.dirs, self.diagnostics)
            self._loaded[key] = RegoPolicies.load(files, self.diagnostics, self.today)
            self.read.update(self._loaded[key].read)
        return self._loaded[key]

    def known_ids(self, system: ir.System) -> frozenset[str]:
        return self.policies(system).known_ids(system)

    def findings(self, system: ir.System, diagnostics: Diagnostics) -> Iterable[Raised]:
        return self.policies(system).findings(system, diagnostics)

    def close(self) -> None:
        """End every sandbox process this source started."""
        for policies in self._loaded.values():
            policies.close()
