"""One deterministic YAML emitter for every CI file, with trailing comments on scalars.

Built YAML is data (DESIGN.md §3): the emitters build dicts in a meaningful insertion order and
dump them once, here. PyYAML cannot write comments, and CI files need them on exactly two kinds
of line: ``uses: owner/repo@<40 hex> # v4.2.2`` (how pins are reviewed and updated) and
``contents: read # why`` (zizmor's pedantic persona wants every permission explained). So this
module is a small emitter for the subset that workflows use — block mappings, block sequences,
scalars, literal blocks for scripts — where a scalar wrapped in :class:`Commented` gets its
comment on its own line. The choice of a custom emitter over post-processing PyYAML's output by
exact lines: the comment travels with the value it explains, so no edit to the data can attach a
comment to the wrong line.

Safety rules, each enforced rather than assumed:

- a scalar is written plain only when it matches a conservative character set *and* both YAML
  1.1 (PyYAML, GitLab's Ruby parser) and YAML 1.2 (GitHub, zizmor, check-jsonschema) read it back
  as the same string; everything else is double-quoted (a JSON string is a valid YAML one);
- multi-line strings (scripts) become literal blocks and must be clean: no trailing spaces, no
  tabs, no control characters, at most one final newline;
- comments are single-line printable ASCII;
- the text is parsed back with a YAML 1.2 loader and compared with the data before it is
  returned, so the emitter cannot silently write something else than it was given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Commented", "dump", "load", "plain_data"]


@dataclass(frozen=True, slots=True)
class Commented:
    """A string scalar written with a trailing ``# comment`` on its line."""

    value: str
    comment: str


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false, so ``on:`` is a string
    key (as GitHub reads it) and ``yes``/``no`` stay strings."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)

_PLAIN = re.compile(r"^[A-Za-z0-9_./()$][A-Za-z0-9_./()@=+,'&|!<>$ -]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_COMMENT = re.compile(r"^[ -~]+$")
_BLOCK_LINE = re.compile(r"^[^\x00-\x08\x0b-\x1f\x7f\t]*$")
_INDENT = "  "


def load(text: str) -> Any:
    """Parse CI YAML the way GitHub and check-jsonschema do (YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def plain_data(node: Any) -> Any:
    """``node`` with every :class:`Commented` replaced by its value (what a parser sees)."""
    if isinstance(node, Commented):
        return node.value
    if isinstance(node, Mapping):
        return {key: plain_data(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [plain_data(item) for item in node]
    return node


def dump(data: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """``data`` as block YAML behind ``# header`` lines; verified by parsing it back."""
    lines = [f"# {_comment_text(line)}" for line in header]
    _mapping(data, 0, lines)
    text = "\n".join(lines) + "\n"
    if load(text) != plain_data(data):
        raise ValueError("the emitted YAML does not parse back to the data it was built from")
    return text


# --- blocks ------------------------------------------------------------------------------------


def _mapping(data: Mapping[str, Any], depth: int, lines: list[str]) -> None:
    indent = _INDENT * depth
    for key, value in data.items():
        prefix = f"{indent}{_key(key)}:"
        if _is_block_string(value):
            lines.append(f"{prefix} {_block_indicator(value)}")
            lines.extend(_block_lines(value, depth + 1))
        elif isinstance(value, Mapping) and value:
            lines.append(prefix)
            _mapping(value, depth + 1, lines)
        elif isinstance(value, list | tuple) and value:
            lines.append(prefix)
            _sequence(value, depth + 1, lines)
        else:
            lines.append(f"{prefix} {_inline(value)}")


def _sequence(items: Sequence[Any], depth: int, lines: list[str]) -> None:
    indent = _INDENT * depth
    for item in items:
        if _is_block_string(item):
            lines.append(f"{indent}- {_block_indicator(item)}")
            lines.extend(_block_lines(item, depth + 1))
        elif isinstance(item, Mapping) and item:
            nested: list[str] = []
            _mapping(item, depth + 1, nested)
            first = nested[0][len(_INDENT) * (depth + 1) :]
            lines.append(f"{indent}- {first}")
            lines.extend(nested[1:])
        elif isinstance(item, list | tuple) and item:
            raise ValueError("nested sequences are not part of the CI subset")
        else:
            lines.append(f"{indent}- {_inline(item)}")


def _is_block_string(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _block_indicator(value: str) -> str:
    if value.endswith("\n\n") or value.startswith((" ", "\n")):
        raise ValueError("a literal block must not start with a space or end in blank lines")
    return "|" if value.endswith("\n") else "|-"


def _block_lines(value: str, depth: int) -> list[str]:
    indent = _INDENT * depth
    body = value[:-1] if value.endswith("\n") else value
    out: list[str] = []
    for line in body.split("\n"):
        if line != line.rstrip() or not _BLOCK_LINE.match(line):
            raise ValueError(f"unsafe line in a literal block: {line!r}")
        out.append(f"{indent}{line}" if line else "")
    return out


# --- scalars -----------------------------------------------------------------------------------


def _inline(value: Any) -> str:
    if isinstance(value, Commented):
        return f"{_scalar(value.value)} # {_comment_text(value.comment)}"
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"unsupported scalar {type(value).__name__}")
    return value if _plain_safe(value) else json.dumps(value, ensure_ascii=True)


def _plain_safe(value: str) -> bool:
    """Plain only when unambiguous: no ``: ``/`` #``, no trailing space, no leading indicator,
    and read back as this very string by YAML 1.1 and 1.2 alike."""
    if not _PLAIN.match(value) or value.endswith(" ") or value.startswith("$("):
        return False
    if ": " in value or " #" in value:
        return False
    return _reads_as(value, yaml.SafeLoader) and _reads_as(value, _Yaml12Loader)


def _reads_as(value: str, loader: type[yaml.SafeLoader]) -> bool:
    try:
        return bool(yaml.load(f"k: {value}\n", Loader=loader) == {"k": value})  # noqa: S506
    except yaml.YAMLError:
        return False


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"mapping keys must be non-empty strings, got {key!r}")
    if _KEY.match(key) and load(f"{key}: 0\n") == {key: 0}:
        return key
    return json.dumps(key, ensure_ascii=True)


def _comment_text(text: str) -> str:
    if not _COMMENT.match(text):
        raise ValueError(f"a YAML comment must be one line of printable ASCII: {text!r}")
    return text
