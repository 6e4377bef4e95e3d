"""Environment overlays: ``environments.<env>.overrides`` deep-merged over the base spec.

Rules (documented in the README): mappings merge key by key; lists and scalars replace the base
value whole; ``null`` removes the key. Every effective value keeps its origin: values that come
from an overlay point at the overlay's line, everything else at the base line. The base
document is never mutated; containers on the path of a change are copied.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.diagnostics import Location, SpecPath
from mlplane.compiler.document import Document

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
    """Positions of the effective document: drop replaced subtrees, add the overlay's."""
    gone = set(replaced)
    depths = sorted({len(path) for path in gone})

    def kept(path: SpecPath) -> bool:
        return not any(path[:depth] in gone for depth in depths if depth <= len(path))

    values = {p: loc for p, loc in document.values.items() if kept(p)}
    keys = {p: loc for p, loc in document.keys.items() if kept(p)}
    raw = {p: text for p, text in document.raw.items() if kept(p)}
    overlay_values = _subtree(document.values, prefix)
    overlay_keys = _subtree(document.keys, prefix)
    overlay_raw = _subtree(document.raw, prefix)
    for target_path, source_path in added:
        size = len(source_path)
        for table, origin in ((values, overlay_values), (keys, overlay_keys), (raw, overlay_raw)):
            for path, item in origin:
                if path[:size] == source_path:
                    table[(*target_path, *path[size:])] = item
    return values, keys, raw


def _subtree(table: dict[SpecPath, Any], prefix: SpecPath) -> list[tuple[SpecPath, Any]]:
    size = len(prefix)
    return [(path, item) for path, item in table.items() if path[:size] == prefix]
