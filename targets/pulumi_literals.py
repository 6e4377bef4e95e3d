"""Printing graph values as Python source: literal constants only, never formatted user text.

The Pulumi program is code that later runs with cloud credentials, and every string in it may
come from a hostile spec. So the printer knows exactly six shapes (str, int, float, bool, None,
lists and str-keyed mappings) and prints each with ``ascii()`` (``repr`` with every non-ASCII
character escaped) or a keyword: a string can never end its literal early (``x"); import os #``),
hide a line break (``a\\rimport os``), or carry a bidi override or homoglyph into a reviewer's
diff, because the program is pure ASCII. Mapping keys are sorted, so the output is byte-stable.

The markers of ``compiler/core/graph.py`` print as expressions, never as their mappings: a
``{"$secret": key}`` as a call that reads the value from the stack's secret config at run time
(the graph never holds a secret's value); a ``{"$ref": name, "$output": output}`` as the
attribute of the referenced resource's variable (the caller's :data:`Reference` resolves it,
checking the output exists); a ``{"$json": value}`` as ``pulumi.Output.json_dumps(value)``.

Long literals are laid out one element per line with a trailing comma, so a changed value shows
up in a pull request as a one-line diff.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

from mlplane.compiler.core import canonical, resource_texts
from mlplane.compiler.core.graph import (
    JSON_MARKER,
    OUTPUT_KEY,
    REF_MARKER,
    SECRET_MARKER,
    GraphError,
    Resource,
    is_json_document,
    output_ref,
    walk,
    walked,
)

CONFIG_VARIABLE = "config"
JSON_CALL = "pulumi.Output.json_dumps"
_MARKERS = (SECRET_MARKER, REF_MARKER, JSON_MARKER)
LINE_WIDTH = 99
INDENT = "    "
_SECRET_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class ProgramError(ValueError):
    """The graph cannot be printed as a program: a bug in a target, never a user's mistake (the
    spec was validated before lowering), so it is raised, not reported as a diagnostic."""


class LiteralError(ProgramError):
    """A value the printer will not print (a non-finite float, a non-string key, ...)."""


Reference = Callable[[str, str], str]
"""(resource, output) of a ``$ref`` marker -> the expression reading it (``bucket_1.arn``)."""


def _no_references(resource: str, output: str) -> str:
    raise LiteralError(f"an output reference to {resource!r} cannot be printed here")


_PLAIN = (str, int, float, list, tuple)


def marker_of(value: Any) -> str | None:
    """``SECRET_MARKER``, ``REF_MARKER`` or ``JSON_MARKER`` for a marker, None for any other value.

    Called for every value the printer meets, so the common case is cheap: scalars and lists
    are rejected by concrete type checks, mappings by three key lookups; only a mapping holding
    a marker key is validated (a malformed marker is a :class:`LiteralError`).
    """
    if type(value) is not dict and (
        value is None or isinstance(value, _PLAIN) or not isinstance(value, Mapping)
    ):
        return None
    for marker in _MARKERS:
        if marker in value:
            _validate(marker, value)
            return marker
    return None


def _validate(marker: str, value: Mapping[str, Any]) -> None:
    try:
        if marker == SECRET_MARKER:
            secret_key(value)
        elif marker == REF_MARKER:
            output_ref(value)
        else:
            is_json_document(value)
    except GraphError as error:
        raise LiteralError(str(error)) from None


def is_marker(value: Any) -> bool:
    """A ``$secret``, ``$ref`` or ``$json`` marker: it prints as an expression."""
    return marker_of(value) is not None


def has_json_document(value: Any) -> bool:
    """Whether a ``$json`` marker occurs anywhere in ``value`` (an explicit stack, no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif (marker := marker_of(item)) == JSON_MARKER:
            return True
        elif marker is None and isinstance(item, Mapping):
            stack.extend(item.values())
    return False


def has_marker(value: Any) -> bool:
    """Whether any marker (secret, reference, JSON document) occurs in ``value``. Inside
    ``canonical.shared_fragments`` (a build) the answer for a container comes from the one walk
    of it that :func:`secret_keys` shares (:func:`_markers`)."""
    if type(value) not in _SCALARS and canonical.sharing():
        return canonical.remembered(_MARKERS_MEMO, value, _markers)[0]
    return _has_marker(value)


def _has_marker(value: Any) -> bool:
    """:func:`has_marker` by itself, stopping at the first marker.

    Concrete types first (plain dicts, lists and scalars are nearly every value the program
    reads from the graph); anything else takes the general path."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict:
            if (SECRET_MARKER in item or REF_MARKER in item or JSON_MARKER in item) and (
                marker_of(item) is not None
            ):
                return True
            stack.extend(item.values())
        elif kind is list or isinstance(item, list | tuple):
            stack.extend(item)
        elif marker_of(item) is not None:
            return True
        elif isinstance(item, Mapping):
            stack.extend(item.values())
    return False


def secret_key(value: Mapping[str, Any]) -> str | None:
    """The config key of a ``{"$secret": key}`` marker, or None for an ordinary mapping."""
    if SECRET_MARKER not in value:
        return None
    key = value[SECRET_MARKER]
    if len(value) != 1 or not isinstance(key, str) or not _SECRET_KEY.fullmatch(key):
        raise LiteralError(f"malformed secret marker {dict(value)!a}")
    return key


def secret_keys(value: Any) -> set[str]:
    """Every config key that ``value`` reads through secret markers. Inside
    ``canonical.shared_fragments`` (a build, whose values do not change) what is under each
    value of a mapping is remembered (:func:`_markers`): the manifests and the program ask about
    every resource's inputs, some twice, and the program asks :func:`has_marker` too."""
    if not isinstance(value, Mapping) or SECRET_MARKER in value or not canonical.sharing():
        return set(_markers(value)[1])
    found: set[str] = set()
    for item in value.values():
        if type(item) not in _SCALARS:
            found |= canonical.remembered(_MARKERS_MEMO, item, _markers)[1]
    return found


_MARKERS_MEMO = "markers"


def resource_secret_keys(resource: Resource) -> frozenset[str]:
    """:func:`secret_keys` of ``resource``'s inputs. Inside ``resource_texts.reusing`` (a build)
    they are asked of it by the resource's name (a function of the resource alone), so that a
    build taking an earlier one's texts does not walk those inputs again."""
    if not resource_texts.active():
        return frozenset(secret_keys(resource.inputs))
    return _keys_of(
        resource_texts.text_of(CONFIG_KEYS_KIND, resource.name, partial(_keys_text, resource))
    )


@lru_cache(maxsize=1024)
def _keys_of(text: str) -> frozenset[str]:
    """The keys a :data:`CONFIG_KEYS_KIND` text lists (most resources read none: one text)."""
    return frozenset(json.loads(text))


CONFIG_KEYS_KIND = "pulumi-secret-keys"
"""The kind (``resource_texts``) of the secret config keys a resource's inputs read: a JSON list."""


def _keys_text(resource: Resource) -> str:
    keys = secret_keys(resource.inputs)
    return json.dumps(sorted(keys)) if keys else "[]"  # most resources read none


def _markers(value: Any) -> tuple[bool, frozenset[str]]:
    """(:func:`has_marker`, :func:`secret_keys`) of ``value`` from one walk of all of it
    (``graph.walk``, which goes on below references and JSON documents: a secret inside a JSON
    document is read too). Every marker met is validated (a malformed one is a
    :class:`LiteralError`): references and JSON documents by the walk, secret markers here, in
    the order the walk met them. A value the graph already walked for its references
    (``graph.walked``: an input of a resource, in a build) is not walked again."""
    done = walked(value)
    if done is None:
        try:
            done = walk(value)
        except GraphError as error:
            raise LiteralError(str(error)) from None
    return done.marked, frozenset(_checked_secret(marker) for marker in done.secrets)


def _checked_secret(marker: Mapping[str, Any]) -> str:
    key = secret_key(marker)
    assert key is not None  # a walk gives only mappings that hold the secret marker
    return key


def literal(
    value: Any, indent: int = 0, column: int | None = None, refs: Reference = _no_references
) -> str:
    """``value`` as a Python expression starting at ``column`` (default: ``indent``) of a line
    indented by ``indent``; containers that do not fit ``LINE_WIDTH`` are broken one element per
    line, indented one level deeper than ``indent``. ``refs`` prints ``$ref`` markers."""
    start = indent if column is None else column
    if type(value) in _SCALARS:
        return scalar(value)
    marker = marker_of(value)
    if marker == JSON_MARKER:
        opening = f"{JSON_CALL}("
        return opening + literal(value[JSON_MARKER], indent, start + len(opening), refs) + ")"
    if marker is not None or not isinstance(value, list | tuple | Mapping):
        return _flat(value, refs)
    flat = _flat_within(value, LINE_WIDTH - start, refs)
    return flat if flat is not None else _broken(value, indent, refs)


_UNLIMITED = 1 << 62


def _flat(value: Any, refs: Reference) -> str:
    text = _flat_within(value, _UNLIMITED, refs)
    assert text is not None
    return text


def _flat_within(value: Any, limit: int, refs: Reference) -> str | None:
    """The one-line form of ``value`` if it has at most ``limit`` characters, else None.

    Stops as soon as the limit is passed, so deciding the layout of a deep value costs time in
    proportion to the line width, not to the size of the value. Concrete types are tested
    first: this runs for every container of every resource, and ABC checks cost more than the
    printing.
    """
    kind = type(value)
    if kind is str or kind in _SCALARS:
        text = scalar(value)
        return text if len(text) <= limit else None
    if kind is list or kind is tuple or (kind is not dict and isinstance(value, list | tuple)):
        return _sequence_within(value, limit, refs)
    if kind is dict or isinstance(value, Mapping):
        return _mapping_within(value, limit, refs)
    text = scalar(value)  # raises for an unknown type
    return text if len(text) <= limit else None


def _sequence_within(value: Sequence[Any], limit: int, refs: Reference) -> str | None:
    entries = ((", " if i else "", item) for i, item in enumerate(value))
    return _joined_within("[", "]", entries, limit, refs)


def _mapping_within(value: Mapping[str, Any], limit: int, refs: Reference) -> str | None:
    marker = marker_of(value)
    if marker is not None:
        text = _marker_text(marker, value, limit, refs)
        return text if text is not None and len(text) <= limit else None
    entries = (
        ((", " if i else "") + scalar(key) + ": ", item)
        for i, (key, item) in enumerate(_sorted_items(value))
    )
    return _joined_within("{", "}", entries, limit, refs)


def _joined_within(
    opening: str,
    closing: str,
    entries: Iterable[tuple[str, Any]],
    limit: int,
    refs: Reference,
) -> str | None:
    """``opening``, each entry's text then its value's one-line form, ``closing``; None as soon
    as the whole cannot fit ``limit`` characters."""
    parts = [opening]
    used = len(opening) + len(closing)
    for head, item in entries:
        parts.append(head)
        used += len(head)
        if used > limit:
            return None
        text = _flat_within(item, limit - used, refs)
        if text is None:
            return None
        parts.append(text)
        used += len(text)
    if used > limit:
        return None
    parts.append(closing)
    return "".join(parts)


def _marker_text(marker: str, value: Mapping[str, Any], limit: int, refs: Reference) -> str | None:
    if marker == SECRET_MARKER:
        return f"{CONFIG_VARIABLE}.require_secret({scalar(value[SECRET_MARKER])})"
    if marker == REF_MARKER:
        return refs(value[REF_MARKER], value[OUTPUT_KEY])
    opening = f"{JSON_CALL}("
    inner = _flat_within(value[JSON_MARKER], limit - len(opening) - 1, refs)
    return None if inner is None else f"{opening}{inner})"


def _broken(value: Mapping[str, Any] | Sequence[Any], indent: int, refs: Reference) -> str:
    inner = indent + len(INDENT)
    pad = " " * inner
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in _sorted_items(value):
            prefix = f"{pad}{scalar(key)}: "
            lines.append(prefix + literal(item, inner, len(prefix), refs) + ",")
        opening, closing = "{", "}"
    else:
        lines = [pad + literal(item, inner, refs=refs) + "," for item in value]
        opening, closing = "[", "]"
    return "\n".join([opening, *lines, " " * indent + closing])


def call(callee: str, arguments: Sequence[str], indent: int, column: int | None = None) -> str:
    """``callee(a, b)`` on one line when it fits from ``column``, else one argument per line.

    Arguments arrive already laid out for a line indented one level deeper than ``indent``.
    """
    flat = f"{callee}({', '.join(arguments)})"
    start = indent if column is None else column
    if "\n" not in flat and start + len(flat) <= LINE_WIDTH:
        return flat
    pad = " " * (indent + len(INDENT))
    lines = [f"{pad}{argument}," for argument in arguments]
    return "\n".join([f"{callee}(", *lines, " " * indent + ")"])


def _sorted_items(value: Mapping[str, Any]) -> list[tuple[str, Any]]:
    if not set(map(type, value)) <= _STR:  # the common case in one C-level pass
        for key in value:
            if not isinstance(key, str):
                raise LiteralError(f"mapping key {key!r} is not a string")
    return sorted(value.items())


_STR = frozenset({str})


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""The exact scalar types (subclasses take the slow path of :func:`scalar`)."""


def scalar(value: Any) -> str:
    """A str, int, float, bool or None as a literal; anything else is a target's bug."""
    kind = type(value)
    if kind is str:
        return ascii(value)
    if kind is int:
        return repr(value)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))  # int(): an IntEnum or other subclass must not print its name
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LiteralError(f"non-finite number {value!r} has no literal")
        return repr(float(value))
    if isinstance(value, str):
        return ascii(str.__str__(value))  # a str subclass must not print its own repr
    raise LiteralError(f"cannot print a value of type {type(value).__name__}")
