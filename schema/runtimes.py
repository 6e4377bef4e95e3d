"""Metric facts of the serving runtimes a model's ``runtime`` names: the metrics presets.

Why here, in the language layer: whether ``latency: {threshold: 30ms}`` makes sense depends on the
histogram buckets the model's runtime exposes, and the compiler must reject a threshold that no
bucket boundary matches *at the spec line*, before any target runs. The schema layer may not
import ``targets/``, so the facts (metric names, label names, units, bucket boundaries) live here
and ``targets/monitoring/presets.py`` builds PromQL from them.

Every fact was looked up in the runtime's own source or documentation (``Runtime.sources``), not
guessed. Bucket boundaries are kept in whole milliseconds, the smallest unit of a spec duration,
so comparing a threshold with a boundary is exact integer arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

LabelMatcher = tuple[str, Literal["=", "=~"], str]
"""A label matcher ``(name, operator, value)``; value templates may use ``{model}`` and
``{namespace}``, which the monitoring target fills with names the schema has validated."""


@dataclass(frozen=True, slots=True)
class RequestCounters:
    """Counters that count requests: all of them, and the failed ones."""

    total: tuple[str, ...]
    """Metric names whose sum is every request (Triton counts successes and failures apart)."""
    errors: str
    """Metric name of failed requests."""
    error_matchers: tuple[LabelMatcher, ...]
    """Extra matchers that narrow ``errors`` to the failed requests (empty when the metric
    counts only failures)."""


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """A classic (bucketed) Prometheus histogram of request latency."""

    metric: str
    """Base name: the series are ``<metric>_bucket{le=…}`` and ``<metric>_count``."""
    unit: Literal["seconds", "milliseconds"]
    boundaries_ms: tuple[int, ...]
    """The ``le`` bucket boundaries, in milliseconds (the +Inf bucket left out)."""


@dataclass(frozen=True, slots=True)
class HandlingTime:
    """A counter of the time spent handling requests, summed over requests: its rate is the
    mean number of requests in flight over the window (Little's law), which the runtimes
    export where none exports a gauge of them."""

    metric: str
    units_per_second: int
    """How many of the counter's units make a second (1, 1000 for milliseconds, 1000000 for
    microseconds)."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """One metrics preset."""

    name: str
    title: str
    selector: tuple[LabelMatcher, ...]
    """Matchers that select one model's series in one namespace."""
    requests: RequestCounters
    latency: LatencyHistogram | None
    no_latency_reason: str | None
    """Why the runtime has no latency SLI (set exactly when ``latency`` is None)."""
    handling_time: HandlingTime
    sources: tuple[str, ...]


# client_golang's DefBuckets; client_python's DEFAULT_BUCKETS holds the same boundaries plus
# 75ms, 750ms and 7.5s, which a Go service would not expose, so they are not offered.
_CLIENT_DEFAULT_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

# Knative queue-proxy's defaultLatencyDistribution (milliseconds).
_KNATIVE_BUCKETS_MS = (
    5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600,
    700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
)  # fmt: skip

GENERIC = Runtime(
    name="generic",
    title="Prometheus client library defaults (http_requests_total, http_request_duration_seconds)",
    selector=(("namespace", "=", "{namespace}"), ("job", "=", "{model}")),
    requests=RequestCounters(
        total=("http_requests_total",),
        errors="http_requests_total",
        error_matchers=(("code", "=~", "5.."),),
    ),
    latency=LatencyHistogram(
        "http_request_duration_seconds", "seconds", _CLIENT_DEFAULT_BUCKETS_MS
    ),
    no_latency_reason=None,
    handling_time=HandlingTime("http_request_duration_seconds_sum", 1),
    sources=(
        "https://github.com/prometheus/client_golang/blob/main/prometheus/histogram.go (DefBuckets)",
        "https://github.com/prometheus/client_python/blob/master/prometheus_client/metrics.py "
        "(Histogram.DEFAULT_BUCKETS)",
    ),
)

KSERVE = Runtime(
    name="kserve",
    title="KServe serverless (Knative queue-proxy revision_app_request_*)",
    selector=(("namespace_name", "=", "{namespace}"), ("service_name", "=", "{model}-predictor")),
    requests=RequestCounters(
        total=("revision_app_request_count",),
        errors="revision_app_request_count",
        error_matchers=(("response_code_class", "=", "5xx"),),
    ),
    latency=LatencyHistogram("revision_app_request_latencies", "milliseconds", _KNATIVE_BUCKETS_MS),
    no_latency_reason=None,
    handling_time=HandlingTime("revision_app_request_latencies_sum", 1000),
    sources=(
        "https://knative.dev/docs/serving/services/service-metrics/ (queue proxy metrics)",
        "https://github.com/knative/serving/blob/main/pkg/queue/request_metric.go "
        "(defaultLatencyDistribution, app_request_count, app_request_latencies)",
        "https://github.com/kserve/kserve/blob/master/pkg/constants/constants.go "
        "(PredictorServiceName: <name>-predictor)",
    ),
)

TRITON = Runtime(
    name="triton",
    title="NVIDIA Triton Inference Server (nv_inference_request_success/failure)",
    selector=(("namespace", "=", "{namespace}"), ("model", "=", "{model}")),
    requests=RequestCounters(
        total=("nv_inference_request_success", "nv_inference_request_failure"),
        errors="nv_inference_request_failure",
        error_matchers=(),
    ),
    latency=None,
    no_latency_reason=(
        "Triton exposes no request-latency histogram: nv_inference_request_duration_us is a "
        "cumulative counter (an average, not a distribution), its summaries are opt-in and "
        "cannot be aggregated, and its only histogram (nv_inference_first_response_histogram_ms, "
        "opt-in) times the first response of decoupled models"
    ),
    handling_time=HandlingTime("nv_inference_request_duration_us", 1_000_000),
    sources=(
        "https://github.com/triton-inference-server/server/blob/main/docs/user_guide/metrics.md",
        "https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/user_guide/metrics.html",
    ),
)

RUNTIMES: dict[str, Runtime] = {r.name: r for r in (GENERIC, KSERVE, TRITON)}


def runtime(name: str) -> Runtime:
    """The preset called ``name``; ``KeyError`` for a name the schema would have rejected."""
    return RUNTIMES[name]


def format_ms(milliseconds: int) -> str:
    """A duration in spec syntax, largest units first: 5ms, 2500ms, 1s, 1m40s."""
    if milliseconds % 1000:
        return f"{milliseconds}ms"
    seconds = milliseconds // 1000
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount)


def allowed_latency_thresholds(name: str) -> tuple[str, ...]:
    """The thresholds a latency SLA on runtime ``name`` may use, in spec syntax."""
    histogram = RUNTIMES[name].latency
    return tuple(format_ms(ms) for ms in histogram.boundaries_ms) if histogram else ()


def threshold_ms(threshold_seconds: float) -> int | None:
    """``threshold_seconds`` in whole milliseconds, or None when it is not a whole number of them."""
    milliseconds = threshold_seconds * 1000
    rounded = round(milliseconds)
    return rounded if math.isclose(milliseconds, rounded, abs_tol=1e-6) else None


def latency_threshold_problem(runtime_name: str, threshold_seconds: float) -> str | None:
    """Why a latency SLA with this threshold cannot be measured on ``runtime_name``, or None.

    A histogram answers "how many requests took at most X" only where X is a bucket boundary;
    anywhere else the ratio would be an interpolation that silently over- or under-counts, so
    the threshold must be one of the boundaries, and the message lists them.
    """
    preset = RUNTIMES.get(runtime_name)
    if preset is None:
        return f"unknown runtime {runtime_name!r}; known: {', '.join(sorted(RUNTIMES))}"
    if preset.latency is None:
        return (
            f"runtime {runtime_name!r} has no latency SLI: {preset.no_latency_reason}; "
            "measure latency with a 'ratio' indicator over a histogram you export, "
            "or serve the model with runtime 'generic' or 'kserve'"
        )
    milliseconds = threshold_ms(threshold_seconds)
    if milliseconds in preset.latency.boundaries_ms:
        return None
    shown = format_ms(milliseconds) if milliseconds else f"{threshold_seconds}s"
    return (
        f"latency threshold {shown} is not a bucket boundary of the {runtime_name!r} runtime's "
        f"{preset.latency.metric} histogram; choose one of "
        + ", ".join(allowed_latency_thresholds(runtime_name))
    )
