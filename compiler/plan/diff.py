"""Diffing two resource graphs: which resources are created, updated, replaced or deleted.

Resources are matched by logical name (unique in a graph, derived only from spec names, so a
resource keeps its name across builds). A changed type or parent changes the resource's Pulumi
URN, so Pulumi creates the new one and deletes the old: that is shown as a replacement. Inputs
are compared property by property (``spec.replicas: 2 → 4``); a change of one of the fields in
``compiler/plan/replace.py`` turns the update into a replacement. Paths that the resource's
``ignoreChanges`` option names are left out of the update, as Pulumi leaves them out, and listed
separately. The spec location (``origin``) is not compared: moving a line is not a change.

Why compare JSON (``Resource.to_json()``) rather than graph objects: the base may come from the
record of the last apply (``.mlplane/applied/``), which stores exactly that JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplane.compiler.core.diagnostics import Location, format_path
from mlplane.compiler.plan.model import (
    Action,
    PropertyChange,
    ResourceChange,
    ResourceJson,
    SideName,
    SpecRef,
)
from mlplane.compiler.plan.replace import covers, forced_by, split_field

Path = tuple[str | int, ...]
_COMPARED = ("type", "parent", "component", "inputs", "options", "dependsOn")


def diff_graphs(
    base: Mapping[str, ResourceJson], head: Mapping[str, ResourceJson]
) -> tuple[tuple[ResourceChange, ...], int]:
    """Every changed resource (sorted by action, then name) and the number left unchanged."""
    changes: list[ResourceChange] = []
    unchanged = 0
    for name in sorted(set(base) | set(head)):
        old, new = base.get(name), head.get(name)
        if old is None:
            assert new is not None
            changes.append(_whole("create", new, "head"))
        elif new is None:
            changes.append(_whole("delete", old, "base"))
        elif all(old.get(key) == new.get(key) for key in _COMPARED):
            unchanged += 1
        else:
            changes.append(_changed(old, new))
    order = {"create": 0, "replace": 1, "update": 2, "delete": 3}
    changes.sort(key=lambda c: (order[c.action], c.name))
    return tuple(changes), unchanged


def source_of(resource: ResourceJson, side: SideName) -> SpecRef:
    origin = resource.get("origin") or {}
    file, line, column = origin.get("file"), origin.get("line"), origin.get("column")
    location = Location(file, line, column) if isinstance(file, str) and line and column else None
    return SpecRef(str(origin.get("path", "")), location, side)


def _whole(action: Action, resource: ResourceJson, side: SideName) -> ResourceChange:
    return ResourceChange(
        action=action,
        type=str(resource["type"]),
        name=str(resource["name"]),
        parent=resource.get("parent"),
        source=source_of(resource, side),
        component=bool(resource.get("component")),
        protected=side == "base" and _option(resource, "protect"),
    )


def _changed(old: ResourceJson, new: ResourceJson) -> ResourceChange:
    reasons: list[str] = []
    if old["type"] != new["type"]:
        reasons.append(f"type changed from {old['type']} (a new Pulumi URN)")
    if old.get("parent") != new.get("parent"):
        reasons.append(f"parent changed from {old.get('parent')} (a new Pulumi URN)")
    found: list[PropertyChange] = []
    diff_values(old.get("inputs", {}), new.get("inputs", {}), (), found)
    ignored = [c.path for c in found if _ignored(c.path, new)]
    kept = [c for c in found if c.path not in ignored]
    forced = [] if reasons else _forced(old, new, kept)
    kept = [_mark(c, forced) for c in kept]
    kept += _option_changes(old, new)
    action: Action = "replace" if reasons or forced else "update"
    return ResourceChange(
        action=action,
        type=str(new["type"]),
        name=str(new["name"]),
        parent=new.get("parent"),
        source=source_of(new, "head"),
        component=bool(new.get("component")),
        changes=tuple(kept),
        replace_reasons=tuple(reasons + forced),
        ignored=tuple(ignored),
        protected=action == "replace" and _option(old, "protect"),
    )


def diff_values(old: Any, new: Any, path: Path, out: list[PropertyChange]) -> None:
    """Append the leaf-most differences between two JSON values to ``out`` (deterministic
    order: sorted keys, list indices ascending)."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _pair(old, new, key, path, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            here = (*path, index)
            if index >= len(old):
                out.append(PropertyChange(format_path(here), "added", None, new[index]))
            elif index >= len(new):
                out.append(PropertyChange(format_path(here), "removed", old[index], None))
            else:
                diff_values(old[index], new[index], here, out)
        return
    out.append(PropertyChange(format_path(path), "changed", old, new))


def _pair(
    old: Mapping[str, Any], new: Mapping[str, Any], key: str, path: Path, out: list[PropertyChange]
) -> None:
    here = (*path, key)
    if key not in old:
        out.append(PropertyChange(format_path(here), "added", None, new[key]))
    elif key not in new:
        out.append(PropertyChange(format_path(here), "removed", old[key], None))
    else:
        diff_values(old[key], new[key], here, out)


def _mark(change: PropertyChange, forced: list[str]) -> PropertyChange:
    path = parse_path(change.path)
    if any(covers(field, path) for field in forced):
        return PropertyChange(change.path, change.kind, change.old, change.new, True)
    return change


def _ignored(path_text: str, resource: ResourceJson) -> bool:
    """Whether ``ignoreChanges`` covers the path (Pulumi's property paths, ``[*]`` allowed)."""
    patterns = (resource.get("options") or {}).get("ignoreChanges") or ()
    path = parse_path(path_text)
    return any(_prefix_of(split_field(p), path) for p in patterns)


def _prefix_of(pattern: tuple[str, ...], path: Path) -> bool:
    if len(pattern) > len(path):
        return False
    return all(
        w == g or (w == "*" and isinstance(g, int)) for w, g in zip(pattern, path, strict=False)
    )


def _forced(old: ResourceJson, new: ResourceJson, kept: list[PropertyChange]) -> list[str]:
    """The replace fields that differ, unless every difference under them is ignored."""
    fields = forced_by(str(new["type"]), old.get("inputs", {}), new.get("inputs", {}))
    paths = [parse_path(c.path) for c in kept]
    return [f for f in fields if any(covers(f, path) for path in paths)]


def _option_changes(old: ResourceJson, new: ResourceJson) -> list[PropertyChange]:
    found: list[PropertyChange] = []
    diff_values(old.get("options", {}), new.get("options", {}), ("options",), found)
    diff_values(old.get("dependsOn", []), new.get("dependsOn", []), ("dependsOn",), found)
    return found


def _option(resource: ResourceJson, name: str) -> bool:
    return bool((resource.get("options") or {}).get(name))


def parse_path(text: str) -> Path:
    """The inverse of ``format_path`` for the paths this module writes."""
    parts: list[str | int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == ".":
            index += 1
        elif text.startswith('["', index):
            end = index + 2
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            parts.append(text[index + 2 : end].replace('\\"', '"').replace("\\\\", "\\"))
            index = end + 2
        elif char == "[":
            end = text.index("]", index)
            parts.append(int(text[index + 1 : end]))
            index = end + 1
        else:
            end = index
            while end < len(text) and text[end] not in ".[":
                end += 1
            parts.append(text[index:end])
            index = end
    return tuple(parts)
