"""What a change does to governance: the facts a data-protection officer or model-risk reviewer
must see, computed from the base and head system models of one environment.

* ``personal-data-consumer-added``: a model reads PII or PHI (directly or through lineage) that
  it did not read before, or a new model reads it;
* ``residency-crossing-added``: a lineage edge crosses a residency border that did not (data
  derived or read across jurisdictions);
* ``explainability-dropped``: a model that required explanations no longer does (a removed
  model drops nothing: it no longer decides anything);
* ``drift-monitor-dropped``: a model that was monitored for drift no longer is;
* ``waiver-added`` / ``waiver-extended``: a waiver appears, or its expiry moves later.

Each change names the spec path a reviewer should read in the head (the line that made it).
Pure and ordered (kind, then subject). The lineage edges added and removed (an edge is its
source, target and kind) and those that newly cross a border are returned too, with the nodes
at their ends, for a drawing of the lineage's change. The plan's governance
section (``compiler/plan/governance.py``) reads this; it sits on the first floor so that the
plan and the report (``compiler/report``) may both import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.compiler.core.lineage import Lineage, LineageEdge, LineageNode, lineage

PERSONAL = frozenset({"pii", "phi"})
Kind = Literal[
    "personal-data-consumer-added",
    "residency-crossing-added",
    "explainability-dropped",
    "drift-monitor-dropped",
    "waiver-added",
    "waiver-extended",
]
KINDS: tuple[Kind, ...] = (
    "personal-data-consumer-added",
    "residency-crossing-added",
    "explainability-dropped",
    "drift-monitor-dropped",
    "waiver-added",
    "waiver-extended",
)


@dataclass(frozen=True, slots=True)
class GovernanceChange:
    kind: Kind
    subject: str
    text: str
    path: SpecPath = ()
    """The spec path in the head that makes the change (its nearest written ancestor is
    located when the path itself is gone, as for a dropped monitor)."""


@dataclass(frozen=True, slots=True)
class GovernanceDiff:
    changes: tuple[GovernanceChange, ...]
    edges_added: tuple[LineageEdge, ...]
    edges_removed: tuple[LineageEdge, ...]
    nodes: tuple[LineageNode, ...] = ()
    """The nodes at the ends of the edges added, removed or newly crossing (as in the head;
    as in the base when the head no longer has them), in lineage order."""
    edges_crossing: tuple[LineageEdge, ...] = ()
    """Edges on both sides that cross a residency border in the head only (an end moved)."""


def governance_diff(
    base: ir.System | None, head: ir.System, base_lineage: Lineage | None = None
) -> GovernanceDiff:
    """The governance changes from ``base`` (None: nothing deployed yet) to ``head``.

    ``base_lineage`` is ``lineage(base)`` when the caller already has it (the plan cache
    stores the base's with its entry), so that it is not computed again; it must be that
    very value, and is ignored without a base.
    """
    after_graph = lineage(head)
    before_graph = Lineage((), ())
    if base is not None:
        before_graph = base_lineage if base_lineage is not None else lineage(base)
    changes = [
        *_personal_readers(base, head),
        *_crossings(base, head, before_graph, after_graph),
        *_dropped(base, head),
        *_waivers(base, head),
    ]
    before = {_edge_key(edge): edge for edge in before_graph.edges}
    after = {_edge_key(edge): edge for edge in after_graph.edges}
    added = tuple(edge for key, edge in sorted(after.items()) if key not in before)
    removed = tuple(edge for key, edge in sorted(before.items()) if key not in after)
    crossing = tuple(
        edge
        for key, edge in sorted(after.items())
        if key in before and edge.cross_border and not before[key].cross_border
    )
    return GovernanceDiff(
        tuple(sorted(changes, key=lambda c: (c.kind, c.subject, c.text))),
        added,
        removed,
        _ends((*added, *removed, *crossing), after_graph, before_graph),
        crossing,
    )


def _edge_key(edge: LineageEdge) -> tuple[str, str, str]:
    return (edge.source, edge.target, edge.kind)


def _ends(edges: tuple[LineageEdge, ...], head: Lineage, base: Lineage) -> tuple[LineageNode, ...]:
    wanted = {end for edge in edges for end in (edge.source, edge.target)}
    found = {node.id: node for node in base.nodes if node.id in wanted}
    found.update((node.id, node) for node in head.nodes if node.id in wanted)
    order = {node.id: index for index, node in enumerate((*head.nodes, *base.nodes))}
    return tuple(sorted(found.values(), key=lambda node: order[node.id]))


def _personal(system: ir.System, model: ir.Model) -> set[str]:
    names = (*model.inputs, *model.upstream)
    return {
        n
        for n in names
        if n in system.data_sources and system.data_sources[n].classification in PERSONAL
    }


def _personal_readers(base: ir.System | None, head: ir.System) -> list[GovernanceChange]:
    found = []
    for model in head.models.values():
        now = _personal(head, model)
        old = base.models.get(model.name) if base is not None else None
        before = _personal(base, old) if base is not None and old is not None else set()
        read = set((*old.inputs, *old.upstream)) if old is not None else set()
        for name in sorted(now - before):
            level = head.data_sources[name].classification
            if old is None:
                path: SpecPath = ("models", model.name)
            elif name in read:  # read before, personal now: its classification was raised
                path = ("dataSources", name, "classification")
            else:
                path = ("models", model.name, "inputs")
            found.append(
                GovernanceChange(
                    "personal-data-consumer-added",
                    f"models.{model.name}",
                    f"model {model.name!r} now reads {level} data source {name!r}",
                    path,
                )
            )
    return found


def _crossings(
    base: ir.System | None, head: ir.System, before_graph: Lineage, after_graph: Lineage
) -> list[GovernanceChange]:
    before = {e for e in before_graph.edges if e.cross_border}
    names = {n.id: n for n in after_graph.nodes}
    found = []
    for edge in after_graph.edges:
        if edge.cross_border and edge not in before:
            source, target = names[edge.source], names[edge.target]
            found.append(
                GovernanceChange(
                    "residency-crossing-added",
                    f"{edge.source} -> {edge.target}",
                    f"{_crossing_text(edge, source, target)}: data crosses a residency border",
                    _crossing_path(base, head, edge, source, target),
                )
            )
    return found


_NOUN = {"dataSource": "data source", "model": "model", "endpoint": "endpoint", "sla": "SLA"}


def _crossing_text(edge: LineageEdge, source: LineageNode, target: LineageNode) -> str:
    """``data source 'features' (eu) is derived from data source 'profiles' (us)``."""

    def said(node: LineageNode) -> str:
        return f"{_NOUN[node.kind]} {node.name!r} ({node.residency})"

    if edge.kind == "derives":
        return f"{said(target)} is derived from {said(source)}"
    if edge.kind == "reads":
        return f"{said(target)} reads {said(source)}"
    return f"{said(source)} {edge.kind} {said(target)}"


def _crossing_path(
    base: ir.System | None,
    head: ir.System,
    edge: LineageEdge,
    source: LineageNode,
    target: LineageNode,
) -> SpecPath:
    """The residency that moved (a data source's, or the environment's for a model), else the
    line that declares the edge."""
    for node in (source, target):
        if node.kind == "dataSource" and base is not None:
            old = base.data_sources.get(node.name)
            if old is not None and old.residency != node.residency:
                return ("dataSources", node.name, "residency")
        moved = base is not None and base.environment.residency != head.environment.residency
        if node.kind == "model" and moved:
            return ("environments", head.environment.name, "residency")
    if edge.kind == "derives":
        return ("dataSources", target.name, "derivedFrom")
    if edge.kind == "reads":
        return ("models", target.name, "inputs")
    capture = head.models[source.name].serving.data_capture
    if capture is not None and capture.destination == target.name:
        return ("models", source.name, "serving", "dataCapture")
    return ("models", source.name)


def _dropped(base: ir.System | None, head: ir.System) -> list[GovernanceChange]:
    if base is None:
        return []
    found = []
    for model in head.models.values():
        old = base.models.get(model.name)
        if old is None:
            continue
        subject, root = f"models.{model.name}", ("models", model.name)
        if old.explainability_required and not model.explainability_required:
            text = f"model {model.name!r} no longer requires explanations"
            path: SpecPath = (*root, "explainability")
            found.append(GovernanceChange("explainability-dropped", subject, text, path))
        if old.drift is not None and model.drift is None:
            text = f"model {model.name!r} is no longer monitored for drift"
            path = (*root, "monitoring", "drift")
            found.append(GovernanceChange("drift-monitor-dropped", subject, text, path))
    return found


def _waivers(base: ir.System | None, head: ir.System) -> list[GovernanceChange]:
    before = {(w.policy, w.target): w for w in base.waivers} if base is not None else {}
    found = []
    for waiver in head.waivers:
        subject = f"{waiver.policy} on {waiver.target}"
        old = before.get((waiver.policy, waiver.target))
        if old is None:
            text = f"waiver added until {waiver.expires} by {waiver.owner}"
            path = waiver.origin.path
            found.append(GovernanceChange("waiver-added", subject, text, path))
        elif waiver.expires > old.expires:
            text = f"waiver extended from {old.expires} to {waiver.expires} by {waiver.owner}"
            path = (*waiver.origin.path, "expires")
            found.append(GovernanceChange("waiver-extended", subject, text, path))
    return found
