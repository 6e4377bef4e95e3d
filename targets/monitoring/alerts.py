"""Alerting rules of one SLA: burn-rate page and ticket, absent data, and drift above threshold.

Every alert carries ``slo``, ``system``, ``namespace``, the subject (``model`` or ``dataSource``),
``severity`` (``page`` or ``ticket``) and ``team`` (the SLA's owner, which Alertmanager routes
on). Annotations are built from allow-listed names and numbers only: no text of the spec ever
reaches them, and the only template is our own ``{{ $value }}``.

Burn-rate alerts have no ``for:``: the short window already debounces (the workbook's design),
and a ``for:`` would delay the page past the minutes the budget maths promise. The absent alert
waits 10 minutes (a scrape hiccup is not an outage of monitoring), the drift alert 15 minutes (a
drift job that re-publishes a corrected score within that time does not wake anyone).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from mlplane.compiler.core import ir
from mlplane.targets import slo
from mlplane.targets.monitoring import names, promql, sli

RUNBOOK_BASE = "https://mlplane.dev/runbooks"
"""Runbooks per alert kind, until the spec has a field for a team's own runbook location."""

ABSENT_FOR = "10m"
DRIFT_FOR = "15m"

Rule = dict[str, Any]


def burn_condition(system: ir.System, sla: ir.Sla, threshold: slo.Threshold) -> str:
    """``long > t and short > t``: both windows of one pair above the threshold ratio."""
    limit = _number(threshold.ratio)
    long = names.of(names.ratio(threshold.pair.long), system, sla)
    short = names.of(names.ratio(threshold.pair.short), system, sla)
    return f"(\n  {long} > {limit}\nand\n  {short} > {limit}\n)"


def _alert_labels(system: ir.System, sla: ir.Sla, severity: str) -> dict[str, str]:
    """The SLA's series labels plus severity and team. The series labels are in every result
    anyway; repeating them on the rule keeps the rules of different SLAs distinct for
    ``promtool check rules --lint`` (which compares alert name and rule labels)."""
    extra = {"severity": severity, "team": sla.owner}
    return promql.safe_labels({**names.series_labels(system, sla), **extra})


def _annotations(summary: str, description: str, runbook: str) -> dict[str, str]:
    return {
        "summary": summary,
        "description": description,
        "runbook_url": f"{RUNBOOK_BASE}/{runbook}",
    }


@lru_cache(maxsize=1 << 12)
def _number(value: Decimal) -> str:
    """``slo.number`` of a threshold's ratio, remembered (the SLAs share a few objectives)."""
    return slo.number(value)


@lru_cache(maxsize=1 << 12, typed=True)
def _burn(
    objective: float, window_seconds: float, severity: slo.Severity
) -> tuple[tuple[slo.Threshold, ...], str, str, str]:
    """The pairs of one severity that apply to an objective and window, with the texts the
    alert quotes (pairs, objective, window): pure numbers, remembered, because the SLAs of a
    large spec share a few objectives and windows."""
    chosen = tuple(
        t for t in slo.thresholds(objective, window_seconds) if t.pair.severity == severity
    )
    pairs = " or ".join(
        f"{slo.number(t.factor)}x over {t.pair.long} and {t.pair.short}" for t in chosen
    )
    percent = f"{slo.number(slo.objective_ratio(objective) * 100)}%"
    return chosen, pairs, percent, slo.window_name(window_seconds)


def burn_alert(system: ir.System, sla: ir.Sla, severity: slo.Severity) -> Rule | None:
    """The page or ticket alert: any of the severity's pairs, or None when none applies."""
    chosen, pairs, objective, window = _burn(sla.objective, sla.window_seconds, severity)
    if not chosen:
        return None
    name = names.FAST_BURN if severity == "page" else names.SLOW_BURN
    return {
        "alert": name,
        "expr": "\nor\n".join(burn_condition(system, sla, t) for t in chosen),
        "labels": _alert_labels(system, sla, severity),
        "annotations": _annotations(
            f"SLO {sla.name} of {system.name} is burning its error budget ({severity})",
            f"SLO {sla.name} ({objective} over {window}) spends its error budget faster than "
            f"the burn rate of {pairs}. Error ratio over the long window: "
            "{{ $value | humanizePercentage }}.",
            f"error-budget-burn#{severity}",
        ),
    }


def absent_alert(system: ir.System, sla: ir.Sla, indicator: sli.Sli) -> Rule:
    """Fires when the SLI's input series do not exist at all, so a broken scrape or a renamed
    metric does not pass for a healthy SLO. Zero traffic keeps the series and does not fire."""
    return {
        "alert": names.ABSENT,
        "expr": f"absent({indicator.absent})",
        "for": ABSENT_FOR,
        "labels": _alert_labels(system, sla, "ticket"),
        "annotations": _annotations(
            f"SLO {sla.name} of {system.name} has no data",
            f"The series that SLO {sla.name} is computed from have been missing for "
            f"{ABSENT_FOR}: its burn-rate alerts cannot fire until they are back.",
            "slo-metric-absent",
        ),
    }


def drift_alert(system: ir.System, sla: ir.Sla) -> Rule | None:
    """Per feature: the drift score above the model's own drift threshold, for 15 minutes."""
    model = system.models.get(sla.subject or "")
    if model is None or model.drift is None:
        return None
    threshold = slo.number(model.drift.threshold)
    gauge = sli.drift_selector(system.environment.namespace, model.name, model.drift.features)
    return {
        "alert": names.DRIFT,
        "expr": f"max by (feature) ({gauge}) > {threshold}",
        "for": DRIFT_FOR,
        "labels": _alert_labels(system, sla, "ticket"),
        "annotations": _annotations(
            f"Model {model.name} of {system.name}: input drift above {threshold}",
            f"The {model.drift.method} drift score of feature {{{{ $labels.feature }}}} of model "
            f"{model.name} is {{{{ $value }}}}, above the threshold {threshold}.",
            "model-drift",
        ),
    }


def sla_alerts(system: ir.System, sla: ir.Sla, indicator: sli.Sli) -> list[Rule]:
    """Every alert of one SLA, in a fixed order."""
    found = [burn_alert(system, sla, "page"), burn_alert(system, sla, "ticket")]
    found.append(absent_alert(system, sla, indicator))
    if sla.indicator.kind == "drift":
        found.append(drift_alert(system, sla))
    return [rule for rule in found if rule is not None]
