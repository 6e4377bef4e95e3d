"""Security, SLAs, alerting, waivers and policy settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from mlplane.schema import formats
from mlplane.schema.base import Spec
from mlplane.schema.types import (
    Date,
    Duration,
    Email,
    Endpoint,
    LongText,
    Name,
    Owner,
    PolicyId,
    Principal,
    PromQL,
    Registry,
    RegoPath,
    ResourceRef,
    SecretRef,
    SlackChannel,
    SlackId,
    Smarthost,
    Text,
    Ticket,
    WaiverTarget,
    fail,
)

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


class SlackChatbot(Spec):
    """Where AWS Chatbot posts for this receiver (the aws target; the workspace must have been
    authorised for AWS Chatbot in the AWS console once)."""

    workspace_id: SlackId
    """The Slack workspace (team) ID, such as T0123ABCD."""
    channel_id: SlackId
    """The Slack channel ID, such as C0123ABCD (a name is not accepted by AWS Chatbot)."""


class Slack(Spec):
    channel: SlackChannel
    webhook_secret: Name
    """Name of the entry in security.secrets that holds the webhook URL."""
    chatbot: SlackChatbot | None = None
    """The same channel for AWS Chatbot; required on the aws target, which cannot post to an
    incoming webhook."""


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


class Smtp(Spec):
    """How Alertmanager sends e-mail; required when a receiver has ``email``."""

    smarthost: Smarthost
    """The SMTP server as HOST:PORT (587 for STARTTLS submission)."""
    from_: Annotated[Email, Field(alias="from")]
    auth_username: Text | None = None
    auth_password_secret: Name | None = None
    """Name of the entry in security.secrets that holds the SMTP password (never the value)."""
    require_tls: bool = True
    """Refuse to send unless the server offers STARTTLS."""

    @model_validator(mode="after")
    def _auth_pair(self) -> Smtp:
        if (self.auth_username is None) != (self.auth_password_secret is None):
            raise fail(
                "missing-field",
                "authUsername and authPasswordSecret go together: give both or neither",
            )
        return self


class Alerting(Spec):
    receivers: Annotated[dict[Name, Receiver], Field(max_length=256)] = {}
    routes: Annotated[list[Route], Field(max_length=1024)] = []
    default_receiver: Name | None = None
    smtp: Smtp | None = None
    page_outside_production: bool = False
    """Let ``severity: page`` alerts page in environments that are not production; by default
    they go where the owner's tickets go."""


class Waiver(Spec):
    policy: PolicyId
    target: WaiverTarget
    reason: Annotated[LongText, Field(min_length=10)]
    owner: Owner
    expires: Date
    ticket: Ticket | None = None


class PolicyRule(Spec):
    severity: Literal["error", "warning", "info", "off"] | None = None
    """The rule's severity here (its default when omitted); a mandatory rule only goes up."""
    params: Annotated[dict[str, Any], Field(max_length=64)] | None = None
    """The rule's parameters (thresholds that are a policy decision), checked against the
    parameters the rule declares (``mlplane policies explain ID``); unset ones keep their
    defaults."""


class Policies(Spec):
    rules: Annotated[dict[PolicyId, PolicyRule], Field(max_length=512)] = {}
    rego: Annotated[list[RegoPath], Field(max_length=64)] = []
    """Organisation policies in Rego, as paths relative to the spec directory."""
