"""Scheduled batch scoring on SageMaker (``models.<name>.batch``): an EventBridge Scheduler
schedule starts a SageMaker pipeline whose steps are Batch Transforms of the model.

It follows scheduled training (``training.py``): a transform job's name must be new on every
run, and a pipeline execution names its jobs (``pipelines-*``) itself.

- The batch role (trusted by ``sagemaker.amazonaws.com`` of this account) is both the
  pipeline's role, which creates the transform jobs, and the execution role of the batch's own
  SageMaker model, with which SageMaker reads the inputs and writes the predictions: it reads
  the batch's inputs and the model's artifact, writes only the output prefix, uses the key of
  the batch's tier (the highest classification of its output, its inputs and the model's data)
  and of its managed inputs, writes the transform logs, manages the VPC interfaces and pulls
  the image from ECR. The serving role gains nothing: the endpoint cannot write predictions.
- The batch model: the scoring image (the model's unless the batch names one) and artifact,
  network-isolated, in the environment's VPC.
- The pipeline: one Transform step per input, writing to ``<output>/<input name>/`` encrypted
  with the tier key, on ``parallelism`` instances (whose volumes get the tier key unless the
  instance type has local NVMe storage), records split by line (``MultiRecord`` batches) or
  one object per record; a step failed by SageMaker (internal or capacity error) is retried
  ``retries`` times.
- The schedule role (trusted by ``scheduler.amazonaws.com``) may only start that pipeline, and
  the schedule runs it on the spec's cron in UTC, like the training schedule.

A Batch Transform has no deadline and runs the model's server, not a command: a batch
``timeout`` written for this environment is reported (``aws-batch-timeout``), a ``command`` is
refused (``aws-batch-command``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, Severity, SpecPath, format_path
from mlplane.compiler.core.graph import ref
from mlplane.schema.formats import has_instance_storage
from mlplane.targets.aws import codes, names, serving
from mlplane.targets.aws.context import Lowering, model_tier, tier_of
from mlplane.targets.aws.roles import network_statements, s3_read_statements, trust_policy
from mlplane.targets.aws.scheduled import (
    Job,
    add_pipeline,
    add_role,
    add_role_policy,
    add_schedule,
)
from mlplane.targets.aws.settings import aws_of
from mlplane.targets.aws.training import PIPELINE_DEFINITION_VERSION, eventbridge_cron

NAME_LIMIT = names.TRAINING_NAME_LIMIT
"""EventBridge Scheduler schedule names: 64 characters (the pipeline takes the same name)."""
LOG_GROUP = "/aws/sagemaker/TransformJobs"
"""Where SageMaker writes every transform job's logs (one group per account and region)."""
RETRIED_FAILURES = ("SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR")
"""Transform failures worth another attempt; a model error fails the run at once."""
RETRY_INTERVAL_SECONDS = 60
RETRY_BACKOFF = 2.0
JOB = Job(block="batch", role_prefix="batch-", activity="batch scoring", start_sid="StartBatch")


def pipeline_name(system: ir.System, model: str) -> str:
    return f"{names.endpoint(system, model)}-batch"


def output_location(lowering: Lowering, batch: ir.Batch) -> tuple[str, str] | None:
    """(bucket, key prefix ending in '/') of the batch's one S3 output, if it has one."""
    if len(batch.outputs) != 1:
        return None
    uri = lowering.system.data_sources[batch.outputs[0]].uri
    if not uri.startswith("s3://"):
        return None
    bucket, prefix = names.s3_location(uri)
    return bucket, prefix if not prefix or prefix.endswith("/") else f"{prefix}/"


def batch_tier(system: ir.System, model: ir.Model, batch: ir.Batch) -> str:
    """The highest classification the run handles: its output's, its inputs', the model's."""
    sources = system.data_sources
    found = [sources[n].classification for n in (*batch.inputs, *batch.outputs) if n in sources]
    return tier_of([*found, model_tier(system, model)])


# --- checks ---------------------------------------------------------------------------------------


def check_batch(lowering: Lowering, model: ir.Model) -> None:
    batch = model.batch
    if batch is None:
        return
    path: SpecPath = ("models", model.name, "batch")
    _check_data(lowering, model, batch, path)
    diagnostics, where = lowering.diagnostics, lowering.location
    if batch.instance_type is None:
        diagnostics.error(
            codes.INSTANCE_TYPE_REQUIRED,
            f"the batch scoring of model {model.name!r} runs on SageMaker but names no "
            "instance type",
            where(path),
            path,
            "add batch.instanceType, such as ml.m5.xlarge",
        )
    if batch.command:
        diagnostics.error(
            codes.BATCH_COMMAND,
            f"the batch scoring of model {model.name!r} names a command, but a SageMaker Batch "
            "Transform runs no command: it sends the records to the model's server",
            where((*path, "command")),
            (*path, "command"),
            "set batch.command: null in this environment's overrides",
        )
    if (*path, "timeout") in lowering.system.origins:
        diagnostics.warning(
            codes.BATCH_TIMEOUT,
            f"the batch scoring of model {model.name!r} has a timeout, but a SageMaker Batch "
            "Transform has no deadline: a run lasts until every record is scored",
            where((*path, "timeout")),
            (*path, "timeout"),
            "watch the run's duration with an alarm, or remove timeout in this environment",
        )
    if eventbridge_cron(batch.schedule) is None:
        diagnostics.error(
            codes.BATCH_SCHEDULE,
            f"batch schedule {batch.schedule!r} of model {model.name!r} restricts both the day "
            "of month and the day of week (cron runs on either); EventBridge Scheduler takes one",
            where((*path, "schedule")),
            (*path, "schedule"),
            "restrict only one of the two, e.g. '0 2 * * 1-5' (weekdays) or '0 2 1 * *' (the 1st)",
        )
    _check_names(lowering, model, batch, path)


def _check_data(lowering: Lowering, model: ir.Model, batch: ir.Batch, path: SpecPath) -> None:
    sources = lowering.system.data_sources
    for index, name in enumerate(batch.inputs):
        source = sources[name]
        if source.type != "objectStore" or not source.uri.startswith("s3://"):
            lowering.diagnostics.error(
                codes.BATCH_DATA,
                f"batch input {name!r} of model {model.name!r} is a {source.type} at "
                f"{source.uri!r}; a SageMaker Batch Transform reads objects under an s3:// prefix",
                lowering.location((*path, "inputs", index)),
                (*path, "inputs", index),
                "export the records to an objectStore data source in S3 and score that",
            )
    if output_location(lowering, batch) is None or sources[batch.outputs[0]].type != "objectStore":
        lowering.diagnostics.error(
            codes.BATCH_DATA,
            f"the batch scoring of model {model.name!r} writes to "
            f"{', '.join(repr(n) for n in batch.outputs)}; a SageMaker Batch Transform writes to "
            "exactly one objectStore data source in S3",
            lowering.location((*path, "outputs")),
            (*path, "outputs"),
            "name one objectStore data source with an s3:// URI in batch.outputs",
        )


def _check_names(lowering: Lowering, model: ir.Model, batch: ir.Batch, path: SpecPath) -> None:
    name = pipeline_name(lowering.system, model.name)
    if len(name) > NAME_LIMIT:
        lowering.diagnostics.error(
            codes.NAME_TOO_LONG,
            f"the batch schedule name {name!r} of model {model.name!r} has {len(name)} "
            f"characters; EventBridge Scheduler allows {NAME_LIMIT}",
            lowering.location(path),
            path,
            "shorten the model, system or environment name",
        )
    if batch.image != model.image and names.ecr_repository_arn(batch.image) is None:
        lowering.diagnostics.warning(
            codes.IMAGE_OUTSIDE_ECR,
            f"batch image of model {model.name!r} is not in Amazon ECR: SageMaker pulls it "
            "through the VPC (repositoryAccessMode Vpc), which needs a route to that registry",
            lowering.location((*path, "image")),
            (*path, "image"),
            "mirror the image into ECR in this account and region",
        )


def ready(lowering: Lowering, model: ir.Model) -> bool:
    """Whether the batch can be lowered (its refusals are reported by :func:`check_batch`)."""
    batch = model.batch
    if batch is None or batch.instance_type is None or batch.command:
        return False
    sources = lowering.system.data_sources
    s3_inputs = all(
        sources[n].type == "objectStore" and sources[n].uri.startswith("s3://")
        for n in batch.inputs
    )
    return (
        s3_inputs
        and output_location(lowering, batch) is not None
        and eventbridge_cron(batch.schedule) is not None
    )


# --- the pipeline ---------------------------------------------------------------------------------


def volume_key(lowering: Lowering, model: ir.Model, batch: ir.Batch) -> dict[str, str] | None:
    """The tier key for the batch instances' volumes (None, with a note, on NVMe ones)."""
    assert batch.instance_type is not None
    if not has_instance_storage(batch.instance_type):
        return ref(names.key(batch_tier(lowering.system, model, batch)), "arn")
    path = ("models", model.name, "batch", "instanceType")
    message = (
        f"{batch.instance_type} has local NVMe storage, which SageMaker encrypts in hardware "
        f"and refuses a KMS key for: the batch volumes of model {model.name!r} get no KMS key"
    )
    lowering.diagnostics.add(
        Diagnostic(
            codes.KMS_INSTANCE_STORAGE,
            Severity.INFO,
            message,
            lowering.location(path),
            format_path(path),
        )
    )
    return None


def transform_step(
    lowering: Lowering, model: ir.Model, batch: ir.Batch, source: str, sagemaker_model: str
) -> dict[str, Any]:
    """The Transform step scoring one input (CreateTransformJob's own field names)."""
    assert batch.instance_type is not None
    location = output_location(lowering, batch)
    assert location is not None
    key = ref(names.key(batch_tier(lowering.system, model, batch)), "arn")
    by_line = batch.split == "line"
    s3 = {"S3DataType": "S3Prefix", "S3Uri": lowering.system.data_sources[source].uri}
    resources: dict[str, Any] = {
        "InstanceType": batch.instance_type,
        "InstanceCount": batch.parallelism,
    }
    volume = volume_key(lowering, model, batch)
    if volume is not None:
        resources["VolumeKmsKeyId"] = volume
    step: dict[str, Any] = {
        "Name": f"Score-{source}",
        "Type": "Transform",
        "Arguments": {
            "ModelName": ref(sagemaker_model, "name"),
            "BatchStrategy": "MultiRecord" if by_line else "SingleRecord",
            "TransformInput": {
                "DataSource": {"S3DataSource": s3},
                "ContentType": batch.content_type,
                "SplitType": "Line" if by_line else "None",
            },
            "TransformOutput": {
                "S3OutputPath": f"s3://{location[0]}/{location[1]}{source}/",
                "KmsKeyId": key,
                "AssembleWith": "Line" if by_line else "None",
            },
            "TransformResources": resources,
        },
    }
    if batch.retries:
        step["RetryPolicies"] = [
            {
                "ExceptionType": list(RETRIED_FAILURES),
                "IntervalSeconds": RETRY_INTERVAL_SECONDS,
                "BackoffRate": RETRY_BACKOFF,
                "MaxAttempts": batch.retries,
            }
        ]
    return step


def pipeline_definition(
    lowering: Lowering, model: ir.Model, batch: ir.Batch, sagemaker_model: str
) -> dict[str, Any]:
    steps = [transform_step(lowering, model, batch, s, sagemaker_model) for s in batch.inputs]
    return {"Version": PIPELINE_DEFINITION_VERSION, "Metadata": {}, "Parameters": [],
            "Steps": steps}  # fmt: skip


# --- the role -------------------------------------------------------------------------------------


def key_tiers(lowering: Lowering, model: ir.Model, batch: ir.Batch) -> list[str]:
    sources = lowering.system.data_sources
    tiers = {sources[n].classification for n in batch.inputs if sources[n].managed}
    tiers.add(batch_tier(lowering.system, model, batch))
    return sorted(tiers)


def _job_statements(lowering: Lowering) -> list[dict[str, Any]]:
    env, system = lowering.environment, lowering.system
    region, account = aws_of(env).aws_region, aws_of(env).aws_account_id
    jobs = f"arn:{names.partition(region)}:sagemaker:{region}:{account}:transform-job/pipelines-*"
    group = names.log_group_arn(system, LOG_GROUP)
    return [
        {"Sid": "CreateJobs", "Effect": "Allow",
         "Action": ["sagemaker:AddTags", "sagemaker:CreateTransformJob"], "Resource": jobs},
        {"Sid": "WatchJobs", "Effect": "Allow",
         "Action": ["sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"],
         "Resource": jobs},
        {"Sid": "WriteLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
                    "logs:PutLogEvents"],
         "Resource": [group, f"{group}:log-stream:*"]},
    ]  # fmt: skip


def batch_policy(lowering: Lowering, model: ir.Model, batch: ir.Batch) -> dict[str, Any]:
    sources = lowering.system.data_sources
    reads = [sources[n].uri for n in batch.inputs]
    reads += [model.artifact] if model.artifact else []
    location = output_location(lowering, batch)
    assert location is not None
    output = f"{names.bucket_arn(lowering.system, location[0])}/{location[1]}*"
    keys = [ref(names.key(tier), "arn") for tier in key_tiers(lowering, model, batch)]
    key_actions = ["kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    statements = s3_read_statements(lowering, sorted({u for u in reads if u.startswith("s3://")}))
    statements += [
        {"Sid": "WritePredictions", "Effect": "Allow",
         "Action": ["s3:AbortMultipartUpload", "s3:PutObject"], "Resource": output},
        {"Sid": "UseKeys", "Effect": "Allow", "Action": key_actions, "Resource": keys},
    ]  # fmt: skip
    statements += _job_statements(lowering)
    statements += network_statements(lowering, batch.image)
    return {"Version": "2012-10-17", "Statement": statements}


# --- lowering -------------------------------------------------------------------------------------


def _batch_model(
    lowering: Lowering, model: ir.Model, batch: ir.Batch, role: str, parent: str
) -> str:
    """The batch's own SageMaker model: the scoring image and artifact, run as the batch role."""
    container = serving.model_container(replace(model, image=batch.image))
    inputs: dict[str, Any] = {
        "executionRoleArn": ref(role, "arn"),
        "primaryContainer": container,
        "enableNetworkIsolation": True,
        "tags": lowering.tags(
            **{"mlplane.dev/model": model.name, "mlplane.dev/version": model.version}
        ),
    }
    vpc = aws_of(lowering.environment).aws_vpc
    if vpc is not None:
        inputs["vpcConfig"] = {
            "subnets": list(vpc.subnet_ids),
            "securityGroupIds": list(vpc.security_group_ids),
        }
    origin = lowering.origin(("models", model.name, "batch"))
    needs = (names.logical(role, "policy"),)
    return lowering.add(
        serving.MODEL_TYPE,
        names.logical(model.name, "batch-sagemaker-model"),
        inputs,
        origin,
        parent,
        needs,
        retain_on_delete=True,
    )


def lower_batch(lowering: Lowering, model: ir.Model, parent: str) -> None:
    """The batch role, model, pipeline, schedule role and schedule of ``model``, if it scores
    in batch and :func:`check_batch` found nothing in the way."""
    batch = model.batch
    if batch is None or not ready(lowering, model):
        return
    schedule = eventbridge_cron(batch.schedule)
    assert schedule is not None
    name = pipeline_name(lowering.system, model.name)
    role = add_role(lowering, model, JOB, "job", trust_policy(lowering), parent)
    policy = batch_policy(lowering, model, batch)
    role_policy = add_role_policy(lowering, model, JOB, role, "mlplane-batch", policy, parent)
    for tier in key_tiers(lowering, model, batch):
        lowering.key_users.setdefault(tier, []).append(role)
    scorer = _batch_model(lowering, model, batch, role, parent)
    definition = pipeline_definition(lowering, model, batch, scorer)
    depends_on = (role_policy, scorer)
    pipeline = add_pipeline(lowering, model, JOB, name, role, definition, parent, depends_on)
    add_schedule(lowering, model, JOB, pipeline, name, batch.schedule, schedule, parent)
