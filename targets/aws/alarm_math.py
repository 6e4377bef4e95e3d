"""Service level indicators as CloudWatch metric math, and the burn-rate alarm windows.

The budget maths are shared with the Prometheus rules (``targets/slo.py``): the same pairs of
windows, the same factors scaled for SLO windows other than 30 days, the same dropped pairs.
Only the way a window's error ratio is computed differs. CloudWatch has no range functions in
alarm metric math, so **one window is one datapoint**: a metric alarm whose metrics all have
``period`` = the window (5m = 300 s ... 3d = 259200 s), ``evaluationPeriods`` 1,
``datapointsToAlarm`` 1, on the default *sliding* evaluation window. Its only datapoint is the
ratio over the last ``window`` - what Prometheus' ``rate()`` over ``[window]`` computes. The
limits of ``PutMetricAlarm`` hold for every window: periods are multiples of 60 s, period ×
evaluationPeriods is at most 86400 s below one-hour periods and at most 604800 s from one hour up
(:func:`valid_evaluation`).

Each SLI is a :class:`Signal`: the metrics it reads, the id that counts its events, and the
expression of the *bad fraction* (0 to 1). The alarm's returned expression is the burn rate::

    IF(<count> > 0, (<bad fraction>) / <budget>, 0)

compared ``GreaterThanThreshold`` with the pair's factor (14.4, 6, 3, 1 at 30 days), with
``treatMissingData: notBreaching``: no events is no burn (an idle endpoint never pages; the
traffic-floor alarm covers an endpoint that stops answering).

* **availability**: ``AWS/SageMaker`` ``Invocations`` and ``Invocation5XXErrors`` (Sum), bad
  fraction ``FILL(err,0)/inv``;
* **latency**: ``ModelLatency`` (microseconds) with the percentile-rank statistic
  ``PR(:t)``, the percentage of requests at or under ``t`` = threshold in seconds × 1,000,000
  (the spec's milliseconds × 1000; inclusive, like Prometheus' ``le`` bucket); bad fraction
  ``(100-good)/100`` - the faithful mapping of "objective % of requests under the threshold",
  not an approximation through p99. ``ModelLatency`` is the model container's time; SageMaker's
  own ``OverheadLatency`` is not part of the SLI;
* **freshness** and **drift**: SageMaker has no such metric. The user's pipeline publishes
  custom metrics in the namespace ``mlplane/<system>`` (the *metric contract*), **one datapoint
  per minute** per dimension set, unsummarised (percentile statistics need raw values):

  ``DataAgeSeconds`` {``DataSource``}
      seconds since the newest successful update of the data source;
  ``DriftScore`` {``Model``, ``Feature``}
      the latest drift score of one monitored feature (dashboards);
  ``DriftScore`` {``Model``}
      the highest score over the model's monitored features (the SLA and the drift alarm).

  A time SLI is the fraction of bad *minutes*: with one datapoint per minute,
  ``PR(:maxAge)`` (or ``PR(:threshold)``) over a window is the share of good minutes, so the
  bad fraction is ``(100-good)/100``, as Prometheus' ``avg_over_time`` of the 0/1 series (which
  counts one more sample, both ends of the range: at most a minute apart). A plain threshold
  would fire on the first stale minute and ignore the objective; the ratio spends a budget.

What needs a real account to verify (the target README quotes this list):

* ``PR(:t)`` and ``p99`` on ``ModelLatency`` of a SageMaker endpoint, and ``PR(:t)`` on the raw
  custom metrics of the contract, inside alarm metric math;
* that ``PutMetricAlarm`` takes metric-math metrics with a 259200 s (3d) period, and that
  alarms with 6h, 1d and 3d periods are evaluated every minute on the sliding window (the
  evaluation cadence of long-period alarms is not documented);
* ``FILL(err,0)`` when a window has no ``Invocation5XXErrors`` datapoint, and whether SageMaker
  publishes zeros or nothing for an idle endpoint (either keeps the burn alarms quiet);
* how many minutes SageMaker's metrics lag behind (a page fires that much later than the maths
  here and the tests say);
* that CloudWatch's publish to the topic carries ``aws:SourceArn``/``aws:SourceAccount`` (the
  topic policy's conditions) and that the topics' KMS key policy admits
  ``cloudwatch.amazonaws.com``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mlplane.compiler.core import ir
from mlplane.targets import slo

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
INVOCATIONS = "Invocations"
ERRORS_5XX = "Invocation5XXErrors"
MODEL_LATENCY = "ModelLatency"
"""Microseconds (SageMaker's ``ModelLatency`` unit)."""
MICROSECONDS = Decimal(1_000_000)

DATA_AGE = "DataAgeSeconds"
DRIFT_SCORE = "DriftScore"

BURN_ID = "burn"
"""The id of the returned expression of every burn-rate alarm."""

_MAX_PERIOD_BELOW_HOUR = 86_400
_MAX_PERIOD = 604_800


def custom_namespace(system: str) -> str:
    """The namespace of the metric contract: ``mlplane/<system>``."""
    return f"mlplane/{system}"


@dataclass(frozen=True, slots=True)
class MetricStat:
    """One metric of a metric-math alarm, without its period."""

    id: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, Any], ...]
    """Name and value; a value may be a reference marker (the new endpoint configuration's
    name, known only at deployment)."""
    stat: str

    def query(self, period: int) -> dict[str, Any]:
        """The ``metricQueries`` entry (wire form) reading this metric over ``period`` seconds."""
        metric = {
            "namespace": self.namespace,
            "metricName": self.metric,
            "dimensions": dict(self.dimensions),
            "period": period,
            "stat": self.stat,
        }
        return {"id": self.id, "metric": metric, "returnData": False}


_STATISTICS = frozenset({"SampleCount", "Average", "Sum", "Minimum", "Maximum"})


def simple_alarm(metric: MetricStat, period: int, evaluation_periods: int) -> dict[str, Any]:
    """The inputs of an alarm on one metric (no metric math); every period must breach."""
    statistic = (
        {"statistic": metric.stat}
        if metric.stat in _STATISTICS
        else {"extendedStatistic": metric.stat}
    )
    return {
        "namespace": metric.namespace,
        "metricName": metric.metric,
        "dimensions": dict(metric.dimensions),
        **statistic,
        "period": period,
        "evaluationPeriods": evaluation_periods,
        "datapointsToAlarm": evaluation_periods,
    }


@dataclass(frozen=True, slots=True)
class Signal:
    """An SLI in metric math: its metrics, the id counting events, the bad-fraction expression."""

    metrics: tuple[MetricStat, ...]
    count: str
    bad: str


def endpoint_dimensions(endpoint: str, variant: str) -> tuple[tuple[str, str], ...]:
    return (("EndpointName", endpoint), ("VariantName", variant))


def fleet_dimensions(endpoint: str, variant: str, config: Any) -> tuple[tuple[str, Any], ...]:
    """The variant's metrics from the fleet of one endpoint configuration only: during a
    blue/green deployment SageMaker publishes them with ``EndpointConfigName`` of the new (green)
    configuration, so an alarm on them watches the new fleet and not the old one (which would
    abort a good deployment for the old fleet's errors, and dilute the new fleet's)."""
    return (*endpoint_dimensions(endpoint, variant), ("EndpointConfigName", config))


def microseconds(seconds: float) -> str:
    """A latency threshold in seconds as ``ModelLatency`` microseconds (0.1 -> ``100000``)."""
    return slo.number(Decimal(repr(seconds)) * MICROSECONDS)


def availability(endpoint: str, variant: str, config: Any = None) -> Signal:
    """5XX share of the variant; of the fleet of endpoint configuration ``config`` if given."""
    dims = (
        endpoint_dimensions(endpoint, variant)
        if config is None
        else fleet_dimensions(endpoint, variant, config)
    )
    inv = MetricStat("inv", SAGEMAKER_NAMESPACE, INVOCATIONS, dims, "Sum")
    err = MetricStat("err", SAGEMAKER_NAMESPACE, ERRORS_5XX, dims, "Sum")
    return Signal((inv, err), "inv", "FILL(err,0)/inv")


def latency(endpoint: str, variant: str, threshold_seconds: float) -> Signal:
    """Share of requests slower than the threshold, through the percentile rank ``PR(:t)``."""
    dims = endpoint_dimensions(endpoint, variant)
    count = MetricStat("n", SAGEMAKER_NAMESPACE, MODEL_LATENCY, dims, "SampleCount")
    good = MetricStat(
        "good", SAGEMAKER_NAMESPACE, MODEL_LATENCY, dims, f"PR(:{microseconds(threshold_seconds)})"
    )
    return Signal((count, good), "n", "(100-good)/100")


def _bad_minutes(
    namespace: str, metric: str, dims: tuple[tuple[str, str], ...], limit: str
) -> Signal:
    count = MetricStat("n", namespace, metric, dims, "SampleCount")
    good = MetricStat("good", namespace, metric, dims, f"PR(:{limit})")
    return Signal((count, good), "n", "(100-good)/100")


def freshness(system: str, data_source: str, max_age_seconds: float) -> Signal:
    """Bad minutes: the published data age above ``maxAge``."""
    dims = (("DataSource", data_source),)
    return _bad_minutes(custom_namespace(system), DATA_AGE, dims, slo.number(max_age_seconds))


def drift(system: str, model: str, threshold: float) -> Signal:
    """Bad minutes: the model's highest feature drift score above ``threshold``."""
    dims = (("Model", model),)
    return _bad_minutes(custom_namespace(system), DRIFT_SCORE, dims, slo.number(threshold))


def burn_expression(signal: Signal, budget: Decimal) -> str:
    """``IF(count>0,(bad)/budget,0)``: the burn rate of the window (0 without events)."""
    return f"IF({signal.count}>0,({signal.bad})/{slo.number(budget)},0)"


def burn_queries(signal: Signal, budget: Decimal, period: int, label: str) -> list[dict[str, Any]]:
    """The ``metricQueries`` of one window: the metrics, then the returned burn rate."""
    expression = {
        "id": BURN_ID,
        "expression": burn_expression(signal, budget),
        "label": label,
        "returnData": True,
    }
    return [m.query(period) for m in signal.metrics] + [expression]


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One metric alarm of a burn-rate pair: a window and the pair's factor."""

    threshold: slo.Threshold
    window: str
    role: str
    """``long`` or ``short``."""

    @property
    def period(self) -> int:
        return slo.WINDOW_SECONDS[self.window]


def burn_windows(sla_objective: float, sla_window_seconds: float) -> tuple[BurnWindow, ...]:
    """Both windows of every pair the monitoring target alerts on for this SLA."""
    return tuple(
        BurnWindow(t, window, role)
        for t in slo.thresholds(sla_objective, sla_window_seconds)
        for window, role in ((t.pair.long, "long"), (t.pair.short, "short"))
    )


def valid_evaluation(period: int, evaluation_periods: int) -> bool:
    """Whether ``PutMetricAlarm`` accepts this period and number of periods (standard
    resolution: multiples of 60 s; at most one day in total below one-hour periods, else at
    most seven days)."""
    if period < 60 or period % 60 or evaluation_periods < 1:
        return False
    limit = _MAX_PERIOD_BELOW_HOUR if period < 3600 else _MAX_PERIOD
    return period * evaluation_periods <= limit


DEFAULT_ROLLBACK_ERROR_RATIO = Decimal("0.05")
MAX_ROLLBACK_ERROR_RATIO = Decimal("0.5")


def rollback_error_ratio(slas: Iterable[ir.Sla]) -> Decimal:
    """The 5XX ratio a deployment rolls back at: the fast-burn page ratio (the 1h/5m pair) of
    the strictest availability SLA, capped at 50 %; 5 % without one (a canary failing one
    request in twenty is not fit to take all traffic)."""
    ratios = [
        t.ratio
        for s in slas
        for t in slo.thresholds(s.objective, s.window_seconds)
        if t.pair == slo.PAIRS[0]
    ]
    if not ratios:
        return DEFAULT_ROLLBACK_ERROR_RATIO
    return min(*ratios, MAX_ROLLBACK_ERROR_RATIO)


def partition(region: str) -> str:
    """The ARN partition of a region."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def alarm_arn(region: str, account: str, name: str) -> str:
    """The ARN of an alarm: alarm names are static, so their ARNs are known before deployment."""
    return f"arn:{partition(region)}:cloudwatch:{region}:{account}:alarm:{name}"
