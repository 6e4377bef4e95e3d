"""What scheduled training (``training.py``) and scheduled batch scoring (``batch.py``) share:
the roles of the model's job, each with its one inline policy, the job's SageMaker pipeline, and
the EventBridge Scheduler schedule that starts the pipeline on the spec's cron in UTC, as a role
that may only start that pipeline.

The schedule has no flexible window, and a run not started within an hour is dropped (the
Kubernetes CronJob's ``startingDeadlineSeconds``); a failed start is retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.graph import json_document, ref
from mlplane.targets.aws import names
from mlplane.targets.aws.context import Lowering
from mlplane.targets.aws.roles import ROLE_POLICY_TYPE, ROLE_TYPE, trust_policy

PIPELINE_TYPE = "aws:sagemaker/pipeline:Pipeline"
SCHEDULE_TYPE = "aws:scheduler/schedule:Schedule"
MAX_EVENT_AGE_SECONDS = 3600
RETRY_ATTEMPTS = 3
"""Attempts to start the pipeline when the call fails (throttling, a transient error)."""
SCHEDULE_POLICY_NAME = "mlplane-schedule"


@dataclass(frozen=True)
class Job:
    """A kind of scheduled job of a model, as its resources are named and located."""

    block: str
    """The model's spec block (``training``, ``batch``): the origin of the job's roles and
    pipeline, and the logical names ``<model>-<block>-pipeline`` and ``-schedule``."""
    role_prefix: str
    """Before a role's key in its logical name ``<model>-<prefix><key>-role``; its description
    reads the two with spaces."""
    activity: str
    """What the pipeline runs, in its description and the schedule's."""
    start_sid: str
    """The Sid of the schedule role's one statement."""


def add_role(
    lowering: Lowering, model: ir.Model, job: Job, key: str, trust: dict[str, Any], parent: str
) -> str:
    """A role of ``model``'s ``job`` trusted as ``trust`` says; returns its logical name."""
    named = f"{job.role_prefix}{key}"
    return lowering.add(
        ROLE_TYPE,
        names.logical(model.name, f"{named}-role"),
        {
            "assumeRolePolicy": json_document(trust),
            "description": f"{named.replace('-', ' ').capitalize()} role of model {model.name}",
            "tags": lowering.tags(**{"mlplane.dev/model": model.name}),
        },
        lowering.origin(("models", model.name, job.block)),
        parent,
    )


def add_role_policy(
    lowering: Lowering,
    model: ir.Model,
    job: Job,
    role: str,
    name: str,
    policy: dict[str, Any],
    parent: str,
) -> str:
    """``role``'s inline policy ``name``; returns its logical name (``<role>-policy``)."""
    inputs = {"name": name, "role": ref(role, "id"), "policy": json_document(policy)}
    origin = lowering.origin(("models", model.name, job.block))
    return lowering.add(ROLE_POLICY_TYPE, names.logical(role, "policy"), inputs, origin, parent)


def add_pipeline(
    lowering: Lowering,
    model: ir.Model,
    job: Job,
    name: str,
    role: str,
    definition: dict[str, Any],
    parent: str,
    depends_on: tuple[str, ...],
) -> str:
    """The SageMaker pipeline ``name`` running ``definition`` as ``role``; returns its logical
    name."""
    return lowering.add(
        PIPELINE_TYPE,
        names.logical(model.name, f"{job.block}-pipeline"),
        {
            "pipelineName": name,
            "pipelineDisplayName": name,
            "pipelineDescription": f"Scheduled {job.activity} of model {model.name}",
            "roleArn": ref(role, "arn"),
            "pipelineDefinition": json_document(definition),
            "tags": lowering.tags(**{"mlplane.dev/model": model.name}),
        },
        lowering.origin(("models", model.name, job.block)),
        parent,
        depends_on,
    )


def add_schedule(
    lowering: Lowering,
    model: ir.Model,
    job: Job,
    pipeline: str,
    name: str,
    cron: str,
    expression: str,
    parent: str,
) -> None:
    """The schedule ``name`` starting ``pipeline`` at ``expression`` (the spec's ``cron`` in
    EventBridge's form), and its role, which may only start that pipeline."""
    trust = trust_policy(lowering, "scheduler.amazonaws.com")
    starter = add_role(lowering, model, job, "schedule", trust, parent)
    statement = {"Sid": job.start_sid, "Effect": "Allow",
                 "Action": "sagemaker:StartPipelineExecution", "Resource": ref(pipeline, "arn")}  # fmt: skip
    starts = {"Version": "2012-10-17", "Statement": [statement]}
    starter_policy = add_role_policy(
        lowering, model, job, starter, SCHEDULE_POLICY_NAME, starts, parent
    )
    target = {
        "arn": ref(pipeline, "arn"),
        "roleArn": ref(starter, "arn"),
        "retryPolicy": {
            "maximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS,
            "maximumRetryAttempts": RETRY_ATTEMPTS,
        },
    }
    lowering.add(
        SCHEDULE_TYPE,
        names.logical(model.name, f"{job.block}-schedule"),
        {
            "name": name,
            "description": f"Starts the {job.activity} of model {model.name} ({cron} UTC)",
            "scheduleExpression": expression,
            "scheduleExpressionTimezone": "UTC",
            "flexibleTimeWindow": {"mode": "OFF"},
            "state": "ENABLED",
            "target": target,
        },
        lowering.origin(("models", model.name, job.block, "schedule")),
        parent,
        (starter_policy,),
    )
