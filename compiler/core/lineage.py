"""Lineage graphs: cycles and transitive closure, without recursion (specs can be large)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
