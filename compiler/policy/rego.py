"""Organisation policies in Rego: the input document they read and the results they return.

Rego files come from ``policies: {rego: [path ...]}`` in the spec (relative to the spec
directory, which they may not leave) and from ``mlplane validate --policy DIR`` (every ``*.rego``
below DIR). They are evaluated in-process with ``regopy`` (rego-cpp), once per environment,
against ``to_policy_input(system)``.

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
     "alerting": {...}, "waivers": [...], "policies": {"severities", "rego"}}

``upstream`` is the transitive lineage (a model's includes its inputs). Result contract: a
module's package must be ``mlplane.<anything>``; its ``deny`` (errors) and ``warn`` (warnings)
are sets of ``{"msg": string, "path": string | array}``. ``path`` is a spec path of the
effective spec, written ``models.scorer.serving`` or ``["models", "scorer", "serving"]``; the
finding is located at that line (or the package line of the policy when the path does not
exist). The findings' code, the policy id that ``policies.rules`` and waivers name, is
``rego.<last package segment>`` with ``_`` written ``-`` (``package mlplane.acme.no_public_pii``
-> ``rego.no-public-pii``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from mlplane.compiler.core import codes, ir, plugins
from mlplane.compiler.core.diagnostics import (
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
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
Json = dict[str, Any]
_HIDDEN = frozenset({"origin", "origins"})
_CONTRACT = "see the result contract in compiler/policy/rego.py (deny/warn sets of {msg, path})"


def load_regopy() -> tuple[Any, str | None]:
    """``(regopy, None)``, or ``(None, why not)``. Imported only when a Rego policy is loaded:
    rego-cpp's allocator (snmalloc) reserves a very large address space when the library loads
    and aborts the process, uncatchably, under an address-space limit (``RLIMIT_AS``; it failed
    here with 256 GiB and worked with 1 TiB), so a limited process gets a diagnostic instead."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, AttributeError, OSError):  # pragma: no cover - not a POSIX system
        limit = -1
    if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)) and limit < 2**40:
        return None, "Rego evaluation (regopy) cannot run under an address-space limit (ulimit -v)"
    try:
        import regopy  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - exercised only where the wheel is missing
        return None, "the regopy package is not installed (pip install regopy)"
    return regopy, None


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
    for directory in dirs:
        found += [directory] if directory.is_file() else sorted(directory.rglob("*.rego"))
    return found


class RegoPolicies(ExternalFindings):
    """The Rego modules of one compile in one interpreter, evaluated for each environment."""

    def __init__(self, modules: Sequence[Module]) -> None:
        self.modules = tuple(modules)
        self._interpreter: Any = None
        self._regopy: Any = None
        self._broken = False

    @classmethod
    def load(cls, files: Sequence[Path], diagnostics: Diagnostics) -> RegoPolicies:
        modules: list[Module] = []
        for index, path in enumerate(files):
            module = _read_module(f"m{index}", path, diagnostics)
            if module is not None:
                modules.append(module)
                register_code(module.policy_id, REGO_SUMMARY)
        return cls(modules)

    def known_ids(self, system: ir.System) -> frozenset[str]:
        return frozenset(module.policy_id for module in self.modules)

    def findings(self, system: ir.System, diagnostics: Diagnostics) -> Iterable[Raised]:
        interpreter = self._ready(diagnostics)
        if interpreter is None:
            return []
        interpreter.set_input(self._regopy.Input(to_policy_input(system)))
        raised: list[Raised] = []
        for module in self.modules:
            result = self._query(interpreter, module, diagnostics)
            raised += _results(system, module, result, diagnostics)
        return raised

    def _ready(self, diagnostics: Diagnostics) -> Any:
        if self._interpreter is not None or self._broken or not self.modules:
            return self._interpreter
        regopy, problem = load_regopy()
        if regopy is None:
            hint = "no Rego policy was evaluated: remove the cause, or validate without them"
            self._fail(self.modules[0], problem or "regopy is unavailable", diagnostics, hint)
            return None
        self._regopy = regopy
        interpreter = regopy.Interpreter()
        interpreter.log_level = regopy.LogLevel.NONE  # errors come back as exceptions, not stdout
        for module in self.modules:
            try:
                interpreter.add_module(module.key, module.text)
            except regopy.RegoError as error:
                self._report_parse(str(error), diagnostics)
                return None
        self._interpreter = interpreter
        return interpreter

    def _query(self, interpreter: Any, module: Module, diagnostics: Diagnostics) -> Any:
        try:
            output = interpreter.query(f"data.{module.package}")
        except self._regopy.RegoError as error:
            self._report_parse(str(error), diagnostics)
            return None
        if not output.ok():
            _error(
                module.package_location,
                module,
                f"evaluation failed: {_first_line(str(output))}",
                diagnostics,
            )
            return None
        results = output.results
        return results[0].expressions[0] if results and results[0].expressions else None

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
) -> None:
    diagnostics.error(
        codes.REGO_ERROR, f"organisation policy {module.package}: {message}", location, "", hint
    )


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")[:300]


class RegoSource(ExternalFindings):
    """Each environment's Rego policies, loaded once per distinct file list (an environment's
    overrides may add files), plus every ``*.rego`` below the ``--policy`` directories."""

    def __init__(self, root: Path | None, dirs: Sequence[Path], diagnostics: Diagnostics) -> None:
        self.root = root
        self.dirs = tuple(dirs)
        self.diagnostics = diagnostics
        self._loaded: dict[tuple[str, ...], RegoPolicies] = {}

    def policies(self, system: ir.System) -> RegoPolicies:
        key = system.policies.rego
        if key not in self._loaded:
            files = rego_files(system, self.root, self.dirs, self.diagnostics)
            self._loaded[key] = RegoPolicies.load(files, self.diagnostics)
        return self._loaded[key]

    def known_ids(self, system: ir.System) -> frozenset[str]:
        return self.policies(system).known_ids(system)

    def findings(self, system: ir.System, diagnostics: Diagnostics) -> Iterable[Raised]:
        return self.policies(system).findings(system, diagnostics)
