"""``mlplane explain``: the effective spec of one environment, each value with its origin.

The output is YAML (block style, values JSON-quoted whenever a plain scalar could be misread) so
it can be read, diffed and even fed back to ``mlplane validate``. With origins, every leaf gets a
``# file:line`` comment, marked ``(override)`` when an environment overlay set it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlplane.compiler.core import canonical
from mlplane.compiler.core.diagnostics import Location, SpecPath
from mlplane.compiler.frontend.document import Document
from mlplane.compiler.render.common import make_safe
from mlplane.schema.models import MLSystem

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@+-]*(?: [A-Za-z0-9_./@+()-]+)*$")
_RESERVED = re.compile(
    r"^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N)$"
)


def scalar(value: Any) -> str:
    """A YAML scalar that reads back as exactly ``value`` under YAML 1.1 and 1.2 alike."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and not _RESERVED.match(text) and len(text) <= 120:
        return text
    return _quoted(text)


def _quoted(text: str) -> str:
    """A double-quoted ASCII scalar. Not ``json.dumps(ensure_ascii=True)``: it writes characters
    beyond U+FFFF as surrogate pairs, which YAML does not decode (libyaml rejects them)."""
    return "".join(
        char
        if char.isascii()
        else f"\\u{ord(char):04x}"
        if ord(char) <= 0xFFFF
        else f"\\U{ord(char):08x}"
        for char in json.dumps(text, ensure_ascii=False)
    )


def _key(key: str) -> str:
    return key if _PLAIN.match(key) and not _RESERVED.match(key) else _quoted(key)


class _Writer:
    def __init__(self, effective: Document, base: Document, show_origin: bool) -> None:
        self.effective = effective
        self.base = base
        self.show_origin = show_origin
        self.lines: list[tuple[str, str]] = []

    def origin(self, path: SpecPath) -> str:
        if not self.show_origin:
            return ""
        location: Location | None = self.effective.values.get(path)
        if location is None:
            return "default"
        mark = " (override)" if self.base.values.get(path) != location else ""
        # A file name is text from the repository: escaped as every renderer escapes spec text,
        # so a newline or a terminal escape in it cannot end the comment or drive a terminal.
        return f"{make_safe(location.file, keep='')}:{location.line}{mark}"

    def emit(self, text: str, path: SpecPath | None) -> None:
        self.lines.append((text, self.origin(path) if path is not None else ""))

    def node(self, value: Any, path: SpecPath, indent: int, lead: str) -> None:
        """Write ``value`` whose key text (``lead``, e.g. ``"name:"`` or ``"-"``) starts the line."""
        pad = "  " * indent
        if isinstance(value, dict) and value:
            self.emit(f"{pad}{lead}", None)
            for key, item in value.items():
                self.node(item, (*path, key), indent + 1, f"{_key(key)}:")
        elif isinstance(value, list) and value:
            self.emit(f"{pad}{lead}", None)
            for index, item in enumerate(value):
                self.node(item, (*path, index), indent + 1, "-")
        else:
            empty = (
                "{}"
                if isinstance(value, dict)
                else "[]"
                if isinstance(value, list)
                else scalar(value)
            )
            self.emit(f"{pad}{lead} {empty}", path)

    def render(self) -> str:
        width = min(max((len(text) for text, origin in self.lines if origin), default=0), 56)
        out = []
        for text, origin in self.lines:
            out.append(f"{text.ljust(width)}  # {origin}" if origin else text)
        return "\n".join(out) + "\n"


def effective_data(validated: MLSystem, effective: Document) -> dict[str, Any]:
    """The validated spec with defaults filled in; empty defaults nobody wrote are left out."""
    dumped = validated.model_dump(mode="json", by_alias=True, exclude_none=True)
    # Values that differ from their default are kept even when empty (``indicator:
    # availability`` is ``{availability: {}}``, which nobody wrote as such).
    explicit = validated.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return _prune(dumped, (), effective, explicit)  # type: ignore[no-any-return]


def _prune(value: Any, path: SpecPath, effective: Document, explicit: Any = None) -> Any:
    if isinstance(value, dict):
        given = explicit if isinstance(explicit, dict) else {}
        kept = {k: _prune(v, (*path, k), effective, given.get(k)) for k, v in value.items()}
        return {
            k: v
            for k, v in kept.items()
            if v not in ({}, []) or (*path, k) in effective.values or k in given
        }
    if isinstance(value, list):
        items = explicit if isinstance(explicit, list) else []
        return [
            _prune(v, (*path, i), effective, items[i] if i < len(items) else None)
            for i, v in enumerate(value)
        ]
    return value


def explain_yaml(
    validated: MLSystem, effective: Document, base: Document, environment: str, show_origin: bool
) -> str:
    """The effective spec of ``environment`` as YAML text, defaults included (``environments``
    other than it and every ``overrides`` block are left out: they are already applied)."""
    data = effective_data(validated, effective)
    envs = data.get("environments", {})
    if isinstance(envs, dict) and environment in envs:
        env = {k: v for k, v in envs[environment].items() if k != "overrides"}
        data["environments"] = {environment: env}
    writer = _Writer(effective, base, show_origin)
    writer.lines.append((f"# effective spec of environment {environment!r}", ""))
    for key, value in data.items():
        writer.node(value, (key,), 0, f"{_key(key)}:")
    return writer.render()


def explain_json(validated: MLSystem, effective: Document, environment: str) -> str:
    data = effective_data(validated, effective)
    origins = {
        _path_text(path): str(location)
        for path, location in sorted(effective.values.items(), key=_sort_key)
    }
    payload = {"environment": environment, "spec": data, "origins": origins}
    return canonical.canonical_json(payload)


def _sort_key(item: tuple[SpecPath, Location]) -> tuple[str, int, int]:
    location = item[1]
    return (location.file, location.line, location.column)


def _path_text(path: SpecPath) -> str:
    from mlplane.compiler.core.diagnostics import format_path

    return format_path(path) or "$"
