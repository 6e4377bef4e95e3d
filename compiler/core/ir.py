"""The system model: the resolved spec of one environment, as frozen dataclasses.

Targets, policies and the plan see only this model. Names are resolved (a model's inputs are
data sources that exist, lineage is acyclic and closed transitively), units are parsed (durations
in seconds, CPU in millicores, memory in bytes), overlays are applied, and every node keeps the
``origin`` of the spec element that produced it. ``System.locate`` finds any other spec path of
the effective spec, so a later stage can point at the exact line of a field it objects to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from mlplane.compiler.core.diagnostics import Location, SpecPath

T = TypeVar("T")


def frozen_map(items: Iterable[tuple[str, T]]) -> Mapping[str, T]:
    """A read-only mapping with entries in sorted order (deterministic iteration)."""
    return MappingProxyType(dict(sorted(items)))


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a model element was written: its spec path and location."""

    path: SpecPath
    location: Location


@dataclass(frozen=True, slots=True)
class TargetSettings:
    """The settings of an environment that only its target interprets (its cluster context, its
    cloud account and region, ...). Each target defines a frozen subclass and builds it from the
    spec (``Target.settings`` in ``compiler/core/plugins.py``); the compiler carries it unread.
    This base, with no settings, stands in when the environment's target is not installed."""


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    target: str
    production: bool
    residency: str | None
    namespace: str
    target_settings: TargetSettings
    state: str | None
    origin: Origin


@dataclass(frozen=True, slots=True)
class DataSource:
    name: str
    type: str
    uri: str
    classification: str
    residency: str | None
    retention_seconds: float | None
    encryption: str | None
    freshness_seconds: float | None
    derived_from: tuple[str, ...]
    upstream: tuple[str, ...]
    """Every data source this one is derived from, transitively, sorted."""
    owner: str
    description: str | None
    managed: bool
    """Created and hardened by the target (objectStore only); otherwise only referenced."""
    origin: Origin


@dataclass(frozen=True, slots=True)
class ImageRef:
    text: str
    registry: str | None
    repository: str
    tag: str | None
    digest: str | None


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_millis: int | None
    memory_bytes: int | None
    gpu: int
    cpu: str | None
    memory: str | None
    shm_bytes: int | None = None
    """The spec's memory-backed ``/dev/shm``; None: the target decides."""
    scratch_bytes: int | None = None
    """The spec's scratch space on disk; None: the target decides."""


@dataclass(frozen=True, slots=True)
class Rollout:
    strategy: Literal["rolling", "canary", "blueGreen", "shadow"]
    steps: tuple[int, ...]
    pause_seconds: float | None


@dataclass(frozen=True, slots=True)
class DataCapture:
    destination: str
    """The data source (a managed objectStore) that receives the captured traffic."""
    sampling_percentage: int


@dataclass(frozen=True, slots=True)
class IngressTls:
    """Exactly one is set: an existing Secret, a cert-manager Issuer or ClusterIssuer."""

    secret_name: str | None
    issuer: str | None
    cluster_issuer: str | None


@dataclass(frozen=True, slots=True)
class Ingress:
    host: str
    path: str
    class_name: str
    tls: IngressTls | None


@dataclass(frozen=True, slots=True)
class Serving:
    replicas_min: int
    replicas_max: int
    autoscaling_metric: str | None
    autoscaling_target: int | None
    resources: Resources
    rollout: Rollout
    exposure: Literal["internal", "public"]
    port: int
    health_path: str
    metrics_path: str
    instance_type: str | None
    data_capture: DataCapture | None
    ingress: Ingress | None = None
    """Only for exposure public (the schema refuses it otherwise)."""


@dataclass(frozen=True, slots=True)
class DriftJob:
    """The job that computes the drift scores (``python -m mlplane.drift``)."""

    image: ImageRef
    reference: str
    current: str
    format: str
    timestamp_column: str | None
    schedule: str | None
    """None: once per window (the target derives the schedule)."""
    pushgateway: str
    max_rows: int
    resources: Resources
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class Drift:
    method: str
    threshold: float
    features: tuple[str, ...]
    window_seconds: float
    job: DriftJob | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    image: ImageRef
    command: tuple[str, ...]
    metric: str
    threshold: float
    goal: str
    promote: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Training:
    schedule: str
    image: ImageRef
    resources: Resources
    timeout_seconds: float
    instance_type: str | None = None
    output: str | None = None
    engine: str = "job"
    command: tuple[str, ...] = ()
    evaluation: Evaluation | None = None
    tensorboard: bool = False
    logs: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Scheduled offline scoring: ``outputs`` are data sources derived from ``inputs`` and
    from the model's own data (their ``upstream`` includes both)."""

    schedule: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    image: ImageRef
    """The scoring image (the model's unless the spec names one)."""
    command: tuple[str, ...]
    resources: Resources
    parallelism: int
    timeout_seconds: float
    retries: int
    content_type: str
    split: Literal["line", "none"]
    instance_type: str | None


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    framework: str
    version: str
    image: ImageRef
    artifact: str | None
    runtime: str
    inputs: tuple[str, ...]
    upstream: tuple[str, ...]
    """Every data source the model reads, directly or through lineage, sorted."""
    secrets: tuple[str, ...]
    serving: Serving
    explainability_required: bool
    explainability_method: str | None
    drift: Drift | None
    training: Training | None
    owner: str
    description: str | None
    origin: Origin
    batch: Batch | None = None


@dataclass(frozen=True, slots=True)
class NetworkAllow:
    source: str
    destination: str
    ports: tuple[int, ...]
    origin: Origin


@dataclass(frozen=True, slots=True)
class AccessRule:
    principal: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    origin: Origin


@dataclass(frozen=True, slots=True)
class Secret:
    name: str
    ref: str
    scheme: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class Security:
    encryption_at_rest: str
    encryption_in_transit: str
    default_deny: bool
    allow: tuple[NetworkAllow, ...]
    allowed_registries: tuple[str, ...]
    require_digest: bool
    access: tuple[AccessRule, ...]
    secrets: Mapping[str, Secret]


@dataclass(frozen=True, slots=True)
class Indicator:
    kind: Literal["availability", "latency", "freshness", "drift", "ratio"]
    latency_threshold_seconds: float | None = None
    max_age_seconds: float | None = None
    drift_threshold: float | None = None
    ratio_errors: str | None = None
    ratio_total: str | None = None


@dataclass(frozen=True, slots=True)
class Sla:
    name: str
    objective: float
    window_seconds: float
    subject_kind: Literal["model", "dataSource", "none"]
    subject: str | None
    indicator: Indicator
    owner: str
    description: str | None
    origin: Origin


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    slack_channel: str | None
    slack_webhook_secret: str | None
    pagerduty_secret: str | None
    email: tuple[str, ...]
    origin: Origin
    slack_workspace_id: str | None = None
    """AWS Chatbot's Slack workspace and channel IDs (the aws target's way to reach Slack)."""
    slack_channel_id: str | None = None

    @property
    def pages(self) -> bool:
        """True when a notification wakes someone up (PagerDuty)."""
        return self.pagerduty_secret is not None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The spec secrets this receiver's integrations read."""
        found = (self.slack_webhook_secret, self.pagerduty_secret)
        return tuple(name for name in found if name is not None)


@dataclass(frozen=True, slots=True)
class Route:
    owner: str
    receiver: str
    severity: str | None
    origin: Origin


@dataclass(frozen=True, slots=True)
class Smtp:
    """How Alertmanager sends e-mail (``alerting.smtp``)."""

    smarthost: str
    sender: str
    auth_username: str | None
    auth_password_secret: str | None
    require_tls: bool


@dataclass(frozen=True, slots=True)
class Alerting:
    receivers: Mapping[str, Receiver]
    routes: tuple[Route, ...]
    default_receiver: str | None
    smtp: Smtp | None = None
    page_outside_production: bool = False


@dataclass(frozen=True, slots=True)
class Waiver:
    policy: str
    target: str
    reason: str
    owner: str
    expires: str
    ticket: str | None
    origin: Origin


@dataclass(frozen=True, slots=True)
class PolicySettings:
    severities: Mapping[str, str]
    """Rule id -> the severity ``policies.rules.<id>.severity`` sets."""
    rego: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    """Rule id -> the parameters ``policies.rules.<id>.params`` sets, as written (the policy
    engine checks them against the rule's declared parameters)."""


@dataclass(frozen=True, slots=True)
class CiRole:
    """The cloud role CI assumes through OpenID Connect for one environment (the CI providers,
    ``targets/ci``, log in with it); ``origin`` is where ``ci.environments.<env>`` declares it,
    ``region`` is the declared one or the one the environment's target deploys into."""

    role_arn: str
    region: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class CiEnvironment:
    """One environment as the CI workflows see it (declared order is kept in ``Ci``)."""

    name: str
    production: bool
    target: str
    state_scheme: str | None
    """The scheme of the Pulumi state backend (None: the embedded local default)."""
    apply: Literal["auto", "manual"] | None
    """How CI applies it after a merge; None: only validated and planned."""
    role: CiRole | None


@dataclass(frozen=True, slots=True)
class Ci:
    """The ``ci:`` section with every default resolved; the same for every environment."""

    provider: Literal["github", "gitlab"]
    default_branch: str
    spec_path: str | None
    """None: ``mlplane ci`` derives it from where the spec lies in the repository."""
    python: str
    mlplane_version: str
    mlplane_requirement: str
    """What CI gives pip: ``mlplane==<version>``, or ``mlplane @ git+<url>@<commit>``."""
    runner: tuple[str, ...]
    """Runner labels; empty: the provider's default."""
    environments: tuple[CiEnvironment, ...]
    """Every environment, in the order the spec declares them."""
    drift_schedule: str
    gitlab_image: str | None
    """None: the pinned official python image of ``python``."""


@dataclass(frozen=True, slots=True)
class System:
    """One ML system resolved for one environment."""

    name: str
    owner: str
    description: str | None
    labels: Mapping[str, str]
    environment: Environment
    data_sources: Mapping[str, DataSource]
    models: Mapping[str, Model]
    security: Security
    slas: Mapping[str, Sla]
    alerting: Alerting
    waivers: tuple[Waiver, ...]
    policies: PolicySettings
    ci: Ci
    origins: Mapping[SpecPath, Location]
    """Positions of every path of the effective spec (keys preferred), for later diagnostics."""

    def origin_of(self, path: SpecPath) -> Origin:
        """The origin of ``path``, or of its nearest ancestor written in the spec (the
        environment's when none is): where a target points for an element it generated."""
        probe = path
        while probe:
            location = self.origins.get(probe)
            if location is not None:
                return Origin(probe, location)
            probe = probe[:-1]
        return self.environment.origin

    def locate(self, path: SpecPath) -> Location | None:
        """The location of ``path`` or of its nearest written ancestor."""
        probe = path
        while True:
            found = self.origins.get(probe)
            if found is not None or not probe:
                return found
            probe = probe[:-1]
