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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from mlplane.compiler.build.pipeline import CompileResult, compile_spec, target_of
from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.policy.engine import PolicyRun, installed_rules
from mlplane.compiler.report.build import build_report
from mlplane.compiler.report.model import Report

REPORT_CONTENT = frozenset({codes.WAIVER_EXPIRED, codes.WAIVER_UNMATCHED})
"""Policy diagnostics that the report shows as content (the waiver calendar), not as errors."""


@dataclass
class ReportRun:
    compiled: CompileResult
    problems: Diagnostics = field(default_factory=Diagnostics)
    """Errors that stop the reports (schema, references, policy configuration)."""
    reports: dict[str, Report] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.compiled.ok and not self.problems.has_errors


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
    from mlplane.compiler.policy.rego import RegoSource

    compiled = compile_spec(path, environments, check_targets=True)
    run = ReportRun(compiled)
    if not compiled.ok or compiled.document is None:
        return run
    rego = RegoSource(compiled.document.root, policy_dirs, run.problems, today)
    policies = PolicyRun(today=today, external=rego)
    findings: dict[str, tuple[Diagnostics, Diagnostics]] = {}
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
    if not run.ok:
        return run
    rules = installed_rules()
    for name, (found, waived) in findings.items():
        run.reports[name] = build_report(
            compiled.systems[name],
            rules,
            found.sorted(),
            waived.sorted(),
            today=today,
            graph_evaluated=lower,
        )
    return run


def _graph_rules(
    run: ReportRun, policies: PolicyRun, findings: dict[str, tuple[Diagnostics, Diagnostics]]
) -> None:
    """Lower each environment and run the graph rules on its graph; a refusal is an error."""
    for name, system in sorted(run.compiled.systems.items()):
        target = target_of(system, run.problems)
        graph = target.lower(system, run.problems) if target is not None else None
        if graph is not None:
            policies.check_graph(system, graph, *findings[name])
