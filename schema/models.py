"""The mlplane spec language v1 as pydantic models: the source of truth for the JSON Schema.

Conventions: camelCase keys (as in Kubernetes) through an alias generator, ``extra="forbid"`` so a
typo is an error, strict types so ``"3"`` is not a number and ``yes`` is not a boolean, frozen
instances, and finite numbers only. Cross-references (a model's inputs, an SLA's subject) are
checked by the compiler's resolver, which knows every name; this module checks each value alone
and the contradictions inside one object.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from mlplane.schema.base import (
    API_VERSION,
    KIND,
    MAX_DATA_SOURCES,
    MAX_MODELS,
    MAX_SLAS,
    Classification,
    Residency,
    Spec,
    UniqueNames,
    _no_duplicates,
)
from mlplane.schema.ci import Ci, RoleArn
from mlplane.schema.drift import DriftJob, DriftJobResources
from mlplane.schema.kubeflow import KubernetesKubeflow
from mlplane.schema.operations import (
    INDICATORS,
    AccessRule,
    Alerting,
    Availability,
    DriftIndicator,
    EmailReceiver,
    Encryption,
    Freshness,
    Images,
    Indicator,
    Latency,
    Network,
    NetworkAllow,
    PagerDuty,
    Policies,
    PolicyRule,
    Ratio,
    Receiver,
    Route,
    Secret,
    Security,
    Sla,
    Slack,
    Waiver,
)
from mlplane.schema.serving import (
    Autoscaling,
    Batch,
    DataCapture,
    Drift,
    Evaluation,
    Explainability,
    Ingress,
    IngressTls,
    Model,
    ModelFramework,
    Monitoring,
    Replicas,
    Resources,
    Rollout,
    Serving,
    Training,
)
from mlplane.schema.types import (
    AddressPeer,
    AwsAccountId,
    AwsRegion,
    DataUri,
    Duration,
    EnvName,
    Hostname,
    HttpPath,
    Image,
    KubeContext,
    LabelKey,
    LabelValue,
    Name,
    NamespaceName,
    Owner,
    SecurityGroupId,
    StateUri,
    SubnetId,
    Text,
    fail,
)

__all__ = [
    "API_VERSION",
    "INDICATORS",
    "KIND",
    "MAX_DATA_SOURCES",
    "MAX_MODELS",
    "MAX_SLAS",
    "AccessRule",
    "Alerting",
    "Autoscaling",
    "Availability",
    "AwsSettings",
    "AwsVpc",
    "Batch",
    "Ci",
    "Classification",
    "DataCapture",
    "DataSource",
    "Drift",
    "DriftIndicator",
    "DriftJob",
    "DriftJobResources",
    "EmailReceiver",
    "Encryption",
    "Environment",
    "Evaluation",
    "Explainability",
    "Freshness",
    "Images",
    "Indicator",
    "Ingress",
    "IngressTls",
    "KubernetesEdge",
    "KubernetesEdgeRemoteWrite",
    "KubernetesKubeflow",
    "KubernetesSettings",
    "Latency",
    "MLSystem",
    "Metadata",
    "Model",
    "ModelFramework",
    "Monitoring",
    "Network",
    "NetworkAllow",
    "Overrides",
    "PagerDuty",
    "Policies",
    "PolicyRule",
    "Ratio",
    "Receiver",
    "Replicas",
    "Residency",
    "Resources",
    "Rollout",
    "Route",
    "Secret",
    "Security",
    "Serving",
    "Sla",
    "Slack",
    "Spec",
    "Training",
    "UniqueNames",
    "Waiver",
]

# --- metadata and environments -----------------------------------------------------------------


class Metadata(Spec):
    name: Name
    """The system's name: a DNS-1123 label used in namespaces and resource names."""
    owner: Owner
    """The owning team; alerts route to it unless an SLA names another owner."""
    description: Text | None = None
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=32)] = {}


class KubernetesMonitoring(Spec):
    """How the cluster's Prometheus Operator finds this system's monitoring objects."""

    alertmanager: Literal["alertmanagerConfig", "file"] = "alertmanagerConfig"
    """alertmanagerConfig: a namespaced AlertmanagerConfig (monitoring.coreos.com/v1alpha1),
    merged into a shared Alertmanager, with the receivers' Secrets in the environment's
    namespace; file: only monitoring/alertmanager.yaml, for an Alertmanager this system owns,
    with the receivers' Secrets in monitoringNamespace (list them in its spec.secrets)."""
    monitoring_namespace: NamespaceName = "monitoring"
    """Where Prometheus and Alertmanager run (the file mode's Secrets go there)."""
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=16)] = {
        "release": "kube-prometheus-stack"
    }
    """Labels on every PrometheusRule, ServiceMonitor and AlertmanagerConfig, for the
    Prometheus ruleSelector/serviceMonitorSelector and the Alertmanager's
    alertmanagerConfigSelector (kube-prometheus-stack selects release: <Helm release name>)."""


class KubernetesEdgeRemoteWrite(Spec):
    """Where the edge nodes' Prometheus agents send what they scrape (over HTTPS)."""

    host: Hostname
    path: HttpPath = "/api/v1/write"


class KubernetesEdge(Spec):
    """How the edge profile finds and rolls its nodes (``profile: edge``)."""

    node_label: LabelKey = "node-role.kubernetes.io/edge"
    """The label every edge node carries (any value): models run only there."""
    taint: LabelKey | None = "node-role.kubernetes.io/edge"
    """The key of the taint that keeps other pods off edge nodes, which the models tolerate
    (any value and effect); null when the edge nodes are not tainted."""
    site_label: LabelKey = "topology.kubernetes.io/zone"
    """The label that names a node's site: models and agents run only on edge nodes that
    carry it, and the agents copy its value onto every series they send as ``site``."""
    residency_label: LabelKey = "mlplane.dev/residency"
    """The label that says where a site's data may live: a model reading data with a
    residency runs only on nodes whose label has that value."""
    sites_at_once: Annotated[int, Field(ge=1, le=100)] = 25
    """The percentage of edge nodes (one per site) a rollout updates at a time."""
    remote_write: KubernetesEdgeRemoteWrite | None = None
    """The central Prometheus's remote-write endpoint for the edge agents; none: no agent."""
    artifact_loader: Image | None = None
    """The image of the init container that copies a model's artifact into the pod's local
    volume (pinned by digest); needed when a served model names an artifact."""
    allow_public: bool = False
    """Edge models are not exposed publicly unless this says so."""


class KubernetesSettings(Spec):
    context: KubeContext | None = None
    """The kubeconfig context to deploy with (for example kind-mlplane)."""
    namespace: NamespaceName | None = None
    """Defaults to <system>-<environment>."""
    monitoring: KubernetesMonitoring | None = None
    ingress_namespace: NamespaceName = "ingress-nginx"
    """Where the ingress controller's pods run: the models allowed from internet admit this
    namespace (ingress-nginx installs into ingress-nginx)."""
    hosts: Annotated[
        dict[Hostname, Annotated[list[AddressPeer], Field(min_length=1, max_length=16)]],
        Field(max_length=256),
    ] = {}
    """Where the hosts named in data source and artifact URIs are, for NetworkPolicy egress
    (which cannot name hosts): cidr:ADDRESS/PREFIX, namespace:NAME or internet (public
    addresses only). A host named nowhere here is reached on its port at any address."""
    mesh: Literal["istio", "linkerd", "none"] | None = None
    """How traffic between pods is encrypted when security.encryption.inTransit is required:
    istio (sidecars, PeerAuthentication STRICT) or linkerd (proxies, all-authenticated inbound
    policy), installed on the cluster; none says knowingly that nothing encrypts it (refused
    in production)."""
    profile: Literal["cloud", "edge"] = "cloud"
    """cloud: Deployments and Rollouts on any node; edge: one pod per labelled edge node
    (a DaemonSet), images pre-pulled, rolled a percentage of sites at a time (see edge)."""
    edge: KubernetesEdge | None = None
    """The edge profile's settings (defaults when omitted)."""
    kubeflow: KubernetesKubeflow | None = None
    """The cluster's Kubeflow Pipelines API, where mlplane apply registers the recurring runs of
    training.engine: kubeflow (required when a model of the environment uses it)."""


class AwsVpc(Spec):
    """Where SageMaker models run: every model gets these subnets and security groups."""

    subnet_ids: Annotated[list[SubnetId], Field(min_length=1, max_length=16)]
    """Private subnets, ideally one per availability zone."""
    security_group_ids: Annotated[list[SecurityGroupId], Field(max_length=5)] = []
    """One to five (SageMaker's limit) when the environment serves models: the aws target
    refuses an empty list rather than fall back to the VPC's default group."""

    @model_validator(mode="after")
    def _unique_ids(self) -> AwsVpc:
        _no_duplicates(self.subnet_ids, "vpc.subnetIds")
        _no_duplicates(self.security_group_ids, "vpc.securityGroupIds")
        return self


class AwsSettings(Spec):
    region: AwsRegion
    account_id: AwsAccountId
    vpc: AwsVpc | None = None
    """The VPC of the models; the aws target requires it when the environment serves models."""
    deploy_role_arn: RoleArn | None = None
    """A role the Pulumi provider assumes to deploy (in the same account)."""

    @model_validator(mode="after")
    def _role_in_account(self) -> AwsSettings:
        if (
            self.deploy_role_arn is not None
            and self.deploy_role_arn.split(":")[4] != self.account_id
        ):
            raise fail(
                "contradiction",
                f"deployRoleArn is in account {self.deploy_role_arn.split(':')[4]}, but the "
                f"environment's accountId is {self.account_id}",
                fields=("deployRoleArn", "accountId"),
            )
        return self


class Overrides(Spec):
    """Deep-merged over the base spec: maps merge, lists and scalars replace, null removes."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, alias_generator=to_camel)
    metadata: dict[str, Any] | None = None
    data_sources: dict[str, Any] | None = None
    models: dict[str, Any] | None = None
    security: dict[str, Any] | None = None
    slas: dict[str, Any] | None = None
    alerting: dict[str, Any] | None = None
    policies: dict[str, Any] | None = None
    waivers: list[Any] | None = None


class Environment(Spec):
    target: Literal["kubernetes", "aws"]
    production: bool | None = None
    """Production environments get the strictest policies; defaults to true when a '-'-separated part of the name is 'prod' or 'production' (prod, prod-aws, eu-production)."""
    residency: Residency | None = None
    """Where this environment runs (for AWS, derived from the region when omitted)."""
    kubernetes: KubernetesSettings | None = None
    aws: AwsSettings | None = None
    state: StateUri | None = None
    """Pulumi state backend, such as file://./state or s3://bucket/prefix."""
    overrides: Overrides | None = None

    @model_validator(mode="after")
    def _settings_match_target(self) -> Environment:
        if self.target == "aws" and self.aws is None:
            raise fail(
                "target-settings", "an environment with target 'aws' needs aws: {region, accountId}"
            )
        if self.target == "kubernetes" and self.aws is not None:
            raise fail("target-settings", "aws settings are set but the target is 'kubernetes'")
        if self.target == "aws" and self.kubernetes is not None:
            raise fail("target-settings", "kubernetes settings are set but the target is 'aws'")
        return self


# --- data -------------------------------------------------------------------------------------------


class DataSource(Spec):
    type: Literal["objectStore", "database", "stream", "featureStore"]
    uri: DataUri
    classification: Classification
    residency: Residency | None = None
    retention: Duration | None = None
    """How long records are kept, such as 400d."""
    encryption: Literal["none", "managed", "kms"] | None = None
    """none, provider-managed keys, or customer-managed keys (kms)."""
    freshness: Duration | None = None
    """The maximum age of the newest record before the source counts as stale."""
    derived_from: UniqueNames = []
    owner: Owner | None = None
    description: Text | None = None
    managed: bool = False
    """true: mlplane creates and hardens the store (objectStore only, as an S3 bucket on the aws
    target); false: it exists already and mlplane only grants access to it."""

    @model_validator(mode="after")
    def _unique_lineage(self) -> DataSource:
        _no_duplicates(self.derived_from, "derivedFrom")
        return self

    @model_validator(mode="after")
    def _managed_kind(self) -> DataSource:
        if self.managed and self.type != "objectStore":
            raise fail(
                "contradiction",
                f"managed: true is supported for type objectStore only, not {self.type!r}: "
                "mlplane references other stores and grants access to them",
                fields=("managed", "type"),
            )
        return self


# --- the whole system -----------------------------------------------------------------------------


class MLSystem(Spec):
    """An ML system: its data, models, security and SLAs, and where it runs."""

    api_version: Literal["mlplane.dev/v1"]
    kind: Literal["MLSystem"]
    metadata: Metadata
    environments: Annotated[dict[EnvName, Environment], Field(min_length=1, max_length=16)]
    data_sources: Annotated[dict[Name, DataSource], Field(max_length=MAX_DATA_SOURCES)] = {}
    models: Annotated[dict[Name, Model], Field(max_length=MAX_MODELS)] = {}
    security: Security = Security()
    slas: Annotated[dict[Name, Sla], Field(max_length=MAX_SLAS)] = {}
    alerting: Alerting = Alerting()
    waivers: Annotated[list[Waiver], Field(max_length=1024)] = []
    policies: Policies = Policies()
    ci: Ci = Ci()
    """The generated CI workflows (mlplane ci); the same for every environment."""
