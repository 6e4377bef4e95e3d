"""Scheduled training on SageMaker: an EventBridge Scheduler schedule starts a SageMaker pipeline
whose one step is the model's training job.

A schedule could call CreateTrainingJob itself, but its payload is fixed and a training job's
name must be new on every run; a pipeline execution names its jobs (``pipelines-*``) itself.

- The training role (trusted by ``sagemaker.amazonaws.com`` of this account): the pipeline runs
  as it and passes it to the job. It reads the model's ``s3://`` inputs, writes the output
  prefix, uses the key of the model's tier and of its managed inputs, writes the training logs
  and metrics, manages the job's VPC interfaces, pulls the image from ECR, and creates only
  network-isolated, traffic-encrypted jobs named by a pipeline.
- The pipeline: one Training step in the environment's VPC with network isolation and encrypted
  inter-container traffic; output and volume encrypted with the model's tier key (no volume key
  on instance types with local NVMe storage); stopped after the spec's timeout.
- The schedule role (trusted by ``scheduler.amazonaws.com`` of this account) may only start
  executions of that pipeline.
- The schedule: the spec's cron in EventBridge's six-field form, in UTC like the Kubernetes
  CronJob, no flexible window, a run not started within an hour dropped (the CronJob's
  ``startingDeadlineSeconds``). It carries no payload, so there is nothing for a customer key
  to encrypt; its name and expression are encrypted with an AWS-owned key either way.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.graph import ref
from mlplane.schema import formats
from mlplane.targets.aws import codes, names
from mlplane.targets.aws.context import CLASSIFICATION_RANK, Lowering, model_tier
from mlplane.targets.aws.roles import network_statements, s3_read_statements, trust_policy
from mlplane.targets.aws.scheduled import (
    Job,
    add_pipeline,
    add_role,
    add_role_policy,
    add_schedule,
)
from mlplane.targets.aws.serving import tier_volume_key
from mlplane.targets.aws.settings import aws_of

PIPELINE_DEFINITION_VERSION = "2020-12-01"
STEP_NAME = "Train"
VOLUME_SIZE_GB = 50
"""The training instance's EBS volume: room for the image's scratch data and the checkpoint."""
MAX_RUNTIME_SECONDS = 28 * 24 * 3600
"""SageMaker's upper bound on a training job's MaxRuntimeInSeconds (28 days)."""
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
FULL_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
JOB = Job(block="training", role_prefix="", activity="training", start_sid="StartTraining")


# --- the schedule expression ----------------------------------------------------------------------


def _ranges(values: frozenset[int], label: tuple[str, ...] | None = None) -> str:
    """``values`` as a comma list with runs of three or more written ``a-b``."""
    ordered = sorted(values)
    text = (lambda v: label[v]) if label else str
    parts: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - start >= 2:
            parts.append(f"{text(start)}-{text(previous)}")
        else:
            parts.extend(text(v) for v in range(start, previous + 1))
        if value is not None:
            start = previous = value
    return ",".join(parts)


def eventbridge_cron(schedule: str) -> str | None:
    """The EventBridge Scheduler form of a valid five-field ``schedule``, or None when it cannot
    be written there: cron runs on a day matching *either* a restricted day of month or a
    restricted day of week, and EventBridge takes only one of the two (the other is ``?``)."""
    fields = formats.cron_fields(schedule)
    values = [formats.cron_field_values(text, index) for index, text in enumerate(fields)]
    full = [
        set(v) == set(range(low, high + 1))
        for v, (low, high) in zip(values, FULL_RANGES, strict=True)
    ]
    if not full[2] and not full[4]:
        return None
    written = ["*" if full[i] else _ranges(values[i]) for i in range(4)]
    if full[4]:
        day_of_week = "?"
    else:
        written[2] = "?"
        day_of_week = _ranges(values[4], DAYS)
    return f"cron({' '.join(written)} {day_of_week} *)"


# --- checks ---------------------------------------------------------------------------------------


def output_tier(lowering: Lowering, model: ir.Model) -> str | None:
    """The tier of the managed bucket the training output goes to, if it goes to one."""
    training = model.training
    if training is None or training.output is None or not training.output.startswith("s3://"):
        return None
    bucket, _ = names.s3_location(training.output)
    for source in lowering.system.data_sources.values():
        if source.managed and names.s3_location(source.uri)[0] == bucket:
            return source.classification
    return None


def check_training(lowering: Lowering, model: ir.Model) -> None:
    training = model.training
    if training is None:
        return
    path = ("models", model.name, "training")
    diagnostics = lowering.diagnostics
    where = lowering.location
    if training.engine != "job":
        diagnostics.error(
            codes.TRAINING_ENGINE,
            f"model {model.name!r} trains on Kubeflow Pipelines (training.engine: "
            f"{training.engine}), but the aws target trains with a SageMaker pipeline",
            where((*path, "engine")),
            (*path, "engine"),
            "set training.engine: job in this environment's overrides (SageMaker runs it)",
        )
    if training.instance_type is None:
        diagnostics.error(
            codes.INSTANCE_TYPE_REQUIRED,
            f"model {model.name!r} is trained on SageMaker but its training names no instance type",
            where(path),
            path,
            "add training.instanceType, such as ml.m5.2xlarge or ml.g5.12xlarge",
        )
    _check_output(lowering, model, training)
    if training.timeout_seconds > MAX_RUNTIME_SECONDS:
        diagnostics.error(
            codes.TRAINING_LIMIT,
            f"the training of model {model.name!r} may run {int(training.timeout_seconds)} s, "
            f"but SageMaker stops a training job after at most {MAX_RUNTIME_SECONDS} s (28 days)",
            where((*path, "timeout")),
            (*path, "timeout"),
        )
    if eventbridge_cron(training.schedule) is None:
        diagnostics.error(
            codes.TRAINING_SCHEDULE,
            f"schedule {training.schedule!r} of model {model.name!r} restricts both the day of "
            "month and the day of week (cron runs on either); EventBridge Scheduler takes one",
            where((*path, "schedule")),
            (*path, "schedule"),
            "restrict only one of the two, e.g. '0 3 * * 0' (Sundays) or '0 3 1 * *' (the 1st)",
        )
    name = names.training(lowering.system, model.name)
    if len(name) > names.TRAINING_NAME_LIMIT:
        diagnostics.error(
            codes.NAME_TOO_LONG,
            f"the training schedule name {name!r} of model {model.name!r} has {len(name)} "
            f"characters; EventBridge Scheduler allows {names.TRAINING_NAME_LIMIT}",
            where(path),
            path,
            "shorten the model, system or environment name",
        )


def _check_output(lowering: Lowering, model: ir.Model, training: ir.Training) -> None:
    path = ("models", model.name, "training", "output")
    if training.output is None or not training.output.startswith("s3://"):
        written = "names no output" if training.output is None else "writes outside S3"
        lowering.diagnostics.error(
            codes.TRAINING_OUTPUT,
            f"the training of model {model.name!r} {written}; SageMaker uploads a training "
            "job's model artifacts to an s3:// prefix",
            lowering.location(path if training.output else path[:-1]),
            path,
            "add training.output: s3://<bucket>/<prefix>/",
        )
        return
    tier, needed = output_tier(lowering, model), model_tier(lowering.system, model)
    if tier is not None and CLASSIFICATION_RANK[tier] < CLASSIFICATION_RANK[needed]:
        lowering.diagnostics.error(
            codes.TRAINING_OUTPUT,
            f"the training of model {model.name!r} learns from {needed} data, but its output "
            f"goes to a managed bucket classified {tier}",
            lowering.location(path),
            path,
            f"write the output to a bucket classified {needed} or higher",
        )


# --- lowering -------------------------------------------------------------------------------------


def _channels(lowering: Lowering, model: ir.Model) -> list[dict[str, Any]]:
    """One ``File`` channel per ``s3://`` input, named after its data source (mounted at
    ``/opt/ml/input/data/<name>``); other inputs the training image reads itself."""
    sources = lowering.system.data_sources
    channels = []
    for name in model.inputs:
        if sources[name].uri.startswith("s3://"):
            s3 = {"S3DataType": "S3Prefix", "S3Uri": sources[name].uri,
                  "S3DataDistributionType": "FullyReplicated"}  # fmt: skip
            channels.append({"ChannelName": name, "DataSource": {"S3DataSource": s3}})
    return channels


def training_volume_key(
    lowering: Lowering, model: ir.Model, instance_type: str
) -> dict[str, str] | None:
    """The tier key for the training instances' volumes (None, with a note, on NVMe ones)."""
    path = ("models", model.name, "training", "instanceType")
    return tier_volume_key(lowering, model, instance_type, path, "training volume")


def training_arguments(lowering: Lowering, model: ir.Model, role: str) -> dict[str, Any]:
    """The CreateTrainingJob request of the pipeline's step (SageMaker's own field names)."""
    training = model.training
    assert training is not None and training.instance_type is not None
    key = ref(names.key(model_tier(lowering.system, model)), "arn")
    algorithm: dict[str, Any] = {"TrainingImage": training.image.text, "TrainingInputMode": "File"}
    if names.ecr_repository_arn(training.image) is None:
        algorithm["TrainingImageConfig"] = {"TrainingRepositoryAccessMode": "Vpc"}
    resources: dict[str, Any] = {
        "InstanceCount": 1,
        "InstanceType": training.instance_type,
        "VolumeSizeInGB": VOLUME_SIZE_GB,
    }
    volume_key = training_volume_key(lowering, model, training.instance_type)
    if volume_key is not None:
        resources["VolumeKmsKeyId"] = volume_key
    arguments: dict[str, Any] = {
        "AlgorithmSpecification": algorithm,
        "RoleArn": ref(role, "arn"),
        "OutputDataConfig": {"S3OutputPath": training.output, "KmsKeyId": key},
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": int(training.timeout_seconds)},
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
    }
    channels = _channels(lowering, model)
    if channels:
        arguments["InputDataConfig"] = channels
    vpc = aws_of(lowering.environment).aws_vpc
    if vpc is not None:
        arguments["VpcConfig"] = {
            "Subnets": list(vpc.subnet_ids),
            "SecurityGroupIds": list(vpc.security_group_ids),
        }
    return arguments


def pipeline_definition(lowering: Lowering, model: ir.Model, role: str) -> dict[str, Any]:
    step = {
        "Name": STEP_NAME,
        "Type": "Training",
        "Arguments": training_arguments(lowering, model, role),
    }
    return {"Version": PIPELINE_DEFINITION_VERSION, "Metadata": {}, "Parameters": [],
            "Steps": [step]}  # fmt: skip


def training_key_tiers(lowering: Lowering, model: ir.Model) -> list[str]:
    sources = lowering.system.data_sources
    tiers = {sources[name].classification for name in model.inputs if sources[name].managed}
    tiers.add(model_tier(lowering.system, model))
    return sorted(tiers)


def _job_statements(lowering: Lowering, role: str) -> list[dict[str, Any]]:
    env, system = lowering.environment, lowering.system
    prefix = f"arn:{names.partition(aws_of(env).aws_region)}:sagemaker:{aws_of(env).aws_region}:{aws_of(env).aws_account_id}"
    jobs = f"{prefix}:training-job/pipelines-*"
    guarded = {"Bool": {"sagemaker:NetworkIsolation": "true",
                        "sagemaker:InterContainerTrafficEncryption": "true"}}  # fmt: skip
    passed = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    group = names.log_group_arn(system, names.TRAINING_LOG_GROUP)
    namespace = {"StringEquals": {"cloudwatch:namespace": names.TRAINING_LOG_GROUP}}
    return [
        {"Sid": "CreateIsolatedJobs", "Effect": "Allow",
         "Action": ["sagemaker:AddTags", "sagemaker:CreateTrainingJob"], "Resource": jobs,
         "Condition": guarded},
        {"Sid": "WatchJobs", "Effect": "Allow",
         "Action": ["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
         "Resource": jobs},
        {"Sid": "PassOwnRole", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": ref(role, "arn"), "Condition": passed},
        {"Sid": "WriteLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
                    "logs:PutLogEvents"],
         "Resource": [group, f"{group}:log-stream:*"]},
        {"Sid": "PutMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
         "Resource": "*", "Condition": namespace},
    ]  # fmt: skip


def training_policy(lowering: Lowering, model: ir.Model, role: str) -> dict[str, Any]:
    training = model.training
    assert training is not None and training.output is not None
    sources = lowering.system.data_sources
    reads = sorted({sources[n].uri for n in model.inputs if sources[n].uri.startswith("s3://")})
    bucket, prefix = names.s3_location(training.output)
    output = f"{names.bucket_arn(lowering.system, bucket)}/{prefix}*"
    keys = [ref(names.key(tier), "arn") for tier in training_key_tiers(lowering, model)]
    key_actions = ["kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    statements = s3_read_statements(lowering, reads)
    statements += [
        {"Sid": "WriteOutput", "Effect": "Allow", "Action": "s3:PutObject", "Resource": output},
        {"Sid": "UseKeys", "Effect": "Allow", "Action": key_actions, "Resource": keys},
    ]
    statements += _job_statements(lowering, role)
    statements += network_statements(lowering, training.image)
    return {"Version": "2012-10-17", "Statement": statements}


def lowered(model: ir.Model) -> bool:
    """Whether :func:`lower_training` builds the model's training (its refusals are reported by
    the checks): an instance type, an output and a schedule EventBridge can run."""
    training = model.training
    return (
        training is not None
        and training.instance_type is not None
        and training.output is not None
        and eventbridge_cron(training.schedule) is not None
    )


def lower_training(lowering: Lowering, model: ir.Model, parent: str) -> None:
    """The training role, pipeline, schedule role and schedule of ``model``, if it trains."""
    training = model.training
    if training is None or not lowered(model):
        return
    schedule = eventbridge_cron(training.schedule)
    assert schedule is not None
    name = names.training(lowering.system, model.name)
    role = add_role(lowering, model, JOB, "training", trust_policy(lowering), parent)
    policy = training_policy(lowering, model, role)
    role_policy = add_role_policy(lowering, model, JOB, role, "mlplane-training", policy, parent)
    for tier in training_key_tiers(lowering, model):
        lowering.key_users.setdefault(tier, []).append(role)
    definition = pipeline_definition(lowering, model, role)
    pipeline = add_pipeline(lowering, model, JOB, name, role, definition, parent, (role_policy,))
    add_schedule(lowering, model, JOB, pipeline, name, training.schedule, schedule, parent)
