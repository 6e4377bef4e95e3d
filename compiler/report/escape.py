"""Escaping spec text for each output language of the report.

Spec strings (descriptions, URIs, owners, versions, waiver reasons) are hostile input: each
escaper maps *every* character that means something in its language to an inert form, so a
value can only ever be shown, never interpreted (no tag, link, entity, table cell, code fence,
Mermaid statement or DOT attribute can be opened by it). Characters XML cannot carry (C0
controls other than tab, newline and carriage return; lone surrogates; U+FFFE and U+FFFF) are
replaced by U+FFFD everywhere, and line breaks become spaces in one-line contexts.

The escapers are memoised: a large report escapes the same rule ids, statuses and names tens of
thousands of times (on the 1,000-model benchmark spec, caching halved the HTML rendering).
"""

from __future__ import annotations

import re
from functools import cache

from mlplane.compiler.render.mermaid import clean, label

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~\-=:^$@])")
_XML_INERT = re.compile(
    "[^&<>\"'\x00-\x08\x0b\x0c\x0e-\x1f\x7f\r\n\t\u0085\u2028\u2029\ud800-\udfff\ufffe\uffff]*"
)
"""Text that :func:`xml` leaves as it is: no markup character, nothing ``clean`` replaces."""


@cache
def xml(text: str) -> str:
    """Text for an HTML or SVG element or a double- or single-quoted attribute value."""
    if _XML_INERT.fullmatch(text):
        return text  # most names and labels: one scan instead of six
    return (
        clean(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


@cache
def markdown(text: str) -> str:
    """Text for a Markdown paragraph or table cell: every punctuation character Markdown (or
    GitHub's extensions) reads is backslash-escaped, ``&`` becomes ``&amp;`` (no entity can
    be spelt), and line breaks become spaces (no block can start)."""
    return _MARKDOWN.sub(r"\\\1", clean(text).replace("&", "&amp;"))


mermaid = label
"""Text for a quoted Mermaid label (``compiler/render/mermaid.py``: the plan draws with it too)."""
