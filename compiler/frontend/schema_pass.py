"""The schema pass: validate a document with the pydantic models and locate every error.

Pydantic reports errors with a ``loc`` of aliases and indices, which is exactly a spec path, so
each error is one lookup in the document's position tables. Messages are rewritten for people:
"unknown field 'replica' (did you mean 'replicas'?)" rather than "Extra inputs are not permitted".
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostics, Related, SpecPath, code_info, format_path
from mlplane.compiler.frontend.document import Document
from mlplane.schema import formats
from mlplane.schema.models import MLSystem

EXTERNAL_KEYS = frozenset(
    {"$ref", "$include", "include", "!include", "import", "imports", "extends", "$schema"}
)

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_from_float": "a whole number",
    "none_required": "null",
}
_RANGE_WORDS = {
    "greater_than": "greater than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}


def validate_document(
    document: Document,
    diagnostics: Diagnostics,
    suppressed: frozenset[SpecPath] = frozenset(),
    errors: list[SpecPath] | None = None,
    base: tuple[Document, MLSystem] | None = None,
) -> MLSystem | None:
    """Validate ``document``; report every error (except under ``suppressed`` paths) and, when
    ``errors`` is given, append the spec path of each error to it (suppressed ones included).

    ``base``: a document that validated, and its spec, of which ``document`` is an overlay
    (``overlay.apply_overlay``, which shares the subtrees it leaves unchanged). Those subtrees
    are taken validated from the base spec (:func:`_reusing`), not validated again."""
    data = document.data if base is None else _reusing(document.data, *base)
    try:
        return MLSystem.model_validate(data)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            loc = tuple(item["loc"])
            if errors is not None:
                errors.append(tuple(part for part in loc if part != "[key]"))
            if not _is_suppressed(loc, suppressed):
                _report(document, diagnostics, item, loc)
        return None


_ATTRIBUTES = {field.alias or name: name for name, field in MLSystem.model_fields.items()}
"""The attribute of each top-level key of a spec."""
_TABLES = frozenset({"dataSources", "models", "slas"})
"""The named tables an overlay changes entry by entry (a few entries of thousands)."""
_ABSENT: Any = object()


def _reusing(data: dict[str, Any], base: Document, spec: MLSystem) -> dict[str, Any]:
    """``data`` with each mapping or list that is the very object of ``base``'s data at the same
    place (a top-level section, or an entry of a named table) replaced by its validated value in
    ``spec``. Validation is a function of the value alone (no validator looks beyond the value
    it checks, and ``MLSystem`` has none of its own), so the result is the one validating
    ``data`` gives: pydantic takes an instance of a model's class as it is (the spec is
    frozen), and still checks each table's keys and sizes. An object shared with the base is
    one the overlay did not change: it copies what it changes (``overlay._merge``)."""
    given = dict(data)
    for key, value in data.items():
        attribute = _ATTRIBUTES.get(key)
        was = base.data.get(key, _ABSENT)
        if attribute is None or not isinstance(value, dict | list):
            continue
        if value is was:
            given[key] = getattr(spec, attribute)
        elif key in _TABLES and isinstance(value, dict) and isinstance(was, dict):
            validated = getattr(spec, attribute)
            given[key] = {
                name: validated[name] if entry is was.get(name, _ABSENT) else entry
                for name, entry in value.items()
            }
    return given


def validate_data(data: dict[str, object]) -> MLSystem | None:
    """The validated spec of ``data``, or None when it has any error (nothing is reported)."""
    try:
        return MLSystem.model_validate(data)
    except ValidationError:
        return None


def _is_suppressed(loc: tuple[Any, ...], suppressed: frozenset[SpecPath]) -> bool:
    return any(loc[:size] in suppressed for size in range(1, len(loc) + 1))


def _report(document: Document, diagnostics: Diagnostics, item: Any, loc: tuple[Any, ...]) -> None:
    kind = str(item["type"])
    on_key = bool(loc) and loc[-1] == "[key]"
    path: SpecPath = tuple(part for part in loc if part != "[key]")
    if kind == "missing":
        _missing(document, diagnostics, path)
    elif kind == "extra_forbidden":
        _unknown(document, diagnostics, path)
    else:
        code, message, hint = _describe(document, item, kind, path)
        where = document.location(path) if on_key else document.value_location(path)
        fields = (item.get("ctx") or {}).get("fields") or ()
        related = _field_notes(document, path, fields)
        if related:
            where = related[0].location
        diagnostics.error(code, message, where, path, hint, tuple(related[1:]))


def _field_notes(document: Document, path: SpecPath, fields: Iterable[str]) -> list[Related]:
    """Locations of the named fields of the object at ``path`` (for contradictions)."""
    notes = []
    for name in fields:
        location = document.values.get((*path, name))
        if location is not None:
            notes.append(Related(location, f"{name} is set here"))
    return notes


def _missing(document: Document, diagnostics: Diagnostics, path: SpecPath) -> None:
    parent = path[:-1]
    owner = format_path(parent) if parent else "the spec"
    diagnostics.error(
        codes.MISSING_FIELD,
        f"missing required field {path[-1]!r} in {owner}",
        document.location(parent),
        path,
    )


def _unknown(document: Document, diagnostics: Diagnostics, path: SpecPath) -> None:
    name = str(path[-1])
    where = document.location(path)
    if name in EXTERNAL_KEYS:
        diagnostics.error(
            codes.EXTERNAL_REFERENCE,
            f"{name!r} is not supported: a spec is the files of one directory and never reads "
            "other documents",
            where,
            path,
            "split a large spec into several files in the same directory instead",
        )
        return
    choices = fields_at(path[:-1])
    suggestion = formats.closest(name, choices) if choices else None
    message = f"unknown field {name!r}" + (f" (did you mean {suggestion!r}?)" if suggestion else "")
    hint = "allowed here: " + ", ".join(sorted(choices)) if choices and len(choices) <= 16 else None
    diagnostics.error(codes.UNKNOWN_FIELD, message, where, path, hint)


def _describe(
    document: Document, item: Any, kind: str, path: SpecPath
) -> tuple[str, str, str | None]:
    value = item.get("input")
    context = item.get("ctx") or {}
    try:
        code_info(kind)
    except KeyError:
        pass
    else:  # our own validators name a registered code as the error type
        suggestion = context.get("suggestion")
        hint = f"did you mean {suggestion!r}?" if suggestion else context.get("hint")
        return kind, str(item["msg"]), str(hint) if hint else None
    if kind in _TYPE_WORDS:
        return codes.WRONG_TYPE, *_wrong_type(document, path, value, _TYPE_WORDS[kind])
    if kind == "literal_error":
        return codes.INVALID_VALUE, *_invalid_choice(value, str(context.get("expected", "")))
    if kind in _RANGE_WORDS or kind == "finite_number":
        return codes.OUT_OF_RANGE, _out_of_range(kind, value, context), None
    if kind in ("too_long", "string_too_long"):
        limit = context.get("max_length")
        unit = "characters" if isinstance(value, str) else "entries"
        return codes.TOO_LONG, f"{_what(path)} is too long: the limit is {limit} {unit}", None
    if kind in ("too_short", "string_too_short"):
        least = context.get("min_length")
        unit = "characters" if isinstance(value, str) else "entries"
        return (
            codes.TOO_SHORT,
            f"{_what(path)} is too short: it needs at least {least} {unit}",
            None,
        )
    if kind == "string_pattern_mismatch":
        return codes.INVALID_FORMAT, f"{_show(value)} does not match {context.get('pattern')}", None
    return codes.SCHEMA_ERROR, str(item["msg"]), None


def describe_error(item: Any, path: SpecPath) -> tuple[str, str, str | None]:
    """The (code, message, hint) of one pydantic error at ``path`` of a value that has no
    document of its own (a policy rule's parameters, checked by the policy engine)."""
    return _describe(Document({}), item, str(item["type"]), path)


def _what(path: SpecPath) -> str:
    return format_path(path) or "the spec"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "the boolean " + ("true" if value else "false")
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "the string " + formats.quote(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _wrong_type(
    document: Document, path: SpecPath, value: Any, expected: str
) -> tuple[str, str | None]:
    raw = document.raw.get(path)
    message = (
        f"expected {expected}, got {_show(value) if raw is None else 'the plain value ' + raw}"
    )
    hint: str | None = None
    if expected == "a string" and raw is not None:
        hint = f'quote the value to keep it as text: "{raw}"'
    elif expected == "true or false" and isinstance(value, str):
        hint = "YAML 1.2: only true and false are booleans (yes, no, on and off are strings)"
    elif expected in ("a whole number", "a number") and isinstance(value, str):
        hint = _number_hint(value)
    return message, hint


def _number_hint(value: str) -> str | None:
    """A string where a number belongs: one that reads as a number was quoted (YAML would have
    read it as a number otherwise); ``99.9%`` is a percentage written with its sign."""
    text = value.strip()
    if _is_number(text):
        return "remove the quotes to write a number"
    if text.endswith("%") and _is_number(text[:-1].strip()):
        return f"write the percentage as a plain number, without '%': {text[:-1].strip()}"
    return None


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and "_" not in text
    except ValueError:
        return False


def _invalid_choice(value: Any, expected: str) -> tuple[str, str | None]:
    choices = re.findall(r"'([^']*)'", expected)
    message = f"invalid value {_show(value)}; allowed: {', '.join(choices)}"
    suggestion = formats.closest(value, choices) if isinstance(value, str) else None
    return message, f"did you mean {suggestion!r}?" if suggestion else None


def _out_of_range(kind: str, value: Any, context: dict[str, Any]) -> str:
    if kind == "finite_number":
        return f"{_show(value)} is not a finite number"
    bound = next(iter(context.values()), "?")
    return f"{_show(value)} is out of range: it must be {_RANGE_WORDS[kind]} {bound}"


# --- the schema at a path, for "did you mean" -------------------------------------------------------


def fields_at(path: SpecPath, root: type[BaseModel] = MLSystem) -> frozenset[str]:
    """The field names (aliases) allowed at ``path``, or an empty set when not a model there."""
    current: Any = root
    for part in path:
        current = _step(current, part)
        if current is None:
            return frozenset()
    model = _as_model(current)
    if model is None:
        return frozenset()
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def _members(annotation: Any) -> Iterable[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _as_model(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _step(annotation: Any, part: str | int) -> Any:
    model = _as_model(annotation)
    if model is not None and isinstance(part, str):
        for name, field in model.model_fields.items():
            if (field.alias or name) == part:
                return field.annotation
        return None
    for member in _members(annotation):
        origin = typing.get_origin(member)
        if origin is dict and isinstance(part, str):
            return typing.get_args(member)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(member)[0]
    return None
