"""The built-in policy pack: one module per domain (data, batch scoring, models, security,
SLAs, and the AWS resource graph).

Installed as the ``builtin`` entry point of the ``mlplane.policies`` group; the compiler finds it
there (``compiler.core.plugins.policy_packs``), never by importing this package by name. Each rule is
registered in ``common.PACK`` with its id, severity, rationale, remediation and the scanner checks
it mirrors; ``docs/policies.md`` is generated from them (``python -m mlplane.policies.docs``).
"""

from __future__ import annotations

from mlplane.policies import aws, aws_s3, batch, data, models, security, slas
from mlplane.policies.common import PACK

__all__ = ["PACK", "aws", "aws_s3", "batch", "data", "models", "security", "slas"]
