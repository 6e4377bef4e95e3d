"""The lineage picture as SVG, laid out and drawn in pure Python.

Why not Graphviz: the report must be byte-identical for the same spec on every machine, and
``dot``'s output changes with its version and fonts (and it may not be installed); so the
picture is always drawn here, never by an external program. ``mlplane graph --view lineage
--format dot`` prints the same graph for those who want Graphviz's drawing.

Layout (a layered drawing in the manner of Sugiyama et al.): each node gets a column, the
longest path to it from a node without predecessors (data sources that derive from nothing
start at 0; SLAs all go in the last column, so objectives read as the right margin); nodes on a
cycle (a model reading what it writes) take the column after the last of their placed
predecessors. Inside a column nodes start in kind-then-name order and then move to the mean
position of their neighbours in the previous column (and, sweeping back, the next one), four
sweeps in all, ties broken by name, so crossings drop and the result never depends on dict
order. Cost: linear in nodes and edges per sweep.

Drawing: boxes filled by classification, the kind and residency written in each box, edges as
curves with arrowheads; cross-border edges thick, dashed and red, with a legend. Colours,
strokes and markers come from a style sheet inside the picture, by class (``c-pii``,
``dataSource``, ``cross-border``), not from attributes repeated on each of thousands of boxes
and edges; the picture still carries its own look when saved on its own. Every label
is escaped (``escape.xml``) and cut to the box with its full text in a ``<title>``, which
screen readers and hover tips show; the picture has a ``<title>`` and ``<desc>`` and
``role="img"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlplane.compiler.core.lineage import Lineage, LineageEdge, LineageNode
from mlplane.compiler.report.escape import xml

BOX_WIDTH, BOX_HEIGHT = 200, 44
COLUMN_GAP, ROW_GAP, MARGIN = 80, 16, 20
LEGEND_HEIGHT = 64
MAX_LABEL = 26
"""Characters of a name that fit in a box at the font size used (the full name is its title)."""

FILL = {
    "public": "#e8f5e9",
    "internal": "#e3f2fd",
    "confidential": "#fff3e0",
    "pii": "#fde0e6",
    "phi": "#ede0f5",
    None: "#f5f5f5",
}
STROKE = {"dataSource": "#37474f", "model": "#1a237e", "endpoint": "#004d40", "sla": "#5d4037"}
KIND_LABEL = {"dataSource": "data", "model": "model", "endpoint": "endpoint", "sla": "SLA"}
CROSS = "#c62828"
SWEEPS = 4


def _classed(level: str | None) -> str:
    return f"c-{level or 'none'}"


STYLE = (
    "<style>"
    + "".join(f".lineage .{_classed(level)} rect{{fill:{fill}}}" for level, fill in FILL.items())
    + "".join(f".lineage .{kind} rect{{stroke:{stroke}}}" for kind, stroke in STROKE.items())
    + ".lineage .node rect{stroke-width:1.5}"
    ".lineage .node text{fill:#424242}"
    ".lineage .node text.name{fill:#212121;font-weight:600}"
    ".lineage .edge{fill:none;stroke:#90a4ae;stroke-width:1.5;marker-end:url(#arrow)}"
    f".lineage .edge.cross-border{{stroke:{CROSS};stroke-width:3;stroke-dasharray:8 4;"
    "marker-end:url(#arrow-cross)}"
    "</style>"
)
"""The picture's look, by class (inside the ``<svg>``, so a saved picture keeps it)."""


@dataclass(frozen=True, slots=True)
class Placed:
    node: LineageNode
    column: int
    row: int
    x: int
    y: int


def columns(lineage: Lineage) -> dict[str, int]:
    """Each node's column: the longest path to it (SLAs in the last column)."""
    preds: dict[str, list[str]] = {n.id: [] for n in lineage.nodes}
    succs: dict[str, list[str]] = {n.id: [] for n in lineage.nodes}
    for edge in lineage.edges:
        if edge.source in preds and edge.target in preds and edge.source != edge.target:
            preds[edge.target].append(edge.source)
            succs[edge.source].append(edge.target)
    waiting = {key: len(set(found)) for key, found in preds.items()}
    ready = sorted(key for key, count in waiting.items() if count == 0)
    column: dict[str, int] = {}
    order = [n.id for n in lineage.nodes]
    while len(column) < len(order):
        if not ready:  # a cycle: place its first unplaced node after its placed predecessors
            ready = [next(key for key in order if key not in column)]
        key = ready.pop()
        column[key] = max((column[p] + 1 for p in preds[key] if p in column), default=0)
        for nxt in sorted(set(succs[key]), reverse=True):
            if nxt in column:
                continue
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
    kinds = {n.id: n.kind for n in lineage.nodes}
    last = max((c for k, c in column.items() if kinds[k] != "sla"), default=-1) + 1
    return {key: (last if kinds[key] == "sla" else c) for key, c in column.items()}


def order_columns(lineage: Lineage, column: Mapping[str, int]) -> list[list[str]]:
    """The nodes of each column, in an order that keeps edges short (barycentre sweeps)."""
    width = max(column.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(width)]
    for node in lineage.nodes:  # already in kind-then-name order
        layers[column[node.id]].append(node.id)
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for edge in lineage.edges:
        preds.setdefault(edge.target, []).append(edge.source)
        succs.setdefault(edge.source, []).append(edge.target)
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        indices = range(1, width) if forward else range(width - 2, -1, -1)
        for index in indices:
            neighbour = layers[index - 1] if forward else layers[index + 1]
            position = {key: i for i, key in enumerate(neighbour)}
            links = preds if forward else succs
            layers[index] = _by_barycentre(layers[index], links, position)
    return layers


def _by_barycentre(
    layer: list[str], links: Mapping[str, list[str]], position: Mapping[str, int]
) -> list[str]:
    keyed = []
    for index, key in enumerate(layer):
        near = [position[other] for other in links.get(key, ()) if other in position]
        centre = sum(near) / len(near) if near else float(index)
        keyed.append((centre, key))
    return [key for _, key in sorted(keyed)]


def layout(lineage: Lineage) -> tuple[list[Placed], int, int]:
    """Every node placed, and the drawing's width and height (legend included)."""
    column = columns(lineage)
    layers = order_columns(lineage, column)
    nodes = {n.id: n for n in lineage.nodes}
    tallest = max((len(layer) for layer in layers), default=0)
    full = tallest * (BOX_HEIGHT + ROW_GAP)
    placed = []
    for index, layer in enumerate(layers):
        top = MARGIN + LEGEND_HEIGHT + (full - len(layer) * (BOX_HEIGHT + ROW_GAP)) // 2
        for row, key in enumerate(layer):
            x = MARGIN + index * (BOX_WIDTH + COLUMN_GAP)
            y = top + row * (BOX_HEIGHT + ROW_GAP)
            placed.append(Placed(nodes[key], index, row, x, y))
    width = max(2 * MARGIN + len(layers) * (BOX_WIDTH + COLUMN_GAP) - COLUMN_GAP, 560)
    height = 2 * MARGIN + LEGEND_HEIGHT + max(full, BOX_HEIGHT)
    return placed, width, height


def _cut(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def render_svg(lineage: Lineage, title: str, description: str) -> str:
    """The picture as one ``<svg>`` element (for inline HTML or a standalone file)."""
    placed, width, height = layout(lineage)
    at = {p.node.id: p for p in placed}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="lineage-title '
        'lineage-desc" class="lineage" font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="lineage-title">{xml(title)}</title>',
        f'<desc id="lineage-desc">{xml(description)}</desc>',
        STYLE,
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#546e7a"/></marker>'
        f'<marker id="arrow-cross" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{CROSS}"/></marker>'
        "</defs>",
        _legend(),
        '<g class="edges" fill="none">',
        *(_edge(edge, at) for edge in lineage.edges if edge.source in at and edge.target in at),
        "</g>",
        '<g class="nodes">',
        *(_node(p) for p in placed),
        "</g>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _edge(edge: LineageEdge, at: Mapping[str, Placed]) -> str:
    start, end = at[edge.source], at[edge.target]
    x1, y1 = start.x + BOX_WIDTH, start.y + BOX_HEIGHT // 2
    x2, y2 = end.x, end.y + BOX_HEIGHT // 2
    if end.column <= start.column:  # a back edge (a cycle): leave and enter from below
        x1, y1 = start.x + BOX_WIDTH // 2, start.y + BOX_HEIGHT
        x2, y2 = end.x + BOX_WIDTH // 2, end.y + BOX_HEIGHT
        bend = max(BOX_HEIGHT, abs(x1 - x2) // 4)
        curve = f"M{x1},{y1} C{x1},{y1 + bend} {x2},{y2 + bend} {x2},{y2}"
    else:
        middle = (x1 + x2) // 2
        curve = f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
    crossing = ", crosses a residency border" if edge.cross_border else ""
    label = f"{start.node.name} {edge.kind} {end.node.name}{crossing}"
    css = "edge cross-border" if edge.cross_border else "edge"
    return f'<path class="{css}" d="{curve}"><title>{xml(label)}</title></path>'


def _node(p: Placed) -> str:
    node = p.node
    kind = KIND_LABEL[node.kind]
    second = " \u00b7 ".join(part for part in (kind, node.classification, node.residency) if part)
    full = f"{kind} {node.name}: {node.detail}"
    level = _classed(node.classification if node.classification in FILL else None)
    return (
        f'<g class="node {node.kind} {level}" transform="translate({p.x},{p.y})">'
        f"<title>{xml(full)}</title>"
        f'<rect width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6"/>'
        f'<text x="10" y="18" class="name">{xml(_cut(node.name))}</text>'
        f'<text x="10" y="34">{xml(_cut(second, 30))}</text>'
        "</g>"
    )


def _legend() -> str:
    items = [(FILL[name], name) for name in ("public", "internal", "confidential", "pii", "phi")]
    parts = [f'<g class="legend" transform="translate({MARGIN},{MARGIN})">']
    for index, (fill, name) in enumerate(items):
        x = index * 100
        parts.append(
            f'<rect x="{x}" y="0" width="14" height="14" fill="{fill}" stroke="#616161"/>'
            f'<text x="{x + 20}" y="12">{name}</text>'
        )
    parts.append(
        f'<path d="M0,36 L40,36" stroke="{CROSS}" stroke-width="3" stroke-dasharray="8 4"/>'
        '<text x="48" y="40">cross-border edge</text>'
        '<path d="M180,36 L220,36" stroke="#90a4ae" stroke-width="1.5"/>'
        '<text x="228" y="40">lineage edge (data, model, endpoint, SLA from left to right)</text>'
    )
    parts.append("</g>")
    return "".join(parts)


def description(lineage: Lineage, counts: Sequence[tuple[str, int]]) -> str:
    """A sentence for the picture's ``<desc>`` (what a screen reader says about it)."""
    crossing = sum(1 for edge in lineage.edges if edge.cross_border)
    said = ", ".join(f"{count} {what}" for what, count in counts)
    return f"Lineage graph with {said}; {crossing} edge(s) cross a residency border."
