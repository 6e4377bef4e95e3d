"""One Grafana dashboard per system and environment, built from the recorded SLO series.

Panels query the ``slo:*`` series by ``system`` and ``namespace`` rather than one query per SLA,
so the dashboard stays the same size whether the system has 3 SLAs or 300; only the latency,
freshness and drift rows list their subjects. Titles hold names only (never spec free text, which
Grafana would interpolate ``$variables`` in). The JSON is deterministic: keys sorted, panel ids
and grid positions assigned in a fixed order, and the ``uid`` derived from the system and
environment names, so re-importing replaces the same dashboard and two environments in one
Grafana do not overwrite each other.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlplane.compiler.core import canonical, ir
from mlplane.schema import runtimes
from mlplane.targets.monitoring import names, presets, promql, sli

SCHEMA_VERSION = 39
"""Grafana 10.4/11 dashboards; older Grafana migrates down poorly, newer migrates up."""
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24

Panel = dict[str, Any]


def dashboard_uid(system: ir.System) -> str:
    """``mlplane-`` and 16 hex digits of SHA-256 over system and environment (Grafana allows 40)."""
    key = f"{system.name}\0{system.environment.name}".encode()
    return "mlplane-" + hashlib.sha256(key).hexdigest()[:16]


def _scope(system: ir.System) -> str:
    return promql.label_selector({"namespace": system.environment.namespace, "system": system.name})


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def _panel(
    kind: str, title: str, targets: list[dict[str, Any]], unit: str, **options: Any
) -> Panel:
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, **options.pop("defaults", {})}, "overrides": []},
        "options": options,
    }


def _thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def slo_panels(system: ir.System) -> list[Panel]:
    """Attainment and budget over each SLA's own window, and burn rates."""
    scope = _scope(system)
    attained = _panel(
        "bargauge",
        "SLO attainment over each SLO's window",
        [_target(f"1 - {names.SLO_WINDOW_RATIO}{scope}", "{{slo}}", "A")],
        "percentunit",
        displayMode="basic",
        orientation="horizontal",
        reduceOptions={"calcs": ["lastNotNull"]},
        defaults={"min": 0.9, "max": 1, "decimals": 3},
    )
    remaining = _panel(
        "bargauge",
        "Error budget remaining",
        [_target(f"{names.BUDGET_REMAINING}{scope}", "{{slo}}", "A")],
        "percentunit",
        displayMode="basic",
        orientation="horizontal",
        reduceOptions={"calcs": ["lastNotNull"]},
        defaults={
            "min": -1,
            "max": 1,
            "thresholds": _thresholds(("red", None), ("orange", 0), ("green", 0.25)),
        },
    )
    burn = [
        _panel(
            "timeseries",
            f"Burn rate over {window} (1 = budget lasts exactly the window)",
            [
                _target(
                    f"{names.ratio(window)}{scope} / {names.ERROR_BUDGET}{scope}", "{{slo}}", "A"
                )
            ],
            "none",
            legend={"displayMode": "table", "placement": "right"},
        )
        for window in ("1h", "6h", "3d")
    ]
    return [attained, remaining, *burn]


def _latency_query(system: ir.System, model: ir.Model) -> str | None:
    histogram = runtimes.runtime(model.runtime).latency
    if histogram is None:
        return None
    matchers = presets.model_matchers(
        runtimes.runtime(model.runtime), model.name, system.environment.namespace
    )
    bucket = promql.selector(f"{histogram.metric}_bucket", matchers)
    scale = " / 1000" if histogram.unit == "milliseconds" else ""
    return f"histogram_quantile(0.99, sum by (le) (rate({bucket}[$__rate_interval]))){scale}"


def latency_panels(system: ir.System) -> list[Panel]:
    models = sorted(
        {s.subject for s in system.slas.values() if s.indicator.kind == "latency" and s.subject}
    )
    targets = [
        _target(query, model, f"L{index}")
        for index, model in enumerate(models)
        if (query := _latency_query(system, system.models[model])) is not None
    ]
    if not targets:
        return []
    return [_panel("timeseries", "p99 request latency of models with a latency SLO", targets, "s")]


def freshness_panels(system: ir.System) -> list[Panel]:
    sources = sorted(
        {s.subject for s in system.slas.values() if s.indicator.kind == "freshness" and s.subject}
    )
    if not sources:
        return []
    gauge = promql.selector(
        sli.FRESHNESS_GAUGE,
        (
            promql.matcher("namespace", "=", promql.safe_value(system.environment.namespace)),
            promql.matcher("data_source", "=~", promql.regex_alternatives(sources)),
        ),
    )
    query = f"time() - max by (data_source) ({gauge})"
    return [
        _panel(
            "timeseries",
            "Data age (time since the last successful update)",
            [_target(query, "{{data_source}}", "A")],
            "s",
        )
    ]


def drift_panels(system: ir.System) -> list[Panel]:
    models = sorted(
        {s.subject for s in system.slas.values() if s.indicator.kind == "drift" and s.subject}
    )
    targets = []
    for index, name in enumerate(models):
        model = system.models[name]
        features = model.drift.features if model.drift else ()
        gauge = sli.drift_selector(system.environment.namespace, name, features)
        targets.append(
            _target(f"max by (model, feature) ({gauge})", "{{model}} {{feature}}", f"D{index}")
        )
    if not targets:
        return []
    return [_panel("timeseries", "Drift score per monitored feature", targets, "none")]


def _row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def _layout(sections: list[tuple[str, list[Panel]]]) -> list[Panel]:
    """Rows of half-width panels, ids and grid positions in order."""
    laid: list[Panel] = []
    y = 0
    for title, panels in sections:
        if not panels:
            continue
        laid.append({**_row(title), "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y}})
        y += 1
        for index, panel in enumerate(panels):
            x = (index % 2) * (WIDTH // 2)
            laid.append({**panel, "gridPos": {"h": 8, "w": WIDTH // 2, "x": x, "y": y}})
            y += 8 if index % 2 == 1 or index == len(panels) - 1 else 0
    return [{**panel, "id": index + 1} for index, panel in enumerate(laid)]


def dashboard(system: ir.System) -> dict[str, Any]:
    """The dashboard model (Grafana's JSON, as data)."""
    sections = [
        ("Service level objectives", slo_panels(system)),
        ("Latency", latency_panels(system)),
        ("Data freshness", freshness_panels(system)),
        ("Model drift", drift_panels(system)),
    ]
    variable = {
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        "current": {}, "hide": 0, "refresh": 1, "options": [],
    }  # fmt: skip
    return {
        "annotations": {"list": []},
        "editable": False,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": _layout(sections),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["mlplane", "slo", promql.safe_value(system.name)],
        "templating": {"list": [variable]},
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": f"mlplane: {promql.safe_value(system.name)} ({promql.safe_value(system.environment.name)})",
        "uid": dashboard_uid(system),
        "version": 1,
    }


def dashboard_json(system: ir.System) -> str:
    """The dashboard as JSON text: sorted keys, two-space indent, a final newline."""
    return canonical.canonical_json(dashboard(system))
