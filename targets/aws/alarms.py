"""The spec's SLAs as CloudWatch burn-rate alarms, rollback alarms for SageMaker deployments, the
SNS topics they notify and a CloudWatch dashboard (pure: the system model in, resources out).

Per SLA with a CloudWatch signal (``alarm_math.py``): one metric-math ``MetricAlarm`` per window
of every burn-rate pair the Prometheus rules use, and one ``CompositeAlarm`` per severity that
raises it exactly like the Prometheus alert::

    page   = (1h AND 5m above 14.4) OR (6h AND 30m above 6)      (factors of a 30-day window,
    ticket = (1d AND 2h above 3)   OR (3d AND 6h above 1)         scaled for other windows)

Only the composites (and the ticket alarms below) notify: their alarm and OK actions publish to
the KMS-encrypted SNS topic of the receiver the Alertmanager routing of the alarm's owner and
severity reaches (``<system>_<env>_alerts_<receiver>``; ``receivers.py`` subscribes the
receiver to it); an alarm whose team reaches no receiver has no actions, as Alertmanager would
drop it (``monitoring-unrouted``). The topic policy lets
``cloudwatch.amazonaws.com`` publish only for alarms of this account whose names carry this
system's prefix (``aws:SourceAccount``, ``aws:SourceArn``); the KMS key's policy (made by the
key's owner in this target) must let the same principal use the key (``kms:Decrypt``,
``kms:GenerateDataKey*``), or CloudWatch cannot publish to the encrypted topic.

Per served model:

* a **traffic floor** (ticket): fewer than one invocation in 15 minutes, missing data breaching -
  the blind spot of ratio alarms, which stay quiet when an endpoint answers nothing at all;
* **rollback alarms**, which SageMaker watches during a blue/green or rolling deployment
  (``autoRollbackConfiguration``), without notifications of their own, on the metrics of the
  new fleet only (``EndpointConfigName`` of the model's endpoint configuration): the 5XX ratio over one
  minute above the fast-burn page ratio of the model's strictest availability SLA (14.4 × budget
  at 30 days, capped at 50 %; 5 % without an availability SLA), and, with a latency SLA, p99
  ``ModelLatency`` over one minute above the strictest latency threshold (percentiles on too few
  samples are ignored, so a handful of slow canary requests does not roll back on its own).

Freshness and drift SLAs read the custom-metric contract of ``alarm_math.py`` and add a no-data
alarm (ticket, no datapoint in 10 minutes: the publisher is down and the burn alarms are blind),
drift SLAs of a model with drift monitoring also the drift alarm of the monitoring target (the
highest feature score above the model's threshold for 15 minutes, ticket). Custom ``ratio``
SLAs are PromQL, which CloudWatch cannot evaluate: a located warning (``aws-sla-not-lowered``);
the Prometheus rules still carry them. Names: CloudWatch alarm names are
``<system>/<env>/...`` (static, at most 255 characters for schema-valid names), logical names
``alarm-...``, ``sns-...``, ``dashboard-...`` joined by dots, which spec names cannot contain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import Resource, ResourceOptions, json_document, ref
from mlplane.compiler.core.ir import Origin
from mlplane.targets import slo
from mlplane.targets.aws import alarm_codes, alarm_math, dashboard, receivers
from mlplane.targets.aws.settings import aws_of
from mlplane.targets.monitoring import alerts

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM = "aws:cloudwatch/compositeAlarm:CompositeAlarm"

SEVERITIES: tuple[slo.Severity, ...] = ("page", "ticket")
TRAFFIC_FLOOR_SECONDS = 900
ROLLBACK_SECONDS = 60
NO_DATA_SECONDS = 60 * int(alerts.ABSENT_FOR.removesuffix("m"))
DRIFT_MINUTES = int(alerts.DRIFT_FOR.removesuffix("m"))
ALARM_NAME_LIMIT = 255


@dataclass(frozen=True, slots=True)
class ServedModel:
    """One served model, as the alarms need it."""

    model: str
    endpoint_name: str
    variant_name: str
    origin: Origin
    config_name: Any = None
    """The endpoint configuration's name (a reference marker): the rollback alarms watch only
    its fleet (``EndpointConfigName``); None watches the whole variant."""


@dataclass(frozen=True, slots=True)
class AlarmLowering:
    resources: tuple[Resource, ...]
    rollback_alarm_names: Mapping[str, tuple[str, ...]]
    """Model -> the CloudWatch names of its rollback alarms (``autoRollbackConfiguration``)."""
    rollback_alarm_resources: Mapping[str, tuple[str, ...]]
    """Model -> the logical names of the same alarms (for ``dependsOn``)."""


@dataclass
class _Build:
    system: ir.System
    served: Mapping[str, ServedModel]
    provider: str
    parent: str | None
    model_slas: Mapping[tuple[str, str], list[ir.Sla]]
    """``(model, indicator kind)`` -> the model's SLAs of that kind, indexed once."""
    resources: list[Resource] = field(default_factory=list)
    notifying: list[str] = field(default_factory=list)
    """CloudWatch names of the alarms that notify, for the dashboard."""
    topics: set[str] = field(default_factory=set)
    """The receivers whose topics some alarm publishes to."""
    routed: dict[tuple[str, str], str | None] = field(default_factory=dict)
    """``(owner, severity)`` -> the receiver its alerts reach, worked out once per pair."""

    def add(
        self, token: str, name: str, inputs: dict[str, Any], origin: Origin,
        depends_on: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        options = _options(self.provider)
        self.resources.append(
            Resource(token, name, inputs, origin, self.parent, depends_on, options)
        )


def _options(provider: str) -> ResourceOptions:
    """The explicit provider of every alarm resource: the environment's, never a default one."""
    return ResourceOptions(provider=provider)


# --- names -------------------------------------------------------------------------------------


def alarm_name(system: ir.System, *parts: str) -> str:
    """A CloudWatch alarm name: ``<system>/<env>/<parts...>``."""
    return "/".join((system.name, system.environment.name, *parts))


def _logical(kind: str, *parts: str) -> str:
    return ".".join((f"alarm-{kind}", *parts))


def topic_logical(receiver: str) -> str:
    return f"sns-{receiver}"


def topic_name(system: ir.System, receiver: str) -> str:
    return f"{system.name}_{system.environment.name}_alerts_{receiver}"


def alarm_arn(system: ir.System, name: str) -> str:
    env = system.environment
    return alarm_math.alarm_arn(
        aws_of(env).aws_region or "", aws_of(env).aws_account_id or "", name
    )


# --- the interface -----------------------------------------------------------------------------


def lower_alarms(
    system: ir.System,
    served: Mapping[str, ServedModel],
    *,
    provider: str,
    kms_key: str,
    parent: str | None,
    diagnostics: Diagnostics,
) -> AlarmLowering:
    """Every alarm resource of ``system``; ``kms_key`` is the logical name of the key that
    encrypts the topics, ``provider`` the logical name of the environment's AWS provider."""
    build = _Build(system, served, provider, parent, _index_model_slas(system))
    for sla in system.slas.values():
        _lower_sla(build, sla, diagnostics)
    rollback: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, model in sorted(served.items()):
        _traffic_floor(build, model)
        rollback[name] = _rollback_alarms(build, model)
    if build.notifying:
        _topics(build, kms_key)
        topics = {name: topic_logical(name) for name in sorted(build.topics)}
        build.resources += receivers.lower_receivers(system, topics, provider, parent, diagnostics)
    if build.resources:
        dashboard_resource(build)
    return AlarmLowering(
        tuple(build.resources),
        MappingProxyType({m: tuple(n for n, _ in pairs) for m, pairs in rollback.items()}),
        MappingProxyType({m: tuple(r for _, r in pairs) for m, pairs in rollback.items()}),
    )


# --- SNS ---------------------------------------------------------------------------------------


def _topics(build: _Build, kms_key: str) -> None:
    origin = _slas_origin(build.system)
    for receiver in sorted(build.topics):
        topic = topic_logical(receiver)
        inputs = {"name": topic_name(build.system, receiver), "kmsMasterKeyId": ref(kms_key, "arn")}
        build.add(TOPIC, topic, inputs, origin)
        policy = {"arn": ref(topic, "arn"), "policy": json_document(_topic_policy(build, topic))}
        build.add(TOPIC_POLICY, f"{topic}.policy", policy, origin)


def _topic_policy(build: _Build, topic: str) -> dict[str, Any]:
    """CloudWatch may publish, for this account's alarms of this system only."""
    account = aws_of(build.system.environment).aws_account_id or ""
    statement = {
        "Sid": "CloudWatchAlarmsPublish",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": ref(topic, "arn"),
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": alarm_arn(build.system, alarm_name(build.system, "*"))},
        },
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def _actions(build: _Build, owner: str, severity: str) -> dict[str, Any]:
    """Publish to the topic of the receiver that alerts of ``owner`` and ``severity`` reach."""
    key = (owner, severity)
    if key not in build.routed:  # the routes are walked once per pair, not once per alarm
        build.routed[key] = receivers.receiver_for(build.system, owner, severity)
    receiver = build.routed[key]
    if receiver is None:
        return {"alarmActions": [], "okActions": []}
    build.topics.add(receiver)
    target = [ref(topic_logical(receiver), "arn")]
    return {"alarmActions": target, "okActions": list(target)}


def _slas_origin(system: ir.System) -> Origin:
    location = system.locate(("slas",))
    return Origin(("slas",), location) if location else system.environment.origin


# --- SLAs --------------------------------------------------------------------------------------


def _lower_sla(build: _Build, sla: ir.Sla, diagnostics: Diagnostics) -> None:
    signal = _signal(build, sla)
    if isinstance(signal, str):
        diagnostics.warning(
            alarm_codes.SLA_NOT_LOWERED,
            f"SLA {sla.name!r} raises no CloudWatch alarm: {signal}",
            sla.origin.location,
            sla.origin.path,
            hint="its Prometheus rules (monitoring/rules.yaml) still alert on it",
        )
        return
    by_pair: dict[str, list[tuple[str, str]]] = {}
    for window in alarm_math.burn_windows(sla.objective, sla.window_seconds):
        by_pair.setdefault(_pair_key(window.threshold), []).append(
            _burn_alarm(build, sla, signal, window)
        )
    for severity in SEVERITIES:
        _composite(build, sla, severity, by_pair)
    if sla.indicator.kind in ("freshness", "drift"):
        _no_data(build, sla, signal)
    if sla.indicator.kind == "drift":
        _drift(build, sla)


def _signal(build: _Build, sla: ir.Sla) -> alarm_math.Signal | str:
    """The SLA's signal, or why it has none on CloudWatch."""
    kind, subject, indicator = sla.indicator.kind, sla.subject or "", sla.indicator
    if kind == "ratio":
        return "custom PromQL ratios cannot be evaluated by CloudWatch"
    if kind == "freshness":
        return alarm_math.freshness(build.system.name, subject, indicator.max_age_seconds or 0)
    if kind == "drift":
        return alarm_math.drift(build.system.name, subject, indicator.drift_threshold or 0)
    model = build.served.get(subject)
    if model is None:
        return f"model {subject!r} has no SageMaker endpoint in this environment"
    if kind == "latency":
        threshold = indicator.latency_threshold_seconds or 0
        return alarm_math.latency(model.endpoint_name, model.variant_name, threshold)
    return alarm_math.availability(model.endpoint_name, model.variant_name)


def _pair_key(threshold: slo.Threshold) -> str:
    return f"{threshold.pair.long}-{threshold.pair.short}"


def _burn_alarm(
    build: _Build, sla: ir.Sla, signal: alarm_math.Signal, window: alarm_math.BurnWindow
) -> tuple[str, str]:
    """One window of one pair; returns the alarm's CloudWatch and logical names."""
    pair, factor = _pair_key(window.threshold), window.threshold.factor
    name = alarm_name(build.system, "slo", sla.name, f"burn-{pair}", window.window)
    budget = slo.error_budget(sla.objective)
    label = f"burn rate of {sla.name} over {window.window}"
    inputs = {
        "name": name,
        "alarmDescription": (
            f"Burn rate of SLO {sla.name} over {window.window} above {slo.number(factor)} "
            f"({window.role} window of the {pair} {window.threshold.pair.severity} pair)"
        ),
        "comparisonOperator": "GreaterThanThreshold",
        "threshold": float(factor),
        "evaluationPeriods": 1,
        "datapointsToAlarm": 1,
        "treatMissingData": "notBreaching",
        "metricQueries": alarm_math.burn_queries(signal, budget, window.period, label),
    }
    logical = _logical("slo", sla.name, pair, window.window)
    build.add(METRIC_ALARM, logical, inputs, sla.origin)
    return name, logical


def alarm_rule(pairs: Sequence[Sequence[str]]) -> str:
    """``(ALARM("a") AND ALARM("b")) OR (...)``: any pair with both of its windows in alarm."""
    return " OR ".join(
        "(" + " AND ".join(f'ALARM("{name}")' for name in names) + ")" for names in pairs
    )


def _composite(
    build: _Build,
    sla: ir.Sla,
    severity: slo.Severity,
    by_pair: Mapping[str, list[tuple[str, str]]],
) -> None:
    chosen = [
        t for t in slo.thresholds(sla.objective, sla.window_seconds) if t.pair.severity == severity
    ]
    if not chosen:
        return
    keys = [_pair_key(t) for t in chosen]
    name = alarm_name(build.system, "slo", sla.name, severity)
    inputs = {
        "alarmName": name,
        "alarmDescription": (
            f"SLO {sla.name} is burning its error budget ({severity}): "
            + " or ".join(
                f"{slo.number(t.factor)}x over {t.pair.long} and {t.pair.short}" for t in chosen
            )
        ),
        "alarmRule": alarm_rule([[n for n, _ in by_pair[key]] for key in keys]),
        **_actions(build, sla.owner, severity),
    }
    members = tuple(sorted(logical for key in keys for _, logical in by_pair[key]))
    build.add(COMPOSITE_ALARM, _logical("slo", sla.name, severity), inputs, sla.origin, members)
    build.notifying.append(name)


def _no_data(build: _Build, sla: ir.Sla, signal: alarm_math.Signal) -> None:
    """No datapoint of the contract's metric for 10 minutes: the burn alarms are blind."""
    count = next(m for m in signal.metrics if m.id == signal.count)
    name = alarm_name(build.system, "slo", sla.name, "no-data")
    inputs = {
        "name": name,
        "alarmDescription": f"No {count.metric} datapoint for SLO {sla.name} in {alerts.ABSENT_FOR}",
        **alarm_math.simple_alarm(count, NO_DATA_SECONDS, 1),
        "comparisonOperator": "LessThanThreshold",
        "threshold": 1.0,
        "treatMissingData": "breaching",
        **_actions(build, sla.owner, "ticket"),
    }
    build.add(METRIC_ALARM, _logical("slo", sla.name, "no-data"), inputs, sla.origin)
    build.notifying.append(name)


def _drift(build: _Build, sla: ir.Sla) -> None:
    """The model's highest feature drift score above its own threshold for 15 minutes."""
    model = build.system.models.get(sla.subject or "")
    if model is None or model.drift is None:
        return
    dims = (("Model", model.name),)
    score = alarm_math.MetricStat(
        "score", alarm_math.custom_namespace(build.system.name), alarm_math.DRIFT_SCORE, dims,
        "Maximum",
    )  # fmt: skip
    name = alarm_name(build.system, "slo", sla.name, "drift")
    threshold = model.drift.threshold
    inputs = {
        "name": name,
        "alarmDescription": (
            f"Input drift of model {model.name} above {slo.number(threshold)} for "
            f"{alerts.DRIFT_FOR}"
        ),
        **alarm_math.simple_alarm(score, 60, DRIFT_MINUTES),
        "comparisonOperator": "GreaterThanThreshold",
        "threshold": float(threshold),
        "treatMissingData": "notBreaching",
        **_actions(build, sla.owner, "ticket"),
    }
    build.add(METRIC_ALARM, _logical("slo", sla.name, "drift"), inputs, sla.origin)
    build.notifying.append(name)


# --- served models -----------------------------------------------------------------------------


def _model_owner(build: _Build, model: str) -> str:
    found = build.system.models.get(model)
    return found.owner if found is not None else build.system.owner


def _traffic_floor(build: _Build, model: ServedModel) -> None:
    dims = alarm_math.endpoint_dimensions(model.endpoint_name, model.variant_name)
    invocations = alarm_math.MetricStat(
        "inv", alarm_math.SAGEMAKER_NAMESPACE, alarm_math.INVOCATIONS, dims, "Sum"
    )
    name = alarm_name(build.system, "model", model.model, "traffic-floor")
    inputs = {
        "name": name,
        "alarmDescription": f"Model {model.model} answered no invocation in 15 minutes",
        **alarm_math.simple_alarm(invocations, TRAFFIC_FLOOR_SECONDS, 1),
        "comparisonOperator": "LessThanThreshold",
        "threshold": 1.0,
        "treatMissingData": "breaching",
        **_actions(build, _model_owner(build, model.model), "ticket"),
    }
    build.add(METRIC_ALARM, _logical("model", model.model, "traffic-floor"), inputs, model.origin)
    build.notifying.append(name)


def _index_model_slas(system: ir.System) -> dict[tuple[str, str], list[ir.Sla]]:
    found: dict[tuple[str, str], list[ir.Sla]] = {}
    for sla in system.slas.values():
        if sla.subject_kind == "model" and sla.subject is not None:
            found.setdefault((sla.subject, sla.indicator.kind), []).append(sla)
    return found


def _model_slas(build: _Build, model: str, kind: str) -> list[ir.Sla]:
    return build.model_slas.get((model, kind), [])


def _rollback_alarms(build: _Build, model: ServedModel) -> tuple[tuple[str, str], ...]:
    """``(CloudWatch name, logical name)`` of the model's rollback alarms."""
    found = [_rollback_errors(build, model)]
    latency = _model_slas(build, model.model, "latency")
    if latency:
        seconds = min(s.indicator.latency_threshold_seconds or 0 for s in latency)
        found.append(_rollback_latency(build, model, seconds))
    return tuple(found)


def _rollback_errors(build: _Build, model: ServedModel) -> tuple[str, str]:
    signal = alarm_math.availability(model.endpoint_name, model.variant_name, model.config_name)
    ratio = alarm_math.rollback_error_ratio(_model_slas(build, model.model, "availability"))
    name = alarm_name(build.system, "rollback", model.model, "errors")
    expression = {
        "id": "ratio",
        "expression": f"IF({signal.count}>0,{signal.bad},0)",
        "label": f"5XX ratio of {model.model}",
        "returnData": True,
    }
    inputs = {
        "name": name,
        "alarmDescription": f"5XX ratio of model {model.model} over 1 minute above {slo.number(ratio)}",
        "comparisonOperator": "GreaterThanThreshold",
        "threshold": float(ratio),
        "evaluationPeriods": 1,
        "datapointsToAlarm": 1,
        "treatMissingData": "notBreaching",
        "metricQueries": [m.query(ROLLBACK_SECONDS) for m in signal.metrics] + [expression],
    }
    logical = _logical("rollback", model.model, "errors")
    build.add(METRIC_ALARM, logical, inputs, model.origin)
    return name, logical


def _rollback_latency(build: _Build, model: ServedModel, seconds: float) -> tuple[str, str]:
    dims: tuple[tuple[str, Any], ...] = alarm_math.endpoint_dimensions(
        model.endpoint_name, model.variant_name
    )
    if model.config_name is not None:
        dims = alarm_math.fleet_dimensions(
            model.endpoint_name, model.variant_name, model.config_name
        )
    p99 = alarm_math.MetricStat(
        "p99", alarm_math.SAGEMAKER_NAMESPACE, alarm_math.MODEL_LATENCY, dims, "p99"
    )
    micro = alarm_math.microseconds(seconds)
    name = alarm_name(build.system, "rollback", model.model, "latency")
    inputs = {
        "name": name,
        "alarmDescription": f"p99 latency of model {model.model} over 1 minute above {micro} us",
        **alarm_math.simple_alarm(p99, ROLLBACK_SECONDS, 1),
        "comparisonOperator": "GreaterThanThreshold",
        "threshold": float(micro),
        "treatMissingData": "notBreaching",
        "evaluateLowSampleCountPercentiles": "ignore",
    }
    logical = _logical("rollback", model.model, "latency")
    build.add(METRIC_ALARM, logical, inputs, model.origin)
    return name, logical


# --- dashboard ---------------------------------------------------------------------------------


def dashboard_resource(build: _Build) -> None:
    system = build.system
    pages = dashboard.bodies(
        aws_of(system.environment).aws_region or "",
        [
            dashboard.ModelPanel(m.model, m.endpoint_name, m.variant_name)
            for _, m in sorted(build.served.items())
        ],
        [alarm_arn(system, name) for name in sorted(build.notifying)],
    )
    for page, body in enumerate(pages, start=1):
        name = dashboard.dashboard_name(system.name, system.environment.name, page)
        logical = f"dashboard-{system.name}" + ("" if page == 1 else f".{page}")
        inputs = {"dashboardName": name, "dashboardBody": body}
        build.add(dashboard.DASHBOARD, logical, inputs, system.environment.origin)
