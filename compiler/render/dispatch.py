"""Rendering diagnostics for people and for tools: ``text``, ``json``, ``sarif``, ``github``.

Renderers are pure functions ``(diagnostics, sources, options) -> str``: they never print or
touch the disk, so the CLI decides where output goes and tests compare strings. Output is
deterministic: diagnostics are sorted by ``Diagnostic.sort_key`` (ties broken on the remaining
fields), and JSON is written with sorted keys, a 2-space indent and a trailing newline.

The human formats (``text``, ``github``) show control, bidi and invisible characters from the
spec as ``\\u{XXXX}`` escapes; the machine formats (``json``, ``sarif``) keep the data exact
but are ASCII-only JSON, so that no such character is ever written to a stream as itself.

The ``json`` format (``version`` is bumped on any incompatible change)::

    {
      "version": 1,
      "tool": {"name": "mlplane", "version": "0.1.0"},
      "diagnostics": [
        {
          "code": "ref-undefined",              # registered in compiler.core.codes
          "severity": "error",                  # "error" | "warning" | "info"
          "message": "model \\"scorer\\" reads unknown data source \\"featres\\"",
          "file": "spec.yaml",                  # null when the diagnostic has no location
          "line": 3,                            # 1-based; null without a location
          "column": 14,                         # 1-based, in code points; null without one
          "path": "models.scorer.inputs[0]",    # spec path; null when there is none
          "hint": "did you mean \\"features\\"?", # null when there is none
          "related": [
            {"file": "spec.yaml", "line": 9, "column": 3, "message": "defined here"}
          ]
        }
      ],
      "summary": {"errors": 1, "warnings": 0, "infos": 0}
    }

(Keys are written sorted; the order above is for reading.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

from mlplane.compiler.core import canonical
from mlplane.compiler.core.diagnostics import Diagnostic, Location, Related
from mlplane.compiler.render.common import RenderOptions, SourceLookup, count, ordered
from mlplane.compiler.render.github import render_github
from mlplane.compiler.render.sarif import render_sarif
from mlplane.compiler.render.text import render_text

__all__ = [
    "JSON_FORMAT_VERSION",
    "RENDERERS",
    "RenderOptions",
    "Renderer",
    "SourceLookup",
    "render",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
]

Renderer = Callable[[Sequence[Diagnostic], SourceLookup, RenderOptions], str]

JSON_FORMAT_VERSION = 1


def _location_fields(location: Location | None) -> dict[str, Any]:
    if location is None:
        return {"file": None, "line": None, "column": None}
    return {"file": location.file, "line": location.line, "column": location.column}


def _related_json(related: Related) -> dict[str, Any]:
    return {**_location_fields(related.location), "message": related.message}


def _diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "code": diagnostic.code,
        "severity": diagnostic.severity.value,
        "message": diagnostic.message,
        **_location_fields(diagnostic.location),
        "path": diagnostic.path or None,
        "hint": diagnostic.hint,
        "related": [_related_json(related) for related in diagnostic.related],
    }


def render_json(
    diagnostics: Sequence[Diagnostic], sources: SourceLookup, options: RenderOptions
) -> str:
    """The documented JSON shape; an empty result set still yields a complete document."""
    del sources  # consumers have the files
    items = ordered(diagnostics)
    counts = count(items)
    document = {
        "version": JSON_FORMAT_VERSION,
        "tool": {"name": "mlplane", "version": options.tool_version},
        "diagnostics": [_diagnostic_json(diagnostic) for diagnostic in items],
        "summary": {"errors": counts.errors, "warnings": counts.warnings, "infos": counts.infos},
    }
    return canonical.canonical_json(document)


RENDERERS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
}
"""Every output format by the name ``--format`` takes (``click.Choice(list(RENDERERS))``)."""

_NO_SOURCES: SourceLookup = MappingProxyType({})


def render(
    fmt: str,
    diagnostics: Sequence[Diagnostic],
    sources: SourceLookup = _NO_SOURCES,
    options: RenderOptions | None = None,
) -> str:
    """Render ``diagnostics`` in format ``fmt``; an unknown format is a programming error."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        known = ", ".join(RENDERERS)
        raise ValueError(f"unknown diagnostics format {fmt!r} (known: {known})") from None
    return renderer(diagnostics, sources, options or RenderOptions())
