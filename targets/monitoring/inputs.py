"""Synthetic input series for the generated rule tests: what each SLI's raw metrics look like
during a healthy period and during an incident.

A *timeline* is a list of phases ``(minutes, bad)``: ``bad`` is the error ratio of the requests
(event SLIs) or 0/1 for good/bad time (time SLIs). The first sample is at minute 0; a phase of
``n`` minutes adds the samples of the next ``n`` minutes. Series are written in promtool's
expanding notation (``0+100x360 36090+90x14``), one sample per minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from mlplane.compiler.core import ir
from mlplane.schema import runtimes
from mlplane.targets.monitoring import presets, promql, sli, synth
from mlplane.targets.monitoring.presets import WINDOW

Phase = tuple[int, Fraction]
Series = tuple[str, str]
"""``(series selector text, promtool values)``."""

TOTAL_PER_MINUTE = 10_000
"""Requests per minute in every synthetic timeline: large enough that ratios like 0.0432 are
whole numbers of requests."""


@dataclass(frozen=True, slots=True)
class _Labels:
    good_metric: str
    good: dict[str, str]
    bad_metric: str
    bad: dict[str, str]


# What a successful and a failed request look like on each runtime (beyond the model selector).
_REQUESTS: dict[str, _Labels] = {
    "generic": _Labels("http_requests_total", {"code": "200"}, "http_requests_total", {"code": "500"}),
    "kserve": _Labels(
        "revision_app_request_count", {"response_code": "200", "response_code_class": "2xx"},
        "revision_app_request_count", {"response_code": "500", "response_code_class": "5xx"},
    ),
    "triton": _Labels(
        "nv_inference_request_success", {"version": "1"},
        "nv_inference_request_failure", {"reason": "BACKEND", "version": "1"},
    ),
}  # fmt: skip


def decimal(value: Fraction) -> str:
    """A Fraction as promtool-readable decimal text (at most 6 decimals)."""
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text or "0"


def counter(increments: list[tuple[int, Fraction]]) -> str:
    """Values of a counter starting at 0 that grows by ``inc`` per minute for ``n`` minutes, per
    segment."""
    return _counter(tuple(increments))


@lru_cache(maxsize=1 << 12)
def _counter(increments: tuple[tuple[int, Fraction], ...]) -> str:
    """:func:`counter`, remembered: the SLAs of a large spec share a few timelines, and each
    costs exact fractions (the text depends only on the numbers)."""
    parts: list[str] = []
    value = Fraction(0)
    for index, (minutes, inc) in enumerate(increments):
        if minutes <= 0:
            continue
        if index == 0:
            parts.append(f"0+{decimal(inc)}x{minutes}")
            value = inc * minutes
            continue
        start = value + inc
        parts.append(f"{decimal(start)}+{decimal(inc)}x{minutes - 1}")
        value = start + inc * (minutes - 1)
    return " ".join(parts)


def gauge(levels: list[tuple[int, Fraction]]) -> str:
    """A gauge holding ``level`` for each phase (the first phase also gives minute 0)."""
    return _gauge(tuple(levels))


@lru_cache(maxsize=1 << 12)
def _gauge(levels: tuple[tuple[int, Fraction], ...]) -> str:
    """:func:`gauge`, remembered (as :func:`counter`)."""
    parts = []
    for index, (minutes, level) in enumerate(levels):
        count = minutes if index == 0 else minutes - 1
        if minutes > 0:
            parts.append(f"{decimal(level)}+0x{count}")
    return " ".join(parts)


def _selector_labels(runtime: runtimes.Runtime, model: str, namespace: str) -> dict[str, str]:
    values = {"model": model, "namespace": namespace}
    return {name: template.format(**values) for name, _, template in runtime.selector}


def _text(metric: str, labels: dict[str, str]) -> str:
    return promql.selector(metric, [promql.matcher(k, "=", v) for k, v in sorted(labels.items())])


def availability(
    runtime_name: str, model: str, namespace: str, phases: list[Phase]
) -> list[Series]:
    shape = _REQUESTS[runtime_name]
    base = _selector_labels(runtimes.runtime(runtime_name), model, namespace)
    good = [(n, TOTAL_PER_MINUTE * (1 - bad)) for n, bad in phases]
    failed = [(n, TOTAL_PER_MINUTE * bad) for n, bad in phases]
    return [
        (_text(shape.good_metric, base | shape.good), counter(good)),
        (_text(shape.bad_metric, base | shape.bad), counter(failed)),
    ]


def latency(
    runtime_name: str, model: str, namespace: str, threshold: float, phases: list[Phase]
) -> list[Series]:
    preset = runtimes.runtime(runtime_name)
    histogram = preset.latency
    if histogram is None:
        return []
    base = _selector_labels(preset, model, namespace)
    boundary = presets.le_value(histogram, threshold)
    fast = [(n, TOTAL_PER_MINUTE * (1 - bad)) for n, bad in phases]
    every = [(n, Fraction(TOTAL_PER_MINUTE)) for n, _ in phases]
    return [
        (_text(f"{histogram.metric}_bucket", base | {"le": boundary}), counter(fast)),
        (_text(f"{histogram.metric}_bucket", base | {"le": "+Inf"}), counter(every)),
        (_text(f"{histogram.metric}_count", base), counter(every)),
    ]


def custom_ratio(indicator: ir.Indicator, phases: list[Phase]) -> list[Series]:
    """Series solving the custom ratio's linear model per phase, or [] when it has none."""
    fixed = sli.sli_of_custom(indicator)
    model = synth.ratio_model(fixed.errors.replace(WINDOW, "5m"), fixed.total.replace(WINDOW, "5m"))
    if model is None:
        return []
    solutions: list[tuple[Fraction, ...]] = []
    for _, bad in phases:
        rates = model.rates(bad)
        if rates is None:
            return []
        solutions.append(rates)
    per_series = zip(*solutions, strict=True)  # each candidate's rate in each phase
    return [
        (synth.series_text(candidate), counter(_per_minute(phases, rates)))
        for candidate, rates in zip(model.candidates, per_series, strict=True)
    ]


def _per_minute(phases: list[Phase], rates: tuple[Fraction, ...]) -> list[tuple[int, Fraction]]:
    """A candidate's increments per minute in each phase (its rate x the total per minute)."""
    return [(n, TOTAL_PER_MINUTE * rate) for (n, _), rate in zip(phases, rates, strict=True)]


def freshness(
    namespace: str, data_source: str, max_age: float, phases: list[Phase]
) -> list[Series]:
    """Updated every minute while good, with data ``max_age - 30s`` old (so a long ``maxAge``
    needs no long history); updates stop at the last good sample, and one minute later the age
    is past ``max_age``. Supports a healthy timeline or good phases followed by one bad one."""
    lag = Fraction(repr(max_age)) - 30 if max_age > 30 else Fraction(0)
    total = sum(n for n, _ in phases)
    good = sum(n for n, bad in phases if not bad) if phases[-1][1] else total
    values = f"{decimal(-lag)}+60x{good}"
    if good < total:
        values += f" {decimal(60 * good - lag)}+0x{total - good - 1}"
    return [(sli.freshness_selector(namespace, data_source), values)]


def drift(namespace: str, model: ir.Model, threshold: float, phases: list[Phase]) -> list[Series]:
    """Every monitored feature well below both thresholds; the first one above both while bad."""
    features = model.drift.features if model.drift else ("feature",)
    limits = [Fraction(repr(threshold))] + (
        [Fraction(repr(model.drift.threshold))] if model.drift else []
    )
    low, high = min(limits) / 4, max(limits) * 2
    series = []
    for index, feature in enumerate(features):
        labels = {"namespace": namespace, "model": model.name, "feature": feature}
        levels = [(n, high if bad and index == 0 else low) for n, bad in phases]
        series.append((_text(sli.DRIFT_GAUGE, labels), gauge(levels)))
    return series


def series_for(system: ir.System, sla: ir.Sla, phases: list[Phase]) -> list[Series]:
    """The raw series of ``sla``'s SLI over ``phases``; [] when they cannot be synthesised."""
    indicator, namespace = sla.indicator, system.environment.namespace
    if indicator.kind == "ratio":
        return custom_ratio(indicator, phases)
    subject = sla.subject or ""
    if indicator.kind == "freshness":
        return freshness(namespace, subject, indicator.max_age_seconds or 0, phases)
    model = system.models[subject]
    if indicator.kind == "drift":
        return drift(namespace, model, indicator.drift_threshold or 0, phases)
    if indicator.kind == "latency":
        return latency(
            model.runtime, model.name, namespace, indicator.latency_threshold_seconds or 0, phases
        )
    return availability(model.runtime, model.name, namespace, phases)
