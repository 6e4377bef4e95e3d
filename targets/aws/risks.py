"""The plan's risk flags that only the AWS target raises (``Target.risk_codes`` and
``Target.model_risks``, see ``compiler/plan/risk.py``)."""

from __future__ import annotations

from mlplane.compiler.core import ir
from mlplane.compiler.core.plugins import ModelRisk, RiskCode

SCALED_INSTANCE_TYPE = "autoscaled-instance-type-changed"
REGION_CHANGED = "aws-region-changed"
DEPLOY_ROLE_CHANGED = "deploy-role-changed"
"""Also raised by the plan for the role CI assumes (``ci.environments.<env>.aws``), an AWS role
too."""

RISK_CODES: tuple[RiskCode, ...] = (
    RiskCode(
        SCALED_INSTANCE_TYPE,
        "the instance type of an autoscaled SageMaker endpoint changes (UpdateEndpoint refuses "
        "it while autoscaling is registered)",
        "SageMaker's UpdateEndpoint fails on an instance type change of a variant registered "
        "with Application Auto Scaling, and Pulumi updates the endpoint before it touches the "
        "scaling target, so the apply stops with the endpoint on its old instances; if the "
        "deployed endpoint autoscales, first apply with serving.autoscaling removed (Pulumi "
        "deregisters the scalable target), then the new instance type with autoscaling back",
    ),
    RiskCode(
        REGION_CHANGED,
        "an AWS environment moves to another region (pulumi-aws does not move resources "
        "between regions)",
        "since pulumi-aws 6 a provider's region change replaces nothing: the apply would look "
        "for every resource in the new region and fail; destroy the environment in the old "
        "region first (retained and protected buckets stay there, with their data), then apply "
        "into the new one, or deploy the new region as a new environment",
    ),
    RiskCode(
        DEPLOY_ROLE_CHANGED,
        "the AWS role that deploys an environment (Pulumi's or CI's) changes",
        "every later apply, drift check and destroy runs with the new role's permissions, "
        "possibly in another account: check who may assume it and what it may do",
    ),
)


def _scaled_instance_risk(old: ir.Model, new: ir.Model) -> str | None:
    """An instance type change of an autoscaled variant."""
    scaled = (
        old.serving.autoscaling_metric is not None or new.serving.autoscaling_metric is not None
    )
    return SCALED_INSTANCE_TYPE if scaled else None


MODEL_RISKS: tuple[ModelRisk, ...] = (
    ModelRisk(("serving", "instanceType"), _scaled_instance_risk),
)
