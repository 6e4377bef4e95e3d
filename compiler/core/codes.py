"""Every diagnostic code mlplane can emit, registered in one place.

Codes are stable: tools and users match on them (``--format json``, SARIF ``ruleId``, the
diagnostics corpus in ``tests/``). Rename one only with a deprecation note in the changelog.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplane.compiler.core.diagnostics import Severity, register_code, registered_codes

W = Severity.WARNING

# --- reading files -------------------------------------------------------------------------
NO_SPEC_FILES = register_code("no-spec-files", "no *.yaml or *.yml spec file was found")
IO_ERROR = register_code("io-error", "a spec file could not be read")
PATH_OUTSIDE_ROOT = register_code(
    "path-outside-root", "a spec file resolves outside the spec directory (symlink)"
)
FILE_TOO_LARGE = register_code(
    "file-too-large", "a spec file or the whole spec exceeds its size limit"
)
NOT_UTF8 = register_code("not-utf8", "a spec file is not valid UTF-8")
FORBIDDEN_CHARACTER = register_code(
    "forbidden-character", "control, bidirectional-override or invisible character in the spec"
)

# --- YAML structure ------------------------------------------------------------------------
YAML_SYNTAX = register_code("yaml-syntax", "the file is not well-formed YAML")
NOT_A_MAPPING = register_code("not-a-mapping", "a spec file must be one YAML mapping")
MULTIPLE_DOCUMENTS = register_code(
    "multiple-documents", "a spec file must hold exactly one YAML document"
)
DUPLICATE_KEY = register_code("duplicate-key", "the same key appears twice in one mapping")
NON_STRING_KEY = register_code("non-string-key", "mapping keys must be plain strings")
YAML_ALIAS = register_code("yaml-alias", "YAML anchors, aliases and merge keys are not allowed")
YAML_TAG = register_code("yaml-tag", "YAML tags are not allowed")
NESTING_TOO_DEEP = register_code("nesting-too-deep", "the spec nests deeper than the limit")
TOO_MANY_NODES = register_code("too-many-nodes", "the spec has more YAML nodes than the limit")
VALUE_TOO_LONG = register_code("value-too-long", "a scalar value exceeds the length limit")
NUMBER_OUT_OF_RANGE = register_code("number-out-of-range", "a number is too large or not finite")

# --- schema --------------------------------------------------------------------------------
UNKNOWN_FIELD = register_code("unknown-field", "a field that the schema does not define")
MISSING_FIELD = register_code("missing-field", "a required field is missing")
WRONG_TYPE = register_code("wrong-type", "a value has the wrong type (no implicit conversion)")
INVALID_VALUE = register_code("invalid-value", "a value is not one of the allowed choices")
OUT_OF_RANGE = register_code("out-of-range", "a number is outside its allowed range")
TOO_LONG = register_code("too-long", "a string or list is longer than its limit")
TOO_SHORT = register_code("too-short", "a string or list is shorter than required")
INVALID_NAME = register_code("invalid-name", "a name breaks the DNS-1123 naming rules")
RESERVED_NAME = register_code("reserved-name", "a name is reserved by a language or platform")
INVALID_DURATION = register_code(
    "invalid-duration", "a duration is not of the form 30s, 5m, 1h, 30d"
)
INVALID_QUANTITY = register_code("invalid-quantity", "a Kubernetes resource quantity is malformed")
INVALID_CRON = register_code("invalid-cron", "a cron schedule is malformed")
INVALID_DATE = register_code("invalid-date", "a date is not an ISO 8601 calendar date (YYYY-MM-DD)")
INVALID_IMAGE = register_code("invalid-image", "a container image reference is malformed")
INVALID_URI = register_code("invalid-uri", "a URI is malformed or uses an unsupported scheme")
INVALID_PROMQL = register_code("invalid-promql", "a PromQL expression does not parse")
PROMQL_TOO_DEEP = register_code(
    "promql-too-deep", "a PromQL expression nests brackets or operators deeper than the limit"
)
PROMQL_NOT_VECTOR = register_code(
    "promql-not-vector", "a PromQL expression is not an instant vector (a string, scalar, range)"
)
PROMQL_UNSUPPORTED = register_code(
    "promql-unsupported",
    "PromQL that parses but that the rules' Prometheus 2 (promtool) rejects: quoted names, "
    "unknown functions, misplaced durations, Go-incompatible regular expressions",
)
INVALID_SECRET_REF = register_code("invalid-secret-ref", "a secret reference is malformed")
INLINE_SECRET = register_code(
    "inline-secret", "a value looks like a secret; secrets must be references", sensitive=True
)
INVALID_TEXT = register_code(
    "invalid-text", "free text contains a template or CI expression marker"
)
INVALID_LABEL = register_code(
    "invalid-label", "a label key or value breaks the Kubernetes label rules"
)
INVALID_FORMAT = register_code("invalid-format", "a value does not have the required format")
INVALID_API_VERSION = register_code("invalid-api-version", "apiVersion is not mlplane.dev/v1")
INVALID_KIND = register_code("invalid-kind", "kind is not MLSystem")
EXTERNAL_REFERENCE = register_code(
    "external-reference", "includes and $ref to other documents are not supported"
)
CONTRADICTION = register_code("contradiction", "two fields contradict each other")
SCHEMA_ERROR = register_code("schema-error", "the value does not satisfy the schema")

# --- assembling and resolving ----------------------------------------------------------------
DUPLICATE_NAME = register_code(
    "duplicate-name", "an entry is defined twice (in one file or across files)"
)
CONFLICTING_SECTION = register_code(
    "conflicting-section", "a singleton section is defined in more than one spec file"
)
NAME_COLLISION = register_code(
    "name-collision", "two names become the same identifier once sanitised"
)
REF_UNDEFINED = register_code("ref-undefined", "a reference names something that is not defined")
REF_WRONG_KIND = register_code("ref-wrong-kind", "a reference names something of the wrong kind")
LINEAGE_CYCLE = register_code("lineage-cycle", "data sources derive from each other in a cycle")
UNKNOWN_ENVIRONMENT = register_code(
    "unknown-environment", "the requested environment is not defined"
)
OVERRIDE_FORBIDDEN = register_code(
    "override-forbidden", "an environment overlay changes a field that cannot vary per environment"
)
OVERRIDE_UNDEFINED = register_code(
    "override-undefined",
    "an environment overlay overrides or removes an entry the base spec does not define (an "
    "entry it adds must be a complete definition)",
)
TARGET_SETTINGS = register_code(
    "target-settings", "an environment's target settings do not match its target"
)
UNUSED_DEFINITION = register_code("unused-definition", "a definition is never referenced", W)
EMAIL_WITHOUT_SMTP = register_code(
    "email-without-smtp",
    "an e-mail receiver without alerting.smtp: Alertmanager would relay through localhost:25",
)
INDICATOR_MISMATCH = register_code(
    "indicator-mismatch", "an SLA indicator does not fit its subject"
)

# --- building --------------------------------------------------------------------------------
TARGET_UNAVAILABLE = register_code(
    "target-unavailable", "an environment's target is not installed in this mlplane"
)


# --- policies (compiler/policy/engine.py; each rule id is registered as a code when packs load) ------
POLICY_MANDATORY = register_code(
    "policy-mandatory", "a mandatory policy rule is turned off or lowered in policies.rules"
)
WAIVER_EXPIRED = register_code("waiver-expired", "a waiver is past its expiry date")
WAIVER_UNMATCHED = register_code("waiver-unmatched", "a waiver matches no finding", W)
REGO_ERROR = register_code(
    "rego-error", "an organisation policy in Rego cannot be loaded or evaluated"
)
REGO_FORBIDDEN_BUILTIN = register_code(
    "rego-forbidden-builtin",
    "an organisation policy names a built-in the sandbox forbids (environment, network, "
    "randomness, clock, trace)",
)
REGO_TIMEOUT = register_code(
    "rego-timeout", "an organisation policy exceeded its CPU or wall-clock time limit"
)
REGO_PRINT = register_code(
    "rego-print", "what an organisation policy's print() wrote, captured and escaped", Severity.INFO
)


@dataclass(frozen=True, slots=True)
class CodeHelp:
    """What SARIF viewers show for a code beyond its summary (policy rules have it)."""

    description: str
    help: str


_HELP: dict[str, CodeHelp] = {}


def register_help(code: str, description: str, help_text: str) -> None:
    """Attach a long description and help text to a registered code (last registration wins)."""
    _HELP[code] = CodeHelp(description, help_text)


def code_help(code: str) -> CodeHelp | None:
    return _HELP.get(code)


CORE_CODES = frozenset(info.code for info in registered_codes())
"""The codes registered above (keep this line after the last of them): ``docs/diagnostics.md``
lists these. Codes registered later at run time (policy rule ids when packs load, target codes)
are documented by their owners (``docs/policies.md``, each target's README), and leaving them
out keeps the table the same whatever was imported before it is generated."""


def code_table_markdown() -> str:
    """``docs/diagnostics.md``: every code with its default severity and summary."""
    lines = [
        "# Diagnostic codes",
        "",
        "Generated from `compiler/core/codes.py` by `python -m mlplane.compiler.build.codes_doc`; "
        "do not edit.",
        "Codes are stable: match on them in scripts, SARIF consumers and editor integrations.",
        "",
        "| code | severity | meaning |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{info.code}` | {info.severity} | {info.summary} |"
        for info in registered_codes()
        if info.code in CORE_CODES
    ]
    return "\n".join(lines) + "\n"
