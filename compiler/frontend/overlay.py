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
    """Positions of the effective document: drop replaced subtrees, add the overlay's."""
    gone = set(replaced)
    depths = sorted({len(path) for path in gone})
    shortest = depths[0] if depths else 0
    near = {path[:shortest] for path in gone}

    def kept(path: SpecPath) -> bool:
        if len(path) < shortest or path[:shortest] not in near:
            return True  # the fast answer for almost every position
        return not any(path[:depth] in gone for depth in depths if depth <= len(path))

    values = {p: loc for p, loc in document.values.items() if kept(p)}
    keys = {p: loc for p, loc in document.keys.items() if kept(p)}
    raw = {p: text for p, text in document.raw.items() if kept(p)}
    index = _by_prefix(document, prefix)
    for target_path, source_path in added:
        size = len(source_path)
        values_in, keys_in, raw_in = index.get(source_path, ([], [], []))
        for path, location in values_in:
            values[(*target_path, *path[size:])] = location
        for path, location in keys_in:
            keys[(*target_path, *path[size:])] = location
        for path, text in raw_in:
            raw[(*target_path, *path[size:])] = text
    return values, keys, raw


_Entries = tuple[
    list[tuple[SpecPath, Location]], list[tuple[SpecPath, Location]], list[tuple[SpecPath, str]]
]


def _by_prefix(document: Document, prefix: SpecPath) -> dict[SpecPath, _Entries]:
    """The overlay's positions indexed by every one of their ancestors below ``prefix``, so each
    replaced subtree finds its positions in one lookup instead of a scan of the overlay."""
    index: dict[SpecPath, _Entries] = {}
    size = len(prefix)

    def entries(path: SpecPath) -> list[_Entries]:
        return [
            index.setdefault(path[:end], ([], [], [])) for end in range(size + 1, len(path) + 1)
        ]

    for path, location in _subtree(document.values, prefix):
        for bucket in entries(path):
            bucket[0].append((path, location))
    for path, location in _subtree(document.keys, prefix):
        for bucket in entries(path):
            bucket[1].append((path, location))
    for path, text in _subtree(document.raw, prefix):
        for bucket in entries(path):
            bucket[2].append((path, text))
    return index


def _subtree(table: dict[SpecPath, Any], prefix: SpecPath) -> list[tuple[SpecPath, Any]]:
    size = len(prefix)
    return [(path, item) for path, item in table.items() if path[:size] == prefix]
