"""S3 rules on the AWS resource graph (see ``aws.py`` for what graph rules are).

Every bucket is checked with its side resources: public access block and its four flags,
default encryption with KMS, versioning, access logging and a TLS-only bucket policy. The
bucket that receives S3 server access logs may use only SSE-S3 (AWS does not deliver access
logs to an SSE-KMS bucket) and is not itself logged (its logs would need yet another bucket).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Severity
from mlplane.compiler.core.graph import Resource, ResourceGraph
from mlplane.compiler.policy.engine import Finding, resource_finding
from mlplane.policies.aws_graph import (
    BUCKET,
    BUCKET_POLICY,
    ENCRYPTION,
    LOGGING,
    PUBLIC_ACCESS_BLOCK,
    VERSIONING,
    attached,
    bucket_label,
    document,
    listed,
    log_targets,
    statements,
)
from mlplane.policies.common import PACK

PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
_KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})


@PACK.graph_rule(
    "aws.s3-public-access-block",
    title="Every S3 bucket has a public access block",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV2_AWS_6",),
    rationale="A bucket without its own public access block is one ACL or bucket-policy edit "
    "away from being public; the account-level block is not part of the program and cannot be "
    "reviewed with it. Data-plane buckets of an ML system hold training data and artifacts.",
    remediation="lower the bucket through the AWS target (managed: true), which attaches an "
    "aws:s3/bucketPublicAccessBlock to every bucket it creates",
    example="# resources.json: an aws:s3/bucket:Bucket and no BucketPublicAccessBlock for it",
    fix="# resources.json\n- type: aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock\n"
    "  inputs: {bucket: {$ref: <bucket>, $output: bucket}, blockPublicAcls: true, ...}",
)
def s3_public_access_block(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for bucket in graph.of_type(BUCKET):
        if not attached(graph, PUBLIC_ACCESS_BLOCK, bucket):
            yield resource_finding(bucket, f"{bucket_label(bucket)} has no public access block")


@PACK.graph_rule(
    "aws.s3-public-access-flags",
    title="A bucket's public access block sets all four flags",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"),
    rationale="Each flag closes a different door: blockPublicAcls refuses new public ACLs, "
    "ignorePublicAcls neutralises existing ones, blockPublicPolicy refuses a public bucket "
    "policy and restrictPublicBuckets limits an existing one to AWS principals of the account. "
    "A block with any flag off leaves that door open.",
    remediation="set blockPublicAcls, blockPublicPolicy, ignorePublicAcls and "
    "restrictPublicBuckets to true",
    example="# resources.json: aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock\n"
    "inputs: {blockPublicAcls: true, blockPublicPolicy: false, ignorePublicAcls: true}",
    fix="inputs: {blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, "
    "restrictPublicBuckets: true}",
)
def s3_public_access_flags(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for block in graph.of_type(PUBLIC_ACCESS_BLOCK):
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if block.inputs.get(flag) is not True]
        if off:
            yield resource_finding(
                block, f"public access block {block.name!r} does not set {', '.join(off)}"
            )


@PACK.graph_rule(
    "aws.s3-kms-encrypted",
    title="S3 buckets are encrypted with KMS by default",
    severity=Severity.ERROR,
    mirrors=("CKV_AWS_145",),
    rationale="SSE-KMS with a customer-managed key puts every read of the data behind a key "
    "policy and CloudTrail, and lets the key's owner revoke access to all copies at once; SSE-S3 "
    "cannot. The one exception is the bucket that receives S3 server access logs, to which AWS "
    "delivers logs only with SSE-S3: it must still be encrypted, with AES256.",
    remediation="attach an aws:s3/bucketServerSideEncryptionConfiguration with sseAlgorithm "
    "aws:kms and the classification tier's key (bucketKeyEnabled: true)",
    example="# resources.json: aws:s3/bucketServerSideEncryptionConfiguration\n"
    "inputs: {rules: [{applyServerSideEncryptionByDefault: {sseAlgorithm: AES256}}]}",
    fix="inputs: {rules: [{applyServerSideEncryptionByDefault: {sseAlgorithm: aws:kms, "
    "kmsMasterKeyId: {$ref: pii-kms-key, $output: arn}}, bucketKeyEnabled: true}]}",
)
def s3_kms_encrypted(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    receivers = log_targets(graph)
    for bucket in graph.of_type(BUCKET):
        algorithms = {a for c in attached(graph, ENCRYPTION, bucket) for a in _algorithms(c)}
        allowed = _KMS_ALGORITHMS | ({"AES256"} if bucket.name in receivers else set())
        if not algorithms & allowed:
            shown = ", ".join(sorted(algorithms)) or "no default encryption"
            yield resource_finding(
                bucket, f"{bucket_label(bucket)} is not encrypted with KMS by default ({shown})"
            )


def _algorithms(configuration: Resource) -> list[str]:
    rules = listed(configuration.inputs.get("rules", []))
    found = []
    for rule in rules:
        default = rule.get("applyServerSideEncryptionByDefault") if isinstance(rule, dict) else None
        algorithm = default.get("sseAlgorithm") if isinstance(default, dict) else None
        if isinstance(algorithm, str):
            found.append(algorithm)
    return found


@PACK.graph_rule(
    "aws.s3-versioned",
    title="S3 buckets have versioning enabled",
    severity=Severity.WARNING,
    mirrors=("CKV_AWS_21",),
    rationale="Versioning keeps overwritten and deleted objects recoverable: a training job "
    "that overwrites a data set, or a mistaken delete, can be undone (the lifecycle rule "
    "expires noncurrent versions after the data's retention).",
    remediation="attach an aws:s3/bucketVersioning with versioningConfiguration.status Enabled",
    example="# resources.json: aws:s3/bucketVersioning:BucketVersioning\n"
    "inputs: {versioningConfiguration: {status: Suspended}}",
    fix="inputs: {versioningConfiguration: {status: Enabled}}",
)
def s3_versioned(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for bucket in graph.of_type(BUCKET):
        statuses = [_status(v) for v in attached(graph, VERSIONING, bucket)]
        if "Enabled" not in statuses:
            yield resource_finding(bucket, f"{bucket_label(bucket)} has no versioning enabled")


def _status(versioning: Resource) -> str | None:
    configuration = versioning.inputs.get("versioningConfiguration")
    status = configuration.get("status") if isinstance(configuration, dict) else None
    return status if isinstance(status, str) else None


@PACK.graph_rule(
    "aws.s3-access-logged",
    title="S3 buckets have server access logging",
    severity=Severity.WARNING,
    mirrors=("CKV_AWS_18",),
    rationale="Access logs record every request to the data, including denied ones, which is "
    "what an incident review of a data set needs. The bucket that receives the logs is exempt: "
    "logging it would need yet another bucket (or a loop into itself).",
    remediation="attach an aws:s3/bucketLogging that delivers to the environment's access-log "
    "bucket",
    example="# resources.json: an aws:s3/bucket:Bucket and no BucketLogging for it",
    fix="# resources.json\n- type: aws:s3/bucketLogging:BucketLogging\n"
    "  inputs: {bucket: {$ref: <bucket>, $output: bucket}, targetBucket: {$ref: <log bucket>, "
    "$output: bucket}}",
)
def s3_access_logged(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    receivers = log_targets(graph)
    for bucket in graph.of_type(BUCKET):
        if bucket.name not in receivers and not attached(graph, LOGGING, bucket):
            yield resource_finding(bucket, f"{bucket_label(bucket)} has no access logging")


@PACK.graph_rule(
    "aws.s3-tls-only",
    title="Every bucket policy denies requests without TLS",
    severity=Severity.ERROR,
    rationale="Encryption in transit is only required when something refuses plain HTTP: S3 "
    "accepts it unless the bucket policy denies every action for every principal when "
    "aws:SecureTransport is false, on the bucket and on its objects.",
    remediation="attach an aws:s3/bucketPolicy with a statement {Effect: Deny, Principal: '*', "
    "Action: 's3:*', Resource: [<bucket ARN>, '<bucket ARN>/*'], Condition: {Bool: "
    "{aws:SecureTransport: 'false'}}}",
    example="# resources.json: aws:s3/bucketPolicy:BucketPolicy\n"
    "inputs: {policy: {$json: {Statement: [{Effect: Allow, ...}]}}}",
    fix="inputs: {policy: {$json: {Statement: [{Sid: DenyInsecureTransport, Effect: Deny, "
    "Principal: '*', Action: 's3:*', Resource: [arn:aws:s3:::b, 'arn:aws:s3:::b/*'], "
    "Condition: {Bool: {aws:SecureTransport: 'false'}}}]}}}",
)
def s3_tls_only(graph: ResourceGraph, system: ir.System) -> Iterator[Finding]:
    del system
    for bucket in graph.of_type(BUCKET):
        policies = attached(graph, BUCKET_POLICY, bucket)
        found = [s for p in policies for s in statements(document(p.inputs.get("policy")))]
        if not any(_denies_plain_http(statement) for statement in found):
            yield resource_finding(
                policies[0] if policies else bucket,
                f"the policy of {bucket_label(bucket)} does not deny requests without TLS",
            )


def _denies_plain_http(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition")
    bools = condition.get("Bool") if isinstance(condition, dict) else None
    flag = bools.get("aws:SecureTransport") if isinstance(bools, dict) else None
    principal = statement.get("Principal")
    everyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
    actions = {str(a).lower() for a in listed(statement.get("Action"))}
    return (
        statement.get("Effect") == "Deny"
        and str(flag).lower() == "false"
        and everyone
        and bool(actions & {"s3:*", "*"})
        and _covers_bucket_and_objects(listed(statement.get("Resource")))
    )


def _covers_bucket_and_objects(resources: Sequence[Any]) -> bool:
    if "*" in resources:
        return True
    objects = any(isinstance(r, str) and r.endswith("/*") for r in resources)
    bucket = any(not (isinstance(r, str) and r.endswith("/*")) for r in resources)
    return objects and bucket
