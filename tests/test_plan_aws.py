"""The plan on AWS graphs: which changes replace a resource, and which are risk flags.

Hand-built base and head resources in ``resources.json`` form (the shapes the AWS target
lowers), diffed by ``compiler/plan/diff.py`` with the replace table of
``targets/aws/replace.py`` and flagged by ``compiler/plan/risk.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlplane.compiler.plan.diff import diff_graphs
from mlplane.compiler.plan.replace import replace_fields
from mlplane.compiler.plan.risk import resource_risks
from mlplane.targets.aws.replace import REPLACE_FIELDS, RISKY_TYPES
from tests.test_plan_rules import resource

BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ROLLBACK = {"autoRollbackConfiguration": {"alarms": [{"alarmName": "s/p/rollback/errors"}]}}
ROUTING = {"blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "ALL_AT_ONCE"}}}
VARIANT = {"initialInstanceCount": 2, "instanceType": "ml.m5.xlarge", "variantName": "primary"}

CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, tuple[str, ...]]] = [
    # (type, base inputs, head inputs, action, replace reasons)
    (BUCKET, {"bucket": "acme-a", "tags": {"a": "1"}}, {"bucket": "acme-a", "tags": {"a": "2"}},
     "update", ()),
    (BUCKET, {"bucket": "acme-a"}, {"bucket": "acme-b"}, "replace", ("bucket",)),
    ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
     {"bucket": "acme-a", "blockPublicPolicy": False}, {"bucket": "acme-a", "blockPublicPolicy": True},
     "update", ()),
    ("aws:s3/bucketVersioning:BucketVersioning", {"bucket": "acme-a"}, {"bucket": "acme-b"},
     "replace", ("bucket",)),
    (KEY, {"enableKeyRotation": False}, {"enableKeyRotation": True}, "update", ()),
    (KEY, {"keyUsage": "ENCRYPT_DECRYPT"}, {"keyUsage": "SIGN_VERIFY"}, "replace", ("keyUsage",)),
    (LOG_GROUP, {"name": "/aws/x", "retentionInDays": 30}, {"name": "/aws/x", "retentionInDays": 365},
     "update", ()),
    (LOG_GROUP, {"name": "/aws/x"}, {"name": "/aws/y"}, "replace", ("name",)),
    (MODEL, {"primaryContainer": {"image": "a@sha256:1"}}, {"primaryContainer": {"image": "a@sha256:2"}},
     "replace", ("primaryContainer",)),
    (MODEL, {"tags": {"v": "1"}}, {"tags": {"v": "2"}}, "update", ()),
    (CONFIG, {"productionVariants": [VARIANT]},
     {"productionVariants": [{**VARIANT, "initialInstanceCount": 3}]},
     "replace", ("productionVariants",)),
    (CONFIG, {"productionVariants": [VARIANT]}, {"productionVariants": [VARIANT], "kmsKeyArn": "k"},
     "replace", ("kmsKeyArn",)),
    (ENDPOINT, {"name": "e", "endpointConfigName": "c1", "deploymentConfig": {**ROUTING, **ROLLBACK}},
     {"name": "e", "endpointConfigName": "c2", "deploymentConfig": {**ROUTING, **ROLLBACK}}, "update", ()),
    (ENDPOINT, {"name": "e", "deploymentConfig": ROUTING}, {"name": "e", "deploymentConfig": {**ROUTING, **ROLLBACK}},
     "replace", ("deploymentConfig.autoRollbackConfiguration",)),
    (ENDPOINT, {"name": "e"}, {"name": "f"}, "replace", ("name",)),
    ("aws:appautoscaling/target:Target", {"resourceId": "endpoint/e/variant/primary", "maxCapacity": 4},
     {"resourceId": "endpoint/e/variant/primary", "maxCapacity": 8}, "update", ()),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", {"name": "a", "threshold": 1}, {"name": "b", "threshold": 1},
     "replace", ("name",)),
    ("aws:iam/rolePolicy:RolePolicy", {"name": "p", "policy": {"$json": {"a": 1}}},
     {"name": "p", "policy": {"$json": {"a": 2}}}, "update", ()),
    (BUCKET, {"bucket": "acme-a"}, {"bucket": "acme-a", "region": "eu-west-1"}, "replace", ("region",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("token", "old", "new", "action", "reasons"),
    CASES,
    ids=[f"{c[0].rsplit(':', 1)[-1]}-{c[3]}-{i}" for i, c in enumerate(CASES)],
)
def test_replace_or_update(
    token: str, old: dict[str, Any], new: dict[str, Any], action: str, reasons: tuple[str, ...]
) -> None:
    (change,), unchanged = diff_graphs(
        {"r": resource(token, "r", old)}, {"r": resource(token, "r", new)}
    )
    assert unchanged == 0
    assert (change.action, change.replace_reasons) == (action, reasons)


def test_every_emitted_aws_type_has_a_row_and_region_replaces_it() -> None:
    for token, fields in REPLACE_FIELDS.items():
        assert token.startswith("aws:") and fields == tuple(sorted(set(fields))), token
        assert replace_fields(token)[0] == "region"
    emitted = {
        "aws:appautoscaling/policy:Policy", "aws:appautoscaling/target:Target",
        "aws:cloudwatch/compositeAlarm:CompositeAlarm", "aws:cloudwatch/dashboard:Dashboard",
        LOG_GROUP, "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy", "aws:kms/alias:Alias", KEY, BUCKET,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPolicy:BucketPolicy", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning", ENDPOINT, CONFIG, MODEL,
        "aws:scheduler/schedule:Schedule", "aws:sns/topic:Topic", "aws:sns/topicPolicy:TopicPolicy",
    }  # fmt: skip
    assert emitted <= set(REPLACE_FIELDS)


def test_the_replace_table_covers_the_types_the_aws_target_lowers() -> None:
    """Every type token the AWS target can emit (read from its sources) has a row."""
    import re
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "targets" / "aws"
    if not folder.is_dir():
        pytest.skip("the AWS target is not in this tree")
    lowering = [p for p in sorted(folder.glob("*.py")) if p.name != "replace.py"]  # not the table
    text = "\n".join(p.read_text(encoding="utf-8") for p in lowering)
    tokens = set(re.findall(r'"(aws:[a-z0-9]+/[A-Za-z0-9]+:[A-Za-z0-9]+)"', text))
    assert tokens and tokens <= set(REPLACE_FIELDS), sorted(tokens - set(REPLACE_FIELDS))


def test_deleting_or_replacing_buckets_keys_and_log_groups_is_flagged() -> None:
    base = {
        "data": resource(BUCKET, "data", {"bucket": "acme-a"}, protect=True),
        "key": resource(KEY, "key", {"enableKeyRotation": True}),
        "logs": resource(LOG_GROUP, "logs", {"name": "/aws/x"}),
        "endpoint": resource(ENDPOINT, "endpoint", {"name": "e"}),
        "config": resource(CONFIG, "config", {"productionVariants": [VARIANT]}),
        "model": resource(MODEL, "model", {"primaryContainer": {"image": "a@sha256:1"}}),
    }
    head = {
        "data": resource(BUCKET, "data", {"bucket": "acme-b"}, protect=True),
        "logs": resource(LOG_GROUP, "logs", {"name": "/aws/y"}),
        "endpoint": resource(ENDPOINT, "endpoint", {"name": "f"}),
        "config": resource(CONFIG, "config", {"productionVariants": [{**VARIANT, "initialInstanceCount": 3}]}),
        "model": resource(MODEL, "model", {"primaryContainer": {"image": "a@sha256:2"}}),
    }  # fmt: skip
    changes, _ = diff_graphs(base, head)
    risks = resource_risks(changes)
    assert {(r.code, r.subject) for r in risks} == {
        ("data-replaced", "data"),
        ("protected-resource", "data"),
        ("data-deleted", "key"),
        ("data-replaced", "logs"),
        ("serving-replaced", "endpoint"),
    }  # a new model or endpoint configuration is a routine, create-before-delete rollout
    [key] = [r for r in risks if r.subject == "key"]
    assert "every object encrypted with it is unreadable" in key.message


def test_data_and_serving_tables_name_the_aws_types() -> None:
    assert {BUCKET, KEY, LOG_GROUP} <= RISKY_TYPES.data
    assert ENDPOINT in RISKY_TYPES.serving and MODEL not in RISKY_TYPES.serving
