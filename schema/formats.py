"""Parsers for the small formats inside spec strings, shared by the schema and the compiler.

Each parser returns ``None`` (or a problem sentence) instead of raising, so callers decide how
to report. Nothing here reads files, the network or the clock.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import ipaddress
import json
import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from urllib.parse import urlsplit

# --- quoting and suggestions ----------------------------------------------------------------------


def quote(value: str, limit: int = 80) -> str:
    """Quote user text for a message: JSON escapes make control characters visible."""
    shown = value if len(value) <= limit else value[: limit - 1] + "…"
    return json.dumps(shown, ensure_ascii=True)


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The most similar choice, for "did you mean …?" hints."""
    found = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    if found:
        return found[0]
    lowered = {choice.lower(): choice for choice in choices}
    return lowered.get(value.lower())


def dns_label_rule(limit: int) -> str:
    return (
        f"use at most {limit} characters of lower-case letters, digits and '-', "
        "starting and ending with a letter or digit (DNS-1123 label)"
    )


def dns_suggestion(value: str, limit: int) -> str | None:
    """A valid name close to ``value`` (``Fraud_Model`` -> ``fraud-model``), if one exists.
    Accents are dropped (``scorér`` -> ``scorer``); other non-ASCII letters, such as the Cyrillic
    look-alike in ``ѕcorer``, get no suggestion rather than a misleading one (``corer``)."""
    decomposed = "".join(
        c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)
    )
    if not decomposed.isascii():
        return None
    candidate = re.sub(r"[^a-z0-9-]+", "-", decomposed.lower()).strip("-")
    candidate = re.sub(r"-{2,}", "-", candidate)[:limit].strip("-")
    if candidate and candidate != value and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", candidate):
        return candidate
    return None


_TEMPLATE_MARKERS = ("${{", "{{", "}}", "{%", "%}")


def template_marker(value: str) -> str | None:
    """The first template or CI-expression marker in free text, if any."""
    for marker in _TEMPLATE_MARKERS:
        if marker in value:
            return marker
    return None


# --- durations ----------------------------------------------------------------------------------

DURATION_PATTERN = r"^(?=\d)(\d+w)?(\d+d)?(\d+h)?(\d+m(?!s))?(\d+s)?(\d+ms)?$"
_DURATION_RE = re.compile(
    r"^(?=\d)(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNIT_MS = (604_800_000, 86_400_000, 3_600_000, 60_000, 1_000, 1)
DURATION_FORMS = (
    "write a whole number and a unit, such as 30s, 5m, 1h, 30d or 2w "
    "(units ms, s, m, h, d, w; combine them largest first, as in 1h30m)"
)
MAX_DURATION_MS = 10 * 365 * 86_400_000


@lru_cache(maxsize=1 << 12)  # a spec repeats a few windows and timeouts thousands of times
def parse_duration(value: str) -> int | None:
    """Milliseconds in a Prometheus-style duration, or None. Zero and >10 years are rejected."""
    match = _DURATION_RE.match(value)
    if match is None or len(value) > 32:
        return None
    total = sum(
        int(part) * unit for part, unit in zip(match.groups(), _UNIT_MS, strict=True) if part
    )
    if total <= 0 or total > MAX_DURATION_MS:
        return None
    return total


def duration_seconds(value: str) -> float:
    parsed = parse_duration(value)
    if parsed is None:
        raise ValueError(f"not a duration: {value!r}")
    return parsed / 1000


# --- quantities ---------------------------------------------------------------------------------

CPU_PATTERN = r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$"
_CPU_RE = re.compile(CPU_PATTERN)
CPU_FORMS = "write cores as '1', '2.5' or millicores as '500m' (at most 256 cores)"
MEMORY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
_MEMORY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
MEMORY_FORMS = (
    "write bytes with a suffix: Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000), "
    "such as '512Mi' or '2Gi' (at most 4Ti)"
)
_MEMORY_FACTOR = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def parse_cpu(value: str) -> Decimal | None:
    """Cores as a Decimal, or None. ``500m`` -> 0.5."""
    if not _CPU_RE.match(value) or len(value) > 16:
        return None
    try:
        cores = Decimal(value[:-1]) / 1000 if value.endswith("m") else Decimal(value)
    except InvalidOperation:
        return None
    if cores <= 0 or cores > 256:
        return None
    return cores


def parse_memory(value: str) -> int | None:
    """Bytes, or None."""
    match = _MEMORY_RE.match(value)
    if match is None or len(value) > 24:
        return None
    number, suffix = match.groups()
    total = int(Decimal(number) * _MEMORY_FACTOR[suffix])
    if total <= 0 or total > 4 * 2**40:
        return None
    return total


def memory_suggestion(value: str) -> str | None:
    """``2GB`` -> ``2Gi``; ``512mb`` -> ``512Mi``."""
    match = re.match(r"^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT])[iI]?[bB]?$", value.strip())
    if match is None:
        return None
    return f"{match.group(1)}{match.group(2).upper()}i"


# --- cron -----------------------------------------------------------------------------------------

_CRON_MACROS = frozenset(
    {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
)
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


def _cron_value(text: str, low: int, high: int, names: dict[str, int]) -> int | None:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit() or len(text) > 2:
        return None
    number = int(text)
    return number if low <= number <= high else None


def _cron_field_problem(text: str, field: tuple[str, int, int, dict[str, int]]) -> str | None:
    name, low, high, names = field
    for item in text.split(","):
        base, _, step = item.partition("/")
        if step and (not step.isdigit() or not 1 <= int(step) <= high):
            return f"step {quote(step)} in the {name} field must be a number from 1 to {high}"
        if base == "*":
            continue
        bounds = base.split("-")
        values = [_cron_value(b, low, high, names) for b in bounds]
        if len(bounds) > 2 or any(v is None for v in values):
            return f"{quote(item)} is not valid in the {name} field (allowed {low}-{high})"
        if (
            len(values) == 2
            and values[0] is not None
            and values[1] is not None
            and values[0] > values[1]
        ):
            return f"range {quote(base)} in the {name} field runs backwards"
    return None


def cron_problem(value: str) -> str | None:
    """None when ``value`` is a valid five-field Kubernetes CronJob schedule."""
    if value in _CRON_MACROS:
        return None
    if value.startswith(("TZ=", "CRON_TZ=")):
        return "time zones inside the schedule are not supported by Kubernetes; use UTC"
    parts = value.split()
    if len(parts) != 5:
        return (
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}; "
            "for example '0 3 * * 0', or @hourly, @daily, @weekly, @monthly, @yearly"
        )
    for text, field in zip(parts, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(text, field)
        if problem is not None:
            return problem
    return None


CRON_MACRO_FIELDS = {
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}  # fmt: skip
"""The five fields each macro stands for (Kubernetes and robfig/cron agree)."""


def cron_fields(value: str) -> list[str]:
    """The five fields of a valid schedule (see :func:`cron_problem`), macros expanded."""
    return CRON_MACRO_FIELDS.get(value, value).split()


def cron_field_values(text: str, index: int) -> frozenset[int]:
    """The values field ``index`` (0 minute ... 4 day of week) of a valid schedule matches; day
    of week 7 is Sunday, 0."""
    _, low, top, names = _CRON_FIELDS[index]
    found: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        if base == "*":
            start, end = low, 6 if index == 4 else top
        else:
            bounds = [_cron_value(b, low, top, names) or 0 for b in base.split("-")]
            start = bounds[0]
            end = bounds[-1] if len(bounds) == 2 else (top if step_text else start)
        values = range(start, end + 1, int(step_text) if step_text else 1)
        found.update(v % 7 if index == 4 else v for v in values)
    return frozenset(found)


# --- dates ----------------------------------------------------------------------------------------


def parse_date(value: str) -> _dt.date | None:
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        return None
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        return None


# --- images ---------------------------------------------------------------------------------------

_IMAGE_RE = re.compile(
    r"^(?:(?P<registry>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?)/)?"
    r"(?P<repository>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
IMAGE_FORMS = (
    "write registry/repository[:tag][@sha256:<64 hex digits>], "
    "e.g. 'ghcr.io/acme/scorer@sha256:…' (lower-case repository)"
)
REGISTRY_PREFIX_RE = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?"
    r"(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)


def parse_image(value: str) -> dict[str, str | None] | None:
    """Split an image reference into registry, repository, tag and digest (None parts absent)."""
    if len(value) > 512:
        return None
    match = _IMAGE_RE.match(value)
    if match is None:
        return None
    parts: dict[str, str | None] = match.groupdict()
    registry = parts["registry"]
    if (
        registry is not None
        and "." not in registry
        and ":" not in registry
        and registry != "localhost"
    ):
        # "acme/scorer": the first component is a Docker Hub namespace, not a registry host.
        parts["repository"] = f"{registry}/{parts['repository']}"
        parts["registry"] = None
    return parts


# --- URIs -----------------------------------------------------------------------------------------

DATA_SCHEMES = (
    "s3", "gs", "abfss", "az", "hdfs", "file", "https", "postgresql", "postgres", "mysql",
    "sqlserver", "snowflake", "bigquery", "redshift", "kafka", "kinesis", "pubsub", "redis",
    "feast", "delta", "iceberg",
)  # fmt: skip
ARTIFACT_SCHEMES = ("s3", "gs", "abfss", "https", "oci", "hf", "file", "mlflow")
STATE_SCHEMES = ("file", "s3", "gs", "azblob", "https")
_SCHEMES = {"data": DATA_SCHEMES, "artifact": ARTIFACT_SCHEMES, "state": STATE_SCHEMES}
_WHITE_SPACE = re.compile(r"\s")
"""A character for which ``str.isspace`` is true (``\\s`` of a text pattern is that test)."""


def uri_problem(value: str, kind: str) -> str | None:
    """None for a well-formed URI of an allowed scheme. Never echoes embedded credentials."""
    allowed = _SCHEMES[kind]
    if len(value) > 2048:
        return "URI is longer than 2048 characters"
    if _WHITE_SPACE.search(value):
        return "URI must not contain white space"
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        return "URI is malformed (bad host or port)"
    if parts.password is not None or (parts.username and parts.scheme not in ("file",)):
        return "credentials must not be written in a URI; store them as a secret reference"
    if parts.scheme not in allowed:
        what = f"URI scheme {quote(parts.scheme)}" if parts.scheme else "a URI without a scheme"
        return f"{what} is not supported here; use one of: {', '.join(allowed)}"
    if parts.scheme != "file" and not parts.netloc:
        return f"URI {quote(value)} has no host or bucket after '{parts.scheme}://'"
    if parts.scheme == "file" and ".." in parts.path.split("/"):
        return "file URIs must not contain '..'"
    if parts.scheme in _BUCKET_RES:
        return bucket_problem(parts.netloc, parts.scheme)
    return None


_BUCKET_RES = {
    "s3": re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    "gs": re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$"),
}
BUCKET_RULE = (
    "3 to 63 lower-case letters, digits, '.' and '-' ('_' too in gs://), starting and ending "
    "with a letter or digit, without '..' and not an IP address"
)


def bucket_problem(bucket: str, scheme: str) -> str | None:
    """None when ``bucket`` follows the S3 or GCS bucket naming rules (``my..bucket`` does not)."""
    if (
        _BUCKET_RES[scheme].match(bucket)
        and ".." not in bucket
        and all(len(label) <= 63 for label in bucket.split("."))
        and not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", bucket)
    ):
        return None
    return f"invalid bucket name {quote(bucket)} in the {scheme}:// URI: {BUCKET_RULE}"


# --- secret references ------------------------------------------------------------------------------

SECRET_REF_FORMS = (
    "env:NAME",
    "aws-sm://NAME[#KEY]",
    "vault://PATH[#KEY]",
    "k8s://NAMESPACE/NAME#KEY",
    "gcp-sm://PROJECT/NAME",
    "azure-kv://VAULT/NAME",
)
_SECRET_REF_RES = (
    re.compile(r"^env:[A-Z_][A-Z0-9_]{0,127}$"),
    re.compile(r"^aws-sm://[A-Za-z0-9/_+=.@-]{1,512}(#[A-Za-z0-9_.-]{1,128})?$"),
    re.compile(r"^vault://[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*(#[A-Za-z0-9_.-]{1,128})?$"),
    re.compile(
        r"^k8s://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?#[A-Za-z0-9_.-]{1,253}$"
    ),
    re.compile(r"^gcp-sm://[a-z][a-z0-9-]{4,28}[a-z0-9]/[A-Za-z0-9_-]{1,255}$"),
    re.compile(r"^azure-kv://[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]/[A-Za-z0-9-]{1,127}$"),
)


def secret_ref_problem(value: str) -> str | None:
    if ".." in value:
        return "secret reference must not contain '..'"
    if len(value) <= 700 and any(pattern.match(value) for pattern in _SECRET_REF_RES):
        return None
    scheme = value.split(":", 1)[0] if ":" in value else ""
    known = {form.split(":", 1)[0] for form in SECRET_REF_FORMS}
    if scheme in known:
        return f"malformed {scheme} secret reference; the form is " + next(
            form for form in SECRET_REF_FORMS if form.startswith(scheme)
        )
    return "secrets must be references, not values; use one of: " + ", ".join(SECRET_REF_FORMS)


# --- PromQL ---------------------------------------------------------------------------------------

WINDOW_MARK = re.compile(r"\{\{\s*window\s*\}\}")
"""``{{window}}`` in a ratio indicator's PromQL: the range each burn-rate window substitutes.
The shape of the PromQL itself is checked by ``schema/promql_shape.py``."""


def has_window_marker(value: str) -> bool:
    return WINDOW_MARK.search(value) is not None


# --- names derived from the spec ------------------------------------------------------------------

DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
"""A DNS-1123 label of at most 63 characters (use with ``fullmatch``): a system's name as the
plan and the generated-file headers accept it back from a file they did not write."""

PORTABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""Letters, digits, ``_ . -``, starting alphanumeric, at most 100 characters (use with
``fullmatch``): a Pulumi stack name, and a file name safe to print in a header."""


# --- labels ---------------------------------------------------------------------------------------

_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
LABEL_KEY_RULE = (
    "an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', "
    "starting and ending with a letter or digit"
)
LABEL_VALUE_RULE = (
    "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
)


def label_key_ok(value: str) -> bool:
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(_LABEL_NAME.match(name))


# --- network endpoints ---------------------------------------------------------------------------

_ENTITY_REF = re.compile(r"^(models|dataSources)\.[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAMESPACE_REF = re.compile(r"^namespace:[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def endpoint_problem(value: str) -> str | None:
    if value == "internet" or _ENTITY_REF.match(value) or _NAMESPACE_REF.match(value):
        return None
    if value.startswith("cidr:"):
        try:
            ipaddress.ip_network(value[5:], strict=True)
        except ValueError:
            return f"invalid CIDR in {quote(value)}: write cidr:10.0.0.0/8 (host bits zero)"
        return None
    return (
        f"invalid network endpoint {quote(value)}: write models.NAME, dataSources.NAME, "
        "namespace:NAME, cidr:ADDRESS/PREFIX or internet"
    )


# --- regions and residency -------------------------------------------------------------------------

RESIDENCY_ZONES = (
    "global", "eu", "uk", "ch", "us", "ca", "mx", "br", "za", "il", "ae", "bh",
    "in", "sg", "id", "my", "th", "au", "nz", "jp", "kr", "hk", "tw", "cn",
)  # fmt: skip

AWS_REGION_RESIDENCY: dict[str, str] = {
    "us-east-1": "us", "us-east-2": "us", "us-west-1": "us", "us-west-2": "us",
    "us-gov-east-1": "us", "us-gov-west-1": "us",
    "ca-central-1": "ca", "ca-west-1": "ca", "mx-central-1": "mx", "sa-east-1": "br",
    "eu-west-1": "eu", "eu-west-3": "eu", "eu-central-1": "eu", "eu-north-1": "eu",
    "eu-south-1": "eu", "eu-south-2": "eu", "eu-west-2": "uk", "eu-central-2": "ch",
    "af-south-1": "za", "il-central-1": "il", "me-central-1": "ae", "me-south-1": "bh",
    "ap-south-1": "in", "ap-south-2": "in", "ap-southeast-1": "sg", "ap-southeast-2": "au",
    "ap-southeast-3": "id", "ap-southeast-4": "au", "ap-southeast-5": "my",
    "ap-southeast-6": "nz", "ap-southeast-7": "th", "ap-northeast-1": "jp",
    "ap-northeast-2": "kr", "ap-northeast-3": "jp", "ap-east-1": "hk", "ap-east-2": "tw",
    "cn-north-1": "cn", "cn-northwest-1": "cn",
}  # fmt: skip
AWS_REGIONS = frozenset(AWS_REGION_RESIDENCY)

AWS_REGION_PLACES: dict[str, tuple[str, ...]] = {
    "us-east-1": ("N. Virginia", "Virginia", "Ashburn"), "us-east-2": ("Ohio", "Columbus"),
    "us-west-1": ("N. California", "California", "San Francisco"),
    "us-west-2": ("Oregon", "Portland"), "us-gov-east-1": ("GovCloud US-East",),
    "us-gov-west-1": ("GovCloud US-West",), "ca-central-1": ("Canada", "Montreal"),
    "ca-west-1": ("Calgary",), "mx-central-1": ("Mexico", "Queretaro"),
    "sa-east-1": ("Sao Paulo", "Brazil"), "eu-west-1": ("Ireland", "Dublin"),
    "eu-west-2": ("London", "United Kingdom", "England", "Britain"),
    "eu-west-3": ("Paris", "France"), "eu-central-1": ("Frankfurt", "Germany"),
    "eu-central-2": ("Zurich", "Switzerland"), "eu-north-1": ("Stockholm", "Sweden"),
    "eu-south-1": ("Milan", "Italy"), "eu-south-2": ("Spain", "Aragon", "Madrid"),
    "af-south-1": ("Cape Town", "South Africa"), "il-central-1": ("Tel Aviv", "Israel"),
    "me-central-1": ("UAE", "Dubai", "Emirates"), "me-south-1": ("Bahrain", "Manama"),
    "ap-south-1": ("Mumbai", "India"), "ap-south-2": ("Hyderabad",),
    "ap-southeast-1": ("Singapore",), "ap-southeast-2": ("Sydney", "Australia"),
    "ap-southeast-3": ("Jakarta", "Indonesia"), "ap-southeast-4": ("Melbourne",),
    "ap-southeast-5": ("Malaysia", "Kuala Lumpur"),
    "ap-southeast-6": ("New Zealand", "Auckland"), "ap-southeast-7": ("Thailand", "Bangkok"),
    "ap-northeast-1": ("Tokyo", "Japan"), "ap-northeast-2": ("Seoul", "Korea"),
    "ap-northeast-3": ("Osaka",), "ap-east-1": ("Hong Kong",), "ap-east-2": ("Taipei", "Taiwan"),
    "cn-north-1": ("Beijing", "China"), "cn-northwest-1": ("Ningxia",),
}  # fmt: skip
"""Each AWS region's city, then the other names people call it by (country, state), as AWS
lists them: ``eu-frankfurt-1`` means Frankfurt, ``eu-central-1``, however close its spelling
is to ``eu-north-1``."""


def _letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[^a-z]+", text.lower()) if word]


def closest_aws_region(value: str) -> tuple[str, str] | None:
    """The region ``value`` most likely means, with its city: a region named by a place
    (``eu-frankfurt-1``, ``germany``, ``london``, or one misspelt: ``frankfrut``) before one
    spelt alike (``eu-west-l``: ``eu-west-1``); None when nothing is close."""
    letters, words = _letters(value), _words(value)
    best: tuple[int, str] | None = None
    for region, places in AWS_REGION_PLACES.items():
        for place in places:
            name = _letters(place)
            found = (len(name) >= 4 and name in letters) or name in words
            if not found and len(name) >= 5:
                found = bool(difflib.get_close_matches(name, words, n=1, cutoff=0.8))
            if found and (best is None or len(name) > best[0]):
                best = (len(name), region)
    meant = best[1] if best is not None else closest(value, sorted(AWS_REGIONS))
    return (meant, AWS_REGION_PLACES[meant][0]) if meant is not None else None


_NVME_FAMILY = re.compile(r"^([a-z]+[0-9]+[a-z]*d[a-z]*|g5|g6|g6e|p5|p5e|p5en|trn1|trn1n|inf2)$")
"""SageMaker instance families with local NVMe storage (m5d, c6id, g4dn, p4d, g5, ...)."""


def has_instance_storage(instance_type: object) -> bool:
    """Whether ``ml.<family>.<size>`` has local NVMe storage, which SageMaker encrypts in hardware
    and for which it refuses a volume KMS key: one fact for the AWS target and the policies."""
    parts = instance_type.split(".") if isinstance(instance_type, str) else []
    return len(parts) == 3 and bool(_NVME_FAMILY.match(parts[1]))
