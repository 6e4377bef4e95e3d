"""AWS rules on the resource graph: Checkov's AWS checks, mirrored where Checkov cannot look.

Checkov reads Terraform, CloudFormation and Kubernetes, not a Pulumi program, so these rules
test the same properties on the graph the AWS target lowered (Pulumi wire form: camelCase
inputs, ``$ref`` markers for other resources' outputs, ``$json`` for policy documents). Each
finding is located at the ``origin`` of the resource that breaks the rule (a bucket's
data source, a model's serving block), which is also what a waiver's target names.

This module holds the KMS, SageMaker, CloudWatch Logs, SNS and IAM rules; the S3 rules are in
``aws_s3.py`` and the graph-reading helpers in ``aws_graph.py``. Two deliberate departures from
Checkov, both forced by AWS: the access-log bucket may use SSE-S3 and is not logged itself
(``aws_s3.py``); and an endpoint configuration on an instance type with local NVMe storage
takes no KMS key (SageMaker encrypts those volumes in hardware and rejects ``KmsKeyId``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Severity
from mlplane.compiler.core.graph import Resource, ResourceGraph
from mlplane.compiler.policy.engine import Finding, resource_finding
from mlplane.policies.aws_graph import (
    ENDPOINT_CONFIG,
    KMS_KEY,
    LOG_GROUP,
    SAGEMAKER_MODEL,
    TOPIC,
    document,
    listed,
    statements,
)
from mlplane.policies.common import PACK
from mlplane.schema.formats import has_instance_storage

IDENTITY_POLICIES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
"""Identity policies (CKV_AWS_111/356 read IAM policy documents; key and bucket policies are
resource policies, whose ``Resource: "*"`` means the resource itself)."""

LOG_RETENTION_DAYS = 365
"""CKV_AWS_338: at least a year; 0 (never expire) passes too."""
_KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
_READ_VERBS = ("get", "list", "describe", "batchget", "head", "view", "search", "lookup")
_UNRESTRICTABLE = frozenset(
    {"cloudwatch:putmetricdata", "xray:puttracesegments", "xray:puttelemetryrecords",
     "kms:createkey", "ecr:getauthorizationtoken"}
)  # fmt: skip
"""Non-read actions that IAM can grant only on ``*`` (no resource-level permissions)."""


# --- KMS, SageMaker, CloudWatch Logs, SNS ------------------------------------------------------


@PACK.graph_rule(
    "aws.kms-rotation",
    title="Customer-managed KMS keys rotate automatically",
    severity=Severity.ERROR,
    mirrors=("CKV_AWS_7",),
    rationale="Rotation replaces a key's material yearly without re-encrypting data or changing "
    "its ARN, which limits how much data one compromised key version exposes; it is required by "
    "most compliance frameworks for keys that protect personal data. Only symmetric keys can "
    "rotate, so asymmetric ones are not checked.",
    remediation="set enableKeyRotation: true on the aws:kms/key:Key",
    example="# resources.json: aws:kms/key:Key\ninputs: {enableKeyRotation: false}",
    fix="inputs: {enableKeyRotation: true}",
)
def kms_rotation(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for key in graph.of_type(KMS_KEY):
        spec = key.inputs.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        rotates = isinstance(spec, str) and ("SYMMETRIC_DEFAULT" in spec or "HMAC" in spec)
        if rotates and key.inputs.get("enableKeyRotation") is not True:
            yield resource_finding(key, f"KMS key {key.name!r} does not rotate")


@PACK.graph_rule(
    "aws.sagemaker-endpoint-kms",
    title="SageMaker endpoint configurations encrypt their volumes with KMS",
    severity=Severity.ERROR,
    mirrors=("CKV_AWS_98",),
    rationale="The ML storage volumes of an endpoint hold the model and whatever the container "
    "writes; kmsKeyArn puts them under the classification tier's customer-managed key. "
    "Instance types with local NVMe storage (g5, p4d, m5d, ...) are encrypted in hardware and "
    "SageMaker rejects a key for them, so they pass without one.",
    remediation="set kmsKeyArn on the aws:sagemaker/endpointConfiguration (the AWS target sets "
    "the model's tier key), or serve from an instance type with local NVMe storage",
    example="# resources.json: aws:sagemaker/endpointConfiguration:EndpointConfiguration\n"
    "inputs: {productionVariants: [{instanceType: ml.m5.xlarge, ...}]}",
    fix="inputs: {kmsKeyArn: {$ref: pii-kms-key, $output: arn}, productionVariants: "
    "[{instanceType: ml.m5.xlarge, ...}]}",
)
def sagemaker_endpoint_kms(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for config in graph.of_type(ENDPOINT_CONFIG):
        if config.inputs.get("kmsKeyArn") or _all_instance_storage(config):
            continue
        yield resource_finding(
            config, f"endpoint configuration {config.name!r} has no KMS key (kmsKeyArn)"
        )


def _all_instance_storage(config: Resource) -> bool:
    variants = [
        v
        for key in ("productionVariants", "shadowProductionVariants")
        for v in listed(config.inputs.get(key, []))
        if isinstance(v, dict)
    ]
    return bool(variants) and all(has_instance_storage(v.get("instanceType")) for v in variants)


@PACK.graph_rule(
    "aws.sagemaker-network-isolation",
    title="SageMaker models run with network isolation",
    severity=Severity.ERROR,
    mirrors=("CKV_AWS_370",),
    rationale="With enableNetworkIsolation the model container has no outbound network at all: "
    "a compromised or malicious image cannot send the requests it scores, or the features in "
    "them, anywhere. SageMaker still fetches the artifact and image for it.",
    remediation="set enableNetworkIsolation: true on the aws:sagemaker/model:Model (secrets "
    "the container would fetch at run time must then come another way)",
    example="# resources.json: aws:sagemaker/model:Model\ninputs: {enableNetworkIsolation: false}",
    fix="inputs: {enableNetworkIsolation: true}",
)
def sagemaker_network_isolation(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for model in graph.of_type(SAGEMAKER_MODEL):
        if model.inputs.get("enableNetworkIsolation") is not True:
            yield resource_finding(model, f"SageMaker model {model.name!r} is not network-isolated")


@PACK.graph_rule(
    "aws.log-group-kms",
    title="CloudWatch log groups are encrypted with KMS",
    severity=Severity.ERROR,
    mirrors=("CKV_AWS_158",),
    rationale="Endpoint logs carry whatever the model server prints, request payloads and "
    "stack traces included; a customer-managed key keeps them under the same key policy as "
    "the data they came from.",
    remediation="set kmsKeyId on the aws:cloudwatch/logGroup:LogGroup (a key whose policy lets "
    "logs.<region>.amazonaws.com use it)",
    example="# resources.json: aws:cloudwatch/logGroup:LogGroup\ninputs: {retentionInDays: 365}",
    fix="inputs: {kmsKeyId: {$ref: pii-kms-key, $output: arn}, retentionInDays: 365}",
)
def log_group_kms(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for group in graph.of_type(LOG_GROUP):
        if not group.inputs.get("kmsKeyId"):
            yield resource_finding(group, f"log group {group.name!r} has no KMS key (kmsKeyId)")


@PACK.graph_rule(
    "aws.log-group-retention",
    title="CloudWatch log groups keep logs for at least a year",
    severity=Severity.WARNING,
    mirrors=("CKV_AWS_338",),
    rationale="Incidents are often found months later; a year of logs (retentionInDays >= "
    "365, or 0 for never expire) covers the usual audit requirement. A log group without a "
    "retention keeps logs forever by accident rather than by decision, so it fails as well.",
    remediation="set retentionInDays to 365 or more (CloudWatch accepts 365, 400, 545, 731, "
    "1096, 1827, 2192, 2557, 2922, 3288, 3653), or 0 to keep logs forever",
    example="# resources.json: aws:cloudwatch/logGroup:LogGroup\ninputs: {retentionInDays: 30}",
    fix="inputs: {retentionInDays: 365}",
)
def log_group_retention(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for group in graph.of_type(LOG_GROUP):
        days = group.inputs.get("retentionInDays")
        if isinstance(days, Mapping):  # an output of another resource: not known here
            continue
        if not isinstance(days, int) or isinstance(days, bool) or 0 < days < LOG_RETENTION_DAYS:
            kept = f"{days} days" if days is not None else "an unset number of days"
            yield resource_finding(
                group, f"log group {group.name!r} keeps logs for {kept}, less than a year (365)"
            )


@PACK.graph_rule(
    "aws.sns-encrypted",
    title="SNS topics are encrypted with KMS",
    severity=Severity.ERROR,
    mirrors=("CKV_AWS_26",),
    rationale="Alarm notifications name endpoints, models and error rates; a topic with "
    "kmsMasterKeyId stores them encrypted under a key whose policy lets only CloudWatch and "
    "SNS use it.",
    remediation="set kmsMasterKeyId on the aws:sns/topic:Topic (a key whose policy allows "
    "cloudwatch.amazonaws.com and sns.amazonaws.com)",
    example="# resources.json: aws:sns/topic:Topic\ninputs: {name: recsys_prod_alarms_page}",
    fix="inputs: {name: recsys_prod_alarms_page, kmsMasterKeyId: {$ref: alerts-kms-key, "
    "$output: arn}}",
)
def sns_encrypted(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for topic in graph.of_type(TOPIC):
        if not topic.inputs.get("kmsMasterKeyId"):
            yield resource_finding(topic, f"SNS topic {topic.name!r} is not encrypted")


# --- IAM ---------------------------------------------------------------------------------------


@PACK.graph_rule(
    "aws.iam-no-wildcard-write",
    title="IAM policies grant no write or permissions-management action on every resource",
    severity=Severity.ERROR,
    mirrors=("CKV_AWS_111", "CKV_AWS_356"),
    rationale="An Allow statement with Resource '*' and no condition grants its actions on "
    "every resource of the account: a role meant to write one bucket can then write all of "
    "them. Checkov's two checks (from cloudsplaining) flag write actions without constraints "
    "(CKV_AWS_111) and restrictable actions on '*' (CKV_AWS_356). This rule flags every action "
    "that is not read-only by its verb (Get, List, Describe, ...) and not one of the few that "
    "IAM grants only on '*' (cloudwatch:PutMetricData, ecr:GetAuthorizationToken, ...); "
    "wildcard actions (s3:*) count as write. A condition (aws:SourceAccount, ec2:Vpc, ...) "
    "constrains a statement, as for Checkov.",
    remediation="name the resources (ARNs) the statement needs, or constrain it with a "
    "condition; keep Resource '*' for read-only and resource-less actions only",
    example="# resources.json: aws:iam/rolePolicy:RolePolicy\ninputs: {policy: {$json: "
    "{Statement: [{Effect: Allow, Action: ec2:CreateNetworkInterface, Resource: '*'}]}}}",
    fix="inputs: {policy: {$json: {Statement: [{Effect: Allow, Action: "
    "ec2:CreateNetworkInterface, Resource: ['arn:aws:ec2:us-east-1:111122223333:"
    "network-interface/*', 'arn:aws:ec2:us-east-1:111122223333:subnet/subnet-0a1b']}]}}}",
)
def iam_no_wildcard_write(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for token in IDENTITY_POLICIES:
        for policy in graph.of_type(token):
            actions = sorted(
                {a for s in statements(document(policy.inputs.get("policy"))) for a in _wide(s)}
            )
            if actions:
                yield resource_finding(
                    policy,
                    f"IAM policy {policy.name!r} allows {', '.join(actions)} on every resource "
                    "('*') without a condition",
                )


def _wide(statement: Mapping[str, Any]) -> list[str]:
    """The non-read actions an unconditioned Allow statement grants on ``*``."""
    resources = listed(statement.get("Resource"))
    if statement.get("Effect") != "Allow" or statement.get("Condition") or "*" not in resources:
        return []
    return [str(a) for a in listed(statement.get("Action")) if _writes(str(a))]


def _writes(action: str) -> bool:
    lowered = action.lower()
    verb = lowered.partition(":")[2]
    return lowered not in _UNRESTRICTABLE and not verb.startswith(_READ_VERBS)
