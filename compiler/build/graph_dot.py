"""``mlplane graph``: the resource graph of one environment, as JSON or as Graphviz DOT.

JSON is exactly ``resources.json`` of ``mlplane build`` (so scripts can read either). DOT draws
each resource as a box labelled with its kind and logical name, a dashed edge from each parent
component and a solid edge per explicit dependency. Labels come from the spec (names), so they
are escaped for DOT's quoted strings and made safe for a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlplane.compiler.render.common import make_safe


def dot_string(text: str) -> str:
    """A DOT quoted string: backslash and double quote escaped, control characters shown as
    ``\\u{..}`` (never a raw newline that would end the statement)."""
    return '"' + _escaped(text) + '"'


def _escaped(text: str) -> str:
    return make_safe(text, keep="").replace("\\", "\\\\").replace('"', '\\"')


def render_dot(graph_json: str, title: str) -> str:
    document: Mapping[str, Any] = json.loads(graph_json)
    resources = list(document.get("resources", ()))
    lines = [
        f"digraph {dot_string(title)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="monospace"];',
    ]
    for resource in resources:
        kind = str(resource["type"]).rsplit(":", 1)[-1]
        shape = ", style=rounded" if resource.get("component") else ""
        label = f'"{_escaped(kind)}\\n{_escaped(str(resource["name"]))}"'
        lines.append(f"  {dot_string(str(resource['name']))} [label={label}{shape}];")
    for resource in resources:
        name = dot_string(str(resource["name"]))
        if resource.get("parent"):
            lines.append(f"  {dot_string(str(resource['parent']))} -> {name} [style=dashed];")
        for dependency in resource.get("dependsOn") or ():
            lines.append(f"  {dot_string(str(dependency))} -> {name};")
    return "\n".join([*lines, "}"]) + "\n"
