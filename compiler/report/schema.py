"""The JSON Schema of the JSON report, derived from the report's dataclasses.

Derived rather than written by hand, so that schema and output cannot drift: every field is
required, no other key is allowed, ``Literal`` fields are enums, ``X | None`` allows null and
tuples are arrays. ``docs/report.v1.schema.json`` is this text (a test keeps it current;
``python -m mlplane.compiler.report.schema`` prints it), and the goldens are validated
against it. A change of the report's shape changes ``REPORT_VERSION`` and the schema's name.
"""

from __future__ import annotations

import types
from dataclasses import fields, is_dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from mlplane.compiler.core.canonical import canonical_json
from mlplane.compiler.report.json_format import camel
from mlplane.compiler.report.model import REPORT_VERSION, Report

SCHEMA_ID = "https://mlplane.dev/schemas/report.v1.schema.json"


def report_schema() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    root = _object(Report, definitions)
    root["properties"]["version"] = {"const": REPORT_VERSION}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mlplane governance report",
        "description": "The JSON form of `mlplane report --format json` (docs/report.md).",
        **root,
        "$defs": dict(sorted(definitions.items())),
    }


def _object(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    hints = get_type_hints(cls)
    properties = {camel(f.name): _type(hints[f.name], definitions) for f in fields(cls)}
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _type(hint: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [_type(arg, definitions) for arg in get_args(hint)]
        return {"anyOf": options}
    if origin is Literal:
        return {"enum": list(get_args(hint))}
    if origin is tuple:
        return {"type": "array", "items": _type(get_args(hint)[0], definitions)}
    if hint is type(None):
        return {"type": "null"}
    if isinstance(hint, type) and is_dataclass(hint):
        if hint.__name__ not in definitions:
            definitions[hint.__name__] = {}  # placeholder against recursion
            definitions[hint.__name__] = _object(hint, definitions)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON Schema for {hint!r}")


def schema_text() -> str:
    return canonical_json(report_schema())


if __name__ == "__main__":
    print(schema_text(), end="")
