"""The one YAML writer (compiler/core/yamltext.py), property-tested against real readers.

Every string and every nested document the writer accepts must read back as exactly itself
under a YAML 1.2 parser (ruamel.yaml, pure Python; the writer's own 1.2 core-schema loader; the
project's spec loader where its character rules allow) and under PyYAML's YAML 1.1 safe loader;
the text is ASCII and never holds a surrogate escape. A plain scalar is therefore one that both
YAML versions read as the same string.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlplane.compiler.core import yamltext
from mlplane.compiler.core.yamltext import Commented, dump, load, scalar
from mlplane.compiler.frontend.loader import load_bytes

ruamel_yaml = pytest.importorskip("ruamel.yaml")
_RUAMEL = ruamel_yaml.YAML(typ="safe", pure=True)  # YAML 1.2 unless a document says otherwise

TRICKY = [
    *("y", "Y", "n", "N", "yes", "Yes", "YES", "yEs", "no", "No", "NO", "on", "On", "ON"),
    *("off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE", "tRUE"),
    *("null", "Null", "NULL", "~", "", " ", "  ", "\t", "nan", ".nan", ".NaN", "inf", ".inf"),
    *("-.inf", "+.INF", "1e3", "1E3", "1.0e+3", "1e-05", "0x1F", "0o17", "0755", "0b101"),
    *("1_000", "1:20", "190:20:30", "1.10", "+1", "-1", ".5", "5.", "0", "-0", "00"),
    *("2030-01-01", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "<<", "="),
    *("5m", "30s", "100ms", "1y", "5M", "-", "--", "---", "...", "- a", "? a", "?", ":", "a:"),
    *("a: b", "a:b", "a #b", "a#b", "#x", "@x", "`x", "%x", "!x", "&x", "*x", "|", "|-", ">"),
    *("> x", "'", '"', "''", "{}", "[]", "{a: 1}", "[1, 2]", ",", "a, b", " a", "a ", "a\t"),
    *("\ta", "\ufeff", "\x85", "\u2028", "\u2029", "\x00", "\x7f", "\x1b[31m", "\r", "\r\n"),
    *("a\nb", "a\n", "\n", "a\n\n", "\na", " a\nb", "a \nb", "a\n b", "a\n\nb", "\U0001f600"),
    *("\U0001f680 deploy", "caf\u00e9", "\\", "\\n", "$x", "$(cmd)", "${{ x }}", "/", "_"),
    *("a" * 1100, "k" * 1001 + ": v", "x" + "\n" * 3 + "y", ".gitlab-ci.yml", ".Inf", ".NAN"),
    *(".infinity", "._", ".$", "./x", ".-x", ".e1", ".E5"),
]
_INDICATORS = " -:#'\"{}[]|>&*!%@`,?\n\t\\=<~.+_/$0123456789eExXoOyYnNtTfFiIaA"

strings = st.one_of(
    st.text(),  # arbitrary Unicode, astral planes included
    st.text(st.characters(codec="ascii"), max_size=20),  # control characters
    st.text(alphabet=_INDICATORS, max_size=12),
    st.from_regex(r"[-+]?[0-9_.]{0,6}(?:[eE:][-+]?[0-9]{0,3})?", fullmatch=True),  # numbers
    st.sampled_from(TRICKY),
    st.builds(
        lambda a, b, c: a + b + c,
        st.sampled_from(["", " ", "\t", "\n"]),
        st.text(),
        st.sampled_from(["", " ", "\n", ":", " #"]),
    ),
)
scalars = st.one_of(
    strings,
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
    max_leaves=25,
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SPEC_BANNED = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufffe\uffff\U000e0000-\U000e007f]"
)


def _readers(text: str) -> dict[str, Any]:
    return {
        "ruamel (YAML 1.2)": _RUAMEL.load(text),
        "yamltext.load (YAML 1.2 core)": load(text),
        "PyYAML SafeLoader (YAML 1.1)": yaml.safe_load(text),
    }


def _assert_reads_back(data: dict[str, Any]) -> str:
    text = dump(data)
    assert text.isascii(), text
    assert not _SURROGATE_ESCAPE.search(text), text
    for reader, value in _readers(text).items():
        assert value == data, f"{reader} read {value!r} from\n{text}"
    return text


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(strings)
@example("\U0001f600")
@example("on")
def test_every_string_reads_back_as_itself(text: str) -> None:
    _assert_reads_back({"value": text, text: "key", "list": [text, {text: [text]}]})
    written = scalar(text)
    if written == text:  # plain: YAML 1.1 and 1.2 agree that it is this string
        assert yaml.safe_load(f"k: {written}") == {"k": text}
        assert load(f"k: {written}") == {"k": text}
        assert _RUAMEL.load(f"- {written}") == [text]
    elif written.startswith("'"):
        assert re.fullmatch(r"'[\x20-\x7e]*'", written)
    elif not written.startswith(("|", "?")):
        assert written.startswith('"') and written.isascii()


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings(text: str) -> None:
    _assert_reads_back({"value": text, text: [text]})


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(st.dictionaries(strings, documents, max_size=5))
def test_nested_data_reads_back_as_itself(data: dict[str, Any]) -> None:
    _assert_reads_back(data)
    assert dump(data, check=True) == dump(data)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(strings, documents, max_size=4))
def test_the_spec_loader_reads_it_back(data: dict[str, Any]) -> None:
    """The project's own YAML 1.2 loader refuses control and bidi characters even escaped and
    numbers beyond its limits, so only data without them is compared."""
    if any(_SPEC_BANNED.search(text) for text in _strings(data)):
        return
    text = dump(data)
    loaded, problems = load_bytes(text.encode(), "out.yaml")
    if problems and all(p.code in {"number-out-of-range"} for p in problems):
        return
    assert not problems, [str(p) for p in problems]
    assert loaded is not None and loaded.data == data


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*node, *(s for value in node.values() for s in _strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_quoting_styles() -> None:
    assert [scalar(t) for t in ("name", "5m", "/path", "$VAR", "a b (c)", "mlplane==0.1.0")] == [
        "name",
        "5m",
        "/path",
        "$VAR",
        "a b (c)",
        "mlplane==0.1.0",
    ]
    assert scalar("it's") == "it's"
    assert [scalar(t) for t in (".gitlab-ci.yml", ".github/x", ".inf", ".NaN", ".5", ".")] == [
        ".gitlab-ci.yml",
        ".github/x",
        "'.inf'",
        "'.NaN'",
        "'.5'",
        "'.'",
    ]
    assert [scalar(t) for t in ("on", "No", "1.10", "1Gi", "", "'x'", "a: b", "x #y")] == [
        "'on'",
        "'No'",
        "'1.10'",
        "'1Gi'",
        "''",
        "'''x'''",
        "'a: b'",
        "'x #y'",
    ]
    assert scalar('caf\u00e9 \U0001f680\t"\\') == '"caf\\xe9 \\U0001f680\\x09\\"\\\\"'
    assert scalar("\u2028") == '"\\u2028"'
    assert [scalar(v) for v in (None, True, False, 7, -3, 0.5, 1e-05, 1e20)] == [
        "null",
        "true",
        "false",
        "7",
        "-3",
        "0.5",
        "1.0e-05",
        "1.0e+20",
    ]


def test_an_emoji_is_written_with_yaml_escapes_even_when_checked() -> None:
    text = dump({"name": "\U0001f680 deploy"}, check=True)
    assert text == 'name: "\\U0001f680 deploy"\n'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "\ud800", object()])
def test_refuses_what_yaml_cannot_hold(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        dump({"k": value})


def test_keys_are_strings() -> None:
    with pytest.raises(TypeError):
        dump({1: "one"})  # type: ignore[dict-item]


def test_literal_blocks_keep_the_final_newline() -> None:
    data = {"keep": "echo one\necho two\n", "strip": "a\n\nb", "seq": ["x\ny\n"]}
    text = dump(data, check=True)
    assert text == (
        "keep: |\n  echo one\n  echo two\nstrip: |-\n  a\n\n  b\nseq:\n  - |\n    x\n    y\n"
    )


@pytest.mark.parametrize(
    "script", ["trailing space \n", "tab\there\n", "x\n\n", " indented\nx", "\nx", "caf\u00e9\n"]
)
def test_blocks_that_cannot_be_exact_are_quoted_or_refused(script: str) -> None:
    text = _assert_reads_back({"run": script})
    assert text.startswith('run: "')
    with pytest.raises(ValueError):
        dump({"run": script}, require_blocks=True)


def test_comments_header_and_alignment() -> None:
    data = {
        "uses": Commented("actions/checkout@" + "a" * 40, "v4.2.2"),
        "permissions": {"contents": Commented("read", "check out the spec")},
        "empty": Commented({}, "nothing"),
        "run": Commented("a\nb\n", "script"),
    }
    text = dump(data, ["header", "second"], check=True)
    assert text.startswith("# header\n# second\nuses: actions/checkout@")
    assert f"uses: actions/checkout@{'a' * 40} # v4.2.2\n" in text
    assert "  contents: read # check out the spec\n" in text
    assert "empty: {} # nothing\nrun: | # script\n  a\n  b\n" in text
    assert load(text) == yamltext.plain_data(data)
    aligned = dump({"a": Commented(1, "x"), "bbb": {"c": Commented("d", "y")}}, align_comments=56)
    assert aligned == "a: 1    # x\nbbb:\n  c: d  # y\n"
    capped = dump({"a" * 80: Commented(1, "x"), "b": Commented(2, "y")}, align_comments=10)
    assert capped.endswith("\nb: 2        # y\n")


@pytest.mark.parametrize("comment", ["a\nb", "", "caf\u00e9", "\x1b[2J"])
def test_comments_are_one_line_of_printable_ascii(comment: str) -> None:
    with pytest.raises(ValueError):
        dump({"k": Commented("v", comment)})
    with pytest.raises(ValueError):
        dump({"k": "v"}, [comment])
    shown = yamltext.comment_text(comment)
    assert re.fullmatch(r"[\x20-\x7e]+", shown), shown
    assert dump({"k": Commented("v", shown)})


def test_comments_go_on_scalars() -> None:
    with pytest.raises(TypeError):
        dump({"k": Commented({"a": 1}, "no")})


def test_the_check_catches_a_writer_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    yamltext._string.cache_clear()
    monkeypatch.setattr(yamltext, "_plain_ok", lambda text: True)
    try:
        with pytest.raises(ValueError, match="does not read back"):
            dump({"k": "yes"}, check=True)
    finally:
        yamltext._string.cache_clear()


def test_the_yaml12_loader_follows_the_core_schema() -> None:
    text = "a: yes\nb: on\nc: 0o17\nd: 0x1F\ne: 1_000\nf: 1:20\ng: 2001-12-14\nh: .inf\ni: ~\nj: True\n"
    assert load(text) == {
        "a": "yes",
        "b": "on",
        "c": 15,
        "d": 31,
        "e": "1_000",
        "f": "1:20",
        "g": "2001-12-14",
        "h": float("inf"),
        "i": None,
        "j": True,
    }
