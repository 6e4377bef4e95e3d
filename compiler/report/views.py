"""The lineage graph as text for other tools: Mermaid (the Markdown report, GitHub), Graphviz
DOT and JSON (``mlplane graph --view lineage``).

Node identifiers in Mermaid and DOT are ``n0``, ``n1``, ... in the graph's node order (spec
names never become syntax); names and details go only into escaped labels. Classification is a
fill colour (a Mermaid ``classDef`` per class, a DOT ``fillcolor``); cross-border edges are thick
and red (Mermaid ``linkStyle``, DOT ``color``/``penwidth``) and labelled ``cross-border``.
"""

from __future__ import annotations

from mlplane.compiler.build.graph_dot import dot_string
from mlplane.compiler.core import ir
from mlplane.compiler.core.canonical import canonical_json
from mlplane.compiler.core.lineage import Lineage, LineageNode, lineage
from mlplane.compiler.render.mermaid import SHAPES
from mlplane.compiler.report.escape import mermaid
from mlplane.compiler.report.json_format import to_data
from mlplane.compiler.report.svg import CROSS, FILL, KIND_LABEL, STROKE

LINEAGE_VERSION = "mlplane.dev/lineage/v1"
_SHAPE = SHAPES
_DOT_SHAPE = {"dataSource": "cylinder", "model": "box", "endpoint": "ellipse", "sla": "hexagon"}


def _ids(lineage: Lineage) -> dict[str, str]:
    return {node.id: f"n{index}" for index, node in enumerate(lineage.nodes)}


def _label_lines(node: LineageNode) -> tuple[str, str]:
    second = " \u00b7 ".join(
        part for part in (KIND_LABEL[node.kind], node.classification, node.residency) if part
    )
    return node.name, second


def render_mermaid(lineage: Lineage) -> str:
    """A Mermaid flowchart, left to right, without the Markdown fence."""
    ids = _ids(lineage)
    lines = ["flowchart LR"]
    for node in lineage.nodes:
        name, second = _label_lines(node)
        start, end = _SHAPE[node.kind]
        lines.append(f'  {ids[node.id]}{start}"{mermaid(name)}<br/>{mermaid(second)}"{end}')
    crossing: list[int] = []
    for index, edge in enumerate(lineage.edges):
        if edge.cross_border:
            crossing.append(index)
            lines.append(f'  {ids[edge.source]} ==>|"cross-border"| {ids[edge.target]}')
        else:
            lines.append(f"  {ids[edge.source]} --> {ids[edge.target]}")
    for level, fill in FILL.items():
        if level is not None:
            lines.append(f"  classDef {level} fill:{fill},stroke:#37474f,color:#212121")
    lines.append(f"  classDef unclassified fill:{FILL[None]},stroke:#5d4037,color:#212121")
    groups: dict[str, list[str]] = {}
    for node in lineage.nodes:
        groups.setdefault(node.classification or "unclassified", []).append(ids[node.id])
    for name, members in sorted(groups.items()):
        lines.append(f"  class {','.join(members)} {name}")
    if crossing:
        shown = ",".join(str(index) for index in crossing)
        lines.append(f"  linkStyle {shown} stroke:{CROSS},stroke-width:3px")
    return "\n".join(lines) + "\n"


def render_dot(lineage: Lineage, title: str) -> str:
    ids = _ids(lineage)
    lines = [
        f"digraph {dot_string(title)} {{",
        "  rankdir=LR;",
        '  node [style=filled, fontname="sans-serif"];',
    ]
    for node in lineage.nodes:
        name, second = _label_lines(node)
        fill = FILL.get(node.classification, FILL[None])
        lines.append(
            f"  {ids[node.id]} [label={dot_string(name)[:-1]}\\n{dot_string(second)[1:]}, "
            f'shape={_DOT_SHAPE[node.kind]}, fillcolor="{fill}", color="{STROKE[node.kind]}"];'
        )
    for edge in lineage.edges:
        style = (
            f' [color="{CROSS}", penwidth=3, style=dashed, label="cross-border"]'
            if edge.cross_border
            else ""
        )
        lines.append(f"  {ids[edge.source]} -> {ids[edge.target]}{style};")
    return "\n".join([*lines, "}"]) + "\n"


def render_lineage_json(lineage: Lineage, system: str, environment: str) -> str:
    data = {"version": LINEAGE_VERSION, "system": system, "environment": environment}
    data.update(to_data(lineage))
    return canonical_json(data)


def lineage_text(system: ir.System, fmt: str) -> str:
    """``mlplane graph --view lineage``: the environment's lineage as json, dot or mermaid."""
    graph = lineage(system)
    title = f"{system.name}-{system.environment.name}-lineage"
    if fmt == "dot":
        return render_dot(graph, title)
    if fmt == "mermaid":
        return render_mermaid(graph)
    return render_lineage_json(graph, system.name, system.environment.name)
