"""Mermaid text from spec strings: the label escaper and node shapes that the governance
report's lineage picture (``compiler/report/views.py``) and the plan's lineage diff
(``compiler/plan/governance.py``) share.

Spec strings are hostile input: :func:`label` keeps letters, digits, spaces and ``,/_.-`` and
writes every other character as Mermaid's entity code ``#NNN;``, so no quote, bracket, pipe,
semicolon, backtick, ``<`` or newline reaches Mermaid's parser or the HTML it renders.
Identifiers in a diagram are always generated (``n0``, ``n1``, ...), never spec names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_BREAKS = re.compile("[\r\n\t\u0085\u2028\u2029]")
_SAFE = re.compile(r"[A-Za-z0-9 ,/_.-]")

SHAPES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "dataSource": ("[(", ")]"),
        "model": ("[", "]"),
        "endpoint": ("([", "])"),
        "sla": ("{{", "}}"),
    }
)
"""A lineage node's Mermaid shape by kind: a cylinder, a box, a stadium, a hexagon."""


@cache
def clean(text: str) -> str:
    """``text`` with the characters XML cannot hold replaced (U+FFFD), on one line."""
    return _BREAKS.sub(" ", _NOT_XML.sub("\ufffd", text))


@cache
def label(text: str) -> str:
    """Text for a quoted Mermaid label: letters, digits and ``,/_.-`` and spaces as they are,
    anything else as Mermaid's entity code ``#NNN;``."""
    return "".join(char if _SAFE.fullmatch(char) else f"#{ord(char)};" for char in clean(text))
