"""The report as JSON: the dataclasses of ``compiler/report/model.py`` with camelCase keys,
in the canonical JSON text (sorted keys, ASCII, two-space indent). The schema, versioned with
``version``, is ``docs/report.v1.schema.json``; ``docs/report.md`` describes each field.

:func:`render_json` writes the text straight from the dataclasses: each class's keys are
sorted and encoded once, and no intermediate dicts are built (on the 1,000-model benchmark
spec the report holds some 130,000 objects, and building them as dicts cost as much as writing
them). The bytes are those of ``canonical_json(to_data(report))``; a value of a kind this
writer does not know is written through that path instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from mlplane.compiler.core.canonical import INDENT, canonical_json
from mlplane.compiler.report.model import Report

_STRING: Callable[[str], str] = json.encoder.encode_basestring_ascii


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
    parts: list[str] = []
    try:
        _write(report, "\n", parts.append)
    except _Unusual:
        return canonical_json(to_data(report))
    parts.append("\n")
    return "".join(parts)


class _Unusual(Exception):
    """A value this writer does not write (the general path does)."""


def _float(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


_SCALARS: dict[type, Callable[[Any], str]] = {
    str: _STRING,
    int: int.__repr__,
    float: _float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _: "null",
}

_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}
"""Each report dataclass's fields in the order of their JSON keys, with each key's text
(``"camelCase": ``)."""


def _fields(kind: type) -> tuple[tuple[str, str], ...]:
    found = _FIELDS.get(kind)
    if found is None:
        if not is_dataclass(kind):
            raise _Unusual
        keys = sorted(_keys(kind), key=lambda pair: pair[1])
        found = _FIELDS[kind] = tuple((name, _STRING(key) + ": ") for name, key in keys)
    return found


def _write(value: Any, newline: str, out: Callable[[str], None]) -> None:
    """Write ``value``; ``newline`` is a line break plus the current indentation."""
    kind = type(value)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        out(scalar(value))
    elif kind is tuple or kind is list:
        _write_sequence(value, newline, out)
    else:
        _write_object(value, _fields(kind), newline, out)


def _write_object(
    value: Any, keys: tuple[tuple[str, str], ...], newline: str, out: Callable[[str], None]
) -> None:
    if not keys:
        out("{}")
        return
    inner = newline + INDENT
    separator = "{" + inner
    for name, key in keys:
        item = getattr(value, name)
        scalar = _SCALARS.get(type(item))
        if scalar is not None:  # most values: one piece, no call
            out(separator + key + scalar(item))
        else:
            out(separator + key)
            _write(item, inner, out)
        separator = "," + inner
    out(newline + "}")


def _write_sequence(
    value: list[Any] | tuple[Any, ...], newline: str, out: Callable[[str], None]
) -> None:
    if not value:
        out("[]")
        return
    inner = newline + INDENT
    separator = "[" + inner
    for item in value:
        scalar = _SCALARS.get(type(item))
        if scalar is not None:
            out(separator + scalar(item))
        else:
            out(separator)
            _write(item, inner, out)
        separator = "," + inner
    out(newline + "]")
