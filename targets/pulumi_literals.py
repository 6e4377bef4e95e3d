"""Printing graph values as Python source: literal constants only, never formatted user text.

The Pulumi program is code that later runs with cloud credentials, and every string in it may
come from a hostile spec. So the printer knows exactly six shapes (str, int, float, bool, None,
lists and str-keyed mappings) and prints each with ``ascii()`` (``repr`` with every non-ASCII
character escaped) or a keyword: a string can never end its literal early (``x"); import os #``),
hide a line break (``a\\rimport os``), or carry a bidi override or homoglyph into a reviewer's
diff, because the program is pure ASCII. Mapping keys are sorted, so the output is byte-stable.

A ``{"$secret": key}`` marker (see ``compiler/graph.py``) prints as a call that reads the value
from the stack's secret config at run time; the graph never holds a secret's value.

Long literals are laid out one element per line with a trailing comma, so a changed value shows
up in a pull request as a one-line diff.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

SECRET_MARKER = "$secret"  # noqa: S105 (the marker key of compiler/graph.py, not a password)
CONFIG_VARIABLE = "config"
LINE_WIDTH = 99
INDENT = "    "
_SECRET_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class ProgramError(ValueError):
    """The graph cannot be printed as a program: a bug in a target, never a user's mistake (the
    spec was validated before lowering), so it is raised, not reported as a diagnostic."""


class LiteralError(ProgramError):
    """A value the printer will not print (a non-finite float, a non-string key, ...)."""


def secret_key(value: Mapping[str, Any]) -> str | None:
    """The config key of a ``{"$secret": key}`` marker, or None for an ordinary mapping."""
    if SECRET_MARKER not in value:
        return None
    key = value[SECRET_MARKER]
    if len(value) != 1 or not isinstance(key, str) or not _SECRET_KEY.fullmatch(key):
        raise LiteralError(f"malformed secret marker {dict(value)!a}")
    return key


def secret_keys(value: Any) -> set[str]:
    """Every config key that ``value`` reads through secret markers."""
    if isinstance(value, Mapping):
        key = secret_key(value)
        if key is not None:
            return {key}
        return set().union(*(secret_keys(item) for item in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(secret_keys(item) for item in value))
    return set()


def literal(value: Any, indent: int = 0, column: int | None = None) -> str:
    """``value`` as a Python expression starting at ``column`` (default: ``indent``) of a line
    indented by ``indent``; containers that do not fit ``LINE_WIDTH`` are broken one element per
    line, indented one level deeper than ``indent``."""
    start = indent if column is None else column
    if not _is_container(value):
        return _flat(value)
    flat = _flat_within(value, LINE_WIDTH - start)
    return flat if flat is not None else _broken(value, indent)


def _is_container(value: Any) -> bool:
    return isinstance(value, list | tuple) or (
        isinstance(value, Mapping) and secret_key(value) is None
    )


def _flat(value: Any) -> str:
    return "".join(_pieces(value))


def _flat_within(value: Any, limit: int) -> str | None:
    """The one-line form of ``value`` if it has at most ``limit`` characters, else None.

    Stops as soon as the limit is passed, so deciding the layout of a deep value costs time in
    proportion to the line width, not to the size of the value.
    """
    pieces: list[str] = []
    length = 0
    for piece in _pieces(value):
        length += len(piece)
        if length > limit:
            return None
        pieces.append(piece)
    return "".join(pieces)


def _pieces(value: Any) -> Iterator[str]:
    """The one-line form of ``value``, lazily, piece by piece."""
    if isinstance(value, Mapping):
        key = secret_key(value)
        if key is not None:
            yield f"{CONFIG_VARIABLE}.require_secret({scalar(key)})"
            return
        yield "{"
        for i, (k, v) in enumerate(_sorted_items(value)):
            yield (", " if i else "") + scalar(k) + ": "
            yield from _pieces(v)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ", "
            yield from _pieces(item)
        yield "]"
    else:
        yield scalar(value)


def _broken(value: Mapping[str, Any] | Sequence[Any], indent: int) -> str:
    inner = indent + len(INDENT)
    pad = " " * inner
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in _sorted_items(value):
            prefix = f"{pad}{scalar(key)}: "
            lines.append(prefix + literal(item, inner, len(prefix)) + ",")
        opening, closing = "{", "}"
    else:
        lines = [pad + literal(item, inner) + "," for item in value]
        opening, closing = "[", "]"
    return "\n".join([opening, *lines, " " * indent + closing])


def _sorted_items(value: Mapping[str, Any]) -> list[tuple[str, Any]]:
    for key in value:
        if not isinstance(key, str):
            raise LiteralError(f"mapping key {key!r} is not a string")
    return sorted(value.items())


def scalar(value: Any) -> str:
    """A str, int, float, bool or None as a literal; anything else is a target's bug."""
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
