"""One deterministic, fast YAML writer for every monitoring file.

Built YAML is data (DESIGN.md §3): the emitters build dicts and lists in a fixed insertion order
and write them once here. Why not ``yaml.dump``: PyYAML's pure-Python serializer spent 10 ms per
SLA on the rule file (96 % of the emitter's time on a large spec); this writer handles the
handful of types the emitters use (dict, list, str, int, float, bool, None) in block style, and
decides the style of each string conservatively:

* plain (unquoted) for a duration (``5m``), or when the text starts with a letter, ``_`` or
  ``/``, has no ``": "``,
  ``" #"``, trailing ``:`` or surrounding blanks, and is not a word YAML 1.1 reads as a boolean
  or null (``on``, ``no``, ``null``, …) — so no YAML reader can take it for anything else;
* a literal block (``|-``) for multi-line text without trailing blanks (PromQL of alerts);
* otherwise single quotes (``'0+100x360'``), or double quotes with YAML escapes when the text
  holds a control or non-ASCII character.

Every output is parsed back by ``yaml.safe_load`` in the tests, and a property test feeds the
writer arbitrary strings.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_/][\x20-\x7e]*")
_DURATION = re.compile(r"[0-9]+(ms|[smhdwy])")
_YAML11_WORDS = frozenset(
    ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"]
)  # case-insensitive matches of these resolve to booleans or null somewhere
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
INDENT = "  "


def scalar(value: object) -> str:
    """One scalar as YAML text (strings single-line here)."""
    if type(value) is str:
        return _string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return _float(value)
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} as YAML")
    return _string(value)


def _float(value: float) -> str:
    """A finite float every YAML reader takes for one: YAML 1.1 (PyYAML) needs a '.' in the
    mantissa, so ``1e-05`` is written ``1.0e-05``."""
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} as YAML data")
    text = repr(value)
    return text.replace("e", ".0e") if "." not in text and "e" in text else text


@functools.lru_cache(maxsize=8192)
def _string(text: str) -> str:
    """Cached: keys and label values repeat thousands of times in a large rule file."""
    if _plain_ok(text):
        return text
    if _PRINTABLE.fullmatch(text):
        return "'" + text.replace("'", "''") + "'"
    return '"' + "".join(_escape(c) for c in text) + '"'


def _escape(char: str) -> str:
    """One character inside a double-quoted YAML scalar (YAML's escapes, not JSON's: YAML has
    no surrogate pairs, an astral character is ``\\UXXXXXXXX``)."""
    if char in ('"', "\\"):
        return "\\" + char
    code = ord(char)
    if 0x20 <= code < 0x7F:
        return char
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _plain_ok(text: str) -> bool:
    if _DURATION.fullmatch(text):
        return True  # 5m, 30s: no YAML version reads these as anything but strings
    return (
        _PLAIN.fullmatch(text) is not None
        and text == text.strip()
        and ": " not in text
        and " #" not in text
        and not text.endswith(":")
        and text.lower() not in _YAML11_WORDS
    )


def _block_ok(text: str) -> bool:
    """Literal block style keeps the text exactly: no trailing blanks, a first line that is
    neither empty nor indented (YAML infers the block's indentation from the first non-empty
    line), printable ASCII only."""
    lines = text.split("\n")
    return (
        not text.endswith("\n")
        and lines[0] != ""
        and not lines[0].startswith(" ")
        and all(_PRINTABLE.fullmatch(line) and line == line.rstrip() for line in lines)
    )


def _value_into(prefix: str, value: Any, depth: int, out: list[str]) -> None:
    """``value`` after ``prefix`` (``key:`` or ``-``) at ``depth``, appended to ``out`` as lines:
    one shared list, so nesting costs no copying of the lines below it."""
    kind = type(value)
    if kind is str:
        if "\n" in value and _block_ok(value):
            pad = INDENT * depth
            out.append(prefix + " |-")
            out.extend(f"{pad}{line}" if line else "" for line in value.split("\n"))
        else:
            out.append(prefix + " " + _string(value))
    elif kind is dict or isinstance(value, dict):
        if value:
            out.append(prefix)
            _mapping_into(value, depth, out)
        else:
            out.append(prefix + " {}")
    elif kind is list or isinstance(value, list):
        if value:
            out.append(prefix)
            _sequence_into(value, depth, out)
        else:
            out.append(prefix + " []")
    elif isinstance(value, str):
        _value_into(prefix, str.__str__(value), depth, out)
    else:
        out.append(prefix + " " + scalar(value))


def _mapping_into(data: dict[str, Any], depth: int, out: list[str]) -> None:
    pad = INDENT * depth
    for key, value in data.items():
        _value_into(f"{pad}{scalar(key)}:", value, depth + 1, out)


def _sequence_into(items: list[Any], depth: int, out: list[str]) -> None:
    pad = INDENT * depth
    for item in items:
        if item and (type(item) is dict or isinstance(item, dict)):
            first = len(out)
            _mapping_into(item, depth + 1, out)
            out[first] = f"{pad}- {out[first].lstrip()}"
        else:
            _value_into(f"{pad}-", item, depth + 1, out)


def dump(data: dict[str, Any]) -> str:
    """``data`` (a mapping) as block-style YAML, insertion order kept, ASCII only."""
    out: list[str] = []
    _mapping_into(data, 0, out)
    return "\n".join(out) + "\n"


def with_header(header: str, body: str) -> str:
    """``body`` behind a one-line ``# header`` comment."""
    return f"# {header}\n{body}"
