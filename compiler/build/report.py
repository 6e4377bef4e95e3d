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
      "written": ["pulumi/__main__.py"],  # those written; the others were unchanged and kept
      "findings": [{"path": "pulumi/__main__.py", "finding": "hand-edited"}],
      "diagnostics": [...],             # as in `mlplane validate --format json`
      "summary": {"errors": 0, "warnings": 0, "infos": 0}
    }
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mlplane import __version__
from mlplane.compiler.build.outputs import BuildResult
from mlplane.compiler.build.pipeline import CompileResult
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
    return report_text_many(result.compiled, [result], color)


def report_text_many(
    compiled: CompileResult, results: Sequence[BuildResult], color: bool = False
) -> str:
    """The shared compile's diagnostics once, then each environment's summary."""
    options = renderers.RenderOptions(color=color, tool_version=__version__)
    diagnostics = compiled.sorted_diagnostics()
    parts = (
        [renderers.render("text", diagnostics, compiled.sources, options)] if diagnostics else []
    )
    parts += [_summary_text(result) for result in results]
    if not results:
        parts.append("nothing written: the spec has errors")
    return "\n".join(part.rstrip("\n") for part in parts if part) + "\n"


def _summary_text(result: BuildResult) -> str:
    out = result.out_dir.as_posix()
    state = status(result)
    if state == "failed":
        return f"nothing written to {out}: the spec has errors"
    if state == "written":
        kept = len(result.files) - len(result.written)
        same = f" ({kept} unchanged, kept)" if kept else ""
        lines = [f"wrote {len(result.written)} files to {out}{same}:"]
        return "\n".join(lines + [f"  {path}" for path in result.written])
    if state == "current":
        return f"{out} is up to date ({len(result.files)} files)"
    lines = [f"{out} is not up to date ({len(result.findings)} files differ); run mlplane build:"]
    return "\n".join(lines + [f"  {finding}: {path}" for path, finding in result.findings])


def report_json_many(
    compiled: CompileResult, results: Sequence[BuildResult], checked: bool = False
) -> str:
    """Several environments: ``builds`` holds each one's ``environment``, ``status``, ``out``,
    ``files``, ``written`` and ``findings``; diagnostics and summary are the shared compile's."""
    options = renderers.RenderOptions(tool_version=__version__)
    rendered = json.loads(renderers.render_json(compiled.sorted_diagnostics(), {}, options))
    states = [status(result) for result in results] or ["failed"]
    order = ("failed", "not-current", "current", "written")
    document: dict[str, Any] = {
        "version": REPORT_VERSION,
        "tool": {"name": "mlplane", "version": __version__},
        "mode": "check" if checked else "build",
        "status": min(states, key=order.index),
        "builds": [
            {
                "environment": result.environment,
                "status": status(result),
                "out": result.out_dir.as_posix(),
                "files": list(result.files) if compiled.ok else [],
                "written": list(result.written),
                "findings": [{"path": p, "finding": f} for p, f in result.findings],
            }
            for result in results
        ],
        "diagnostics": rendered["diagnostics"],
        "summary": rendered["summary"],
    }
    return canonical.canonical_json(document)


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
        "written": list(result.written),
        "findings": [{"path": path, "finding": finding} for path, finding in result.findings],
        "diagnostics": rendered["diagnostics"],
        "summary": rendered["summary"],
    }
    return canonical.canonical_json(document)
