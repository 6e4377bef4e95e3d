"""The structure of the CloudWatch alarms, SNS topics and dashboard of the AWS target.

Every emitted input key is checked against the argument names of the pulumi_aws 7 classes
(nested metric queries too), every period against ``PutMetricAlarm``'s limits, every name
against its rule; the behaviour of the alarms is in ``test_aws_alarms_math.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics, Severity
from mlplane.compiler.core.graph import Resource, ResourceGraph, ResourceOptions
from mlplane.targets.aws import alarm_codes, alarm_math, alarms, dashboard, receivers
from tests.pulumi_sdk import require_pulumi_sdk

DIGEST = "sha256:14a866f751e10ed211e2cbaf1af17b33323aac0629d7cb7ca2961ff4f3fe8186"
SPEC = f"""\
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata: {{name: acceptance, owner: shop-sre}}
environments:
  prod:
    target: aws
    aws: {{region: eu-west-1, accountId: "123456789012"}}
dataSources:
  orders:
    type: stream
    uri: kafka://events.internal:9093/orders
    classification: internal
    encryption: kms
    freshness: 5m
models:
  checkout:
    framework: sklearn
    version: "1.0.0"
    image: ghcr.io/acme/checkout@{DIGEST}
    runtime: generic
    inputs: [orders]
    monitoring:
      drift: {{method: psi, threshold: 0.2, features: [amount, country]}}
  ranker:
    framework: sklearn
    version: "1.0.0"
    image: ghcr.io/acme/ranker@{DIGEST}
    runtime: generic
    inputs: [orders]
slas:
  checkout-availability: {{model: checkout, objective: 99.9, window: 30d, indicator: availability}}
  checkout-weekly: {{model: checkout, objective: 99.5, window: 7d, indicator: availability}}
  checkout-latency:
    model: checkout
    objective: 99
    window: 30d
    indicator: {{latency: {{threshold: 250ms}}}}
  orders-fresh:
    dataSource: orders
    objective: 99.5
    window: 30d
    indicator: {{freshness: {{maxAge: 5m}}}}
  checkout-drift: {{model: checkout, objective: 99, window: 7d, indicator: {{drift: {{threshold: 0.2}}}}}}
  checkout-errors:
    objective: 99.5
    indicator:
      ratio:
        errors: 'sum(rate(http_requests_total{{job="checkout",code=~"5.."}}[{{{{window}}}}]))'
        total: 'sum(rate(http_requests_total{{job="checkout"}}[{{{{window}}}}]))'
alerting:
  receivers:
    sre-pager: {{email: {{to: [pager@shop.example]}}}}
    sre-tickets: {{email: {{to: [sre@shop.example]}}}}
  routes:
    - {{owner: shop-sre, severity: page, receiver: sre-pager}}
  defaultReceiver: sre-tickets
  smtp: {{smarthost: "smtp.shop.example:587", from: alertmanager@shop.example}}
"""

TOKENS = {
    alarms.TOPIC: ("pulumi_aws.sns", "Topic"),
    alarms.TOPIC_POLICY: ("pulumi_aws.sns", "TopicPolicy"),
    receivers.SUBSCRIPTION: ("pulumi_aws.sns", "TopicSubscription"),
    alarms.METRIC_ALARM: ("pulumi_aws.cloudwatch", "MetricAlarm"),
    alarms.COMPOSITE_ALARM: ("pulumi_aws.cloudwatch", "CompositeAlarm"),
    dashboard.DASHBOARD: ("pulumi_aws.cloudwatch", "Dashboard"),
}


def served_models(system: ir.System) -> dict[str, alarms.ServedModel]:
    return {
        name: alarms.ServedModel(
            name, f"{system.name}-{system.environment.name}-{name}", "primary", model.origin
        )
        for name, model in system.models.items()
    }


@cache
def _compiled(directory: Path) -> ir.System:
    result = compile_spec(directory)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    return result.systems["prod"]


def system_of(directory: Path, text: str) -> ir.System:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mlplane.yaml").write_text(text, encoding="utf-8")
    return _compiled(directory)


def lower(
    system: ir.System, served: Mapping[str, alarms.ServedModel] | None = None
) -> tuple[alarms.AlarmLowering, Diagnostics]:
    diagnostics = Diagnostics()
    found = alarms.lower_alarms(
        system, served_models(system) if served is None else served, provider="aws-provider",
        kms_key="kms-internal", parent=None, diagnostics=diagnostics,
    )  # fmt: skip
    return found, diagnostics


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> ir.System:
    return system_of(tmp_path_factory.mktemp("spec"), SPEC)


@pytest.fixture(scope="module")
def lowered(system: ir.System) -> alarms.AlarmLowering:
    return lower(system)[0]


def by_name(lowered: alarms.AlarmLowering) -> dict[str, Resource]:
    return {r.name: r for r in lowered.resources}


def cloudwatch_name(resource: Resource) -> str:
    return str(resource.inputs.get("name") or resource.inputs.get("alarmName"))


# --- the graph ------------------------------------------------------------------------------------


def test_resources_form_a_graph_with_the_provider_and_the_key(
    system: ir.System, lowered: alarms.AlarmLowering
) -> None:
    stubs = [
        Resource("pulumi:providers:aws", "aws-provider", {}, system.environment.origin),
        Resource("aws:kms/key:Key", "kms-internal", {}, system.environment.origin),
    ]
    graph = ResourceGraph.build("prod", "aws", [*lowered.resources, *stubs])
    assert len(graph) == len(lowered.resources) + 2
    for resource in lowered.resources:
        assert resource.type in TOKENS
        assert resource.name.startswith(("alarm-", "sns-", "dashboard-")), resource.name
        assert resource.options.provider == "aws-provider"


def test_lowering_is_deterministic(system: ir.System, lowered: alarms.AlarmLowering) -> None:
    again = lower(system)[0]
    assert [r.to_json() for r in again.resources] == [r.to_json() for r in lowered.resources]


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _parameters(module: str, name: str) -> set[str]:
    imported = __import__(module, fromlist=[name])
    args = getattr(imported, f"{name}Args", None) or getattr(imported, f"{name}InitArgs")
    return set(inspect.signature(args.__init__).parameters) - {"__self__", "self"}


def _check_keys(inputs: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(k for k in inputs if _snake(k) not in allowed)
    assert not unknown, f"{where}: not an argument of pulumi_aws: {unknown}"


def test_every_input_key_is_an_argument_of_pulumi_aws(lowered: alarms.AlarmLowering) -> None:
    require_pulumi_sdk("pulumi_aws")
    from pulumi_aws.cloudwatch import _inputs

    query = set(inspect.signature(_inputs.MetricAlarmMetricQueryArgs.__init__).parameters)
    metric = set(inspect.signature(_inputs.MetricAlarmMetricQueryMetricArgs.__init__).parameters)
    for resource in lowered.resources:
        _check_keys(resource.inputs, _parameters(*TOKENS[resource.type]), resource.name)
        for entry in resource.inputs.get("metricQueries", []):
            _check_keys(entry, query, resource.name)
            if "metric" in entry:
                _check_keys(entry["metric"], metric, resource.name)


def test_type_tokens_are_the_ones_pulumi_aws_registers() -> None:
    require_pulumi_sdk("pulumi_aws")
    for token, (module, name) in TOKENS.items():
        source = inspect.getsource(getattr(__import__(module, fromlist=[name]), name))
        assert f"'{token}'" in source or f'"{token}"' in source, token


# --- names ---------------------------------------------------------------------------------------------


def test_alarm_names_are_static_prefixed_unique_and_short(
    system: ir.System, lowered: alarms.AlarmLowering
) -> None:
    names = [
        cloudwatch_name(r)
        for r in lowered.resources
        if r.type in (alarms.METRIC_ALARM, alarms.COMPOSITE_ALARM)
    ]
    assert len(names) == len(set(names))
    for name in names:
        assert name.startswith("acceptance/prod/"), name
        assert len(name) <= alarms.ALARM_NAME_LIMIT
        assert '"' not in name


def test_the_longest_schema_valid_names_fit_cloudwatch() -> None:
    longest = "slo/" + "s" * 40 + "/burn-6h-30m/30m"
    assert len("/".join(("x" * 40, "e" * 20, longest))) <= alarms.ALARM_NAME_LIMIT
    assert len(f"{'x' * 40}_{'e' * 20}_alerts_{'r' * 40}") <= 256  # SNS topic names


def test_topic_and_dashboard_names_follow_their_rules(lowered: alarms.AlarmLowering) -> None:
    resources = by_name(lowered)
    for receiver in ("sre-pager", "sre-tickets"):
        name = resources[alarms.topic_logical(receiver)].inputs["name"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", name)
        assert name == f"acceptance_prod_alerts_{receiver}"
    assert resources["dashboard-acceptance"].inputs["dashboardName"] == "acceptance_prod"


# --- metric alarms -----------------------------------------------------------------------------------------


def _periods(inputs: Mapping[str, Any]) -> set[int]:
    if "metricQueries" in inputs:
        return {q["metric"]["period"] for q in inputs["metricQueries"] if "metric" in q}
    return {inputs["period"]}


def test_every_metric_alarm_is_valid_for_put_metric_alarm(lowered: alarms.AlarmLowering) -> None:
    for resource in lowered.resources:
        if resource.type != alarms.METRIC_ALARM:
            continue
        inputs = resource.inputs
        periods = _periods(inputs)
        assert len(periods) == 1, resource.name
        assert alarm_math.valid_evaluation(periods.pop(), inputs["evaluationPeriods"])
        assert 1 <= inputs["datapointsToAlarm"] <= inputs["evaluationPeriods"]
        assert inputs["treatMissingData"] in ("breaching", "notBreaching")
        if "metricQueries" in inputs:
            assert not {"namespace", "metricName", "period", "statistic"} & set(inputs)
            returned = [q for q in inputs["metricQueries"] if q["returnData"]]
            assert len(returned) == 1 and "expression" in returned[0], resource.name
            assert len(inputs["metricQueries"]) <= 20


def test_burn_alarms_of_an_availability_sla(
    system: ir.System, lowered: alarms.AlarmLowering
) -> None:
    resources = by_name(lowered)
    expected = {
        ("1h", 3600, 14.4), ("5m", 300, 14.4), ("6h", 21600, 6.0), ("30m", 1800, 6.0),
        ("1d", 86400, 3.0), ("2h", 7200, 3.0), ("3d", 259200, 1.0), ("6h", 21600, 1.0),
    }  # fmt: skip
    found = set()
    for resource in resources.values():
        if (
            resource.name.startswith("alarm-slo.checkout-availability.")
            and "metricQueries" in resource.inputs
        ):
            inputs = resource.inputs
            window = resource.name.rsplit(".", 1)[1]
            found.add((window, _periods(inputs).pop(), inputs["threshold"]))
            assert inputs["comparisonOperator"] == "GreaterThanThreshold"
            assert inputs["treatMissingData"] == "notBreaching"
            queries = {q["id"]: q for q in inputs["metricQueries"]}
            assert queries["burn"]["expression"] == "IF(inv>0,(FILL(err,0)/inv)/0.001,0)"
            assert queries["inv"]["metric"]["metricName"] == "Invocations"
            assert queries["err"]["metric"]["metricName"] == "Invocation5XXErrors"
            for metric in ("inv", "err"):
                assert queries[metric]["metric"]["stat"] == "Sum"
                assert queries[metric]["metric"]["namespace"] == "AWS/SageMaker"
                assert queries[metric]["metric"]["dimensions"] == {
                    "EndpointName": "acceptance-prod-checkout", "VariantName": "primary",
                }  # fmt: skip
            assert "alarmActions" not in inputs  # only the composites notify
    assert found == expected


def test_seven_day_slo_scales_the_factors_like_the_rules(lowered: alarms.AlarmLowering) -> None:
    resources = by_name(lowered)
    one_hour = resources["alarm-slo.checkout-weekly.1h-5m.1h"].inputs
    assert one_hour["threshold"] == 3.36
    assert "/0.005," in one_hour["metricQueries"][-1]["expression"]
    assert "alarm-slo.checkout-weekly.3d-6h.3d" in resources  # 3d fits into 7d


def test_latency_reads_the_percentile_rank_under_the_threshold_in_microseconds(
    lowered: alarms.AlarmLowering,
) -> None:
    inputs = by_name(lowered)["alarm-slo.checkout-latency.1h-5m.5m"].inputs
    queries = {q["id"]: q for q in inputs["metricQueries"]}
    assert queries["good"]["metric"]["metricName"] == "ModelLatency"
    assert queries["good"]["metric"]["stat"] == "PR(:250000)"
    assert queries["n"]["metric"]["stat"] == "SampleCount"
    assert queries["burn"]["expression"] == "IF(n>0,((100-good)/100)/0.01,0)"


def test_freshness_and_drift_read_the_metric_contract(lowered: alarms.AlarmLowering) -> None:
    resources = by_name(lowered)
    fresh = {
        q["id"]: q for q in resources["alarm-slo.orders-fresh.6h-30m.30m"].inputs["metricQueries"]
    }
    assert fresh["good"]["metric"] == {
        "namespace": "mlplane/acceptance", "metricName": "DataAgeSeconds",
        "dimensions": {"DataSource": "orders"}, "period": 1800, "stat": "PR(:300)",
    }  # fmt: skip
    drift = {
        q["id"]: q for q in resources["alarm-slo.checkout-drift.1h-5m.1h"].inputs["metricQueries"]
    }
    assert drift["good"]["metric"]["metricName"] == "DriftScore"
    assert drift["good"]["metric"]["dimensions"] == {"Model": "checkout"}
    assert drift["good"]["metric"]["stat"] == "PR(:0.2)"
    alarm = resources["alarm-slo.checkout-drift.drift"].inputs
    assert (alarm["statistic"], alarm["period"], alarm["evaluationPeriods"]) == ("Maximum", 60, 15)
    assert alarm["datapointsToAlarm"] == 15 and alarm["threshold"] == 0.2
    for sla in ("orders-fresh", "checkout-drift"):
        no_data = resources[f"alarm-slo.{sla}.no-data"].inputs
        assert no_data["treatMissingData"] == "breaching"
        assert no_data["statistic"] == "SampleCount" and no_data["period"] == 600
    assert "alarm-slo.orders-fresh.drift" not in resources


# --- composites and SNS ------------------------------------------------------------------------------------


def test_composites_combine_long_and_short_windows_like_the_rules(
    system: ir.System, lowered: alarms.AlarmLowering
) -> None:
    resources = by_name(lowered)
    page = resources["alarm-slo.checkout-availability.page"]
    prefix = "acceptance/prod/slo/checkout-availability"
    assert page.inputs["alarmRule"] == (
        f'(ALARM("{prefix}/burn-1h-5m/1h") AND ALARM("{prefix}/burn-1h-5m/5m")) OR '
        f'(ALARM("{prefix}/burn-6h-30m/6h") AND ALARM("{prefix}/burn-6h-30m/30m"))'
    )
    assert page.inputs["alarmActions"] == [{"$ref": "sns-sre-pager", "$output": "arn"}]
    assert page.inputs["okActions"] == [{"$ref": "sns-sre-pager", "$output": "arn"}]
    ticket = resources["alarm-slo.checkout-availability.ticket"]
    assert "burn-3d-6h/3d" in ticket.inputs["alarmRule"]
    assert ticket.inputs["alarmActions"] == [{"$ref": "sns-sre-tickets", "$output": "arn"}]
    names = {cloudwatch_name(r): r.name for r in lowered.resources}
    for composite in (r for r in lowered.resources if r.type == alarms.COMPOSITE_ALARM):
        members = re.findall(r'ALARM\("([^"]+)"\)', composite.inputs["alarmRule"])
        assert sorted(names[m] for m in members) == sorted(composite.depends_on)


def test_topics_are_encrypted_and_only_cloudwatch_of_this_account_publishes(
    lowered: alarms.AlarmLowering,
) -> None:
    resources = by_name(lowered)
    for receiver in ("sre-pager", "sre-tickets"):
        topic = resources[f"sns-{receiver}"]
        assert topic.inputs["kmsMasterKeyId"] == {"$ref": "kms-internal", "$output": "arn"}
        policy = resources[f"sns-{receiver}.policy"].inputs
        assert policy["arn"] == {"$ref": f"sns-{receiver}", "$output": "arn"}
        (statement,) = policy["policy"]["$json"]["Statement"]
        assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert statement["Action"] == "sns:Publish"
        assert statement["Resource"] == {"$ref": f"sns-{receiver}", "$output": "arn"}
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
        assert statement["Condition"]["ArnLike"] == {
            "aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:acceptance/prod/*"
        }


# --- served models -----------------------------------------------------------------------------------------


def test_traffic_floor_per_served_model(lowered: alarms.AlarmLowering) -> None:
    for model in ("checkout", "ranker"):
        inputs = by_name(lowered)[f"alarm-model.{model}.traffic-floor"].inputs
        assert (inputs["metricName"], inputs["statistic"], inputs["period"]) == (
            "Invocations",
            "Sum",
            900,
        )
        assert inputs["comparisonOperator"] == "LessThanThreshold" and inputs["threshold"] == 1.0
        assert inputs["treatMissingData"] == "breaching"
        assert inputs["alarmActions"] == [{"$ref": "sns-sre-tickets", "$output": "arn"}]


def test_rollback_alarms_are_returned_for_the_deployment(lowered: alarms.AlarmLowering) -> None:
    resources = by_name(lowered)
    assert lowered.rollback_alarm_resources == {
        "checkout": ("alarm-rollback.checkout.errors", "alarm-rollback.checkout.latency"),
        "ranker": ("alarm-rollback.ranker.errors",),
    }
    for model, logical in lowered.rollback_alarm_resources.items():
        names = tuple(cloudwatch_name(resources[n]) for n in logical)
        assert lowered.rollback_alarm_names[model] == names
    errors = resources["alarm-rollback.checkout.errors"].inputs
    assert errors["threshold"] == 0.0144  # 14.4 x 0.001, stricter than the weekly SLA's 0.0168
    assert _periods(errors) == {60}
    assert "alarmActions" not in errors
    assert resources["alarm-rollback.ranker.errors"].inputs["threshold"] == 0.05
    latency = resources["alarm-rollback.checkout.latency"].inputs
    assert (latency["extendedStatistic"], latency["threshold"]) == ("p99", 250000.0)
    assert latency["evaluateLowSampleCountPercentiles"] == "ignore"


def test_rollback_error_ratio_is_capped(system: ir.System) -> None:
    loose = [s for s in system.slas.values() if s.name == "checkout-availability"]
    assert alarm_math.rollback_error_ratio([]) == alarm_math.DEFAULT_ROLLBACK_ERROR_RATIO
    assert str(alarm_math.rollback_error_ratio(loose)) == "0.0144"

    very_loose = [dataclasses.replace(loose[0], objective=90.0)]
    assert alarm_math.rollback_error_ratio(very_loose) == alarm_math.MAX_ROLLBACK_ERROR_RATIO


# --- diagnostics ---------------------------------------------------------------------------------------------


def test_ratio_slas_and_unserved_models_get_located_warnings(system: ir.System) -> None:
    served = {k: v for k, v in served_models(system).items() if k == "ranker"}
    found, diagnostics = lower(system, served)
    by_path = {d.path: d for d in diagnostics}
    assert set(by_path) == {
        "slas.checkout-errors", "slas.checkout-availability", "slas.checkout-weekly",
        "slas.checkout-latency",
    }  # fmt: skip
    for diagnostic in diagnostics:
        assert diagnostic.code == alarm_codes.SLA_NOT_LOWERED
        assert diagnostic.severity is Severity.WARNING
        assert diagnostic.location is not None and diagnostic.location.line > 1
    assert "PromQL" in by_path["slas.checkout-errors"].message
    assert not any(r.name.startswith("alarm-slo.checkout-errors") for r in found.resources)


def test_nothing_to_alarm_on_gives_no_resources(tmp_path: Path) -> None:
    text = SPEC.split("slas:", maxsplit=1)[0]
    system = system_of(tmp_path / "empty", text)
    found, diagnostics = lower(system, {})
    assert found.resources == () and not list(diagnostics)
    assert dict(found.rollback_alarm_names) == {}


# --- dashboard ------------------------------------------------------------------------------------------------


def test_dashboard_body_is_canonical_json_with_every_model_and_alarm(
    system: ir.System, lowered: alarms.AlarmLowering
) -> None:
    body = by_name(lowered)["dashboard-acceptance"].inputs["dashboardBody"]
    data = json.loads(body)
    assert json.dumps(data, sort_keys=True, separators=(",", ":")) == body
    titles = [w["properties"]["title"] for w in data["widgets"]]
    assert titles[:2] == ["Model checkout", "Model ranker"]
    listed = [a for w in data["widgets"] if w["type"] == "alarm" for a in w["properties"]["alarms"]]
    page = alarms.alarm_arn(
        system, alarms.alarm_name(system, "slo", "checkout-availability", "page")
    )
    assert page == (
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:acceptance/prod/slo/checkout-availability/page"
    )
    assert page in listed and len(listed) == len(set(listed))
    for widget in data["widgets"]:
        assert widget["width"] == 12 and widget["x"] in (0, 12)


def test_large_systems_split_dashboards_and_alarm_widgets() -> None:
    panels = [dashboard.ModelPanel(f"m{i}", f"e{i}", "primary") for i in range(520)]
    arns = [f"arn:aws:cloudwatch:eu-west-1:1:alarm:a{i}" for i in range(250)]
    pages = [json.loads(b)["widgets"] for b in dashboard.bodies("eu-west-1", panels, arns)]
    assert [len(p) for p in pages] == [500, 23]
    assert [len(w["properties"]["alarms"]) for w in pages[1] if w["type"] == "alarm"] == [
        100,
        100,
        50,
    ]
    assert dashboard.dashboard_name("s", "prod", 2) == "s_prod_2"


def test_partitions() -> None:
    assert alarm_math.partition("eu-west-1") == "aws"
    assert alarm_math.partition("cn-north-1") == "aws-cn"
    assert alarm_math.partition("us-gov-west-1") == "aws-us-gov"


@pytest.mark.slow
def test_printed_program_registers_exactly_the_alarm_graph(
    system: ir.System, lowered: alarms.AlarmLowering, tmp_path: Path
) -> None:
    """The Pulumi program printed from the alarms (with a provider and a key) under Pulumi's mock
    runtime: typed argument classes all the way down, references and JSON documents resolved."""
    require_pulumi_sdk("pulumi_aws")
    from tests.pulumi_roundtrip import assert_round_trip, registrations_of

    origin = system.environment.origin
    stubs = [
        Resource("pulumi:providers:aws", "aws-provider", {"region": "eu-west-1"}, origin),
        Resource(
            "aws:kms/key:Key", "kms-internal", {"enableKeyRotation": True}, origin,
            options=ResourceOptions(provider="aws-provider"),
        ),
    ]  # fmt: skip
    graph = ResourceGraph.build("prod", "aws", [*lowered.resources, *stubs])
    assert_round_trip(graph, registrations_of(graph, system, tmp_path))
