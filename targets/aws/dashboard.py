"""The CloudWatch dashboard of a system: traffic, 5XX errors and latency per served model, and
the state of every notifying alarm (pure data, dumped once as canonical JSON).

One widget per model (invocations and 5XX errors on the left axis, p50/p99 ``ModelLatency`` in
microseconds on the right), then alarm-status widgets of at most 100 alarms each (CloudWatch's
limit per alarm widget), on a two-column grid. A dashboard holds at most 500 widgets; a system
with more is split over several dashboards (``<system>_<env>``, ``<system>_<env>_2``, ...;
spec names never contain ``_``, so these names cannot collide with another system's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlplane.targets.aws import alarm_math

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
WIDGETS_PER_DASHBOARD = 500
ALARMS_PER_WIDGET = 100
_WIDTH, _HEIGHT = 12, 6


@dataclass(frozen=True, slots=True)
class ModelPanel:
    model: str
    endpoint_name: str
    variant_name: str


def _metric(name: str, panel: ModelPanel, options: dict[str, Any]) -> list[Any]:
    return [
        alarm_math.SAGEMAKER_NAMESPACE, name,
        "EndpointName", panel.endpoint_name, "VariantName", panel.variant_name, options,
    ]  # fmt: skip


def model_widget(region: str, panel: ModelPanel) -> dict[str, Any]:
    latency = alarm_math.MODEL_LATENCY
    metrics = [
        _metric(alarm_math.INVOCATIONS, panel, {"stat": "Sum", "label": "invocations"}),
        _metric(alarm_math.ERRORS_5XX, panel, {"stat": "Sum", "label": "5XX errors"}),
        _metric(latency, panel, {"stat": "p50", "label": "p50 latency (us)", "yAxis": "right"}),
        _metric(latency, panel, {"stat": "p99", "label": "p99 latency (us)", "yAxis": "right"}),
    ]
    properties = {
        "title": f"Model {panel.model}",
        "region": region,
        "view": "timeSeries",
        "period": 60,
        "metrics": metrics,
    }
    return {"type": "metric", "properties": properties}


def alarm_widgets(alarm_arns: Sequence[str]) -> list[dict[str, Any]]:
    chunks = [
        alarm_arns[i : i + ALARMS_PER_WIDGET] for i in range(0, len(alarm_arns), ALARMS_PER_WIDGET)
    ]
    return [
        {"type": "alarm", "properties": {"title": "Alarms", "alarms": list(chunk)}}
        for chunk in chunks
    ]


def _placed(widgets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**w, "x": (i % 2) * _WIDTH, "y": (i // 2) * _HEIGHT, "width": _WIDTH, "height": _HEIGHT}
        for i, w in enumerate(widgets)
    ]


def bodies(region: str, panels: Sequence[ModelPanel], alarm_arns: Sequence[str]) -> list[str]:
    """The ``dashboardBody`` texts: sorted keys, no whitespace, ASCII; one per dashboard."""
    widgets = [model_widget(region, p) for p in panels] + alarm_widgets(alarm_arns)
    pages = [
        widgets[i : i + WIDGETS_PER_DASHBOARD]
        for i in range(0, len(widgets), WIDGETS_PER_DASHBOARD)
    ]
    return [
        json.dumps({"widgets": _placed(page)}, sort_keys=True, separators=(",", ":"))
        for page in pages
    ]


def dashboard_name(system: str, environment: str, page: int) -> str:
    base = f"{system}_{environment}"
    return base if page == 1 else f"{base}_{page}"
