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
    if is_dataclass(value) and not isinstance(value, type):
        return {camel(f.name): to_data(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [to_data(item) for item in value]
    return value


def render_json(report: Report) -> str:
    return canonical_json(to_data(report))
