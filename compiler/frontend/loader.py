"""Safe YAML loading with positions: spec bytes in, plain data and position tables out.

Why we walk libyaml's event stream ourselves (docs/architecture.md, Decisions): the C composer segfaults on deep
nesting, and ``yaml.load`` expands alias bombs, coerces ``yes``/``on`` (YAML 1.1) and silently
keeps the last of two duplicate keys. The C *event parser* is fast and robust, so we build the
data from its events with an explicit stack and reject what we do not want as it arrives.

- Any error makes ``load_bytes`` return ``None``. Independent problems are all reported, up to
  ``MAX_ERRORS`` (so that a hostile file cannot exhaust memory with diagnostics); a syntax error
  or a limit stops loading at once.
- Besides the characters docs/quality.md row 2 lists, U+2028/U+2029 (libyaml counts them as line breaks,
  editors do not, so later positions would be wrong), U+FFFE/U+FFFF (libyaml refuses them),
  U+180E, U+2060-U+206F and the tag characters U+E0000-U+E007F (invisible) are forbidden.
- Plain scalars resolve by YAML 1.2 core rules. ``.inf``/``.nan`` stay floats on purpose (the
  schema reports them as range errors at the field); ``1e400`` and 31-digit integers are errors.
- ``_Builder.run`` is long on purpose: it runs once per event, so it works on local variables
  and sends every rare case to a helper method.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import (
    Diagnostic,
    Diagnostics,
    Location,
    Related,
    Severity,
    SpecPath,
    format_path,
)
from mlplane.compiler.core.source import DEFAULT_LIMITS, Limits, LoadedFile

__all__ = ["MAX_ERRORS", "describe_character", "load_bytes", "load_path"]

MAX_ERRORS = 100
"""Diagnostics reported per file before the loader stops looking for more."""

_LOADER: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
_LIBYAML_DEPTH_PROBLEM = "exceeded maximum nesting depth"
_MEMO_SIZE, _MEMO_CHARS = 4096, 24
"""How many distinct short plain scalars one load remembers the resolution of, and how short."""
_BOM = "\ufeff"
_MAX_INT_DIGITS = 30

_BANNED = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 controls except TAB/LF/CR, DEL, C1 controls
    "\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"  # invisible, bidi, LS/PS
    "\ufeff\ufffe\uffff\U000e0000-\U000e007f"
)
_BANNED_CHARS = re.compile(f"[{_BANNED}]")  # the fast path: one scan without alternation
_FORBIDDEN_IN_TEXT = re.compile(f"[{_BANNED}]|\r(?!\n)")  # CR only as part of CRLF
_FORBIDDEN_IN_SCALAR = re.compile(f"[{_BANNED}\r]")  # escapes can make a CR; LF/TAB are fine
_CHARACTER_HINT = "remove it: such characters can make text read differently from what it does"
_CONTROL_NAMES = {  # Unicode gives control characters no name
    0x00: "NULL",
    0x07: "BELL",
    0x08: "BACKSPACE",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
    0x85: "NEXT LINE",
}

# YAML 1.2 core schema. A plain scalar whose first character is not in this set is a string,
# which spares the regular expressions for almost every scalar of a real spec.
_MAYBE_NOT_STRING = frozenset("0123456789+-.~nNtTfF")
_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(("", "~", "null", "Null", "NULL")),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **{f"{sign}.{word}": float(f"{sign}inf") for sign in "+-" for word in ("inf", "Inf", "INF")},
    **dict.fromkeys((".inf", ".Inf", ".INF"), math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_DEC_INT = re.compile(r"[-+]?[0-9]+")
_OCT_INT = re.compile(r"0o[0-7]+")
_HEX_INT = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_OUT_OF_RANGE = object()
_NO_KEY = object()


_ALIAS_HINT = (
    "write the value out in full: a spec is read by people and tools that do not expand "
    "aliases; to vary a value per environment, use environments.<env>.overrides"
)
_TAB_HINT = "indent with spaces: YAML does not allow tabs for indentation"


def _is_tab(text: str, where: Location) -> bool:
    """Whether the character at ``where`` (1-based line and column) is a tab."""
    lines = text.split("\n")
    if not 0 < where.line <= len(lines):
        return False
    line = lines[where.line - 1]
    return 0 < where.column <= len(line) and line[where.column - 1] == "\t"


class _BadKey(str):
    """Stands in for a rejected key so that parsing can go on. Equal only to itself, so it never
    collides with a real key (no spurious duplicate-key errors), yet it prints as its text."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


def load_path(
    path: Path, name: str, limits: Limits = DEFAULT_LIMITS, texts: dict[str, str] | None = None
) -> tuple[LoadedFile | None, list[Diagnostic]]:
    """Read (:func:`read_spec_file`) and load one spec file; never raises. ``texts`` receives
    the file's text once decoded (see :func:`load_bytes`)."""
    data, problems = read_spec_file(path, name, limits)
    if data is None:
        return None, problems
    return load_bytes(data, name, limits, texts)


def read_spec_file(
    path: Path, name: str, limits: Limits = DEFAULT_LIMITS
) -> tuple[bytes | None, list[Diagnostic]]:
    """The bytes of one spec file, or None with the reason (at ``name``); never raises. The size
    is checked before reading and a FIFO or device is refused (opened non-blocking, so that it
    cannot hang the compiler); a file grown past the limit while read is cut one byte past it,
    which :func:`load_bytes` refuses."""
    here = Location(name, 1, 1)
    try:
        if (problem := _file_problem(os.stat(path), limits)) is not None:
            return None, [_error(*problem, here)]
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        with open(os.open(path, flags), "rb") as handle:  # fstat: the file may have changed
            if (problem := _file_problem(os.fstat(handle.fileno()), limits)) is not None:
                return None, [_error(*problem, here)]
            return handle.read(limits.max_file_bytes + 1), []
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, [_error(codes.IO_ERROR, f"cannot read the spec file: {reason}", here)]


def spec_text(data: bytes) -> str | None:
    """The text :func:`load_bytes` reads from ``data`` (strict UTF-8, a leading BOM dropped);
    None when it does not decode."""
    try:
        return data.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError:
        return None


def load_bytes(
    data: bytes, name: str, limits: Limits = DEFAULT_LIMITS, texts: dict[str, str] | None = None
) -> tuple[LoadedFile | None, list[Diagnostic]]:
    """Load one spec from bytes; ``name`` is the path shown in every location. ``texts``, when
    given, receives ``name -> text`` as soon as the bytes decode, also when the YAML is then
    refused: its errors (tabs, anchors, duplicate keys) are shown with their source line."""
    if len(data) > limits.max_file_bytes:
        message = _size_message(len(data), limits.max_file_bytes)
        return None, [_error(codes.FILE_TOO_LARGE, message, Location(name, 1, 1))]
    diags = Diagnostics()
    text = _decode(data, name, diags)
    if text is None:
        return None, list(diags)
    if texts is not None:
        texts[name] = text
    _scan_characters(text, name, diags)
    if diags:
        return None, list(diags)
    builder = _Builder(name, limits, diags)
    builder.build(text)
    if diags or builder.root is None:
        return None, list(diags)
    return LoadedFile(name, text, builder.root, builder.values, builder.keys, builder.raw), []


def describe_character(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: the code point a user can search for, and its name."""
    code = ord(char)
    name = unicodedata.name(char, "") or _CONTROL_NAMES.get(code, "")
    if not name:
        name = "CONTROL CHARACTER" if unicodedata.category(char) == "Cc" else "UNNAMED CHARACTER"
    return f"U+{code:04X} {name}"


def _error(code: str, message: str, location: Location) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, location)


def _file_problem(info: os.stat_result, limits: Limits) -> tuple[str, str] | None:
    """Why a file cannot be loaded, judged from its metadata alone."""
    if not stat.S_ISREG(info.st_mode):
        return codes.IO_ERROR, "cannot read the spec file: not a regular file"
    if info.st_size > limits.max_file_bytes:
        return codes.FILE_TOO_LARGE, _size_message(info.st_size, limits.max_file_bytes)
    return None


def _size_message(size: int, limit: int) -> str:
    def human(size: int) -> str:
        for factor, unit in ((1 << 20, "MiB"), (1 << 10, "KiB")):
            if size >= factor:
                return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
        return f"{size} bytes"

    shown, limit_shown = human(size), human(limit)
    if shown == limit_shown:  # "4 MiB; the limit is 4 MiB" would read as a contradiction
        shown, limit_shown = f"{size:,} bytes", f"{limit:,} bytes ({limit_shown})"
    return f"spec file is {shown}; the limit is {limit_shown}"


def _decode(data: bytes, name: str, diags: Diagnostics) -> str | None:
    """Strict UTF-8. A leading BOM is dropped so that columns match what editors show; the
    byte offset in the message counts from the start of the file (0-based, BOM included)."""
    text = spec_text(data)
    if text is not None:
        return text
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8").removeprefix(_BOM)
        line = before.count("\n") + 1
        column = len(before) - before.rfind("\n")
        message = f"not valid UTF-8 at byte {exc.start} (0x{data[exc.start]:02X})"
        diags.error(codes.NOT_UTF8, message, Location(name, line, column), hint="save it as UTF-8")
    return None


def _scan_characters(text: str, name: str, diags: Diagnostics) -> None:
    """Report every forbidden character at its position; a clean file costs one regex scan."""
    if _BANNED_CHARS.search(text) is None and text.count("\r") == text.count("\r\n"):
        return
    line, line_start, scanned = 1, 0, 0
    for match in _FORBIDDEN_IN_TEXT.finditer(text):
        index = match.start()
        breaks = text.count("\n", scanned, index)
        if breaks:
            line += breaks
            line_start = text.rfind("\n", scanned, index) + 1
        scanned = index
        char = match.group()
        detail = " (a lone carriage return; use LF or CRLF line endings)" if char == "\r" else ""
        message = f"forbidden character {describe_character(char)}{detail}"
        diags.error(
            codes.FORBIDDEN_CHARACTER,
            message,
            Location(name, line, index - line_start + 1),
            hint=_CHARACTER_HINT,
        )
        if len(diags) >= MAX_ERRORS:
            return


def _resolve_plain(text: str) -> tuple[Any, bool]:
    """A plain scalar by YAML 1.2 core rules: ``(value, is_string)``. An out-of-range number
    comes back as ``_OUT_OF_RANGE`` for the caller to report where it knows the path."""
    if text in _CONSTANTS:
        return _CONSTANTS[text], False
    if _DEC_INT.fullmatch(text):
        value = _integer(text.lstrip("+-"), text, 10)
    elif _OCT_INT.fullmatch(text) or _HEX_INT.fullmatch(text):
        value = _integer(text[2:], text[2:], 8 if text[1] == "o" else 16)
    elif _FLOAT.fullmatch(text):
        number = float(text)
        value = _OUT_OF_RANGE if math.isinf(number) else number
    else:
        return text, True
    return value, False


def _integer(digits: str, text: str, base: int) -> Any:
    if len(digits.lstrip("0")) > _MAX_INT_DIGITS:  # also keeps int() far from its digit cap
        return _OUT_OF_RANGE
    return int(text, base)


def _quote(text: str) -> str:
    """A key or value for a message: JSON-quoted, shortened, never echoing a control character."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    return json.dumps(shown, ensure_ascii=_FORBIDDEN_IN_SCALAR.search(shown) is not None)


def _clamp(location: Location, text: str) -> Location:
    """``location``, or the end of the last line when it lies past the end of ``text``."""
    lines = text.split("\n")
    if location.line <= len(lines):
        return location
    last = lines[-1].removesuffix("\r")
    return Location(location.file, len(lines), len(last) + 1)


def _location_slots() -> tuple[Any, Any, Any, Any]:
    """``object.__new__`` and the setters of Location's slots, for the event loop; refuses to
    load when Location's fields are no longer the three it sets (a field would stay unset)."""
    names = tuple(field.name for field in dataclasses.fields(Location))
    if names != ("file", "line", "column"):
        raise RuntimeError(f"the loader sets Location's file, line and column, not {names}")
    setters = [vars(Location)[name].__set__ for name in names]  # the slot descriptors
    return object.__new__, setters[0], setters[1], setters[2]


_LOCATION_SLOTS = _location_slots()


class _Builder:
    """Builds the spec's dicts and lists from parser events, recording every node's position.

    The innermost open collection lives in local variables of ``run``: ``container``, its path
    ``base``, ``is_map`` and, for a mapping, the ``pending`` key whose value comes next (or
    ``_NO_KEY``) with that entry's path ``entry``. Enclosing collections wait on ``stack``.
    """

    def __init__(self, name: str, limits: Limits, diags: Diagnostics) -> None:
        self.name = name
        self.limits = limits
        self.diags = diags
        self.root: dict[str, Any] | None = None
        self.values: dict[SpecPath, Location] = {}
        self.keys: dict[SpecPath, Location] = {}
        self.raw: dict[SpecPath, str] = {}
        self.stopped = False

    def build(self, text: str) -> None:
        """Run the event loop. The cyclic GC is paused meanwhile: the tree has no cycles, and on
        a big spec the full collections that its growth triggers cost 5-15% and find nothing."""
        parser: Any = _LOADER(text)
        events = iter(parser.get_event, None)  # ``yaml.parse`` less its generator: None ends
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.run(events)
        except yaml.MarkedYAMLError as exc:
            self._syntax_error(exc, text)
        except yaml.YAMLError as exc:  # a ReaderError, which the character scan should prevent
            reason = getattr(exc, "reason", None) or "the YAML reader failed"
            self._report(codes.YAML_SYNTAX, str(reason), self._at(None), ())
        finally:
            parser.dispose()
            if collecting:
                gc.enable()
        if self.root is None and not self.diags:  # an empty file or only comments
            self._report(codes.NOT_A_MAPPING, "spec must be a mapping", self._at(None), ())

    def run(self, events: Iterator[Any]) -> None:  # noqa: PLR0912, PLR0915 (hot loop)
        name, values, keys, raw = self.name, self.values, self.keys, self.raw
        max_depth, max_nodes = self.limits.max_depth, self.limits.max_nodes
        max_chars = self.limits.max_scalar_chars
        # A Location made as its __init__ would, less the three object.__setattr__ calls that a
        # frozen dataclass's __init__ makes through Python (a third of the cost of each node)
        new, set_file, set_line, set_column = _LOCATION_SLOTS
        scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
        mapping_start, sequence_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
        mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
        maybe_not_string, resolve, escaped = _MAYBE_NOT_STRING, _resolve_plain, _FORBIDDEN_IN_SCALAR
        no_key, out_of_range = _NO_KEY, _OUT_OF_RANGE
        memo: dict[str, tuple[Any, bool]] = {}  # short plain scalars repeat (0, true, 1.0, ...)
        top: list[Any] = []  # catches a top-level scalar, reported at the document's end
        stack: list[tuple[Any, SpecPath, Any, SpecPath, bool]] = []
        container: Any = top
        base: SpecPath = ()
        entry: SpecPath = ()
        pending: Any = no_key
        is_map = False
        nodes = documents = 0
        for event in events:
            cls = type(event)
            if cls is scalar_event:
                text = event.value
                mark = event.start_mark
                nodes += 1
                if nodes > max_nodes or len(text) > max_chars:
                    where = entry if is_map and pending is not no_key else base
                    self._limit(nodes > max_nodes, self._at(mark), where, len(text))
                    return
                style = event.style
                if style or (text and text[0] not in maybe_not_string):
                    value, is_str = text, True
                else:
                    resolved = memo.get(text)
                    if resolved is None:
                        resolved = resolve(text)
                        if len(memo) < _MEMO_SIZE and len(text) <= _MEMO_CHARS:
                            memo[text] = resolved
                    value, is_str = resolved
                loc = new(Location)
                set_file(loc, name)
                set_line(loc, mark.line + 1)
                set_column(loc, mark.column + 1)
                if (
                    event.anchor is not None
                    or event.tag is not None
                    or (style == '"' and escaped.search(text))
                ):
                    if not is_map:
                        where = (*base, len(container)) if stack else ()
                    else:
                        where = (*base, text) if pending is no_key else entry
                    self._odd_node(event, loc, where)
                if is_map:
                    if pending is no_key:
                        if is_str and value not in container and (style or value != "<<"):
                            pending = value
                            entry = (*base, value)
                            keys[entry] = loc
                        else:
                            pending = self._bad_key(base, value, text, style, loc)
                            entry = (*base, pending)
                        if self.stopped:
                            return
                        continue
                    container[pending] = value
                    values[entry] = loc
                    path = entry
                    pending = no_key
                else:
                    path = (*base, len(container))
                    container.append(value)
                    values[path] = loc
                if not is_str:
                    raw[path] = text
                    if value is out_of_range:
                        self._out_of_range(text, loc, path)
                if self.stopped:
                    return
            elif cls is mapping_start or cls is sequence_start:
                mark = event.start_mark
                loc = new(Location)
                set_file(loc, name)
                set_line(loc, mark.line + 1)
                set_column(loc, mark.column + 1)
                nodes += 1
                if nodes > max_nodes or len(stack) >= max_depth:
                    self._limit(nodes > max_nodes, loc, base, 0)
                    return
                is_mapping = cls is mapping_start
                child: Any = {} if is_mapping else []
                if not stack:
                    if not is_mapping:
                        self._report(codes.NOT_A_MAPPING, "spec must be a mapping", loc, ())
                        return
                    self.root, path = child, ()
                elif not is_map:
                    path = (*base, len(container))
                    container.append(child)
                elif pending is no_key:
                    path = self._complex_key(base, is_mapping, loc)
                else:
                    container[pending] = child
                    path = entry
                values[path] = loc
                if event.anchor is not None or event.tag is not None:
                    self._odd_node(event, loc, path)
                if self.stopped:
                    return
                stack.append((container, base, pending, entry, is_map))
                container, base, pending, is_map = child, path, no_key, is_mapping
            elif cls is mapping_end or cls is sequence_end:
                container, base, pending, entry, is_map = stack.pop()
                if is_map:  # the collection just closed was this mapping's key or its value
                    if pending is no_key:
                        pending = _BadKey("<key>")
                        entry = (*base, pending)
                    else:
                        pending = no_key
            elif cls is alias_event:
                nodes += 1
                where = entry if is_map and pending is not no_key else base
                message = "anchors and aliases are not allowed"
                self._report(
                    codes.YAML_ALIAS, message, self._at(event.start_mark), where, hint=_ALIAS_HINT
                )
                if self.stopped or not stack:
                    return
                if not is_map:
                    container.append(None)
                elif pending is no_key:
                    pending = _BadKey("*alias")
                    entry = (*base, pending)
                else:
                    container[pending] = None
                    pending = no_key
            elif cls is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    loc = self._at(event.start_mark)
                    self._report(codes.MULTIPLE_DOCUMENTS, "expected one document", loc, ())
                    return
            elif cls is yaml.DocumentEndEvent and top:
                self._report(codes.NOT_A_MAPPING, "spec must be a mapping", values[(0,)], ())
                return

    # --- rare cases, kept out of the hot loop ------------------------------------------------

    def _at(self, mark: Any) -> Location:
        """A libyaml mark (0-based) as a 1-based ``Location``; no mark means the file's start."""
        if mark is None:
            return Location(self.name, 1, 1)
        return Location(self.name, mark.line + 1, mark.column + 1)

    def _report(
        self,
        code: str,
        message: str,
        loc: Location,
        path: SpecPath,
        *,
        hint: str | None = None,
        related: tuple[Related, ...] = (),
    ) -> None:
        self.diags.error(code, message, loc, format_path(path), hint, related)
        if len(self.diags) >= MAX_ERRORS:
            self.stopped = True

    def _limit(self, too_many_nodes: bool, loc: Location, base: SpecPath, length: int) -> None:
        limits = self.limits
        if too_many_nodes:
            message = f"the spec has more than {limits.max_nodes:,} YAML nodes"
            self._report(codes.TOO_MANY_NODES, message, loc, base)
        elif length:
            message = (
                f"value is {length:,} characters long; the limit is {limits.max_scalar_chars:,}"
            )
            self._report(codes.VALUE_TOO_LONG, message, loc, base)
        else:
            message = f"nesting deeper than {limits.max_depth} levels"
            self._report(codes.NESTING_TOO_DEEP, message, loc, base)

    def _odd_node(self, event: Any, loc: Location, path: SpecPath) -> None:
        """Anchors and tags on any node; forbidden characters written as escapes in a scalar."""
        if event.anchor is not None:
            message = "anchors and aliases are not allowed"
            self._report(codes.YAML_ALIAS, message, loc, path, hint=_ALIAS_HINT)
        if event.tag is not None:
            tag = re.sub(r"^tag:yaml\.org,2002:", "!!", event.tag)
            message = f"tags are not allowed (found {_quote(tag)})"
            self._report(codes.YAML_TAG, message, loc, path, hint="remove the tag")
        if type(event) is yaml.ScalarEvent and event.style == '"':
            match = _FORBIDDEN_IN_SCALAR.search(event.value)
            if match is not None:
                char = describe_character(match.group())
                message = f"forbidden character {char} in a quoted string (written as an escape)"
                self._report(codes.FORBIDDEN_CHARACTER, message, loc, path)

    def _out_of_range(self, text: str, loc: Location, path: SpecPath) -> None:
        message = f"number {text} is out of range (too many digits, or too large for a float)"
        self._report(codes.NUMBER_OUT_OF_RANGE, message, loc, path, hint="quote it if it is text")

    def _bad_key(self, base: SpecPath, value: Any, text: str, style: str, loc: Location) -> str:
        """Report a non-string, merge or duplicate key; return a stand-in key for its value."""
        if not isinstance(value, str):
            message = f"keys must be strings; quote it: {_quote(text)}"
            self._report(codes.NON_STRING_KEY, message, loc, base)
            return _BadKey(text)
        path: SpecPath = (*base, value)
        if value == "<<" and not style:
            self._report(
                codes.YAML_ALIAS, "merge keys are not allowed", loc, path, hint=_ALIAS_HINT
            )
        else:
            first = self.keys[path]
            message = f"duplicate key {_quote(value)}; first defined on line {first.line}"
            related = (Related(first, f"{_quote(value)} first defined here"),)
            self._report(codes.DUPLICATE_KEY, message, loc, path, related=related)
        return _BadKey(value)

    def _complex_key(self, base: SpecPath, is_mapping: bool, loc: Location) -> SpecPath:
        kind = "a mapping" if is_mapping else "a sequence"
        self._report(codes.NON_STRING_KEY, f"keys must be strings, not {kind}", loc, base)
        return (*base, _BadKey("<key>"))

    def _libyaml_depth(self, mark: Any, text: str) -> None:
        """Recent libyaml releases have a nesting limit of their own (1,000 flow levels), and the
        scanner reads a deep flow collection ahead of the events, so its error reaches us before
        the event that crosses our much lower limit: it is the same problem, so the same code.

        The text up to that point is parsed again on its own: there libyaml meets the end of the
        input instead of its limit, so the events arrive and the usual check names the exact node
        that crosses our limit (and its path), along with anything else wrong before it (a
        top-level sequence is reported as such and stops there). Failing that, libyaml's
        position is used.
        """
        end = getattr(mark, "index", None)
        if isinstance(end, int) and 0 < end < len(text):
            probe = _Builder(self.name, self.limits, Diagnostics())
            probe.build(text[:end])
            found = [d for d in probe.diags if d.code != codes.YAML_SYNTAX]  # less the cut end
            if found:
                self.diags.extend(found)
                self.stopped = len(self.diags) >= MAX_ERRORS
                return
        message = f"nesting deeper than {self.limits.max_depth} levels"
        self._report(codes.NESTING_TOO_DEEP, message, _clamp(self._at(mark), text), ())

    def _syntax_error(self, exc: yaml.MarkedYAMLError, text: str) -> None:
        """libyaml's own words (problem and context), located at the problem; no traceback.

        libyaml places an error at the end of a file without a final line break on the line
        after the last one; such a location is moved to the end of the last line.
        """
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "invalid YAML"
        if message.startswith(_LIBYAML_DEPTH_PROBLEM):
            self._libyaml_depth(mark, text)
            return
        context, start = exc.context, exc.context_mark
        if context and start is not None and mark is not None and start.line != mark.line:
            message += f" ({context} that starts on line {start.line + 1})"
        elif context:
            message += f" ({context})"
        where = _clamp(self._at(mark), text)
        hint = _TAB_HINT if _is_tab(text, where) else None
        self._report(codes.YAML_SYNTAX, message, where, (), hint=hint)
