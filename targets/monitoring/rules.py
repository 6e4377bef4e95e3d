"""Prometheus recording and alerting rules for every SLA of a system (pure, deterministic).

One rule group per SLA, named ``mlplane/<system>/<sla>``, in this order: the SLI inputs, the
error ratio over 5m, 30m, 1h, 2h, 6h, 1d, 3d and over the SLO window, the objective and budget
metadata, then the alerts (``alerts.py``).

How each window is computed, and why:

* event SLIs record two 5-minute rates from the raw series, bad events and all events
  (``slo:sli_errors:rate5m``, ``slo:sli_requests:rate5m``). The 5m ratio divides them; 30m, 1h,
  2h and 6h use ``rate()`` over the raw series (exact, counter resets handled);
* 1d, 3d and the SLO window are computed from the *recorded* 5m rates::

      sum_over_time(errors:rate5m[W]) / sum_over_time(requests:rate5m[W])

  Every instant of traffic is covered by the same number of 5-minute samples, so this is the
  traffic-weighted error ratio of the window (edge error at most 5m/W), at the cost of one
  recorded series instead of a 30-day ``rate()`` over every raw series;
* time SLIs (freshness, drift) record a 0/1 series; every window is its ``avg_over_time``.

Zero traffic: every division is by ``(total > 0)``, so 0/0 yields *no sample* rather than NaN or
an error ratio. No sample means no alert: an idle model never pages. A model whose series are
missing altogether is caught by the absent-data alert instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Any

from mlplane.compiler.core import canonical, ir, yamltext
from mlplane.compiler.core.resource_texts import text_of
from mlplane.targets import slo
from mlplane.targets.monitoring import alerts, names, promql, sli
from mlplane.targets.monitoring.presets import EventSli

Rule = dict[str, Any]


def record(name: str, expr: str, labels: dict[str, str]) -> Rule:
    """A recording rule: its name, query and the SLA's labels (checked against the allow-list)."""
    return {"record": name, "expr": expr, "labels": promql.safe_labels(labels)}


def ratio_rule(window: str, expr: str, labels: dict[str, str]) -> Rule:
    """The recording rule of the error ratio over ``window``. The window is in the name only:
    a window label would make the two windows of a burn-rate condition unequal for ``and``."""
    return record(names.ratio(window), expr, labels)


def operand(expr: str) -> str:
    """``expr`` safe to use as an operand: parenthesised unless it is one call, ``f(...)``."""
    head = re.match(r"[a-z_]+\(", expr)
    if head is not None and _closing_paren(expr, head.end() - 1) == len(expr) - 1:
        return expr
    return f"({expr})"


_PAREN = re.compile(r"[()]")


def _closing_paren(expr: str, start: int) -> int:
    """The index of the parenthesis closing the one at ``start`` (-1: none); only the
    parentheses are visited, not every character of a long query."""
    depth = 0
    for found in _PAREN.finditer(expr, start):
        depth += 1 if found.group() == "(" else -1
        if depth == 0:
            return found.start()
    return -1


def with_zero_default(errors: str, total: str) -> str:
    """``errors``, or 0 while ``total`` exists but no error has been counted yet."""
    return f"{errors} or 0 * {operand(total)}"


def _errors(indicator: EventSli, window: str) -> str:
    """The bad-event rate over ``window``; a missing errors series counts as 0 while there is
    traffic data (when the SLI allows it)."""
    errors = indicator.errors_at(window)
    if indicator.errors_may_be_missing:
        return with_zero_default(errors, indicator.presence_at(window))
    return errors


def _ratio(indicator: EventSli, window: str) -> str:
    """``errors / (total > 0)`` over ``window``."""
    return f"({_errors(indicator, window)}) / ({indicator.total_at(window)} > 0)"


def event_rules(system: ir.System, sla: ir.Sla, indicator: EventSli) -> list[Rule]:
    """The SLI inputs and window ratios of a request-based SLI."""
    labels = names.series_labels(system, sla)
    errors = names.of(names.ERRORS_RATE, system, sla)
    requests = names.of(names.REQUESTS_RATE, system, sla)
    rules = [
        record(names.ERRORS_RATE, _errors(indicator, "5m"), labels),
        record(names.REQUESTS_RATE, indicator.total_at("5m"), labels),
        ratio_rule("5m", f"{errors} / ({requests} > 0)", labels),
    ]
    for window in slo.RAW_WINDOWS:
        rules.append(ratio_rule(window, _ratio(indicator, window), labels))
    for window in ("1d", "3d"):
        rules.append(ratio_rule(window, _from_rates(errors, requests, window), labels))
    window = slo.window_name(sla.window_seconds)
    rules.append(record(names.SLO_WINDOW_RATIO, _from_rates(errors, requests, window), labels))
    return rules


def _from_rates(errors: str, requests: str, window: str) -> str:
    return f"sum_over_time({errors}[{window}]) / (sum_over_time({requests}[{window}]) > 0)"


def time_rules(system: ir.System, sla: ir.Sla, indicator: sli.TimeSli) -> list[Rule]:
    """The 0/1 series and window ratios of a time-based SLI."""
    labels = names.series_labels(system, sla)
    bad = names.of(names.BAD_TIME, system, sla)
    rules = [record(names.BAD_TIME, indicator.bad, labels)]
    rules += [ratio_rule(w, f"avg_over_time({bad}[{w}])", labels) for w in slo.WINDOWS]
    window = slo.window_name(sla.window_seconds)
    rules.append(record(names.SLO_WINDOW_RATIO, f"avg_over_time({bad}[{window}])", labels))
    return rules


def metadata_rules(system: ir.System, sla: ir.Sla) -> list[Rule]:
    """Objective, budget and window as series (for dashboards and ad-hoc queries), and the budget
    left over the SLO window."""
    labels = names.series_labels(system, sla)
    objective, budget, window = _numbers(sla.objective, sla.window_seconds)
    spent = f"{names.of(names.SLO_WINDOW_RATIO, system, sla)} / {budget}"
    return [
        record(names.OBJECTIVE, f"vector({objective})", labels),
        record(names.ERROR_BUDGET, f"vector({budget})", labels),
        record(names.SLO_WINDOW, f"vector({window})", labels),
        record(names.BUDGET_REMAINING, f"1 - {spent}", labels),
    ]


@lru_cache(maxsize=1 << 12, typed=True)
def _numbers(objective: float, window_seconds: float) -> tuple[str, str, str]:
    """The objective as a ratio, the error budget and the window in seconds, as PromQL
    numbers; remembered (pure numbers that the SLAs of a large spec share)."""
    budget = slo.number(slo.error_budget(objective))
    return slo.number(slo.objective_ratio(objective)), budget, slo.number(window_seconds)


def sla_group(system: ir.System, sla: ir.Sla) -> dict[str, Any]:
    """The rule group of one SLA."""
    indicator = sli.sli_of(system, sla)
    recorded = (
        event_rules(system, sla, indicator)
        if isinstance(indicator, EventSli)
        else time_rules(system, sla, indicator)
    )
    rules = [*recorded, *metadata_rules(system, sla), *alerts.sla_alerts(system, sla, indicator)]
    return {"name": group_name(system, sla), "rules": rules}


def group_name(system: ir.System, sla: ir.Sla) -> str:
    return f"mlplane/{promql.safe_value(system.name)}/{promql.safe_value(sla.name)}"


def prometheus_rules(
    system: ir.System, computed: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The rule file of ``system`` as data: ``{"groups": [...]}``, one group per SLA, sorted.
    ``computed``: groups already built for this system, by group name (the build takes them
    from the resource graph, so that one build computes each SLA's rules once)."""
    known = computed or {}
    return {
        "groups": [
            _group_of(system, sla, known, group_name(system, sla))
            for _, sla in sorted(system.slas.items())
        ]
    }


def rules_yaml(
    system: ir.System,
    computed: Mapping[str, dict[str, Any]] | None = None,
    owners: Mapping[str, str] | None = None,
) -> str:
    """The rule file as YAML text (without the generated-file header). ``owners``: group name
    -> the resource that holds that group alone (a build's PrometheusRule objects): its text is
    asked of ``resource_texts`` by that resource, so that a build reusing an earlier one's texts
    takes it rather than write it again, and then looks the group up only if a writer needs its
    value (``yamltext.Later``: the rule file's writer does not)."""
    known, given = owners or {}, computed or {}
    written = []
    for _, sla in sorted(system.slas.items()):
        name = group_name(system, sla)
        group = partial(_group_of, system, sla, given, name)
        written.append(_written_group(group, known.get(name)))
    return yamltext.dump({"groups": written})


def _group_of(
    system: ir.System, sla: ir.Sla, computed: Mapping[str, dict[str, Any]], name: str
) -> dict[str, Any]:
    """The group of ``sla``: as ``computed`` holds it under its ``name``, or built afresh."""
    return computed.get(name) or sla_group(system, sla)


def _written_group(
    group: Callable[[], dict[str, Any]], owner: str | None
) -> dict[str, Any] | yamltext.Rendered:
    """The ``group``'s text: taken from ``resource_texts`` by its ``owner`` when it has one
    (the group itself then looked up only when read: :class:`yamltext.Later`), else the text
    the manifests' PrometheusRule objects had written (:func:`shared_group`), else written here
    in the rule file's key order only (half the time of both orders: a build that takes the
    manifests' texts from the build cache writes no group for them), or the group itself for
    the rule file's writer to write in place."""
    if owner is None:
        value = group()
        found: yamltext.Rendered | None = canonical.recalled(_GROUP_TEXT, value)
        return value if found is None else found
    made: list[dict[str, Any]] = []

    def compute() -> str:
        made.append(group())
        return _given_text(made[0], canonical.recalled(_GROUP_TEXT, made[0]))

    text = text_of(RULE_GROUP_YAML, owner, compute)
    return yamltext.given(made[0] if made else yamltext.Later(group), text)


def _given_text(group: dict[str, Any], found: yamltext.Rendered | None) -> str:
    return found.as_given if found is not None else yamltext.given_text(group)


RULE_GROUP_YAML = "prometheus-rule-group-yaml"
"""The kind (``resource_texts``) of a PrometheusRule object's one rule group as ``rules.yaml``
writes it: a function of the object alone."""


def shared_group(group: dict[str, Any]) -> dict[str, Any] | yamltext.Rendered:
    """``group`` for the manifests' YAML writer: inside ``canonical.shared_fragments``
    (``mlplane build``) its text, written once for both key orders and remembered, so that
    ``rules.yaml`` (keys as built, :func:`rules_yaml` after the manifests) and the
    PrometheusRule objects (keys sorted) share one writing; outside it, the group itself."""
    if not canonical.sharing():
        return group
    return canonical.remembered(_GROUP_TEXT, group, yamltext.rendered)


_GROUP_TEXT = "yaml rule group"
