"""Names of the recorded series and alerts, and the labels that identify one SLA's series.

Recorded series follow Prometheus' ``level:metric:operations`` convention: the level is ``slo``
(one series per SLA), the metric is what is measured, the operations say how. No window label is
ever put on a recorded series: the window is part of the name, so the two windows of a burn-rate
condition carry identical labels and ``and`` matches them one to one.
"""

from __future__ import annotations

from functools import lru_cache

from mlplane.compiler.core import ir
from mlplane.targets.monitoring import promql

ERRORS_RATE = "slo:sli_errors:rate5m"
"""Bad events per second over 5 minutes (event SLIs)."""
REQUESTS_RATE = "slo:sli_requests:rate5m"
"""All events per second over 5 minutes (event SLIs)."""
BAD_TIME = "slo:sli_error:bool"
"""1 while the subject is bad, 0 while it is good (time SLIs)."""
SLO_WINDOW_RATIO = "slo:sli_error:ratio_slo_window"
"""The error ratio over the SLA's own window (30d unless the spec says otherwise)."""
OBJECTIVE = "slo:objective:ratio"
ERROR_BUDGET = "slo:error_budget:ratio"
SLO_WINDOW = "slo:window:seconds"
BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
"""1 with the budget untouched, 0 when spent, negative when overspent."""

FAST_BURN = "ErrorBudgetFastBurn"
"""Severity page: 2 % (1h) or 5 % (6h) of the budget gone at the current burn rate."""
SLOW_BURN = "ErrorBudgetSlowBurn"
"""Severity ticket: 10 % of the budget gone in 1d or 3d at the current burn rate."""
ABSENT = "SLOMetricAbsent"
"""The SLI's input series do not exist at all (not: zero traffic)."""
DRIFT = "ModelDriftAboveThreshold"
"""A monitored feature's drift score is above the model's drift threshold."""

SUBJECT_LABEL = {"model": "model", "dataSource": "dataSource"}


def ratio(window: str) -> str:
    """``slo:sli_error:ratio_rate1h``: the error ratio over ``window``."""
    return f"slo:sli_error:ratio_rate{window}"


def identity(system: ir.System, sla: ir.Sla) -> dict[str, str]:
    """The labels that tell this SLA's series from every other SLA's."""
    return dict(_identity(system.environment.namespace, sla.name, system.name))


def identity_of(namespace: str, slo: str, system: str) -> tuple[tuple[str, str], ...]:
    """:func:`identity` by the three names it depends on, as pairs."""
    return _identity(namespace, slo, system)


@lru_cache(maxsize=1 << 14)
def _identity(namespace: str, slo: str, system: str) -> tuple[tuple[str, str], ...]:
    """:func:`identity` by its three names, remembered (every rule of an SLA carries it)."""
    labels = {"namespace": namespace, "slo": slo, "system": system}
    return tuple(promql.safe_labels(labels).items())


@lru_cache(maxsize=1 << 14)
def _identity_selector(namespace: str, slo: str, system: str) -> str:
    return promql.label_selector(dict(_identity(namespace, slo, system)))


def series_labels(system: ir.System, sla: ir.Sla) -> dict[str, str]:
    """Labels of every recorded series of ``sla``: identity plus its subject."""
    labels = identity(system, sla)
    if sla.subject is not None and sla.subject_kind in SUBJECT_LABEL:
        labels[SUBJECT_LABEL[sla.subject_kind]] = sla.subject
    return promql.safe_labels(labels)


def of(name: str, system: ir.System, sla: ir.Sla) -> str:
    """The selector of one recorded series of ``sla``: ``slo:...{namespace="…",slo="…",…}``."""
    return name + _identity_selector(system.environment.namespace, sla.name, system.name)
