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


def _value(value: Any, depth: int) -> list[str]:
    """Lines that follow a ``key:`` or ``- `` at ``depth`` (an inline part first, if any)."""
    pad = INDENT * depth
    if isinstance(value, dict):
        return ["", *_mapping(value, depth)] if value else [" {}"]
    if isinstance(value, list):
        return ["", *_sequence(value, depth)] if value else [" []"]
    if isinstance(value, str) and "\n" in value and _block_ok(value):
        return [" |-"] + [f"{pad}{line}" if line else "" for line in value.split("\n")]
    return [" " + scalar(value)]


def _mapping(data: dict[str, Any], depth: int) -> list[str]:
    lines: list[str] = []
    pad = INDENT * depth
    for key, value in data.items():
        head, *rest = _value(value, depth + 1)
        lines.append(f"{pad}{scalar(key)}:{head}")
        lines.extend(rest)
    return lines


def _sequence(items: list[Any], depth: int) -> list[str]:
    lines: list[str] = []
    pad = INDENT * depth
    for item in items:
        if isinstance(item, dict) and item:
            first, *others = _mapping(item, depth + 1)
            lines.append(f"{pad}- {first.lstrip()}")
            lines.extend(others)
        else:
            head, *rest = _value(item, depth + 1)
            lines.append(f"{pad}-{head}")
            lines.extend(rest)
    return lines


def dump(data: dict[str, Any]) -> str:
    """``data`` (a mapping) as block-style YAML, insertion order kept, ASCII only."""
    return "\n".join(_mapping(data, 0)) + "\n"


def with_header(header: str, body: str) -> str:
    """``body`` behind a one-line ``# header`` comment."""
    return f"# {header}\n{body}"
