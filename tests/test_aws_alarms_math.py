"""The CloudWatch burn-rate alarms behave like the Prometheus rules (issue 8's acceptance item).

A small CloudWatch simulator interprets exactly what ``targets/aws/alarms.py`` emits - the metric
math expressions, every metric's namespace, dimensions, statistic and period, the evaluation
periods, datapoints to alarm, missing-data treatment, thresholds, comparison operators and the
composite alarms' rules - read from the emitted resources, never from a second copy of the
numbers. Synthetic metrics are published one minute at a time, as SageMaker and the metric
contract do, and the scenarios are those of the Prometheus tests (``tests/promtool/`` and
``targets/monitoring/rule_tests.py``): a fast burn pages within 8-10 minutes and stops paging
soon after, a healthy endpoint stays quiet, a slow burn raises a ticket and never a page, zero
traffic fires the traffic floor and no burn alarm. The minute the page (or ticket) fires is
compared with the monitoring target's own prediction for its rules (``rule_tests.crossing``,
which ``promtool test rules`` checks on every example): the two targets page at the same minute.

Simulator conventions: the samples of minute ``m`` are those published in ``(m - 1, m]``; an
alarm evaluated at minute ``t`` with period ``P`` reads ``(t - P, t]`` (CloudWatch's default
sliding window, evaluated every minute).
"""

from __future__ import annotations

import dataclasses
import operator
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir, yamltext
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import Resource
from mlplane.targets import slo
from mlplane.targets.aws import alarm_math, alarms
from mlplane.targets.monitoring import emit, inputs, names, rule_tests
from tests.test_aws_alarms import SPEC, served_models

HISTORY = rule_tests.HISTORY_MINUTES
TOTAL = 10_000
"""Invocations per minute."""

Key = tuple[str, str, tuple[tuple[str, str], ...]]
Sample = tuple[float, float]
"""``(value, count)``: ``count`` datapoints of ``value`` published in one minute."""


# --- synthetic metrics ---------------------------------------------------------------------------


@dataclass
class Metrics:
    """Datapoints per metric and minute, with prefix sums for the additive statistics."""

    series: dict[Key, dict[int, list[Sample]]] = field(default_factory=dict)
    last: int = 0
    _prefix: dict[tuple[Key, str], list[float]] = field(default_factory=dict)

    def put(
        self,
        namespace: str,
        metric: str,
        dims: Mapping[str, str],
        minute: int,
        samples: list[Sample],
    ) -> None:
        key = (namespace, metric, tuple(sorted(dims.items())))
        self.series.setdefault(key, {})[minute] = samples
        self.last = max(self.last, minute)
        self._prefix.clear()

    def _sums(self, key: Key, stat: str) -> list[float]:
        """``sums[i]``: the statistic's numerator over minutes ``< i`` (index 0 is before 0)."""
        cached = self._prefix.get((key, stat))
        if cached is not None:
            return cached
        per_minute = self.series.get(key, {})
        sums = [0.0]
        for minute in range(self.last + 1):
            sums.append(sums[-1] + _additive(stat, per_minute.get(minute, [])))
        self._prefix[(key, stat)] = sums
        return sums

    def _between(self, key: Key, stat: str, start: int, end: int) -> float:
        sums = self._sums(key, stat)
        top = len(sums) - 1
        return sums[min(max(end + 1, 0), top)] - sums[min(max(start + 1, 0), top)]

    def statistic(self, key: Key, stat: str, start: int, end: int) -> float | None:
        """The statistic over minutes ``(start, end]``; None when no datapoint was published."""
        count = self._between(key, "SampleCount", start, end)
        if count == 0:
            return None
        if stat in ("Sum", "SampleCount"):
            return self._between(key, stat, start, end)
        if stat.startswith("PR(:"):
            return 100 * self._between(key, stat, start, end) / count
        samples = [
            s for m in range(start + 1, end + 1) for s in self.series.get(key, {}).get(m, [])
        ]
        return _direct(stat, samples)


def _additive(stat: str, samples: list[Sample]) -> float:
    if stat == "Sum":
        return sum(v * c for v, c in samples)
    if stat == "SampleCount":
        return sum(c for _, c in samples)
    limit = float(re.fullmatch(r"PR\(:([0-9.]+)\)", stat).group(1))  # type: ignore[union-attr]
    return sum(c for v, c in samples if v <= limit)


def _direct(stat: str, samples: list[Sample]) -> float:
    if stat == "Maximum":
        return max(v for v, _ in samples)
    if stat == "Minimum":
        return min(v for v, _ in samples)
    percentile = re.fullmatch(r"p([0-9.]+)", stat)
    assert percentile is not None, f"the simulator does not know statistic {stat!r}"
    wanted = float(percentile.group(1)) / 100 * sum(c for _, c in samples)
    seen = 0.0
    for value, count in sorted(samples):
        seen += count
        if seen >= wanted:
            return value
    return max(v for v, _ in samples)


# --- metric math -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|[-+*/(),<>]))")
Node = tuple[Any, ...]


def tokens(text: str) -> list[str]:
    found, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match is not None and match.end() > position, f"cannot read {text[position:]!r}"
        found.append(next(g for g in match.groups() if g is not None))
        position = match.end()
    return found


class Parser:
    """Recursive descent over the metric-math subset: numbers, ids, calls, + - * /, comparisons."""

    def __init__(self, text: str) -> None:
        self.items, self.at = tokens(text), 0

    def peek(self) -> str | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self, expected: str | None = None) -> str:
        item = self.items[self.at]
        assert expected is None or item == expected, f"expected {expected!r}, got {item!r}"
        self.at += 1
        return item

    def parse(self) -> Node:
        node = self.comparison()
        assert self.peek() is None, f"trailing {self.items[self.at :]}"
        return node

    def comparison(self) -> Node:
        left = self.binary(self.term, ("+", "-"))
        if self.peek() in (">", "<", ">=", "<="):
            op = self.take()
            return ("op", op, left, self.binary(self.term, ("+", "-")))
        return left

    def binary(self, operand: Callable[[], Node], ops: tuple[str, ...]) -> Node:
        node = operand()
        while self.peek() in ops:
            op = self.take()
            node = ("op", op, node, operand())
        return node

    def term(self) -> Node:
        return self.binary(self.unary, ("*", "/"))

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("op", "-", ("num", 0.0), self.unary())
        return self.primary()

    def primary(self) -> Node:
        item = self.take()
        if item == "(":
            node = self.comparison()
            self.take(")")
            return node
        if re.fullmatch(r"\d+(?:\.\d+)?", item):
            return ("num", float(item))
        if self.peek() == "(":
            self.take("(")
            args = [self.comparison()]
            while self.peek() == ",":
                self.take(",")
                args.append(self.comparison())
            self.take(")")
            return ("call", item, args)
        return ("id", item)


_OPS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    ">": lambda a, b: float(a > b), "<": lambda a, b: float(a < b),
    ">=": lambda a, b: float(a >= b), "<=": lambda a, b: float(a <= b),
}  # fmt: skip


def evaluate(node: Node, values: Mapping[str, float | None]) -> float | None:
    """One datapoint of the expression; None (no datapoint) propagates, as in CloudWatch."""
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "id":
        return values[node[1]]
    if kind == "call":
        return _call(node[1], node[2], values)
    left, right = evaluate(node[2], values), evaluate(node[3], values)
    return None if left is None or right is None else _OPS[node[1]](left, right)


def _call(name: str, args: list[Node], values: Mapping[str, float | None]) -> float | None:
    if name == "FILL":
        value = evaluate(args[0], values)
        return evaluate(args[1], values) if value is None else value
    assert name == "IF", f"the simulator does not know function {name}"
    condition = evaluate(args[0], values)
    if condition is None:
        return None
    return evaluate(args[1] if condition else args[2], values)


# --- alarms ----------------------------------------------------------------------------------------

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def period_minutes(inputs: Mapping[str, Any]) -> int:
    """The alarm's period: its own, or the one period every metric of its metric math uses."""
    if "metricQueries" not in inputs:
        return int(inputs["period"]) // 60
    periods = {q["metric"]["period"] for q in inputs["metricQueries"] if "metric" in q}
    assert len(periods) == 1, f"metrics of one alarm with different periods: {periods}"
    return int(periods.pop()) // 60


def _key(metric: Mapping[str, Any]) -> Key:
    return (metric["namespace"], metric["metricName"], tuple(sorted(metric["dimensions"].items())))


def datapoint(inputs: Mapping[str, Any], metrics: Metrics, end: int) -> float | None:
    period = period_minutes(inputs)
    if "metricQueries" not in inputs:
        stat = inputs.get("statistic") or inputs["extendedStatistic"]
        return metrics.statistic(_key(inputs), stat, end - period, end)
    values: dict[str, float | None] = {}
    returned = [q for q in inputs["metricQueries"] if q.get("returnData")]
    assert len(returned) == 1 and "expression" in returned[0]
    for query in inputs["metricQueries"]:
        if "metric" in query:
            metric = query["metric"]
            values[query["id"]] = metrics.statistic(_key(metric), metric["stat"], end - period, end)
    for query in inputs["metricQueries"]:
        if "expression" in query:
            values[query["id"]] = evaluate(Parser(query["expression"]).parse(), values)
    return values[returned[0]["id"]]


def metric_alarm_state(inputs: Mapping[str, Any], metrics: Metrics, minute: int) -> bool:
    """ALARM when at least ``datapointsToAlarm`` of the last ``evaluationPeriods`` breach."""
    period, count = period_minutes(inputs), int(inputs["evaluationPeriods"])
    needed = int(inputs.get("datapointsToAlarm", count))
    compare, threshold = _COMPARE[inputs["comparisonOperator"]], float(inputs["threshold"])
    breaching = 0
    for index in range(count):
        value = datapoint(inputs, metrics, minute - index * period)
        if value is None:
            breaching += inputs.get("treatMissingData", "missing") == "breaching"
        else:
            breaching += compare(value, threshold)
    return breaching >= needed


_RULE = re.compile(r'\s*(?:ALARM\("([^"]+)"\)|(AND|OR|NOT|\(|\)))')


class RuleReader:
    """A composite alarm rule: ``ALARM("name")``, NOT, AND, OR (in that precedence), parentheses."""

    def __init__(self, items: list[str], state: Callable[[str], bool]) -> None:
        self.items, self.at, self.state = items, 0, state

    def read(self) -> bool:
        value = self.any()
        assert self.at == len(self.items), self.items[self.at :]
        return value

    def _peek(self) -> str | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def any(self) -> bool:
        values = [self.all()]
        while self._peek() == "OR":
            self.at += 1
            values.append(self.all())
        return any(values)

    def all(self) -> bool:
        values = [self.one()]
        while self._peek() == "AND":
            self.at += 1
            values.append(self.one())
        return all(values)

    def one(self) -> bool:
        item = self.items[self.at]
        self.at += 1
        if item == "NOT":
            return not self.one()
        if item == "(":
            value = self.any()
            assert self.items[self.at] == ")"
            self.at += 1
            return value
        return self.state(item)


class CloudWatch:
    """The emitted alarms, by CloudWatch name."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self.alarms: dict[str, Resource] = {}
        for resource in resources:
            name = resource.inputs.get("name") or resource.inputs.get("alarmName")
            if resource.type in (alarms.METRIC_ALARM, alarms.COMPOSITE_ALARM):
                self.alarms[name] = resource

    def state(self, name: str, metrics: Metrics, minute: int) -> bool:
        resource = self.alarms[name]
        if resource.type == alarms.METRIC_ALARM:
            return metric_alarm_state(resource.inputs, metrics, minute)
        return self._rule(resource.inputs["alarmRule"], metrics, minute)

    def _rule(self, rule: str, metrics: Metrics, minute: int) -> bool:
        items = [m.group(1) or m.group(2) for m in _RULE.finditer(rule)]
        assert "".join(items) != "", rule
        return RuleReader(items, lambda name: self.state(name, metrics, minute)).read()

    def first(self, name: str, metrics: Metrics, start: int, end: int) -> int | None:
        """The first minute in ``[start, end]`` at which ``name`` is in ALARM."""
        return next((m for m in range(start, end + 1) if self.state(name, metrics, m)), None)

    def ever(self, name: str, metrics: Metrics, start: int, end: int, step: int = 1) -> bool:
        return any(self.state(name, metrics, m) for m in range(start, end + 1, step))


# --- scenarios -----------------------------------------------------------------------------------

Phase = tuple[int, Fraction]


def minutes(phases: Iterable[Phase]) -> list[Fraction]:
    """The bad share of each minute, from minute 1."""
    return [bad for count, bad in phases for _ in range(count)]


def sagemaker(
    served: alarms.ServedModel,
    errors: Iterable[Phase] = (),
    slow: Iterable[Phase] = (),
    *,
    threshold_us: float = 250_000,
    metrics: Metrics | None = None,
) -> Metrics:
    """Invocations each minute with a share of 5XX errors and of requests slower than the
    latency threshold (latencies of a quarter and of twice the threshold)."""
    found = metrics or Metrics()
    dims = {"EndpointName": served.endpoint_name, "VariantName": served.variant_name}
    error_shares, slow_shares = minutes(errors), minutes(slow)
    for index in range(max(len(error_shares), len(slow_shares))):
        minute = index + 1
        bad = error_shares[index] if index < len(error_shares) else Fraction(0)
        late = slow_shares[index] if index < len(slow_shares) else Fraction(0)
        published = {
            alarm_math.INVOCATIONS: [(float(TOTAL), 1.0)],
            alarm_math.ERRORS_5XX: [(float(bad * TOTAL), 1.0)],
            alarm_math.MODEL_LATENCY: [
                (threshold_us / 4, float((1 - late) * TOTAL)),
                (threshold_us * 2, float(late * TOTAL)),
            ],
        }
        for name, samples in published.items():
            found.put(alarm_math.SAGEMAKER_NAMESPACE, name, dims, minute, samples)
    return found


def contract(
    namespace: str,
    metric: str,
    dims: Mapping[str, str],
    good: float,
    bad: float,
    phases: Iterable[Phase],
) -> Metrics:
    """One custom-metric datapoint per minute: ``good`` while good, ``bad`` while bad."""
    found = Metrics()
    for index, share in enumerate(minutes(phases)):
        found.put(namespace, metric, dims, index + 1, [(bad if share else good, 1)])
    return found


# --- fixtures --------------------------------------------------------------------------------------


@cache
def _system(directory: Path) -> ir.System:
    result = compile_spec(directory)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    return result.systems["prod"]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> ir.System:
    directory = tmp_path_factory.mktemp("spec")
    (directory / "mlplane.yaml").write_text(SPEC, encoding="utf-8")
    return _system(directory)


@pytest.fixture(scope="module")
def lowered(system: ir.System) -> alarms.AlarmLowering:
    return alarms.lower_alarms(
        system, served_models(system), provider="aws-provider", kms_key="kms-internal",
        parent=None, diagnostics=Diagnostics(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def cloudwatch(lowered: alarms.AlarmLowering) -> CloudWatch:
    return CloudWatch(lowered.resources)


def composite(system: ir.System, sla: str, severity: str) -> str:
    return alarms.alarm_name(system, "slo", sla, severity)


def prometheus_minute(
    sla: ir.Sla, severity: str, bad: Fraction, time_sli: bool = False
) -> int | None:
    """The minute into the incident at which the Prometheus alert of ``severity`` fires."""
    chosen = tuple(
        t for t in slo.thresholds(sla.objective, sla.window_seconds) if t.pair.severity == severity
    )
    return rule_tests.crossing(chosen, bad, HISTORY, time_sli)


def checkout(system: ir.System) -> alarms.ServedModel:
    return served_models(system)["checkout"]


# --- availability -------------------------------------------------------------------------------------


def test_fast_burn_pages_within_eight_to_ten_minutes_and_stops_soon_after(
    system: ir.System, cloudwatch: CloudWatch
) -> None:
    """tests/promtool/availability.test.yaml: 10 % errors from 361m to 375m on 99.9 %/30d."""
    metrics = sagemaker(
        checkout(system), [(HISTORY, Fraction(0)), (15, Fraction(1, 10)), (44, Fraction(0))]
    )
    page = composite(system, "checkout-availability", "page")
    assert not cloudwatch.state(page, metrics, HISTORY + 8)
    assert cloudwatch.state(page, metrics, HISTORY + 10)
    assert not cloudwatch.state(page, metrics, HISTORY + 22)
    fired = cloudwatch.first(page, metrics, HISTORY + 1, HISTORY + 15)
    assert fired is not None
    assert (
        fired - HISTORY
        == prometheus_minute(system.slas["checkout-availability"], "page", Fraction(1, 10))
        == 9
    )


def test_healthy_endpoint_raises_nothing(
    system: ir.System, lowered: alarms.AlarmLowering, cloudwatch: CloudWatch
) -> None:
    """0.05 % errors (half the budget rate) for 7 hours: no alarm of the model at all."""
    metrics = sagemaker(checkout(system), [(420, Fraction(5, 10_000))])
    quiet = [
        name
        for name, resource in cloudwatch.alarms.items()
        if "/checkout-" in name or "/checkout/" in name
        if "drift" not in name and "fresh" not in name
    ]
    assert len(quiet) > 20
    for name in quiet:
        assert not cloudwatch.ever(name, metrics, 60, 420, step=60), name


def test_slow_burn_raises_a_ticket_and_never_a_page(
    system: ir.System, cloudwatch: CloudWatch
) -> None:
    """0.2 % errors (burn rate 2) after 6 healthy hours: the 3d/6h ticket, as Prometheus's."""
    sla = system.slas["checkout-availability"]
    bad = Fraction(2, 1000)
    metrics = sagemaker(checkout(system), [(HISTORY, Fraction(0)), (400, bad)])
    ticket = composite(system, sla.name, "ticket")
    fired = cloudwatch.first(ticket, metrics, HISTORY + 1, HISTORY + 400)
    assert fired is not None
    assert fired - HISTORY == prometheus_minute(sla, "ticket", bad)
    assert 700 < fired < 740  # the promtool test's window
    assert not cloudwatch.ever(
        composite(system, sla.name, "page"), metrics, HISTORY, HISTORY + 400, step=5
    )


def test_zero_traffic_fires_only_the_traffic_floor(
    system: ir.System, lowered: alarms.AlarmLowering, cloudwatch: CloudWatch
) -> None:
    metrics = sagemaker(checkout(system), [(HISTORY, Fraction(0))])
    idle_from = HISTORY
    floor = alarms.alarm_name(system, "model", "checkout", "traffic-floor")
    assert not cloudwatch.state(floor, metrics, idle_from)
    assert not cloudwatch.state(floor, metrics, idle_from + 14)
    assert cloudwatch.state(floor, metrics, idle_from + 15)
    for name in (
        composite(system, s, sev)
        for s in ("checkout-availability", "checkout-weekly", "checkout-latency")
        for sev in ("page", "ticket")
    ):
        assert not cloudwatch.ever(name, metrics, idle_from, idle_from + 120, step=10), name
    for name in lowered.rollback_alarm_names["checkout"]:
        assert not cloudwatch.ever(name, metrics, idle_from, idle_from + 30), name


@pytest.mark.parametrize("sla_name", ["checkout-availability", "checkout-weekly"])
@pytest.mark.parametrize("share", [Fraction(1, 10), Fraction(5, 100), Fraction(1, 100)])
def test_page_minute_agrees_with_the_prometheus_rules(
    system: ir.System, cloudwatch: CloudWatch, sla_name: str, share: Fraction
) -> None:
    """Several error shares on a 30-day and on a 7-day SLO (factors scaled like the rules)."""
    sla = system.slas[sla_name]
    expected = prometheus_minute(sla, "page", share)
    assert expected is not None
    metrics = sagemaker(checkout(system), [(HISTORY, Fraction(0)), (400, share)])
    fired = cloudwatch.first(
        composite(system, sla_name, "page"), metrics, HISTORY + 1, HISTORY + 400
    )
    assert (None if fired is None else fired - HISTORY) == expected


def test_a_wrong_threshold_in_the_emitted_alarm_breaks_the_agreement(
    system: ir.System, lowered: alarms.AlarmLowering
) -> None:
    """The simulator reads the emitted numbers: doubling the 1h factor moves the page."""
    one_hour = "alarm-slo.checkout-availability.1h-5m.1h"
    broken = [
        dataclasses.replace(r, inputs={**r.inputs, "threshold": r.inputs["threshold"] * 2})
        if r.name == one_hour
        else r
        for r in lowered.resources
    ]
    metrics = sagemaker(checkout(system), [(HISTORY, Fraction(0)), (60, Fraction(1, 10))])
    page = composite(system, "checkout-availability", "page")
    fired = CloudWatch(broken).first(page, metrics, HISTORY + 1, HISTORY + 60)
    assert fired is not None and fired - HISTORY != 9


# --- latency, freshness, drift ------------------------------------------------------------------------------


def test_latency_burn_uses_the_share_of_slow_requests(
    system: ir.System, cloudwatch: CloudWatch
) -> None:
    sla = system.slas["checkout-latency"]
    share = Fraction(1, 5)
    metrics = sagemaker(checkout(system), slow=[(HISTORY, Fraction(0)), (120, share)])
    fired = cloudwatch.first(
        composite(system, sla.name, "page"), metrics, HISTORY + 1, HISTORY + 120
    )
    assert fired is not None and fired - HISTORY == prometheus_minute(sla, "page", share)
    healthy = sagemaker(checkout(system), slow=[(HISTORY, Fraction(1, 1000))])
    assert not cloudwatch.ever(composite(system, sla.name, "page"), healthy, 60, HISTORY, step=30)


def test_rollback_alarms_fire_within_a_minute_of_a_bad_canary(
    system: ir.System, lowered: alarms.AlarmLowering, cloudwatch: CloudWatch
) -> None:
    errors_alarm, latency_alarm = lowered.rollback_alarm_names["checkout"]
    bad = sagemaker(
        checkout(system),
        [(10, Fraction(0)), (3, Fraction(1, 10))],
        [(10, Fraction(0)), (3, Fraction(1, 10))],
    )
    assert not cloudwatch.state(errors_alarm, bad, 10)
    assert cloudwatch.state(errors_alarm, bad, 11)
    assert not cloudwatch.state(latency_alarm, bad, 10)
    assert cloudwatch.state(latency_alarm, bad, 11)
    fine = sagemaker(checkout(system), [(10, Fraction(1, 1000))], [(10, Fraction(1, 1000))])
    assert not cloudwatch.ever(errors_alarm, fine, 1, 10)
    assert not cloudwatch.ever(latency_alarm, fine, 1, 10)


def _freshness(system: ir.System, phases: list[Phase]) -> Metrics:
    sla = system.slas["orders-fresh"]
    max_age = sla.indicator.max_age_seconds or 0
    namespace = alarm_math.custom_namespace(system.name)
    return contract(
        namespace, alarm_math.DATA_AGE, {"DataSource": "orders"}, max_age - 30, max_age + 60, phases
    )


def test_stale_data_pages_like_the_prometheus_time_sli(
    system: ir.System, cloudwatch: CloudWatch
) -> None:
    sla = system.slas["orders-fresh"]
    metrics = _freshness(system, [(HISTORY, Fraction(0)), (120, Fraction(1))])
    fired = cloudwatch.first(
        composite(system, sla.name, "page"), metrics, HISTORY + 1, HISTORY + 120
    )
    expected = prometheus_minute(sla, "page", Fraction(1), time_sli=True)
    assert fired is not None and expected is not None
    assert abs((fired - HISTORY) - expected) <= 1  # Prometheus counts both ends of a range
    fresh = _freshness(system, [(HISTORY, Fraction(0))])
    assert not cloudwatch.ever(composite(system, sla.name, "page"), fresh, 30, HISTORY, step=30)


def test_a_silent_publisher_fires_the_no_data_alarm_only(
    system: ir.System, cloudwatch: CloudWatch
) -> None:
    metrics = _freshness(system, [(HISTORY, Fraction(0))])
    no_data = alarms.alarm_name(system, "slo", "orders-fresh", "no-data")
    assert not cloudwatch.state(no_data, metrics, HISTORY)
    assert cloudwatch.state(no_data, metrics, HISTORY + 10)
    for severity in ("page", "ticket"):
        assert not cloudwatch.ever(
            composite(system, "orders-fresh", severity), metrics, HISTORY, HISTORY + 60, step=5
        )


def test_drift_pages_and_the_drift_alarm_waits_fifteen_minutes(
    system: ir.System, cloudwatch: CloudWatch
) -> None:
    sla = system.slas["checkout-drift"]
    namespace = alarm_math.custom_namespace(system.name)
    metrics = contract(
        namespace,
        alarm_math.DRIFT_SCORE,
        {"Model": "checkout"},
        0.05,
        0.4,
        [(HISTORY, Fraction(0)), (300, Fraction(1))],
    )
    drift = alarms.alarm_name(system, "slo", sla.name, "drift")
    assert not cloudwatch.state(drift, metrics, HISTORY + 14)
    assert cloudwatch.state(drift, metrics, HISTORY + 15)
    expected = prometheus_minute(sla, "page", Fraction(1), time_sli=True)
    fired = cloudwatch.first(
        composite(system, sla.name, "page"), metrics, HISTORY + 1, HISTORY + 300
    )
    assert fired is not None and expected is not None
    assert abs((fired - HISTORY) - expected) <= 1


# --- the simulator itself --------------------------------------------------------------------------------


def test_the_expression_reader_handles_what_the_alarms_emit() -> None:
    node = Parser("IF(inv>0,(FILL(err,0)/inv)/0.001,0)").parse()
    assert evaluate(node, {"inv": 100.0, "err": 1.0}) == pytest.approx(10.0)
    assert evaluate(node, {"inv": 100.0, "err": None}) == 0.0
    assert evaluate(node, {"inv": 0.0, "err": None}) == 0.0
    assert evaluate(node, {"inv": None, "err": None}) is None
    assert evaluate(Parser("(100-good)/100").parse(), {"good": 75.0}) == pytest.approx(0.25)


# --- promtool: the same incident, the same minute ----------------------------------------------


@pytest.mark.judge
@pytest.mark.parametrize(
    "sla_name", ["checkout-availability", "checkout-weekly", "checkout-latency"]
)
def test_promtool_pages_at_the_minute_cloudwatch_pages(
    system: ir.System, cloudwatch: CloudWatch, promtool: str, tmp_path: Path, sla_name: str
) -> None:
    """The Prometheus rules of the same spec, run by promtool on the same incident, fire within
    the ``rate()`` extrapolation tolerance of ``rule_tests`` around the CloudWatch minute."""
    sla = system.slas[sla_name]
    first_page = slo.thresholds(sla.objective, sla.window_seconds)[0]
    share = min(Fraction(1), Fraction(str(first_page.ratio)) * 6)  # pages ~10 minutes in
    errors = [(HISTORY, Fraction(0)), (60, share)] if sla.indicator.kind == "availability" else []
    slow = [(HISTORY, Fraction(0)), (60, share)] if sla.indicator.kind == "latency" else []
    fired = cloudwatch.first(
        composite(system, sla_name, "page"), sagemaker(checkout(system), errors, slow),
        HISTORY + 1, HISTORY + 60,
    )  # fmt: skip
    assert fired is not None
    minute = fired - HISTORY
    query = f'count(ALERTS{{alertname="{names.FAST_BURN}",alertstate="firing",slo="{sla_name}"}})'
    series = inputs.series_for(system, sla, [(HISTORY, Fraction(0)), (60, share)])
    start = HISTORY + 1
    checks = [
        {"expr": query, "eval_time": f"{start + minute - 3}m", "exp_samples": []},
        {"expr": query, "eval_time": f"{start + minute + 2}m",
         "exp_samples": [{"labels": "{}", "value": 1}]},
    ]  # fmt: skip
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "promql_expr_test": checks,
        }],
    }  # fmt: skip
    (tmp_path / "rules.yaml").write_text(
        emit.monitoring_files(system)[emit.RULES], encoding="utf-8"
    )
    (tmp_path / "agree.test.yaml").write_text(yamltext.dump(test), encoding="utf-8")
    proc = subprocess.run(
        [promtool, "test", "rules", "--", "agree.test.yaml"], cwd=tmp_path, capture_output=True,
        text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
