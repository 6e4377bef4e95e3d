"""``promtool test rules`` files generated for every SLA: the rules are proven by Prometheus' own
unit-test runner on every build, not only by mlplane's hand-written tests.

Per SLA, three scenarios run against ``rules.yaml`` next to the test file:

* **incident**: 6 hours of healthy history (every window a page reads is full), then an incident
  whose error ratio makes the page fire about 10 minutes in (6 × the 1h threshold, capped at 100 %
  errors; time SLIs are simply bad). The test asserts the page is *not* firing shortly before the
  minute the budget maths predict and *is* firing shortly after (± 2-3 minutes for ``rate()``
  extrapolation). When no page can fire (an objective so low that the page threshold is above
  100 % errors), the ticket is checked instead;
* **healthy**: two healthy hours: no page, no ticket, no absent alert;
* **no data**: no input series: the absent-data alert fires after its ``for:``, nothing else.

Assertions read ``ALERTS`` filtered by the SLA's identity labels, so the scenarios of different
SLAs do not disturb each other and run side by side: one test group per kind of scenario holds
every SLA (promtool evaluates every rule of the file at every step of every group, so one group
for all SLAs instead of one per SLA makes the file run several times faster). SLAs that read the
same series (two availability SLAs of one model) share one incident, at the highest ratio any of
them wants, and every incident runs on one timeline, so a shared series has the same values
everywhere; only scenarios that would need different values for one series (two freshness SLAs
of one source with different ``maxAge``) go to separate groups. A custom ratio whose queries are not linear combinations of
``rate()`` (see ``synth.py``) gets only the no-data scenario; the file header lists such SLAs.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from math import ceil
from typing import Any

from mlplane.compiler.core import ir, yamltext
from mlplane.targets import slo
from mlplane.targets.monitoring import alerts, inputs, names, promql
from mlplane.targets.monitoring.inputs import Phase

HISTORY_MINUTES = 360
"""Healthy history before an incident: the longest window a page reads (6h)."""
HEALTHY_MINUTES = 120
"""A healthy timeline has zero error ratio in every window, full or not: two hours suffice."""
MAX_SEARCH_MINUTES = 4 * 1440


@dataclass(frozen=True, slots=True)
class Check:
    minute: int
    alert: str
    firing: bool


@dataclass(frozen=True, slots=True)
class Scenario:
    kind: str
    sla: ir.Sla
    name: str
    series: list[inputs.Series]
    checks: list[Check]


RAW_WINDOW_LIMIT = HISTORY_MINUTES
"""Windows up to 6h are full after the history; longer ones average what exists."""


def _time_sli(sla: ir.Sla) -> bool:
    return sla.indicator.kind in ("freshness", "drift")


def _window_ratio(
    window: str, bad: Fraction, minutes_bad: int, now: int, time_sli: bool
) -> Fraction:
    """The error ratio the rules compute over ``window`` ``minutes_bad`` minutes into an incident
    of ratio ``bad`` at minute ``now``: raw windows are full (history >= 6h); 1d and 3d average
    whatever history exists; time SLIs count inclusive samples (Prometheus 2: both ends)."""
    length = slo.WINDOW_SECONDS[window] // 60
    span = min(length, now) if length > RAW_WINDOW_LIMIT else length
    samples = span + 1 if time_sli else span
    return bad * min(minutes_bad, samples) / samples


@lru_cache(maxsize=4096)
def crossing(
    thresholds: tuple[slo.Threshold, ...], bad: Fraction, history: int, time_sli: bool
) -> int | None:
    """Minutes into the incident at which any of ``thresholds`` holds, or None.

    A pure function of numbers, remembered: the SLAs of a large spec share a few objectives and
    windows, and each search costs hundreds of exact fractions."""
    for minute in range(1, MAX_SEARCH_MINUTES):
        now = history + minute
        for threshold in thresholds:
            long = _window_ratio(threshold.pair.long, bad, minute, now, time_sli)
            short = _window_ratio(threshold.pair.short, bad, minute, now, time_sli)
            if min(long, short) > threshold.ratio:
                return minute
    return None


def _incident_ratio(first: slo.Threshold, time_sli: bool) -> Fraction:
    """Bad ratio that makes the first pair fire about 10 minutes in (whole requests per minute)."""
    if time_sli:
        return Fraction(1)
    wanted = min(Fraction(1), Fraction(str(first.ratio)) * 6)
    return Fraction(ceil(wanted * inputs.TOTAL_PER_MINUTE), inputs.TOTAL_PER_MINUTE)


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which alert an SLA's incident checks, the pairs that can raise it, and the bad ratio
    that would make it fire about 10 minutes in."""

    sla: ir.Sla
    severity: str
    alert: str
    thresholds: tuple[slo.Threshold, ...]
    wanted: Fraction


def _plan(sla: ir.Sla) -> _Plan | None:
    """The page when one can fire, else the ticket, else None."""
    every = slo.thresholds(sla.objective, sla.window_seconds)
    for severity, alert in (("page", names.FAST_BURN), ("ticket", names.SLOW_BURN)):
        chosen = tuple(t for t in every if t.pair.severity == severity and t.ratio < 1)
        if chosen:
            return _Plan(sla, severity, alert, chosen, _incident_ratio(chosen[0], _time_sli(sla)))
    return None


def _families(system: ir.System, plans: list[_Plan]) -> list[list[_Plan]]:
    """Plans grouped by shared input series (two availability SLAs of one model read the same
    counters, so they must see the same incident): connected components, in plan order."""
    parent = list(range(len(plans)))

    def root(index: int) -> int:
        while parent[index] != index:
            index = parent[index]
        return index

    first_reader: dict[str, int] = {}
    for index, plan in enumerate(plans):
        for text, _ in inputs.series_for(system, plan.sla, [(1, Fraction(0))]):
            other = first_reader.setdefault(text, index)
            parent[root(index)] = root(other)
    families: dict[int, list[_Plan]] = {}
    for index, plan in enumerate(plans):
        families.setdefault(root(index), []).append(plan)
    return list(families.values())


def incidents(system: ir.System) -> list[Scenario]:
    """One incident per family of SLAs sharing inputs (at the highest ratio any member wants),
    on one timeline for the whole file, so shared series carry identical values."""
    plans = [p for _, sla in sorted(system.slas.items()) if (p := _plan(sla)) is not None]
    timed: list[tuple[_Plan, Fraction, int]] = []
    for family in _families(system, plans):
        bad = max(plan.wanted for plan in family)
        for plan in family:
            minute = crossing(plan.thresholds, bad, HISTORY_MINUTES, _time_sli(plan.sla))
            if minute is not None:
                timed.append((plan, bad, minute))
    if not timed:
        return []
    start = HISTORY_MINUTES + 1
    end = start + max(minute for _, _, minute in timed) + 2
    found = []
    for plan, bad, minute in timed:
        phases: list[Phase] = [(HISTORY_MINUTES, Fraction(0)), (end - HISTORY_MINUTES, bad)]
        series = inputs.series_for(system, plan.sla, phases)
        if series:
            found.append(_incident(plan, bad, minute, series))
    return found


def _incident(plan: _Plan, bad: Fraction, minute: int, series: list[inputs.Series]) -> Scenario:
    start = HISTORY_MINUTES + 1
    before = start + minute - 3 if minute > 3 else start - 1
    checks = [Check(before, plan.alert, False), Check(start + minute + 2, plan.alert, True)]
    share = inputs.decimal(bad * 100)
    name = f"{plan.sla.name}: {plan.severity} fires about {minute} minutes into a {share}% incident"
    return Scenario("incident", plan.sla, name, series, checks)


def healthy(system: ir.System, sla: ir.Sla) -> Scenario | None:
    series = inputs.series_for(system, sla, [(HEALTHY_MINUTES, Fraction(0))])
    if not series:
        return None
    end = HEALTHY_MINUTES
    quiet = (names.FAST_BURN, names.SLOW_BURN, names.ABSENT)
    checks = [Check(end, a, False) for a in quiet]
    return Scenario("healthy", sla, f"{sla.name}: healthy, no alert", series, checks)


def no_data(sla: ir.Sla) -> Scenario:
    wait = int(slo.WINDOW_SECONDS["5m"] / 60) + _minutes(alerts.ABSENT_FOR)
    checks = [
        Check(wait, names.ABSENT, True),
        Check(wait, names.FAST_BURN, False),
        Check(wait, names.SLOW_BURN, False),
    ]
    return Scenario("no data", sla, f"{sla.name}: no data, only the absent alert", [], checks)


def _minutes(duration: str) -> int:
    return int(duration.removesuffix("m"))


def _query(system: ir.System, sla: ir.Sla, alert: str) -> str:
    return _alerts_query(system.environment.namespace, sla.name, system.name, alert)


@lru_cache(maxsize=1 << 14)
def _alerts_query(namespace: str, sla: str, system: str, alert: str) -> str:
    """The query of one SLA's firing ``alert``, by the names it depends on, remembered (each
    SLA's scenarios ask for its three alerts several times)."""
    identity = dict(names.identity_of(namespace, sla, system))
    labels = {"alertname": alert, "alertstate": "firing", **identity}
    return f"count(ALERTS{promql.label_selector(labels)})"


def _checks(system: ir.System, scenario: Scenario) -> list[dict[str, Any]]:
    return [
        {
            "expr": _query(system, scenario.sla, check.alert),
            "eval_time": f"{check.minute}m",
            "exp_samples": [{"labels": "{}", "value": 1}] if check.firing else [],
        }
        for check in scenario.checks
    ]


def _batches(found: list[Scenario]) -> list[list[Scenario]]:
    """Scenarios packed into batches (first fit, in order) in which a series shared by two
    scenarios has the same values in both."""
    batches: list[tuple[dict[str, str], list[Scenario]]] = []
    for scenario in found:
        own = dict(scenario.series)
        home = next((b for b in batches if all(b[0].get(k, v) == v for k, v in own.items())), None)
        if home is None:
            batches.append((own, [scenario]))
        else:
            home[0].update(own)
            home[1].append(scenario)
    return [members for _, members in batches]


def _group(system: ir.System, batch: list[Scenario]) -> dict[str, Any]:
    names_ = [s.name for s in batch]
    title = (
        "; ".join(names_)
        if len(names_) <= 3
        else f"{'; '.join(names_[:3])}; and {len(names_) - 3} more"
    )
    unique = {text: values for s in batch for text, values in s.series}
    series = [{"series": text, "values": values} for text, values in unique.items()]
    checks = [c for s in batch for c in _checks(system, s)]
    return {"name": title, "interval": "1m", "input_series": series, "promql_expr_test": checks}


def scenarios(system: ir.System, sla: ir.Sla) -> list[Scenario]:
    """The scenarios of one SLA (the no-data one always; the others when they can be built)."""
    return [s for s in _all(system) if s.sla.name == sla.name]


def _tests(system: ir.System, rule_file: str, found: list[Scenario]) -> dict[str, Any]:
    groups = [
        _group(system, batch)
        for kind in ("incident", "healthy", "no data")
        for batch in _batches([s for s in found if s.kind == kind])
    ]
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": groups}


def _all(system: ir.System) -> list[Scenario]:
    """Every scenario of every SLA, SLAs in name order."""
    others = [
        s
        for _, sla in sorted(system.slas.items())
        for s in (healthy(system, sla), no_data(sla))
        if s is not None
    ]
    return incidents(system) + others


def rule_tests(system: ir.System, rule_file: str = "rules.yaml") -> dict[str, Any]:
    """The test file as data: one group per batch of each kind of scenario."""
    return _tests(system, rule_file, _all(system))


def _untested(system: ir.System, found: list[Scenario]) -> list[str]:
    """SLAs whose tests cover only the no-data case, with the reason."""
    covered = {s.sla.name for s in found if s.kind != "no data"}
    return [
        f"{name}: {_reason(sla)}"
        for name, sla in sorted(system.slas.items())
        if name not in covered
    ]


def _reason(sla: ir.Sla) -> str:
    if sla.indicator.kind == "ratio":
        return "custom ratio queries are not linear in rate()"
    return "no alert can fire at this objective"


def rule_tests_yaml(system: ir.System, rule_file: str = "rules.yaml") -> str:
    """The ``promtool test rules`` file of ``system`` as YAML (without the generated header);
    SLAs that only get the no-data test are listed in a comment on top."""
    found = _all(system)
    notes = [f"only the no-data test for {line}" for line in _untested(system, found)]
    return yamltext.dump(_tests(system, rule_file, found), notes)
