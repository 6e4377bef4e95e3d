"""The pipeline: spec files -> document -> schema -> per-environment overlays -> system models
-> policies.

Passes are small named functions run in order; the pipeline stops between stages when a stage
reported errors, so a user sees every problem of one kind at once and no cascade of follow-on
errors. Nothing here prints or writes files.

The policy stage (``compiler.policy.engine``) runs the installed policy packs and the organisation's
Rego policies over each environment's system model, applying severity tuning and waivers; it
runs only when asked (``policies=True``: ``mlplane validate`` does). Waived findings go to
``CompileResult.waived``, not to ``diagnostics``: they are reported for visibility but are not
problems (``--strict`` does not fail on them). Waiver expiry is judged against ``today``; the
library never reads the clock, and with ``today=None`` expiry is not evaluated.

With ``lower=True`` as well (``mlplane build``, and so ``apply``), the policy stage then lowers
each environment with its target, when the system rules found no error, and runs the graph
rules on the graph (``CompileResult.graphs``, which the build reuses rather than lowering
twice). ``validate`` does not lower: it needs no target, graph rules check what the targets
generate rather than what the user wrote, and lowering costs more than validating (about 2.5
times as much on the large benchmark spec; figures in benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from mlplane.compiler.core import codes, ir, plugins
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.source import DEFAULT_LIMITS, Limits
from mlplane.compiler.frontend.document import Document, load_spec
from mlplane.compiler.frontend.overlay import apply_overlay, overrides_of
from mlplane.compiler.frontend.resolve import Resolver
from mlplane.compiler.frontend.scan import scan_document
from mlplane.compiler.frontend.schema_pass import validate_document
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


@dataclass
class CompileResult:
    diagnostics: Diagnostics
    sources: Mapping[str, str] = field(default_factory=dict)
    document: Document | None = None
    effective: dict[str, Effective] = field(default_factory=dict)
    systems: dict[str, ir.System] = field(default_factory=dict)
    waived: Diagnostics = field(default_factory=Diagnostics)
    """Findings that a valid waiver covers, as ``info`` diagnostics "waived until ... by ..."."""
    graphs: dict[str, ResourceGraph] = field(default_factory=dict)
    """The graphs the policy stage lowered (``lower=True``), by environment."""

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
) -> CompileResult:
    """Compile the spec at ``target`` for ``environments`` (all when None).

    With ``policies``, also evaluate the policy packs, the spec's Rego files and those below
    ``policy_dirs``; ``today`` decides which waivers have expired (None: none has). With
    ``lower`` as well, lower each environment and run the graph rules on its graph.
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
        )


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while compiling.

    The compiler builds large acyclic structures (position tables, documents, models), which
    reference counting frees on its own; without the pause the collector walks them again and
    again and costs about a third of a large compile (measured by ``benchmarks/run.py``).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def compile_document(
    document: Document,
    environments: Sequence[str] | None = None,
    diagnostics: Diagnostics | None = None,
    *,
    policies: bool = False,
    today: date | None = None,
    policy_dirs: Sequence[Path] = (),
    lower: bool = False,
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
    stages: list[Stage] = [_schema_stage, _resolve_stage]
    if policies:
        dirs = tuple(policy_dirs)
        stages.append(partial(_policy_stage, today=today, policy_dirs=dirs, lower=lower))
    for stage in stages:
        stage(result, document, environments)
        if diagnostics.has_errors:
            break
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
    base = validate_document(document, diagnostics, flagged)
    if base is None and _invalid_overrides(document, diagnostics):
        return
    for name in _selected(document, environments):
        _check_overrides(document, name, diagnostics)
        effective = apply_overlay(document, name)
        validated = (
            base if effective is document else validate_document(effective, diagnostics, flagged)
        )
        if validated is not None:
            result.effective[name] = Effective(name, effective, validated)


def _invalid_overrides(document: Document, diagnostics: Diagnostics) -> bool:
    """Whether any error lies inside ``environments`` (then overlays cannot be applied safely)."""
    return any(d.path.startswith("environments") for d in diagnostics if d.severity == "error")


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
    for name, effective in result.effective.items():
        found = Diagnostics()  # per environment: the shared collector drops repeats
        resolver = Resolver(effective.spec, effective.document, found)
        resolver.check()
        result.diagnostics.extend(found)
        if not found.has_errors:
            result.systems[name] = resolver.build(name)


def _policy_stage(
    result: CompileResult,
    document: Document,
    environments: Sequence[str] | None,
    *,
    today: date | None,
    policy_dirs: tuple[Path, ...],
    lower: bool = False,
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
    if lower and not result.diagnostics.has_errors:
        _graph_policies(result, run)
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
