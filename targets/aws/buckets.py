"""Managed object stores as hardened S3 buckets, and the environment's access-log bucket.

A managed ``objectStore`` becomes a ``Bucket`` with the separate (non-deprecated) side resources:
ownership enforced (ACLs off), all four public-access-block flags, SSE-KMS with the tier's key
and bucket keys, versioning, a lifecycle from ``retention`` (current and noncurrent versions, and
incomplete multipart uploads), server access logging, and a policy that denies non-TLS requests.

The log bucket gets the same hardening except encryption: S3 server access logging delivers
only to buckets encrypted with SSE-S3 (a KMS default key is not supported as a log target), so
it uses AES256. Its policy lets the S3 logging service of this account write into it.

Deleting or replacing a bucket would destroy data: every bucket is ``retainOnDelete`` (removing
it from the spec leaves the bucket and its data in the account), and in production environments
also ``protect``ed, so neither ``pulumi destroy`` nor a replacement can touch it until someone
removes the protection on purpose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.graph import json_document, ref
from mlplane.targets.aws import names
from mlplane.targets.aws.context import Lowering
from mlplane.targets.aws.settings import aws_of

BUCKET_TYPE = "aws:s3/bucket:Bucket"
OWNERSHIP_TYPE = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
PUBLIC_ACCESS_TYPE = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION_TYPE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
VERSIONING_TYPE = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE_TYPE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING_TYPE = "aws:s3/bucketLogging:BucketLogging"
POLICY_TYPE = "aws:s3/bucketPolicy:BucketPolicy"

DAY = 86_400
LOG_RETENTION_DAYS = 365
ABORT_UPLOADS_DAYS = 7


@dataclass(frozen=True, slots=True)
class ManagedBucket:
    """One managed bucket as the rest of the lowering needs it."""

    source: str
    bucket: str
    prefix: str
    logical: str
    tier: str


def managed_buckets(system: ir.System) -> list[ManagedBucket]:
    """The managed s3:// object stores (others are reported by ``checks``), by source name."""
    found = []
    for name, source in system.data_sources.items():
        if source.managed and source.uri.startswith("s3://"):
            bucket, prefix = names.s3_location(source.uri)
            found.append(
                ManagedBucket(
                    name, bucket, prefix, names.logical(name, "bucket"), source.classification
                )
            )
    return found


def _tls_only(lowering: Lowering, bucket: str) -> dict[str, Any]:
    arn = names.bucket_arn(lowering.system, bucket)
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _log_delivery(lowering: Lowering, bucket: str) -> dict[str, Any]:
    arn = names.bucket_arn(lowering.system, bucket)
    return {
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{arn}/*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": aws_of(lowering.environment).aws_account_id}
        },
    }


def _rules(days: int | None, prefix: str) -> list[dict[str, Any]]:
    abort = {
        "id": "abort-incomplete-uploads",
        "status": "Enabled",
        "filter": {"prefix": ""},
        "abortIncompleteMultipartUpload": {"daysAfterInitiation": ABORT_UPLOADS_DAYS},
    }
    if days is None:
        return [abort]
    retention = {
        "id": "retention",
        "status": "Enabled",
        "filter": {"prefix": prefix},
        "expiration": {"days": days},
        "noncurrentVersionExpiration": {"noncurrentDays": days},
    }
    return [abort, retention]


def _retention_days(source: ir.DataSource) -> int | None:
    seconds = source.retention_seconds
    return None if seconds is None else max(1, math.ceil(seconds / DAY))


@dataclass(frozen=True, slots=True)
class _Hardening:
    """What differs between a data bucket and the log bucket."""

    encryption: dict[str, Any]
    lifecycle: list[dict[str, Any]]
    statements: list[dict[str, Any]]
    tags: dict[str, str]


def _add_hardened(
    lowering: Lowering,
    logical: str,
    bucket: str,
    spec: _Hardening,
    path: tuple[str, ...],
    parent: str,
) -> tuple[str, str]:
    """The bucket and its side resources; returns (bucket, bucket policy) logical names."""
    origin = lowering.origin(path)
    inputs = {"bucket": bucket, "tags": spec.tags}
    production = lowering.environment.production
    lowering.add(
        BUCKET_TYPE, logical, inputs, origin, parent, protect=production, retain_on_delete=True
    )
    name = ref(logical, "bucket")
    side: dict[str, tuple[str, dict[str, Any]]] = {
        "ownership": (OWNERSHIP_TYPE, {"rule": {"objectOwnership": "BucketOwnerEnforced"}}),
        "public-access-block": (PUBLIC_ACCESS_TYPE, dict.fromkeys(
            ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
        )),
        "encryption": (ENCRYPTION_TYPE, {"rules": [spec.encryption]}),
        "versioning": (VERSIONING_TYPE, {"versioningConfiguration": {"status": "Enabled"}}),
        "lifecycle": (LIFECYCLE_TYPE, {"rules": spec.lifecycle}),
    }  # fmt: skip
    for suffix, (token, body) in side.items():
        lowering.add(
            token, names.logical(logical, suffix), {"bucket": name, **body}, origin, parent
        )
    policy = {"Version": "2012-10-17", "Statement": spec.statements}
    blocked = names.logical(logical, "public-access-block")
    policy_name = lowering.add(
        POLICY_TYPE,
        names.logical(logical, "policy"),
        {"bucket": name, "policy": json_document(policy)},
        origin,
        parent,
        (blocked,),
    )
    return logical, policy_name


def lower_log_bucket(lowering: Lowering, parent: str) -> tuple[str, str]:
    """The access-log bucket of the environment: (logical name, its policy's logical name)."""
    bucket = names.log_bucket(lowering.system)
    spec = _Hardening(
        encryption={"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}},
        lifecycle=[
            *_rules(None, ""),
            {
                "id": "retention",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "expiration": {"days": LOG_RETENTION_DAYS},
                "noncurrentVersionExpiration": {"noncurrentDays": LOG_RETENTION_DAYS},
            },
        ],
        statements=[_tls_only(lowering, bucket), _log_delivery(lowering, bucket)],
        tags=lowering.tags(**{"mlplane.dev/purpose": "s3-access-logs"}),
    )
    path = ("environments", lowering.environment.name, "aws")
    return _add_hardened(
        lowering, names.logical(lowering.system.name, "access-logs"), bucket, spec, path, parent
    )


def lower_bucket(
    lowering: Lowering, managed: ManagedBucket, key: str, logs: tuple[str, str], parent: str
) -> None:
    """One managed data bucket, encrypted with ``key`` and logging into ``logs``."""
    source = lowering.system.data_sources[managed.source]
    spec = _Hardening(
        encryption={
            "applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": ref(key, "arn"),
            },
            "bucketKeyEnabled": True,
        },
        lifecycle=_rules(_retention_days(source), managed.prefix),
        statements=[_tls_only(lowering, managed.bucket)],
        tags=lowering.tags(
            **{
                "mlplane.dev/classification": managed.tier,
                "mlplane.dev/data-source": managed.source,
            }
        ),
    )
    path = ("dataSources", managed.source)
    logical, _ = _add_hardened(lowering, managed.logical, managed.bucket, spec, path, parent)
    log_bucket, log_policy = logs
    logging = {
        "bucket": ref(logical, "bucket"),
        "targetBucket": ref(log_bucket, "bucket"),
        "targetPrefix": f"{managed.bucket}/",
    }
    origin = lowering.origin(path)
    lowering.add(
        LOGGING_TYPE, names.logical(logical, "logging"), logging, origin, parent, (log_policy,)
    )
