"""Compile a spec and build the governance report of each environment (``mlplane report``).

The spec is compiled as ``validate`` compiles it (schema, references, target checks); when
that finds errors the reports are not built and the located diagnostics are returned. Then
the policy packs and the spec's Rego policies run once per environment, each with its own
collectors (the pipeline's policy stage pools every environment's findings in one list, which
a per-environment report cannot use). Policy findings are the report's content, not errors: a
failing rule is a ``fail`` row of the controls matrix. A problem of the policy configuration
(an unknown rule id, wrong parameters, a rule set below its mandatory severity) is an error,
as in ``validate``; an expired waiver is not (the calendar shows it, and the finding it waived
is a ``fail`` again).

With ``lower=True`` each environment is lowered by its target and the graph rules run on the
graph (as ``mlplane build`` does); otherwise their rows are ``not-evaluated``.

Building and rendering each environment's report is independent of the others, so
:func:`render_reports` spreads it over forked workers on the cores the machine leaves free, as
the multi-environment build does (``compiler/build/environments.py``): the spec is compiled
and judged once, in this process, and each worker sends back only its file's text. The text
is the same however the work was spread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from mlplane.compiler.build.environments import free_cores, spread
from mlplane.compiler.build.pipeline import CompileResult, compile_spec, target_of
from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.policy.engine import PolicyRun, Rule, installed_rules
from mlplane.compiler.report.build import build_report
from mlplane.compiler.report.model import Report

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
    """Built by :func:`run_reports`; :func:`judge_reports` leaves it empty."""
    findings: dict[str, Findings] = field(default_factory=dict)
    """The policy findings of each environment: what stands and what a waiver covers."""
    today: date | None = None
    lower: bool = False

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


def run_reports(
    path: Path,
    environments: Sequence[str] | None,
    *,
    today: date | None,
    policy_dirs: Sequence[Path] = (),
    lower: bool = False,
) -> ReportRun:
    """The report of each environment of the spec at ``path`` (all when ``environments`` is
    None). Raises ``UnknownEnvironmentError`` for an environment the spec does not define."""
    run = judge_reports(path, environments, today=today, policy_dirs=policy_dirs, lower=lower)
    if run.ok:
        rules = installed_rules()
        run.reports = {name: run.report(name, rules) for name in run.findings}
    return run


def judge_reports(
    path: Path,
    environments: Sequence[str] | None,
    *,
    today: date | None,
    policy_dirs: Sequence[Path] = (),
    lower: bool = False,
) -> ReportRun:
    """Compile the spec and evaluate the policies of each environment, without building the
    reports (:meth:`ReportRun.report` and :func:`render_reports` build them)."""
    from mlplane.compiler.policy.rego import RegoSource

    compiled = compile_spec(path, environments, check_targets=True)
    run = ReportRun(compiled, today=today, lower=lower)
    if not compiled.ok or compiled.document is None:
        return run
    rego = RegoSource(compiled.document.root, policy_dirs, run.problems, today)
    policies = PolicyRun(today=today, external=rego)
    findings: dict[str, Findings] = {}
    try:
        for name, system in sorted(compiled.systems.items()):
            found, waived = Diagnostics(), Diagnostics()
            policies.check(system, found, waived)
            findings[name] = (found, waived)
    finally:
        rego.close()
    if lower:
        _graph_rules(run, policies, findings)
    for found, _ in findings.values():
        for diagnostic in found:
            if "." not in diagnostic.code and diagnostic.code not in REPORT_CONTENT:
                run.problems.add(diagnostic)
    run.findings = findings
    return run


def render_reports(
    run: ReportRun, render: Callable[[Report], str], workers: int | None = None
) -> dict[str, str]:
    """``{environment: text}``: each environment's report built and rendered, in up to
    ``workers`` forked processes besides this one (None: two per core the load leaves free, at
    most one per environment after the first).

    Why two per free core: the environments cost about the same, so three of them dealt to two
    processes leave a core idle while the process with two finishes its second; three
    processes sharing the two cores finish together.
    """
    if not run.ok:
        return {}
    rules = installed_rules()
    names = sorted(run.findings)
    count = min(len(names) - 1, 2 * free_cores()) if workers is None else workers
    texts = spread(names, count, lambda name: render(run.report(name, rules)))
    return dict(zip(names, texts, strict=True))


def _graph_rules(run: ReportRun, policies: PolicyRun, findings: dict[str, Findings]) -> None:
    """Lower each environment and run the graph rules on its graph; a refusal is an error."""
    for name, system in sorted(run.compiled.systems.items()):
        target = target_of(system, run.problems)
        graph = target.lower(system, run.problems) if target is not None else None
        if graph is not None:
            policies.check_graph(system, graph, *findings[name])
