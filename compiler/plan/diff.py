"""Diffing two resource graphs: which resources are created, updated, replaced or deleted.

Resources are matched by logical name (unique in a graph, derived only from spec names, so a
resource keeps its name across builds). A changed type or parent changes the resource's Pulumi
URN, so Pulumi creates the new one and deletes the old: that is shown as a replacement. Inputs
are compared property by property (``spec.replicas: 2 → 4``); a change of one of the fields in
``compiler/plan/replace.py`` turns the update into a replacement. Paths that the resource's
``ignoreChanges`` option names are left out of the update, as Pulumi leaves them out, and listed
separately. The spec location (``origin``) is not compared: moving a line is not a change.

A change drags its readers along (:func:`drag`): a resource whose input reads (``$ref``) an
output of a resource that is replaced or created anew has that input unknown until Pulumi
applies (a new ARN, an auto-generated name), so Pulumi updates it, or replaces it when the input
is a replace-table field; an in-place update of an input that another resource reads as an
output (a renamed object) changes that reader too. Each such resource is listed with the inputs
that read the change (:class:`Because`), transitively, in time linear in the graph.

Why compare JSON (``Resource.to_json()``) rather than graph objects: the base may come from the
record of the last apply (``.mlplane/applied/``), which stores exactly that JSON.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace as evolve
from typing import Any

from mlplane.compiler.core.diagnostics import Location, format_path
from mlplane.compiler.core.graph import JSON_MARKER, OUTPUT_KEY, REF_MARKER, SECRET_MARKER
from mlplane.compiler.plan.model import (
    Action,
    Because,
    Cause,
    PropertyChange,
    ReaderTable,
    ResourceChange,
    ResourceJson,
    SideName,
    SpecRef,
)
from mlplane.compiler.plan.replace import covers, forced_by, replace_fields, split_field
from mlplane.compiler.plan.tables import SharedResources

Path = tuple[str | int, ...]
_COMPARED = ("type", "parent", "component", "inputs", "options", "dependsOn")


def diff_graphs(
    base: Mapping[str, ResourceJson],
    head: Mapping[str, ResourceJson],
    base_readers: Readers | None = None,
) -> tuple[tuple[ResourceChange, ...], int]:
    """Every changed resource (sorted by action, then name) and the number left unchanged.

    ``base_readers``, when given, is :func:`readers_of` ``base``: the head's reader table is
    then that one with the entries of the resources whose inputs differ replaced
    (:func:`patched`), instead of a walk through every input of the head. A resource that
    ``head`` shares with ``base`` (``tables.SharedResources``: taken from it unchanged) is
    equal to it and is not looked up."""
    found: dict[str, ResourceChange] = {}
    for name in sorted(_compared(base, head)):
        old, new = base.get(name), head.get(name)
        if old is None:
            assert new is not None
            found[name] = _whole("create", new, "head")
        elif new is None:
            found[name] = _whole("delete", old, "base")
        elif any(old.get(key) != new.get(key) for key in _COMPARED):
            found[name] = _changed(old, new)
    readers = _readers(head) if base_readers is None else patched(base_readers, base, head, found)
    changes = list(drag(base, head, found, readers).values())
    order = {"create": 0, "replace": 1, "update": 2, "delete": 3}
    changes.sort(key=lambda c: (order[c.action], c.name))
    return tuple(changes), len(set(base) & set(head)) - sum(
        1 for c in changes if c.action in ("update", "replace")
    )


def _compared(base: Mapping[str, ResourceJson], head: Mapping[str, ResourceJson]) -> set[str]:
    """The names of both sides, but those whose resource ``head`` shares with ``base``: its
    resources but its own are the base's values (``SharedResources.shares``)."""
    if isinstance(head, SharedResources) and head.base is base:
        return set(head.own) | (set(base) - set(head))
    return set(base) | set(head)


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


# --- what a change drags along -------------------------------------------------------------------

Reader = tuple[str, str, Path]
"""(reading resource, path of the reading input as text, that path)."""
Readers = ReaderTable
"""Read resource -> its read output -> who reads it (:func:`readers_of`)."""


def drag(
    base: Mapping[str, ResourceJson],
    head: Mapping[str, ResourceJson],
    changes: Mapping[str, ResourceChange],
    head_readers: Readers | None = None,
) -> dict[str, ResourceChange]:
    """``changes`` (by name) with the resources that read a changed output added or amended.

    An output of a replaced resource is unknown until the apply unless it is a top-level input
    whose value is known and the same on both sides (a fixed name); every output of a created
    resource that is not such an input is unknown; an output of an updated resource changes
    when the top-level input of that name changes. A resource reading a changed output through
    ``$ref`` (inside a ``$json`` document, the whole document) is updated, or replaced when a
    replace-table field covers the reading input, unless its ``ignoreChanges`` covers it; its
    own outputs then change in turn. Each (resource, output) is followed once, and once more
    when the resource turns out to be replaced, so the walk is linear in the size of the graph
    and ends even on a cyclic one.
    """
    readers = _readers(head) if head_readers is None else head_readers
    if not readers:
        return dict(changes)
    result = dict(changes)
    queue: deque[tuple[str, str, Cause]] = deque()
    followed: dict[tuple[str, str], Cause] = {}

    def changed(name: str, output: str, cause: Cause) -> None:
        key = (name, output)
        before = followed.get(key)
        if output not in readers.get(name, {}):
            return
        if before is not None and (before == "replaced" or cause != "replaced"):
            return
        followed[key] = cause
        queue.append((name, output, cause))

    def renewed(name: str, cause: Cause) -> None:
        """Every read output of ``name`` that the replacement or creation makes unknown."""
        for output in sorted(readers.get(name, {})):
            if not _stable(base.get(name), head.get(name), output):
                changed(name, output, cause)

    for name, change in changes.items():
        if change.action in ("replace", "create"):
            renewed(name, "replaced" if change.action == "replace" else "created")
        for key in sorted({_top(c.path) for c in change.changes if change.action == "update"}):
            changed(name, key, "updated")
    while queue:
        name, output, cause = queue.popleft()
        value = head[name].get("inputs", {}).get(output)
        known = cause == "updated" and _known(value)
        values = (base[name].get("inputs", {}).get(output), value) if known else None
        for reader, path_text, path in readers[name].get(output, ()):
            old, new = base.get(reader), head.get(reader)
            current = result.get(reader)
            if old is None or new is None or _ignored(path_text, new):
                continue
            if current is not None and current.action in ("create", "delete"):
                continue
            because = Because(path_text, name, output, cause)
            amended = _amend(current, old, new, path, because, values)
            if amended is current:
                continue
            result[reader] = amended
            if amended.action == "replace":
                renewed(reader, "replaced")
            else:
                changed(reader, str(path[0]), "updated")
    return result


def _amend(
    current: ResourceChange | None,
    old: ResourceJson,
    new: ResourceJson,
    path: Path,
    because: Because,
    values: tuple[Any, Any] | None,
) -> ResourceChange:
    """The change of ``new`` once its input at ``path`` reads ``because``'s changed output:
    ``values`` (old, new) when the output is known before the apply, else None (unknown)."""
    if current is not None and because in current.because:
        return current
    change = current or _whole("update", new, "head")
    path_text, unknown = because.path, values is None
    forced = [f for f in replace_fields(str(new["type"])) if covers(f, path)]
    properties = list(change.changes)
    at = [i for i, c in enumerate(properties) if c.path == path_text]
    if at:  # its own input changed too (it now reads another resource): unknown all the same
        prop = properties[at[0]]
        properties[at[0]] = evolve(
            prop,
            known_after_apply=prop.known_after_apply or unknown,
            forces_replacement=prop.forces_replacement or bool(forced),
        )
    elif not any(covers(path_text, parse_path(c.path)) for c in properties):
        before = _at(old.get("inputs", {}), path)
        properties.append(
            PropertyChange(path_text, "changed", before, None, bool(forced), known_after_apply=True)
            if values is None
            else PropertyChange(path_text, "changed", values[0], values[1], bool(forced))
        )
    reasons = list(change.replace_reasons)
    reasons += [f for f in forced if f not in reasons]
    action: Action = "replace" if reasons else "update"
    return evolve(
        change,
        action=action,
        changes=tuple(properties),
        replace_reasons=tuple(reasons),
        because=tuple(sorted((*change.because, because), key=_because_order)),
        protected=action == "replace" and _option(old, "protect"),
    )


def _because_order(because: Because) -> tuple[str, str, str]:
    return (because.path, because.resource, because.output)


def readers_of(graph: Mapping[str, ResourceJson]) -> Readers:
    """Read resource -> its read output -> who reads it, at which input: in reader name order,
    each reader's inputs in path order."""
    return _readers(graph)


def _readers(head: Mapping[str, ResourceJson]) -> Readers:
    found: Readers = {}
    for name in sorted(head):
        for target, output, reader in _read_by(name, head[name].get("inputs", {})):
            found.setdefault(target, {}).setdefault(output, []).append(reader)
    return found


def _read_by(name: str, inputs: Any) -> list[tuple[str, str, Reader]]:
    """(read resource, output, reader entry) of each ``$ref`` of ``name``'s inputs, in path
    order: what ``name`` adds to the reader table, a function of its name and inputs only."""
    if not _has_ref(inputs):  # most resources: no paths to build
        return []
    refs = sorted(_refs(inputs, ()), key=lambda r: _path_key(r[0]))
    return [(target, output, (name, format_path(path), path)) for path, target, output in refs]


def patched(
    base_readers: Readers,
    base: Mapping[str, ResourceJson],
    head: Mapping[str, ResourceJson],
    changed: Iterable[str],
) -> Readers:
    """:func:`readers_of` ``head``, from ``base_readers`` (that of ``base``, left untouched).

    ``changed`` must name every resource whose inputs differ between the sides or that is on
    one side only (what :func:`diff_graphs` finds, and more is harmless): every other resource
    adds the same entries to both tables. Their base entries are taken out, their head entries
    put in, and each list touched is sorted again by reader name, stably, so each reader's
    entries keep their path order: the table :func:`readers_of` builds."""
    found = dict(base_readers)
    copied: set[str] = set()

    def outputs_of(target: str) -> dict[str, list[Reader]]:
        if target not in copied:
            copied.add(target)
            found[target] = {o: list(r) for o, r in found.get(target, {}).items()}
        return found[target]

    touched = sorted(
        name
        for name in set(changed)
        if name not in base
        or name not in head
        or base[name].get("inputs", {}) != head[name].get("inputs", {})
    )
    for name in touched:
        for target, output, _ in (
            _read_by(name, base[name].get("inputs", {})) if name in base else ()
        ):
            by = outputs_of(target)
            by[output] = [r for r in by.get(output, ()) if r[0] != name]
    for name in touched:
        for target, output, reader in (
            _read_by(name, head[name].get("inputs", {})) if name in head else ()
        ):
            outputs_of(target).setdefault(output, []).append(reader)
    for target in copied:
        kept = {o: sorted(r, key=lambda reader: reader[0]) for o, r in found[target].items() if r}
        if kept:
            found[target] = kept
        else:
            del found[target]
    return found


def _path_key(path: Path) -> tuple[tuple[int, int, str], ...]:
    """A sort key for paths mixing keys and indices (indices in numeric order)."""
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in path)


def _has_ref(value: Any) -> bool:
    """Whether :func:`_refs` finds anything in ``value``: a ``$ref`` key in a dict reached
    through dicts and lists."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if REF_MARKER in item:
                return True
            stack.extend(child for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend(child for child in item if isinstance(child, dict | list))
    return False


def _refs(value: Any, path: Path) -> Iterator[tuple[Path, str, str]]:
    """(input path, resource, output) of every ``$ref`` in ``value``; a ``$ref`` inside a
    ``$json`` document is reported at the document (its text is what the resource reads).
    Iterative, and only containers are stacked (scalars, most of the inputs, cost nothing)."""
    stack: list[tuple[Any, Path, Path | None]] = [(value, path, None)]
    while stack:
        item, here, document = stack.pop()
        if isinstance(item, dict):
            if REF_MARKER in item:
                yield (document or here), str(item[REF_MARKER]), str(item.get(OUTPUT_KEY))
                continue
            inner = document if document is not None or JSON_MARKER not in item else here
            pairs: Iterable[tuple[str | int, Any]] = item.items()
        elif isinstance(item, list):
            inner, pairs = document, enumerate(item)
        else:
            continue
        for key, child in pairs:
            if isinstance(child, dict | list):
                stack.append((child, (*here, key), inner))


def _known(value: Any) -> bool:
    """Whether a value is known before the apply: no ``$ref`` or ``$secret`` inside."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if REF_MARKER in item or SECRET_MARKER in item:
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _stable(old: ResourceJson | None, new: ResourceJson | None, output: str) -> bool:
    """An output that a replacement or a creation leaves known and unchanged: a top-level input
    of that name, known, and the same at the base."""
    if old is None or new is None:
        return False
    before, after = old.get("inputs", {}), new.get("inputs", {})
    return output in after and _known(after[output]) and before.get(output) == after[output]


def _top(path_text: str) -> str:
    return str(parse_path(path_text)[0]) if path_text else ""


def _at(value: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value
