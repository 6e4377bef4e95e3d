"""Lineage: cycles and transitive closure of name graphs, without recursion (specs can be
large), and the lineage graph of one environment (:func:`lineage`), which the governance
report draws and the plan compares (``compiler/core/governance.py``).

The lineage graph: data sources -> derived sources -> models -> endpoints and outputs -> SLAs.
Nodes: every data source, every model, each model's serving endpoint and every SLA. Edges:
``derives`` (a source to a source derived from it), ``reads`` (a model's direct input, or a
source its batch scores, to the model), ``serves`` (a model to its endpoint), ``writes`` (a
model to a data source it fills: captured traffic and batch outputs, :func:`model_outputs`)
and ``measures`` (an endpoint or data source to an SLA on it). A batch output's lineage is also
in the system model: its ``upstream`` holds the batch's inputs and the model's own data.

A node's classification is the highest it holds: a data source's own, a model's and its
endpoint's the highest of everything it reads (a model reading PII answers with PII-derived
data). Residency is where the data lives: a data source's own, the environment's for models
and endpoints. An edge is cross-border when both ends are bound to a residency (not
``global``, not undeclared) and they differ: data that leaves its jurisdiction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mlplane.compiler.core import ir

Graph = Mapping[str, Sequence[str]]


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each starting at its smallest
    name; components in sorted order. Edges to unknown nodes are ignored."""
    cycles = []
    for component in _components(graph):
        members = set(component)
        start = min(component)
        if len(component) == 1 and start not in graph.get(start, ()):
            continue
        cycles.append(_cycle_through(graph, start, members))
    return sorted(cycles)


def _components(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = [e for e in graph.get(node, ()) if e in graph]
            if position < len(edges):
                work.append((node, position + 1))
                nxt = edges[position]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def _cycle_through(graph: Graph, start: str, members: set[str]) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside one component (breadth-first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return list(reversed(path))
                if nxt in members and nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start]


def closure(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Every node's transitive successors, sorted (nodes on cycles get what they reach)."""
    result: dict[str, tuple[str, ...]] = {}
    for root in graph:
        seen: set[str] = set()
        todo = [e for e in graph[root] if e in graph]
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in result:
                seen.update(result[node])
                continue
            todo.extend(e for e in graph[node] if e in graph)
        seen.discard(root)
        result[root] = tuple(sorted(seen))
    return result


# --- the lineage graph of one environment -------------------------------------------------------

NodeKind = Literal["dataSource", "model", "endpoint", "sla"]
EdgeKind = Literal["derives", "reads", "serves", "writes", "measures"]


@dataclass(frozen=True, slots=True)
class LineageNode:
    id: str
    """A stable identifier (``dataSource:events``); renderers map it to their own safe ids."""
    kind: NodeKind
    name: str
    classification: str | None
    """The highest classification the node holds or reads (None for SLAs)."""
    residency: str | None
    """Where the node's data lives: a data source's residency, the environment's for models
    and endpoints."""
    detail: str


@dataclass(frozen=True, slots=True)
class LineageEdge:
    source: str
    target: str
    kind: EdgeKind
    cross_border: bool
    """The two ends are bound to different residencies (``global`` and unknown bind nothing)."""


@dataclass(frozen=True, slots=True)
class Lineage:
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]


CLASSIFICATION_ORDER = ("public", "internal", "confidential", "pii", "phi")
"""From least to most sensitive: a node shows the highest it holds or reads."""
_RANK = {name: index for index, name in enumerate(CLASSIFICATION_ORDER)}
UNBOUND = frozenset({"global"})


def node_id(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def model_outputs(model: ir.Model) -> tuple[str, ...]:
    """The data sources a model writes into: its captured traffic and its batch outputs."""
    outputs = []
    if model.serving.data_capture is not None:
        outputs.append(model.serving.data_capture.destination)
    if model.batch is not None:
        outputs += model.batch.outputs
    return tuple(sorted(set(outputs)))


def model_reads(model: ir.Model) -> tuple[str, ...]:
    """The data sources a model reads directly: its inputs, then what its batch scores."""
    scored = model.batch.inputs if model.batch is not None else ()
    return tuple(dict.fromkeys((*model.inputs, *scored)))


def highest(classifications: Iterable[str]) -> str | None:
    ranked = sorted(classifications, key=lambda c: _RANK.get(c, -1))
    return ranked[-1] if ranked else None


def crosses(first: str | None, second: str | None) -> bool:
    bound = first not in UNBOUND and second not in UNBOUND
    return bound and first is not None and second is not None and first != second


def model_classification(system: ir.System, model: ir.Model) -> str | None:
    names = (*model.inputs, *model.upstream)
    return highest(system.data_sources[n].classification for n in names if n in system.data_sources)


def lineage(system: ir.System) -> Lineage:
    served = system.environment.residency
    nodes: list[LineageNode] = []
    edges: list[LineageEdge] = []
    where: dict[str, str | None] = {}
    for source in system.data_sources.values():
        key = node_id("dataSource", source.name)
        where[key] = source.residency
        detail = f"{source.type}, {source.classification}" + (
            f", {source.residency}" if source.residency else ""
        )
        nodes.append(
            LineageNode(
                key, "dataSource", source.name, source.classification, source.residency, detail
            )
        )
        for parent in source.derived_from:
            edges.append(LineageEdge(node_id("dataSource", parent), key, "derives", False))
    for model in system.models.values():
        key, endpoint = node_id("model", model.name), node_id("endpoint", model.name)
        level = model_classification(system, model)
        where[key] = where[endpoint] = served
        nodes.append(
            LineageNode(
                key, "model", model.name, level, served, f"{model.framework} {model.version}"
            )
        )
        nodes.append(
            LineageNode(endpoint, "endpoint", model.name, level, served, model.serving.exposure)
        )
        edges += [
            LineageEdge(node_id("dataSource", name), key, "reads", False)
            for name in model_reads(model)
        ]
        edges.append(LineageEdge(key, endpoint, "serves", False))
        edges += [
            LineageEdge(key, node_id("dataSource", name), "writes", False)
            for name in model_outputs(model)
            if name in system.data_sources
        ]
    for sla in system.slas.values():
        key = node_id("sla", sla.name)
        nodes.append(LineageNode(key, "sla", sla.name, None, None, _sla_detail(sla)))
        if sla.subject is not None:
            kind = "endpoint" if sla.subject_kind == "model" else "dataSource"
            edges.append(LineageEdge(node_id(kind, sla.subject), key, "measures", False))
    # residencies are known only once every node is: judge the borders last
    fixed = tuple(_with_border(edge, where) for edge in edges)
    return Lineage(tuple(sorted(nodes, key=_node_key)), tuple(sorted(set(fixed), key=_edge_key)))


def _with_border(edge: LineageEdge, where: dict[str, str | None]) -> LineageEdge:
    if edge.kind in ("serves", "measures"):
        return edge
    return LineageEdge(
        edge.source, edge.target, edge.kind, crosses(where.get(edge.source), where.get(edge.target))
    )


_KIND_ORDER = {"dataSource": 0, "model": 1, "endpoint": 2, "sla": 3}


def _node_key(node: LineageNode) -> tuple[int, str]:
    return (_KIND_ORDER[node.kind], node.name)


def _edge_key(edge: LineageEdge) -> tuple[str, str, str]:
    return (edge.source, edge.target, edge.kind)


def _sla_detail(sla: ir.Sla) -> str:
    return f"{sla.indicator.kind} {sla.objective:g}%"
