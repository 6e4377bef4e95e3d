"""The JSON plan (``--format json``, ``--out plan.json``) and reading a saved plan back.

The shape is documented and versioned in ``docs/plan.schema.json`` (JSON Schema 2020-12; the
tests validate every plan they make against it). A saved plan is the same document: it binds
what was reviewed to the head commit, the base commit, the spec hash and the graph hash, which
``mlplane apply --plan`` checks before it calls Pulumi at all. Keys are sorted, output is ASCII,
and nothing in it depends on the time or on the machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from mlplane import __version__
from mlplane.compiler.core import canonical, safe_read
from mlplane.compiler.plan.governance import governance_json
from mlplane.compiler.plan.model import (
    PLAN_FORMAT_VERSION,
    Plan,
    PropertyChange,
    ResourceChange,
    Side,
    SpecRef,
)
from mlplane.compiler.plan.risk import risk_codes
from mlplane.compiler.render import dispatch as renderers

PLAN_KIND = "mlplane-plan"


def render_json(plan: Plan) -> str:
    return canonical.canonical_json(plan_json(plan))


def plan_json(plan: Plan) -> dict[str, Any]:
    counts = plan.counts()
    meanings = risk_codes()
    return {
        "kind": PLAN_KIND,
        "version": PLAN_FORMAT_VERSION,
        "tool": {"name": "mlplane", "version": __version__},
        "status": "ok" if plan.ok else "error",
        "system": plan.system,
        "environment": plan.environment,
        "target": plan.target,
        "head": _side(plan.head),
        "base": _side(plan.base),
        "summary": {
            **counts,
            "unchanged": plan.unchanged,
            "specChanges": len(plan.spec_changes),
            "risks": len(plan.risks),
            "changes": plan.has_changes,
            "warnings": len(plan.head_warnings),
            "newWarnings": None if plan.new_warnings is None else len(plan.new_warnings),
            "governance": None if plan.governance is None else len(plan.governance.changes),
        },
        "specChanges": [
            {
                "section": c.section,
                "subject": c.subject,
                "action": c.action,
                "text": c.text,
                "source": _ref(c.source),
                "risks": list(c.risks),
            }
            for c in plan.spec_changes
        ],
        "resources": [_resource(change) for change in plan.resources],
        "risks": [
            {
                "code": r.code,
                "meaning": meanings.get(r.code, ""),
                "message": r.message,
                "subject": r.subject,
                "source": _ref(r.source),
            }
            for r in plan.risks
        ],
        "warnings": list(plan.warnings),
        "diagnostics": _diagnostics(plan.problems or plan.head.diagnostics),
        "newWarnings": None if plan.new_warnings is None else _diagnostics(plan.new_warnings),
        "governance": governance_json(plan.governance, _ref),
    }


def _side(side: Side) -> dict[str, Any]:
    return {
        "ref": side.label,
        "kind": side.kind,
        "status": side.status,
        "commit": side.commit,
        "specSha256": side.spec_sha256,
        "graphSha256": side.graph_sha256,
        "files": list(side.files),
        "resources": len(side.resources),
        "errors": side.error_count,
        "diagnostics": _diagnostics(side.diagnostics) if side.kind not in ("worktree",) else [],
    }


def _ref(ref: SpecRef) -> dict[str, Any]:
    location = ref.location
    return {
        "path": ref.path,
        "side": ref.side,
        "file": location.file if location else None,
        "line": location.line if location else None,
        "column": location.column if location else None,
    }


def _resource(change: ResourceChange) -> dict[str, Any]:
    return {
        "action": change.action,
        "type": change.type,
        "name": change.name,
        "parent": change.parent,
        "component": change.component,
        "source": _ref(change.source),
        "changes": [_property(p) for p in change.changes],
        "replaceReasons": list(change.replace_reasons),
        "ignored": list(change.ignored),
        "protected": change.protected,
        "because": [
            {"path": b.path, "resource": b.resource, "output": b.output, "cause": b.cause}
            for b in change.because
        ],
    }


def _property(change: PropertyChange) -> dict[str, Any]:
    return {
        "path": change.path,
        "kind": change.kind,
        "old": change.old,
        "new": change.new,
        "forcesReplacement": change.forces_replacement,
        "knownAfterApply": change.known_after_apply,
    }


def _diagnostics(items: tuple[Any, ...]) -> list[Any]:
    options = renderers.RenderOptions(tool_version=__version__)
    rendered = json.loads(renderers.render_json(items, {}, options))
    return list(rendered["diagnostics"])


# --- saved plans ---------------------------------------------------------------------------------


class SavedPlanError(Exception):
    """The file is not a readable mlplane plan; the message says why."""


@dataclass(frozen=True)
class SavedPlan:
    """What ``apply --plan`` checks: the binding of a reviewed plan."""

    system: str
    environment: str
    head_commit: str | None
    base_ref: str
    base_kind: str
    base_commit: str | None
    base_graph_sha256: str | None
    spec_sha256: str
    graph_sha256: str
    has_changes: bool


MAX_SAVED_PLAN_BYTES = 128 * 2**20


def load_saved(path: Path) -> SavedPlan:
    """The binding of the plan saved at ``path``, read as every file mlplane reads back is
    (``compiler/core/safe_read.py``: a regular file, not a link, bounded size and depth) and
    checked against the shape of a plan before any field is used; :class:`SavedPlanError`
    naming the file otherwise."""
    name = safe_read.shown(path)
    try:
        document = safe_read.read_json(path, MAX_SAVED_PLAN_BYTES)
    except FileNotFoundError:
        raise SavedPlanError(f"{name}: no such file") from None
    except safe_read.ReadBackError as error:
        raise SavedPlanError(str(error)) from None
    if not isinstance(document, dict) or document.get("kind") != PLAN_KIND:
        raise SavedPlanError(f"{name} is not an mlplane plan (written by mlplane plan --out)")
    if document.get("version") != PLAN_FORMAT_VERSION:
        version = safe_read.printable(repr(document.get("version"))[:40])
        raise SavedPlanError(f"{name} has plan version {version}, not {PLAN_FORMAT_VERSION}")
    if document.get("status") != "ok":
        raise SavedPlanError(f"{name} records a plan that failed; it cannot be applied")
    try:
        found = safe_read.validated(document, _SAVED, name, "an mlplane plan")
    except safe_read.ReadBackError as error:
        raise SavedPlanError(str(error)) from None
    head, base = found.head, found.base
    return SavedPlan(
        system=found.system,
        environment=found.environment,
        head_commit=head.commit,
        base_ref=base.ref,
        base_kind=base.kind,
        base_commit=base.commit,
        base_graph_sha256=base.graphSha256,
        spec_sha256=head.specSha256,
        graph_sha256=head.graphSha256,
        has_changes=found.summary.changes,
    )


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)


class _Head(_Shape):
    commit: str | None
    specSha256: str
    graphSha256: str


class _Base(_Shape):
    ref: str
    kind: str
    commit: str | None
    graphSha256: str | None


class _Summary(_Shape):
    changes: bool


class _Saved(_Shape):
    """The fields of a saved plan that ``apply --plan`` reads (the rest is for reviewers)."""

    system: str
    environment: str
    head: _Head
    base: _Base
    summary: _Summary


_SAVED: TypeAdapter[_Saved] = TypeAdapter(_Saved)
