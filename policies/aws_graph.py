"""Reading the AWS resource graph for the graph rules (``aws.py``, ``aws_s3.py``).

The graph is in Pulumi wire form: camelCase inputs, ``{"$ref": name, "$output": attr}`` markers
for other resources' outputs, ``{"$json": document}`` for policy documents. S3 side resources
(public access block, encryption, versioning, logging, policy) name their bucket through a
``$ref`` to it, or by its literal name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlplane.compiler.core.graph import JSON_MARKER, Resource, ResourceGraph, output_ref

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TOPIC = "aws:sns/topic:Topic"


def refers_to(value: Any, name: str) -> bool:
    """Whether ``value`` is a ``$ref`` marker naming resource ``name``."""
    target = output_ref(value) if isinstance(value, Mapping) else None
    return target is not None and target[0] == name


def attached(graph: ResourceGraph, token: str, bucket: Resource) -> list[Resource]:
    """The side resources of type ``token`` whose ``bucket`` input is ``bucket``."""
    wanted = bucket.inputs.get("bucket")
    return [
        r
        for r in graph.of_type(token)
        if refers_to(r.inputs.get("bucket"), bucket.name)
        or (isinstance(wanted, str) and r.inputs.get("bucket") == wanted)
    ]


def log_targets(graph: ResourceGraph) -> frozenset[str]:
    """The buckets that receive S3 server access logs (``BucketLogging.targetBucket``)."""
    names = set()
    for logging in graph.of_type(LOGGING):
        target = logging.inputs.get("targetBucket")
        found = output_ref(target) if isinstance(target, Mapping) else None
        if found is not None:
            names.add(found[0])
    return frozenset(names)


def document(value: Any) -> Mapping[str, Any] | None:
    """A policy document input (``{"$json": ...}`` or JSON text) as a mapping, else None."""
    if isinstance(value, Mapping) and JSON_MARKER in value:
        value = value[JSON_MARKER]
    elif isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    found = document.get("Statement", []) if document is not None else []
    items = found if isinstance(found, list) else [found]
    return [item for item in items if isinstance(item, Mapping)]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def bucket_label(bucket: Resource) -> str:
    return f"bucket {bucket.name!r}"
