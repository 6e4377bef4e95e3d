"""Hand-made AWS resource graphs for the Pulumi printer, independent of any target's lowering.

``aws_graph`` is a small serving stack as the AWS target will emit it: an explicit provider, a
KMS key, an artifact bucket with its side resources (they reference the bucket's id and the
key's ARN through ``$ref`` markers, the bucket policy is a ``$json`` document holding a ref), a
SageMaker Model -> EndpointConfiguration -> Endpoint chain linked by refs, an SNS topic and an
alarm. Several resources sort before the resources they reference, so the printer must reorder.

``aws_table_graph`` has one resource of every AWS row, with generated values for exactly the
inputs its args class requires (recursively): it proves each row registers its own token.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core.graph import Resource, ResourceGraph, ResourceOptions, json_document, ref
from mlplane.targets import pulumi_aws_classes as aws
from mlplane.targets.pulumi_classes import CLASSES
from tests.pulumi_graphs import ORIGIN

PROVIDER = "demo-aws"
ON_PROVIDER = ResourceOptions(provider=PROVIDER)
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/scorer@sha256:" + "ab" * 32


def _aws(token: str, name: str, inputs: dict[str, Any], **kwargs: Any) -> Resource:
    kwargs.setdefault("options", ON_PROVIDER)
    return Resource(token, name, inputs, ORIGIN, parent="demo", **kwargs)


def _statement(sid: str, effect: str, principal: Any, action: Any, resource: Any) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": effect,
        "Principal": principal,
        "Action": action,
        "Resource": resource,
    }


def _bucket_resources() -> list[Resource]:
    bucket = ref("demo-artifacts", "id")
    deny_plain_http = _statement(
        "DenyInsecureTransport", "Deny", "*", "s3:*", [ref("demo-artifacts", "arn")]
    )
    deny_plain_http["Condition"] = {"Bool": {"aws:SecureTransport": "false"}}
    encryption = {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": ref("demo-key", "arn")}
    return [
        _aws(
            "aws:s3/bucket:Bucket",
            "demo-artifacts",
            {
                "bucket": "demo-artifacts-eu",
                "forceDestroy": False,
                "tags": {"mlplane.dev/system": "demo"},
            },
        ),
        _aws("aws:s3/bucket:Bucket", "demo-logs", {"bucket": "demo-logs-eu"}),
        _aws(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "a-artifacts-public-access",
            {
                "bucket": bucket,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
        ),
        _aws(
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            "demo-artifacts-ownership",
            {
                "bucket": bucket,
                "rule": {"objectOwnership": "BucketOwnerEnforced"},
            },
        ),
        _aws(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "demo-artifacts-sse",
            {
                "bucket": bucket,
                "rules": [
                    {"applyServerSideEncryptionByDefault": encryption, "bucketKeyEnabled": True}
                ],
            },
        ),
        _aws(
            "aws:s3/bucketVersioning:BucketVersioning",
            "demo-artifacts-versioning",
            {
                "bucket": bucket,
                "versioningConfiguration": {"status": "Enabled"},
            },
        ),
        _aws(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "demo-artifacts-lifecycle",
            {
                "bucket": bucket,
                "rules": [
                    {
                        "id": "expire",
                        "status": "Enabled",
                        "expiration": {"days": 400},
                        "filter": {"prefix": ""},
                    },
                    {
                        "id": "abort-uploads",
                        "status": "Enabled",
                        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
                    },
                ],
            },
        ),
        _aws(
            "aws:s3/bucketLogging:BucketLogging",
            "demo-artifacts-logging",
            {
                "bucket": bucket,
                "targetBucket": ref("demo-logs", "id"),
                "targetPrefix": "artifacts/",
            },
        ),
        _aws(
            "aws:s3/bucketPolicy:BucketPolicy",
            "demo-artifacts-policy",
            {
                "bucket": bucket,
                "policy": json_document({"Version": "2012-10-17", "Statement": [deny_plain_http]}),
            },
        ),
    ]


def _serving_resources() -> list[Resource]:
    assume = _statement(
        "SageMaker", "Allow", {"Service": "sagemaker.amazonaws.com"}, "sts:AssumeRole", None
    )
    del assume["Resource"]
    read = _statement(
        "ReadArtifacts", "Allow", None, ["s3:GetObject"], [ref("demo-artifacts", "arn")]
    )
    del read["Principal"]
    variant = {
        "variantName": "primary",
        "modelName": ref("demo-scorer-model", "name"),
        "initialInstanceCount": 2,
        "instanceType": "ml.m5.large",
        "initialVariantWeight": 1.0,
    }
    return [
        _aws(
            "aws:iam/role:Role",
            "demo-scorer-role",
            {
                "name": "demo-scorer",
                "assumeRolePolicy": json_document({"Version": "2012-10-17", "Statement": [assume]}),
            },
        ),
        _aws(
            "aws:iam/rolePolicy:RolePolicy",
            "demo-scorer-role-policy",
            {
                "role": ref("demo-scorer-role", "id"),
                "policy": json_document({"Version": "2012-10-17", "Statement": [read]}),
            },
        ),
        _aws(
            "aws:sagemaker/model:Model",
            "demo-scorer-model",
            {
                "executionRoleArn": ref("demo-scorer-role", "arn"),
                "primaryContainer": {
                    "image": IMAGE,
                    "modelDataUrl": "s3://demo-artifacts-eu/scorer/4.2.0/model.tar.gz",
                    "environment": {"THRESHOLD": "0.2"},
                },
                "enableNetworkIsolation": True,
            },
        ),
        _aws(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "demo-scorer-config",
            {
                "productionVariants": [variant],
                "kmsKeyArn": ref("demo-key", "arn"),
            },
        ),
        _aws(
            "aws:sagemaker/endpoint:Endpoint",
            "demo-scorer-endpoint",
            {
                "name": "demo-scorer",
                "endpointConfigName": ref("demo-scorer-config", "name"),
            },
        ),
        _aws(
            "aws:sns/topic:Topic",
            "demo-alerts",
            {"name": "demo-alerts", "kmsMasterKeyId": ref("demo-key", "id")},
        ),
        _aws(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "a-scorer-latency",
            {
                "name": "demo-scorer-latency",
                "comparisonOperator": "GreaterThanThreshold",
                "evaluationPeriods": 3,
                "metricName": "ModelLatency",
                "namespace": "AWS/SageMaker",
                "period": 60,
                "statistic": "Average",
                "threshold": 100000.0,
                "treatMissingData": "notBreaching",
                "dimensions": {
                    "EndpointName": ref("demo-scorer-endpoint", "name"),
                    "VariantName": "primary",
                },
                "alarmActions": [ref("demo-alerts", "arn")],
                "okActions": [],
            },
        ),
    ]


def aws_graph(environment: str = "prod") -> ResourceGraph:
    key_policy = _statement(
        "Root", "Allow", {"AWS": "arn:aws:iam::123456789012:root"}, "kms:*", "*"
    )
    resources = [
        Resource(
            "mlplane:index:System",
            "demo",
            {"system": "demo", "environment": environment},
            ORIGIN,
            component=True,
        ),
        _aws(
            "pulumi:providers:aws",
            PROVIDER,
            {
                "region": "eu-west-1",
                "defaultTags": {"tags": {"mlplane.dev/system": "demo"}},
            },
            options=ResourceOptions(),
        ),
        _aws(
            "aws:kms/key:Key",
            "demo-key",
            {
                "description": "demo artifacts",
                "enableKeyRotation": True,
                "deletionWindowInDays": 30,
                "policy": json_document({"Version": "2012-10-17", "Statement": [key_policy]}),
            },
            options=ResourceOptions(protect=True, provider=PROVIDER),
        ),
        _aws(
            "aws:kms/alias:Alias",
            "demo-key-alias",
            {"name": "alias/demo", "targetKeyId": ref("demo-key", "keyId")},
        ),
        *_bucket_resources(),
        *_serving_resources(),
    ]
    return ResourceGraph.build(environment, "aws", resources)


_SCALARS: dict[str, Any] = {"str": "x", "int": 1, "float": 1.5, "bool": True, "any": "x"}


def minimal_value(container: str, item: str) -> Any:
    """A value of the shape (``container``, ``item``): an object gets its required inputs."""
    one = minimal_inputs(item) if item in aws.TYPES else _SCALARS[item]
    return {"list": [one], "map": {"k": one}}.get(container, one)


def minimal_inputs(args: str) -> dict[str, Any]:
    fields = aws.TYPES[args]
    return {key: minimal_value(*fields[key][1:]) for key in aws.REQUIRED.get(args, ())}


def aws_table_graph(environment: str = "prod") -> ResourceGraph:
    """One resource of every AWS row of ``CLASSES``, with its required inputs."""
    resources = []
    for i, (token, cls) in enumerate(sorted(CLASSES.items())):
        if cls.args is not None:
            resources.append(Resource(token, f"aws-row-{i:02d}", minimal_inputs(cls.args), ORIGIN))
    return ResourceGraph.build(environment, "aws", resources)
