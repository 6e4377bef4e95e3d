"""The AWS target: hardening properties of the lowered graph, located diagnostics, determinism.

The graph is checked structurally (docs/architecture.md, External judges has no offline judge for AWS resources): every
resource goes through the environment's explicit provider, buckets are fully hardened, roles
grant exactly what a model reads, SageMaker endpoints are isolated, encrypted and roll back on
alarms. Invalid specs carry their expected diagnostics as inline annotations, so a lost location
fails a test. The recsys-gpu example's ``prod-aws`` environment must lower with no error.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics
from mlplane.compiler.core.graph import Resource, ResourceGraph
from mlplane.schema.formats import has_instance_storage
from mlplane.targets.aws import TARGET, codes, lower
from tests.pulumi_sdk import require_pulumi_sdk
from tests.specs import compile_text
from tests.test_policies import expectations

REPO_ROOT = Path(__file__).resolve().parent.parent
RECSYS = REPO_ROOT / "examples" / "recsys-gpu"
DIGEST = "sha256:" + "ab" * 32
ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"

SPEC = f"""\
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata:
  name: shop
  owner: ml-team
  labels: {{cost-center: shop-1}}
environments:
  prod:
    target: aws
    aws:
      region: eu-west-1
      accountId: "123456789012"
      vpc: {{subnetIds: [subnet-0a1b2c3d], securityGroupIds: [sg-0a1b2c3d]}}
      deployRoleArn: arn:aws:iam::123456789012:role/shop-deploy
dataSources:
  events:
    type: objectStore
    uri: s3://shop-events/raw/
    classification: confidential
    residency: eu
    retention: 90d
    encryption: kms
    managed: true
  lake:
    type: objectStore
    uri: s3://shop-lake/curated/
    classification: internal
    residency: eu
  clicks:
    type: stream
    uri: kafka://broker:9092/clicks
    classification: pii
    residency: eu
models:
  scorer:
    framework: sklearn
    version: "1.0.0"
    image: {ECR}/shop/scorer@{DIGEST}
    artifact: s3://shop-models/scorer/1.0.0/model.tar.gz
    inputs: [events, lake]
    serving:
      instanceType: ml.m5.xlarge
      replicas: {{min: 2, max: 6}}
      autoscaling: {{metric: rps, target: 50}}
      rollout: {{strategy: canary, steps: [50], pause: 10m}}
  ranker:
    framework: pytorch
    version: "2.0.0"
    image: {ECR}/shop/ranker@{DIGEST}
    artifact: s3://shop-models/ranker/2.0.0/
    inputs: [clicks]
    serving:
      instanceType: ml.g5.xlarge
      replicas: {{min: 1, max: 1}}
      rollout: {{strategy: blueGreen}}
slas:
  scorer-availability: {{model: scorer, objective: 99.9, indicator: availability}}
  ranker-availability: {{model: ranker, objective: 99.5, indicator: availability}}
"""


# --- helpers ------------------------------------------------------------------------------------


def lowered(system: ir.System) -> tuple[ResourceGraph | None, list[Diagnostic]]:
    diagnostics = Diagnostics()
    graph = lower(system, diagnostics)
    return graph, list(diagnostics.sorted())


def graph_of(tmp_path: Path, text: str = SPEC, env: str = "prod") -> ResourceGraph:
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    graph, found = lowered(result.systems[env])
    errors = [d.one_line() for d in found if d.severity.value == "error"]
    assert graph is not None, errors
    return graph


@cache
def recsys() -> tuple[ResourceGraph | None, tuple[Diagnostic, ...]]:
    result = compile_spec(RECSYS, ["prod-aws"])
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    graph, found = lowered(result.systems["prod-aws"])
    return graph, tuple(found)


def one(graph: ResourceGraph, name: str) -> Resource:
    found = graph.get(name)
    assert found is not None, f"no resource {name!r} in {[r.name for r in graph]}"
    return found


def refs_in(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        if "$ref" in value:
            yield value["$ref"], value["$output"]
            return
        for item in value.values():
            yield from refs_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs_in(item)


def document(value: dict[str, Any]) -> dict[str, Any]:
    assert set(value) == {"$json"}, value
    doc = value["$json"]
    assert doc["Version"] == "2012-10-17"
    return dict(doc)


def statements(value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document(value)["Statement"]}


def side_resource(graph: ResourceGraph, bucket: str, token: str) -> Resource:
    found = [
        r
        for r in graph.of_type(token)
        if r.inputs["bucket"] == {"$ref": bucket, "$output": "bucket"}
    ]
    assert len(found) == 1, (bucket, token, found)
    return found[0]


# --- the example ----------------------------------------------------------------------------------


def test_recsys_prod_aws_lowers_without_errors() -> None:
    graph, found = recsys()
    errors = [d.one_line() for d in found if d.severity.value != "info"]
    assert graph is not None and not errors, errors
    assert {d.code for d in found} <= {codes.KMS_INSTANCE_STORAGE}
    assert len(graph.of_type("aws:sagemaker/endpoint:Endpoint")) == 2
    assert len(graph.of_type("aws:s3/bucket:Bucket")) == 2  # the managed source and the log bucket


def _aws_environments() -> list[tuple[Path, str]]:
    found = []
    for example in sorted(p for p in (REPO_ROOT / "examples").iterdir() if p.is_dir()):
        result = compile_spec(example)
        found += [(example, n) for n, s in result.systems.items() if s.environment.target == "aws"]
    return found


AWS_ENVIRONMENTS = _aws_environments()


def test_the_examples_have_aws_environments() -> None:
    names = {(path.name, env) for path, env in AWS_ENVIRONMENTS}
    assert {("recsys-gpu", "prod-aws"), ("fraud-scoring", "prod-aws")} <= names


@pytest.mark.parametrize(
    ("example", "env"), AWS_ENVIRONMENTS, ids=[f"{p.name}-{e}" for p, e in AWS_ENVIRONMENTS]
)
def test_every_aws_environment_of_the_examples_lowers(example: Path, env: str) -> None:
    """Only info diagnostics (NVMe instance storage) are allowed: no warning, no error."""
    graph, found = lowered(compile_spec(example, [env]).systems[env])
    assert graph is not None
    assert {d.code for d in found} <= {codes.KMS_INSTANCE_STORAGE}, [d.one_line() for d in found]


def test_fraud_scoring_captures_into_its_managed_bucket() -> None:
    system = compile_spec(REPO_ROOT / "examples" / "fraud-scoring", ["prod-aws"]).systems[
        "prod-aws"
    ]
    graph, _ = lowered(system)
    assert graph is not None
    capture = one(graph, "scorer-endpoint-config").inputs["dataCaptureConfig"]
    assert (
        capture["destinationS3Uri"] == "s3://acme-fraud-scoring-capture-eu/scorer/capture/scorer/"
    )
    assert capture["kmsKeyId"] == {"$ref": "pii-kms-key", "$output": "arn"}
    assert one(graph, "scorer-endpoint-config").inputs["kmsKeyArn"]["$ref"] == "pii-kms-key"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_type_tokens_are_pulumi_aws_classes() -> None:
    require_pulumi_sdk("pulumi_aws")
    import importlib
    import inspect

    import pulumi_aws

    graph, _ = recsys()
    assert graph is not None
    for token in sorted({r.type for r in graph if not r.component}):
        package, module, name = token.split(":")
        assert package in ("aws", "pulumi"), token
        if package == "pulumi":
            assert token == "pulumi:providers:aws"
            continue
        cls = getattr(importlib.import_module(f"pulumi_aws.{module.split('/')[0]}"), name)
        assert f"'{token}'" in inspect.getsource(cls._internal_init), token
    assert pulumi_aws is not None


def test_every_resource_uses_the_explicit_provider() -> None:
    graph, _ = recsys()
    assert graph is not None
    (provider,) = graph.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    assert provider.inputs["allowedAccountIds"] == ["491823746150"]
    tags = provider.inputs["defaultTags"]["tags"]
    assert tags["mlplane.dev/system"] == "recsys" and tags["mlplane.dev/environment"] == "prod-aws"
    assert tags["mlplane.dev/owner"] == "recs-ml"
    assert provider.inputs["assumeRoles"][0]["roleArn"].endswith(":role/recsys-deploy")
    for resource in graph:
        if resource.component or resource is provider:
            continue
        assert resource.options.provider == provider.name, resource.name


def test_logical_names_avoid_the_alarm_prefixes(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    alarm_types = ("aws:cloudwatch/", "aws:sns/")
    for resource in graph:
        if not resource.type.startswith(alarm_types):
            assert not resource.name.startswith(("alarm-", "sns-", "dashboard-")), resource.name


# --- keys -----------------------------------------------------------------------------------------


def test_one_rotating_key_per_tier_in_use_with_an_explicit_policy(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    keys = {r.name: r for r in graph.of_type("aws:kms/key:Key")}
    # events (managed, confidential), scorer (confidential), ranker (pii: reads clicks), alerts
    assert sorted(keys) == ["alerts-kms-key", "confidential-kms-key", "pii-kms-key"]
    for key in keys.values():
        assert key.inputs["enableKeyRotation"] is True
        admin = statements(key.inputs["policy"])["AccountAdministration"]
        assert admin["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    roles = statements(keys["confidential-kms-key"].inputs["policy"])["ExecutionRoles"]
    assert roles["Principal"]["AWS"] == [{"$ref": "scorer-execution-role", "$output": "arn"}]
    assert "CloudWatchLogs" in statements(keys["confidential-kms-key"].inputs["policy"])
    alerts = statements(keys["alerts-kms-key"].inputs["policy"])["AlarmNotifications"]
    assert alerts["Principal"]["Service"] == ["cloudwatch.amazonaws.com", "sns.amazonaws.com"]
    aliases = {r.inputs["name"] for r in graph.of_type("aws:kms/alias:Alias")}
    assert aliases == {
        "alias/shop-prod-alerts",
        "alias/shop-prod-confidential",
        "alias/shop-prod-pii",
    }


# --- buckets --------------------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"


def test_managed_buckets_are_fully_hardened(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    bucket = one(graph, "events-bucket")
    assert bucket.inputs["bucket"] == "shop-events"
    assert bucket.options.retain_on_delete and bucket.options.protect  # production
    ownership = side_resource(
        graph, "events-bucket", "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
    )
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    block = side_resource(
        graph, "events-bucket", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    )
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert all(block.inputs[flag] is True for flag in flags)
    token = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    (rule,) = side_resource(graph, "events-bucket", token).inputs["rules"]
    assert rule["bucketKeyEnabled"] is True
    default = rule["applyServerSideEncryptionByDefault"]
    assert default == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": {"$ref": "confidential-kms-key", "$output": "arn"},
    }
    versioning = side_resource(graph, "events-bucket", "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


def test_lifecycle_follows_retention(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    token = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    rules = {r["id"]: r for r in side_resource(graph, "events-bucket", token).inputs["rules"]}
    assert rules["retention"]["filter"] == {"prefix": "raw/"}
    assert rules["retention"]["expiration"] == {"days": 90}
    assert rules["retention"]["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
    assert (
        rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"]
        == 7
    )


def test_buckets_deny_plain_http_and_log_to_a_hardened_log_bucket(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    policy = side_resource(graph, "events-bucket", "aws:s3/bucketPolicy:BucketPolicy")
    deny = statements(policy.inputs["policy"])["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == ["arn:aws:s3:::shop-events", "arn:aws:s3:::shop-events/*"]
    logging = side_resource(graph, "events-bucket", "aws:s3/bucketLogging:BucketLogging")
    target = logging.inputs["targetBucket"]["$ref"]
    logs = one(graph, target)
    assert logs.type == BUCKET and len(logs.inputs["bucket"]) <= 63
    token = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    (rule,) = side_resource(graph, target, token).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    block = side_resource(graph, target, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block.inputs[f] is True for f in ("blockPublicAcls", "restrictPublicBuckets"))
    delivery = statements(
        side_resource(graph, target, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
    )
    assert delivery["S3ServerAccessLogs"]["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert "DenyInsecureTransport" in delivery


def test_referenced_sources_create_nothing(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    created = {r.inputs["bucket"] for r in graph.of_type(BUCKET)}
    assert "shop-lake" not in created and "shop-models" not in created


def test_buckets_outside_production_are_not_protected(tmp_path: Path) -> None:
    text = SPEC.replace("  prod:\n    target: aws\n", "  staging:\n    target: aws\n")
    bucket = one(graph_of(tmp_path, text, "staging"), "events-bucket")
    assert bucket.options.retain_on_delete and not bucket.options.protect


# --- execution roles ------------------------------------------------------------------------------


def test_execution_role_grants_exactly_the_models_reads(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    role = one(graph, "scorer-execution-role")
    trust = document(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "name" not in role.inputs
    policy = statements(one(graph, "scorer-execution-role-policy").inputs["policy"])
    assert policy["ReadData"]["Resource"] == [
        "arn:aws:s3:::shop-events/raw/*",
        "arn:aws:s3:::shop-lake/curated/*",
        "arn:aws:s3:::shop-models/scorer/1.0.0/model.tar.gz*",
    ]
    listed = sorted(s["Resource"] for sid, s in policy.items() if sid.startswith("ListData"))
    assert listed == [
        "arn:aws:s3:::shop-events",
        "arn:aws:s3:::shop-lake",
        "arn:aws:s3:::shop-models",
    ]
    assert policy["UseKeys"]["Resource"] == [{"$ref": "confidential-kms-key", "$output": "arn"}]
    logs = policy["WriteLogs"]["Resource"][0]
    assert (
        logs
        == "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/shop-prod-scorer"
    )
    assert (
        policy["PullImage"]["Resource"]
        == "arn:aws:ecr:eu-west-1:123456789012:repository/shop/scorer"
    )
    for statement in policy.values():
        if statement["Resource"] == "*":
            assert statement["Sid"] in ("VpcDescribe", "EcrToken"), statement
    assert policy["VpcNetworkInterfaces"]["Resource"] == [
        "arn:aws:ec2:eu-west-1:123456789012:network-interface/*",
        "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-0a1b2c3d",
        "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0a1b2c3d",
    ]


def test_roles_do_not_share_grants(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    ranker = statements(one(graph, "ranker-execution-role-policy").inputs["policy"])
    assert ranker["ReadData"]["Resource"] == ["arn:aws:s3:::shop-models/ranker/2.0.0/*"]
    assert ranker["UseKeys"]["Resource"] == [{"$ref": "pii-kms-key", "$output": "arn"}]


# --- SageMaker ------------------------------------------------------------------------------------


def test_models_are_isolated_in_the_vpc_and_auto_named(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    model = one(graph, "scorer-sagemaker-model")
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["vpcConfig"] == {
        "subnets": ["subnet-0a1b2c3d"],
        "securityGroupIds": ["sg-0a1b2c3d"],
    }
    assert model.inputs["primaryContainer"]["modelDataUrl"].endswith("model.tar.gz")
    assert "name" not in model.inputs and model.options.retain_on_delete
    assert "scorer-execution-role-policy" in model.depends_on
    prefix = one(graph, "ranker-sagemaker-model").inputs["primaryContainer"]["modelDataSource"]
    assert prefix["s3DataSources"][0]["s3DataType"] == "S3Prefix"


def test_endpoint_configuration_is_encrypted_and_replaced_safely(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    config = one(graph, "scorer-endpoint-config")
    assert "name" not in config.inputs and config.options.retain_on_delete
    assert config.inputs["kmsKeyArn"] == {"$ref": "confidential-kms-key", "$output": "arn"}
    (variant,) = config.inputs["productionVariants"]
    assert variant["instanceType"] == "ml.m5.xlarge" and variant["initialInstanceCount"] == 2
    assert variant["modelName"] == {"$ref": "scorer-sagemaker-model", "$output": "name"}
    assert "dataCaptureConfig" not in config.inputs
    nvme = one(graph, "ranker-endpoint-config")
    assert "kmsKeyArn" not in nvme.inputs  # ml.g5 has local NVMe storage


def test_nvme_instance_types() -> None:
    assert has_instance_storage("ml.g5.xlarge") and has_instance_storage("ml.m5d.large")
    assert has_instance_storage("ml.g4dn.xlarge") and has_instance_storage("ml.p4d.24xlarge")
    assert not has_instance_storage("ml.m5.xlarge") and not has_instance_storage("ml.c7i.large")


def test_endpoint_is_named_rolls_back_on_alarms_and_logs_encrypted(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    endpoint = one(graph, "scorer-endpoint")
    assert endpoint.inputs["name"] == "shop-prod-scorer"
    assert endpoint.options.delete_before_replace
    assert endpoint.inputs["endpointConfigName"] == {
        "$ref": "scorer-endpoint-config",
        "$output": "name",
    }
    config = endpoint.inputs["deploymentConfig"]
    routing = config["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    assert routing == {
        "type": "CANARY",
        "canarySize": {"type": "CAPACITY_PERCENT", "value": 50},
        "waitIntervalInSeconds": 600,
    }
    alarms = [a["alarmName"] for a in config["autoRollbackConfiguration"]["alarms"]]
    assert alarms, "an endpoint must roll back on alarms"
    alarm_resources = {
        r.inputs.get("alarmName", r.inputs.get("name")): r.name
        for r in graph
        if r.type.startswith("aws:cloudwatch/") and "Alarm" in r.type
    }
    for name in alarms:
        assert alarm_resources[name] in endpoint.depends_on
    group = one(graph, "scorer-log-group")
    assert group.inputs["name"] == "/aws/sagemaker/Endpoints/shop-prod-scorer"
    assert group.inputs["kmsKeyId"] == {"$ref": "confidential-kms-key", "$output": "arn"}
    assert group.inputs["retentionInDays"] >= 365 and group.name in endpoint.depends_on
    blue_green = one(graph, "ranker-endpoint").inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert blue_green["trafficRoutingConfiguration"]["type"] == "ALL_AT_ONCE"


@pytest.mark.parametrize(
    ("rollout", "key"),
    [
        ("{strategy: rolling}", "rollingUpdatePolicy"),
        ("{strategy: shadow}", "blueGreenUpdatePolicy"),
    ],
)
def test_other_rollouts(tmp_path: Path, rollout: str, key: str) -> None:
    text = SPEC.replace("{strategy: canary, steps: [50], pause: 10m}", rollout)
    graph = graph_of(tmp_path, text)
    assert key in one(graph, "scorer-endpoint").inputs["deploymentConfig"]
    shadow = one(graph, "scorer-endpoint-config").inputs.get("shadowProductionVariants")
    assert (shadow is not None) == (rollout == "{strategy: shadow}")


def test_autoscaling_tracks_invocations_per_minute(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    target = one(graph, "scorer-scaling-target")
    assert target.inputs == {
        "minCapacity": 2,
        "maxCapacity": 6,
        "resourceId": "endpoint/shop-prod-scorer/variant/primary",
        "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "serviceNamespace": "sagemaker",
    }
    assert "scorer-endpoint" in target.depends_on
    policy = one(graph, "scorer-scaling-policy")
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 50 * 60
    assert tracking["predefinedMetricSpecification"] == {
        "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert policy.inputs["resourceId"] == {"$ref": "scorer-scaling-target", "$output": "resourceId"}
    assert graph.get("ranker-scaling-target") is None  # no autoscaling: a fixed fleet


def test_references_point_into_the_graph(tmp_path: Path) -> None:
    graph = graph_of(tmp_path)
    names = {r.name for r in graph}
    for resource in graph:
        for target, output in refs_in(dict(resource.inputs)):
            assert target in names, (resource.name, target)
            assert output[0].islower(), output


# --- diagnostics ----------------------------------------------------------------------------------

INVALID = f"""\
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata:
  name: storefront-recommendations-and-ranking
  owner: ml-team
environments:
  prod:
    target: aws
    aws:  # error: [aws-vpc-required]
      region: eu-west-1
      accountId: "123456789012"
dataSources:
  events:
    type: objectStore
    uri: s3://shop-events/raw/
    classification: internal
    residency: us  # error: [aws-residency-mismatch]
    managed: true
  copy:
    type: objectStore
    uri: gs://shop-copy/raw/  # error: [aws-managed-uri]
    classification: internal
    managed: true
  twin:
    type: objectStore
    uri: s3://shop-events/twin/  # error: [aws-bucket-shared]
    classification: internal
    managed: true
models:
  scorer-with-a-long-name:  # error: [aws-name-too-long]
    framework: sklearn
    version: "1.0.0"
    image: ghcr.io/acme/scorer@{DIGEST}  # warning: [aws-image-outside-ecr]
    artifact: hf://acme/scorer  # error: [aws-artifact-uri]
    secrets: [token]  # error: [aws-isolation-secrets]
    serving:  # error: [aws-instance-type-required]
      replicas: {{min: 0, max: 4}}  # error: [aws-replicas-zero]
      autoscaling: {{metric: memory, target: 70}}  # error: [aws-autoscaling-metric]
      exposure: public  # warning: [aws-not-lowered]
  canary:
    framework: sklearn
    version: "1.0.0"
    image: {ECR}/canary@{DIGEST}
    serving:
      instanceType: ml.m5.large
      replicas: {{min: 4, max: 4}}
      rollout:
        strategy: canary
        steps: [10, 50]  # error: [aws-canary-step]
        pause: 2h  # error: [aws-rollout-pause]
    training:  # error: [aws-instance-type-required]
      schedule: "0 3 1 * 1"  # error: [aws-training-schedule]
      image: ghcr.io/acme/train@{DIGEST}  # warning: [aws-image-outside-ecr]
      timeout: 30d  # error: [aws-training-limit]
      output: gs://shop-models/canary/  # error: [aws-training-output]
security:
  secrets:
    token: {{ref: "vault://shop/token"}}
"""


def annotated(tmp_path: Path, text: str) -> tuple[set[tuple[int, str, str]], list[Diagnostic]]:
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    graph, found = lowered(result.systems["prod"])
    assert graph is None or not any(d.severity.value == "error" for d in found)
    got = set()
    for diagnostic in found:
        assert diagnostic.location is not None and diagnostic.path, diagnostic.one_line()
        assert diagnostic.location.file.endswith("mlplane.yaml")
        got.add((diagnostic.location.line, diagnostic.severity.value, diagnostic.code))
    return got, found


def test_every_aws_diagnostic_is_located(tmp_path: Path) -> None:
    got, found = annotated(tmp_path, INVALID)
    expected = expectations(INVALID)
    shown = "\n".join(d.one_line() for d in found)
    assert got == expected, f"missing: {expected - got}\nunexpected: {got - expected}\n{shown}"


def test_messages_say_what_to_change(tmp_path: Path) -> None:
    _, found = annotated(tmp_path, INVALID)
    by_code = {d.code: d for d in found}
    assert "has 67 characters; SageMaker allows 63" in by_code[codes.NAME_TOO_LONG].message
    assert "less than one instance" in by_code[codes.CANARY_STEP].message
    assert "between 25% and 50%" in (by_code[codes.CANARY_STEP].hint or "")
    assert "securityGroupIds" in (by_code[codes.VPC_REQUIRED].hint or "")
    assert "eu-west-1" in by_code[codes.RESIDENCY_MISMATCH].message


def test_vpc_without_security_groups(tmp_path: Path) -> None:
    text = SPEC.replace(", securityGroupIds: [sg-0a1b2c3d]", "")
    result = compile_text(tmp_path, text)
    graph, found = lowered(result.systems["prod"])
    assert graph is None
    assert [d.code for d in found if d.severity.value == "error"] == [codes.VPC_REQUIRED]


def test_an_environment_without_models_needs_no_vpc(tmp_path: Path) -> None:
    text = SPEC[: SPEC.index("models:\n")].replace(
        "      vpc: {subnetIds: [subnet-0a1b2c3d], securityGroupIds: [sg-0a1b2c3d]}\n", ""
    )
    graph = graph_of(tmp_path, text)
    assert graph.of_type("aws:sagemaker/endpoint:Endpoint") == []
    assert one(graph, "events-bucket").type == BUCKET


# --- determinism ----------------------------------------------------------------------------------

_DIGEST_SCRIPT = """
import hashlib, sys
from pathlib import Path
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.build.pipeline import compile_spec
from mlplane.targets.aws import lower
result = compile_spec(Path(sys.argv[1]), ["prod-aws"])
graph = lower(result.systems["prod-aws"], Diagnostics())
print(hashlib.sha256(graph.canonical_json().encode()).hexdigest())
"""


def _graph_digest(spec: Path, seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", _DIGEST_SCRIPT, str(spec)],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_graph_is_identical_across_hash_seeds() -> None:
    spec = RECSYS / "mlplane.yaml"
    assert _graph_digest(spec, "0") == _graph_digest(spec, "4242")


def test_graph_does_not_depend_on_key_order(tmp_path: Path) -> None:
    first = graph_of(tmp_path, SPEC)
    models = SPEC[SPEC.index("  scorer:\n") : SPEC.index("slas:\n")]
    scorer, ranker = models[: models.index("  ranker:\n")], models[models.index("  ranker:\n") :]
    swapped = SPEC.replace(models, ranker + scorer)
    again = graph_of(tmp_path, swapped)
    assert _no_origins(first) == _no_origins(again)


def _no_origins(graph: ResourceGraph) -> str:
    data = graph.to_json()
    for resource in data["resources"]:
        resource.pop("origin")
    return json.dumps(data, sort_keys=True)


def test_the_target_is_a_target() -> None:
    from mlplane.compiler.core.plugins import Target

    assert isinstance(TARGET, Target) and TARGET.name == "aws"
    graph, _ = recsys()
    assert graph is not None
    assert TARGET.emit(compile_spec(RECSYS, ["prod-aws"]).systems["prod-aws"], graph) == {}
    assert hashlib.sha256(graph.canonical_json().encode()).hexdigest()


def test_a_canary_on_one_instance_cannot_be_expressed(tmp_path: Path) -> None:
    text = SPEC.replace("replicas: {min: 2, max: 6}", "replicas: {min: 1, max: 6}")
    result = compile_text(tmp_path, text)
    graph, found = lowered(result.systems["prod"])
    (problem,) = [d for d in found if d.code == codes.CANARY_STEP]
    assert graph is None and "raise replicas.min to at least 2" in (problem.hint or "")


def test_an_endpoint_without_rollback_alarms_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SageMaker cannot roll back without alarms: the model is reported at its rollout."""
    from types import SimpleNamespace

    from mlplane.targets.aws import alarm_seam

    def no_alarms(system: ir.System, served: Any, **kwargs: Any) -> Any:
        return SimpleNamespace(resources=(), rollback_alarm_names={}, rollback_alarm_resources={})

    fake = SimpleNamespace(ServedModel=lambda **kwargs: kwargs, lower_alarms=no_alarms)
    monkeypatch.setattr(alarm_seam, "_alarms_module", lambda: fake)
    result = compile_text(tmp_path, SPEC)
    graph, found = lowered(result.systems["prod"])
    refused = [d for d in found if d.code == codes.ROLLBACK_WITHOUT_ALARMS]
    assert graph is None and len(refused) == 2
    assert all(d.path.endswith("serving.rollout") and d.location is not None for d in refused)


# --- data capture -------------------------------------------------------------------------------

CAPTURE = "      dataCapture: {destination: events, samplingPercentage: 20}\n"


def _with_capture(model_line: str) -> str:
    """SPEC with data capture into the managed ``events`` bucket on the serving of a model."""
    anchor = f"      instanceType: {model_line}\n"
    assert SPEC.count(anchor) == 1
    return SPEC.replace(anchor, anchor + CAPTURE)


def test_data_capture_goes_to_a_managed_bucket_with_its_key(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, _with_capture("ml.m5.xlarge"))
    capture = one(graph, "scorer-endpoint-config").inputs["dataCaptureConfig"]
    assert capture["destinationS3Uri"] == "s3://shop-events/raw/capture/scorer/"
    assert capture["initialSamplingPercentage"] == 20 and capture["enableCapture"] is True
    assert capture["kmsKeyId"] == {"$ref": "confidential-kms-key", "$output": "arn"}
    policy = statements(one(graph, "scorer-execution-role-policy").inputs["policy"])
    assert policy["WriteCapture"]["Resource"] == "arn:aws:s3:::shop-events/raw/capture/scorer/*"


def test_data_capture_never_lowers_the_classification(tmp_path: Path) -> None:
    result = compile_text(tmp_path, _with_capture("ml.g5.xlarge"))  # ranker reads pii
    graph, found = lowered(result.systems["prod"])
    (problem,) = [d for d in found if d.code == codes.DATA_CAPTURE]
    assert graph is None and "classified only confidential" in problem.message
    assert problem.path == "models.ranker.serving.dataCapture.destination"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (
                "classification: pii\n    residency: eu\nmodels",
                "classification: phi\n    residency: eu\nmodels",
            ),
            "reads phi",
        ),
        (("    managed: true\n  lake:", "  lake:"), "not a managed s3:// objectStore"),
    ],
)
def test_data_capture_refusals(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = _with_capture("ml.g5.xlarge")
    text = text.replace(
        "    classification: confidential\n    residency: eu\n    retention: 90d",
        "    classification: phi\n    residency: eu\n    retention: 90d",
    )
    text = text.replace(*change)
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    graph, found = lowered(result.systems["prod"])
    problems = [d.message for d in found if d.code == codes.DATA_CAPTURE]
    assert graph is None and any(message in m for m in problems), problems


def test_data_capture_names_a_defined_source(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        _with_capture("ml.m5.xlarge").replace("destination: events", "destination: evnets"),
    )
    (problem,) = result.sorted_diagnostics()
    assert problem.code == "ref-undefined" and "did you mean 'events'?" in problem.message
    assert problem.path == "models.scorer.serving.dataCapture.destination"


# --- the printed program ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("variant", ["recsys-gpu", "fraud-scoring", "capture-and-shadow"])
def test_printed_program_registers_exactly_the_graph(tmp_path: Path, variant: str) -> None:
    """Under Pulumi's mock runtime, with the SDK's typed argument classes (docs/architecture.md)."""
    require_pulumi_sdk("pulumi_aws")
    from tests.pulumi_roundtrip import assert_round_trip, registrations_of

    if variant != "capture-and-shadow":
        system = compile_spec(REPO_ROOT / "examples" / variant, ["prod-aws"]).systems["prod-aws"]
    else:
        text = _with_capture("ml.m5.xlarge").replace(
            "{strategy: canary, steps: [50], pause: 10m}", "{strategy: shadow}"
        )
        system = compile_text(tmp_path, text).systems["prod"]
    graph, _ = lowered(system)
    assert graph is not None
    assert_round_trip(graph, registrations_of(graph, system, tmp_path / "program"))


@pytest.mark.parametrize(
    ("example", "env"), AWS_ENVIRONMENTS, ids=[f"{p.name}-{e}" for p, e in AWS_ENVIRONMENTS]
)
def test_graph_policies_find_nothing_in_the_examples(example: Path, env: str) -> None:
    """The resource-level policy rules (Checkov's AWS checks, mirrored) pass every example."""
    from mlplane.compiler.policy.engine import PolicyRun

    system = compile_spec(example, [env]).systems[env]
    graph, _ = lowered(system)
    assert graph is not None
    found, waived = Diagnostics(), Diagnostics()
    PolicyRun().check_graph(system, graph, found, waived)
    assert not found.items, [d.one_line() for d in found.sorted()]


# --- robustness ---------------------------------------------------------------------------------

ROLLOUTS = (
    "{strategy: rolling}",
    "{strategy: canary, steps: [5, 50]}",
    "{strategy: blueGreen, pause: 2h}",
    "{strategy: shadow}",
)


@pytest.mark.parametrize("rollout", ROLLOUTS)
@pytest.mark.parametrize("replicas", ["{min: 0, max: 3}", "{min: 1, max: 1}", "{min: 8, max: 9}"])
@pytest.mark.parametrize("managed", [True, False])
def test_lowering_gives_a_graph_or_diagnostics(
    tmp_path: Path, rollout: str, replicas: str, managed: bool
) -> None:
    """Combinations of the serving settings: never an exception, and no graph with an error."""
    text = SPEC.replace("{strategy: canary, steps: [50], pause: 10m}", rollout)
    text = text.replace("replicas: {min: 2, max: 6}", f"replicas: {replicas}")
    text = text.replace("autoscaling: {metric: rps, target: 50}", "autoscaling: null")
    if not managed:
        text = text.replace("    managed: true\n", "")
    text = _with_capture_text(text)
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    graph, found = lowered(result.systems["prod"])
    errors = [d for d in found if d.severity.value == "error"]
    assert (graph is None) == bool(errors)
    assert all(d.location is not None and d.path for d in found)


def _with_capture_text(text: str) -> str:
    anchor = "      instanceType: ml.m5.xlarge\n"
    return text.replace(anchor, anchor + CAPTURE)


def test_an_aws_build_carries_its_slos_as_alarms_not_prometheus_files(tmp_path: Path) -> None:
    """SageMaker reports to CloudWatch: the build has the Pulumi project and the graph's alarms,
    and no Prometheus rules on metrics that would never exist."""
    from mlplane.compiler.build.outputs import build

    result = build(REPO_ROOT / "examples" / "fraud-scoring", "prod-aws", tmp_path / "out")
    assert result.compiled.ok, [d.one_line() for d in result.compiled.sorted_diagnostics()]
    assert not [f for f in result.files if f.startswith("monitoring/")], result.files
    assert "pulumi/__main__.py" in result.files
    graph = json.loads((tmp_path / "out" / "resources.json").read_text(encoding="utf-8"))
    types = {r["type"] for r in graph["resources"]}
    assert {
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:cloudwatch/compositeAlarm:CompositeAlarm",
    } <= types
