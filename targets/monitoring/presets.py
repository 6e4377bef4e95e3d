"""PromQL for availability and latency SLIs, built from the runtime facts in ``schema/runtimes``.

An SLI here is a pair of queries per window, ``errors`` and ``total``, each a single label-less
series (everything is wrapped in ``sum``), so the ratio needs no vector matching and the
recording rule attaches the SLA's own labels. The facts (metric names, labels, buckets) live in
the schema layer because the front end checks latency thresholds against them; this module only
turns them into queries for one model in one namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplane.schema import runtimes
from mlplane.schema.runtimes import LabelMatcher, Runtime
from mlplane.targets.monitoring import promql
from mlplane.targets.slo import number

WINDOW = "__WINDOW__"
"""Placeholder for the range in query templates (``[__WINDOW__]``)."""


class UnsupportedSliError(ValueError):
    """An SLA asks for an SLI its model's runtime cannot provide (the front end rejects these
    with a located diagnostic before any target runs; reaching this is a bug upstream)."""


@dataclass(frozen=True, slots=True)
class EventSli:
    """A request-based SLI: bad events over all events."""

    errors: str
    """Template (with :data:`WINDOW`) of the rate of bad events."""
    total: str
    """Template of the rate of all events."""
    errors_may_be_missing: bool
    """True when the errors series only appears with the first error (a counter with a status
    label): then "no errors series" means zero errors, as long as the total exists. False for a
    latency histogram, where a missing bucket means a misconfiguration and must not read as 0."""
    absent: str
    """The query whose absence means the SLI has no data at all."""
    presence: str | None = None
    """Template of a query that exists exactly when traffic data exists (``total`` when None);
    ``errors or 0 * presence`` turns "no errors counted yet" into 0."""

    def errors_at(self, window: str) -> str:
        return self.errors.replace(WINDOW, window)

    def total_at(self, window: str) -> str:
        return self.total.replace(WINDOW, window)

    def presence_at(self, window: str) -> str:
        return (self.presence or self.total).replace(WINDOW, window)


def model_matchers(preset: Runtime, model: str, namespace: str) -> tuple[str, ...]:
    """The matchers that select ``model``'s series in ``namespace``."""
    values = {"model": promql.safe_value(model), "namespace": promql.safe_value(namespace)}
    return tuple(_matcher(m, values) for m in preset.selector)


def _matcher(spec: LabelMatcher, values: dict[str, str]) -> str:
    name, op, template = spec
    return promql.matcher(name, op, template.format(**values))


def _sum_rate(metric: str, matchers: tuple[str, ...]) -> str:
    return f"sum(rate({promql.selector(metric, matchers)}[{WINDOW}]))"


def availability(runtime_name: str, model: str, namespace: str) -> EventSli:
    """Failed requests (5xx, or the runtime's failure counter) over all requests."""
    preset = runtimes.runtime(runtime_name)
    base = model_matchers(preset, model, namespace)
    counters = preset.requests
    errors = _sum_rate(
        counters.errors, base + tuple(_matcher(m, {}) for m in counters.error_matchers)
    )
    totals = [_sum_rate(metric, base) for metric in counters.total]
    total = " + ".join(totals) if len(totals) == 1 else _tolerant_sum(totals)
    absent = promql.selector(counters.total[0], base)
    return EventSli(errors, total, True, absent, totals[0] if len(totals) > 1 else None)


def _tolerant_sum(parts: list[str]) -> str:
    """``a + (b or 0 * a)``: a counter that has not appeared yet counts as zero."""
    first, rest = parts[0], parts[1:]
    return " + ".join([first, *(f"({part} or 0 * {first})" for part in rest)])


def latency(runtime_name: str, model: str, namespace: str, threshold_seconds: float) -> EventSli:
    """Requests slower than the threshold (outside the ``le`` bucket) over all requests."""
    problem = runtimes.latency_threshold_problem(runtime_name, threshold_seconds)
    preset = runtimes.runtime(runtime_name)
    histogram = preset.latency
    if problem is not None or histogram is None:
        raise UnsupportedSliError(problem or "no latency histogram")
    base = model_matchers(preset, model, namespace)
    boundary = le_value(histogram, threshold_seconds)
    good = promql.selector(f"{histogram.metric}_bucket", (*base, promql.le_matcher(boundary)))
    total = _sum_rate(f"{histogram.metric}_count", base)
    errors = f"{total} - sum(rate({good}[{WINDOW}]))"
    return EventSli(errors, total, False, good)


def le_value(histogram: runtimes.LatencyHistogram, threshold_seconds: float) -> str:
    """The ``le`` label value of the bucket at the threshold, in the histogram's unit."""
    milliseconds = runtimes.threshold_ms(threshold_seconds)
    if milliseconds is None:
        raise UnsupportedSliError(f"latency threshold {threshold_seconds}s is not whole ms")
    if histogram.unit == "milliseconds":
        return str(milliseconds)
    return number(milliseconds / 1000) if milliseconds % 1000 else str(milliseconds // 1000)


AUTOSCALING_WINDOW = "2m"
"""The range of the per-pod rates an autoscaler reads: a few scrapes at the usual 30 s, short
enough to follow a rise in traffic."""


def _per_pod_rate(metric: str, matchers: tuple[str, ...]) -> str:
    selected = promql.selector(metric, matchers)
    return f"sum by (namespace, pod) (rate({selected}[{AUTOSCALING_WINDOW}]))"


def requests_per_pod(runtime_name: str, model: str, namespace: str) -> str:
    """Each of ``model``'s pods' requests a second (answered or failed), one series per pod
    labelled ``namespace`` and ``pod``: what an autoscaler on ``rps`` reads."""
    preset = runtimes.runtime(runtime_name)
    base = model_matchers(preset, model, namespace)
    return _tolerant_sum([_per_pod_rate(metric, base) for metric in preset.requests.total])


def in_flight_per_pod(runtime_name: str, model: str, namespace: str) -> str:
    """Each of ``model``'s pods' mean requests in flight over the window, one series per pod:
    the rate of the time spent handling requests (Little's law; no runtime exports a gauge of
    them). A request counts when it ends, so a long one shows late."""
    preset = runtimes.runtime(runtime_name)
    handling = preset.handling_time
    rate = _per_pod_rate(handling.metric, model_matchers(preset, model, namespace))
    return rate if handling.units_per_second == 1 else f"{rate} / {handling.units_per_second}"
