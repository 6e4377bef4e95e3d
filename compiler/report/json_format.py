"""The report as JSON: the dataclasses of ``compiler/report/model.py`` with camelCase keys,
in the canonical JSON text (sorted keys, ASCII, two-space indent). The schema, versioned with
``version``, is ``docs/report.v1.schema.json``; ``docs/report.md`` describes each field."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from mlplane.compiler.core.canonical import canonical_json
from mlplane.compiler.report.model import Report


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def to_data(value: Any) -> Any:
    """A report value as JSON data: dataclasses become objects with camelCase keys."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, tuple | list):
        return [to_data(item) for item in value]
    kind: type = type(value)
    keys = _KEYS.get(kind)
    if keys is None:
        keys = _KEYS[kind] = _keys(kind)
    return {key: to_data(getattr(value, name)) for name, key in keys}


_KEYS: dict[type, tuple[tuple[str, str], ...]] = {}
"""Each report dataclass's fields and JSON keys, looked up once per class (a large report has
hundreds of thousands of objects)."""


def _keys(cls: type) -> tuple[tuple[str, str], ...]:
    if not is_dataclass(cls):
        raise TypeError(f"not report data: {cls!r}")
    return tuple((f.name, camel(f.name)) for f in fields(cls))


def render_json(report: Report) -> str:
    return canonical_json(to_data(report))
