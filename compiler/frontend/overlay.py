"""Environment overlays: ``environments.<env>.overrides`` deep-merged over the base spec.

Rules (documented in the README): mappings merge key by key; lists and scalars replace the base
value whole; ``null`` removes the key. Every effective value keeps its origin: values that come
from an overlay point at the overlay's line, everything else at the base line. The base
document is never mutated; containers on the path of a change are copied.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core.diagnostics import Location, SpecPath
from mlplane.compiler.frontend.document import Document

OVERRIDABLE = (
    "metadata",
    "dataSources",
    "models",
    "security",
    "slas",
    "alerting",
    "policies",
    "waivers",
)
FIXED_METADATA = ("name",)


def overrides_of(document: Document, environment: str) -> dict[str, Any] | None:
    env = document.data.get("environments", {}).get(environment)
    if not isinstance(env, dict):
        return None
    overrides = env.get("overrides")
    return overrides if isinstance(overrides, dict) and overrides else None


def apply_overlay(document: Document, environment: str) -> Document:
    """The effective document of ``environment`` (the base document when it has no overrides)."""
    overrides = overrides_of(document, environment)
    if overrides is None:
        return document
    prefix: SpecPath = ("environments", environment, "overrides")
    replaced: list[SpecPath] = []
    added: list[tuple[SpecPath, SpecPath]] = []
    data = _merge(document.data, overrides, (), prefix, replaced, added)
    values, keys, raw = _positions(document, prefix, replaced, added)
    return Document(
        data=data, values=values, keys=keys, raw=raw, files=document.files, root=document.root
    )


def _merge(
    base: dict[str, Any],
    overlay: dict[str, Any],
    path: SpecPath,
    source: SpecPath,
    replaced: list[SpecPath],
    added: list[tuple[SpecPath, SpecPath]],
) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        here, there = (*path, key), (*source, key)
        current = merged.get(key)
        if value is None:
            merged.pop(key, None)
            replaced.append(here)
        elif isinstance(value, dict) and isinstance(current, dict):
            merged[key] = _merge(current, value, here, there, replaced, added)
        else:
            merged[key] = value
            replaced.append(here)
            added.append((here, there))
    return merged


def _positions(
    document: Document,
    prefix: SpecPath,
    replaced: list[SpecPath],
    added: list[tuple[SpecPath, SpecPath]],
) -> tuple[dict[SpecPath, Location], dict[SpecPath, Location], dict[SpecPath, str]]:
    """Positions of the effective document: drop replaced subtrees, add the overlay's.

    The base tables are copied whole and the few replaced subtrees deleted from the copies:
    their paths are found by walking the base data there, not by testing every position of a
    spec that has hundreds of thousands. The overlay's positions are found the same way, by
    walking what it wrote. A walk visits a subtree in the order its nodes were written, the
    order of the tables, so the copies keep the order a filter of the tables would give.
    """
    del prefix  # every source path of ``added`` lies under it
    values, keys, raw = dict(document.values), dict(document.keys), dict(document.raw)
    for path in replaced:
        for inner in _subtree_paths(path, _at(document.data, path)):
            values.pop(inner, None)
            keys.pop(inner, None)
            raw.pop(inner, None)
    for target_path, source_path in added:
        size = len(source_path)
        for inner in _subtree_paths(source_path, _at(document.data, source_path)):
            moved = (*target_path, *inner[size:])
            if (location := document.values.get(inner)) is not None:
                values[moved] = location
            if (location := document.keys.get(inner)) is not None:
                keys[moved] = location
            if (text := document.raw.get(inner)) is not None:
                raw[moved] = text
    return values, keys, raw


_ABSENT: Any = object()


def _at(data: dict[str, Any], path: SpecPath) -> Any:
    """The value at ``path`` (a path of mapping keys), or ``_ABSENT``."""
    current: Any = data
    for part in path:
        if not isinstance(current, dict) or part not in current:
            return _ABSENT
        current = current[part]
    return current


def _subtree_paths(path: SpecPath, node: Any) -> list[SpecPath]:
    """``path`` and the path of every node below it, in the order they were written."""
    found: list[SpecPath] = []
    stack: list[tuple[SpecPath, Any]] = [(path, node)]
    while stack:
        here, value = stack.pop()
        found.append(here)
        if isinstance(value, dict):
            stack.extend(((*here, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*here, index), item) for index, item in reversed(list(enumerate(value))))
    return found
