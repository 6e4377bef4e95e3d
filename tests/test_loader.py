"""The safe loader: every rule of docs/architecture.md (Decisions) and docs/quality.md rows 1-12 and 30, located."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core.diagnostics import Diagnostic, Location
from mlplane.compiler.core.source import Limits, LoadedFile
from mlplane.compiler.frontend import loader
from mlplane.compiler.frontend.loader import MAX_ERRORS, describe_character, load_bytes, load_path
from tests.hypothesis_profiles import examples

NAME = "specs/mlplane.yaml"


def load(source: str | bytes, limits: Limits | None = None) -> LoadedFile:
    data = source.encode("utf-8") if isinstance(source, str) else source
    loaded, diagnostics = load_bytes(data, NAME, limits or Limits())
    assert diagnostics == [], [d.one_line() for d in diagnostics]
    assert loaded is not None
    return loaded


def problems(source: str | bytes, limits: Limits | None = None) -> list[Diagnostic]:
    data = source.encode("utf-8") if isinstance(source, str) else source
    loaded, diagnostics = load_bytes(data, NAME, limits or Limits())
    assert loaded is None
    assert diagnostics
    return diagnostics


def where(diagnostics: list[Diagnostic]) -> list[tuple[str, int, int]]:
    """Code, line and column of each diagnostic, the triple every rule test asserts."""
    located = []
    for diagnostic in diagnostics:
        assert diagnostic.location is not None and diagnostic.location.file == NAME
        located.append((diagnostic.code, diagnostic.location.line, diagnostic.location.column))
    return located


def only(source: str | bytes, limits: Limits | None = None) -> Diagnostic:
    found = problems(source, limits)
    assert len(found) == 1, [d.one_line() for d in found]
    return found[0]


# --- 1. size ----------------------------------------------------------------------------------


def test_oversized_bytes_are_rejected_before_decoding_with_the_limit_named() -> None:
    data = b"\xff" * int(5.2 * 1024 * 1024)  # not UTF-8 either: size must be checked first
    diagnostic = only(data)
    assert where([diagnostic]) == [("file-too-large", 1, 1)]
    assert diagnostic.message == "spec file is 5.2 MiB; the limit is 4 MiB"


def test_a_file_just_over_the_limit_names_exact_byte_counts() -> None:
    diagnostic = only(b"a" * (4 * 1024 * 1024 + 1))
    assert (
        diagnostic.message == "spec file is 4,194,305 bytes; the limit is 4,194,304 bytes (4 MiB)"
    )


def test_load_path_checks_the_size_before_opening(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" * 100)

    def refuse(*args: object) -> int:
        raise AssertionError("the file was opened although stat shows it is too large")

    monkeypatch.setattr(os, "open", refuse)
    loaded, diagnostics = load_path(path, "big.yaml", Limits(max_file_bytes=100))
    assert loaded is None
    assert [(d.code, d.message) for d in diagnostics] == [
        ("file-too-large", "spec file is 500 bytes; the limit is 100 bytes")
    ]


def test_load_path_reads_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "mlplane.yaml"
    path.write_bytes(b"a: 1\n")
    loaded, diagnostics = load_path(path, "mlplane.yaml")
    assert diagnostics == [] and loaded is not None
    assert loaded.data == {"a": 1} and loaded.name == "mlplane.yaml"


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo"])
def test_load_path_reports_unreadable_files_without_raising(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "spec.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this platform")
        os.mkfifo(path)  # opening it for reading would block without O_NONBLOCK
    loaded, diagnostics = load_path(path, "spec.yaml")
    assert loaded is None
    assert [(d.code, d.location) for d in diagnostics] == [
        ("io-error", Location("spec.yaml", 1, 1))
    ]
    message = diagnostics[0].message
    assert message.startswith("cannot read the spec file: ")
    assert str(tmp_path) not in message and "Traceback" not in message
    if kind == "missing":
        assert message.endswith("No such file or directory")


# --- 2. UTF-8 and the BOM ---------------------------------------------------------------------


def test_latin1_gives_the_byte_offset_and_its_line_and_column() -> None:
    diagnostic = only("name: demo\nowner: caf\xe9\n".encode("latin-1"))
    assert where([diagnostic]) == [("not-utf8", 2, 11)]
    assert diagnostic.message.startswith("not valid UTF-8 at byte 21")


def test_utf16_is_not_utf8() -> None:
    assert where([only("a: 1\n".encode("utf-16"))]) == [("not-utf8", 1, 1)]


def test_a_bom_is_allowed_and_columns_do_not_count_it() -> None:
    loaded = load(b"\xef\xbb\xbfname: demo\n")
    assert loaded.data == {"name": "demo"}
    assert loaded.keys[("name",)] == Location(NAME, 1, 1)
    assert loaded.values[("name",)] == Location(NAME, 1, 7)
    assert not loaded.text.startswith("\ufeff")


def test_invalid_utf8_after_a_bom_counts_the_bom_in_bytes_not_columns() -> None:
    diagnostic = only(b"\xef\xbb\xbfab: \xff\n")
    assert where([diagnostic]) == [("not-utf8", 1, 5)]
    assert diagnostic.message.startswith("not valid UTF-8 at byte 7")


# --- 3. forbidden characters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\x00", "U+0000 NULL"),
        ("\x1b", "U+001B ESCAPE"),
        ("\x7f", "U+007F DELETE"),
        ("\x85", "U+0085 NEXT LINE"),
        ("\x9b", "U+009B CONTROL CHARACTER"),
        ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("\u2066", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("\u061c", "U+061C ARABIC LETTER MARK"),
        ("\u200f", "U+200F RIGHT-TO-LEFT MARK"),
        ("\u200b", "U+200B ZERO WIDTH SPACE"),
        ("\u200d", "U+200D ZERO WIDTH JOINER"),
        ("\u2060", "U+2060 WORD JOINER"),
        ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("\u00ad", "U+00AD SOFT HYPHEN"),
        ("\u2028", "U+2028 LINE SEPARATOR"),
        ("\U000e0041", "U+E0041 TAG LATIN CAPITAL LETTER A"),
    ],
)
def test_forbidden_characters_are_located_and_named(char: str, name: str) -> None:
    diagnostic = only(f"a: 1\nbb: x{char}y\n")
    assert where([diagnostic]) == [("forbidden-character", 2, 6)]
    assert diagnostic.message == f"forbidden character {name}"


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("a: 1  # x\u202ey\n", 1, 10),
        ("a: 'x\u202ey'\n", 1, 6),
        ('a: "x\u202ey"\n', 1, 6),
        ("a: |\n  x\u202ey\n", 2, 4),
        ("# \u2066\na: 1\n", 1, 3),
    ],
    ids=["comment", "single-quoted", "double-quoted", "block", "comment-line"],
)
def test_forbidden_characters_are_found_in_comments_and_free_text(
    source: str, line: int, column: int
) -> None:
    assert where([only(source)]) == [("forbidden-character", line, column)]


def test_every_forbidden_character_is_reported_up_to_the_cap() -> None:
    assert where(problems("a: \x00\nb: \x1b\u202e\n")) == [
        ("forbidden-character", 1, 4),
        ("forbidden-character", 2, 4),
        ("forbidden-character", 2, 5),
    ]
    assert len(problems("a: '" + "\x00" * 100_000 + "'\n")) == MAX_ERRORS


def test_a_lone_cr_is_rejected_but_crlf_is_fine() -> None:
    diagnostic = only("a: 1\r\nb: 2\rc: 3\r\n")
    assert where([diagnostic]) == [("forbidden-character", 2, 5)]
    assert "U+000D CARRIAGE RETURN" in diagnostic.message and "lone" in diagnostic.message


def test_crlf_files_give_correct_lines_and_columns() -> None:
    loaded = load("a: 1\r\nmodels:\r\n  scorer:\r\n    image: x\r\n")
    assert loaded.data == {"a": 1, "models": {"scorer": {"image": "x"}}}
    assert loaded.keys[("models", "scorer", "image")] == Location(NAME, 4, 5)
    assert loaded.values[("models", "scorer", "image")] == Location(NAME, 4, 12)
    assert where(problems("a: 1\r\nb: 2\r\nb: 3\r\n")) == [("duplicate-key", 3, 1)]


@pytest.mark.parametrize(
    ("escape", "name"),
    [
        (r"\x1b", "U+001B ESCAPE"),
        (r"\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        (r"\r", "U+000D CARRIAGE RETURN"),
        (r"\0", "U+0000 NULL"),
        (r"\N", "U+0085 NEXT LINE"),
        (r"\L", "U+2028 LINE SEPARATOR"),
        (r"\U000E0041", "U+E0041 TAG LATIN CAPITAL LETTER A"),
    ],
)
def test_forbidden_characters_written_as_escapes_are_located_at_the_scalar(
    escape: str, name: str
) -> None:
    diagnostic = only(f'a: 1\nb:  "ok {escape} no"\n')
    assert where([diagnostic]) == [("forbidden-character", 2, 5)]
    assert name in diagnostic.message and diagnostic.path == "b"


def test_escapes_in_keys_are_checked_and_lf_and_tab_escapes_are_allowed() -> None:
    assert where([only('"a\\u200bb": 1\n')]) == [("forbidden-character", 1, 1)]
    assert load('a: "x\\ny\\tz"\n').data == {"a": "x\ny\tz"}


def test_describe_character_falls_back_for_unnamed_code_points() -> None:
    assert describe_character("\x01") == "U+0001 CONTROL CHARACTER"
    assert describe_character("\U000e0080") == "U+E0080 UNNAMED CHARACTER"


# --- 4. parsing, limits -----------------------------------------------------------------------


def test_syntax_errors_are_located_at_the_problem_without_a_traceback() -> None:
    diagnostic = only("a: 1\nb: [1, 2\nc: 3\n")
    assert diagnostic.code == "yaml-syntax"
    assert diagnostic.location is not None and diagnostic.location.line == 3
    assert "while parsing a flow sequence" in diagnostic.message
    assert "Traceback" not in diagnostic.message and "<unicode string>" not in diagnostic.message
    assert where([only("a: b: c\n")]) == [("yaml-syntax", 1, 5)]


def test_thirty_thousand_brackets_are_too_deep_not_a_crash() -> None:
    diagnostic = only("a: " + "[" * 30_000)
    assert where([diagnostic]) == [("nesting-too-deep", 1, 67)]
    assert diagnostic.message == "nesting deeper than 64 levels"


def test_problems_before_a_collection_too_deep_for_libyaml_are_reported_once() -> None:
    """libyaml gives up on 1,000 flow levels before its events reach the loader's own check:
    the loader still names the node that crosses its limit, and what came before, once each."""
    found = problems("a: 1\na: 2\nb: " + "[" * 5_000 + "\n")
    assert where(found) == [("duplicate-key", 2, 1), ("nesting-too-deep", 3, 67)]


def test_a_thousand_deep_block_mapping_is_too_deep() -> None:
    source = "".join("  " * level + f"k{level}:\n" for level in range(1000)) + "  " * 1000 + "v\n"
    assert where([only(source)]) == [("nesting-too-deep", 65, 129)]  # the 65th mapping


def test_nesting_up_to_the_limit_is_fine() -> None:
    expected: Any = []
    for _ in range(62):
        expected = [expected]
    assert load("a: " + "[" * 63 + "]" * 63).data == {"a": expected}  # 64 levels with the root


def test_too_many_nodes_and_too_long_values_stop_loading() -> None:
    limits = Limits(max_nodes=5, max_scalar_chars=10)
    assert where([only("a: [1, 2, 3]\n", limits)]) == [("too-many-nodes", 1, 11)]
    diagnostic = only("a: 1\nb: " + "x" * 11 + "\n", limits)
    assert where([diagnostic]) == [("value-too-long", 2, 4)]
    assert diagnostic.message == "value is 11 characters long; the limit is 10"


def test_a_large_description_hits_the_default_scalar_limit() -> None:
    assert only("description: " + "x" * 70_000 + "\n").code == "value-too-long"


# --- 5. structure -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("", 1, 1),
        ("# only a comment\n", 1, 1),
        ("- a\n", 1, 1),
        ("hello\n", 1, 1),
        ("---\n", 2, 1),
        ("\n\n  42\n", 3, 3),
        ("[a, b]\n", 1, 1),
        ('"text"\n', 1, 1),
    ],
)
def test_the_top_level_must_be_a_mapping(source: str, line: int, column: int) -> None:
    diagnostic = only(source)
    assert where([diagnostic]) == [("not-a-mapping", line, column)]
    assert diagnostic.message == "spec must be a mapping"


def test_a_second_document_is_located_at_its_start() -> None:
    diagnostic = only("a: 1\n---\na: 2\n")
    assert where([diagnostic]) == [("multiple-documents", 2, 1)]
    assert diagnostic.message == "expected one document"
    assert where([only("---\na: 1\n...\n---\nb: 2\n")]) == [("multiple-documents", 4, 1)]


def test_duplicate_keys_at_any_depth_cite_both_lines() -> None:
    source = "models:\n  scorer:\n    image: a\n  other: {}\n  scorer:\n    image: b\n"
    diagnostic = only(source)
    assert where([diagnostic]) == [("duplicate-key", 5, 3)]
    assert diagnostic.message == 'duplicate key "scorer"; first defined on line 2'
    assert diagnostic.path == "models.scorer"
    assert [r.location for r in diagnostic.related] == [Location(NAME, 2, 3)]


def test_every_duplicate_is_reported() -> None:
    source = "a: 1\na: 2\nb: {x: 1, x: 2}\nc: [{y: 1, y: 2}]\na: 3\n"
    assert where(problems(source)) == [
        ("duplicate-key", 2, 1),
        ("duplicate-key", 3, 11),
        ("duplicate-key", 4, 12),
        ("duplicate-key", 5, 1),
    ]


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("1", '"1"'),
        ("true", '"true"'),
        ("null", '"null"'),
        ("~", '"~"'),
        ("1.5", '"1.5"'),
        ("0x1F", '"0x1F"'),
        ("True", '"True"'),
    ],
)
def test_plain_keys_that_are_not_strings_are_rejected(key: str, shown: str) -> None:
    diagnostic = only(f"a: 1\n{key}: b\n")
    assert where([diagnostic]) == [("non-string-key", 2, 1)]
    assert diagnostic.message == f"keys must be strings; quote it: {shown}"


def test_an_empty_key_is_null_and_rejected() -> None:
    diagnostic = only("a: 1\n?\n: b\n")
    assert diagnostic.code == "non-string-key"
    assert diagnostic.message == 'keys must be strings; quote it: ""'


@pytest.mark.parametrize(
    ("source", "column"), [("? [a, b]\n: 1\n", 3), ("{a: 1}: x\n", 1), ("x: {[a]: 1}\n", 5)]
)
def test_complex_keys_are_rejected(source: str, column: int) -> None:
    assert where([only(source)])[0] == ("non-string-key", 1, column)


def test_quoted_keys_that_look_like_numbers_are_strings() -> None:
    assert load('"1": a\n\'true\': b\n"<<": c\n').data == {"1": "a", "true": "b", "<<": "c"}


def test_anchors_aliases_and_merge_keys_are_rejected() -> None:
    source = "base: &b {x: 1}\nother:\n  <<: *b\n  y: *b\n"
    assert where(problems(source)) == [
        ("yaml-alias", 1, 7),
        ("yaml-alias", 3, 3),
        ("yaml-alias", 3, 7),
        ("yaml-alias", 4, 6),
    ]
    messages = {d.message for d in problems(source)}
    assert messages == {"anchors and aliases are not allowed", "merge keys are not allowed"}


def test_an_alias_bomb_is_rejected_in_milliseconds() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    start = time.perf_counter()
    found = problems("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 0.5
    assert {d.code for d in found} == {"yaml-alias"}
    assert where(found)[:2] == [("yaml-alias", 1, 4), ("yaml-alias", 2, 4)]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('!!python/object/apply:os.system ["echo"]', "!!python/object/apply:os.system"),
        ("!Ref foo", "!Ref"),
        ("! foo", "!"),
        ("!!str 1", "!!str"),
        ("!!binary aGk=", "!!binary"),
        ("!!map {a: 1}", "!!map"),
    ],
)
def test_tags_are_rejected(value: str, shown: str) -> None:
    diagnostic = only(f"a: 1\nb: {value}\n")
    assert where([diagnostic]) == [("yaml-tag", 2, 4)]
    assert diagnostic.message == f'tags are not allowed (found "{shown}")'


def test_independent_problems_are_all_reported() -> None:
    source = "a: !x 1\nb: &y 2\n1: c\nd: 1e400\nd: 5\n"
    assert where(problems(source)) == [
        ("yaml-tag", 1, 4),
        ("yaml-alias", 2, 4),
        ("non-string-key", 3, 1),
        ("number-out-of-range", 4, 4),
        ("duplicate-key", 5, 1),
    ]


# --- 6. YAML 1.2 core scalars -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("Yes", "Yes"),
        ("12:30", "12:30"),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("+", "+"),
        ("-x", "-x"),
        (".", "."),
        ("1.2.3", "1.2.3"),
        ("2027-03-31", "2027-03-31"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("truex", "truex"),
        ("tRue", "tRue"),
        ("NuLL", "NuLL"),
        ("0o8", "0o8"),
        ("0X1F", "0X1F"),
        ("+0x1F", "+0x1F"),
        ("1e", "1e"),
        ("١٢", "١٢"),
    ],
)
def test_plain_scalars_that_stay_strings(text: str, expected: str) -> None:
    loaded = load(f"v: {text}\n")
    assert loaded.data == {"v": expected}
    assert ("v",) not in loaded.raw


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0755", 755),
        ("1.10", 1.1),
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("~", None),
        ("null", None),
        ("Null", None),
        ("", None),
        ("-12", -12),
        ("+3", 3),
        ("0o17", 15),
        ("0x1F", 31),
        ("0xff", 255),
        ("1e3", 1000.0),
        ("-.5", -0.5),
        ("1.", 1.0),
        ("6.02E+23", 6.02e23),
        ("1e-400", 0.0),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("+.INF", math.inf),
        ("0" * 40 + "7", 7),
        ("9" * 30, int("9" * 30)),
    ],
)
def test_plain_scalars_that_resolve_keep_their_source_text(text: str, expected: object) -> None:
    loaded = load(f"v: {text}\n")
    assert loaded.data == {"v": expected}
    assert type(loaded.data["v"]) is type(expected)
    assert loaded.raw == {("v",): text}


def test_nan_is_a_float() -> None:
    loaded = load("v: .NaN\n")
    assert math.isnan(loaded.data["v"]) and loaded.raw == {("v",): ".NaN"}


@pytest.mark.parametrize("text", ["'0755'", '"true"', "|\n  1.10", ">\n  12", "'~'", '""'])
def test_quoted_and_block_scalars_are_always_strings(text: str) -> None:
    loaded = load(f"v: {text}\n")
    assert isinstance(loaded.data["v"], str) and loaded.raw == {}


@pytest.mark.parametrize("text", ["1e400", "-1e400", "9" * 31, "0x" + "f" * 31, "0o" + "7" * 31])
def test_numbers_out_of_range_are_rejected(text: str) -> None:
    diagnostic = only(f"a: 1\nv: [{text}]\n")
    assert where([diagnostic]) == [("number-out-of-range", 2, 5)]
    assert diagnostic.path == "v[0]"


# --- 7. positions and a realistic spec --------------------------------------------------------

REALISTIC = """\
# yaml-language-server: $schema=../schema/mlplane.v1.schema.json
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata:
  name: fraud-scoring
  description: "Real-time card fraud scoring — EU"
models:
  scorer:
    version: "4.2.0"
    inputs: [fraud-features, card-transactions]
    serving:
      replicas: {min: 2, max: 8}
      rollout: {strategy: canary, steps: [10, 50], pause: 10m}
    training: {schedule: "0 3 * * 0"}
    monitoring:
      drift:
        threshold: 0.2
        features:
          - amount
          - merchant_category
    notes: |
      line one
      line two
waivers:
  - policy: data.retention-bounded
    expires: 2027-03-31
    required: yes
"""


def test_a_realistic_spec_round_trips() -> None:
    loaded = load(REALISTIC)
    assert loaded.data == {
        "apiVersion": "mlplane.dev/v1",
        "kind": "MLSystem",
        "metadata": {"name": "fraud-scoring", "description": "Real-time card fraud scoring — EU"},
        "models": {
            "scorer": {
                "version": "4.2.0",
                "inputs": ["fraud-features", "card-transactions"],
                "serving": {
                    "replicas": {"min": 2, "max": 8},
                    "rollout": {"strategy": "canary", "steps": [10, 50], "pause": "10m"},
                },
                "training": {"schedule": "0 3 * * 0"},
                "monitoring": {
                    "drift": {"threshold": 0.2, "features": ["amount", "merchant_category"]}
                },
                "notes": "line one\nline two\n",
            }
        },
        "waivers": [
            {"policy": "data.retention-bounded", "expires": "2027-03-31", "required": "yes"}
        ],
    }
    assert loaded.text == REALISTIC and loaded.name == NAME
    assert loaded.raw == {
        ("models", "scorer", "serving", "replicas", "min"): "2",
        ("models", "scorer", "serving", "replicas", "max"): "8",
        ("models", "scorer", "serving", "rollout", "steps", 0): "10",
        ("models", "scorer", "serving", "rollout", "steps", 1): "50",
        ("models", "scorer", "monitoring", "drift", "threshold"): "0.2",
    }


@pytest.mark.parametrize(
    ("path", "table", "line", "column"),
    [
        ((), "values", 2, 1),
        (("metadata",), "keys", 4, 1),
        (("metadata",), "values", 5, 3),
        (("metadata", "description"), "values", 6, 16),
        (("models", "scorer"), "keys", 8, 3),
        (("models", "scorer", "version"), "values", 9, 14),
        (("models", "scorer", "inputs", 1), "values", 10, 30),
        (("models", "scorer", "serving", "replicas"), "values", 12, 17),
        (("models", "scorer", "serving", "replicas", "max"), "keys", 12, 26),
        (("models", "scorer", "serving", "replicas", "max"), "values", 12, 31),
        (("models", "scorer", "serving", "rollout", "steps", 1), "values", 13, 47),
        (("models", "scorer", "monitoring", "drift", "features", 0), "values", 19, 13),
        (("models", "scorer", "monitoring", "drift", "features", 1), "values", 20, 13),
        (("models", "scorer", "notes"), "values", 21, 12),
        (("waivers",), "values", 25, 3),
        (("waivers", 0), "values", 25, 5),
        (("waivers", 0, "expires"), "keys", 26, 5),
        (("waivers", 0, "required"), "values", 27, 15),
    ],
)
def test_positions_are_exact(
    path: tuple[str | int, ...], table: str, line: int, column: int
) -> None:
    loaded = load(REALISTIC)
    assert getattr(loaded, table)[path] == Location(NAME, line, column)


def test_every_node_and_every_key_has_a_position() -> None:
    loaded = load(REALISTIC)
    seen: list[tuple[str | int, ...]] = []

    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        seen.append(path)
        if isinstance(value, dict):
            for key, child in value.items():
                assert (*path, key) in loaded.keys
                walk(child, (*path, key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                walk(child, (*path, index))

    walk(loaded.data, ())
    assert sorted(map(str, seen)) == sorted(map(str, loaded.values))
    assert set(loaded.keys) <= set(loaded.values)


def test_non_ascii_text_keeps_columns_in_characters() -> None:
    loaded = load("größe: 1\nnote: 'ä' \nx: [é, ü]\n")
    assert loaded.values[("größe",)] == Location(NAME, 1, 8)
    assert loaded.values[("x", 1)] == Location(NAME, 3, 8)


# --- 8. fuzzing: success or diagnostics, never an exception -----------------------------------


def _check_outcome(result: tuple[LoadedFile | None, list[Diagnostic]]) -> None:
    loaded, diagnostics = result
    if loaded is not None:
        assert diagnostics == []
        assert isinstance(loaded.data, dict) and () in loaded.values
    else:
        assert diagnostics and all(d.location is not None for d in diagnostics)
        assert len(diagnostics) <= MAX_ERRORS


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_load_or_give_diagnostics(data: bytes) -> None:
    _check_outcome(load_bytes(data, NAME))


_YAMLISH = st.sampled_from(
    [
        *":-?[]{},#&*!|>'\"%@`~ \t\n\r",
        "\n  ",
        ": ",
        "- ",
        "---\n",
        "<<",
        "\\",
        "1",
        "a",
        "true",
        "0x",
        "1e400",
        ".inf",
        "\u202e",
        "\x00",
        "\ufeff",
        "!!",
        "*a",
        "&a ",
        "\\u202e",
    ]
)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_YAMLISH, max_size=60).map("".join)))
def test_arbitrary_text_loads_or_gives_diagnostics(text: str) -> None:
    _check_outcome(load_bytes(text.encode("utf-8"), NAME))


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")
def test_the_c_event_parser_is_used() -> None:
    assert loader._LOADER.__name__ == "CSafeLoader"
