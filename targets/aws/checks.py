"""What a valid spec must also satisfy to be lowered to AWS, checked before anything is built.

Each check reports a located diagnostic (codes in ``codes.py``) at the spec line to change; the
lowering still runs afterwards so that one build shows every problem, and ``lower`` returns no
graph when any of them is an error.
"""

from __future__ import annotations

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.targets.aws import (
    alarm_seam,
    batch,
    codes,
    instances,
    names,
    rollouts,
    runtimes,
    training,
)
from mlplane.targets.aws.context import CLASSIFICATION_RANK, Lowering, model_tier
from mlplane.targets.aws.settings import aws_of

MAX_CANARY_PERCENT = 50
"""SageMaker's blue/green canary may take at most half of the fleet."""
MAX_WAIT_SECONDS = 3600
TRACKED_METRICS = frozenset({"rps", "cpu"})
"""Autoscaling metrics lowered to SageMaker target tracking: invocations per instance (``rps``,
predefined) and the instances' ``CPUUtilization`` (``cpu``, a customized metric)."""


def check_spec(lowering: Lowering) -> None:
    check_environment(lowering)
    check_data_sources(lowering)
    for model in lowering.system.models.values():
        check_model(lowering, model)


def check_without_lowering(lowering: Lowering) -> None:
    """``check_spec`` and what the alarms would refuse (``alarm_seam.check``): everything
    ``lower`` refuses, for ``mlplane validate``, which builds no graph."""
    check_spec(lowering)
    alarm_seam.check(lowering)


def _error(
    lowering: Lowering, code: str, message: str, path: SpecPath, hint: str | None = None
) -> None:
    lowering.diagnostics.error(code, message, lowering.location(path), path, hint)


def _warning(
    lowering: Lowering, code: str, message: str, path: SpecPath, hint: str | None = None
) -> None:
    lowering.diagnostics.warning(code, message, lowering.location(path), path, hint)


def check_environment(lowering: Lowering) -> None:
    env = lowering.environment
    vpc = aws_of(env).aws_vpc
    if lowering.system.models and vpc is None:
        _error(
            lowering,
            codes.VPC_REQUIRED,
            f"environment {env.name!r} serves models on SageMaker, which runs them only inside a "
            "VPC with network isolation here, but aws.vpc is not set",
            ("environments", env.name, "aws"),
            "add vpc: {subnetIds: [subnet-...], securityGroupIds: [sg-...]} (private subnets)",
        )
    elif lowering.system.models and vpc is not None and not vpc.security_group_ids:
        _error(
            lowering,
            codes.VPC_REQUIRED,
            f"environment {env.name!r} serves models on SageMaker, whose VPC configuration "
            "needs at least one security group, but aws.vpc.securityGroupIds is empty",
            ("environments", env.name, "aws", "vpc"),
            "add securityGroupIds: [sg-...] (a group without ingress rules)",
        )


def check_data_sources(lowering: Lowering) -> None:
    buckets: dict[str, str] = {}
    for name, source in lowering.system.data_sources.items():
        if not source.managed:
            continue
        base: SpecPath = ("dataSources", name)
        if not source.uri.startswith("s3://"):
            _error(
                lowering,
                codes.MANAGED_URI,
                f"managed data source {name!r} must be an s3:// bucket on the aws target",
                (*base, "uri"),
                "write uri: s3://<bucket>/<prefix>/, or set managed: false to reference it",
            )
            continue
        _check_residency(lowering, source)
        bucket, _ = names.s3_location(source.uri)
        if bucket in buckets:
            _error(
                lowering,
                codes.BUCKET_SHARED,
                f"managed data sources {buckets[bucket]!r} and {name!r} both name bucket "
                f"{bucket!r}; a managed bucket belongs to one data source",
                (*base, "uri"),
                "give each managed data source its own bucket, or reference one (managed: false)",
            )
        buckets.setdefault(bucket, name)


def _check_residency(lowering: Lowering, source: ir.DataSource) -> None:
    env = lowering.environment
    if source.residency in (None, "global") or source.residency == env.residency:
        return
    _error(
        lowering,
        codes.RESIDENCY_MISMATCH,
        f"managed data source {source.name!r} is resident in {source.residency!r}, but "
        f"environment {env.name!r} would create its bucket in {aws_of(env).aws_region} "
        f"({env.residency!r})",
        ("dataSources", source.name, "residency"),
        "create it from an environment in a region of its residency, or reference it (managed: false)",
    )


def check_model(lowering: Lowering, model: ir.Model) -> None:
    base: SpecPath = ("models", model.name)
    serving: SpecPath = (*base, "serving")
    if model.serving.instance_type is None:
        _error(
            lowering,
            codes.INSTANCE_TYPE_REQUIRED,
            f"model {model.name!r} is served on SageMaker but names no instance type",
            serving,
            "add serving.instanceType, such as ml.m5.xlarge (per environment through overrides)",
        )
    if model.secrets:
        _error(
            lowering,
            codes.ISOLATION_SECRETS,
            f"model {model.name!r} reads secrets at run time, but SageMaker network isolation "
            "gives its container neither network access nor AWS credentials to fetch them",
            (*base, "secrets"),
            "pass what the model needs in the request or bake it into the artifact, and drop "
            "secrets in this environment (overrides: models: {NAME: {secrets: []}})",
        )
    if model.artifact is not None and not model.artifact.startswith("s3://"):
        _error(
            lowering,
            codes.ARTIFACT_URI,
            f"model {model.name!r} loads its artifact from {model.artifact.split(':', 1)[0]}://, "
            "but SageMaker loads model data only from S3",
            (*base, "artifact"),
        )
    if model.image.registry is None or names.ecr_repository_arn(model.image) is None:
        _warning(
            lowering,
            codes.IMAGE_OUTSIDE_ECR,
            f"image of model {model.name!r} is not in Amazon ECR: SageMaker pulls it through the "
            "VPC (repositoryAccessMode Vpc), which needs a route to that registry",
            (*base, "image"),
            "mirror the image into ECR in this account and region",
        )
    runtimes.check_runtime(lowering, model)
    check_serving(lowering, model)
    training.check_training(lowering, model)
    batch.check_batch(lowering, model)
    if model.drift is not None and model.drift.job is not None:
        _warning(
            lowering,
            codes.DRIFT_JOB_NOT_GENERATED,
            f"the drift job of model {model.name!r} is not generated on the aws target (it "
            "pushes to a Prometheus Pushgateway, not to CloudWatch): the DriftScore custom "
            f"metrics of namespace mlplane/{lowering.system.name} that its drift alarms read "
            "must come from your own pipeline",
            ("models", model.name, "monitoring", "drift", "job"),
            "publish DriftScore as the aws target's README says, and remove the job here "
            "(overrides: models: {NAME: {monitoring: {drift: {job: null}}}})",
        )
    if model.training is not None and names.ecr_repository_arn(model.training.image) is None:
        _warning(
            lowering,
            codes.IMAGE_OUTSIDE_ECR,
            f"training image of model {model.name!r} is not in Amazon ECR: SageMaker pulls it "
            "through the VPC (TrainingRepositoryAccessMode Vpc), which needs a route to that "
            "registry",
            (*base, "training", "image"),
            "mirror the image into ECR in this account and region",
        )


def check_serving(lowering: Lowering, model: ir.Model) -> None:
    base: SpecPath = ("models", model.name, "serving")
    serving = model.serving
    endpoint = names.endpoint(lowering.system, model.name)
    if len(endpoint) > names.ENDPOINT_NAME_LIMIT:
        _error(
            lowering,
            codes.NAME_TOO_LONG,
            f"the SageMaker endpoint name {endpoint!r} of model {model.name!r} has "
            f"{len(endpoint)} characters; SageMaker allows {names.ENDPOINT_NAME_LIMIT}",
            ("models", model.name),
            "shorten the model, system or environment name",
        )
    if serving.replicas_min < 1:
        _error(
            lowering,
            codes.REPLICAS_ZERO,
            f"model {model.name!r} asks for {serving.replicas_min} instances; a SageMaker "
            "endpoint runs at least one",
            (*base, "replicas", "min"),
        )
    check_autoscaling(lowering, model)
    if serving.exposure == "public":
        _warning(
            lowering,
            codes.NOT_LOWERED,
            f"model {model.name!r} is exposed publicly, but a SageMaker endpoint is reached "
            "only through the IAM-authenticated SageMaker runtime API; nothing public is created",
            (*base, "exposure"),
        )
    check_rollout(lowering, model)
    check_capture(lowering, model)


def check_autoscaling(lowering: Lowering, model: ir.Model) -> None:
    base: SpecPath = ("models", model.name, "serving")
    serving = model.serving
    metric = serving.autoscaling_metric
    if metric is not None and metric not in TRACKED_METRICS:
        _error(
            lowering,
            codes.AUTOSCALING_METRIC,
            f"SageMaker target tracking cannot follow {metric!r} here: it scales on invocations "
            "per instance (rps) or CPU utilisation (cpu)",
            (*base, "autoscaling", "metric"),
            "use autoscaling: {metric: rps, target: <requests per second per instance>} or "
            "{metric: cpu, target: <percent>}",
        )
    elif (
        metric == "cpu"
        and serving.instance_type is not None
        and instances.vcpus(serving.instance_type) is None
    ):
        _error(
            lowering,
            codes.AUTOSCALING_METRIC,
            f"CPU autoscaling of model {model.name!r} needs the vCPUs of "
            f"{serving.instance_type}, whose size does not say: SageMaker reports CPU "
            "utilisation summed over the vCPUs",
            (*base, "instanceType"),
            "use a large or <n>xlarge instance type, or autoscaling: {metric: rps, ...}",
        )


def check_capture(lowering: Lowering, model: ir.Model) -> None:
    """Captured traffic is the model's data: it goes only to a managed bucket of at least the
    model's classification, and never for phi (requests would copy health records)."""
    capture = model.serving.data_capture
    if capture is None:
        return
    path: SpecPath = ("models", model.name, "serving", "dataCapture", "destination")
    tier = model_tier(lowering.system, model)
    target = lowering.system.data_sources[capture.destination]
    problem = None
    if tier == "phi":
        problem = f"model {model.name!r} reads phi, whose requests must not be captured"
    elif not (target.managed and target.uri.startswith("s3://")):
        problem = f"data capture goes to {target.name!r}, which is not a managed s3:// objectStore"
    elif CLASSIFICATION_RANK[target.classification] < CLASSIFICATION_RANK[tier]:
        problem = (
            f"data capture of model {model.name!r} ({tier} data) goes to {target.name!r}, "
            f"classified only {target.classification}"
        )
    if problem is not None:
        hint = "remove serving.dataCapture, or capture into a managed bucket of the model's tier"
        _error(lowering, codes.DATA_CAPTURE, problem, path, hint)


def check_rollout(lowering: Lowering, model: ir.Model) -> None:
    rollout = model.serving.rollout
    base: SpecPath = ("models", model.name, "serving", "rollout")
    pause = rollout.pause_seconds
    if pause is not None and pause > MAX_WAIT_SECONDS:
        _error(
            lowering,
            codes.ROLLOUT_PAUSE,
            f"rollout pause of model {model.name!r} is {int(pause)}s; SageMaker waits at most "
            f"{MAX_WAIT_SECONDS}s between traffic shifts",
            (*base, "pause"),
        )
    elif rollouts.total_wait_seconds(rollout) + rollouts.PROVISION_SECONDS > (
        rollouts.MAX_EXECUTION_SECONDS
    ):
        waits = rollouts.total_wait_seconds(rollout)
        _error(
            lowering,
            codes.ROLLOUT_PAUSE,
            f"the rollout of model {model.name!r} waits {waits}s in all (the pause after every "
            f"traffic shift and before the old fleet goes) plus {rollouts.PROVISION_SECONDS}s "
            f"to provision; a SageMaker deployment may run at most "
            f"{rollouts.MAX_EXECUTION_SECONDS}s",
            (*base, "pause"),
            "shorten rollout.pause, or use fewer canary steps",
        )
    if rollout.strategy != "canary" or not rollout.steps:
        return
    step, fleet = rollout.steps[0], model.serving.replicas_min
    if step > MAX_CANARY_PERCENT or step * fleet < 100:
        _error(
            lowering,
            codes.CANARY_STEP,
            f"a {step}% canary of {fleet} instance(s) is "
            + (
                "more than half the fleet"
                if step > MAX_CANARY_PERCENT
                else "less than one instance"
            )
            + f"; SageMaker's canary takes 1 to {MAX_CANARY_PERCENT}% of the instances, at least one",
            (*base, "steps", 0),
            _canary_hint(fleet),
        )


def _canary_hint(fleet: int) -> str:
    smallest = -(-100 // max(fleet, 1))
    if smallest > MAX_CANARY_PERCENT:
        return "raise replicas.min to at least 2: a canary is one instance beside the others"
    return f"use a first step between {smallest}% and {MAX_CANARY_PERCENT}%, or raise replicas.min"
