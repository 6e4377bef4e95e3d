"""The ``text`` format: what a person reads in a terminal, in the style of mypy and rustc.

::

    spec.yaml:3:14: error: model "scorer" reads unknown data source "featres" [ref-undefined]
      3 |     inputs: [featres]
        |              ^
      = hint: did you mean "features"?
      = path: models.scorer.inputs[0]
    spec.yaml:9:3: note: "features" is defined here
    1 error, 0 warnings in 1 file

Everything taken from the spec (excerpts, but also messages, which quote spec values, and file
names) passes through ``make_safe`` first: the spec may come from an untrusted pull request,
and printing it must not be a way to send escape sequences to the reviewer's terminal or to
make a line read differently from what it is (bidi overrides).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from mlplane.compiler.core.diagnostics import Diagnostic, Location, Severity, is_sensitive
from mlplane.compiler.core.redact import high_entropy_tokens, known_secret
from mlplane.compiler.render.common import (
    Counts,
    RenderOptions,
    SourceLookup,
    count,
    escape_char,
    is_unsafe,
    make_safe,
    ordered,
    split_lines,
)

TAB_STOP = 8
"""Tabs in excerpts expand to the next multiple of this, counted from the start of the line."""

MAX_EXCERPT_WIDTH = 200
"""Excerpt lines wider than this many terminal cells are cut around the caret."""

ELLIPSIS = "…"

_RESET = "\x1b[0m"
_STYLES: dict[str, str] = {
    "error": "\x1b[1;31m",
    "warning": "\x1b[33m",
    "info": "\x1b[36m",
    "note": "\x1b[36m",
}


@dataclass(frozen=True, slots=True)
class Excerpt:
    """One source line made safe for display, and where the caret goes under it."""

    text: str
    caret_offset: int
    caret_width: int


def _cell_width(char: str) -> int:
    """Terminal cells a safe character takes, so that the caret lands under the right one."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _display_pieces(line: str) -> list[str]:
    """What each character of ``line`` is shown as: itself, spaces for a tab, or an escape."""
    pieces: list[str] = []
    cells = 0
    for char in line:
        if char == "\t":
            piece = " " * (TAB_STOP - cells % TAB_STOP)
        elif is_unsafe(char):
            piece = escape_char(char)
        else:
            piece = char
        pieces.append(piece)
        cells += _piece_width(piece)
    return pieces


def _piece_width(piece: str) -> int:
    if piece.isascii():  # a piece holds no control character: one cell each
        return len(piece)
    return sum(_cell_width(char) for char in piece)


def _window(widths: Sequence[int], caret: int, budget: int) -> tuple[int, int]:
    """The widest slice ``[lo, hi)`` of pieces that fits ``budget`` and keeps ``caret`` central."""
    lo, used = caret, 0
    while lo > 0 and used + widths[lo - 1] <= budget // 2:
        lo -= 1
        used += widths[lo]
    hi = caret
    while hi < len(widths) and used + widths[hi] <= budget:
        used += widths[hi]
        hi += 1
    while lo > 0 and used + widths[lo - 1] <= budget:  # the line ended early: fill leftwards
        lo -= 1
        used += widths[lo]
    return lo, hi


def make_excerpt(line: str, column: int) -> Excerpt:
    """Prepare ``line`` for display with a caret under the 1-based code-point ``column``.

    A very long line is first clipped to the code points that can possibly be shown (each takes
    at least one cell), so a hostile one-line spec of megabytes costs no more per diagnostic
    than a normal line.
    """
    clipped_head = clipped_tail = False
    if len(line) > 4 * MAX_EXCERPT_WIDTH:
        start = max(0, min(column, len(line) + 1) - 1 - MAX_EXCERPT_WIDTH)
        end = start + 2 * MAX_EXCERPT_WIDTH
        clipped_head, clipped_tail = start > 0, end < len(line)
        line, column = line[start:end], column - start
    pieces = _display_pieces(line)
    widths = [_piece_width(piece) for piece in pieces]
    caret = min(max(column, 1), len(pieces) + 1) - 1
    lo, hi = 0, len(pieces)
    if sum(widths) > MAX_EXCERPT_WIDTH or clipped_head or clipped_tail:
        lo, hi = _window(widths, caret, MAX_EXCERPT_WIDTH - 2 * len(ELLIPSIS))
    head = ELLIPSIS if lo > 0 or clipped_head else ""
    tail = ELLIPSIS if hi < len(pieces) or clipped_tail else ""
    text = head + "".join(pieces[lo:hi]) + tail
    offset = len(head) + sum(widths[lo:caret])
    at_caret = pieces[caret] if caret < len(pieces) else ""
    caret_width = len(at_caret) if at_caret.startswith("\\u{") else 1  # underline escapes
    return Excerpt(text.rstrip(), offset, caret_width)


class _Painter:
    """Applies ANSI styles only when colour was asked for, so callers need not check."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, style: str, text: str) -> str:
        if not self.color:
            return text
        return f"{_STYLES[style]}{text}{_RESET}"


def _header(diagnostic: Diagnostic, paint: _Painter) -> str:
    where = f"{make_safe(str(diagnostic.location))}: " if diagnostic.location else ""
    label = paint(diagnostic.severity.value, f"{diagnostic.severity.value}:")
    message = make_safe(diagnostic.message)
    return f"{where}{label} {message} [{diagnostic.code}]"


def _excerpt_lines(
    location: Location, severity: Severity, lines: Sequence[str] | None, paint: _Painter
) -> list[str]:
    if lines is None or not 1 <= location.line <= len(lines):
        return []
    excerpt = make_excerpt(lines[location.line - 1], location.column)
    number = str(location.line)
    caret = paint(severity.value, "^" * excerpt.caret_width)
    return [
        f"  {number} | {excerpt.text}".rstrip(),
        f"  {' ' * len(number)} | {' ' * excerpt.caret_offset}{caret}",
    ]


def _labelled(label: str, text: str) -> list[str]:
    """``  = label: text``, continuation lines indented under the text."""
    first, *rest = text.split("\n")
    prefix = f"  = {label}: "
    return [prefix + make_safe(first)] + [" " * len(prefix) + make_safe(line) for line in rest]


class _SourceCache:
    """Splits each source file into lines once per render, however many diagnostics it has."""

    def __init__(self, sources: SourceLookup) -> None:
        self._sources = sources
        self._lines: dict[str, Sequence[str]] = {}

    def lines(self, file: str) -> Sequence[str] | None:
        if file not in self._lines:
            text = self._sources.get(file)
            if text is None:
                return None
            self._lines[file] = split_lines(text)
        return self._lines[file]


def _block(diagnostic: Diagnostic, cache: _SourceCache, paint: _Painter) -> list[str]:
    out = [_header(diagnostic, paint)]
    location = diagnostic.location
    lines = cache.lines(location.file) if location is not None else None
    if location is not None and (
        diagnostic.hide_source or is_sensitive(diagnostic.code) or _holds_secret(lines, location)
    ):
        out.append("  (source line not shown: it may contain a secret)")
    elif location is not None:
        out += _excerpt_lines(location, diagnostic.severity, lines, paint)
    if diagnostic.hint:
        out += _labelled("hint", diagnostic.hint)
    if diagnostic.path:
        out += _labelled("path", diagnostic.path)
    for related in diagnostic.related:
        where = make_safe(str(related.location))
        out.append(f"{where}: {paint('note', 'note:')} {make_safe(related.message)}")
    return out


_SECRET_WINDOW = 512
"""Characters on each side of the caret searched for credential shapes: more than an excerpt
ever shows."""


def _holds_secret(lines: Sequence[str] | None, location: Location) -> bool:
    """Whether the quoted line holds something shaped like a credential: diagnostics raised
    before the secret scan ran (a duplicate key that is a token) never quote it either."""
    if lines is None or not 1 <= location.line <= len(lines):
        return False
    # only the part an excerpt can show (a window around the caret), so the cost does not
    # grow with the line: a 50 KB line is clipped before it is quoted
    start = max(0, location.column - 1 - _SECRET_WINDOW)
    line = lines[location.line - 1][start : location.column - 1 + _SECRET_WINDOW]
    return known_secret(line) is not None or bool(high_entropy_tokens(line))


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def summary_line(counts: Counts, files: int) -> str:
    """``2 errors, 1 warning in 1 file``; infos are mentioned only when there are some."""
    parts = [_plural(counts.errors, "error"), _plural(counts.warnings, "warning")]
    if counts.infos:
        parts.append(_plural(counts.infos, "info"))
    where = f" in {_plural(files, 'file')}" if files else ""
    return ", ".join(parts) + where


def render_text(
    diagnostics: Sequence[Diagnostic], sources: SourceLookup, options: RenderOptions
) -> str:
    """Render for a terminal; an empty string when there is nothing to report."""
    if not diagnostics:
        return ""
    items = ordered(diagnostics)
    cache = _SourceCache(sources)
    paint = _Painter(options.color)
    out: list[str] = []
    for diagnostic in items:
        out += _block(diagnostic, cache, paint)
    if options.summary:
        files = {d.location.file for d in items if d.location is not None}
        out.append(summary_line(count(items), len(files)))
    return "\n".join(out) + "\n"
