"""The service level indicator of each SLA, as PromQL, and the gauge contracts of the ML signals.

Two shapes of SLI:

* **event** SLIs (availability, latency, custom ratio) count bad events against all events;
* **time** SLIs (freshness, drift) count bad *time*: a 0/1 series is recorded at every rule
  evaluation and its average over a window is the fraction of that window that was bad.

Freshness and drift have no standard exporter, so mlplane defines the gauges the data and model
pipelines export (README.md "Gauge contracts"):

``mlplane_data_last_success_timestamp_seconds{namespace, data_source}``
    Unix time of the newest successful update of the data source. Stale while
    ``time() - value > maxAge``.
``mlplane_model_drift_score{namespace, model, feature}``
    The latest drift score of one input feature (the model's drift method against its reference
    window). Drifted while the highest score of the monitored features exceeds the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import promql_parser

from mlplane.compiler.core import ir
from mlplane.targets.monitoring import presets, promql
from mlplane.targets.monitoring.presets import WINDOW, EventSli
from mlplane.targets.slo import number

FRESHNESS_GAUGE = "mlplane_data_last_success_timestamp_seconds"
DRIFT_GAUGE = "mlplane_model_drift_score"


@dataclass(frozen=True, slots=True)
class TimeSli:
    """A time-based SLI: ``bad`` is 1 while the subject is bad and 0 while it is good."""

    bad: str
    absent: str


Sli = EventSli | TimeSli


def sli_of(system: ir.System, sla: ir.Sla) -> Sli:
    """The SLI of ``sla`` in ``system``'s namespace."""
    indicator = sla.indicator
    namespace = system.environment.namespace
    if indicator.kind == "ratio":
        return sli_of_custom(indicator)
    if indicator.kind == "freshness":
        return freshness(namespace, _subject(sla), _require(indicator.max_age_seconds))
    model = system.models[_subject(sla)]
    if indicator.kind == "drift":
        features = model.drift.features if model.drift else ()
        return drift(namespace, model.name, features, _require(indicator.drift_threshold))
    if indicator.kind == "latency":
        threshold = _require(indicator.latency_threshold_seconds)
        return presets.latency(model.runtime, model.name, namespace, threshold)
    return presets.availability(model.runtime, model.name, namespace)


def _subject(sla: ir.Sla) -> str:
    if sla.subject is None:
        raise presets.UnsupportedSliError(f"SLA {sla.name!r} has no subject")
    return sla.subject


def _require(value: float | None) -> float:
    if value is None:
        raise presets.UnsupportedSliError("indicator without its parameter")
    return value


@lru_cache(maxsize=1 << 12)
def sli_of_custom(indicator: ir.Indicator) -> EventSli:
    """The spec's own queries, summed (unless they already are one label-less series) so the
    ratio is one series whatever labels the queries keep. Remembered by the (frozen) indicator:
    the rules, the rule tests and their timelines ask for it again, and each call parses both
    queries."""
    errors = _single(promql.with_window(indicator.ratio_errors or "", WINDOW))
    total = _single(promql.with_window(indicator.ratio_total or "", WINDOW))
    return EventSli(errors, total, True, total.replace(WINDOW, "5m"))


_SINGLE_AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar"})


def _single(query: str) -> str:
    """``query`` if it yields at most one label-less series, else ``sum(query)``."""
    concrete = query.replace(WINDOW, "5m")
    return query if _label_free(promql_parser.parse(concrete)) else f"sum({query})"


def _label_free(node: promql_parser.Expr) -> bool:
    if isinstance(node, promql_parser.ParenExpr):
        return _label_free(node.expr)
    if isinstance(node, promql_parser.NumberLiteral):
        return True
    if isinstance(node, promql_parser.AggregateExpr):
        return node.modifier is None and str(node.op) in _SINGLE_AGGREGATIONS
    if isinstance(node, promql_parser.BinaryExpr):
        return _label_free(node.lhs) and _label_free(node.rhs)
    return False


def freshness_selector(namespace: str, data_source: str) -> str:
    return promql.selector(
        FRESHNESS_GAUGE,
        (
            promql.matcher("namespace", "=", promql.safe_value(namespace)),
            promql.matcher("data_source", "=", promql.safe_value(data_source)),
        ),
    )


def freshness(namespace: str, data_source: str, max_age_seconds: float) -> TimeSli:
    """Bad while the newest successful update is older than ``max_age_seconds``."""
    gauge = freshness_selector(namespace, data_source)
    return TimeSli(f"time() - max({gauge}) > bool {number(max_age_seconds)}", gauge)


def drift_selector(namespace: str, model: str, features: tuple[str, ...]) -> str:
    matchers = [
        promql.matcher("namespace", "=", promql.safe_value(namespace)),
        promql.matcher("model", "=", promql.safe_value(model)),
    ]
    if features:
        matchers.append(promql.matcher("feature", "=~", promql.regex_alternatives(features)))
    return promql.selector(DRIFT_GAUGE, matchers)


def drift(namespace: str, model: str, features: tuple[str, ...], threshold: float) -> TimeSli:
    """Bad while any monitored feature's drift score exceeds ``threshold``."""
    gauge = drift_selector(namespace, model, features)
    return TimeSli(f"max({gauge}) > bool {number(threshold)}", gauge)
