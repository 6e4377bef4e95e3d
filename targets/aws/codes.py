"""Diagnostic codes of the AWS target, registered once (see ``compiler.core.codes``).

Every code names a spec that validates but cannot be lowered as written to AWS; the message says
which line and why, and README.md in this folder lists each code with its remedy.
"""

from __future__ import annotations

from mlplane.compiler.core.diagnostics import Severity, register_code

VPC_REQUIRED = register_code(
    "aws-vpc-required", "an aws environment serves models but declares no aws.vpc"
)
INSTANCE_TYPE_REQUIRED = register_code(
    "aws-instance-type-required",
    "a model served or trained on aws names no serving.instanceType or training.instanceType",
)
RESIDENCY_MISMATCH = register_code(
    "aws-residency-mismatch",
    "a managed data source would be created in a region outside its residency",
)
MANAGED_URI = register_code("aws-managed-uri", "a managed objectStore on aws is not an s3:// URI")
BUCKET_SHARED = register_code(
    "aws-bucket-shared", "two managed data sources name the same S3 bucket"
)
ISOLATION_SECRETS = register_code(
    "aws-isolation-secrets",
    "a model reads secrets at run time, which SageMaker network isolation forbids",
)
ARTIFACT_URI = register_code(
    "aws-artifact-uri", "a model artifact is not in S3, where SageMaker loads models from"
)
NAME_TOO_LONG = register_code(
    "aws-name-too-long", "a generated AWS resource name exceeds its length limit"
)
CANARY_STEP = register_code(
    "aws-canary-step", "a canary step cannot be expressed by a SageMaker blue/green canary"
)
ROLLOUT_PAUSE = register_code(
    "aws-rollout-pause", "a rollout pause exceeds SageMaker's one-hour wait interval"
)
ROLLBACK_WITHOUT_ALARMS = register_code(
    "aws-rollback-without-alarms",
    "a SageMaker deployment has no alarm to roll back on",
)
REPLICAS_ZERO = register_code(
    "aws-replicas-zero", "a SageMaker endpoint needs at least one instance"
)
AUTOSCALING_METRIC = register_code(
    "aws-autoscaling-metric", "an autoscaling metric SageMaker target tracking cannot follow"
)
DATA_CAPTURE = register_code(
    "aws-data-capture",
    "data capture would copy a model's traffic to a store that may not hold it",
)
TRAINING_OUTPUT = register_code(
    "aws-training-output",
    "a model trained on aws has no s3:// output, or one less classified than its data",
)
TRAINING_SCHEDULE = register_code(
    "aws-training-schedule", "a training schedule EventBridge Scheduler cannot express"
)
TRAINING_ENGINE = register_code(
    "aws-training-engine",
    "training.engine: kubeflow runs on Kubeflow Pipelines, which the aws target does not deploy",
)
TRAINING_LIMIT = register_code(
    "aws-training-limit", "a training timeout beyond SageMaker's 28-day maximum runtime"
)
IMAGE_OUTSIDE_ECR = register_code(
    "aws-image-outside-ecr",
    "an image is not in Amazon ECR; SageMaker pulls it through the VPC",
    Severity.WARNING,
)
NOT_LOWERED = register_code(
    "aws-not-lowered", "a spec feature is not lowered on the aws target yet", Severity.WARNING
)
KMS_INSTANCE_STORAGE = register_code(
    "aws-kms-instance-storage",
    "an instance type with local NVMe storage takes no endpoint KMS key (hardware-encrypted)",
    Severity.INFO,
)
RUNTIME_UNSUPPORTED = register_code(
    "aws-runtime-unsupported",
    "a model's serving runtime cannot run on SageMaker as written",
)
BATCH_DATA = register_code(
    "aws-batch-data",
    "a batch scoring input is not an s3:// objectStore, or its output is not exactly one",
)
BATCH_SCHEDULE = register_code(
    "aws-batch-schedule", "a batch scoring schedule EventBridge Scheduler cannot express"
)
BATCH_COMMAND = register_code(
    "aws-batch-command",
    "a batch scoring command, which a SageMaker Batch Transform cannot run (it calls the server)",
)
BATCH_TIMEOUT = register_code(
    "aws-batch-timeout",
    "a batch scoring timeout, which a SageMaker Batch Transform cannot enforce",
    Severity.WARNING,
)
DRIFT_JOB_NOT_GENERATED = register_code(
    "aws-drift-job-not-generated",
    "a model's drift job (monitoring.drift.job) is not generated on the aws target",
    Severity.WARNING,
)
