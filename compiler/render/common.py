"""What every diagnostic renderer shares: options, ordering, counting and character safety.

Kept apart from ``compiler.render.dispatch`` so that the per-format modules can import it without an
import cycle; users import the public names from ``compiler.render.dispatch``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from mlplane import __version__
from mlplane.compiler.core.diagnostics import Diagnostic, Location, Severity

SourceLookup = Mapping[str, str]
"""A file's display name (``Location.file``) to its text; used only to print excerpts."""


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render. Colour is off unless the caller has checked that stdout is a TTY."""

    color: bool = False
    tool_version: str = __version__
    summary: bool = True


class Counts(NamedTuple):
    errors: int
    warnings: int
    infos: int


def count(diagnostics: Iterable[Diagnostic]) -> Counts:
    errors = warnings = infos = 0
    for diagnostic in diagnostics:
        if diagnostic.severity is Severity.ERROR:
            errors += 1
        elif diagnostic.severity is Severity.WARNING:
            warnings += 1
        else:
            infos += 1
    return Counts(errors, warnings, infos)


def _total_key(
    diagnostic: Diagnostic,
) -> tuple[tuple[str, int, int, str, str], str, str, str, tuple[tuple[Location, str], ...]]:
    # ``sort_key`` decides the order users see; the rest only breaks its ties, so that the
    # output does not depend on the order in which passes happened to report.
    return (
        diagnostic.sort_key(),
        diagnostic.path,
        diagnostic.hint or "",
        diagnostic.severity.value,
        tuple((related.location, related.message) for related in diagnostic.related),
    )


def ordered(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in ``Diagnostic.sort_key`` order, made total so that output is deterministic."""
    return sorted(diagnostics, key=_total_key)


# Characters a hostile spec could use to drive a terminal (C0/C1 controls, including ESC and
# the 8-bit CSI), to make text read differently from what it is (bidi overrides, Trojan
# Source), or to hide text (zero-width characters, BOM, tag characters). The ranges cover
# everything the loader bans (``forbidden-character``), so that a diagnostic about such a
# character always shows it escaped; the Unicode categories widen them to every format and
# control character and to lone surrogates, which cannot even be encoded for output.
_UNSAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F),
    (0x007F, 0x009F),
    (0x061C, 0x061C),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFFE, 0xFFFF),
    (0xE0000, 0xE007F),
)
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def is_unsafe(char: str) -> bool:
    """Whether ``char`` must not reach a terminal or a log viewer as itself."""
    point = ord(char)
    if point < 0x80:  # ASCII: exactly the controls of the first range and DEL
        return point < 0x20 or point == 0x7F
    if any(low <= point <= high for low, high in _UNSAFE_RANGES):
        return True
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def escape_char(char: str) -> str:
    return f"\\u{{{ord(char):04X}}}"


def make_safe(text: str, keep: str = "\t") -> str:
    """``text`` with every unsafe character except those in ``keep`` shown as ``\\u{XXXX}``."""
    if text.isascii() and text.isprintable():  # no control character, the usual message
        return text
    return "".join(
        escape_char(char) if char not in keep and is_unsafe(char) else char for char in text
    )


def split_lines(text: str) -> Sequence[str]:
    """The lines of a spec file, numbered as the loader numbers them (line 1 is index 0).

    Only LF ends a line (CRLF counts once). The loader rejects lone CR, NEL and LS/PS before
    YAML parsing and locates them counting LF alone, so splitting on them here would put the
    excerpt of a ``forbidden-character`` diagnostic on the wrong line, and would hide the very
    character it reports; this way it is shown, escaped, where the caret points.
    """
    return [line.removesuffix("\r") for line in text.split("\n")]
