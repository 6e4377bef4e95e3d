"""Risk flags: the changes a reviewer must not miss, and ``--fail-on risk``.

Most changes are routine; a few are how outages, data loss and compliance findings happen. Each
flag has a stable code (documented in ``docs/plan.md``) so that CI rules and people can refer
to it. Resource-level flags come from the graph diff and the two tables below (what holds data,
what serves traffic); spec-level flags (exposure, classification, default-deny, SLAs, alerts,
waivers, policies) are raised by ``compiler/plan/spec_changes.py`` next to the summary line they belong
to, so that they point at the spec line a reviewer should read. Some depend on the target: on
AWS, an instance type change of an autoscaled model is flagged, because SageMaker refuses to
apply it while the endpoint's variant is registered with Application Auto Scaling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from mlplane.compiler.plan.model import ResourceChange, Risk, SpecChange

RISK_CODES: Mapping[str, str] = MappingProxyType(
    {
        "data-deleted": "a resource that holds data is deleted",
        "data-replaced": "a resource that holds data is replaced (deleted, then created empty)",
        "serving-deleted": "a resource that serves traffic is deleted",
        "serving-replaced": "a resource that serves traffic is replaced (serving is interrupted)",
        "protected-resource": "a protected resource would be deleted or replaced (Pulumi refuses)",
        "exposure-public": "a model becomes reachable from outside the cluster",
        "classification-downgraded": "a data source's classification is lowered",
        "default-deny-disabled": "the default-deny network policy is turned off",
        "encryption-relaxed": "encryption at rest or in transit is no longer required",
        "image-policy-relaxed": "image digests are no longer required or a registry is allowed",
        "policy-relaxed": "a policy rule is lowered or turned off, or a Rego policy is dropped",
        "sla-removed": "an SLA is removed (its SLO alerts go with it)",
        "alert-removed": "an alert, a drift monitor or an alert route is removed",
        "waiver-added": "a policy waiver is added",
        "waiver-extended": "a policy waiver's expiry is moved later",
        "data-source-removed": "a data source is removed (its lineage and monitoring go with it)",
        "autoscaled-instance-type-changed": "the instance type of an autoscaled SageMaker "
        "endpoint changes (UpdateEndpoint refuses it while autoscaling is registered)",
        "aws-region-changed": "an AWS environment moves to another region (pulumi-aws does not "
        "move resources between regions)",
        "state-backend-changed": "the Pulumi state backend of an environment changes",
        "deploy-role-changed": "the AWS role that deploys an environment (Pulumi's or CI's) changes",
        "kube-context-changed": "the Kubernetes cluster context of an environment changes",
    }
)
"""Every risk code with its one-line meaning."""

RISK_NOTES: Mapping[str, str] = MappingProxyType(
    {
        "autoscaled-instance-type-changed": "SageMaker's UpdateEndpoint fails on an instance "
        "type change of a variant registered with Application Auto Scaling, and Pulumi updates "
        "the endpoint before it touches the scaling target, so the apply stops with the endpoint "
        "on its old instances; if the deployed endpoint autoscales, first apply with "
        "serving.autoscaling removed (Pulumi deregisters the scalable target), then the new "
        "instance type with autoscaling back",
        "aws-region-changed": "since pulumi-aws 6 a provider's region change replaces nothing: "
        "the apply would look for every resource in the new region and fail; destroy the "
        "environment in the old region first (retained and protected buckets stay there, with "
        "their data), then apply into the new one, or deploy the new region as a new environment",
        "state-backend-changed": "the next apply reads and writes the stack in the new backend: "
        "it finds no state there and creates every resource again beside the old ones, which "
        "the old backend still records; the new backend also receives the stack's state "
        "(resource outputs and encrypted secrets), so check that it is one the team controls, "
        "and move the state deliberately (pulumi stack export, then import) before applying",
        "deploy-role-changed": "every later apply, drift check and destroy runs with the new "
        "role's permissions, possibly in another account: check who may assume it and what it "
        "may do",
        "kube-context-changed": "the next apply deploys into the cluster the new context names: "
        "it creates every resource there while the old cluster keeps running the old ones; "
        "check that the context is the intended cluster on the machine that applies",
    }
)
"""What a spec-level flag means and what to do, where its line does not say it: appended to the
line's text in the flag's message."""

DATA_TYPES = frozenset(
    {
        "kubernetes:core/v1:Namespace",  # deleting it deletes everything inside
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:core/v1:PersistentVolume",
        "kubernetes:apps/v1:StatefulSet",  # its volume claims
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:kms/key:Key",  # its deletion leaves every object encrypted with it unreadable
        "aws:cloudwatch/logGroup:LogGroup",  # endpoint logs: an audit trail
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:dynamodb/table:Table",
        "aws:efs/fileSystem:FileSystem",
        "aws:ebs/volume:Volume",
        "aws:kinesis/stream:Stream",
        "aws:sagemaker/featureGroup:FeatureGroup",
    }
)
"""Resource types whose deletion or replacement loses data."""

DATA_NOTES: Mapping[str, str] = MappingProxyType(
    {
        "aws:kms/key:Key": "the key is scheduled for deletion: once its deletion window ends, "
        "every object encrypted with it is unreadable",
    }
)
"""What deleting or replacing a data type means, where the type's name does not say it."""

SERVING_TYPES = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:argoproj.io/v1alpha1:Rollout",
        "kubernetes:core/v1:Service",
        "kubernetes:networking.k8s.io/v1:Ingress",
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
        "aws:sagemaker/endpoint:Endpoint",
        "aws:lb/loadBalancer:LoadBalancer",
    }
)
"""Resource types whose deletion or replacement interrupts serving."""


def resource_risks(changes: Iterable[ResourceChange]) -> list[Risk]:
    """Flags for deleted or replaced data and serving resources, and protected ones."""
    found: list[Risk] = []
    for change in changes:
        if change.action not in ("delete", "replace"):
            continue
        verb = "deleted" if change.action == "delete" else "replaced"
        what = f"{_kind(change.type)} {change.name}"
        why = f" ({'; '.join(change.replace_reasons)})" if change.replace_reasons else ""
        if change.type in DATA_TYPES:
            note = f"; {DATA_NOTES[change.type]}" if change.type in DATA_NOTES else ""
            message = f"{what} holds data and is {verb}{why}{note}"
            found.append(Risk(f"data-{verb}", message, change.name, change.source))
        if change.type in SERVING_TYPES:
            message = f"{what} serves traffic and is {verb}{why}"
            found.append(Risk(f"serving-{verb}", message, change.name, change.source))
        if change.protected:
            message = f"{what} is protected: Pulumi will refuse to have it {verb}"
            found.append(Risk("protected-resource", message, change.name, change.source))
    return found


def spec_risks(changes: Iterable[SpecChange]) -> list[Risk]:
    """The flags that the spec summary attached to its lines, one per (line, code); the message
    is the line, followed by the code's note (:data:`RISK_NOTES`) when it has one."""
    return [
        Risk(code, _noted(change.text, code), change.subject, change.source)
        for change in changes
        for code in change.risks
    ]


def _noted(text: str, code: str) -> str:
    note = RISK_NOTES.get(code)
    return f"{text}: {note}" if note else text


def _kind(token: str) -> str:
    """``kubernetes:apps/v1:Deployment`` -> ``Deployment``."""
    return token.rsplit(":", 1)[-1]
