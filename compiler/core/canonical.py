"""The one canonical JSON text of every file mlplane writes: sorted keys, two-space indent,
ASCII, a trailing newline.

The bytes are exactly ``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True) + "\\n"``
(a property test holds the two together), but written here: with an indent, ``json.dumps``
falls back to its pure-Python encoder, which walked a 2,400-resource graph several times slower
than this writer (2-3x on that graph), whose strings go through the C string encoder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

_STRING: Callable[[str], str] = json.encoder.encode_basestring_ascii
INDENT = "  "
T = TypeVar("T")


def canonical_json(value: Any) -> str:
    """``value`` (JSON data: dicts with string keys, lists, tuples, scalars, and
    :class:`Fragment` values) as canonical text."""
    return canonical_text(value) + "\n"


def canonical_text(value: Any, newline: str = "\n") -> str:
    """The canonical text of ``value`` without the final line break, written where each line
    break is followed by the indentation that ``newline`` ends with (``"\n"``: at the top;
    ``"\n" + 2 * INDENT``: as an item of a list that is a value of the top mapping). It is the
    text at the top with each line break so indented (strings never hold a raw line break:
    the encoder escapes it), written directly rather than indented afterwards."""
    parts: list[str] = []
    try:
        _write(value, newline, parts.append)
    except _Unusual:
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True, default=_unwrapped)
        return text.replace("\n", newline) if newline != "\n" else text
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Fragment:
    """A value whose canonical text was written once already (:func:`fragment`): written as
    that text, indented to where it stands. The text of a value at any depth is its text at
    the top with each line break followed by the depth's indentation (strings never hold a raw
    line break: the encoder escapes it), so the bytes are those of ``value`` itself."""

    value: Any
    text: str
    newline: str = "\n"
    """The line break and indentation the text was written for (:func:`canonical_text`):
    where it stands with that indentation, the text is written as it is."""


def _unwrapped(value: Any) -> Any:
    if isinstance(value, Fragment):
        return value.value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_SHARED: ContextVar[dict[int, Fragment] | None] = ContextVar("_SHARED", default=None)


_REMEMBERED: ContextVar[dict[tuple[str, int], tuple[Any, Any]] | None] = ContextVar(
    "_REMEMBERED", default=None
)


@contextmanager
def shared_fragments() -> Iterator[None]:
    """Within this block :func:`fragment` writes each value once however many documents hold it
    (the texts of input values that more than one document would hold), and :func:`remembered`
    computes a pure function of a value once (``mlplane build``: a rule group's YAML text for
    the manifests and ``rules.yaml``). The values must not change inside the block."""
    token = _SHARED.set({})
    memo = _REMEMBERED.set({})
    try:
        yield
    finally:
        _REMEMBERED.reset(memo)
        _SHARED.reset(token)


def remembered(kind: str, value: Any, compute: Callable[[Any], T]) -> T:
    """``compute(value)``, remembered by ``kind`` and the identity of ``value`` inside
    :func:`shared_fragments` (the memo holds the value, so its identity is not reused); outside
    it, computed on every call. ``compute`` must be pure and its result must not be changed."""
    memo = _REMEMBERED.get()
    if memo is None:
        return compute(value)
    key = (kind, id(value))
    found = memo.get(key)
    if found is None or found[0] is not value:
        found = memo[key] = (value, compute(value))
    result: T = found[1]
    return result


def recalled(kind: str, value: Any) -> Any | None:
    """What :func:`remembered` holds for ``kind`` and the very object ``value``, or None when
    nothing computed it yet (or outside :func:`shared_fragments`): for a caller that can use
    another's result but would rather not compute it itself."""
    memo = _REMEMBERED.get()
    found = memo.get((kind, id(value))) if memo is not None else None
    return found[1] if found is not None and found[0] is value else None


def sharing() -> bool:
    """Whether :func:`shared_fragments` is active (a writer then wraps what it shares)."""
    return _SHARED.get() is not None


def fragment(value: Any) -> Fragment:
    """``value`` with its canonical text, remembered by identity inside
    :func:`shared_fragments` (the fragment holds the value, so its identity is not reused)."""
    shared = _SHARED.get()
    if shared is None:
        return Fragment(value, canonical_json(value)[:-1])
    found = shared.get(id(value))
    if found is None or found.value is not value:
        found = shared[id(value)] = Fragment(value, canonical_json(value)[:-1])
    return found


class _Unusual(Exception):
    """A value this writer leaves to ``json.dumps`` (non-string keys, subclasses, errors)."""


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


def _write(value: Any, newline: str, out: Callable[[str], None]) -> None:
    """Write ``value``; ``newline`` is a line break plus the current indentation."""
    kind = type(value)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        out(scalar(value))
    elif kind is dict:
        _write_mapping(value, newline, out)
    elif kind is list or kind is tuple:
        _write_sequence(value, newline, out)
    elif kind is Fragment:
        out(value.text if newline == value.newline else value.text.replace(value.newline, newline))
    else:
        raise _Unusual


def _write_mapping(value: dict[Any, Any], newline: str, out: Callable[[str], None]) -> None:
    if not value:
        out("{}")
        return
    inner = newline + INDENT
    separator = "{" + inner
    for key in sorted(value):
        if type(key) is not str:
            raise _Unusual
        item = value[key]
        scalar = _SCALARS.get(type(item))
        if scalar is not None:  # most values: one piece, no call
            out(separator + _STRING(key) + ": " + scalar(item))
        else:
            out(separator + _STRING(key) + ": ")
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
