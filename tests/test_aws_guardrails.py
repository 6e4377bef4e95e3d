"""SageMaker deployment guardrails and CPU autoscaling on the lowered AWS graph.

AWS is proven on the graph and under Pulumi's mock runtime only (no account, no engine): each
test reads what the lowered resources tell SageMaker, CloudWatch and Application Auto Scaling.

- the execution role may read the rollback alarms (``cloudwatch:DescribeAlarms``), which
  SageMaker's guardrails need, and the endpoint waits for that permission;
- the rollback alarms watch the new fleet (``EndpointConfigName`` of the new configuration),
  the SLO and traffic alarms the whole endpoint;
- every blue/green rollout keeps the old fleet for the bake (``terminationWaitInSeconds``) and
  has an execution timeout covering its waits; ``blueGreen`` is one shift then the bake, evenly
  spaced canary steps are ``LINEAR``;
- ``autoscaling: {metric: cpu}`` tracks ``CPUUtilization`` summed over the vCPUs;
- a new model version updates the rollback alarms in place and never replaces the endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.plan.diff import diff_graphs
from mlplane.targets.aws import instances, rollouts
from tests.pulumi_sdk import require_pulumi_sdk
from tests.specs import compile_text
from tests.test_aws_target import SPEC, graph_of, lowered, one, statements
from tests.test_plan_rules import resource

CANARY = "{strategy: canary, steps: [50], pause: 10m}"
LATENCY_SLA = (
    "  scorer-latency: {model: scorer, objective: 99, indicator: {latency: {threshold: 250ms}}}\n"
)


def _spec(rollout: str = CANARY, autoscaling: str = "{metric: rps, target: 50}") -> str:
    text = SPEC.replace(CANARY, rollout).replace("{metric: rps, target: 50}", autoscaling)
    return text + LATENCY_SLA


def _rollback_alarms(graph: Any, model: str) -> list[Any]:
    return [r for r in graph if r.name.startswith(f"alarm-rollback.{model}.")]


def _dimension_sets(alarm: Any) -> list[dict[str, Any]]:
    if alarm.type != "aws:cloudwatch/metricAlarm:MetricAlarm":
        return []
    if "metricQueries" in alarm.inputs:
        return [q["metric"]["dimensions"] for q in alarm.inputs["metricQueries"] if "metric" in q]
    return [alarm.inputs["dimensions"]]


# --- the execution role reads the rollback alarms --------------------------------------------


def test_the_execution_role_may_describe_exactly_the_rollback_alarms(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, _spec())
    endpoint = one(graph, "scorer-endpoint")
    names = [
        a["alarmName"]
        for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
    ]
    assert len(names) == 2  # errors and latency
    policy = one(graph, "scorer-execution-role-rollback-alarms")
    assert policy.inputs["role"] == {"$ref": "scorer-execution-role", "$output": "id"}
    model = one(graph, "scorer-sagemaker-model")
    assert model.inputs["executionRoleArn"] == {"$ref": "scorer-execution-role", "$output": "arn"}
    statement = statements(policy.inputs["policy"])["ReadRollbackAlarms"]
    assert statement["Action"] == "cloudwatch:DescribeAlarms"
    assert statement["Resource"] == sorted(
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}" for name in names
    )
    assert policy.name in endpoint.depends_on  # SageMaker reads them when the update starts
    ranker = statements(one(graph, "ranker-execution-role-rollback-alarms").inputs["policy"])
    assert all("/scorer/" not in arn for arn in ranker["ReadRollbackAlarms"]["Resource"])


# --- the rollback alarms watch the new fleet -------------------------------------------------


def test_rollback_alarms_watch_the_new_endpoint_configuration(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, _spec())
    config = {"$ref": "scorer-endpoint-config", "$output": "name"}
    alarms = _rollback_alarms(graph, "scorer")
    assert {a.name for a in alarms} == {
        "alarm-rollback.scorer.errors",
        "alarm-rollback.scorer.latency",
    }
    for alarm in alarms:
        for dims in _dimension_sets(alarm):
            assert dims == {
                "EndpointName": "shop-prod-scorer",
                "VariantName": "primary",
                "EndpointConfigName": config,
            }, alarm.name
    # The SLOs and the traffic floor are about every request the endpoint answers.
    for alarm in graph:
        if alarm.name.startswith(("alarm-slo.scorer-", "alarm-model.scorer.")):
            for dims in _dimension_sets(alarm):
                assert "EndpointConfigName" not in dims, alarm.name


def test_a_new_model_version_updates_the_alarms_and_never_replaces_the_endpoint(
    tmp_path: Path,
) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "head").mkdir()
    base = graph_of(tmp_path / "base", _spec())
    head = graph_of(tmp_path / "head", _spec().replace('version: "1.0.0"', 'version: "1.0.1"'))

    def graph_resources(graph: Any) -> dict[str, Any]:
        return {r.name: resource(r.type, r.name, dict(r.inputs)) for r in graph}

    # The configuration's name is auto-generated: a new one arrives as another name.
    def renamed(graph: Any, name: str) -> dict[str, Any]:
        found = graph_resources(graph)
        for item in found.values():
            _replace_refs(item["inputs"], "scorer-endpoint-config", name)
        return found

    changes, _ = diff_graphs(renamed(base, "config-1"), renamed(head, "config-2"))
    actions = {c.name: c.action for c in changes}
    assert actions["scorer-endpoint"] == "update"
    assert actions["alarm-rollback.scorer.errors"] == "update"
    assert actions["alarm-rollback.scorer.latency"] == "update"


def _replace_refs(value: Any, old: str, new: str) -> None:
    if isinstance(value, dict):
        if value.get("$ref") == old:
            value["$ref"] = new
        for item in value.values():
            _replace_refs(item, old, new)
    elif isinstance(value, list):
        for item in value:
            _replace_refs(item, old, new)


# --- what each strategy tells SageMaker ------------------------------------------------------


@pytest.mark.parametrize(
    ("rollout", "routing", "wait"),
    [
        ("{strategy: blueGreen, pause: 30m}", {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 1800}, 1800),
        ("{strategy: blueGreen}", {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 600}, 600),
        (CANARY, {"type": "CANARY", "canarySize": {"type": "CAPACITY_PERCENT", "value": 50},
                  "waitIntervalInSeconds": 600}, 600),
        ("{strategy: canary, steps: [25, 50], pause: 5m}",
         {"type": "CANARY", "canarySize": {"type": "CAPACITY_PERCENT", "value": 25},
          "waitIntervalInSeconds": 300}, 300),
        ("{strategy: canary, steps: [25, 50, 75], pause: 5m}",
         {"type": "LINEAR", "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 25},
          "waitIntervalInSeconds": 300}, 300),
        ("{strategy: shadow}", {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 600}, 600),
    ],
)  # fmt: skip
def test_blue_green_rollouts_keep_the_old_fleet_for_the_bake(
    tmp_path: Path, rollout: str, routing: dict[str, Any], wait: int
) -> None:
    text = _spec(rollout).replace("{min: 2, max: 6}", "{min: 4, max: 8}")  # 25 % is one instance
    graph = graph_of(tmp_path, text)
    policy = one(graph, "scorer-endpoint").inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert policy["trafficRoutingConfiguration"] == routing
    assert policy["terminationWaitInSeconds"] == wait  # SageMaker's default 0 drops the old fleet
    shifts = {"ALL_AT_ONCE": 1, "CANARY": 2, "LINEAR": 4}[routing["type"]]
    timeout = policy["maximumExecutionTimeoutInSeconds"]
    assert timeout == shifts * wait + wait + rollouts.PROVISION_SECONDS
    assert 600 <= timeout <= 14_400


def test_rolling_updates_have_a_deliberate_timeout(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, _spec("{strategy: rolling}"))
    policy = one(graph, "scorer-endpoint").inputs["deploymentConfig"]["rollingUpdatePolicy"]
    assert policy["maximumExecutionTimeoutInSeconds"] == 4 * 60 + rollouts.PROVISION_SECONDS


def test_waits_beyond_the_execution_limit_are_refused_at_the_pause(tmp_path: Path) -> None:
    rollout = "{strategy: canary, steps: [10, 20, 30, 40, 50, 60, 70, 80, 90], pause: 1h}"
    text = _spec(rollout).replace("{min: 2, max: 6}", "{min: 10, max: 20}")
    result = compile_text(tmp_path, text)
    assert result.ok
    graph, found = lowered(result.systems["prod"])
    errors = [d for d in found if d.code == "aws-rollout-pause"]
    assert graph is None and len(errors) == 1
    assert errors[0].path == "models.scorer.serving.rollout.pause"
    line = text.splitlines()[errors[0].location.line - 1]
    assert "pause: 1h" in line


# --- CPU autoscaling ---------------------------------------------------------------------------


def test_cpu_autoscaling_tracks_cpu_utilization_summed_over_the_vcpus(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, _spec(autoscaling="{metric: cpu, target: 70}"))
    policy = one(graph, "scorer-scaling-policy")
    assert policy.inputs["name"] == "shop-prod-scorer-cpu"
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 70 * 4  # ml.m5.xlarge: 4 vCPUs, reported 0-400 %
    assert tracking["customizedMetricSpecification"] == {
        "metricName": "CPUUtilization",
        "namespace": "/aws/sagemaker/Endpoints",
        "dimensions": [
            {"name": "EndpointName", "value": "shop-prod-scorer"},
            {"name": "VariantName", "value": "primary"},
        ],
        "statistic": "Average",
        "unit": "Percent",
    }
    assert "predefinedMetricSpecification" not in tracking
    assert one(graph, "scorer-scaling-target").inputs["maxCapacity"] == 6


def test_cpu_autoscaling_on_an_unknown_size_is_refused_at_the_instance_type(
    tmp_path: Path,
) -> None:
    text = _spec(autoscaling="{metric: cpu, target: 70}").replace(
        "instanceType: ml.m5.xlarge", "instanceType: ml.c7g.medium"
    )
    result = compile_text(tmp_path, text)
    assert result.ok
    graph, found = lowered(result.systems["prod"])
    errors = [d for d in found if d.code == "aws-autoscaling-metric"]
    assert graph is None and [e.path for e in errors] == ["models.scorer.serving.instanceType"]


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [("ml.m5.large", 2), ("ml.m5.xlarge", 4), ("ml.c5.9xlarge", 36), ("ml.m5.24xlarge", 96),
     ("ml.t2.medium", 2), ("ml.c7g.medium", None), ("ml.m5.metal", None), ("m5.xlarge", None)],
)  # fmt: skip
def test_vcpus_follow_the_size_name(instance_type: str, expected: int | None) -> None:
    assert instances.vcpus(instance_type) == expected


# --- the printed program -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_printed_program_registers_the_guardrails(tmp_path: Path) -> None:
    """Under Pulumi's mock runtime with pulumi_aws's typed argument classes."""
    require_pulumi_sdk("pulumi_aws")
    from tests.pulumi_roundtrip import assert_round_trip, registrations_of

    text = _spec("{strategy: canary, steps: [25, 50, 75], pause: 5m}", "{metric: cpu, target: 70}")
    text = text.replace("{min: 2, max: 6}", "{min: 4, max: 8}")
    system = compile_text(tmp_path, text).systems["prod"]
    graph, _ = lowered(system)
    assert graph is not None
    assert_round_trip(graph, registrations_of(graph, system, tmp_path / "program"))
