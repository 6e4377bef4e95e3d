"""SLA rules: what must have an objective, and objectives that can actually be measured."""

from __future__ import annotations

from collections.abc import Iterator

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Severity
from mlplane.compiler.policy.engine import Finding, RelatedPath
from mlplane.policies.common import PACK, availability_slas, first_written

EVALUATION_SECONDS = 300.0
"""The shortest window of the generated burn-rate alerts (5m): the resolution of every SLI."""


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@PACK.rule(
    "slas.availability-defined",
    subjects=("models",),
    title="Every production model has an availability SLA",
    severity=Severity.ERROR,
    rationale="Without an availability objective nobody is paged when a production model "
    "fails: mlplane generates burn-rate alerts from SLAs, and the rules that protect "
    "availability (replicas, rollout strategy) key on the objective.",
    remediation="add an SLA {model: NAME, objective: 99.9, window: 30d, indicator: availability}",
    example="models:\n  scorer: {...}\nslas: {}",
    fix="slas:\n  scorer-availability: {model: scorer, objective: 99.9, window: 30d, "
    "indicator: availability}",
)
def availability_defined(system: ir.System) -> Iterator[Finding]:
    if not system.environment.production:
        return
    for model in system.models.values():
        if not availability_slas(system, model.name):
            yield Finding(
                f"model {model.name!r} has no availability SLA in production environment "
                f"{system.environment.name!r}",
                ("models", model.name),
            )


@PACK.rule(
    "slas.freshness-defined",
    subjects=("dataSources",),
    title="Every data source that declares freshness has a freshness SLA",
    severity=Severity.WARNING,
    rationale="freshness on a data source is a promise; the SLA is what measures it and alerts "
    "its owner when data goes stale (models keep answering from stale features without "
    "failing a single request).",
    remediation="add an SLA {dataSource: NAME, objective: 99, indicator: {freshness: "
    "{maxAge: <the source's freshness>}}}",
    example="dataSources:\n  features: {..., freshness: 15m}",
    fix="slas:\n  features-fresh: {dataSource: features, objective: 99, indicator: "
    "{freshness: {maxAge: 15m}}}",
)
def freshness_defined(system: ir.System) -> Iterator[Finding]:
    measured = {
        sla.subject
        for sla in system.slas.values()
        if sla.subject_kind == "dataSource" and sla.indicator.kind == "freshness"
    }
    for source in system.data_sources.values():
        if source.freshness_seconds is not None and source.name not in measured:
            yield Finding(
                f"data source {source.name!r} declares freshness "
                f"{_duration(source.freshness_seconds)} but no freshness SLA measures it",
                ("dataSources", source.name, "freshness"),
            )


@PACK.rule(
    "slas.objective-realistic",
    title="An SLA's error budget is at least one 5-minute evaluation interval",
    severity=Severity.ERROR,
    rationale="The error budget is (100% - objective) x window: 99.9% over 30d allows 43.2 "
    "minutes of failure, 99.99% over 30d 4.3 minutes, 99.999% over 1d 0.86 seconds. SLIs are "
    "evaluated over 5-minute windows (the shortest window of the burn-rate alerts), so a "
    "budget below 300 seconds is smaller than one evaluation: a single bad interval spends "
    "more than all of it, no alert can fire before the budget is gone, and the objective "
    "cannot be told apart from 100%. Such an objective is not measurable, only violated.",
    remediation="lower the objective or lengthen the window until (100 - objective) / 100 x "
    "window >= 5m (for example 99.9 over 7d leaves 10 minutes, 99.99 over 90d 13 minutes)",
    example="slas:\n  api-availability: {model: api, objective: 99.999, window: 1d, "
    "indicator: availability}",
    fix="slas:\n  api-availability: {model: api, objective: 99.9, window: 30d, "
    "indicator: availability}",
)
def objective_realistic(system: ir.System) -> Iterator[Finding]:
    for sla in system.slas.values():
        budget = (100.0 - sla.objective) / 100.0 * sla.window_seconds
        if budget < EVALUATION_SECONDS:
            yield Finding(
                f"SLA {sla.name!r} ({sla.objective:g}% over {_duration(sla.window_seconds)}) "
                f"leaves an error budget of {budget:.3g} seconds, less than one 5-minute "
                "evaluation interval",
                ("slas", sla.name, "objective"),
                (RelatedPath(("slas", sla.name, "window"), "over this window"),),
            )


@PACK.rule(
    "slas.freshness-consistent",
    title="A freshness SLA does not demand fresher data than its source promises",
    severity=Severity.WARNING,
    rationale="A data source that is refreshed every 2h is, by design, up to 2h old; an SLA "
    "with maxAge 30m counts most of its normal life as bad time and pages for the schedule "
    "working as intended.",
    remediation="set the SLA's maxAge to at least the source's freshness, or refresh the "
    "source more often",
    example="dataSources:\n  features: {..., freshness: 2h}\nslas:\n  features-fresh: "
    "{dataSource: features, objective: 99, indicator: {freshness: {maxAge: 30m}}}",
    fix="slas:\n  features-fresh: {dataSource: features, objective: 99, indicator: "
    "{freshness: {maxAge: 2h}}}",
)
def freshness_consistent(system: ir.System) -> Iterator[Finding]:
    for sla in system.slas.values():
        source = system.data_sources.get(sla.subject or "")
        max_age = sla.indicator.max_age_seconds
        if source is None or source.freshness_seconds is None or max_age is None:
            continue
        if max_age < source.freshness_seconds:
            yield Finding(
                f"SLA {sla.name!r} counts data older than {_duration(max_age)} as stale, but "
                f"{source.name!r} is refreshed only every {_duration(source.freshness_seconds)}",
                first_written(
                    system,
                    ("slas", sla.name, "indicator", "freshness", "maxAge"),
                    ("slas", sla.name),
                ),
                (RelatedPath(("dataSources", source.name, "freshness"), "the source's freshness"),),
            )
