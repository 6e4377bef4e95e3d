"""Names of the AWS target, derived only from spec names (and the account and region).

Logical names (the graph's, hence Pulumi's) are pure functions of spec names, so a rename in the
spec is the only thing that renames a resource. Physical names are set only where AWS needs a
stable one: buckets (the spec's URI names them), the endpoint (alarms and scaling targets name
it), its log group and the KMS aliases. Models and endpoint configurations are auto-named, so
Pulumi can create a replacement before deleting the one in use. The alarms module names its
resources ``alarm-*``, ``sns-*`` and ``dashboard-*``; nothing here starts with those.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from mlplane.compiler.core import ir
from mlplane.targets.aws.settings import aws_of

SYSTEM_COMPONENT_TYPE = "mlplane:index:System"
MODEL_COMPONENT_TYPE = "mlplane:index:Model"
VARIANT = "primary"
SHADOW_VARIANT = "shadow"
ENDPOINT_NAME_LIMIT = 63
"""SageMaker endpoint names: 63 characters, letters, digits and '-'."""


def system_component(system: ir.System) -> str:
    return f"{system.name}-system"


def model_component(model: str) -> str:
    return f"{model}-model"


def logical(owner: str, suffix: str) -> str:
    """A logical name: the owner's spec name, then what the resource is (``scorer-endpoint``)."""
    return f"{owner}-{suffix}"


def provider(system: ir.System) -> str:
    return f"{system.name}-aws-provider"


def key(tier: str) -> str:
    """The KMS key of one classification tier (``pii-kms-key``), or of the alerts (``alerts``)."""
    return f"{tier}-kms-key"


def key_alias(system: ir.System, tier: str) -> str:
    return f"alias/{system.name}-{system.environment.name}-{tier}"


def endpoint(system: ir.System, model: str) -> str:
    """The SageMaker endpoint's name: system, environment and model (checked against 63)."""
    return f"{system.name}-{system.environment.name}-{model}"


TRAINING_NAME_LIMIT = 64
"""EventBridge Scheduler schedule names: 64 characters (the pipeline takes the same name)."""
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
"""Where SageMaker writes every training job's logs (one group per account and region)."""


def training(system: ir.System, model: str) -> str:
    """The name of a model's training pipeline and of its schedule (checked against 64)."""
    return f"{endpoint(system, model)}-training"


def log_group(endpoint_name: str) -> str:
    """Where SageMaker writes an endpoint's container logs (a fixed convention of SageMaker)."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def log_bucket(system: ir.System) -> str:
    """The environment's access-log bucket: globally unique and at most 63 characters, so the
    account and region are in it and the system and environment only as a short digest."""
    env = system.environment
    digest = hashlib.sha256(f"{system.name}/{env.name}".encode()).hexdigest()[:10]
    return f"mlplane-logs-{aws_of(env).aws_account_id}-{aws_of(env).aws_region}-{digest}"


def partition(region: str | None) -> str:
    return "aws-us-gov" if region and region.startswith("us-gov-") else "aws"


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of an ``s3://bucket/prefix`` URI; the prefix has no leading '/'."""
    parts = urlsplit(uri)
    return parts.netloc, parts.path.lstrip("/")


def bucket_arn(system: ir.System, bucket: str) -> str:
    return f"arn:{partition(aws_of(system.environment).aws_region)}:s3:::{bucket}"


def log_group_arn(system: ir.System, name: str) -> str:
    env = system.environment
    region = aws_of(env).aws_region
    return f"arn:{partition(region)}:logs:{region}:{aws_of(env).aws_account_id}:log-group:{name}"


def account_root(system: ir.System) -> str:
    env = system.environment
    return f"arn:{partition(aws_of(env).aws_region)}:iam::{aws_of(env).aws_account_id}:root"


def ecr_repository_arn(image: ir.ImageRef) -> str | None:
    """The ECR repository ARN of an ECR image (``<account>.dkr.ecr.<region>.amazonaws.com``)."""
    host = image.registry or ""
    labels = host.split(".")
    if len(labels) < 6 or labels[1:3] != ["dkr", "ecr"] or not host.endswith(".amazonaws.com"):
        return None
    account, region = labels[0], labels[3]
    return f"arn:{partition(region)}:ecr:{region}:{account}:repository/{image.repository}"
