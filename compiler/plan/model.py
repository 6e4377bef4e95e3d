"""The plan: what applying the head would change, compared with a base, as plain data.

A plan has three layers, each computed from a different source on purpose:

1. **spec changes** (``compiler/plan/spec_changes.py``): what changed per data source, model, security
   policy, waiver and SLA, in the words of the spec ("model scorer: replicas 2–8 → 4–20"),
   computed from the two *system models*, so that it reads like the review it is for and points
   at the spec line of each change;
2. **resource changes** (``compiler/plan/diff.py``): create, update (property by property),
   replace (``compiler/plan/replace.py``: the fields that force Kubernetes/Pulumi to replace)
   and delete, computed from the two *resource graphs*, so that it says exactly what Pulumi will
   be asked to do;
3. **risk flags** (``compiler/plan/risk.py`` and the spec layer): the few changes a reviewer must
   not miss (data or serving resources deleted or replaced, exposure made public,
   classification downgraded, default-deny off, alerts or SLAs removed, waivers added or
   extended).

Nothing here does I/O; renderers (``plan_text``, ``plan_markdown``, ``plan_json``) turn a plan
into text. ``compiler/plan/run.py`` builds plans from a spec and a base revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlplane.compiler.core.diagnostics import Diagnostic, Location
from mlplane.compiler.core.ir import System
from mlplane.compiler.core.lineage import Lineage, LineageEdge, LineageNode

PLAN_FORMAT_VERSION = 1
"""The version of the JSON plan (``docs/plan.schema.json``); bumped on incompatible changes."""

Action = Literal["create", "update", "replace", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete")
SideName = Literal["head", "base"]
BaseKind = Literal["git", "none", "applied"]
BaseStatus = Literal["compiled", "none", "absent", "new-environment", "failed"]
"""``compiled``: a base to compare with; ``none``: ``--base none``; ``absent``: the spec path
did not exist at the base revision; ``new-environment``: the base spec has no such environment;
``failed``: the base did not compile (its diagnostics are summarised; head shown as all-create)."""

ResourceJson = Mapping[str, Any]
"""One resource as ``Resource.to_json()`` writes it (the shape of ``resources.json``)."""


@dataclass(frozen=True, slots=True)
class SpecRef:
    """Where in the spec a change comes from: the head's spec, or the base's for removals."""

    path: str
    location: Location | None
    side: SideName = "head"


@dataclass(frozen=True, slots=True)
class PropertyChange:
    """One changed input of a resource; ``old``/``new`` are None when absent on that side."""

    path: str
    kind: Literal["added", "removed", "changed"]
    old: Any
    new: Any
    forces_replacement: bool = False
    known_after_apply: bool = False
    """``new`` reads an output that Pulumi learns only when it applies (of a resource replaced
    or created by this plan): shown as ``(known after apply)``, never as unchanged."""


KNOWN_AFTER_APPLY = "(known after apply)"

Cause = Literal["replaced", "created", "updated"]


@dataclass(frozen=True, slots=True)
class Because:
    """Why a resource changes although its own inputs do not: the input at ``path`` reads
    output ``output`` of ``resource``, which this plan replaces, creates or updates."""

    path: str
    resource: str
    output: str
    cause: Cause

    def text(self) -> str:
        """``endpointConfigName: from the replaced risk-endpoint-config``."""
        return f"{self.path}: from the {self.cause} {self.resource}"


def because_notes(items: tuple[Because, ...]) -> list[str]:
    """One note per changed resource read, its reading inputs joined: ``dimensions.A,
    dimensions.B: from the replaced risk-endpoint-config``."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for item in items:
        paths = grouped.setdefault((item.cause, item.resource), [])
        if item.path not in paths:
            paths.append(item.path)
    return [f"{', '.join(paths)}: from the {c} {r}" for (c, r), paths in grouped.items()]


@dataclass(frozen=True, slots=True)
class ResourceChange:
    action: Action
    type: str
    name: str
    parent: str | None
    source: SpecRef
    component: bool = False
    changes: tuple[PropertyChange, ...] = ()
    replace_reasons: tuple[str, ...] = ()
    """Why a replacement: the replace-table fields that differ, or a changed type or parent."""
    ignored: tuple[str, ...] = ()
    """Changed paths that the resource's ``ignoreChanges`` option tells Pulumi to ignore."""
    protected: bool = False
    """The base resource is ``protect``-ed: Pulumi refuses to delete or replace it."""
    because: tuple[Because, ...] = ()
    """Inputs that read an output of another changed resource (``$ref``): the resource is
    changed by that one, transitively; empty when only its own inputs changed."""


Section = Literal[
    "system",
    "environment",
    "dataSources",
    "models",
    "security",
    "policies",
    "waivers",
    "slas",
    "alerting",
]


@dataclass(frozen=True, slots=True)
class SpecChange:
    """One line of the ML summary, e.g. ``model scorer: replicas 2–8 → 4–20``."""

    section: Section
    subject: str
    action: Literal["added", "removed", "changed"]
    text: str
    source: SpecRef
    risks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Risk:
    """A change a reviewer must not miss; ``code`` is one of ``risk_codes()``
    (``compiler/plan/risk.py``)."""

    code: str
    message: str
    subject: str
    source: SpecRef


@dataclass(frozen=True, slots=True)
class GovernanceLine:
    """One governance change (``compiler/core/governance.py``), e.g. ``model 'auditor' now
    reads phi data source 'patients'``, with the risk flag it raises or shares."""

    kind: str
    subject: str
    text: str
    source: SpecRef
    risk: str


@dataclass(frozen=True, slots=True)
class Governance:
    """The plan's governance section: what the change does to personal data, residency,
    explainability, drift monitoring and waivers, and the lineage edges it adds, removes or
    makes cross a residency border (with the nodes at their ends, for the drawing)."""

    changes: tuple[GovernanceLine, ...] = ()
    edges_added: tuple[LineageEdge, ...] = ()
    edges_removed: tuple[LineageEdge, ...] = ()
    nodes: tuple[LineageNode, ...] = ()
    edges_crossing: tuple[LineageEdge, ...] = ()
    """Edges kept by the change that cross a residency border only at the head."""

    @property
    def edges(self) -> int:
        return len(self.edges_added) + len(self.edges_removed) + len(self.edges_crossing)

    @property
    def changed(self) -> bool:
        """Something to show: a change, or a lineage edge added, removed or newly crossing."""
        return bool(self.changes or self.edges)


ReaderTable = dict[str, dict[str, list[tuple[str, str, tuple[str | int, ...]]]]]
"""Read resource -> its read output -> (reader, input path as text, that path), in reader order."""


@dataclass(frozen=True)
class Side:
    """One side of the comparison: what was compiled, from where, and its hashes."""

    label: str
    """``working tree``, the base revision as given (``origin/main``), ``none`` or ``applied``."""
    status: BaseStatus
    kind: BaseKind | Literal["worktree"] = "worktree"
    commit: str | None = None
    spec_sha256: str | None = None
    graph_sha256: str | None = None
    system: System | None = None
    resources: Mapping[str, ResourceJson] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    files: tuple[str, ...] = ()
    """The spec's files, relative to the spec directory."""
    readers: ReaderTable | None = field(default=None, compare=False, repr=False)
    """The reader table of ``resources`` (``diff.readers_of``) when known (a git base from the
    plan cache, or one stored to it), so that the diff need not walk the head's inputs."""
    lineage: Lineage | None = field(default=None, compare=False, repr=False)
    """``lineage(system)`` when known (a git base from the plan cache, which stores it), so
    that the governance section need not compute it again."""

    @property
    def error_count(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The diagnostics of severity warning (compiler, target and graph rules)."""
        return tuple(d for d in self.diagnostics if d.severity == "warning")


@dataclass(frozen=True)
class Plan:
    environment: str
    head: Side
    base: Side
    system: str | None = None
    target: str | None = None
    resources: tuple[ResourceChange, ...] = ()
    unchanged: int = 0
    spec_changes: tuple[SpecChange, ...] = ()
    risks: tuple[Risk, ...] = ()
    warnings: tuple[str, ...] = ()
    new_warnings: tuple[Diagnostic, ...] | None = None
    """Those of the head's warnings that the base does not have (same code, message and spec
    path; lines may move), all of them when nothing is deployed at the base; None when the base
    cannot be compared (it failed, or it is the applied record, which keeps no diagnostics)."""
    problems: tuple[Diagnostic, ...] = ()
    """What stopped the plan: the head's errors, or git's (an unknown or refused revision)."""
    governance: Governance | None = None
    """The governance section; None when there is no ML summary (no plan, or an applied base
    this mlplane no longer compiles)."""

    @property
    def ok(self) -> bool:
        """False when there is no plan, only the problems that prevented one."""
        return self.head.status == "compiled" and not any(
            d.severity == "error" for d in self.problems
        )

    @property
    def has_changes(self) -> bool:
        return bool(self.resources or self.spec_changes)

    @property
    def head_warnings(self) -> tuple[Diagnostic, ...]:
        return self.head.warnings

    def warning_listing(self) -> tuple[str, tuple[Diagnostic, ...], int]:
        """(heading, warnings to list, how many others the base has too) for the renderers:
        the new warnings when the base compares, else every warning of the head."""
        if self.new_warnings is None:
            return "Warnings at the head", self.head_warnings, 0
        others = len(self.head_warnings) - len(self.new_warnings)
        return "New warnings", self.new_warnings, others

    def counts(self) -> dict[Action, int]:
        found: dict[Action, int] = dict.fromkeys(ACTIONS, 0)
        for change in self.resources:
            found[change.action] += 1
        return found

    def summary_line(self) -> str:
        """``Plan: 3 to create, 1 to update, 0 to replace, 0 to delete.`` (Terraform's words)."""
        if not self.has_changes:
            return "No changes. The head and the base describe the same system."
        c = self.counts()
        return (
            f"Plan: {c['create']} to create, {c['update']} to update, "
            f"{c['replace']} to replace, {c['delete']} to delete."
        )
