"""The environment's explicit ``aws.Provider``: region, account guard and default tags.

Every resource of the graph names this provider, so the program never falls back to ambient
configuration (``AWS_REGION``, a default profile) and cannot deploy into another account:
``allowedAccountIds`` makes the provider refuse credentials of any other account.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core.graph import Resource, ResourceOptions
from mlplane.targets.aws import names
from mlplane.targets.aws.context import Lowering
from mlplane.targets.aws.settings import aws_of

PROVIDER_TYPE = "pulumi:providers:aws"
MANAGED_BY = "mlplane"


def default_tags(lowering: Lowering) -> dict[str, str]:
    """The user's labels, then the tags mlplane owns (which win)."""
    system = lowering.system
    return dict(
        sorted(
            {
                **system.labels,
                "mlplane.dev/managed-by": MANAGED_BY,
                "mlplane.dev/system": system.name,
                "mlplane.dev/environment": system.environment.name,
                "mlplane.dev/owner": system.owner,
            }.items()
        )
    )


def provider_inputs(lowering: Lowering) -> dict[str, Any]:
    env = lowering.environment
    inputs: dict[str, Any] = {
        "region": aws_of(env).aws_region,
        "allowedAccountIds": [aws_of(env).aws_account_id],
        "defaultTags": {"tags": default_tags(lowering)},
    }
    if aws_of(env).aws_deploy_role_arn is not None:
        session = f"mlplane-{lowering.system.name}-{env.name}"
        inputs["assumeRoles"] = [
            {"roleArn": aws_of(env).aws_deploy_role_arn, "sessionName": session}
        ]
    return inputs


def lower_provider(lowering: Lowering, parent: str) -> str:
    """Add the provider (itself created without a provider option)."""
    name = lowering.provider
    path = ("environments", lowering.environment.name, "aws")
    lowering.resources.append(
        Resource(
            type=PROVIDER_TYPE,
            name=name,
            inputs=provider_inputs(lowering),
            origin=lowering.origin(path),
            parent=parent,
            options=ResourceOptions(),
        )
    )
    return names.provider(lowering.system)
