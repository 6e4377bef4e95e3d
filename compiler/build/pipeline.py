"""The pipeline: spec files -> document -> schema -> per-environment overlays -> system models
-> policies.

Passes are small named functions run in order. References are checked even when the schema
pass found errors, on the valid part of the spec (``frontend/partial.py``: entries with schema
errors are left out, and references to them are not reported), so one run shows both kinds;
after that the pipeline stops when there are errors, so no cascade of follow-on errors reaches
the target checks and policies, which judge only resolved systems. Nothing here prints or
writes files.

Overlays may add entries (a data source only one environment has), as complete definitions: an
overlay entry the base does not define that does not validate is reported once, at the
overlay's key, with the closest name of the base (``override-undefined``), rather than as the
missing fields of a new entry.

With ``check_targets=True`` (``mlplane validate``), each environment's target reports what it
would refuse to lower (``plugins.check_target``: the target's ``check``, which builds no graph),
so that validate fails where the build would. On the large benchmark spec the checks cost
well under 1% of a validate, where lowering every environment would triple it.

The policy stage (``compiler.policy.engine``) runs the installed policy packs and the organisation's
Rego policies over each environment's system model, applying severity tuning and waivers; it
runs only when asked (``policies=True``: ``mlplane validate`` does). Waived findings go to
``CompileResult.waived``, not to ``diagnostics``: they are reported for visibility but are not
problems (``--strict`` does not fail on them). Waiver expiry is judged against ``today``; the
library never reads the clock, and with ``today=None`` expiry is not evaluated.

With ``lower=True`` as well (``mlplane build``, and so ``apply``), the policy stage then lowers
each environment with its target, when the system rules found no error, and runs the graph
rules on the graph (``CompileResult.graphs``, which the build reuses rather than lowering
twice). ``validate`` does not lower: lowering the three environments of the large benchmark
spec costs about twice the whole validate. A target's ``check`` reports everything its
``lower`` refuses instead (the Kubernetes target checks the names a lowering would take,
planned from the system model; ``tests/test_validate_build_codes.py`` holds every target error
code to a corpus case validate reports it on). Graph rules check what the targets generate
rather than what the user wrote, so they run only where a graph is built (``build``, ``plan``,
``report --lower``); no example or corpus spec makes a built-in target's graph break one.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplane.compiler.core import codes, ir, plugins
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics, SpecPath, format_path
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.source import DEFAULT_LIMITS, Limits
from mlplane.compiler.frontend.document import Document, load_spec
from mlplane.compiler.frontend.overlay import OVERRIDABLE, apply_overlay, overrides_of
from mlplane.compiler.frontend.partial import TABLES, Partial, prune
from mlplane.compiler.frontend.resolve import Resolver
from mlplane.compiler.frontend.scan import scan_document
from mlplane.compiler.frontend.schema_pass import validate_document
from mlplane.compiler.frontend.system_model import Shared
from mlplane.schema import formats
from mlplane.schema import models as spec

if TYPE_CHECKING:
    from mlplane.compiler.policy.engine import PolicyRun


class UnknownEnvironmentError(Exception):
    """The caller asked for an environment the spec does not define (a usage error)."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        suggestion = formats.closest(name, known)
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(
            f"environment {name!r} is not defined{hint} (defined: {', '.join(known) or 'none'})"
        )
        self.name = name
        self.known = tuple(known)


@dataclass(frozen=True)
class Effective:
    """One environment's effective document and its validated spec."""

    name: str
    document: Document
    spec: spec.MLSystem


@dataclass(frozen=True)
class Checked:
    """One environment whose effective document has schema errors: the valid part of it,
    whose references are checked but which is never built (``frontend/partial.py``)."""

    name: str
    document: Document
    part: Partial


@dataclass
class CompileResult:
    diagnostics: Diagnostics
    sources: Mapping[str, str] = field(default_factory=dict)
    document: Document | None = None
    effective: dict[str, Effective] = field(default_factory=dict)
    partial: dict[str, Checked] = field(default_factory=dict)
    """Environments with schema errors whose valid part was resolved, for its reference errors."""
    systems: dict[str, ir.System] = field(default_factory=dict)
    waived: Diagnostics = field(default_factory=Diagnostics)
    """Findings that a valid waiver covers, as ``info`` diagnostics "waived until ... by ..."."""
    graphs: dict[str, ResourceGraph] = field(default_factory=dict)
    """The graphs the policy stage lowered (``lower=True``), by environment."""
    policy_files: dict[Path, str] = field(default_factory=dict)
    """The organisation's policy files the policy stage read, as opened, and their texts."""

    @property
    def ok(self) -> bool:
        return not self.diagnostics.has_errors

    def sorted_diagnostics(self) -> tuple[Diagnostic, ...]:
        return self.diagnostics.sorted()


def compile_spec(
    target: Path,
    environments: Sequence[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    *,
    policies: bool = False,
    today: date | None = None,
    policy_dirs: Sequence[Path] = (),
    lower: bool = False,
    check_targets: bool = False,
    graph_stage: GraphStage | None = None,
) -> CompileResult:
    """Compile the spec at ``target`` for ``environments`` (all when None).

    With ``policies``, also evaluate the policy packs, the spec's Rego files and those below
    ``policy_dirs``; ``today`` decides which waivers have expired (None: none has). With
    ``lower`` as well, lower each environment and run the graph rules on its graph. With
    ``check_targets``, report what each environment's target would refuse to lower, without
    lowering (``plugins.check_target``; ``lower`` needs no such flag: it checks first).
    ``graph_stage`` replaces the lowering and graph rules of ``lower`` (``mlplane build`` of
    several environments lowers each in a worker process: ``compiler/build/environments.py``).
    """
    with no_cyclic_gc():
        diagnostics = Diagnostics()
        sources: dict[str, str] = {}
        document = load_spec(target, diagnostics, limits, sources)
        if document is None:  # the loader's errors are shown with their source lines
            return CompileResult(diagnostics, sources)
        return compile_document(
            document,
            environments,
            diagnostics,
            policies=policies,
            today=today,
            policy_dirs=policy_dirs,
            lower=lower,
            check_targets=check_targets,
            graph_stage=graph_stage,
        )


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while compiling.

    The compiler builds large acyclic structures (position tables, documents, models), which
    reference counting frees on its own; without the pause the collector walks them again and
    again and costs about a third of a large compile (measured by ``benchmarks/run.py``).

    On the way out, what is alive is frozen (``gc.freeze``) before the collector resumes:
    otherwise its first pass walks every object the compile made, about a tenth of a large
    validate, to find a few dozen in cycles. Reference counting still frees frozen objects; a
    cycle among them waits until the pauses have frozen more than ``FREEZE_LIMIT`` objects
    made while the collector was paused, when a pause unfreezes everything instead (a process
    that compiles again and again, such as a test run, so holds a bounded amount of uncollected
    cycles). The objects are counted as they are made (the collector's count of its youngest
    generation, which nothing collects during the pause), not with ``gc.get_freeze_count``,
    which walks every frozen object: in a process holding a million objects, 20 ms per compile.
    Nested pauses freeze nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if _frozen[0] > FREEZE_LIMIT:
                gc.unfreeze()  # the oldest generation again: the collector's full passes see it
                _frozen[0] = 0
            else:
                _frozen[0] += gc.get_count()[0]
                gc.freeze()
            gc.enable()


FREEZE_LIMIT = 2_000_000
"""Objects made during pauses of :func:`no_cyclic_gc` and frozen at most: about three times what
a process holds after compiling the 1,000-model benchmark spec (0.57 million with the
interpreter's own); a process that made more than this gets the collector's usual passes."""

_frozen = [0]
"""Objects made during the pauses and frozen since the last unfreeze (one mutable cell)."""


def compile_document(
    document: Document,
    environments: Sequence[str] | None = None,
    diagnostics: Diagnostics | None = None,
    *,
    policies: bool = False,
    today: date | None = None,
    policy_dirs: Sequence[Path] = (),
    lower: bool = False,
    check_targets: bool = False,
    graph_stage: GraphStage | None = None,
) -> CompileResult:
    """Compile an already loaded ``document`` (see :func:`compile_spec`).

    Why a separate entry: ``mlplane plan`` loads the base revision's spec from git objects, not
    from the working tree, and must compile it exactly as the head is compiled. ``diagnostics``
    receives the load's problems too when the caller loaded the document with it.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    result = CompileResult(diagnostics)
    result.sources = document.files
    result.document = document
    # References are checked on whatever validated, the valid part of a spec with schema errors
    # included (``frontend/partial.py``), so one run reports both kinds of error.
    front: list[Stage] = [_schema_stage, _resolve_stage]
    # The target checks and the policy rules judge the same resolved systems, each on its own.
    judges: list[Stage] = [_target_stage] if check_targets else []
    if policies:
        dirs = tuple(policy_dirs)
        lowering = (graph_stage or _graph_policies) if lower else None
        judges.append(partial(_policy_stage, today=today, policy_dirs=dirs, lowering=lowering))
    for stage in front:
        stage(result, document, environments)
    if not diagnostics.has_errors:
        for stage in judges:
            stage(result, document, environments)
    return result


def environment_names(document: Document) -> list[str]:
    envs = document.data.get("environments")
    return sorted(envs) if isinstance(envs, dict) else []


def _selected(document: Document, environments: Sequence[str] | None) -> list[str]:
    known = environment_names(document)
    if environments is None:
        return known
    for name in environments:
        if name not in known:
            raise UnknownEnvironmentError(name, known)
    return list(environments)


def _schema_stage(
    result: CompileResult, document: Document, environments: Sequence[str] | None
) -> None:
    diagnostics = result.diagnostics
    flagged = scan_document(document, diagnostics)
    errors: list[SpecPath] = []
    base = validate_document(document, diagnostics, flagged, errors)
    broken = _broken_environments(diagnostics)
    if broken is None:
        return
    for name in _selected(document, environments):
        if name in broken:
            continue  # its overlay cannot be applied safely; its errors are reported
        _check_overrides(document, name, diagnostics)
        added = _added_entries(document, name, diagnostics)
        effective = apply_overlay(document, name)
        env_errors = errors
        if effective is not document:
            env_errors = []
            reuse = None if base is None else (document, base)
            validated = _validate_overlaid(
                effective, document, name, added, diagnostics, flagged, env_errors, reuse
            )
        else:
            validated = base
        if validated is not None:
            result.effective[name] = Effective(name, effective, validated)
        elif (pruned := prune(effective.data, env_errors)) is not None:
            result.partial[name] = Checked(name, effective, pruned)


def _broken_environments(diagnostics: Diagnostics) -> set[str] | None:
    """The environments with an error of their own (their overlays cannot be applied safely);
    None when the ``environments`` section as a whole is wrong."""
    broken: set[str] = set()
    for diagnostic in diagnostics:
        if diagnostic.severity == "error" and diagnostic.path.startswith("environments"):
            name = diagnostic.path.removeprefix("environments").lstrip(".").split(".", 1)[0]
            if not name:
                return None
            broken.add(name)
    return broken


def _added_entries(
    document: Document, environment: str, diagnostics: Diagnostics
) -> dict[SpecPath, SpecPath]:
    """The entries of named tables that the overlay of ``environment`` writes and the base does
    not define (effective path -> the overlay's path). Overlays may add entries, complete ones
    (``_validate_overlaid``); removing one the base lacks (``null``) is reported here."""
    overrides = overrides_of(document, environment)
    added: dict[SpecPath, SpecPath] = {}
    if overrides is None:
        return added
    prefix: SpecPath = ("environments", environment, "overrides")
    for table, what in TABLES.items():
        if table[0] not in OVERRIDABLE:
            continue
        written, known = _table(overrides, table), _table(document.data, table)
        for name, value in written.items():
            if name in known:
                continue
            where: SpecPath = (*prefix, *table, name)
            if value is None:
                _report_undefined(document, environment, what, name, known, where, diagnostics)
            else:
                added[(*table, name)] = where
    return added


def _table(data: dict[str, Any], table: SpecPath) -> dict[str, Any]:
    current: Any = data
    for part in table:
        current = current.get(part) if isinstance(current, dict) else None
    return current if isinstance(current, dict) else {}


def _validate_overlaid(
    effective: Document,
    document: Document,
    environment: str,
    added: dict[SpecPath, SpecPath],
    diagnostics: Diagnostics,
    flagged: frozenset[SpecPath],
    errors: list[SpecPath],
    base: tuple[Document, spec.MLSystem] | None = None,
) -> spec.MLSystem | None:
    """Validate an environment's effective document. An entry its overlay adds that does not
    validate is one ``override-undefined`` error at the overlay's key (most often a misspelt
    name, which would otherwise read as every required field missing), not its own errors.
    ``base``: the base document and its spec when it validated (what the overlay left as it
    was is taken from it: ``schema_pass.validate_document``)."""
    found = Diagnostics()
    validated = validate_document(effective, found, flagged, errors, base)
    problems: dict[SpecPath, list[str]] = {}
    for diagnostic in found:
        entry = next(
            (e for e in added if _within(diagnostic.path, format_path(e))),
            None,
        )
        if entry is None:
            diagnostics.add(diagnostic)
        else:
            problems.setdefault(entry, []).append(diagnostic.message)
    for entry, messages in problems.items():
        table, name = entry[:-1], str(entry[-1])
        known = _table(document.data, table)
        shown = "; ".join(messages[:3]) + ("; ..." if len(messages) > 3 else "")
        _report_undefined(
            document, environment, TABLES[table], name, known, added[entry], diagnostics, shown
        )
    return validated


def _within(path: str, entry: str) -> bool:
    return path == entry or path.startswith((f"{entry}.", f"{entry}["))


def _report_undefined(
    document: Document,
    environment: str,
    what: str,
    name: str,
    known: dict[str, Any],
    where: SpecPath,
    diagnostics: Diagnostics,
    problems: str | None = None,
) -> None:
    suggestion = formats.closest(name, list(known))
    verb = "removes" if problems is None else "overrides"
    message = f"environment {environment!r} {verb} {what} {name!r}, which the base does not define"
    if suggestion:
        message += f"; did you mean {suggestion!r}?"
    if problems is None:
        hint = "remove this line, or name an entry of the base spec"
    else:
        hint = (
            f"an overlay entry the base does not define adds a {what} to this environment, "
            f"and must then be complete: {problems}"
        )
    diagnostics.error(codes.OVERRIDE_UNDEFINED, message, document.location(where), where, hint)


def _check_overrides(document: Document, environment: str, diagnostics: Diagnostics) -> None:
    overrides = overrides_of(document, environment)
    metadata = overrides.get("metadata") if overrides else None
    if isinstance(metadata, dict) and "name" in metadata:
        path = ("environments", environment, "overrides", "metadata", "name")
        diagnostics.error(
            codes.OVERRIDE_FORBIDDEN,
            "metadata.name cannot vary per environment: it names the system everywhere",
            document.location(path),
            path,
        )


def _resolve_stage(
    result: CompileResult, document: Document, environments: Sequence[str] | None
) -> None:
    del document, environments
    shared = Shared()  # the elements one environment shares with another: built once
    for name, effective in result.effective.items():
        found = Diagnostics()  # per environment: the shared collector drops repeats
        resolver = Resolver(effective.spec, effective.document, found, shared=shared)
        resolver.check()
        result.diagnostics.extend(found)
        if not found.has_errors:
            result.systems[name] = resolver.build(name)
    for checked in result.partial.values():  # checked, never built
        found = Diagnostics()
        Resolver(checked.part.spec, checked.document, found, checked.part.dropped).check()
        result.diagnostics.extend(found)


def _target_stage(
    result: CompileResult, document: Document, environments: Sequence[str] | None
) -> None:
    """What each environment's target would refuse to lower, without lowering it."""
    del document, environments
    for system in result.systems.values():
        found = Diagnostics()  # per environment, as a lowering reports
        target = target_of(system, found)
        if target is not None:
            plugins.check_target(target, system, found)
        result.diagnostics.extend(found)


def _policy_stage(
    result: CompileResult,
    document: Document,
    environments: Sequence[str] | None,
    *,
    today: date | None,
    policy_dirs: tuple[Path, ...],
    lowering: GraphStage | None = None,
) -> None:
    from mlplane.compiler.policy.engine import PolicyRun
    from mlplane.compiler.policy.rego import RegoSource

    del environments
    rego = RegoSource(document.root, policy_dirs, result.diagnostics, today)
    run = PolicyRun(today=today, external=rego)
    try:
        for system in result.systems.values():
            run.check(system, result.diagnostics, result.waived)
    finally:
        rego.close()  # the Rego sandbox process ends with the policy stage
        result.policy_files.update(rego.read)
    if lowering is not None and not result.diagnostics.has_errors:
        lowering(result, run)
    run.finish(result.diagnostics)


def _graph_policies(result: CompileResult, run: PolicyRun) -> None:
    """Lower every environment and run the graph rules on each graph that lowered cleanly."""
    for name, system in result.systems.items():
        target = target_of(system, result.diagnostics)
        graph = target.lower(system, result.diagnostics) if target is not None else None
        if graph is None or result.diagnostics.has_errors:
            return
        result.graphs[name] = graph
        run.check_graph(system, graph, result.diagnostics, result.waived)


def target_of(system: ir.System, diagnostics: Diagnostics) -> plugins.Target | None:
    """The installed target of ``system``'s environment; None (with a diagnostic) if absent."""
    available = plugins.targets()
    name = system.environment.target
    target = available.get(name)
    if target is None:
        path = ("environments", system.environment.name, "target")
        installed = ", ".join(sorted(available)) or "none"
        diagnostics.error(
            codes.TARGET_UNAVAILABLE,
            f"environment {system.environment.name!r} uses target {name!r}, which is not "
            f"installed in this mlplane (installed targets: {installed})",
            system.locate(path),
            path,
            hint="install the package that provides the target, or choose an installed one",
        )
    return target


Stage = Callable[[CompileResult, Document, Sequence[str] | None], None]
GraphStage = Callable[[CompileResult, "PolicyRun"], None]
"""Lowers the compiled systems and runs the graph rules of ``PolicyRun`` on their graphs."""
