"""The governance section of a plan: what a change does to personal data, residency,
explainability, drift monitoring and waivers, and to the lineage.

The facts come from ``compiler/core/governance.py`` (the same comparison of two system models
the governance report's authors would make by hand); this module binds each to the head's spec
line, to the risk flag it raises or shares, and draws the lineage edges that change as a
Mermaid diff for the pull-request comment. Every kind has a risk code, so ``--fail-on risk``
catches each; three codes are the governance kinds' own (``compiler/plan/risk.py`` says what
they mean), three are older codes that the ML
summary's lines already raise (a dropped drift monitor is ``alert-removed``, a waiver added or
extended ``waiver-added``/``waiver-extended``), and a flag is raised once per spec line and code
whichever of the two raises it.

Pure: no I/O, deterministic order (kind, then subject).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from mlplane.compiler.core.diagnostics import format_path
from mlplane.compiler.core.governance import Kind, governance_diff
from mlplane.compiler.core.lineage import LineageEdge, LineageNode
from mlplane.compiler.plan.model import (
    Governance,
    GovernanceLine,
    Risk,
    Side,
    SpecChange,
    SpecRef,
)
from mlplane.compiler.render.mermaid import SHAPES, label

RISK_OF: Mapping[Kind, str] = MappingProxyType(
    {
        "personal-data-consumer-added": "personal-data-consumer-added",
        "residency-crossing-added": "residency-crossing-added",
        "explainability-dropped": "explainability-dropped",
        "drift-monitor-dropped": "alert-removed",
        "waiver-added": "waiver-added",
        "waiver-extended": "waiver-extended",
    }
)
"""The risk code each governance kind raises (or shares with its ML summary line)."""

MAX_DRAWN = 80
"""Lineage edges drawn in the comment's Mermaid diff at most; beyond it the comment says how
many changed and the JSON plan lists them (a first deployment of a large spec adds thousands)."""
MAX_LISTED = 40
"""Lineage edges listed in the text plan at most."""
KIND_LABEL = MappingProxyType(
    {"dataSource": "data source", "model": "model", "endpoint": "endpoint", "sla": "SLA"}
)
ADDED_STYLE = "stroke:#2e7d32,stroke-width:3px"
REMOVED_STYLE = "stroke:#c62828,stroke-width:2px,stroke-dasharray:6 4"
CROSSING_STYLE = "stroke:#e65100,stroke-width:3px"
LEGEND = (
    "thick green arrows are edges the change adds, dashed red arrows edges it removes, thick "
    "orange arrows kept edges that now cross a residency border"
)


def governance(head: Side, base: Side) -> Governance | None:
    """The section between ``head`` (compiled) and ``base``; a base that is not compiled counts
    as nothing deployed (as the ML summary lists a failed base's head as all added). None when
    the applied base's spec no longer compiles (the ML summary is left out too)."""
    system = head.system
    assert system is not None
    if base.status == "compiled" and base.system is None:
        return None
    old = base.system if base.status == "compiled" else None
    diff = governance_diff(old, system, base.lineage if old is not None else None)
    lines = tuple(
        GovernanceLine(
            change.kind,
            change.subject,
            change.text,
            SpecRef(format_path(change.path), system.locate(change.path), "head"),
            RISK_OF[change.kind],
        )
        for change in diff.changes
    )
    return Governance(lines, diff.edges_added, diff.edges_removed, diff.nodes, diff.edges_crossing)


def governance_risks(section: Governance | None, raised: Iterable[Risk]) -> list[Risk]:
    """The flags of the section's changes that no line of the ML summary raised already (same
    code, same spec path): one per change, its message the change's text."""
    if section is None:
        return []
    seen = {(risk.code, risk.source.path) for risk in raised}
    return [
        Risk(line.risk, line.text, line.subject, line.source)
        for line in section.changes
        if (line.risk, line.source.path) not in seen
    ]


def marked(lines: Iterable[SpecChange], risks: Iterable[Risk]) -> list[SpecChange]:
    """The ML summary's lines, each also carrying the codes of the flags raised at its spec
    path (``model scorer: explainability required (shap) → off`` ends with ⚠ like any flagged
    line, though the flag's message is the governance change's)."""
    at: dict[tuple[str, str], list[str]] = {}
    for risk in risks:
        at.setdefault((risk.source.side, risk.source.path), []).append(risk.code)
    found = []
    for line in lines:
        codes = at.get((line.source.side, line.source.path), [])
        extra = tuple(code for code in dict.fromkeys(codes) if code not in line.risks)
        found.append(replace(line, risks=(*line.risks, *extra)) if extra else line)
    return found


def edge_text(edge: LineageEdge, nodes: Mapping[str, LineageNode]) -> str:
    """``data source patients → model triage (reads, cross-border)``."""
    crossing = ", cross-border" if edge.cross_border else ""
    return f"{_node_text(nodes, edge.source)} → {_node_text(nodes, edge.target)} ({edge.kind}{crossing})"


def _node_text(nodes: Mapping[str, LineageNode], key: str) -> str:
    node = nodes.get(key)
    if node is None:
        return key
    return f"{KIND_LABEL[node.kind]} {node.name}"


def edge_counts(section: Governance) -> str:
    """``3 lineage edge(s) added, 1 removed, 1 newly cross-border``."""
    text = f"{len(section.edges_added)} lineage edge(s) added, {len(section.edges_removed)} removed"
    crossing = len(section.edges_crossing)
    return text + (f", {crossing} newly cross-border" if crossing else "")


def listed_edges(section: Governance) -> list[tuple[str, LineageEdge]]:
    """Every changed edge with its symbol: ``+`` added, ``-`` removed, ``!`` newly crossing."""
    return [
        *(("+", edge) for edge in section.edges_added),
        *(("-", edge) for edge in section.edges_removed),
        *(("!", edge) for edge in section.edges_crossing),
    ]


def drawable(section: Governance) -> bool:
    return 0 < section.edges <= MAX_DRAWN


def mermaid_diff(section: Governance) -> str:
    """The lineage edges that change as a Mermaid flowchart (no fence): the nodes at their ends,
    added edges thick and green (``==>``, labelled ``added``), removed ones dashed and red
    (``-.->``, labelled ``removed``), kept edges that now cross a residency border thick and
    orange (labelled ``now ..., cross-border``); a cross-border edge's label says so."""
    ids = {node.id: f"n{index}" for index, node in enumerate(section.nodes)}
    lines = ["flowchart LR"]
    for node in section.nodes:
        start, end = SHAPES[node.kind]
        second = " · ".join(
            part for part in (KIND_LABEL[node.kind], node.classification, node.residency) if part
        )
        lines.append(f'  {ids[node.id]}{start}"{label(node.name)}<br/>{label(second)}"{end}')
    index = 0
    styles: list[tuple[list[int], str]] = []
    for edges, arrow, word, style in (
        (section.edges_added, "==>", "added", ADDED_STYLE),
        (section.edges_removed, "-.->", "removed", REMOVED_STYLE),
        (section.edges_crossing, "==>", "now", CROSSING_STYLE),
    ):
        numbers = []
        for edge in edges:
            text = f"{word} {edge.kind}" + (", cross-border" if edge.cross_border else "")
            lines.append(f'  {ids[edge.source]} {arrow}|"{label(text)}"| {ids[edge.target]}')
            numbers.append(index)
            index += 1
        styles.append((numbers, style))
    for numbers, style in styles:
        if numbers:
            lines.append(f"  linkStyle {','.join(map(str, numbers))} {style}")
    return "\n".join(lines) + "\n"


def governance_json(
    section: Governance | None, ref: Callable[[SpecRef], dict[str, Any]]
) -> dict[str, Any] | None:
    """The section as the JSON plan's ``governance`` (``docs/plan.schema.json``); ``ref``
    renders a :class:`SpecRef` as the plan's other ``source`` fields."""
    if section is None:
        return None
    return {
        "changes": [
            {
                "kind": line.kind,
                "subject": line.subject,
                "text": line.text,
                "source": ref(line.source),
                "risk": line.risk,
            }
            for line in section.changes
        ],
        "lineage": {
            "added": [_edge_json(edge) for edge in section.edges_added],
            "removed": [_edge_json(edge) for edge in section.edges_removed],
            "crossing": [_edge_json(edge) for edge in section.edges_crossing],
            "nodes": [
                {
                    "id": node.id,
                    "kind": node.kind,
                    "name": node.name,
                    "classification": node.classification,
                    "residency": node.residency,
                }
                for node in section.nodes
            ],
        },
    }


def _edge_json(edge: LineageEdge) -> dict[str, Any]:
    return {
        "source": edge.source,
        "target": edge.target,
        "kind": edge.kind,
        "crossBorder": edge.cross_border,
    }
