"""Synthetic input series for the generated rule tests: what each SLI's raw metrics look like
during a healthy period and during an incident.

A *timeline* is a list of phases ``(minutes, bad)``: ``bad`` is the error ratio of the requests
(event SLIs) or 0/1 for good/bad time (time SLIs). The first sample is at minute 0; a phase of
``n`` minutes adds the samples of the next ``n`` minutes. Series are written in promtool's
expanding notation (``0+100x360 36090+90x14``), one sample per minute.

An SLA's series are its :class:`Shape`: the selectors, named once per SLA, and a *source* of
samples, the few plain values the samples depend on besides the timeline (a freshness SLA's
``maxAge``, a drift SLA's thresholds and feature count; nothing for availability or latency).
The samples of a source over a timeline are remembered: a large spec's thousands of SLAs have
a handful of sources, and the rule tests ask for every SLA's series on the same few timelines.
"""

from __future__ import annotations

from collections.abc import Mapping
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


Timeline = tuple[Phase, ...]


@dataclass(frozen=True, slots=True)
class _Requests:
    """Good and failed requests of an availability SLI (two counters)."""

    def samples(self, phases: Timeline) -> tuple[str, ...]:
        good = [(n, TOTAL_PER_MINUTE * (1 - bad)) for n, bad in phases]
        failed = [(n, TOTAL_PER_MINUTE * bad) for n, bad in phases]
        return counter(good), counter(failed)


@dataclass(frozen=True, slots=True)
class _Histogram:
    """A latency histogram: the bucket at the threshold, the ``+Inf`` bucket and the count."""

    def samples(self, phases: Timeline) -> tuple[str, ...]:
        fast = [(n, TOTAL_PER_MINUTE * (1 - bad)) for n, bad in phases]
        every = counter([(n, Fraction(TOTAL_PER_MINUTE)) for n, _ in phases])
        return counter(fast), every, every


@dataclass(frozen=True, slots=True)
class _Freshness:
    """Updated every minute while good, with data ``max_age - 30s`` old (so a long ``maxAge``
    needs no long history); updates stop at the last good sample, and one minute later the age
    is past ``max_age``. Supports a healthy timeline or good phases followed by one bad one."""

    max_age: float

    def samples(self, phases: Timeline) -> tuple[str, ...]:
        max_age = self.max_age
        lag = Fraction(repr(max_age)) - 30 if max_age > 30 else Fraction(0)
        total = sum(n for n, _ in phases)
        good = sum(n for n, bad in phases if not bad) if phases[-1][1] else total
        values = f"{decimal(-lag)}+60x{good}"
        if good < total:
            values += f" {decimal(60 * good - lag)}+0x{total - good - 1}"
        return (values,)


@dataclass(frozen=True, slots=True)
class _Drift:
    """Every monitored feature (``features`` of them) well below both thresholds; the first one
    above both while bad."""

    features: int
    threshold: float
    model_threshold: float | None

    def samples(self, phases: Timeline) -> tuple[str, ...]:
        limits = [Fraction(repr(self.threshold))]
        if self.model_threshold is not None:
            limits.append(Fraction(repr(self.model_threshold)))
        low, high = min(limits) / 4, max(limits) * 2
        first = gauge([(n, high if bad else low) for n, bad in phases])
        rest = gauge([(n, low) for n, _ in phases]) if self.features > 1 else ""
        return (first,) + (rest,) * (self.features - 1)


@dataclass(frozen=True, slots=True)
class _Ratio:
    """A custom ratio's candidate series, solving its linear model per phase (``synth.py``);
    no samples when a phase has no solution."""

    errors: str
    total: str

    def samples(self, phases: Timeline) -> tuple[str, ...]:
        model = synth.ratio_model(self.errors, self.total)
        if model is None:
            return ()
        solutions: list[tuple[Fraction, ...]] = []
        for _, bad in phases:
            rates = model.rates(bad)
            if rates is None:
                return ()
            solutions.append(rates)
        per_series = zip(*solutions, strict=True)  # each candidate's rate in each phase
        return tuple(counter(_per_minute(phases, rates)) for rates in per_series)


def _per_minute(phases: Timeline, rates: tuple[Fraction, ...]) -> list[tuple[int, Fraction]]:
    """A candidate's increments per minute in each phase (its rate x the total per minute)."""
    return [(n, TOTAL_PER_MINUTE * rate) for (n, _), rate in zip(phases, rates, strict=True)]


_Source = _Requests | _Histogram | _Freshness | _Drift | _Ratio


@lru_cache(maxsize=1 << 10)
def _samples(source: _Source, phases: Timeline) -> tuple[str, ...]:
    """The promtool values of each series of ``source`` over ``phases``, remembered (a pure
    function of numbers: equal sources share it, whatever their names)."""
    return source.samples(phases)


@dataclass(frozen=True, slots=True)
class Shape:
    """The series of one SLA's SLI apart from the timeline: their selectors, in order, and
    the source of their samples (None when they cannot be synthesised)."""

    selectors: tuple[str, ...]
    source: _Source | None

    def series(self, phases: Timeline) -> list[Series]:
        """The series over ``phases``; [] when there are none or the timeline has no
        solution (a custom ratio that cannot reach a phase's error ratio)."""
        if self.source is None or not self.selectors:
            return []
        return self.with_samples(_samples(self.source, phases))

    def with_samples(self, values: tuple[str, ...]) -> list[Series]:
        """The series given the samples of the source ([] for no samples)."""
        return list(zip(self.selectors, values, strict=True)) if values else []


def series_over(shapes: Mapping[str, Shape], phases: Timeline) -> dict[str, list[Series]]:
    """:meth:`Shape.series` of each of ``shapes`` over one timeline, the samples of each
    distinct source taken once (thousands of SLAs have a handful of sources, and finding a
    timeline in :func:`_samples` hashes its fractions)."""
    samples: dict[_Source, tuple[str, ...]] = {}
    found: dict[str, list[Series]] = {}
    for key, shape in shapes.items():
        source = shape.source
        if source is None or not shape.selectors:
            found[key] = []
            continue
        values = samples.get(source)
        if values is None:
            values = samples[source] = _samples(source, phases)
        found[key] = shape.with_samples(values)
    return found


_NONE = Shape((), None)


def shape(system: ir.System, sla: ir.Sla) -> Shape:
    """The series ``sla``'s SLI reads in ``system``."""
    indicator, namespace = sla.indicator, system.environment.namespace
    if indicator.kind == "ratio":
        return _ratio(indicator)
    subject = sla.subject or ""
    if indicator.kind == "freshness":
        selector = sli.freshness_selector(namespace, subject)
        return Shape((selector,), _Freshness(indicator.max_age_seconds or 0))
    model = system.models[subject]
    if indicator.kind == "drift":
        return _drift(namespace, model, indicator.drift_threshold or 0)
    if indicator.kind == "latency":
        return _latency(model, namespace, indicator.latency_threshold_seconds or 0)
    return _availability(model, namespace)


def _availability(model: ir.Model, namespace: str) -> Shape:
    kind = _REQUESTS[model.runtime]
    base = _selector_labels(runtimes.runtime(model.runtime), model.name, namespace)
    good = _text(kind.good_metric, base | kind.good)
    bad = _text(kind.bad_metric, base | kind.bad)
    return Shape((good, bad), _Requests())


def _latency(model: ir.Model, namespace: str, threshold: float) -> Shape:
    preset = runtimes.runtime(model.runtime)
    histogram = preset.latency
    if histogram is None:
        return _NONE
    base = _selector_labels(preset, model.name, namespace)
    boundary = presets.le_value(histogram, threshold)
    selectors = (
        _text(f"{histogram.metric}_bucket", base | {"le": boundary}),
        _text(f"{histogram.metric}_bucket", base | {"le": "+Inf"}),
        _text(f"{histogram.metric}_count", base),
    )
    return Shape(selectors, _Histogram())


def _ratio(indicator: ir.Indicator) -> Shape:
    """The candidates of the custom ratio's linear model, or no series when it has none."""
    fixed = sli.sli_of_custom(indicator)
    errors, total = fixed.errors.replace(WINDOW, "5m"), fixed.total.replace(WINDOW, "5m")
    model = synth.ratio_model(errors, total)
    if model is None:
        return _NONE
    selectors = tuple(synth.series_text(candidate) for candidate in model.candidates)
    return Shape(selectors, _Ratio(errors, total))


def _drift(namespace: str, model: ir.Model, threshold: float) -> Shape:
    features = model.drift.features if model.drift else ("feature",)
    selectors = tuple(
        _text(sli.DRIFT_GAUGE, {"namespace": namespace, "model": model.name, "feature": feature})
        for feature in features
    )
    model_threshold = model.drift.threshold if model.drift else None
    return Shape(selectors, _Drift(len(features), threshold, model_threshold))


def series_for(system: ir.System, sla: ir.Sla, phases: list[Phase]) -> list[Series]:
    """The raw series of ``sla``'s SLI over ``phases``; [] when they cannot be synthesised."""
    return shape(system, sla).series(tuple(phases))
