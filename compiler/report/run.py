"""Compile a spec and build the governance report of each environment (``mlplane report``).

The spec is compiled as ``validate`` compiles it (schema, references, target checks); when
that finds errors the reports are not built and the located diagnostics are returned. The
policy packs and the spec's Rego policies run once per environment, each with its own
collectors (the pipeline's policy stage pools every environment's findings in one list, which
a per-environment report cannot use). Policy findings are the report's content, not errors: a
failing rule is a ``fail`` row of the controls matrix. A problem of the policy configuration
(an unknown rule id, wrong parameters, a rule set below its mandatory severity) is an error,
as in ``validate``; an expired waiver is not (the calendar shows it, and the finding it waived
is a ``fail`` again).

With ``lower=True`` each environment is lowered by its target and the graph rules run on the
graph (as ``mlplane build`` does); otherwise their rows are ``not-evaluated``.

What is shared is done once, in this process (:func:`judge_reports`): loading, the schema,
references and the policies. What each environment needs on its own (:func:`render_reports`:
its target's checks, or with ``lower`` its lowering and graph rules, then building and
rendering its report) runs in forked workers on the cores the machine leaves free, as in the
multi-environment build (``compiler/build/environments.py``); each worker sends back its
diagnostics and its file's text. The text and the diagnostics are the same however the work
was spread, and when any environment has an error no report is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Generic, TypeVar

from mlplane.compiler.build.environments import free_cores, spread
from mlplane.compiler.build.pipeline import CompileResult, compile_spec, target_of
from mlplane.compiler.core import codes, plugins
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics
from mlplane.compiler.policy.engine import PolicyRun, Rule, installed_rules
from mlplane.compiler.report.build import build_report
from mlplane.compiler.report.model import Report

T = TypeVar("T")
Findings = tuple[Diagnostics, Diagnostics]
"""One environment's policy findings: those that stand, and those a valid waiver covers."""

REPORT_CONTENT = frozenset({codes.WAIVER_EXPIRED, codes.WAIVER_UNMATCHED})
"""Policy diagnostics that the report shows as content (the waiver calendar), not as errors."""


@dataclass
class ReportRun:
    compiled: CompileResult
    problems: Diagnostics = field(default_factory=Diagnostics)
    """Errors that stop the reports (schema, references, policy configuration)."""
    reports: dict[str, Report] = field(default_factory=dict)
    """Built by :func:`build_reports`; :func:`judge_reports` leaves it empty."""
    findings: dict[str, Findings] = field(default_factory=dict)
    """The policy findings of each environment: what stands and what a waiver covers."""
    today: date | None = None
    lower: bool = False
    policies: PolicyRun | None = None
    """The policy run that judged the environments (its graph rules run per environment)."""

    @property
    def ok(self) -> bool:
        return self.compiled.ok and not self.problems.has_errors

    def report(self, environment: str, rules: Sequence[Rule]) -> Report:
        """Build the report of ``environment`` from its system model and findings."""
        found, waived = self.findings[environment]
        return build_report(
            self.compiled.systems[environment],
            rules,
            found.sorted(),
            waived.sorted(),
            today=self.today,
            graph_evaluated=self.lower,
        )


def judge_reports(
    path: Path,
    environments: Sequence[str] | None,
    *,
    today: date | None,
    policy_dirs: Sequence[Path] = (),
    lower: bool = False,
) -> ReportRun:
    """Compile the spec at ``path`` and evaluate the policies of each environment (all when
    ``environments`` is None), without the target checks (or, with ``lower``, the lowering and
    graph rules) and the reports: :func:`render_reports` does those per environment, or
    :func:`build_reports` without rendering. Raises ``UnknownEnvironmentError`` for an
    environment the spec does not define."""
    from mlplane.compiler.policy.rego import RegoSource

    compiled = compile_spec(path, environments)
    run = ReportRun(compiled, today=today, lower=lower)
    if not compiled.ok or compiled.document is None:
        return run
    rego = RegoSource(compiled.document.root, policy_dirs, run.problems, today)
    run.policies = PolicyRun(today=today, external=rego)
    try:
        for name, system in sorted(compiled.systems.items()):
            found, waived = Diagnostics(), Diagnostics()
            run.policies.check(system, found, waived)
            run.findings[name] = (found, waived)
    finally:
        rego.close()
    for found, _ in run.findings.values():
        run.problems.extend(_problems(found))
    return run


def build_reports(run: ReportRun) -> ReportRun:
    """``run`` (from :func:`judge_reports`) with the report of each of its environments in
    ``run.reports``, checked and built as :func:`render_reports` does, in this process and
    not rendered; none when any environment has an error."""
    run.reports = _each_environment(run, _same, 0)
    return run


def render_reports(
    run: ReportRun, render: Callable[[Report], str], workers: int | None = None
) -> dict[str, str]:
    """``{environment: text}``: each environment checked by its target (with ``lower``:
    lowered, and judged by the graph rules), its report built and rendered, in up to
    ``workers`` forked processes besides this one (None: one per core the load leaves free).
    Empty when any environment has an error (then in ``run.compiled.diagnostics`` or
    ``run.problems``).

    Why not more workers than free cores, although three environments dealt to two processes
    leave a core idle while one process does its second: a worker is not free. On the
    1,000-model spec each one added 0.3 to 0.45 s of CPU (the pages of the compiled spec that
    reference counting writes to are copied, in the worker and in this process, while both
    live), most of an environment's own 0.5 s: the three environments took 1.5 s of CPU in one
    process, 1.9 to 2.1 s with one worker and 2.1 to 2.3 s with two (``benchmarks/README.md``).
    """
    count = free_cores() if workers is None else workers
    return _each_environment(run, render, count)


@dataclass(frozen=True)
class _Outcome(Generic[T]):
    checked: tuple[Diagnostic, ...]
    """What the target refuses or warns about (as ``validate``'s target checks report it)."""
    problems: tuple[Diagnostic, ...]
    """Errors of lowering and of the graph rules' configuration (with ``lower``)."""
    value: T | None
    """The rendered report; None when the environment has an error."""


def _each_environment(run: ReportRun, render: Callable[[Report], T], workers: int) -> dict[str, T]:
    if not run.ok:
        return {}
    rules = installed_rules()
    names = sorted(run.findings)
    outcomes = list(spread(names, workers, lambda name: _environment(run, name, rules, render)))
    for outcome in outcomes:
        run.compiled.diagnostics.extend(outcome.checked)
        run.problems.extend(outcome.problems)
    if not run.ok:
        return {}
    return {n: o.value for n, o in zip(names, outcomes, strict=True) if o.value is not None}


def _environment(
    run: ReportRun, name: str, rules: Sequence[Rule], render: Callable[[Report], T]
) -> _Outcome[T]:
    """Check (or lower and judge) one environment, then build and render its report."""
    system = run.compiled.systems[name]
    checked, problems = Diagnostics(), Diagnostics()
    target = target_of(system, checked)
    if target is not None:
        plugins.check_target(target, system, checked)
    if target is None or checked.has_errors:
        return _Outcome(checked.sorted(), (), None)
    if run.lower and run.policies is not None:
        graph = target.lower(system, problems)
        if graph is None or problems.has_errors:
            return _Outcome(checked.sorted(), problems.sorted(), None)
        found, waived = run.findings[name]
        run.policies.check_graph(system, graph, found, waived)
        problems.extend(_problems(found))
        if problems.has_errors:
            return _Outcome(checked.sorted(), problems.sorted(), None)
    return _Outcome(checked.sorted(), problems.sorted(), render(run.report(name, rules)))


def _problems(found: Diagnostics) -> list[Diagnostic]:
    """The findings that are errors of the policy configuration, not report content."""
    return [d for d in found if "." not in d.code and d.code not in REPORT_CONTENT]


def _same(report: Report) -> Report:
    return report
