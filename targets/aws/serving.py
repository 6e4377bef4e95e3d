"""SageMaker serving of one model: log group, model, endpoint configuration, endpoint, scaling.

- The ``Model`` runs in the environment's VPC with network isolation; it is auto-named and
  ``retainOnDelete`` (a silent SageMaker rollback may still use the old one).
- The ``EndpointConfiguration`` is auto-named too (every attribute forces a replacement, which
  must be created before the old one goes), ``retainOnDelete``, and encrypts the instances'
  volumes with the model's tier key, except on instance types with local NVMe storage, which
  SageMaker refuses a key for (their instance store is hardware-encrypted).
- The ``Endpoint`` is the only named resource (alarms and scaling name it), replaced with
  ``deleteBeforeReplace`` (the name cannot be taken twice), after its log group exists, so
  SageMaker never creates an unencrypted one itself.
- Autoscaling: an application-autoscaling target on the variant and a target-tracking policy:
  ``rps`` on the predefined invocations per instance, whose unit is per minute (the spec's
  target is per second, so × 60); ``cpu`` on a customized metric, the variant's average
  ``CPUUtilization`` in ``/aws/sagemaker/Endpoints`` (dimensions ``EndpointName`` and
  ``VariantName``), which sums the instance's vCPUs, so the spec's percentage × vCPUs
  (``instances.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, Severity, SpecPath, format_path
from mlplane.compiler.core.graph import ref
from mlplane.schema.formats import has_instance_storage
from mlplane.targets.aws import codes, instances, names, rollouts
from mlplane.targets.aws.context import Lowering, model_tier
from mlplane.targets.aws.settings import aws_of

LOG_GROUP_TYPE = "aws:cloudwatch/logGroup:LogGroup"
MODEL_TYPE = "aws:sagemaker/model:Model"
CONFIG_TYPE = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT_TYPE = "aws:sagemaker/endpoint:Endpoint"
SCALING_TARGET_TYPE = "aws:appautoscaling/target:Target"
SCALING_POLICY_TYPE = "aws:appautoscaling/policy:Policy"
LOG_RETENTION_DAYS = 365
SCALE_IN_COOLDOWN = 300
SCALE_OUT_COOLDOWN = 60
ENDPOINT_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
CPU_UTILIZATION = "CPUUtilization"


@dataclass(frozen=True, slots=True)
class Serving:
    """The logical names of one model's serving resources."""

    component: str
    endpoint_name: str
    log_group: str
    model: str
    config: str


def lower_log_group(lowering: Lowering, model: ir.Model, endpoint: str, parent: str) -> str:
    tier = model_tier(lowering.system, model)
    inputs = {
        "name": names.log_group(endpoint),
        "kmsKeyId": ref(names.key(tier), "arn"),
        "retentionInDays": LOG_RETENTION_DAYS,
        "tags": lowering.tags(**{"mlplane.dev/model": model.name}),
    }
    origin = lowering.origin(("models", model.name, "serving"))
    return lowering.add(
        LOG_GROUP_TYPE, names.logical(model.name, "log-group"), inputs, origin, parent
    )


def model_container(model: ir.Model) -> dict[str, Any]:
    container: dict[str, Any] = {"image": model.image.text}
    if names.ecr_repository_arn(model.image) is None:
        container["imageConfig"] = {"repositoryAccessMode": "Vpc"}
    artifact = model.artifact
    if artifact is not None and artifact.endswith(".tar.gz"):
        container["modelDataUrl"] = artifact
    elif artifact is not None:
        kind = "S3Prefix" if artifact.endswith("/") else "S3Object"
        source = {"s3Uri": artifact, "s3DataType": kind, "compressionType": "None"}
        container["modelDataSource"] = {"s3DataSources": [source]}
    return container


def lower_model(lowering: Lowering, model: ir.Model, role: str, parent: str) -> str:
    vpc = aws_of(lowering.environment).aws_vpc
    inputs: dict[str, Any] = {
        "executionRoleArn": ref(role, "arn"),
        "primaryContainer": model_container(model),
        "enableNetworkIsolation": True,
        "tags": lowering.tags(
            **{"mlplane.dev/model": model.name, "mlplane.dev/version": model.version}
        ),
    }
    if vpc is not None:
        inputs["vpcConfig"] = {
            "subnets": list(vpc.subnet_ids),
            "securityGroupIds": list(vpc.security_group_ids),
        }
    origin = lowering.origin(("models", model.name, "image"))
    needs = (names.logical(role, "policy"),)  # SageMaker checks the model data access at creation
    return lowering.add(
        MODEL_TYPE,
        names.logical(model.name, "sagemaker-model"),
        inputs,
        origin,
        parent,
        needs,
        retain_on_delete=True,
    )


def _variant(model: ir.Model, sagemaker_model: str, name: str, count: int) -> dict[str, Any]:
    return {
        "variantName": name,
        "modelName": ref(sagemaker_model, "name"),
        "instanceType": model.serving.instance_type,
        "initialInstanceCount": count,
        "initialVariantWeight": 1.0,
    }


def capture_location(lowering: Lowering, model: ir.Model) -> tuple[str, str] | None:
    """(bucket, key prefix) that receives the model's captured traffic, if it captures any."""
    capture = model.serving.data_capture
    if capture is None:
        return None
    bucket, prefix = names.s3_location(lowering.system.data_sources[capture.destination].uri)
    return bucket, f"{prefix}capture/{model.name}/"


def data_capture(lowering: Lowering, model: ir.Model) -> dict[str, Any] | None:
    capture, location = model.serving.data_capture, capture_location(lowering, model)
    if capture is None or location is None:
        return None
    tier = lowering.system.data_sources[capture.destination].classification
    return {
        "enableCapture": True,
        "initialSamplingPercentage": capture.sampling_percentage,
        "destinationS3Uri": f"s3://{location[0]}/{location[1]}",
        "kmsKeyId": ref(names.key(tier), "arn"),
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
    }


def volume_key(lowering: Lowering, model: ir.Model) -> dict[str, str] | None:
    """The tier key for the endpoint instances' volumes (None on NVMe instance types)."""
    path = ("models", model.name, "serving", "instanceType")
    instance_type = model.serving.instance_type or ""
    return tier_volume_key(lowering, model, instance_type, path, "endpoint")


def tier_volume_key(
    lowering: Lowering, model: ir.Model, instance_type: str, path: SpecPath, subject: str
) -> dict[str, str] | None:
    """The model's tier key for the volumes of ``instance_type``, or None (with an info at
    ``path``) when it has local NVMe storage, which SageMaker refuses a key for."""
    if not has_instance_storage(instance_type):
        return ref(names.key(model_tier(lowering.system, model)), "arn")
    message = (
        f"{instance_type} has local NVMe storage, which SageMaker encrypts in hardware and "
        f"refuses a KMS key for: the {subject} of model {model.name!r} gets no KMS key"
    )
    location = lowering.location(path)
    lowering.diagnostics.add(
        Diagnostic(codes.KMS_INSTANCE_STORAGE, Severity.INFO, message, location, format_path(path))
    )
    return None


def lower_config(lowering: Lowering, model: ir.Model, sagemaker_model: str, parent: str) -> str:
    serving = model.serving
    count = max(serving.replicas_min, 1)
    inputs: dict[str, Any] = {
        "productionVariants": [_variant(model, sagemaker_model, names.VARIANT, count)],
        "tags": lowering.tags(**{"mlplane.dev/model": model.name}),
    }
    if serving.rollout.strategy == "shadow":
        inputs["shadowProductionVariants"] = [
            _variant(model, sagemaker_model, names.SHADOW_VARIANT, 1)
        ]
    capture = data_capture(lowering, model)
    if capture is not None:
        inputs["dataCaptureConfig"] = capture
    key = volume_key(lowering, model)
    if key is not None:
        inputs["kmsKeyArn"] = key
    origin = lowering.origin(("models", model.name, "serving"))
    return lowering.add(
        CONFIG_TYPE,
        names.logical(model.name, "endpoint-config"),
        inputs,
        origin,
        parent,
        retain_on_delete=True,
    )


def lower_serving(lowering: Lowering, model: ir.Model, role: str, parent: str) -> Serving:
    """Everything but the endpoint, which waits for the rollback alarms."""
    endpoint = names.endpoint(lowering.system, model.name)
    log_group = lower_log_group(lowering, model, endpoint, parent)
    sagemaker_model = lower_model(lowering, model, role, parent)
    config = lower_config(lowering, model, sagemaker_model, parent)
    return Serving(parent, endpoint, log_group, sagemaker_model, config)


def lower_endpoint(
    lowering: Lowering,
    model: ir.Model,
    serving: Serving,
    alarm_names: tuple[str, ...],
    needs: tuple[str, ...],
) -> str:
    """The endpoint, after its log group and ``needs`` (the rollback alarms and the policy that
    lets SageMaker read them)."""
    inputs = {
        "name": serving.endpoint_name,
        "endpointConfigName": ref(serving.config, "name"),
        "deploymentConfig": rollouts.deployment_config(model.serving.rollout, alarm_names),
        "tags": lowering.tags(**{"mlplane.dev/model": model.name}),
    }
    origin = lowering.origin(("models", model.name, "serving", "rollout"))
    endpoint = lowering.add(
        ENDPOINT_TYPE,
        names.logical(model.name, "endpoint"),
        inputs,
        origin,
        serving.component,
        (serving.log_group, *needs),
        delete_before_replace=True,
    )
    if model.serving.autoscaling_metric in ("rps", "cpu"):
        lower_scaling(lowering, model, serving, endpoint)
    return endpoint


def lower_scaling(lowering: Lowering, model: ir.Model, serving: Serving, endpoint: str) -> None:
    spec = model.serving
    target_inputs = {
        "minCapacity": max(spec.replicas_min, 1),
        "maxCapacity": spec.replicas_max,
        "resourceId": f"endpoint/{serving.endpoint_name}/variant/{names.VARIANT}",
        "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "serviceNamespace": "sagemaker",
    }
    origin = lowering.origin(("models", model.name, "serving", "autoscaling"))
    parent = serving.component
    target = lowering.add(
        SCALING_TARGET_TYPE,
        names.logical(model.name, "scaling-target"),
        target_inputs,
        origin,
        parent,
        (endpoint,),
    )
    suffix, tracking = _tracking(model, serving)
    policy = {
        "name": f"{serving.endpoint_name}-{suffix}",
        "policyType": "TargetTrackingScaling",
        "resourceId": ref(target, "resourceId"),
        "scalableDimension": ref(target, "scalableDimension"),
        "serviceNamespace": ref(target, "serviceNamespace"),
        "targetTrackingScalingPolicyConfiguration": {
            **tracking,
            "scaleInCooldown": SCALE_IN_COOLDOWN,
            "scaleOutCooldown": SCALE_OUT_COOLDOWN,
        },
    }
    lowering.add(
        SCALING_POLICY_TYPE,
        names.logical(model.name, "scaling-policy"),
        policy,
        origin,
        parent,
        (target, endpoint),
    )


def _tracking(model: ir.Model, serving: Serving) -> tuple[str, dict[str, Any]]:
    """(policy name suffix, target value and metric) of the model's autoscaling metric."""
    spec = model.serving
    target = spec.autoscaling_target or 1
    if spec.autoscaling_metric == "cpu":
        # CPUUtilization sums the instance's vCPUs (0-400 % on 4 vCPUs): T % of the capacity.
        cores = instances.vcpus(spec.instance_type) or 1
        metric = {
            "metricName": CPU_UTILIZATION,
            "namespace": ENDPOINT_INSTANCE_NAMESPACE,
            "dimensions": [
                {"name": "EndpointName", "value": serving.endpoint_name},
                {"name": "VariantName", "value": names.VARIANT},
            ],
            "statistic": "Average",
            "unit": "Percent",
        }
        return "cpu", {
            "targetValue": float(target * cores),
            "customizedMetricSpecification": metric,
        }
    predefined = {"predefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    return "invocations", {
        "targetValue": float(target * 60),
        "predefinedMetricSpecification": predefined,
    }
