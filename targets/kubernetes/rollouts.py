"""Progressive rollouts with Argo Rollouts, gated on the model's SLOs.

``canary`` becomes a ``Rollout`` whose steps set the declared traffic weights, each followed by
the declared pause (or by a pause that waits for ``kubectl argo rollouts promote`` when the spec
gives none). ``blueGreen`` becomes a ``Rollout`` with an active and a preview Service that
promotes after the declared pause (or on command). When the model has availability or latency
SLAs, an ``AnalysisTemplate`` measures them in Prometheus while the rollout runs: in the
background of a canary, after promotion of a blue-green; a measurement below the objective
(the error budget burning faster than it accrues) aborts the rollout and restores the stable
version.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlplane.compiler.core import ir
from mlplane.targets.kubernetes import names
from mlplane.targets.kubernetes.context import Lowering

ROLLOUTS_API = "argoproj.io/v1alpha1"
PROMETHEUS_ADDRESS = "http://prometheus-operated.monitoring.svc:9090"
"""The Service the Prometheus Operator creates for a Prometheus in the ``monitoring`` namespace."""

MEASURE_INTERVAL = "1m"
RATE_WINDOW = "5m"
FAILURE_LIMIT = 2
POST_PROMOTION_COUNT = 5
GATED_INDICATORS = ("availability", "latency")


def sli_query(namespace: str, service: str, indicator: ir.Indicator) -> str:
    """The good-event ratio of an availability or latency SLI, as PromQL.

    Contract, the generic metrics preset: the model's server exposes the counter
    ``http_requests_total`` with a ``code`` label (5xx responses are bad events) and the
    histogram ``http_request_duration_seconds`` (``_bucket`` with ``le``, ``_count``); its
    ServiceMonitor scrapes it through the model's Service, so every series carries the labels
    ``namespace`` and ``job`` (the Prometheus Operator names the job after the Service, which is
    named after the model) — the same selector as the monitoring target's generic preset.
    The latency threshold must be a bucket boundary; ``le`` is matched both as Go client
    libraries print it (``10``) and as Prometheus 3 normalises it (``10.0``).

    The result is a ratio in [0, 1] over the last five minutes, and 1 when there was no
    traffic (no requests burn no budget): never NaN and never empty, so the condition
    ``result[0] >= objective`` always has a value to judge.
    """
    where = f'namespace="{namespace}",job="{service}"'
    if indicator.kind == "latency":
        threshold = indicator.latency_threshold_seconds or 0.0
        good = f"http_request_duration_seconds_bucket{{{where},{_le_matcher(threshold)}}}"
        total = f"http_request_duration_seconds_count{{{where}}}"
    else:
        good = f'http_requests_total{{{where},code!~"5.."}}'
        total = f"http_requests_total{{{where}}}"
    return (
        f"(sum(rate({good}[{RATE_WINDOW}])) / (sum(rate({total}[{RATE_WINDOW}])) > 0))"
        " or on() vector(1)"
    )


def _le_matcher(seconds: float) -> str:
    text = repr(float(seconds))
    if text.endswith(".0"):
        whole = text[:-2]
        return f'le=~"{whole}|{whole}[.]0"'
    return f'le="{text}"'


def objective_ratio(objective: float) -> str:
    """``99.95`` → ``0.9995``, exactly (no binary floating-point noise in the condition)."""
    return format(Decimal(repr(objective)) / 100, "f")


_GATING: list[tuple[ir.System, dict[str, list[ir.Sla]]]] = []
"""The last system's gating SLAs by model: indexed once, not rescanned for every model."""


def gating_slas(system: ir.System, model: ir.Model) -> list[ir.Sla]:
    """The model's availability/latency SLAs, in name order."""
    if not _GATING or _GATING[0][0] is not system:
        index: dict[str, list[ir.Sla]] = {}
        for _, sla in sorted(system.slas.items()):
            if sla.subject_kind == "model" and sla.indicator.kind in GATED_INDICATORS:
                index.setdefault(str(sla.subject), []).append(sla)
        _GATING[:] = [(system, index)]
    return list(_GATING[0][1].get(model.name, ()))


def analysis_template(lowering: Lowering, model: ir.Model, slas: list[ir.Sla]) -> dict[str, Any]:
    blue_green = model.serving.rollout.strategy == "blueGreen"
    metrics = []
    for sla in slas:
        metric: dict[str, Any] = {
            "name": sla.name,
            "interval": MEASURE_INTERVAL,
            "failureLimit": FAILURE_LIMIT,
            "successCondition": f"result[0] >= {objective_ratio(sla.objective)}",
            "provider": {
                "prometheus": {
                    "address": PROMETHEUS_ADDRESS,
                    "query": sli_query(lowering.namespace, model.name, sla.indicator),
                }
            },
        }
        if blue_green:
            metric["count"] = POST_PROMOTION_COUNT
        metrics.append(metric)
    return {
        "apiVersion": ROLLOUTS_API,
        "kind": "AnalysisTemplate",
        "metadata": lowering.metadata(
            names.analysis_template(model.name),
            names.workload_labels(lowering.system, model, names.SERVING),
        ),
        "spec": {"metrics": metrics},
    }


def _pause(seconds: float | None) -> dict[str, Any]:
    return {} if seconds is None else {"duration": f"{int(seconds)}s"}


def strategy(model: ir.Model, template: str | None) -> dict[str, Any]:
    """The ``spec.strategy`` of the model's Rollout."""
    rollout = model.serving.rollout
    analysis = {"templates": [{"templateName": template}]} if template else None
    if rollout.strategy == "blueGreen":
        blue_green: dict[str, Any] = {
            "activeService": model.name,
            "previewService": names.preview_service(model.name),
        }
        if rollout.pause_seconds is None:
            blue_green["autoPromotionEnabled"] = False
        else:
            blue_green["autoPromotionSeconds"] = int(rollout.pause_seconds)
        if analysis:
            blue_green["postPromotionAnalysis"] = analysis
        return {"blueGreen": blue_green}
    steps: list[dict[str, Any]] = []
    for weight in rollout.steps:
        steps += [{"setWeight": weight}, {"pause": _pause(rollout.pause_seconds)}]
    canary: dict[str, Any] = {"maxSurge": "25%", "maxUnavailable": 0, "steps": steps}
    if analysis:
        canary["analysis"] = {**analysis, "startingStep": 1}
    return {"canary": canary}
