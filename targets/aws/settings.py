"""The AWS settings of an environment (``environments.<env>.aws``), as the target reads them.

The system model carries them opaquely (``ir.Environment.target_settings``); this module builds
them from the spec, reads them back for the lowering, and describes them for the plan summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplane.compiler.core import ir
from mlplane.compiler.core.plugins import CloudAccount, SettingField, SettingResidency
from mlplane.schema import formats
from mlplane.schema import models as spec
from mlplane.targets.aws.risks import DEPLOY_ROLE_CHANGED, REGION_CHANGED


@dataclass(frozen=True, slots=True)
class AwsVpc:
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AwsSettings(ir.TargetSettings):
    """Every field is None in an environment of another target."""

    aws_region: str | None = None
    aws_account_id: str | None = None
    aws_vpc: AwsVpc | None = None
    aws_deploy_role_arn: str | None = None


UNSET = AwsSettings()


def settings(environment: spec.Environment) -> AwsSettings:
    """The settings of ``environment`` (:data:`UNSET` without an ``aws`` block)."""
    aws = environment.aws
    if aws is None:
        return UNSET
    vpc = AwsVpc(tuple(aws.vpc.subnet_ids), tuple(aws.vpc.security_group_ids)) if aws.vpc else None
    return AwsSettings(aws.region, aws.account_id, vpc, aws.deploy_role_arn)


def residency(environment: spec.Environment) -> SettingResidency | None:
    """The residency of the environment's region (None for a region the table does not place)."""
    region = environment.aws.region if environment.aws else None
    zone = formats.AWS_REGION_RESIDENCY.get(region) if region else None
    if region is None or zone is None:
        return None
    return SettingResidency(zone, ("aws", "region"), "AWS region", "region", region)


def cloud_account(environment: spec.Environment) -> CloudAccount | None:
    """The environment's region and account (None without an ``aws`` block): the role CI
    assumes requests credentials in this region unless it names one, and is expected in this
    account."""
    aws = environment.aws
    return CloudAccount(aws.region, aws.account_id) if aws is not None else None


def aws_of(environment: ir.Environment | ir.TargetSettings) -> AwsSettings:
    """The AWS settings of an environment (or of its settings); :data:`UNSET` for another
    target's."""
    found = environment.target_settings if isinstance(environment, ir.Environment) else environment
    return found if isinstance(found, AwsSettings) else UNSET


def _listed(items: tuple[str, ...]) -> str:
    return ", ".join(items) if items else "none"


def _region_risk(old: ir.TargetSettings, new: ir.TargetSettings) -> str | None:
    before, after = aws_of(old).aws_region, aws_of(new).aws_region
    moved = before is not None and after not in (None, before)
    return REGION_CHANGED if moved else None


def _subnets(found: ir.TargetSettings) -> str:
    vpc = aws_of(found).aws_vpc
    return _listed(vpc.subnet_ids if vpc else ())


def _security_groups(found: ir.TargetSettings) -> str:
    vpc = aws_of(found).aws_vpc
    return _listed(vpc.security_group_ids if vpc else ())


SETTING_FIELDS: tuple[SettingField, ...] = (
    SettingField(
        "AWS region", ("aws", "region"), lambda s: aws_of(s).aws_region or "none", _region_risk
    ),
    SettingField("AWS account", ("aws", "accountId"), lambda s: aws_of(s).aws_account_id or "none"),
    SettingField("VPC subnets", ("aws", "vpc", "subnetIds"), _subnets),
    SettingField("VPC security groups", ("aws", "vpc", "securityGroupIds"), _security_groups),
    SettingField(
        "deploy role",
        ("aws", "deployRoleArn"),
        lambda s: aws_of(s).aws_deploy_role_arn or "none",
        lambda old, new: DEPLOY_ROLE_CHANGED,  # only asked for a changed line
    ),
)
"""The plan summary's lines for these settings, in order."""
