"""Progressive rollouts with Argo Rollouts, gated on the model's SLOs.

``canary`` becomes a ``Rollout`` whose steps set the declared traffic weights, each followed by
the declared pause (or by a pause that waits for ``kubectl argo rollouts promote`` when the spec
gives none). ``blueGreen`` becomes a ``Rollout`` with an active and a preview Service that
promotes after the declared pause (or on command). When the model has availability or latency
SLAs, an ``AnalysisTemplate`` measures them in Prometheus while the rollout runs: in the
background of a canary, after promotion of a blue-green.

Each measurement reads the **new version's pods only** (the ``rollouts-pod-template-hash`` of
the latest ReplicaSet, passed as the argument ``canary-hash``) and **fails closed**:

* below the objective (the error budget burning faster than it accrues) it *fails*; a second
  failed measurement fails the analysis (Argo fails a metric when ``failed > failureLimit``),
  which aborts the rollout and restores the stable version;
* with no traffic to the new pods (or no series at all: a broken scrape) the query returns no
  sample, which meets neither condition: the measurement is *inconclusive*; a third one makes
  the analysis Inconclusive (``inconclusive > inconclusiveLimit``), which pauses the rollout
  until someone promotes or aborts it. No data is never a success.

A canary's analysis runs in the background and holds no step, so its pauses must outlast the
time the analysis needs to decide (:data:`GATE_SECONDS`); :func:`check_gate_time` refuses a gated
canary whose pauses end sooner. The e2e tier runs these templates with the real Argo Rollouts
controller against a real Prometheus (tests/e2e/test_rollout_analysis.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlplane.compiler.core import ir
from mlplane.schema import runtimes
from mlplane.targets.kubernetes import codes, edge, names
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.settings import kubernetes_of
from mlplane.targets.monitoring import presets, promql

ROLLOUTS_API = "argoproj.io/v1alpha1"
DELETION_ANNOTATIONS = {"pulumi.com/deletionPropagationPolicy": "background"}
"""A Rollout is deleted in the background (its ReplicaSets and pods follow through garbage
collection). In the foreground, which the Pulumi Kubernetes provider uses by default, the
Rollout stays while its dependents go, and the provider (4.25.0) crashes awaiting it: the
generic status check cannot read Argo Rollouts' string ``status.observedGeneration``. Found by
the e2e tier (tests/e2e/) on ``mlplane destroy``."""
PROMETHEUS_ADDRESS = "http://prometheus-operated.{namespace}.svc:9090"
"""The Service the Prometheus Operator creates for a Prometheus, in the environment's
``kubernetes.monitoring.monitoringNamespace`` (default ``monitoring``)."""

MEASURE_INTERVAL_SECONDS = 60
MEASURE_INTERVAL = f"{MEASURE_INTERVAL_SECONDS // 60}m"
RATE_WINDOW = "5m"
FAILURE_LIMIT = 1
"""Argo fails a metric when ``failed > failureLimit``: the second failed measurement aborts."""
INCONCLUSIVE_LIMIT = 2
"""Argo makes a metric Inconclusive when ``inconclusive > inconclusiveLimit``: two measurements
without traffic are tolerated while new pods warm up, the third pauses the rollout."""
POST_PROMOTION_COUNT = 5
GATED_INDICATORS = ("availability", "latency")
GATE_SECONDS = (INCONCLUSIVE_LIMIT + 1) * MEASURE_INTERVAL_SECONDS
"""The least time a canary's pauses must give its gate, all steps together. The analysis starts
with the first pause and measures at once, then once an interval: a failing canary is stopped at
its second measurement, one without traffic at its third (``INCONCLUSIVE_LIMIT`` intervals in),
and one more interval covers the new pods' first scrapes and the controller's reaction. A
canary whose pauses end sooner is promoted before its gate has decided: on the e2e tier, with
``steps: [50], pause: 1m``, a canary that got no traffic was promoted after two Inconclusive
measurements, its analysis then marked Successful (tests/e2e/test_rollout_analysis.py proves that
three minutes are enough)."""

HASH_ARG = "canary-hash"
"""The analysis argument holding the pod-template hash of the new version's ReplicaSet."""
POD_HASH_LABEL = "rollouts-pod-template-hash"
"""The label Argo Rollouts puts on every pod of a Rollout's ReplicaSet."""
HASH_SERIES_LABEL = "rollouts_pod_template_hash"
"""The same label on scraped series: the ServiceMonitor copies it with ``podTargetLabels``
and Prometheus label names replace ``-`` by ``_``."""


def sli_query(model: ir.Model, namespace: str, indicator: ir.Indicator) -> str:
    """The good-event ratio of the new version's pods over the last five minutes, as PromQL.

    The series and selector are the model's runtime preset (``schema/runtimes``), the same the
    SLO rules read, narrowed to the pods whose ``rollouts_pod_template_hash`` is the analysis
    argument ``canary-hash`` (``{{args.canary-hash}}``, filled in by Argo).

    Availability is ``1 - errors / total``: errors are counted from the error series (a
    counter with a status label only appears with its first error, so a missing error series
    reads as 0 — ``or on() vector(0)`` on the numerator only), and the total must be positive.
    Latency is ``requests at or under the threshold / total``. With no traffic, or no series,
    the result is empty: the conditions below make that inconclusive, never a success.
    """
    preset = runtimes.runtime(model.runtime)
    base = (
        *presets.model_matchers(preset, model.name, namespace),
        promql.matcher(HASH_SERIES_LABEL, "=", "{{args." + HASH_ARG + "}}"),
    )
    if indicator.kind == "latency":
        histogram = preset.latency
        if histogram is None:
            raise presets.UnsupportedSliError(preset.no_latency_reason or "no latency histogram")
        boundary = presets.le_value(histogram, indicator.latency_threshold_seconds or 0.0)
        good = promql.selector(f"{histogram.metric}_bucket", (*base, promql.le_matcher(boundary)))
        total = _sum_rate(f"{histogram.metric}_count", base)
        return f"sum(rate({good}[{RATE_WINDOW}])) / ({total} > 0)"
    counters = preset.requests
    error_matchers = tuple(promql.matcher(*m) for m in counters.error_matchers)
    errors = f"({_sum_rate(counters.errors, (*base, *error_matchers))} or on() vector(0))"
    totals = [_sum_rate(metric, base) for metric in counters.total]
    if len(totals) == 1:
        total = totals[0]
    else:  # a counter that has not appeared yet counts as zero
        total = " + ".join(f"({part} or on() vector(0))" for part in totals)
    return f"1 - {errors} / ({total} > 0)"


def _sum_rate(metric: str, matchers: tuple[str, ...]) -> str:
    return f"sum(rate({promql.selector(metric, matchers)}[{RATE_WINDOW}]))"


def success_condition(objective: float) -> str:
    return f"len(result) > 0 && result[0] >= {objective_ratio(objective)}"


def failure_condition(objective: float) -> str:
    return f"len(result) > 0 && result[0] < {objective_ratio(objective)}"


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
    """One measurement per distinct SLI query, judged against the strictest objective of the
    model's SLAs that read it (when it meets that one it meets the others), named after that SLA:
    the template grows with the model's distinct indicators, not with its SLAs."""
    blue_green = model.serving.rollout.strategy == "blueGreen"
    settings = kubernetes_of(lowering.system.environment.target_settings)
    prometheus_namespace = settings.monitoring_namespace
    strictest: dict[str, ir.Sla] = {}
    for sla in slas:
        query = sli_query(model, lowering.namespace, sla.indicator)
        if query not in strictest or sla.objective > strictest[query].objective:
            strictest[query] = sla
    metrics = []
    for query, sla in sorted(strictest.items(), key=lambda item: item[1].name):
        metric: dict[str, Any] = {
            "name": sla.name,
            "interval": MEASURE_INTERVAL,
            "failureLimit": FAILURE_LIMIT,
            "inconclusiveLimit": INCONCLUSIVE_LIMIT,
            "successCondition": success_condition(sla.objective),
            "failureCondition": failure_condition(sla.objective),
            "provider": {
                "prometheus": {
                    "address": PROMETHEUS_ADDRESS.format(namespace=prometheus_namespace),
                    "query": query,
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
        "spec": {"args": [{"name": HASH_ARG}], "metrics": metrics},
    }


def check_gate_time(lowering: Lowering, model: ir.Model) -> None:
    """A gated canary whose pauses end before its analysis can decide is refused at the
    ``pause:`` line (:data:`GATE_SECONDS`): the background analysis does not hold the steps, so
    the rollout would promote a version its gate has not judged."""
    rollout = model.serving.rollout
    pause = rollout.pause_seconds
    if rollout.strategy != "canary" or pause is None or not gating_slas(lowering.system, model):
        return
    if edge.edge_of(lowering) is not None:  # the edge profile refuses a canary outright
        return
    total = pause * len(rollout.steps)
    if total >= GATE_SECONDS:
        return
    path = ("models", model.name, "serving", "rollout", "pause")
    steps = len(rollout.steps)
    each = "" if steps == 1 else f" ({steps} steps of {_shown(pause)})"
    least = _shown(GATE_SECONDS)
    lowering.diagnostics.error(
        codes.CANARY_PAUSE_TOO_SHORT,
        f"the canary of model {model.name!r} pauses {_shown(total)} in all{each}, but its SLO "
        f"gate needs {least} to judge the new version (one measurement every "
        f"{MEASURE_INTERVAL}: {FAILURE_LIMIT + 1} failed ones stop a failing canary, "
        f"{INCONCLUSIVE_LIMIT + 1} without data one that gets no traffic), so the rollout "
        "would promote the new version before its gate has decided",
        lowering.location(path),
        path,
        hint=f"give the steps' pauses at least {least} together, or omit pause so that "
        "promotion waits for kubectl argo rollouts promote",
    )


def _shown(seconds: float) -> str:
    """``180`` → ``3m``; ``90`` → ``90s``."""
    whole = int(seconds)
    return f"{whole // 60}m" if whole % 60 == 0 and whole else f"{whole}s"


def _pause(seconds: float | None) -> dict[str, Any]:
    return {} if seconds is None else {"duration": f"{int(seconds)}s"}


def strategy(model: ir.Model, template: str | None) -> dict[str, Any]:
    """The ``spec.strategy`` of the model's Rollout."""
    rollout = model.serving.rollout
    analysis = (
        {
            "templates": [{"templateName": template}],
            "args": [{"name": HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}],
        }
        if template
        else None
    )
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
