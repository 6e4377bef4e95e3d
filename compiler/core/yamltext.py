"""The one YAML writer of every file mlplane writes: Kubernetes manifests, Prometheus rules and
their tests, Alertmanager, the Pulumi project, CI workflows and ``mlplane explain``.

YAML is built as data and dumped once (``docs/architecture.md``, *Adding an emitter*): callers
build dicts and lists in a meaningful insertion order, and :func:`dump` writes them in block
style, ASCII only, deterministically. Why not ``yaml.dump``: PyYAML's pure-Python serializer is
slow (``benchmarks/README.md``), cannot write comments, and its quoting follows YAML 1.1 alone.

**One quoting rule.** A string is written

* plain only when YAML 1.1 readers (PyYAML, GitLab's Ruby parser, Go's yaml.v2) and YAML 1.2
  readers (GitHub, zizmor, check-jsonschema, Kubernetes) all read it back as this very string:
  printable ASCII starting with a letter, ``_``, ``/``, ``$``, or a ``.`` before a letter, ``/`` or
  ``$`` (none of them starts a number, a date or a YAML indicator: ``.gitlab-ci.yml``), with no
  ``": "``, ``" #"``, trailing ``:`` or surrounding blanks, and not a word that YAML 1.1 reads as
  a boolean, null or special float (``on``, ``no``, ``null``, ``.inf``, ..., compared
  case-insensitively); or a duration (``5m``, ``30s``), which no reader takes for a
  number. Text starting with a digit is quoted even when it is a string everywhere
  (``'4.2.0'``, ``'1Gi'``): readers disagree on numbers, dates and sexagesimals;
* otherwise single-quoted when it is printable ASCII (``'on'``, ``'0+100x360'``);
* otherwise double-quoted with YAML's own escapes: ``\\"``, ``\\\\``, ``\\xNN`` below U+0100,
  ``\\uNNNN`` in the Basic Multilingual Plane, ``\\UNNNNNNNN`` above it. Never ``json.dumps``'
  surrogate pairs (``\\ud83d\\ude00``), which YAML does not decode;
* multi-line text becomes a literal block when it can be one exactly: printable ASCII lines
  without trailing blanks, a first line neither empty nor indented, at most one final newline
  (``|`` keeps it, ``|-`` has none). Otherwise it is double-quoted, or, with
  ``require_blocks=True`` (CI scripts), refused.

**Comments.** :class:`Commented` wraps a scalar (or an empty ``{}``/``[]``) that gets a trailing
``# comment`` on its line (``uses: owner/repo@<sha> # v4.2.2``); ``header`` lines go on top.
Comments are one line of printable ASCII, enforced; :func:`comment_text` makes any text one.

**Round trip.** With ``check=True`` the text is parsed back with a YAML 1.2 core-schema loader
(:func:`load`) and with PyYAML's YAML 1.1 safe loader and compared with the data: the writer
cannot silently write something else than it was given. CI files (small) always check; large
outputs rely on the property tests (``tests/test_yamltext.py``).

**Written once, placed twice.** :func:`rendered` writes a mapping once for both key orders (as
given and sorted) and :class:`Rendered` places that text wherever it stands, re-indented: the
bytes are those of the mapping itself (the text of a mapping at any depth is its text at the top
with every non-empty line indented). ``mlplane build`` writes each SLA's rule group once for
``monitoring/rules.yaml`` (keys as built) and the PrometheusRule objects of the manifests (keys
sorted).

Mapping keys are strings. Floats are finite and keep a ``.`` in the mantissa (``1.0e-05``), which
YAML 1.1 requires. A key whose text exceeds YAML's 1024-character limit for implicit keys is
written as an explicit ``? key`` entry.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    "Commented",
    "Rendered",
    "comment_text",
    "comments",
    "dump",
    "load",
    "plain_data",
    "rendered",
    "scalar",
]

INDENT = "  "
_PLAIN = re.compile(r"(?:[A-Za-z_/$]|\.[A-Za-z/$])[\x20-\x7e]*")
_DURATION = re.compile(r"[0-9]+(?:ms|[smhdwy])")
_YAML11_WORDS = frozenset(
    ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", ".inf", ".nan"]
)  # case-insensitive matches of these resolve to booleans, null or floats in some reader
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_COMMENT = re.compile(r"[\x20-\x7e]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_IMPLICIT_KEY = 1000  # YAML allows 1024 characters before the ':' of an implicit key
_MARK = "\x00"  # separates a line from its comment until the comments are placed


@dataclass(frozen=True, slots=True)
class Commented:
    """A scalar (or an empty mapping or sequence) written with a trailing ``# comment``."""

    value: Any
    comment: str


@dataclass(frozen=True, slots=True, eq=False)
class Rendered:
    """A mapping with its text (:func:`rendered`): written as that text, re-indented, wherever
    it stands as a mapping's value or a sequence's item."""

    value: Mapping[str, Any]
    as_given: str
    """The lines :func:`dump` writes for ``value`` at the top, keys as given, without the
    final line break."""
    sorted_keys: str
    """The same with every mapping's keys sorted (``dump(..., sort_keys=True)``)."""

    def text(self, sort_keys: bool) -> str:
        return self.sorted_keys if sort_keys else self.as_given


class Later(Mapping[str, Any]):
    """A mapping that is not empty, made by ``make`` when first read: the value of a text
    :func:`given` for one key order, which a writer keeping that order never reads (it asks
    only whether the value is empty: never)."""

    __slots__ = ("_made", "_make")

    def __init__(self, make: Callable[[], Mapping[str, Any]]) -> None:
        self._make = make
        self._made: Mapping[str, Any] | None = None

    def _value(self) -> Mapping[str, Any]:
        if self._made is None:
            made = self._make()
            if not made:
                raise ValueError("a Later mapping was made empty")
            self._made = made
        return self._made

    def __bool__(self) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())


def given(value: Mapping[str, Any], as_given: str) -> Rendered:
    """``value`` with ``as_given`` (what :func:`given_text` gave for an equal value): written as
    that text where keys keep their order; a writer that sorts keys writes ``value`` itself."""
    return Rendered(value, as_given, "")


def given_text(value: Mapping[str, Any]) -> str:
    """The lines :func:`dump` writes for ``value`` at the top, keys as given, without the final
    line break (:attr:`Rendered.as_given`, for one key order only)."""
    return dump(value)[:-1]


# --- scalars -----------------------------------------------------------------------------------


def scalar(value: object) -> str:
    """One scalar as YAML text on one line (multi-line strings double-quoted)."""
    if type(value) is str:
        return _string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(str.__str__(value))
    raise TypeError(f"cannot write {type(value).__name__} as a YAML scalar")


def _float(value: float) -> str:
    """A finite float every YAML reader takes for one: YAML 1.1 (PyYAML) needs a '.' in the
    mantissa, so ``1e-05`` is written ``1.0e-05``."""
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} as YAML data")
    text = float.__repr__(value)
    return text.replace("e", ".0e") if "." not in text and "e" in text else text


@functools.lru_cache(maxsize=8192)
def _string(text: str) -> str:
    """Cached: keys and label values repeat thousands of times in a large output."""
    if _plain_ok(text):
        return text
    if _PRINTABLE.fullmatch(text):
        return "'" + text.replace("'", "''") + "'"
    if _SURROGATE.search(text):
        raise ValueError(f"cannot write a lone surrogate as YAML text: {text!r}")
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
        and text[-1] != " "
        and ": " not in text
        and " #" not in text
        and text[-1] != ":"
        and text.lower() not in _YAML11_WORDS
    )


@functools.lru_cache(maxsize=8192)
def _key(key: str) -> str:
    """``key:`` (or ``? key`` then ``:`` when the key is too long to be implicit)."""
    if type(key) is not str:
        if not isinstance(key, str):
            raise TypeError(f"mapping keys must be strings, got {key!r}")
        key = str.__str__(key)
    text = _string(key)
    return text + ":" if len(text) <= _MAX_IMPLICIT_KEY else "? " + text


def comment_text(text: str) -> str:
    """``text`` as one line of printable ASCII for a comment: a control or non-ASCII character
    is written as its YAML escape (``\\x0a``, ``\\u00e9``, ``\\U0001f680``); empty text is ``-``."""
    if _COMMENT.fullmatch(text):
        return text
    return "".join(c if " " <= c <= "~" else _escape(c) for c in text) or "-"


def _comment(text: str) -> str:
    if type(text) is not str or not _COMMENT.fullmatch(text):
        raise ValueError(f"a YAML comment must be one line of printable ASCII: {text!r}")
    return text


def comments(lines: Iterable[str]) -> str:
    """``# line`` for each line (each checked to be one line of printable ASCII)."""
    return "".join(f"# {_comment(line)}\n" for line in lines)


# --- blocks ------------------------------------------------------------------------------------


def _block(text: str, strict: bool) -> tuple[str, list[str]] | None:
    """``(indicator, lines)`` of ``text`` as a literal block, or None when it cannot be one
    exactly (``strict``: raise instead)."""
    body = text[:-1] if text[-1] == "\n" else text
    lines = body.split("\n")
    first = lines[0]
    if (
        first
        and first[0] != " "
        and lines[-1]
        and all(_PRINTABLE.fullmatch(x) and x[-1:] != " " for x in lines)
    ):
        return ("|" if body is not text else "|-"), lines
    if strict:
        raise ValueError(
            "a literal block needs printable ASCII lines without trailing blanks, a first line "
            f"neither empty nor indented and at most one final newline: {text!r}"
        )
    return None


# --- the tree ----------------------------------------------------------------------------------


class _Writer:
    __slots__ = ("commented", "sort_keys", "strict")

    def __init__(self, strict: bool, sort_keys: bool = False) -> None:
        self.strict = strict
        self.sort_keys = sort_keys
        self.commented = False

    def value(self, prefix: str, value: Any, depth: int, out: list[str]) -> None:
        """``value`` after ``prefix`` (``key:`` or ``-``) at ``depth``, appended to ``out`` as
        lines: one shared list, so nesting costs no copying of the lines below it. The common
        types are tested by identity first; the rest takes :meth:`other`."""
        kind = type(value)
        if kind is str:
            if "\n" in value:
                block = _block(value, self.strict)
                if block is not None:
                    pad = INDENT * depth
                    out.append(f"{prefix} {block[0]}")
                    out.extend(f"{pad}{line}" if line else "" for line in block[1])
                    return
            out.append(prefix + " " + _string(value))
        elif kind is dict:
            if value:
                out.append(prefix)
                self.mapping(value, depth, out)
            else:
                out.append(prefix + " {}")
        elif kind is list:
            if value:
                out.append(prefix)
                self.sequence(value, depth, out)
            else:
                out.append(prefix + " []")
        elif kind is int or kind is bool or kind is float or value is None:
            out.append(prefix + " " + scalar(value))
        else:
            self.other(prefix, value, depth, out)

    def rendered(self, prefix: str, value: Rendered, depth: int, out: list[str]) -> None:
        if self.strict or not value.value or not value.text(self.sort_keys):
            # the text was written without require_blocks, or not for this key order (given)
            self.value(prefix, value.value, depth, out)
        else:
            pad = INDENT * depth
            out.append(prefix)
            out.append(pad + _indent(value.text(self.sort_keys), pad))

    def other(self, prefix: str, value: Any, depth: int, out: list[str]) -> None:
        if type(value) is Rendered:
            self.rendered(prefix, value, depth, out)
        elif isinstance(value, Mapping):
            self.value(prefix, dict(value), depth, out)
        elif isinstance(value, list | tuple):
            self.value(prefix, list(value), depth, out)
        elif isinstance(value, str):
            self.value(prefix, str.__str__(value), depth, out)
        elif isinstance(value, Commented):
            self.commented = True
            inner = value.value
            block = None
            if isinstance(inner, str) and "\n" in inner:
                block = _block(str.__str__(inner), self.strict)
            if block is not None:
                pad = INDENT * depth
                out.append(f"{prefix} {block[0]}{_MARK}{_comment(value.comment)}")
                out.extend(f"{pad}{line}" if line else "" for line in block[1])
                return
            if isinstance(inner, Mapping | list | tuple):
                if inner:
                    raise TypeError("a comment goes on a scalar or an empty mapping or sequence")
                text = "{}" if isinstance(inner, Mapping) else "[]"
            else:
                text = scalar(inner)
            out.append(f"{prefix} {text}{_MARK}{_comment(value.comment)}")
        else:
            out.append(prefix + " " + scalar(value))

    def mapping(self, data: Mapping[str, Any], depth: int, out: list[str]) -> None:
        pad = INDENT * depth
        for key in sorted(data) if self.sort_keys else data:
            value = data[key]
            text = _key(key)
            if text[0] == "?":  # an explicit key: '? key', then ': value' below it
                out.append(pad + text)
                self.value(pad + ":", value, depth + 1, out)
            elif type(value) is str and "\n" not in value:  # most values: no call of value()
                out.append(pad + text + " " + _string(value))
            elif type(value) is int:
                out.append(pad + text + " " + int.__repr__(value))
            else:
                self.value(pad + text, value, depth + 1, out)

    def sequence(self, items: Sequence[Any], depth: int, out: list[str]) -> None:
        pad = INDENT * depth
        for item in items:
            if type(item) is Rendered:
                given = item.text(self.sort_keys)  # empty: not written for this key order
                if given and item.value and not self.strict:
                    out.append(f"{pad}- {_indent(given, INDENT * (depth + 1))}")
                    continue
                item = item.value  # noqa: PLW2901 - written as the mapping it stands for
            if item and (type(item) is dict or isinstance(item, Mapping)):
                first = len(out)
                self.mapping(item, depth + 1, out)
                out[first] = f"{pad}- {out[first].lstrip()}"
            else:
                self.value(f"{pad}-", item, depth + 1, out)


def dump(
    data: Mapping[str, Any],
    header: Sequence[str] = (),
    *,
    check: bool = False,
    require_blocks: bool = False,
    align_comments: int | None = None,
    sort_keys: bool = False,
) -> str:
    """``data`` (a mapping) as block-style YAML, insertion order kept (``sort_keys``: every
    mapping's keys sorted, which must then all be strings), ASCII only.

    ``header``: ``# line`` comments on top. ``check``: parse the text back (YAML 1.2 and 1.1)
    and raise ``ValueError`` unless both give ``data``. ``require_blocks``: every multi-line
    string must be a literal block (a script that cannot be one is refused, not quoted).
    ``align_comments``: start trailing comments in one column, at most this far right, after
    two spaces (``mlplane explain``); by default a comment follows its value after one space.
    """
    writer = _Writer(require_blocks, sort_keys)
    out = [f"# {_comment(line)}" for line in header]
    writer.mapping(data, 0, out)
    if not data:
        out.append("{}")
    if writer.commented:
        _place_comments(out, align_comments)
    text = "\n".join(out) + "\n"
    if check:
        expected = plain_data(data)
        if load(text) != expected or yaml.load(text, Loader=_Yaml11Loader) != expected:  # noqa: S506
            raise ValueError("the written YAML does not read back as the data it was built from")
    return text


def _indent(text: str, pad: str) -> str:
    """``text`` with ``pad`` before every line but the first, empty lines kept empty (as the
    writer writes the blank lines of a literal block)."""
    if not pad:
        return text
    if "\n\n" not in text and text[-1:] != "\n":
        return text.replace("\n", "\n" + pad)
    first, *rest = text.split("\n")
    return first + "".join("\n" + pad + line if line else "\n" for line in rest)


def rendered(value: Mapping[str, Any]) -> Rendered:
    """``value`` (a mapping with string keys, no :class:`Commented` inside) written once for
    both key orders; the nested mappings' texts are shared between the two where their keys
    are in sorted order already, and equal flat mappings inside (the labels of an SLA's rules)
    are written once."""
    data = dict(value)
    as_given, sorted_keys = _texts(data, {})
    return Rendered(data, as_given, sorted_keys)


_Texts = tuple[str, str]
"""The lines of a mapping or an entry at the top, keys as given and sorted (the same string
object when the two are the same)."""


def _texts(data: dict[str, Any], seen: dict[tuple[Any, ...], _Texts]) -> _Texts:
    """The lines of a non-empty mapping; ``seen``: the entries already written, by content."""
    given: list[str] = []
    ordered: list[str] = []
    same = True
    for key, value in data.items():
        text = _key(key)
        if type(value) is str and "\n" not in value and text[0] != "?":
            line = text + " " + _string(value)
            given.append(line)
            ordered.append(line)
        else:
            entry = _entry(key, text, value, seen)
            given.append(entry[0])
            ordered.append(entry[1])
            same = same and entry[0] is entry[1]
    as_given = "\n".join(given)
    keys = list(data)
    if keys == sorted(keys):
        return as_given, (as_given if same else "\n".join(ordered))
    return as_given, "\n".join([line for _, line in sorted(zip(keys, ordered, strict=True))])


def _entry(key: str, text: str, value: Any, seen: dict[tuple[Any, ...], _Texts]) -> _Texts:
    """The lines of one ``key: value`` entry (``text``: the key as written)."""
    kind = type(value)
    if text[0] != "?":
        if kind is int:
            line = text + " " + int.__repr__(value)
            return line, line
        if kind is dict and value:
            flat = all(type(item) is str for item in value.values())
            memo = (key, *value.items()) if flat else ()
            found = seen.get(memo) if flat else None
            if found is None:
                found = _nested(text, _texts(value, seen))
                if memo:
                    seen[memo] = found
            return found
        if kind is list and value and all(type(item) is dict and item for item in value):
            items = [_texts(item, seen) for item in value]
            block = _items(text, [given for given, _ in items])
            if all(given is ordered for given, ordered in items):
                return block, block
            return block, _items(text, [ordered for _, ordered in items])
    given = _written(key, value, False)
    if kind in _UNORDERED or not isinstance(value, Mapping | list | tuple | Commented | Rendered):
        return given, given  # no mapping inside: one text for both orders
    return given, _written(key, value, True)


def _items(text: str, items: list[str]) -> str:
    """``key:`` followed by a sequence of mappings' lines: the items are indented together,
    joined by a character the writer never writes (it escapes every control character)."""
    return (
        text
        + "\n"
        + INDENT
        + "- "
        + _indent("\x00".join(items), INDENT * 2).replace("\x00", "\n" + INDENT + "- ")
    )


def _nested(text: str, texts: _Texts) -> _Texts:
    """``key:`` followed by a nested mapping's lines."""
    head = text + "\n" + INDENT
    given = head + _indent(texts[0], INDENT)
    return given, (given if texts[1] is texts[0] else head + _indent(texts[1], INDENT))


_UNORDERED = frozenset({str, int, float, bool, type(None)})


def _written(key: str, value: Any, sort_keys: bool) -> str:
    writer = _Writer(False, sort_keys)
    out: list[str] = []
    writer.mapping({key: value}, 0, out)
    if writer.commented:
        raise TypeError("a rendered mapping holds no comments")
    return "\n".join(out)


def _place_comments(out: list[str], align: int | None) -> None:
    marked = [i for i, line in enumerate(out) if _MARK in line]
    if align is None:
        for i in marked:
            out[i] = out[i].replace(_MARK, " # ", 1)
        return
    width = min(max(out[i].index(_MARK) for i in marked), align)
    for i in marked:
        code, comment = out[i].split(_MARK, 1)
        out[i] = f"{code.ljust(width)}  # {comment}"


def plain_data(node: Any) -> Any:
    """``node`` with every :class:`Commented` replaced by its value and tuples by lists (what a
    reader of the written text sees)."""
    if isinstance(node, Commented | Rendered):
        return plain_data(node.value)
    if isinstance(node, Mapping):
        return {key: plain_data(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [plain_data(item) for item in node]
    return node


# --- reading back ------------------------------------------------------------------------------

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Yaml11Loader(_Base):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader (YAML 1.1), with libyaml's parser when it is available."""


class _Yaml12Loader(_Base):  # type: ignore[valid-type,misc]
    """A YAML 1.2 core-schema loader: booleans are only true/false, null is ``null``/``~``/
    empty, integers are decimal, ``0o`` octal or ``0x`` hex, no dates, no merge keys, no
    sexagesimals (so ``on:`` is a string key, as GitHub reads it)."""


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _Yaml12Loader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first)
    )


def _int12(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text[:2] in ("0o", "0x"):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text)


def _float12(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node)).lower()  # type: ignore[arg-type]
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


def _bool12(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"  # type: ignore[arg-type]


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int12)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _float12)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _bool12)


def load(text: str) -> Any:
    """Parse YAML the way YAML 1.2 readers do (GitHub, check-jsonschema, Kubernetes)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
