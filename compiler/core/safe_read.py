"""Reading back the files mlplane wrote earlier, which a repository can plant or replace.

``build/<env>/manifest.json``, ``.mlplane/applied/*.json``, saved plans (``apply --plan``) and
plan cache entries live in a checkout, so a pull request can commit anything in their place: a
symbolic link to ``/dev/zero``, a FIFO that blocks every reader, a gigabyte of ``[``, a JSON
document of the wrong shape. Every such file is read here, under one set of rules:

* the file is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a symbolic link is refused, a FIFO does
  not block the open) and must be a regular file by ``fstat`` of what was opened;
* at most ``max_bytes`` are accepted, checked on the size and again on what is read (at most
  ``max_bytes + 1`` bytes are ever read);
* JSON must be UTF-8, nest at most :data:`MAX_JSON_DEPTH` levels (measured on the bytes before
  parsing, so deep nesting never reaches the recursive parser) and hold no ``NaN``,
  ``Infinity`` or number out of a float's range;
* the parsed value is checked against a typed shape (:func:`validated`, a strict pydantic
  ``TypeAdapter``) before any field is used, so ``[]``, ``null``, a string or a wrong type is
  refused with the field's path, never met later as a ``KeyError``.

Every refusal is a :class:`ReadBackError` naming the file (escaped: a file name is text from
the repository too); a missing file is ``FileNotFoundError``, which callers treat as "none".
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from itertools import accumulate
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from mlplane.compiler.core import codes  # noqa: F401  (first: CORE_CODES leaves out the code below)
from mlplane.compiler.core.diagnostics import register_code

READ_BACK_INVALID = register_code(
    "read-back-invalid",
    "a file mlplane wrote and reads back (build/<env>/manifest.json, a saved plan) is a link or "
    "special file, too large, nested too deep or malformed (compiler/core/safe_read.py)",
)
"""Not a problem of a spec (``docs/diagnostics.md`` does not list it): ``build`` and ``plan``
report a :class:`ReadBackError` with it."""

MAX_JSON_DEPTH = 128
"""Nesting levels (objects and arrays) a read-back JSON document may have. Graphs nest about 15
deep (a spec at most 64, plus the record around it); Python's parser recurses per level."""

T = TypeVar("T")

_STRING = re.compile(rb'"[^"]*"')
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))


class ReadBackError(Exception):
    """A file mlplane reads back cannot be used; the message names the file and says why."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def shown(path: Path | str) -> str:
    """``path`` as messages show it: relative to the working directory when below it (never
    resolving the file itself, which may be a link), with unprintable characters escaped."""
    text = os.fspath(path)
    try:
        relative = os.path.relpath(text)
        if not relative.startswith(".."):
            text = relative
    except ValueError:
        pass
    return printable(text)


def printable(text: str) -> str:
    """``text`` with every unprintable character (controls, format and bidi characters, line
    separators, lone surrogates from undecodable file names) shown as ``\\u{XXXX}``."""
    return "".join(c if c.isprintable() else f"\\u{{{ord(c):04X}}}" for c in text)


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``max_bytes``.

    Raises ``FileNotFoundError`` when there is no such file and :class:`ReadBackError` when it
    is a symbolic link, a FIFO, a device or a directory, too large, or cannot be read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ReadBackError(shown(path), "is a symbolic link; it is not followed") from None
        raise ReadBackError(shown(path), f"cannot be read ({error.strerror})") from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise ReadBackError(shown(path), "is not a regular file")
        if info.st_size > max_bytes:
            raise ReadBackError(shown(path), f"is larger than {_size(max_bytes)}")
        os.set_blocking(handle, True)
        chunks = _chunks(handle, info.st_size, max_bytes)
    except OSError as error:
        raise ReadBackError(shown(path), f"cannot be read ({error.strerror})") from None
    finally:
        os.close(handle)
    if sum(len(chunk) for chunk in chunks) > max_bytes:
        raise ReadBackError(shown(path), f"is larger than {_size(max_bytes)}")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _chunks(handle: int, size: int, max_bytes: int) -> list[bytes]:
    """What ``handle`` holds up to its end or ``max_bytes + 1`` bytes, whichever comes first.

    The first read asks for the file's whole size and one byte more (a file that did not grow
    since ``fstat`` is one read and one buffer, no join); a file that grew, or whose size says
    nothing (``/proc``), is read on in 1 MiB chunks. No read asks for more than is still
    allowed, so at most ``max_bytes + 1`` bytes are ever read or allocated.
    """
    chunks: list[bytes] = []
    total, wanted = 0, max(size + 1, 1 << 20)
    while total <= max_bytes:
        chunk = os.read(handle, min(max_bytes + 1 - total, wanted))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        wanted = 1 << 20
    return chunks


def read_json(path: Path, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in ``path`` (read by :func:`read_regular`, parsed by :func:`parse_json`)."""
    return parse_json(read_regular(path, max_bytes), shown(path), max_depth)


def parse_json(data: bytes, name: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``data`` parsed as JSON; :class:`ReadBackError` (naming ``name``) when it is not UTF-8,
    nests deeper than ``max_depth``, holds ``NaN``/``Infinity`` or is not JSON."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ReadBackError(name, f"is not UTF-8 (byte {error.start})") from None
    depth = json_depth(data)
    if depth > max_depth:
        raise ReadBackError(name, f"nests {depth} levels deep; the limit is {max_depth}")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as error:
        raise ReadBackError(name, f"is not valid JSON ({_first_line(error)})") from None


def json_depth(data: bytes) -> int:
    """The deepest nesting of objects and arrays in the JSON text ``data``, strings skipped.

    Linear, and in C but for one regular expression over what little is left: escaped
    backslashes and quotes are dropped, then every byte but quotes and brackets; adjacent
    quotes go too (an empty string, or two strings with no bracket between them merged into
    one, which changes no count); what is left between quote pairs are brackets inside
    strings, removed by the expression. The running depth is summed over the rest
    (``[``/``{`` +1, ``]``/``}`` -1). For malformed JSON the count up to the first error is the
    parser's, so the parser never nests deeper than this before it fails.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = data.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:  # an unpaired quote is left in malformed JSON: counted as nothing
        structure = _STRING.sub(b"", structure).translate(None, b'"')
    steps = memoryview(structure.translate(_OPEN_CLOSE)).cast("b")
    return max(accumulate(steps, initial=0))


def validated(value: Any, shape: TypeAdapter[T], name: str, what: str) -> T:
    """``value`` checked against ``shape`` in strict mode (no conversions: ``"1"`` is not an
    int, ``1`` not a bool); :class:`ReadBackError` naming ``name``, saying it is not ``what``
    and pointing at the first wrong field. Keys the shape does not name are ignored."""
    try:
        return shape.validate_python(value, strict=True)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        message = first["msg"].split(" or instance of ")[0]  # the shape's class is no news
        raise ReadBackError(name, f"is not {what}: {printable(where)}: {message}") from None


def _no_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]} is out of range")
    return number


def _first_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return printable(text[:200])


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes"
