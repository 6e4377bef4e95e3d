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

A file names each SLA's series once and computes the samples of each timeline once per source
(``inputs.series_over``): a large spec's thousands of SLAs share a few timelines and sources.
What depends only on an SLA's objective, window and kind of SLI (the alert its incident checks,
the ratio, the minute it fires) is remembered by those numbers.
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
class _Choice:
    """Which alert an incident checks, the pairs that can raise it, the bad ratio that would
    make it fire about 10 minutes in, and when it fires at that ratio: all functions of an
    SLA's objective, window and kind of SLI, which the SLAs of a large spec share."""

    severity: str
    alert: str
    thresholds: tuple[slo.Threshold, ...]
    time_sli: bool
    wanted: Fraction
    minute: int | None
    """:func:`crossing` at ``wanted``."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """The incident an SLA gets: its choice."""

    sla: ir.Sla
    choice: _Choice


def _plan(sla: ir.Sla) -> _Plan | None:
    """The page when one can fire, else the ticket, else None."""
    chosen = _choice(sla.objective, sla.window_seconds, _time_sli(sla))
    return None if chosen is None else _Plan(sla, chosen)


@lru_cache(maxsize=1024)
def _choice(objective: float, window_seconds: float, time_sli: bool) -> _Choice | None:
    """:func:`_plan` apart from the SLA, remembered (a pure function of numbers, and each
    costs decimal maths and a :func:`crossing` search)."""
    every = slo.thresholds(objective, window_seconds)
    for severity, alert in (("page", names.FAST_BURN), ("ticket", names.SLOW_BURN)):
        chosen = tuple(t for t in every if t.pair.severity == severity and t.ratio < 1)
        if chosen:
            wanted = _incident_ratio(chosen[0], time_sli)
            minute = crossing(chosen, wanted, HISTORY_MINUTES, time_sli)
            return _Choice(severity, alert, chosen, time_sli, wanted, minute)
    return None


Shapes = dict[str, inputs.Shape]
"""The input series of each SLA by name, named once per file."""
_ONE_MINUTE: inputs.Timeline = ((1, Fraction(0)),)
"""The timeline on which :func:`_families` learns which series an SLA reads."""
_HEALTHY: inputs.Timeline = ((HEALTHY_MINUTES, Fraction(0)),)


def _shapes(system: ir.System) -> Shapes:
    return {name: inputs.shape(system, sla) for name, sla in system.slas.items()}


def _families(plans: list[_Plan], shapes: Shapes) -> list[list[_Plan]]:
    """Plans grouped by shared input series (two availability SLAs of one model read the same
    counters, so they must see the same incident): connected components, in plan order."""
    parent = list(range(len(plans)))

    def root(index: int) -> int:
        while parent[index] != index:
            index = parent[index]
        return index

    read = inputs.series_over({p.sla.name: shapes[p.sla.name] for p in plans}, _ONE_MINUTE)
    first_reader: dict[str, int] = {}
    for index, plan in enumerate(plans):
        for text, _ in read[plan.sla.name]:
            other = first_reader.setdefault(text, index)
            parent[root(index)] = root(other)
    families: dict[int, list[_Plan]] = {}
    for index, plan in enumerate(plans):
        families.setdefault(root(index), []).append(plan)
    return list(families.values())


def incidents(system: ir.System) -> list[Scenario]:
    """One incident per family of SLAs sharing inputs (at the highest ratio any member wants),
    on one timeline for the whole file, so shared series carry identical values."""
    return _incidents(system, _shapes(system))


def _incidents(system: ir.System, shapes: Shapes) -> list[Scenario]:
    plans = [p for _, sla in sorted(system.slas.items()) if (p := _plan(sla)) is not None]
    timed: list[tuple[_Plan, Fraction, int]] = []
    for family in _families(plans, shapes):
        bad = max(plan.choice.wanted for plan in family)
        for plan in family:
            minute = _minute(plan.choice, bad)
            if minute is not None:
                timed.append((plan, bad, minute))
    if not timed:
        return []
    start = HISTORY_MINUTES + 1
    end = start + max(minute for _, _, minute in timed) + 2
    by_ratio: dict[Fraction, dict[str, inputs.Shape]] = {}
    for plan, bad, _ in timed:
        by_ratio.setdefault(bad, {})[plan.sla.name] = shapes[plan.sla.name]
    history = (HISTORY_MINUTES, Fraction(0))
    read = {
        bad: (
            inputs.decimal(bad * 100),
            inputs.series_over(group, (history, (end - HISTORY_MINUTES, bad))),
        )
        for bad, group in by_ratio.items()
    }
    found = []
    for plan, bad, minute in timed:
        share, series = read[bad]
        if series[plan.sla.name]:
            found.append(_incident(plan, share, minute, series[plan.sla.name]))
    return found


def _minute(choice: _Choice, bad: Fraction) -> int | None:
    """When ``choice``'s alert fires in an incident of ratio ``bad`` (the family's highest):
    the choice knows it for its own ratio, the one ``bad`` is for an SLA alone."""
    if bad is choice.wanted:
        return choice.minute
    return crossing(choice.thresholds, bad, HISTORY_MINUTES, choice.time_sli)


def _incident(plan: _Plan, share: str, minute: int, series: list[inputs.Series]) -> Scenario:
    """``share``: the incident's error ratio in percent, as written."""
    sla, choice = plan.sla, plan.choice
    checks = list(_incident_checks(minute, choice.alert))
    name = f"{sla.name}: {choice.severity} fires about {minute} minutes into a {share}% incident"
    return Scenario("incident", sla, name, series, checks)


@lru_cache(maxsize=1024)
def _incident_checks(minute: int, alert: str) -> tuple[Check, Check]:
    """``alert`` not firing shortly before ``minute`` into the incident, firing shortly after
    (frozen checks, shared by the SLAs whose alert fires at the same minute)."""
    start = HISTORY_MINUTES + 1
    before = start + minute - 3 if minute > 3 else start - 1
    return Check(before, alert, False), Check(start + minute + 2, alert, True)


def healthy(system: ir.System, sla: ir.Sla) -> Scenario | None:
    """Two healthy hours of ``sla``: no alert (None when its series cannot be synthesised)."""
    return _healthy(sla, inputs.shape(system, sla).series(_HEALTHY))


def _healthy(sla: ir.Sla, series: list[inputs.Series]) -> Scenario | None:
    if not series:
        return None
    return Scenario("healthy", sla, f"{sla.name}: healthy, no alert", series, list(_QUIET))


def no_data(sla: ir.Sla) -> Scenario:
    name = f"{sla.name}: no data, only the absent alert"
    return Scenario("no data", sla, name, [], list(_ABSENT))


def _minutes(duration: str) -> int:
    return int(duration.removesuffix("m"))


_QUIET = tuple(
    Check(HEALTHY_MINUTES, alert, False)
    for alert in (names.FAST_BURN, names.SLOW_BURN, names.ABSENT)
)
"""The checks of every healthy scenario (checks are frozen: every scenario holds the same)."""
_WAIT = int(slo.WINDOW_SECONDS["5m"] / 60) + _minutes(alerts.ABSENT_FOR)
_ABSENT = (
    Check(_WAIT, names.ABSENT, True),
    Check(_WAIT, names.FAST_BURN, False),
    Check(_WAIT, names.SLOW_BURN, False),
)
"""The checks of every no-data scenario."""


@lru_cache(maxsize=1 << 14)
def _alerts_query(namespace: str, sla: str, system: str, alert: str) -> str:
    """The query of one SLA's firing ``alert``, by the names it depends on, remembered (each
    SLA's scenarios ask for its three alerts several times). The identity labels come checked
    from :func:`names.identity_of` (which the rules have asked for already) and the alert's are
    constants of ``names``: they are only sorted and written here, as
    :func:`promql.label_selector` would write them, without checking them again."""
    identity = names.identity_of(namespace, sla, system)
    labels = sorted((("alertname", alert), ("alertstate", "firing"), *identity))
    return f"count({promql.selector('ALERTS', [promql.matcher(k, '=', v) for k, v in labels])})"


def _checks(system: ir.System, batch: list[Scenario]) -> list[dict[str, Any]]:
    namespace, system_name = system.environment.namespace, system.name
    return [
        {
            "expr": _alerts_query(namespace, scenario.sla.name, system_name, check.alert),
            "eval_time": f"{check.minute}m",
            "exp_samples": [{"labels": "{}", "value": 1}] if check.firing else [],
        }
        for scenario in batch
        for check in scenario.checks
    ]


def _batches(found: list[Scenario]) -> list[list[Scenario]]:
    """Scenarios packed into batches (first fit, in order) in which a series shared by two
    scenarios has the same values in both."""
    batches: list[tuple[dict[str, str], list[Scenario]]] = []
    for scenario in found:
        own = dict(scenario.series)
        for values, members in batches:
            if _fits(own, values):
                values.update(own)
                members.append(scenario)
                break
        else:
            batches.append((own, [scenario]))
    return [members for _, members in batches]


def _fits(own: dict[str, str], values: dict[str, str]) -> bool:
    """Whether every series of ``own`` that ``values`` holds has the same values there (most
    scenarios share no series with the batch: that is asked first, of the few of ``own``)."""
    return own.keys().isdisjoint(values.keys()) or all(
        values.get(k, v) == v for k, v in own.items()
    )


def _group(system: ir.System, batch: list[Scenario]) -> dict[str, Any]:
    names_ = [s.name for s in batch]
    title = (
        "; ".join(names_)
        if len(names_) <= 3
        else f"{'; '.join(names_[:3])}; and {len(names_) - 3} more"
    )
    unique = {text: values for s in batch for text, values in s.series}
    series = [{"series": text, "values": values} for text, values in unique.items()]
    checks = _checks(system, batch)
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
    shapes = _shapes(system)
    read = inputs.series_over(shapes, _HEALTHY)
    others = [
        s
        for name, sla in sorted(system.slas.items())
        for s in (_healthy(sla, read[name]), no_data(sla))
        if s is not None
    ]
    return _incidents(system, shapes) + others


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
