"""The SageMaker execution role of each model: exactly what the model needs, nothing more.

One role per model (trusted by ``sagemaker.amazonaws.com`` of this account only) with one inline
policy: read the S3 prefixes of its ``s3://`` inputs and of its artifact, decrypt with the keys
of its managed inputs (and its own tier, for the endpoint's volume and data), write its endpoint
log group, manage the network interfaces SageMaker puts into the VPC, and pull its image when
the image is in ECR. A referenced (non-managed) bucket is granted by the ARN its URI names; the
keys of referenced data are not known to the spec and must be granted by their owners.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.graph import json_document, ref
from mlplane.targets.aws import names
from mlplane.targets.aws.alarm_math import alarm_arn
from mlplane.targets.aws.context import Lowering, model_tier
from mlplane.targets.aws.serving import capture_location
from mlplane.targets.aws.settings import aws_of

ROLE_TYPE = "aws:iam/role:Role"
ROLE_POLICY_TYPE = "aws:iam/rolePolicy:RolePolicy"
POLICY_NAME = "mlplane-execution"
ROLLBACK_POLICY_NAME = "mlplane-rollback-alarms"
VPC_WRITE_ACTIONS = [
    "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission",
]  # fmt: skip
VPC_DESCRIBE_ACTIONS = [
    "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets", "ec2:DescribeVpcs",
]  # fmt: skip
ECR_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def trust_policy(lowering: Lowering, service: str = "sagemaker.amazonaws.com") -> dict[str, Any]:
    """Trust ``service`` acting for this account only (the confused-deputy guard)."""
    account = aws_of(lowering.environment).aws_account_id
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def read_locations(system: ir.System, model: ir.Model) -> list[str]:
    """The ``s3://`` locations the model reads: its inputs' and its artifact's, sorted."""
    uris = [system.data_sources[name].uri for name in model.inputs]
    if model.artifact is not None:
        uris.append(model.artifact)
    return sorted({uri for uri in uris if uri.startswith("s3://")})


def s3_read_statements(lowering: Lowering, uris: list[str]) -> list[dict[str, Any]]:
    """Read the objects under each ``s3://`` location, and list only those prefixes."""
    objects: list[str] = []
    buckets: dict[str, list[str]] = {}
    for uri in uris:
        bucket, prefix = names.s3_location(uri)
        arn = names.bucket_arn(lowering.system, bucket)
        objects.append(f"{arn}/{prefix}*")
        buckets.setdefault(arn, []).append(f"{prefix}*")
    statements: list[dict[str, Any]] = []
    if objects:
        statements.append({"Sid": "ReadData", "Effect": "Allow", "Action": "s3:GetObject",
                           "Resource": sorted(set(objects))})  # fmt: skip
    for index, (arn, prefixes) in enumerate(sorted(buckets.items())):
        statements.append(
            {
                "Sid": f"ListData{index}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": sorted(set(prefixes))}},
            }
        )
    return statements


def key_tiers(lowering: Lowering, model: ir.Model) -> list[str]:
    """The tiers whose keys the model uses: its managed inputs' and its own."""
    sources = lowering.system.data_sources
    tiers = {sources[name].classification for name in model.inputs if sources[name].managed}
    tiers.add(model_tier(lowering.system, model))
    capture = model.serving.data_capture
    if capture is not None and capture.destination in sources:
        tiers.add(sources[capture.destination].classification)
    return sorted(tiers)


def _capture_statement(lowering: Lowering, model: ir.Model) -> list[dict[str, Any]]:
    """Write access to the model's own capture prefix (SageMaker writes as the model's role)."""
    location = capture_location(lowering, model)
    if location is None:
        return []
    resource = f"{names.bucket_arn(lowering.system, location[0])}/{location[1]}*"
    return [
        {"Sid": "WriteCapture", "Effect": "Allow", "Action": "s3:PutObject", "Resource": resource}
    ]


def vpc_resources(lowering: Lowering) -> list[str]:
    """The network interfaces of this account and region, and the environment's subnets and
    security groups: where SageMaker may create the interfaces of its VPC configuration."""
    env = lowering.environment
    prefix = f"arn:{names.partition(aws_of(env).aws_region)}:ec2:{aws_of(env).aws_region}:{aws_of(env).aws_account_id}"
    vpc = aws_of(env).aws_vpc
    subnets = vpc.subnet_ids if vpc else ()
    groups = vpc.security_group_ids if vpc else ()
    return [
        f"{prefix}:network-interface/*",
        *(f"{prefix}:subnet/{subnet}" for subnet in subnets),
        *(f"{prefix}:security-group/{group}" for group in groups),
    ]


def network_statements(lowering: Lowering, image: ir.ImageRef) -> list[dict[str, Any]]:
    """The VPC interfaces SageMaker manages for a job or endpoint, and pulling its ECR image."""
    statements: list[dict[str, Any]] = [
        {"Sid": "VpcNetworkInterfaces", "Effect": "Allow", "Action": VPC_WRITE_ACTIONS,
         "Resource": vpc_resources(lowering)},
        {"Sid": "VpcDescribe", "Effect": "Allow", "Action": VPC_DESCRIBE_ACTIONS, "Resource": "*"},
    ]  # fmt: skip
    repository = names.ecr_repository_arn(image)
    if repository is not None:
        statements.append({"Sid": "PullImage", "Effect": "Allow", "Action": ECR_ACTIONS,
                           "Resource": repository})  # fmt: skip
        statements.append({"Sid": "EcrToken", "Effect": "Allow",
                           "Action": "ecr:GetAuthorizationToken", "Resource": "*"})  # fmt: skip
    return statements


def _other_statements(lowering: Lowering, model: ir.Model) -> list[dict[str, Any]]:
    keys = [ref(names.key(tier), "arn") for tier in key_tiers(lowering, model)]
    log_group = names.log_group(names.endpoint(lowering.system, model.name))
    group_arn = names.log_group_arn(lowering.system, log_group)
    statements: list[dict[str, Any]] = [
        {"Sid": "UseKeys", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": keys},
        {"Sid": "WriteLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
         "Resource": [group_arn, f"{group_arn}:log-stream:*"]},
    ]  # fmt: skip
    return statements + network_statements(lowering, model.image)


def execution_policy(lowering: Lowering, model: ir.Model) -> dict[str, Any]:
    reads = read_locations(lowering.system, model)
    statements = s3_read_statements(lowering, reads) + _capture_statement(lowering, model)
    statements += _other_statements(lowering, model)
    return {"Version": "2012-10-17", "Statement": statements}


def lower_role(lowering: Lowering, model: ir.Model, parent: str) -> str:
    """The role and its inline policy; records the role as a user of its keys."""
    origin = lowering.origin(("models", model.name))
    role = lowering.add(
        ROLE_TYPE,
        names.logical(model.name, "execution-role"),
        {
            "assumeRolePolicy": json_document(trust_policy(lowering)),
            "description": f"SageMaker execution role of model {model.name}",
            "tags": lowering.tags(**{"mlplane.dev/model": model.name}),
        },
        origin,
        parent,
    )
    policy = {
        "name": POLICY_NAME,
        "role": ref(role, "id"),
        "policy": json_document(execution_policy(lowering, model)),
    }
    lowering.add(
        ROLE_POLICY_TYPE,
        names.logical(role, "policy"),
        policy,
        lowering.origin(("models", model.name, "inputs")),
        parent,
    )
    for tier in key_tiers(lowering, model):
        lowering.key_users.setdefault(tier, []).append(role)
    return role


def lower_rollback_policy(
    lowering: Lowering, model: ir.Model, alarm_names: tuple[str, ...], parent: str
) -> str | None:
    """``cloudwatch:DescribeAlarms`` on the model's rollback alarms for its execution role:
    SageMaker's deployment guardrails read the alarms of ``autoRollbackConfiguration`` as the
    execution role, and without the permission cannot watch them. Alarm names are static, so
    the statement names exactly their ARNs. A second inline policy, because the alarms are
    lowered after the role."""
    if not alarm_names:
        return None
    env = aws_of(lowering.environment)
    region, account = env.aws_region or "", env.aws_account_id or ""
    arns = sorted(alarm_arn(region, account, name) for name in alarm_names)
    statement = {"Sid": "ReadRollbackAlarms", "Effect": "Allow",
                 "Action": "cloudwatch:DescribeAlarms", "Resource": arns}  # fmt: skip
    role = names.logical(model.name, "execution-role")
    inputs = {
        "name": ROLLBACK_POLICY_NAME,
        "role": ref(role, "id"),
        "policy": json_document({"Version": "2012-10-17", "Statement": [statement]}),
    }
    origin = lowering.origin(("models", model.name, "serving", "rollout"))
    return lowering.add(
        ROLE_POLICY_TYPE, names.logical(role, "rollback-alarms"), inputs, origin, parent
    )
