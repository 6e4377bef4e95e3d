"""Diagnostic codes of the CloudWatch alarms of the AWS target (see ``compiler.core.codes``)."""

from __future__ import annotations

from mlplane.compiler.core.diagnostics import Severity, register_code

SLA_NOT_LOWERED = register_code(
    "aws-sla-not-lowered",
    "an SLA has no CloudWatch equivalent on the aws target and raises no alarm there",
    Severity.WARNING,
)
RECEIVER_NOT_LOWERED = register_code(
    "aws-receiver-not-lowered",
    "an alert receiver cannot be delivered to from the aws target's SNS topics",
)
