"""The mlplane spec language v1 as pydantic models: the source of truth for the JSON Schema.

Conventions: camelCase keys (as in Kubernetes) through an alias generator, ``extra="forbid"`` so a
typo is an error, strict types so ``"3"`` is not a number and ``yes`` is not a boolean, frozen
instances, and finite numbers only. Cross-references (a model's inputs, an SLA's subject) are
checked by the compiler's resolver, which knows every name; this module checks each value alone
and the contradictions inside one object.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from pydantic.alias_generators import to_camel

from mlplane.schema import formats
from mlplane.schema.types import (
    ArtifactUri,
    AwsAccountId,
    AwsRegion,
    Cpu,
    Cron,
    DataUri,
    Date,
    Duration,
    Email,
    Endpoint,
    EnvName,
    Feature,
    HttpPath,
    Image,
    KubeContext,
    LabelKey,
    LabelValue,
    LongText,
    Memory,
    Name,
    NamespaceName,
    Owner,
    PolicyId,
    Principal,
    PromQL,
    RegoPath,
    Registry,
    ResourceRef,
    SecretRef,
    SlackChannel,
    StateUri,
    Text,
    Ticket,
    Version,
    WaiverTarget,
    fail,
)

API_VERSION = "mlplane.dev/v1"
KIND = "MLSystem"

MAX_MODELS = 2_000
MAX_DATA_SOURCES = 5_000
MAX_SLAS = 5_000


class Spec(BaseModel):
    """Base of every spec object."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )


Classification = Literal["public", "internal", "confidential", "pii", "phi"]
Residency = Literal[
    "global", "eu", "uk", "ch", "us", "ca", "mx", "br", "za", "il", "ae", "bh",
    "in", "sg", "id", "my", "th", "au", "nz", "jp", "kr", "hk", "tw", "cn",
]  # fmt: skip
UniqueNames = Annotated[list[Name], Field(max_length=256)]


def _no_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise fail("duplicate-name", f"{what} lists {formats.quote(value)} twice")
        seen.add(value)


# --- metadata and environments -----------------------------------------------------------------


class Metadata(Spec):
    name: Name
    """The system's name: a DNS-1123 label used in namespaces and resource names."""
    owner: Owner
    """The owning team; alerts route to it unless an SLA names another owner."""
    description: Text | None = None
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=32)] = {}


class KubernetesSettings(Spec):
    context: KubeContext | None = None
    """The kubeconfig context to deploy with (for example kind-mlplane)."""
    namespace: NamespaceName | None = None
    """Defaults to <system>-<environment>."""


class AwsSettings(Spec):
    region: AwsRegion
    account_id: AwsAccountId


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
    """Production environments get the strictest policies; defaults to true for 'prod' and 'production'."""
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

    @model_validator(mode="after")
    def _unique_lineage(self) -> DataSource:
        _no_duplicates(self.derived_from, "derivedFrom")
        return self


# --- models -----------------------------------------------------------------------------------------


class Replicas(Spec):
    min: Annotated[int, Field(ge=0, le=1000)] = 1
    max: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.max is not None and self.min > self.max:
            raise fail(
                "contradiction",
                f"replicas.min ({self.min}) is greater than replicas.max ({self.max})",
                fields=("min", "max"),
            )
        return self


class Autoscaling(Spec):
    metric: Literal["cpu", "memory", "rps", "concurrency"]
    target: Annotated[int, Field(ge=1, le=100_000)]
    """Percent of requests for cpu/memory; requests per second or in-flight requests per replica otherwise."""

    @model_validator(mode="after")
    def _percent(self) -> Autoscaling:
        if self.metric in ("cpu", "memory") and self.target > 100:
            raise fail(
                "out-of-range",
                f"a {self.metric} target is a percentage from 1 to 100, not {self.target}",
            )
        return self


class Resources(Spec):
    cpu: Cpu | None = None
    memory: Memory | None = None
    gpu: Annotated[int, Field(ge=0, le=16)] = 0
    """Whole GPUs per replica."""


class Rollout(Spec):
    strategy: Literal["rolling", "canary", "blueGreen", "shadow"] = "rolling"
    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(max_length=20)] = []
    """Traffic percentages for canary steps, strictly increasing, such as [10, 50]."""
    pause: Duration | None = None
    """How long each canary step (or a blue-green preview) waits before promotion."""

    @model_validator(mode="after")
    def _steps_fit_strategy(self) -> Rollout:
        if self.steps and self.strategy != "canary":
            raise fail(
                "contradiction",
                f"rollout.steps only apply to strategy 'canary', not {self.strategy!r}",
                fields=("steps", "strategy"),
            )
        if self.strategy == "canary" and not self.steps:
            raise fail("missing-field", "a canary rollout needs steps, such as steps: [10, 50]")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise fail(
                "contradiction",
                "rollout.steps must increase strictly, such as [10, 50]",
                fields=("steps",),
            )
        if self.pause is not None and self.strategy in ("rolling", "shadow"):
            raise fail(
                "contradiction",
                f"rollout.pause has no meaning for strategy {self.strategy!r}",
                fields=("pause", "strategy"),
            )
        return self


class Serving(Spec):
    replicas: Replicas = Replicas()
    autoscaling: Autoscaling | None = None
    resources: Resources = Resources()
    rollout: Rollout = Rollout()
    exposure: Literal["internal", "public"] = "internal"
    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    health_path: HttpPath = "/healthz"
    metrics_path: HttpPath = "/metrics"

    @model_validator(mode="after")
    def _autoscaling_needs_room(self) -> Serving:
        maximum = self.replicas.max
        if self.autoscaling is not None and (maximum is None or maximum <= self.replicas.min):
            raise fail(
                "contradiction",
                "autoscaling needs replicas.max greater than replicas.min "
                f"(min {self.replicas.min}, max {maximum if maximum is not None else 'unset'})",
                fields=("autoscaling", "replicas"),
            )
        return self


class Explainability(Spec):
    required: bool
    method: Literal["shap", "lime", "integrated-gradients", "anchors", "counterfactual"] | None = (
        None
    )

    @model_validator(mode="after")
    def _method_when_required(self) -> Explainability:
        if self.required and self.method is None:
            raise fail("missing-field", "explainability.required is true but no method is named")
        return self


class Drift(Spec):
    method: Literal["psi", "ks", "kl", "js", "wasserstein", "chi2"]
    threshold: Annotated[float, Field(gt=0, le=100)]
    features: Annotated[list[Feature], Field(min_length=1, max_length=256)]
    window: Duration = "1d"
    """The reference window the live distribution is compared against."""

    @model_validator(mode="after")
    def _unique_features(self) -> Drift:
        _no_duplicates(self.features, "drift.features")
        return self


class Monitoring(Spec):
    drift: Drift | None = None


class Training(Spec):
    schedule: Cron
    image: Image
    resources: Resources = Resources()
    timeout: Duration = "6h"


ModelFramework = Literal[
    "sklearn", "xgboost", "lightgbm", "catboost", "pytorch", "tensorflow", "onnx",
    "huggingface", "vllm", "custom",
]  # fmt: skip


class Model(Spec):
    framework: ModelFramework
    version: Version
    image: Image
    artifact: ArtifactUri | None = None
    runtime: Literal["generic", "kserve", "triton"] = "generic"
    """The metrics preset: which metric names the serving runtime exposes."""
    inputs: UniqueNames = []
    """Data sources this model reads (at serving or training time)."""
    secrets: UniqueNames = []
    """Names from security.secrets made available to the model."""
    serving: Serving = Serving()
    explainability: Explainability | None = None
    monitoring: Monitoring | None = None
    training: Training | None = None
    owner: Owner | None = None
    description: Text | None = None

    @model_validator(mode="after")
    def _unique_refs(self) -> Model:
        _no_duplicates(self.inputs, "inputs")
        _no_duplicates(self.secrets, "secrets")
        return self


# --- security ---------------------------------------------------------------------------------------


class Encryption(Spec):
    at_rest: Literal["required", "optional"] = "required"
    in_transit: Literal["required", "optional"] = "required"


class NetworkAllow(Spec):
    from_: Annotated[Endpoint, Field(alias="from")]
    to: Endpoint
    ports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], Field(max_length=32)] = []


class Network(Spec):
    default_deny: bool = True
    allow: Annotated[list[NetworkAllow], Field(max_length=512)] = []


class Images(Spec):
    allowed_registries: Annotated[list[Registry], Field(max_length=64)] = []
    require_digest: bool = True


class AccessRule(Spec):
    principal: Principal
    actions: Annotated[
        list[Literal["read", "write", "deploy", "admin"]], Field(min_length=1, max_length=4)
    ]
    resources: Annotated[list[ResourceRef], Field(min_length=1, max_length=256)]


class Secret(Spec):
    ref: SecretRef
    description: Text | None = None


class Security(Spec):
    encryption: Encryption = Encryption()
    network: Network = Network()
    images: Images = Images()
    access: Annotated[list[AccessRule], Field(max_length=1024)] = []
    secrets: Annotated[dict[Name, Secret], Field(max_length=1024)] = {}


# --- SLAs -------------------------------------------------------------------------------------------


class Availability(Spec):
    """Fraction of requests that did not fail (5xx)."""


class Latency(Spec):
    threshold: Duration
    """Requests faster than this are good; must be a bucket boundary of the runtime preset."""


class Freshness(Spec):
    max_age: Duration


class DriftIndicator(Spec):
    threshold: Annotated[float, Field(gt=0, le=100)]
    """A drift score above this counts as bad time."""


class Ratio(Spec):
    errors: PromQL
    total: PromQL


INDICATORS = ("availability", "latency", "freshness", "drift", "ratio")


class Indicator(Spec):
    """Exactly one of the indicator kinds; the string 'availability' is shorthand."""

    availability: Availability | None = None
    latency: Latency | None = None
    freshness: Freshness | None = None
    drift: DriftIndicator | None = None
    ratio: Ratio | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "availability":
            return {"availability": {}}
        if isinstance(value, str):
            raise fail(
                "invalid-value",
                f"unknown indicator {formats.quote(value)}: write 'availability' or a mapping with one of "
                + ", ".join(INDICATORS),
                suggestion=formats.closest(value, INDICATORS),
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Indicator:
        chosen = [name for name in INDICATORS if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise fail(
                "contradiction" if chosen else "missing-field",
                "an indicator has exactly one kind: "
                + ", ".join(INDICATORS)
                + (f" (found {', '.join(chosen)})" if chosen else ""),
                fields=tuple(chosen),
            )
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Editors must accept the ``indicator: availability`` shorthand too."""
        mapping = handler.resolve_ref_schema(handler(core_schema))
        return {"anyOf": [{"const": "availability"}, mapping]}

    @property
    def kind(self) -> str:
        return next(name for name in INDICATORS if getattr(self, name) is not None)


class Sla(Spec):
    objective: Annotated[float, Field(gt=0, lt=100)]
    """Target percentage of good events or good time, such as 99.9."""
    window: Duration = "30d"
    model: Name | None = None
    data_source: Name | None = None
    indicator: Indicator
    owner: Owner | None = None
    description: Text | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> Sla:
        if self.model is not None and self.data_source is not None:
            raise fail(
                "contradiction",
                "an SLA has one subject: set model or dataSource, not both",
                fields=("model", "dataSource"),
            )
        kind = self.indicator.kind
        if kind in ("availability", "latency", "drift") and self.model is None:
            raise fail("missing-field", f"a {kind} SLA needs the model it measures (model: NAME)")
        if kind == "freshness" and self.data_source is None:
            raise fail(
                "missing-field",
                "a freshness SLA needs the data source it measures (dataSource: NAME)",
            )
        return self


# --- alerting, waivers, policies ------------------------------------------------------------------


class Slack(Spec):
    channel: SlackChannel
    webhook_secret: Name
    """Name of the entry in security.secrets that holds the webhook URL."""


class PagerDuty(Spec):
    routing_key_secret: Name


class EmailReceiver(Spec):
    to: Annotated[list[Email], Field(min_length=1, max_length=32)]


class Receiver(Spec):
    slack: Slack | None = None
    pagerduty: PagerDuty | None = None
    email: EmailReceiver | None = None

    @model_validator(mode="after")
    def _some_channel(self) -> Receiver:
        if self.slack is None and self.pagerduty is None and self.email is None:
            raise fail("missing-field", "a receiver needs at least one of slack, pagerduty, email")
        return self


class Route(Spec):
    owner: Owner
    receiver: Name
    severity: Literal["page", "ticket"] | None = None
    """Route only alerts of this severity (both when omitted)."""


class Alerting(Spec):
    receivers: Annotated[dict[Name, Receiver], Field(max_length=256)] = {}
    routes: Annotated[list[Route], Field(max_length=1024)] = []
    default_receiver: Name | None = None


class Waiver(Spec):
    policy: PolicyId
    target: WaiverTarget
    reason: Annotated[LongText, Field(min_length=10)]
    owner: Owner
    expires: Date
    ticket: Ticket | None = None


class PolicyRule(Spec):
    severity: Literal["error", "warning", "info", "off"]


class Policies(Spec):
    rules: Annotated[dict[PolicyId, PolicyRule], Field(max_length=512)] = {}
    rego: Annotated[list[RegoPath], Field(max_length=64)] = []
    """Organisation policies in Rego, as paths relative to the spec directory."""


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
