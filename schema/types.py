"""Scalar types of the mlplane language, each with one clear error message.

Every validator raises ``PydanticCustomError`` whose *type* is a registered diagnostic code
(``invalid-duration``, ``invalid-name`` ...), so the compiler maps schema errors to diagnostics
without guessing. The JSON Schema of each type documents the same rule for editors.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from mlplane.schema import formats, promql_shape

Check = Callable[[str], str]


def _string_type(check: Check, schema: dict[str, Any]) -> Any:
    """An ``Annotated[str, ...]`` that runs ``check`` and documents ``schema``."""
    return Annotated[
        str, AfterValidator(remembered(check)), WithJsonSchema({"type": "string", **schema})
    ]


MEMO_LIMIT = 1 << 14
"""Values a remembered check keeps at most; when full it forgets them all and starts again."""
MEMO_CHARS = 512
"""Longer values are checked every time, never kept: a long-running process that validates
many specs holds at most ``MEMO_LIMIT`` short strings per check. (The 1,000-model benchmark
spec keeps 5,654 names, the most of any check, none longer than 182 characters.)"""


def remembered(check: Check) -> Check:
    """``check`` remembering the values it accepted. Every check is a function of the value
    alone, and a spec is validated once as written and again for each environment with
    overrides, where almost every value comes back unchanged; a refused value is checked again
    each time (it raises, with the same message)."""
    accepted: dict[str, str] = {}

    def run(value: str) -> str:
        known = accepted.get(value)
        if known is not None:
            return known
        checked = check(value)
        if len(value) <= MEMO_CHARS:
            if len(accepted) >= MEMO_LIMIT:
                accepted.clear()
            accepted[value] = checked
        return checked

    return run


def fail(code: str, message: str, **context: Any) -> PydanticCustomError:
    """A schema error whose type is the diagnostic code. pydantic-core has no escape for braces
    in a message template, so the template is just ``{message}`` and the text (which may quote
    ``{{`` from the spec) travels in the context, substituted last and so verbatim."""
    return PydanticCustomError(code, "{message}", {**context, "message": message})


def service_url_parts(value: str, names: str) -> SplitResult | None:
    """The parts of a service's URL (None: not a URL, or a bad host or port). Credentials in
    it are refused (``inline-secret``) without echoing them; ``names`` says what the URL names
    instead."""
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None:
        raise fail("inline-secret", f"credentials must not be written in a URI; {names}")
    return parts


def _regex_type(
    pattern: re.Pattern[str],
    what: str,
    rule: str,
    *,
    max_length: int | None = None,
    schema: dict[str, Any],
) -> Any:
    """A string type that must match ``pattern`` (and fit ``max_length``), with one message:
    ``invalid <what> "<value>": <rule>``; ``schema`` documents the same rule for editors."""

    def check(value: str) -> str:
        if not pattern.match(value) or (max_length is not None and len(value) > max_length):
            raise fail("invalid-format", f"invalid {what} {formats.quote(value)}: {rule}")
        return value

    return _string_type(check, schema)


# --- names ------------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RESERVED_WORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


def check_name(value: str, limit: int = 40) -> str:
    if not _DNS_LABEL.match(value) or len(value) > limit:
        raise fail(
            "invalid-name",
            f"invalid name {formats.quote(value)}: {formats.dns_label_rule(limit)}",
            suggestion=formats.dns_suggestion(value, limit),
        )
    if value in RESERVED_WORDS:
        raise fail(
            "reserved-name",
            f"name {formats.quote(value)} is a reserved word in generated code; choose another",
        )
    return value


def _check_env_name(value: str) -> str:
    return check_name(value, 20)


Name = _string_type(
    check_name,
    {
        "pattern": _DNS_LABEL.pattern,
        "maxLength": 40,
        "description": "A DNS-1123 label, at most 40 characters.",
    },
)
EnvName = _string_type(
    _check_env_name,
    {
        "pattern": _DNS_LABEL.pattern,
        "maxLength": 20,
        "description": "A DNS-1123 label, at most 20 characters.",
    },
)
NamespaceName = _string_type(
    lambda v: check_name(v, 63),
    {"pattern": _DNS_LABEL.pattern, "maxLength": 63, "description": "A Kubernetes namespace name."},
)

_TEAM = re.compile(r"^[a-z0-9]([-a-z0-9._]*[a-z0-9])?(@[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$")


def _check_owner(value: str) -> str:
    if not _TEAM.match(value) or len(value) > 128:
        raise fail(
            "invalid-format",
            f"invalid owner {formats.quote(value)}: use a team slug such as 'risk-ml' "
            "or an e-mail address such as 'dpo@acme.example' (lower case)",
        )
    return value


Owner = _string_type(
    _check_owner,
    {
        "pattern": _TEAM.pattern,
        "maxLength": 128,
        "description": "A team slug or an e-mail address.",
    },
)

# --- free text -------------------------------------------------------------------------------


def check_text(value: str, limit: int = 1024) -> str:
    if len(value) > limit:
        raise fail("too-long", f"text is {len(value)} characters long; the limit is {limit}")
    marker = formats.template_marker(value)
    if marker is not None:
        raise fail(
            "invalid-text",
            f"text must not contain {formats.quote(marker)}: spec text ends up in CI workflows "
            "and alert templates, where it would be evaluated",
        )
    return value


Text = _string_type(
    check_text, {"maxLength": 1024, "description": "Free text; no '{{', '}}' or '${{'."}
)
LongText = _string_type(
    lambda v: check_text(v, 4096),
    {"maxLength": 4096, "description": "Free text (up to 4096 characters)."},
)

# --- durations, quantities, schedules, dates --------------------------------------------------


def check_duration(value: str) -> str:
    if formats.parse_duration(value) is None:
        raise fail(
            "invalid-duration",
            f"invalid duration {formats.quote(value)}: {formats.DURATION_FORMS}",
        )
    return value


Duration = _string_type(
    check_duration,
    {
        "pattern": formats.DURATION_PATTERN,
        "description": "A duration: 30s, 5m, 1h, 30d, 2w or 1h30m.",
    },
)


def _quantity_input(value: Any) -> Any:
    """Kubernetes accepts ``cpu: 2`` as well as ``cpu: "2"``; integers become strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_cpu(value: str) -> str:
    if formats.parse_cpu(value) is None:
        raise fail(
            "invalid-quantity", f"invalid CPU quantity {formats.quote(value)}: {formats.CPU_FORMS}"
        )
    return value


def _check_memory(value: str) -> str:
    if formats.parse_memory(value) is None:
        raise fail(
            "invalid-quantity",
            f"invalid memory quantity {formats.quote(value)}: {formats.MEMORY_FORMS}",
            suggestion=formats.memory_suggestion(value),
        )
    return value


Cpu = Annotated[
    str,
    BeforeValidator(_quantity_input),
    AfterValidator(remembered(_check_cpu)),
    WithJsonSchema(
        {
            "type": ["string", "integer"],
            "pattern": formats.CPU_PATTERN,
            "description": "CPU: '500m', '1', '2.5'.",
        }
    ),
]
Memory = Annotated[
    str,
    BeforeValidator(_quantity_input),
    AfterValidator(remembered(_check_memory)),
    WithJsonSchema(
        {
            "type": ["string", "integer"],
            "pattern": formats.MEMORY_PATTERN,
            "description": "Memory: '512Mi', '2Gi'.",
        }
    ),
]


def _check_cron(value: str) -> str:
    problem = formats.cron_problem(value)
    if problem is not None:
        raise fail("invalid-cron", f"invalid cron schedule {formats.quote(value)}: {problem}")
    return value


Cron = _string_type(
    _check_cron,
    {
        "description": "A five-field cron schedule ('0 3 * * 0') or @hourly, @daily, @weekly, @monthly, @yearly."
    },
)


def _check_date(value: str) -> str:
    if formats.parse_date(value) is None:
        raise fail(
            "invalid-date",
            f"invalid date {formats.quote(value)}: write YYYY-MM-DD, e.g. 2027-03-31",
        )
    return value


Date = _string_type(_check_date, {"format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"})

# --- references to the outside world ------------------------------------------------------------


def _check_image(value: str) -> str:
    if formats.parse_image(value) is None:
        raise fail(
            "invalid-image",
            f"invalid image reference {formats.quote(value)}: {formats.IMAGE_FORMS}",
        )
    return value


Image = _string_type(
    _check_image,
    {"maxLength": 512, "description": "An OCI image: registry/repository[:tag][@sha256:<64 hex>]."},
)


def _check_registry(value: str) -> str:
    if not formats.REGISTRY_PREFIX_RE.match(value):
        raise fail(
            "invalid-image",
            f"invalid registry prefix {formats.quote(value)}: write a host with an optional "
            "repository path, such as 'ghcr.io/acme' or '123456789012.dkr.ecr.eu-west-1.amazonaws.com'",
        )
    return value


Registry = _string_type(_check_registry, {"pattern": formats.REGISTRY_PREFIX_RE.pattern})


def _uri_checker(kind: str) -> Check:
    def check(value: str) -> str:
        problem = formats.uri_problem(value, kind)
        if problem is not None:
            code = "inline-secret" if problem.startswith("credentials") else "invalid-uri"
            raise fail(code, problem)
        return value

    return check


DataUri = _string_type(
    _uri_checker("data"),
    {"maxLength": 2048, "description": "URI of a data source: " + ", ".join(formats.DATA_SCHEMES)},
)
ArtifactUri = _string_type(
    _uri_checker("artifact"),
    {
        "maxLength": 2048,
        "description": "URI of a model artifact: " + ", ".join(formats.ARTIFACT_SCHEMES),
    },
)
StateUri = _string_type(
    _uri_checker("state"),
    {"maxLength": 2048, "description": "Pulumi state backend: " + ", ".join(formats.STATE_SCHEMES)},
)


def _check_secret_ref(value: str) -> str:
    problem = formats.secret_ref_problem(value)
    if problem is not None:
        # without a scheme the value is most likely the secret itself: report it as one, so
        # that renderers do not quote the source line
        scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value)
        raise fail("invalid-secret-ref" if scheme else "inline-secret", problem)
    return value


SecretRef = _string_type(
    _check_secret_ref,
    {"description": "A secret reference: " + ", ".join(formats.SECRET_REF_FORMS)},
)


def _check_promql(value: str) -> str:
    problem = promql_shape.check(value)
    if problem is not None:
        raise fail(problem.code, problem.message, hint=problem.hint)
    return value


PromQL = _string_type(
    _check_promql,
    {
        "maxLength": 4096,
        "description": "A PromQL expression; {{window}} marks the range, e.g. [{{window}}].",
    },
)

# --- labels, policy ids, principals -----------------------------------------------------------


def _check_label_key(value: str) -> str:
    if not formats.label_key_ok(value):
        raise fail(
            "invalid-label", f"invalid label key {formats.quote(value)}: {formats.LABEL_KEY_RULE}"
        )
    return value


def _check_label_value(value: str) -> str:
    if not formats.LABEL_VALUE_RE.match(value):
        raise fail(
            "invalid-label",
            f"invalid label value {formats.quote(value)}: {formats.LABEL_VALUE_RULE}",
        )
    return value


LabelKey = _string_type(_check_label_key, {"maxLength": 317})
LabelValue = _string_type(
    _check_label_value, {"pattern": formats.LABEL_VALUE_RE.pattern, "maxLength": 63}
)

POLICY_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*\.[a-z0-9]+(-[a-z0-9]+)*$")


PolicyId = _regex_type(
    POLICY_ID,
    "policy id",
    "write domain.rule-name, e.g. 'data.retention-bounded'",
    max_length=80,
    schema={"pattern": POLICY_ID.pattern, "maxLength": 80},
)

_PRINCIPAL = re.compile(
    r"^(group|user|serviceAccount|role):[A-Za-z0-9*][A-Za-z0-9._@:/*+-]{0,199}$"
)


Principal = _regex_type(
    _PRINCIPAL,
    "principal",
    "write group:NAME, user:EMAIL, serviceAccount:NAME or role:NAME",
    schema={"pattern": _PRINCIPAL.pattern},
)

_SPEC_REF = re.compile(r"^(\*|(dataSources|models|slas)\.(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?))$")


ResourceRef = _regex_type(
    _SPEC_REF,
    "resource",
    "write dataSources.NAME, models.NAME or slas.NAME (a '*' stands for all)",
    schema={"pattern": _SPEC_REF.pattern},
)


def _check_endpoint(value: str) -> str:
    problem = formats.endpoint_problem(value)
    if problem is not None:
        raise fail("invalid-format", problem)
    return value


Endpoint = _string_type(
    _check_endpoint,
    {
        "description": "models.NAME, dataSources.NAME, namespace:NAME, cidr:ADDRESS/PREFIX or 'internet'."
    },
)

_WAIVER_TARGET = re.compile(r"^[A-Za-z0-9*][A-Za-z0-9_.*\[\]-]{0,299}$")


WaiverTarget = _regex_type(
    _WAIVER_TARGET,
    "waiver target",
    "write a spec path such as 'dataSources.card-transactions' or 'models.*'",
    schema={"pattern": _WAIVER_TARGET.pattern},
)

_FEATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")


Feature = _regex_type(
    _FEATURE,
    "feature name",
    "letters, digits, '_', '.', ':' and '-', starting with a letter or '_' (at most 128 characters)",
    schema={"pattern": _FEATURE.pattern},
)

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")


Version = _regex_type(
    _VERSION,
    "version",
    "letters, digits, '.', '+', '_' and '-' (at most 64 characters), such as '4.2.0'",
    schema={"pattern": _VERSION.pattern},
)

_KUBE_CONTEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:/-]{0,252}$")


KubeContext = _regex_type(
    _KUBE_CONTEXT,
    "kubeconfig context",
    "letters, digits and . _ @ : / - (no leading '-')",
    schema={"pattern": _KUBE_CONTEXT.pattern},
)

_HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,255}$")


def _check_http_path(value: str) -> str:
    if not _HTTP_PATH.match(value) or "//" in value or "/../" in value + "/":
        raise fail(
            "invalid-format",
            f"invalid HTTP path {formats.quote(value)}: start with '/', use letters, digits and . _ ~ / -",
        )
    return value


HttpPath = _string_type(_check_http_path, {"pattern": _HTTP_PATH.pattern})

_HOSTNAME = re.compile(
    r"^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)


Hostname = _regex_type(
    _HOSTNAME,
    "host name",
    "write a lower-case DNS name such as models.acme.example ('*.' only as its first label)",
    max_length=253,
    schema={"pattern": _HOSTNAME.pattern, "maxLength": 253},
)


def _check_address_peer(value: str) -> str:
    problem = formats.endpoint_problem(value)
    if problem is None and not value.startswith(("models.", "dataSources.")):
        return value
    raise fail(
        "invalid-format",
        problem
        or f"invalid address {formats.quote(value)}: write cidr:ADDRESS/PREFIX, "
        "namespace:NAME or internet",
    )


AddressPeer = _string_type(
    _check_address_peer,
    {"description": "cidr:ADDRESS/PREFIX, namespace:NAME or 'internet' (public addresses)."},
)

_SLACK_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")


SlackChannel = _regex_type(
    _SLACK_CHANNEL,
    "Slack channel",
    "write '#team-alerts'",
    schema={"pattern": _SLACK_CHANNEL.pattern},
)

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _check_email(value: str) -> str:
    if not _EMAIL.match(value) or len(value) > 254:
        raise fail("invalid-format", f"invalid e-mail address {formats.quote(value)}")
    return value


Email = _string_type(_check_email, {"format": "email"})


def _check_aws_region(value: str) -> str:
    if value not in formats.AWS_REGIONS:
        raise fail(
            "invalid-value",
            f"unknown AWS region {formats.quote(value)}: write a region code such as "
            "'eu-west-1' or 'us-east-1'",
            hint=_region_hint(value),
            allowed=sorted(formats.AWS_REGIONS),
        )
    return value


def _region_hint(value: str) -> str | None:
    found = formats.closest_aws_region(value)
    return f"did you mean {found[0]!r} ({found[1]})?" if found is not None else None


AwsRegion = _string_type(_check_aws_region, {"enum": sorted(formats.AWS_REGIONS)})

_ACCOUNT = re.compile(r"^[0-9]{12}$")


AwsAccountId = _regex_type(
    _ACCOUNT, "AWS account id", "twelve digits, quoted", schema={"pattern": _ACCOUNT.pattern}
)

_REGO_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,255}\.rego$")


def _check_rego_path(value: str) -> str:
    if ".." in value.split("/"):
        raise fail(
            "path-outside-root",
            f"policy file {formats.quote(value)} leaves the spec directory: '..' is not allowed",
        )
    if not _REGO_PATH.match(value):
        raise fail(
            "invalid-format",
            f"invalid policy file {formats.quote(value)}: a relative path inside the spec directory "
            "ending in .rego, such as 'policies/require-owner.rego' (no '..', no leading '/')",
        )
    return value


RegoPath = _string_type(_check_rego_path, {"pattern": _REGO_PATH.pattern, "maxLength": 261})

_TICKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./#-]{0,99}$")


Ticket = _regex_type(
    _TICKET,
    "ticket",
    "an issue key or number such as 'RISK-142' or '#1234' (letters, digits and _ . / # -)",
    schema={"pattern": _TICKET.pattern, "maxLength": 100},
)

# --- AWS identifiers (environments.<env>.aws, models.<m>.serving.instanceType) -------------------

_SUBNET = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
SubnetId = _regex_type(
    _SUBNET,
    "subnet id",
    "write 'subnet-' and 8 or 17 lower-case hex digits, such as 'subnet-0a1b2c3d4e5f60718'",
    schema={"pattern": _SUBNET.pattern},
)

_SECURITY_GROUP = re.compile(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")
SecurityGroupId = _regex_type(
    _SECURITY_GROUP,
    "security group id",
    "write 'sg-' and 8 or 17 lower-case hex digits, such as 'sg-0a1b2c3d4e5f60718'",
    schema={"pattern": _SECURITY_GROUP.pattern},
)

_INSTANCE_TYPE = re.compile(r"^ml\.[a-z][a-z0-9-]{0,15}\.[0-9]{0,3}x?(small|medium|large|xlarge)$")
InstanceType = _regex_type(
    _INSTANCE_TYPE,
    "SageMaker instance type",
    "write ml.<family>.<size>, such as 'ml.m5.xlarge' or 'ml.g5.2xlarge'",
    max_length=40,
    schema={"pattern": _INSTANCE_TYPE.pattern, "maxLength": 40},
)

_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")
MediaType = _regex_type(
    _MEDIA_TYPE,
    "media type",
    "write type/subtype in lower case, such as 'text/csv' or 'application/jsonlines'",
    schema={"pattern": _MEDIA_TYPE.pattern, "maxLength": 127},
)


# --- alert delivery -----------------------------------------------------------------------

_SMARTHOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:[0-9]{1,5}$")
_SLACK_ID = re.compile(r"^[A-Z0-9]{1,255}$")

Smarthost = _regex_type(
    _SMARTHOST,
    "SMTP smarthost",
    "write HOST:PORT, such as smtp.example.com:587",
    schema={"pattern": _SMARTHOST.pattern},
)
SlackId = _regex_type(
    _SLACK_ID,
    "Slack ID",
    "write the ID Slack shows for the workspace (T...) or channel (C...), in capitals",
    schema={"pattern": _SLACK_ID.pattern},
)
