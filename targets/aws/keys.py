"""Customer-managed KMS keys: one per classification tier in use, and one for alerts.

Each key rotates yearly and has an explicit key policy: the account root administers it (so IAM
policies in the account can be granted use, and the key can never become unmanageable), the
execution roles that read data of that tier may use it, and CloudWatch Logs may encrypt the
endpoint log groups of models of that tier. The alerts key lets CloudWatch alarms publish to the
KMS-encrypted SNS topics (CloudWatch and SNS use it on the account's behalf).
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core.graph import json_document, ref
from mlplane.targets.aws import names
from mlplane.targets.aws.context import Lowering
from mlplane.targets.aws.settings import aws_of

KEY_TYPE = "aws:kms/key:Key"
ALIAS_TYPE = "aws:kms/alias:Alias"
ALERTS = "alerts"
DELETION_WINDOW_DAYS = 30
USE_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*"]
LOGS_ACTIONS = ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*",
                "kms:ReEncrypt*"]  # fmt: skip


def _admin(lowering: Lowering) -> dict[str, Any]:
    return {
        "Sid": "AccountAdministration",
        "Effect": "Allow",
        "Principal": {"AWS": names.account_root(lowering.system)},
        "Action": "kms:*",
        "Resource": "*",
    }


def _roles(users: list[str]) -> dict[str, Any]:
    return {
        "Sid": "ExecutionRoles",
        "Effect": "Allow",
        "Principal": {"AWS": [ref(role, "arn") for role in sorted(set(users))]},
        "Action": USE_ACTIONS,
        "Resource": "*",
    }


def _logs(lowering: Lowering) -> dict[str, Any]:
    env = lowering.environment
    pattern = names.log_group_arn(lowering.system, "/aws/sagemaker/Endpoints/*")
    return {
        "Sid": "CloudWatchLogs",
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{aws_of(env).aws_region}.amazonaws.com"},
        "Action": LOGS_ACTIONS,
        "Resource": "*",
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": pattern}},
    }


def _services(lowering: Lowering, services: list[str]) -> dict[str, Any]:
    return {
        "Sid": "AlarmNotifications",
        "Effect": "Allow",
        "Principal": {"Service": services},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": aws_of(lowering.environment).aws_account_id}
        },
    }


def tier_policy(lowering: Lowering, tier: str, logs: bool) -> dict[str, Any]:
    statements = [_admin(lowering)]
    users = lowering.key_users.get(tier, [])
    if users:
        statements.append(_roles(users))
    if logs:
        statements.append(_logs(lowering))
    return {"Version": "2012-10-17", "Statement": statements}


def alerts_policy(lowering: Lowering) -> dict[str, Any]:
    services = ["cloudwatch.amazonaws.com", "sns.amazonaws.com"]
    return {"Version": "2012-10-17", "Statement": [_admin(lowering), _services(lowering, services)]}


def add_key(
    lowering: Lowering,
    tier: str,
    policy: dict[str, Any],
    description: str,
    parent: str,
    tags: dict[str, str],
) -> str:
    """The key and its alias ``alias/<system>-<env>-<tier>``."""
    origin = lowering.origin(("security", "encryption"))
    key = lowering.add(
        KEY_TYPE,
        names.key(tier),
        {
            "description": description,
            "enableKeyRotation": True,
            "deletionWindowInDays": DELETION_WINDOW_DAYS,
            "policy": json_document(policy),
            "tags": tags,
        },
        origin,
        parent,
    )
    alias = {"name": names.key_alias(lowering.system, tier), "targetKeyId": ref(key, "keyId")}
    lowering.add(ALIAS_TYPE, names.logical(key, "alias"), alias, origin, parent)
    return key


def lower_tier_keys(lowering: Lowering, tiers: dict[str, bool], parent: str) -> None:
    """One key per tier in ``tiers`` (tier -> whether log groups of that tier use it)."""
    system = lowering.system
    for tier, logs in sorted(tiers.items()):
        description = f"{system.name} {system.environment.name}: data classified {tier}"
        tags = lowering.tags(**{"mlplane.dev/classification": tier})
        add_key(lowering, tier, tier_policy(lowering, tier, logs), description, parent, tags)


def lower_alerts_key(lowering: Lowering, parent: str) -> str:
    system = lowering.system
    description = f"{system.name} {system.environment.name}: alarm notifications"
    tags = lowering.tags(**{"mlplane.dev/purpose": "alarm-notifications"})
    return add_key(lowering, ALERTS, alerts_policy(lowering), description, parent, tags)
