"""The generated rule tests (``targets/monitoring/rule_tests.py``) take shortcuts over a whole
file: each SLA's series are named once, the samples of each distinct source are computed once
per timeline (``inputs.series_over``), the numbers of an SLA's incident are remembered by its
objective, window and kind of SLI. These tests hold the file to the per-SLA path it stands for
(``inputs.series_for``, ``rule_tests.healthy``, ``rule_tests.crossing``), on every example and
on generated mixes of SLAs: several SLAs of one model or source at other objectives, windows,
``maxAge`` and thresholds, custom ratios that can and cannot be solved, objectives too low for
any alert to fire. They also hold the text to itself with cold and warm caches."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core import ir
from mlplane.targets.monitoring import inputs, names, promql, rule_tests, synth
from tests.hypothesis_profiles import examples
from tests.test_monitoring import REPO, SYSTEMS, over_systems, systems

HISTORY = rule_tests.HISTORY_MINUTES


def clear_caches() -> None:
    """Forget everything the monitoring modules remember between calls."""
    for module in (rule_tests, inputs, synth):
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def timelines() -> list[inputs.Timeline]:
    zero = Fraction(0)
    return [
        ((1, zero),),
        ((rule_tests.HEALTHY_MINUTES, zero),),
        *(((HISTORY, zero), (20, bad)) for bad in (Fraction(1, 10), Fraction(432, 10000))),
        ((HISTORY, zero), (35, Fraction(1))),
    ]


def check_series_over(system: ir.System) -> None:
    """Each SLA's series over a timeline, taken for all SLAs at once, are its own."""
    shapes = {name: inputs.shape(system, sla) for name, sla in system.slas.items()}
    for phases in timelines():
        together = inputs.series_over(shapes, phases)
        assert together.keys() == system.slas.keys()
        for name, sla in system.slas.items():
            assert together[name] == inputs.series_for(system, sla, list(phases)), name


def expected_incidents(system: ir.System) -> tuple[int, dict[str, tuple[Fraction, int]]]:
    """The incident timeline's last minute, and each SLA's incident ratio and firing minute,
    from the module docstring: SLAs that read a series in common (directly or through
    others) share one incident at the highest ratio any of them wants; one timeline holds
    every incident, long enough for the latest alert."""
    plans = {n: p for n, sla in system.slas.items() if (p := rule_tests._plan(sla)) is not None}
    reads = {
        name: {text for text, _ in inputs.series_for(system, system.slas[name], [(1, Fraction(0))])}
        for name in plans
    }
    families: list[tuple[set[str], set[str]]] = []
    for name in sorted(plans):
        joined = [f for f in families if f[1] & reads[name]]
        members = {name}.union(*(f[0] for f in joined))
        series = reads[name].union(*(f[1] for f in joined))
        families = [f for f in families if all(f is not j for j in joined)] + [(members, series)]
    timed: dict[str, tuple[Fraction, int]] = {}
    for members, _ in families:
        bad = max(plans[name].choice.wanted for name in members)
        for name in members:
            sla = system.slas[name]
            thresholds = plans[name].choice.thresholds
            minute = rule_tests.crossing(thresholds, bad, HISTORY, rule_tests._time_sli(sla))
            if minute is not None:
                timed[name] = (bad, minute)
    end = HISTORY + 1 + max((minute for _, minute in timed.values()), default=0) + 2
    return end, timed


def check_scenarios(system: ir.System) -> None:
    """Every scenario of the file is the per-SLA path's: a healthy one is ``healthy``'s, an
    incident's series are ``series_for``'s on the file's timeline at its family's ratio, its
    checks are at the minute :func:`rule_tests.crossing` gives for that ratio, and every SLA
    whose alert fires and whose series exist has one."""
    found = rule_tests._all(system)
    healthy = {s.sla.name: s for s in found if s.kind == "healthy"}
    for name, sla in system.slas.items():
        assert healthy.get(name) == rule_tests.healthy(system, sla), name
    incidents = {s.sla.name: s for s in found if s.kind == "incident"}
    assert list(incidents.values()) == rule_tests.incidents(system)
    end, timed = expected_incidents(system)
    with_series = set()
    for name, (bad, minute) in timed.items():
        phases = [(HISTORY, Fraction(0)), (end - HISTORY, bad)]
        series = inputs.series_for(system, system.slas[name], phases)
        if not series:
            continue
        with_series.add(name)
        scenario = incidents[name]
        assert scenario.series == series, name
        share = inputs.decimal(bad * 100)
        assert scenario.name.endswith(f"fires about {minute} minutes into a {share}% incident")
        assert [c.minute for c in scenario.checks if c.firing] == [HISTORY + 1 + minute + 2]
    assert incidents.keys() == with_series


def first_fit(found: list[rule_tests.Scenario]) -> list[list[rule_tests.Scenario]]:
    """Batches as the module docstring states them: each scenario joins the first batch none
    of whose members holds one of its series with other values."""
    batches: list[list[rule_tests.Scenario]] = []
    for scenario in found:
        for batch in batches:
            held = {text: values for member in batch for text, values in member.series}
            if all(held.get(text, values) == values for text, values in scenario.series):
                batch.append(scenario)
                break
        else:
            batches.append([scenario])
    return batches


def check_batches(system: ir.System) -> None:
    found = rule_tests._all(system)
    for kind in ("incident", "healthy", "no data"):
        of_kind = [s for s in found if s.kind == kind]
        assert rule_tests._batches(of_kind) == first_fit(of_kind), kind


def check_caches(system: ir.System, other: ir.System) -> None:
    """The text does not depend on what an earlier call, of this system or another, left."""
    clear_caches()
    cold = rule_tests.rule_tests_yaml(system)
    assert rule_tests.rule_tests_yaml(system) == cold
    rule_tests.rule_tests_yaml(other)
    assert rule_tests.rule_tests_yaml(system) == cold


@over_systems
def test_series_over_is_series_for_of_each_sla(system: ir.System) -> None:
    check_series_over(system)


@over_systems
def test_the_scenarios_are_the_per_sla_ones(system: ir.System) -> None:
    check_scenarios(system)


@over_systems
def test_batches_are_first_fit(system: ir.System) -> None:
    check_batches(system)


@over_systems
def test_alert_queries_select_the_labels_of_the_alert(system: ir.System) -> None:
    """Each check's query is ``promql.label_selector`` of the alert's labels and the SLA's
    identity, which the query writes without checking the identity again."""
    namespace = system.environment.namespace
    for sla in system.slas:
        identity = dict(names.identity_of(namespace, sla, system.name))
        for alert in (names.FAST_BURN, names.SLOW_BURN, names.ABSENT):
            labels = {"alertname": alert, "alertstate": "firing", **identity}
            expected = f"count(ALERTS{promql.label_selector(labels)})"
            assert rule_tests._alerts_query(namespace, sla, system.name, alert) == expected


@over_systems
def test_the_text_does_not_depend_on_earlier_calls(system: ir.System) -> None:
    check_caches(system, SYSTEMS[0][1])


# --- generated mixes ---------------------------------------------------------------------------

BASE = systems(REPO / "examples" / "llm-rag")["prod"]
"""Every kind of SLI, custom ratios among them."""
TEMPLATES = sorted(BASE.slas.values(), key=lambda sla: sla.name)
DAY = 86400.0
UNSOLVABLE = ("sum(rate(a_total[{{window}}])) or vector(0)", "sum(rate(b_total[{{window}}]))")
ONLY_ALL_BAD = ("sum(rate(a_total[{{window}}]))", "sum(rate(a_total[{{window}}]))")
"""A ratio whose errors are its total: no healthy timeline, no incident below 100 %."""


@st.composite
def variants(draw: st.DrawFn) -> ir.Sla:
    """Another SLA on a template's subject, with other numbers."""
    template = draw(st.sampled_from(TEMPLATES))
    indicator = template.indicator
    if indicator.kind == "freshness":
        age = draw(st.sampled_from([30.0, 60.0, 300.0, 3600.0, DAY]))
        indicator = dataclasses.replace(indicator, max_age_seconds=age)
    elif indicator.kind == "drift":
        threshold = draw(st.sampled_from([0.05, 0.2, 0.5]))
        indicator = dataclasses.replace(indicator, drift_threshold=threshold)
    elif indicator.kind == "ratio":
        own = (indicator.ratio_errors, indicator.ratio_total)
        errors, total = draw(st.sampled_from([own, UNSOLVABLE, ONLY_ALL_BAD]))
        indicator = dataclasses.replace(indicator, ratio_errors=errors, ratio_total=total)
    return dataclasses.replace(
        template,
        objective=draw(st.sampled_from([50.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.999])),
        window_seconds=draw(st.sampled_from([DAY, 7 * DAY, 28 * DAY, 30 * DAY])),
        indicator=indicator,
    )


@st.composite
def mixes(draw: st.DrawFn) -> ir.System:
    added = draw(st.lists(variants(), min_size=1, max_size=12))
    slas = dict(BASE.slas)
    for index, sla in enumerate(added):
        name = f"{sla.name}-{index}"
        slas[name] = dataclasses.replace(sla, name=name)
    return dataclasses.replace(BASE, slas=slas)


@settings(max_examples=examples(60), deadline=None)
@given(mixes())
def test_mixes_of_slas_keep_to_the_per_sla_path(system: ir.System) -> None:
    check_series_over(system)
    check_scenarios(system)
    check_batches(system)


@settings(max_examples=examples(20), deadline=None)
@given(mixes())
def test_mixes_do_not_depend_on_earlier_calls(system: ir.System) -> None:
    check_caches(system, BASE)
