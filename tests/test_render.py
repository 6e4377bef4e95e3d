"""Tests for ``compiler.render.dispatch``: every format, terminal safety, escaping and determinism."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

import mlplane
from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostic, Location, Related, Severity, code_info
from mlplane.compiler.render.common import Counts, is_unsafe, make_safe, split_lines
from mlplane.compiler.render.dispatch import RENDERERS, RenderOptions, render
from mlplane.compiler.render.github import escape_data, escape_property
from mlplane.compiler.render.sarif import artifact_uri, fingerprint
from mlplane.compiler.render.text import make_excerpt, summary_line

SOURCE = """\
models:
  scorer:
    inputs: [featres]
data:
  features: {}
"""
SOURCES = {"spec.yaml": SOURCE}

UNKNOWN_SOURCE = Diagnostic(
    code=codes.REF_UNDEFINED,
    severity=Severity.ERROR,
    message='model "scorer" reads unknown data source "featres"',
    location=Location("spec.yaml", 3, 14),
    path="models.scorer.inputs[0]",
    hint='did you mean "features"?',
    related=(Related(Location("spec.yaml", 5, 3), '"features" is defined here'),),
)
UNUSED = Diagnostic(
    code=codes.UNUSED_DEFINITION,
    severity=Severity.WARNING,
    message='data source "features" is never used',
    location=Location("spec.yaml", 5, 3),
    path="data.features",
)
NO_FILES = Diagnostic(
    code=codes.NO_SPEC_FILES,
    severity=Severity.ERROR,
    message="no spec file in examples/empty",
    location=None,
)


def text(*diagnostics: Diagnostic, **options: Any) -> str:
    return render("text", list(diagnostics), SOURCES, RenderOptions(**options))


# --- text --------------------------------------------------------------------------------------


def test_text_golden_with_hint_path_and_related_note() -> None:
    assert text(UNKNOWN_SOURCE) == (
        'spec.yaml:3:14: error: model "scorer" reads unknown data source "featres"'
        " [ref-undefined]\n"
        "  3 |     inputs: [featres]\n"
        "    |              ^\n"
        '  = hint: did you mean "features"?\n'
        "  = path: models.scorer.inputs[0]\n"
        'spec.yaml:5:3: note: "features" is defined here\n'
        "1 error, 0 warnings in 1 file\n"
    )


def test_text_without_location_has_no_excerpt_and_no_file_count() -> None:
    assert text(NO_FILES) == (
        "error: no spec file in examples/empty [no-spec-files]\n1 error, 0 warnings\n"
    )


def test_text_empty_and_without_summary() -> None:
    assert text() == ""
    assert text(UNUSED, summary=False).splitlines()[-2:] == ["    |   ^", "  = path: data.features"]


def test_text_no_excerpt_when_source_or_line_is_missing() -> None:
    elsewhere = Diagnostic(
        codes.IO_ERROR, Severity.ERROR, "cannot read", Location("other.yaml", 1, 1)
    )
    beyond = Diagnostic(codes.YAML_SYNTAX, Severity.ERROR, "eof", Location("spec.yaml", 99, 1))
    assert text(elsewhere, summary=False) == "other.yaml:1:1: error: cannot read [io-error]\n"
    assert text(beyond, summary=False) == "spec.yaml:99:1: error: eof [yaml-syntax]\n"


def test_text_colour_off_by_default_and_on_when_asked() -> None:
    assert "\x1b" not in text(UNKNOWN_SOURCE, UNUSED)
    coloured = text(UNKNOWN_SOURCE, UNUSED, color=True)
    assert "\x1b[1;31merror:\x1b[0m" in coloured
    assert "\x1b[33mwarning:\x1b[0m" in coloured
    assert "\x1b[36mnote:\x1b[0m" in coloured
    assert "\x1b[1;31m^\x1b[0m" in coloured


def test_text_summary_counts_and_plurals() -> None:
    assert summary_line(Counts(1, 1, 0), 1) == "1 error, 1 warning in 1 file"
    assert summary_line(Counts(2, 0, 0), 3) == "2 errors, 0 warnings in 3 files"
    assert summary_line(Counts(0, 2, 1), 1) == "0 errors, 2 warnings, 1 info in 1 file"
    other = Diagnostic(codes.IO_ERROR, Severity.ERROR, "x", Location("b.yaml", 1, 1))
    assert text(UNKNOWN_SOURCE, UNUSED, other).endswith("\n2 errors, 1 warning in 2 files\n")


def test_hostile_source_line_is_escaped_in_the_excerpt() -> None:
    hostile = 'name: "\x1b[31mred\u202eevil\u200b"\n'
    diagnostic = Diagnostic(
        codes.FORBIDDEN_CHARACTER, Severity.ERROR, "bad \x1b]0;title\x07", Location("h.yaml", 1, 8)
    )
    out = render("text", [diagnostic], {"h.yaml": hostile}, RenderOptions())
    assert out == (
        "h.yaml:1:8: error: bad \\u{001B}]0;title\\u{0007} [forbidden-character]\n"
        '  1 | name: "\\u{001B}[31mred\\u{202E}evil\\u{200B}"\n'
        "    |        ^^^^^^^^\n"
        "1 error, 0 warnings in 1 file\n"
    )
    assert not any(is_unsafe(char) for char in out.replace("\n", ""))


@pytest.mark.parametrize(
    "char",
    [
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",
        "\x9b",
        "\u061c",
        "\u200b",
        "\u200f",
        "\u202a",
        "\u2060",
        "\u2066",
        "\u2069",
        "\ufeff",
        "\U000e0041",
        "\ud800",
        "\u2028",
        "\u00ad",
        "\u2065",
        "\uffff",
        "\U000e0000",
    ],
)
def test_make_safe_escapes_every_unsafe_character(char: str) -> None:
    assert make_safe(f"a{char}b") == f"a\\u{{{ord(char):04X}}}b"


def test_make_safe_keeps_tabs_and_ordinary_unicode() -> None:
    assert make_safe("a\tb é 名前 🙂") == "a\tb é 名前 🙂"


def test_excerpt_expands_tabs_consistently_with_the_caret() -> None:
    excerpt = make_excerpt("\tkey:\tvalue", 7)
    assert excerpt.text == "        key:    value"
    assert excerpt.caret_offset == excerpt.text.index("value")


def test_excerpt_caret_accounts_for_wide_characters() -> None:
    excerpt = make_excerpt("名前: x", 5)
    assert excerpt.text == "名前: x"
    assert excerpt.caret_offset == 6


def test_excerpt_truncates_long_lines_around_the_caret() -> None:
    line = "a" * 150 + "X" + "b" * 300
    excerpt = make_excerpt(line, 151)
    assert len(excerpt.text) <= 200
    assert excerpt.text.startswith("…") and excerpt.text.endswith("…")
    assert excerpt.text[excerpt.caret_offset] == "X"
    head = make_excerpt(line, 1)
    assert head.text.startswith("aaa") and head.text.endswith("…") and head.caret_offset == 0
    tail = make_excerpt(line, len(line))
    assert tail.text.startswith("…") and tail.text.endswith("b") and len(tail.text) == 199
    assert tail.caret_offset == len(tail.text) - 1
    assert make_excerpt("short", 99).caret_offset == 5


def test_lines_are_numbered_like_the_loader_numbers_them() -> None:
    assert split_lines("a\r\nb\rc\u2028d\x85e\n") == ["a", "b\rc\u2028d\x85e", ""]
    diagnostic = Diagnostic(codes.YAML_SYNTAX, Severity.ERROR, "x", Location("w.yaml", 2, 1))
    out = render("text", [diagnostic], {"w.yaml": "a: 1\r\nb: 2\r\n"}, RenderOptions())
    assert "  2 | b: 2\n" in out and "\\u{000D}" not in out


# --- json --------------------------------------------------------------------------------------


def test_json_round_trips_with_the_documented_keys() -> None:
    out = render("json", [UNUSED, NO_FILES, UNKNOWN_SOURCE], SOURCES, RenderOptions())
    document = json.loads(out)
    assert out == json.dumps(document, indent=2, sort_keys=True) + "\n"
    assert document["version"] == 1
    assert document["tool"] == {"name": "mlplane", "version": mlplane.__version__}
    assert document["summary"] == {"errors": 2, "warnings": 1, "infos": 0}
    keys = {"code", "severity", "message", "file", "line", "column", "path", "hint", "related"}
    assert all(set(item) == keys for item in document["diagnostics"])
    first, second, _ = document["diagnostics"]
    assert first == {
        "code": "no-spec-files", "severity": "error", "message": "no spec file in examples/empty",
        "file": None, "line": None, "column": None, "path": None, "hint": None, "related": [],
    }  # fmt: skip
    assert second["related"] == [
        {"file": "spec.yaml", "line": 5, "column": 3, "message": '"features" is defined here'}
    ]
    assert (second["line"], second["column"], second["hint"]) == (3, 14, 'did you mean "features"?')


def test_json_is_ascii_and_empty_result_is_a_full_document() -> None:
    hostile = Diagnostic(codes.INVALID_TEXT, Severity.INFO, "\x9b\u202e名", None)
    out = render("json", [hostile], {}, RenderOptions(tool_version="9.9.9"))
    assert out.isascii()
    assert json.loads(out)["diagnostics"][0]["message"] == "\x9b\u202e名"
    assert json.loads(out)["summary"]["infos"] == 1
    assert json.loads(render("json", [], {}, RenderOptions()))["diagnostics"] == []


# --- sarif -------------------------------------------------------------------------------------

# No copy of the official SARIF 2.1.0 schema is available offline (check-jsonschema vendors
# none), so this is the subset of it that mlplane emits, transcribed from the OASIS schema
# with the same constraints, including ``additionalProperties: false`` wherever the official
# schema has it, so that a misspelt or misplaced property fails validation.
_STRICT = {"type": "object", "additionalProperties": False}
_MESSAGE = {**_STRICT, "properties": {"text": {"type": "string"}}, "required": ["text"]}
_LEVEL = {"enum": ["none", "note", "warning", "error"]}
_LOCATION = {
    **_STRICT,
    "properties": {
        "id": {"type": "integer", "minimum": -1},
        "message": _MESSAGE,
        "physicalLocation": {
            **_STRICT,
            "required": ["artifactLocation"],
            "properties": {
                "artifactLocation": {
                    **_STRICT,
                    "properties": {"uri": {"type": "string", "format": "uri-reference"}},
                },
                "region": {
                    **_STRICT,
                    "properties": {
                        "startLine": {"type": "integer", "minimum": 1},
                        "startColumn": {"type": "integer", "minimum": 1},
                    },
                },
            },
        },
    },
}
_RULE = {
    **_STRICT,
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "shortDescription": _MESSAGE,
        "defaultConfiguration": {**_STRICT, "properties": {"level": _LEVEL}},
    },
}
_RESULT = {
    **_STRICT,
    "required": ["message"],
    "properties": {
        "ruleId": {"type": "string"},
        "ruleIndex": {"type": "integer", "minimum": -1},
        "level": _LEVEL,
        "message": _MESSAGE,
        "locations": {"type": "array", "items": _LOCATION},
        "relatedLocations": {"type": "array", "uniqueItems": True, "items": _LOCATION},
        "partialFingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
        "properties": {"type": "object"},
    },
}
_DRIVER = {
    **_STRICT,
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "informationUri": {"type": "string", "format": "uri"},
        "semanticVersion": {"type": "string"},
        "rules": {"type": "array", "uniqueItems": True, "items": _RULE},
    },
}
SARIF_SUBSET_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    **_STRICT,
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": "array",
            "items": {
                **_STRICT,
                "required": ["tool"],
                "properties": {
                    "tool": {**_STRICT, "required": ["driver"], "properties": {"driver": _DRIVER}},
                    "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                    "results": {"type": "array", "items": _RESULT},
                },
            },
        },
    },
}


def sarif(*diagnostics: Diagnostic) -> dict[str, Any]:
    out = render("sarif", list(diagnostics), SOURCES, RenderOptions(tool_version="1.2.3"))
    assert out.endswith("\n") and out.isascii()
    log: dict[str, Any] = json.loads(out)
    return log


def test_sarif_validates_against_the_schema_subset() -> None:
    moved = Diagnostic(codes.IO_ERROR, Severity.INFO, "x", Location("my dir\\a b.yaml", 1, 1))
    log = sarif(UNKNOWN_SOURCE, UNUSED, NO_FILES, moved)
    # ``format`` is checked only where jsonschema has the optional format packages installed;
    # ``test_sarif_artifact_uri`` checks the URIs on its own.
    validator = jsonschema.Draft7Validator(
        SARIF_SUBSET_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    validator.validate(log)


def test_sarif_structure() -> None:
    log = sarif(UNKNOWN_SOURCE, UNUSED, NO_FILES)
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "mlplane"
    assert driver["informationUri"] == "https://mlplane.dev"
    assert driver["semanticVersion"] == "1.2.3"
    rules = driver["rules"]
    assert [rule["id"] for rule in rules] == ["no-spec-files", "ref-undefined", "unused-definition"]
    for rule in rules:
        info = code_info(rule["id"])
        assert rule["shortDescription"]["text"] == info.summary
        assert rule["defaultConfiguration"]["level"] == info.severity.value  # no info codes yet
    results = run["results"]
    assert [rules[r["ruleIndex"]]["id"] for r in results] == [r["ruleId"] for r in results]
    unlocated, unknown, unused = results
    assert "locations" not in unlocated
    assert unknown["level"] == "error" and unused["level"] == "warning"
    assert unknown["message"]["text"] == (
        'model "scorer" reads unknown data source "featres"\nhint: did you mean "features"?'
    )
    assert unknown["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "spec.yaml"},
        "region": {"startLine": 3, "startColumn": 14},
    }
    (related,) = unknown["relatedLocations"]
    assert related["id"] == 1
    assert related["message"]["text"] == '"features" is defined here'
    assert related["physicalLocation"]["region"] == {"startLine": 5, "startColumn": 3}
    assert run["columnKind"] == "unicodeCodePoints"


def test_sarif_info_is_note_level() -> None:
    info = Diagnostic(codes.UNUSED_DEFINITION, Severity.INFO, "fyi", None)
    (result,) = sarif(info)["runs"][0]["results"]
    assert result["level"] == "note"


@pytest.mark.parametrize(
    ("file", "uri"),
    [
        ("spec.yaml", "spec.yaml"),
        ("./examples/fraud/mlplane.yaml", "examples/fraud/mlplane.yaml"),
        ("examples\\my dir\\spec #1.yaml", "examples/my%20dir/spec%20%231.yaml"),
        ("a:b/c,d?.yaml", "a%3Ab/c%2Cd%3F.yaml"),
        ("//server/share.yaml", "/server/share.yaml"),
        ("dé.yaml", "d%C3%A9.yaml"),
    ],
)
def test_sarif_artifact_uri(file: str, uri: str) -> None:
    assert artifact_uri(file) == uri
    # RFC 3986 relative-ref characters; the first segment must not read as a scheme.
    assert re.fullmatch(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=@/]|%[0-9A-F]{2})*", uri)


def test_sarif_fingerprint_ignores_line_moves() -> None:
    moved = replace(UNKNOWN_SOURCE, location=Location("spec.yaml", 30, 1), hint=None, related=())
    assert fingerprint(moved) == fingerprint(UNKNOWN_SOURCE)
    assert len(fingerprint(moved)) == 64
    assert fingerprint(UNUSED) != fingerprint(UNKNOWN_SOURCE)
    (result,) = sarif(UNKNOWN_SOURCE)["runs"][0]["results"]
    assert result["partialFingerprints"] == {"mlplane/v1": fingerprint(UNKNOWN_SOURCE)}


# --- github ------------------------------------------------------------------------------------


def github(*diagnostics: Diagnostic) -> str:
    return render("github", list(diagnostics), SOURCES, RenderOptions())


def test_github_golden() -> None:
    assert github(UNKNOWN_SOURCE, UNUSED, NO_FILES) == (
        "::error title=mlplane [no-spec-files]::no spec file in examples/empty\n"
        "::error file=spec.yaml,line=3,col=14,title=mlplane [ref-undefined]::"
        'model "scorer" reads unknown data source "featres"%0Ahint: did you mean "features"?'
        '%0Anote: spec.yaml:5:3: "features" is defined here\n'
        "::warning file=spec.yaml,line=5,col=3,title=mlplane [unused-definition]::"
        'data source "features" is never used\n'
    )
    info = Diagnostic(codes.UNUSED_DEFINITION, Severity.INFO, "fyi", None)
    assert github(info) == "::notice title=mlplane [unused-definition]::fyi\n"


def test_github_escaping_rules() -> None:
    assert escape_data("100% a\r\nb: c, d") == "100%25 a%0D%0Ab: c, d"
    assert escape_property("100% a\r\nb: c, d") == "100%25 a%0D%0Ab%3A c%2C d"
    assert escape_data("%0A") == "%250A"  # already-escaped text is not un-escaped by the runner


def test_github_file_property_is_escaped() -> None:
    odd = Diagnostic(codes.IO_ERROR, Severity.ERROR, "x", Location("C:\\a,b%.yaml", 2, 3))
    assert github(odd) == (
        "::error file=C%3A\\a%2Cb%25.yaml,line=2,col=3,title=mlplane [io-error]::x\n"
    )


@pytest.mark.parametrize(
    "message",
    [
        "evil\n::set-env name=X::y",
        "::add-mask::secret",
        "evil\r::stop-commands::token",
        "evil\r\n::error file=x::forged",
        "evil\u2028::warning::forged\x1b[2J",
    ],
)
def test_github_message_cannot_start_a_workflow_command(message: str) -> None:
    diagnostic = Diagnostic(
        codes.INVALID_TEXT, Severity.ERROR, message, Location("spec.yaml", 1, 1), hint=message
    )
    out = github(diagnostic)
    assert out.endswith("\n") and out.count("\n") == 1 and "\r" not in out
    # The runner reads commands only at the start of a line, and this is the only line.
    assert out.startswith("::error file=spec.yaml,line=1,col=1,title=mlplane [invalid-text]::")
    assert "\x1b" not in out and "\u2028" not in out


def test_github_injection_is_visible_as_escaped_text() -> None:
    diagnostic = Diagnostic(
        codes.INVALID_TEXT, Severity.ERROR, "a\n::set-env name=X::y", None, hint="::add-mask::z"
    )
    assert github(diagnostic) == (
        "::error title=mlplane [invalid-text]::a%0A::set-env name=X::y%0Ahint: ::add-mask::z\n"
    )


# --- all formats -------------------------------------------------------------------------------


def test_every_format_is_deterministic_under_shuffling() -> None:
    twin = replace(UNKNOWN_SOURCE, path="models.scorer.inputs[1]", hint=None)
    other = Diagnostic(codes.IO_ERROR, Severity.ERROR, "x", Location("a.yaml", 1, 1))
    items = [UNKNOWN_SOURCE, UNUSED, NO_FILES, twin, other]
    rng = random.Random(7)
    for fmt in RENDERERS:
        expected = render(fmt, items, SOURCES, RenderOptions())
        for _ in range(10):
            shuffled = items[:]
            rng.shuffle(shuffled)
            assert render(fmt, shuffled, SOURCES, RenderOptions()) == expected, fmt


def test_registry_and_render_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(RENDERERS) == {"text", "json", "sarif", "github"}
    assert RenderOptions() == RenderOptions(color=False, tool_version=mlplane.__version__)
    for fmt in RENDERERS:
        render(fmt, [UNKNOWN_SOURCE], SOURCES, RenderOptions())
    assert capsys.readouterr() == ("", "")  # renderers return text, never print
    with pytest.raises(ValueError, match="unknown diagnostics format 'xml'"):
        render("xml", [], {}, RenderOptions())


def test_the_ascii_shortcuts_agree_with_the_unicode_tables() -> None:
    """``is_unsafe`` answers ASCII without the Unicode tables and ``make_safe`` returns printable
    ASCII as it is: both must say what the tables say, for every ASCII character and for
    mixtures with the characters the ranges and categories catch."""
    import unicodedata

    from mlplane.compiler.render import common

    for point in range(0x80):
        char = chr(point)
        by_tables = any(low <= point <= high for low, high in common._UNSAFE_RANGES) or (
            unicodedata.category(char) in common._UNSAFE_CATEGORIES
        )
        assert is_unsafe(char) == by_tables, hex(point)
    pool = [chr(p) for p in range(0x80)] + [
        "\u202e",
        "\u200b",
        "\ufeff",
        "é",
        "\u0085",
        "\U000e0041",
    ]
    generator = random.Random(20)
    for _ in range(2_000):
        text = "".join(generator.choice(pool) for _ in range(generator.randint(0, 12)))
        for keep in ("\t", ""):
            slow = "".join(
                common.escape_char(c) if c not in keep and is_unsafe(c) else c for c in text
            )
            assert make_safe(text, keep) == slow, (text, keep)
