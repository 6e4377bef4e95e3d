"""The ``sarif`` format: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One run with one tool driver. ``rules`` lists only the codes that occur in this result set
(sorted by code), so that ``ruleIndex`` is a stable index into it. ``columnKind`` is set to
``unicodeCodePoints`` because mlplane counts columns in code points, not the UTF-16 units that
SARIF assumes by default. Each result carries a ``partialFingerprints["mlplane/v1"]`` hash of
code, spec path and message, deliberately without line numbers, so that code scanning keeps
tracking the same alert when an edit above it moves it down the file.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from mlplane.compiler.core import canonical
from mlplane.compiler.core.codes import code_help
from mlplane.compiler.core.diagnostics import Diagnostic, Location, Related, Severity, code_info
from mlplane.compiler.render.common import RenderOptions, SourceLookup, ordered

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://mlplane.dev"
FINGERPRINT_KEY = "mlplane/v1"

_LEVELS: dict[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
}

JsonObject = dict[str, Any]


def artifact_uri(file: str) -> str:
    """A relative URI reference for a display path: forward slashes, percent-encoded."""
    path = posixpath.normpath(file.replace("\\", "/"))
    if path.startswith("//"):  # would read as a network path (an authority), not a file
        path = "/" + path.lstrip("/")
    return quote(path, safe="/")


def fingerprint(diagnostic: Diagnostic) -> str:
    """sha256 of code, path and message, NUL-separated so that no two triples collide."""
    material = "\0".join((diagnostic.code, diagnostic.path, diagnostic.message))
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def _rule(code: str, fallback: Severity) -> JsonObject:
    # An unregistered code is a bug elsewhere; still describe it rather than lose the report.
    try:
        info = code_info(code)
        summary, severity = info.summary, info.severity
    except KeyError:
        summary, severity = code, fallback
    rule: JsonObject = {
        "id": code,
        "shortDescription": {"text": summary},
        "defaultConfiguration": {"level": _LEVELS[severity]},
    }
    extra = code_help(code)
    if extra is not None:  # policy rules: why (fullDescription) and how to fix (help)
        rule["fullDescription"] = {"text": extra.description}
        rule["help"] = {"text": extra.help}
    return rule


def _physical(location: Location) -> JsonObject:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": artifact_uri(location.file)},
            "region": {
                "startLine": max(location.line, 1),
                "startColumn": max(location.column, 1),
            },
        }
    }


def _related(index: int, related: Related) -> JsonObject:
    return {"id": index, **_physical(related.location), "message": {"text": related.message}}


def _message_text(diagnostic: Diagnostic) -> str:
    if diagnostic.hint:
        return f"{diagnostic.message}\nhint: {diagnostic.hint}"
    return diagnostic.message


def _result(diagnostic: Diagnostic, rule_index: int) -> JsonObject:
    result: JsonObject = {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": _LEVELS[diagnostic.severity],
        "message": {"text": _message_text(diagnostic)},
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(diagnostic)},
    }
    if diagnostic.location is not None:
        result["locations"] = [_physical(diagnostic.location)]
    if diagnostic.related:
        result["relatedLocations"] = [
            _related(index, related) for index, related in enumerate(diagnostic.related, 1)
        ]
    if diagnostic.path:
        result["properties"] = {"specPath": diagnostic.path}
    return result


def sarif_log(diagnostics: Sequence[Diagnostic], options: RenderOptions) -> JsonObject:
    """The SARIF log as plain data (what ``render_sarif`` serialises)."""
    items = ordered(diagnostics)
    first_severity: dict[str, Severity] = {}
    for diagnostic in items:
        first_severity.setdefault(diagnostic.code, diagnostic.severity)
    codes = sorted(first_severity)
    index = {code: position for position, code in enumerate(codes)}
    driver = {
        "name": "mlplane",
        "informationUri": INFORMATION_URI,
        "semanticVersion": options.tool_version,
        "rules": [_rule(code, first_severity[code]) for code in codes],
    }
    run = {
        "tool": {"driver": driver},
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, index[d.code]) for d in items],
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(
    diagnostics: Sequence[Diagnostic], sources: SourceLookup, options: RenderOptions
) -> str:
    """Serialise ``sarif_log``; ASCII-only so that no hostile character survives as itself."""
    del sources  # SARIF viewers show the code from the repository themselves
    log = sarif_log(diagnostics, options)
    return canonical.canonical_json(log)
