"""What ``mlplane build`` prints: the files it wrote, or what ``--check`` found, as text or JSON.

Pure functions of a :class:`~mlplane.compiler.build.outputs.BuildResult`: the CLI decides where the text
goes. Paths are relative to the output directory; the output directory is shown as the user
named it. The JSON shape (``version`` is bumped on any incompatible change)::

    {
      "version": 1,
      "tool": {"name": "mlplane", "version": "0.1.0"},
      "mode": "build",                  # or "check"
      "status": "written",              # "written" | "current" | "not-current" | "failed"
      "out": "build/dev",
      "files": ["manifest.json", ...],  # the files of the output ([] when failed)
      "findings": [{"path": "pulumi/__main__.py", "finding": "hand-edited"}],
      "diagnostics": [...],             # as in `mlplane validate --format json`
      "summary": {"errors": 0, "warnings": 0, "infos": 0}
    }
"""

from __future__ import annotations

import json
from typing import Any

from mlplane import __version__
from mlplane.compiler.build.outputs import BuildResult
from mlplane.compiler.core import canonical
from mlplane.compiler.render import dispatch as renderers

REPORT_VERSION = 1


def status(result: BuildResult) -> str:
    if not result.compiled.ok or not result.files:
        return "failed"
    if not result.checked:
        return "written"
    return "not-current" if result.findings else "current"


def report_text(result: BuildResult, color: bool = False) -> str:
    """Diagnostics (with source excerpts), then one line per written or differing file."""
    options = renderers.RenderOptions(color=color, tool_version=__version__)
    diagnostics = result.compiled.sorted_diagnostics()
    parts = (
        [renderers.render("text", diagnostics, result.compiled.sources, options)]
        if diagnostics
        else []
    )
    parts.append(_summary_text(result))
    return "\n".join(part.rstrip("\n") for part in parts if part) + "\n"


def _summary_text(result: BuildResult) -> str:
    out = result.out_dir.as_posix()
    state = status(result)
    if state == "failed":
        return f"nothing written to {out}: the spec has errors"
    if state == "written":
        lines = [f"wrote {len(result.files)} files to {out}:"]
        return "\n".join(lines + [f"  {path}" for path in result.files])
    if state == "current":
        return f"{out} is up to date ({len(result.files)} files)"
    lines = [f"{out} is not up to date ({len(result.findings)} files differ); run mlplane build:"]
    return "\n".join(lines + [f"  {finding}: {path}" for path, finding in result.findings])


def report_json(result: BuildResult) -> str:
    options = renderers.RenderOptions(tool_version=__version__)
    rendered = json.loads(renderers.render_json(result.compiled.sorted_diagnostics(), {}, options))
    document: dict[str, Any] = {
        "version": REPORT_VERSION,
        "tool": {"name": "mlplane", "version": __version__},
        "mode": "check" if result.checked else "build",
        "status": status(result),
        "out": result.out_dir.as_posix(),
        "files": list(result.files) if result.compiled.ok else [],
        "findings": [{"path": path, "finding": finding} for path, finding in result.findings],
        "diagnostics": rendered["diagnostics"],
        "summary": rendered["summary"],
    }
    return canonical.canonical_json(document)
