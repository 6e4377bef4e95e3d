"""The diagnostics corpus: one small spec per class of bad input of docs/quality.md.

Each ``tests/corpus/<row>-<name>.yaml`` (or directory of files, for multi-file specs) is a
near-valid spec with one class of problem. The offending lines carry the expected codes as
inline comments::

    replica: 3  # error: [unknown-field]
    kubernetes: {context: a, context: b}  # error: [duplicate-key] note: [duplicate-key]

``error:``, ``warning:`` and ``info:`` name diagnostics reported on that line (``info``: a note
such as a workload's default CPU and memory); ``note:`` names the code of a diagnostic whose
related location (the first of two duplicates, the other field of a contradiction) is on that
line. The test compiles the case and compares the sets of
(file, line, severity, code) exactly: a lost or moved location, a missing check or an extra
diagnostic all fail.

Inputs that cannot carry a comment (bad encodings, raw control characters, size, depth and
alias bombs) are generated here from bytes, with the expected (line, code) pairs as data in
``BYTES_CASES``.

Resource limits for the size, depth and time cases: each runs ``compile_spec`` in a child
Python (``RUNNER``) that first sets ``RLIMIT_AS`` to 512 MiB and then imports mlplane, so the
whole process (interpreter, pydantic, the compiler) lives under that limit; a
``MemoryError`` or the kernel's refusal fails the case. Measured before choosing this:
Python + pydantic + mlplane start and compile the example under an ``RLIMIT_AS`` of 256 MiB
(peak RSS about 36 MiB), so address space, the stricter measure, is usable and ``RLIMIT_DATA``
is not needed. The child also reports its peak RSS (``ru_maxrss``), asserted under the same
512 MiB, and the CPU time ``compile_spec`` took, asserted under ``TIME_LIMIT`` (CPU rather than
wall time because the suite runs under ``pytest -n auto`` beside other processes, whose share of
the machine is not ours to measure). ``RLIMIT_CPU`` kills a child that runs far past that, so a
regression cannot stall the suite.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.core.diagnostics import Diagnostic, code_info
from mlplane.compiler.core.source import DEFAULT_LIMITS
from mlplane.compiler.render.dispatch import RenderOptions, render

CORPUS = Path(__file__).parent / "corpus"
HANDLED_ROWS = frozenset({*range(1, 25), 26, 28, 29, 30, 34, 35, 38, 40})
"""QUALITY §A rows the compiler handles (25 and 27 are policies; 31-33 belong to the writer)."""

FILE_LEVEL_CODES = frozenset(
    {
        "not-utf8",
        "forbidden-character",
        "file-too-large",
        "not-a-mapping",
        "multiple-documents",
        "yaml-syntax",
        "io-error",
        "no-spec-files",
        "path-outside-root",
        "non-string-key",
    }
)
"""Codes that may come without a spec path: they concern a file as a whole, or (non-string-key)
are reported on the mapping holding the key, whose path is empty when it is the root."""

MEMORY_LIMIT = 512 * 1024 * 1024
TIME_LIMIT = 4.0
"""CPU seconds one bounded case may spend compiling (the child's own measurement). The largest
case, a document one node over the 500,000-node limit, legitimately costs about 1.7 s on an idle
two-core machine (3.4 µs a node) and more beside a parallel test run; the limit is there to
catch super-linear work (which costs minutes, not seconds), so it leaves twice that."""

Key = tuple[str, int, str, str]
"""(file name, line, "error" | "warning" | "info" | "note", code)."""


# --- reading the expectations -------------------------------------------------------------------

_ANNOTATION = re.compile(r"#\s*(?=(?:error|warning|info|note):)")
_GROUP = re.compile(r"(error|warning|info|note):((?:\s*\[[a-z0-9.-]+\])+)")
_CODE = re.compile(r"\[([a-z0-9.-]+)\]")
_LOOKS_LIKE_ANNOTATION = re.compile(r"#\s*(?:errors?|warnings?|infos?|notes?)\b", re.IGNORECASE)


def expectations(path: Path) -> set[Key]:
    """The annotations of one corpus file; a malformed one or an unknown code fails the test."""
    found: set[Key] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        where = f"{path.name}:{number}"
        match = _ANNOTATION.search(line)
        if match is None:
            assert not _LOOKS_LIKE_ANNOTATION.search(line), f"{where}: malformed annotation"
            continue
        tail = line[match.end() :]
        assert not _GROUP.sub("", tail).strip(), f"{where}: malformed annotation {tail!r}"
        for kind, codes in _GROUP.findall(tail):
            for code in _CODE.findall(codes):
                code_info(code)  # raises for a code that is not registered (a typo in the corpus)
                found.add((path.name, number, kind, code))
    return found


def observed(result: CompileResult) -> set[Key]:
    """What the compiler reported, in the shape of ``expectations``."""
    found: set[Key] = set()
    for diagnostic in result.diagnostics:
        location = diagnostic.location
        assert location is not None, diagnostic.one_line()
        found.add(
            (Path(location.file).name, location.line, diagnostic.severity.value, diagnostic.code)
        )
        for related in diagnostic.related:
            found.add(
                (Path(related.location.file).name, related.location.line, "note", diagnostic.code)
            )
    return found


def describe(result: CompileResult) -> str:
    return "\n".join(d.one_line() for d in result.sorted_diagnostics()) or "(no diagnostics)"


def assert_same(expected: set[Key], result: CompileResult) -> None:
    got = observed(result)
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    assert not missing and not unexpected, (
        f"missing: {missing}\nunexpected: {unexpected}\ndiagnostics:\n{describe(result)}"
    )


def assert_located(result: CompileResult) -> None:
    """Every diagnostic has file, line and column (within the line), and a spec path unless it
    concerns the file as a whole."""
    for diagnostic in result.diagnostics:
        location = diagnostic.location
        assert location is not None and location.file, diagnostic.one_line()
        assert location.line >= 1 and location.column >= 1, diagnostic.one_line()
        assert diagnostic.path or diagnostic.code in FILE_LEVEL_CODES, (
            f"no spec path: {diagnostic.one_line()}"
        )
        _assert_within_source(result, diagnostic)
        for related in diagnostic.related:
            assert related.location.line >= 1 and related.location.column >= 1, diagnostic


def _assert_within_source(result: CompileResult, diagnostic: Diagnostic) -> None:
    location = diagnostic.location
    assert location is not None
    text = result.sources.get(location.file)
    if text is None:  # the file did not load; the loader's positions are checked by the cases
        return
    lines = text.split("\n")
    assert location.line <= len(lines), diagnostic.one_line()
    assert location.column <= len(lines[location.line - 1]) + 1, diagnostic.one_line()


def messages_at(result: CompileResult, line: int) -> str:
    return "\n".join(
        f"{d.message} {d.hint or ''}"
        for d in result.diagnostics
        if d.location is not None and d.location.line == line
    )


# --- the corpus files ----------------------------------------------------------------------------

CASES = sorted(p for p in CORPUS.iterdir() if p.suffix == ".yaml" or p.is_dir())


def case_files(case: Path) -> list[Path]:
    return [case] if case.is_file() else sorted(case.glob("*.y*ml"))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_corpus_case(case: Path) -> None:
    # Compile first: it loads the target plug-ins, which register their own codes.
    result = compile_spec(case, check_targets=True)  # as mlplane validate compiles
    expected = set().union(*(expectations(path) for path in case_files(case)))
    assert any(kind == "error" for _, _, kind, _ in expected), "a case must expect an error"
    assert_located(result)
    assert_same(expected, result)


MESSAGES: dict[str, list[tuple[int, str]]] = {
    "02-forbidden-character-escapes.yaml": [
        (7, "U+202E RIGHT-TO-LEFT OVERRIDE"),
        (17, "U+001B ESCAPE"),
        (26, "U+0000 NULL"),
    ],
    "04-top-level-list.yaml": [(2, "spec must be a mapping")],
    "05-multiple-documents.yaml": [(10, "expected one document")],
    "06-duplicate-keys.yaml": [(7, "first defined on line 5")],
    "07-non-string-keys.yaml": [(8, "keys must be strings"), (11, "keys must be strings")],
    "08-anchors-aliases.yaml": [
        (11, "anchors and aliases"),
        (16, "merge keys are not allowed"),
        (11, "write the value out in full"),  # a hint for every yaml-alias
        (16, "environments.<env>.overrides"),
    ],
    "11-tags.yaml": [(5, "tags are not allowed"), (7, "!!binary")],
    "29-hints.yaml": [
        (13, "did you mean 'eu-central-1' (Frankfurt)?"),  # by its city, not eu-north-1
        (18, "did you mean 'eu-west-2' (London)?"),
        (34, "without '%': 99.9"),
        (38, "remove the quotes"),
    ],
    "12-yaml11-implicit-types.yaml": [
        (10, 'quote the value to keep it as text: "0755"'),
        (14, "only true and false are booleans"),
        (25, 'quote the value to keep it as text: "1.10"'),
        (30, "only true and false are booleans"),
    ],
    "13-unknown-field.yaml": [
        (27, "unknown field 'replica' (did you mean 'replicas'?)"),
        (19, "did you mean 'derivedFrom'?"),
    ],
    "14-missing-field.yaml": [(12, "missing required field 'image' in models.scorer")],
    "15-wrong-type.yaml": [(24, 'expected a whole number, got the string "3"')],
    "16-out-of-range.yaml": [(22, "at least 0"), (26, "not a finite number")],
    "16-number-out-of-range.yaml": [(16, "out of range")],
    "17-invalid-names.yaml": [(5, "DNS-1123"), (15, '"my..bucket"'), (15, "bucket")],
    "19-ci-expressions.yaml": [(8, "'${{' is not allowed"), (10, "'${{' is not allowed")],
    "20-template-injection.yaml": [
        (7, 'must not contain "{{":'),  # quoted once: no doubled braces
        (9, 'invalid label value "x\\"} or vector(1) #"'),
    ],
    "21-path-traversal.yaml": [(12, "leaves the spec directory")],
    "22-identifier-hazards.yaml": [
        (11, "reserved word"),
        (23, "\\u0455corer"),  # the look-alike is shown escaped
        (27, "did you mean 'scorer'?"),  # an accent is dropped
    ],
    "23-sanitising-collision.yaml": [(16, "did you mean 'fraud-model'?")],
    "24-dangling-references.yaml": [
        (19, "did you mean 'transactions'?"),
        (24, "a -> b -> a"),
        (34, "x -> y -> z -> x"),
        (58, "model 'ranker' is not defined"),
    ],
    "26-inline-secrets.yaml": [(7, "secrets must be references"), (18, "credentials")],
    "38-secrets-in-keys.yaml": [
        (8, "this key looks like a GitHub token"),
        (35, "literal password"),
    ],
    "38-secrets-in-uri-queries.yaml": [(12, "query string"), (19, "credentials inside a URI")],
    "28-contradictions.yaml": [(17, "replicas.min (5) is greater than replicas.max (2)")],
    "29-formats.yaml": [
        (10, "'eu-west-1'"),
        (19, "did you mean 'lightgbm'?"),
        (24, "'512Mi'"),
        (24, "did you mean '2Gi'?"),
        (26, "allowed 0-59"),
        (33, "30s, 5m, 1h"),
    ],
    "34-argument-injection.yaml": [(8, "DNS-1123"), (13, "no leading '-'")],
    "29-aws-settings.yaml": [
        (13, "arn:aws:iam::<12-digit account>:role/<name>"),
        (15, "'subnet-' and 8 or 17 lower-case hex digits"),
        (16, "'sg-' and 8 or 17"),
        (22, "the environment's accountId is 123456789012"),
        (34, "objectStore only"),
        (42, "ml.<family>.<size>"),
    ],
    "28-aws-residency.yaml": [(10, "its AWS region 'us-east-1' is in 'us'")],
    "24-overlay-undefined-entry.yaml": [
        (23, "environment 'prod' overrides model 'cxr-triag', which the base does not define"),
        (23, "did you mean 'cxr-triage'?"),
        (23, "must then be complete: missing required field 'framework'"),
        (27, "environment 'prod' removes SLA 'cxr-latncy'"),
    ],
    "24-references-beside-schema-errors.yaml": [
        (37, "did you mean 'studies'?"),
        (49, "a drift SLA needs drift monitoring on model 'ct-triage'"),
    ],
    "28-target-refusals.yaml": [(38, "a 10% canary of 2 instance(s)")],
    "35-external-reference.yaml": [(4, "'include' is not supported")],
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_corpus_messages(name: str) -> None:
    """Messages say what is wrong and what is allowed (did you mean, quote the value, limits)."""
    result = compile_spec(CORPUS / name, check_targets=True)
    for line, text in MESSAGES[name]:
        assert text in messages_at(result, line), f"{name}:{line}: {text!r}\n{describe(result)}"


def test_a_percentage_without_quotes_is_not_told_to_remove_quotes() -> None:
    result = compile_spec(CORPUS / "29-hints.yaml")
    assert "quotes" not in messages_at(result, 34), describe(result)


@pytest.mark.parametrize(
    ("name", "line", "code"),
    [
        ("08-anchors-aliases.yaml", 11, "yaml-alias"),
        ("06-duplicate-keys.yaml", 7, "duplicate-key"),
    ],
)
def test_loader_errors_show_the_source_line_and_a_caret(name: str, line: int, code: str) -> None:
    """The loader's errors (the YAML is refused, so no document is built) are shown like every
    other error: the source line and a caret under the column."""
    result = compile_spec(CORPUS / name)
    text = render("text", list(result.diagnostics), result.sources, RenderOptions())
    source = (CORPUS / name).read_text(encoding="utf-8").splitlines()[line - 1]
    [diagnostic] = [
        d for d in result.diagnostics if d.code == code and d.location and d.location.line == line
    ]
    assert diagnostic.location is not None
    block = text.split(f"{name}:{line}:{diagnostic.location.column}: error:")[1]
    excerpt, caret = block.splitlines()[1:3]
    assert excerpt == f"  {line} | {source}"
    assert caret.index("^") - caret.index("|") - 2 == diagnostic.location.column - 1


def test_a_tab_is_shown_with_its_line_and_a_hint(tmp_path: Path) -> None:
    spec = tmp_path / "mlplane.yaml"
    spec.write_text("apiVersion: mlplane.dev/v1\nkind: MLSystem\n\tmetadata: {}\n", "utf-8")
    result = compile_spec(spec)
    [diagnostic] = list(result.diagnostics)
    assert (diagnostic.code, diagnostic.hint) == (
        "yaml-syntax",
        "indent with spaces: YAML does not allow tabs for indentation",
    )
    text = render("text", [diagnostic], result.sources, RenderOptions())
    assert "  3 |" in text and "^" in text, text


RELATED: dict[str, dict[int, set[int]]] = {
    "06-duplicate-keys.yaml": {7: {5}, 11: {11}, 27: {26}, 28: {19}, 37: {4}},
    "24-dangling-references.yaml": {24: {29}, 34: {39, 44}},
    "28-contradictions.yaml": {17: {18}, 31: {30}, 39: {38}, 42: {43}},
    "28-contradiction-in-override.yaml": {19: {26}},
}


@pytest.mark.parametrize("name", sorted(RELATED))
def test_related_locations_belong_to_their_diagnostic(name: str) -> None:
    """The note of a duplicate points at the first definition, a contradiction at the other
    field, a cycle at its other edges."""
    result = compile_spec(CORPUS / name)
    pairs = {
        d.location.line: {r.location.line for r in d.related}
        for d in result.diagnostics
        if d.location is not None and d.related
    }
    assert pairs == RELATED[name], describe(result)


def test_homoglyph_gets_no_misleading_suggestion() -> None:
    result = compile_spec(CORPUS / "22-identifier-hazards.yaml")
    assert "did you mean" not in messages_at(result, 23), describe(result)


def test_multi_file_diagnostics_cite_both_files() -> None:
    result = compile_spec(CORPUS / "06-multi-file-duplicate-name")
    [duplicate] = result.diagnostics
    assert duplicate.location is not None and duplicate.location.file.endswith("b-models.yaml")
    [first] = duplicate.related
    assert first.location.file.endswith("a-system.yaml") and first.location.line == 11


SECRETS_OF_CASES = {
    "26-inline-secrets.yaml": (
        "AKIAZ7QH3XW2M4PLK9TR",
        "hunter2",
        "s3cr3t-pa55",
        "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAu1SU1LfVLPHCozMx",
    ),
    "38-secrets-in-keys.yaml": (
        "ghp_Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8",
        "AKIAQ3W7E2R9T4Y6U1I8",
        "AKIAQ3W7E2R9T4Y6U1I9",  # in a comment, on a line another diagnostic points at
        "xoxb-1234567890-corpus-key",
        "123456789",
        "replica: 3",
    ),
    "38-secrets-in-uri-queries.yaml": (
        "Wk7TokenValue",
        "Qx4SecretValue",
        "Az9SignatureValue",
        "Pw5UserinfoValue",
        "Db3PasswordValue",
    ),
}


@pytest.mark.parametrize("name", sorted(SECRETS_OF_CASES))
def test_secret_values_are_never_echoed(name: str) -> None:
    result = compile_spec(CORPUS / name)
    values = SECRETS_OF_CASES[name]
    for fmt in ("text", "json", "sarif", "github"):
        output = render(fmt, result.sorted_diagnostics(), result.sources, RenderOptions())
        for value in values:
            assert value not in output, f"{fmt} output echoes {value!r}"


# --- cases generated from bytes -------------------------------------------------------------------

BASE = """\
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata:
  name: fraud-scoring
  owner: risk-ml
  description: Real-time card fraud scoring
environments:
  dev:
    target: kubernetes
    kubernetes: {context: kind-mlplane, namespace: fraud-dev}
dataSources:
  transactions:
    type: stream
    uri: kafka://events.internal:9093/transactions
    classification: pii
    residency: eu
  features:
    type: featureStore
    uri: feast://fraud
    classification: pii
    derivedFrom: [transactions]
models:
  scorer:
    framework: lightgbm
    version: "4.2.0"
    image: ghcr.io/acme/fraud-scorer:4.2.0
    inputs: [features]
    serving:
      replicas: {min: 2, max: 8}
      resources: {cpu: "1", memory: 2Gi}
      rollout: {strategy: canary, steps: [10, 50], pause: 10m}
slas:
  scorer-availability:
    model: scorer
    objective: 99.9
    indicator: availability
"""
"""A compact valid spec; line 6 is the description, line 29 the replicas."""

HEAD = "".join(BASE.splitlines(keepends=True)[:9])
"""apiVersion to environments (lines 1-9): a valid spec without models."""


def with_line(line: int, text: str, base: str = BASE) -> str:
    """``base`` with its line ``line`` replaced by ``text``."""
    lines = base.splitlines(keepends=True)
    lines[line - 1] = text + "\n"
    return "".join(lines)


def utf8(text: str) -> Callable[[], bytes]:
    return lambda: text.encode("utf-8")


def alias_bomb(levels: int = 9, width: int = 9) -> bytes:
    lines = ['l0: &l0 ["lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{aliases}]")
    return ("\n".join(lines) + "\n").encode()


def deep_block_mappings(depth: int = 1000) -> bytes:
    return ("".join(" " * i + f"k{i}:\n" for i in range(depth)) + " " * depth + "end: 1\n").encode()


def many_models(count: int = 10_000) -> bytes:
    model = '  m{0}:\n    framework: lightgbm\n    version: "4.2.0"\n    image: ghcr.io/acme/m:1\n'
    return (HEAD + "models:\n" + "".join(model.format(i) for i in range(count))).encode()


def _latin1_description() -> bytes:
    return with_line(6, "  description: Scoring for the café business").encode("latin-1")


_LATIN1_BYTE = _latin1_description().index(b"\xe9")


@dataclass(frozen=True)
class BytesCase:
    name: str
    row: int
    data: Callable[[], bytes]
    expected: frozenset[tuple[int, str]]
    """(line, code) of every diagnostic, all errors; empty for inputs that must be valid."""
    text: str = ""
    """A phrase the messages must contain."""
    column: tuple[int, int] | None = None
    """(line, column) where some diagnostic must be, for cases about positions."""
    bounded: bool = False
    """Run in a child process under the memory and time limits."""


def generated(
    name: str, row: int, data: Callable[[], bytes], *expected: tuple[int, str], **options: object
) -> BytesCase:
    return BytesCase(name, row, data, frozenset(expected), **options)  # type: ignore[arg-type]


NOT_UTF8, FORBIDDEN = "not-utf8", "forbidden-character"

BYTES_CASES = [
    # 1: not UTF-8
    generated("utf16-bom", 1, lambda: BASE.encode("utf-16"), (1, NOT_UTF8), text="at byte 0"),
    generated("latin1", 1, _latin1_description, (6, NOT_UTF8), text=f"at byte {_LATIN1_BYTE}"),
    generated("truncated-sequence", 1, lambda: BASE.encode() + b"# \xe2\x82", (37, NOT_UTF8)),
    generated("encoded-surrogate", 1, lambda: b"a: \xed\xa0\x80\n", (1, NOT_UTF8)),
    # 2: raw control, bidi and invisible characters, wherever they are
    generated("nul", 2, utf8(with_line(5, "  owner: risk\x00ml")), (5, FORBIDDEN), text="NULL"),
    generated("escape-in-comment", 2, utf8("# \x1b[2J\n" + BASE), (1, FORBIDDEN), column=(1, 3)),
    generated("bidi-override", 2, utf8(with_line(6, "  description: abc\u202edef")), (6, FORBIDDEN), column=(6, 19)),
    generated("bidi-isolate-in-key", 2, utf8(with_line(5, "  owner\u2066: risk-ml")), (5, FORBIDDEN)),
    generated("zero-width-space", 2, utf8(with_line(4, "  name: fraud\u200bscoring")), (4, FORBIDDEN), text="ZERO WIDTH SPACE"),
    generated("bom-in-the-middle", 2, utf8(with_line(8, "\ufeff  dev:")), (8, FORBIDDEN), column=(8, 1)),
    generated("line-separator", 2, utf8(with_line(6, "  description: a\u2028b")), (6, FORBIDDEN)),
    generated("next-line-c1", 2, utf8(with_line(6, "  description: a\x85b")), (6, FORBIDDEN)),
    generated("lone-cr", 2, utf8(BASE.replace("kind: MLSystem\n", "kind: MLSystem\r")), (2, FORBIDDEN), text="lone carriage return"),
    generated("cr-line-endings", 2, utf8(BASE.replace("\n", "\r")), (1, FORBIDDEN)),
    # a leading BOM and CRLF line endings are fine, and positions stay right
    generated("leading-bom", 2, utf8("\ufeff" + BASE)),
    generated("leading-bom-positions", 13, utf8("\ufeff" + with_line(6, "  descripton: x")), (6, "unknown-field"), column=(6, 3)),
    generated("crlf", 2, utf8(BASE.replace("\n", "\r\n"))),
    generated("crlf-positions", 13, utf8(with_line(29, "      replica: 3").replace("\n", "\r\n")), (29, "unknown-field"), column=(29, 7)),
    # 3: oversized
    generated("5-mib", 3, lambda: HEAD.encode() + b"#" + b"x" * (5 << 20) + b"\n", (1, "file-too-large"), text="the limit is 4 MiB", bounded=True),
    # 4: empty or not a mapping
    generated("empty", 4, lambda: b"", (1, "not-a-mapping"), text="spec must be a mapping"),
    generated("whitespace-only", 4, lambda: b"  \n\n  \n", (1, "not-a-mapping")),
    generated("comments-only", 4, lambda: b"# nothing\n# here\n", (1, "not-a-mapping")),
    generated("null", 4, lambda: b"# empty\n~\n", (2, "not-a-mapping")),
    generated("scalar", 4, lambda: b"hello", (1, "not-a-mapping")),
    generated("list", 4, lambda: b"- a\n- b\n", (1, "not-a-mapping")),
    # 5: several documents
    generated("second-document", 5, lambda: b"a: 1\n---\na: 2\n", (2, "multiple-documents"), text="expected one document"),
    generated("document-end-then-more", 5, lambda: b"a: 1\n...\n---\nb: 2\n", (3, "multiple-documents")),
    # 9: alias bomb
    generated("alias-bomb-9x9", 9, alias_bomb, *((line, "yaml-alias") for line in range(1, 10)), bounded=True),
    # 10: deep nesting
    generated("30000-brackets", 10, lambda: b"[" * 30_000, (1, "not-a-mapping"), bounded=True),
    generated("30000-brackets-in-value", 10, lambda: b"a: " + b"[" * 30_000, (1, "nesting-too-deep"), text=f"nesting deeper than {DEFAULT_LIMITS.max_depth}", bounded=True),
    generated("30000-braces", 10, lambda: b"{" * 30_000, (1, "non-string-key"), (1, "nesting-too-deep"), bounded=True),
    generated("1000-deep-block-mappings", 10, deep_block_mappings, (DEFAULT_LIMITS.max_depth + 1, "nesting-too-deep"), bounded=True),
    generated("1000-deep-block-sequences", 10, lambda: b"a:\n" + b"- " * 1000 + b"x\n", (2, "nesting-too-deep"), bounded=True),
    # 30: very long strings and lists
    generated("description-100-kb", 30, utf8(with_line(6, "  description: " + "x" * 100_000)), (6, "value-too-long"), text="the limit is 65,536", bounded=True),
    generated("description-2-kb", 30, utf8(with_line(6, "  description: " + "x" * 2_000)), (6, "too-long"), text="the limit is 1024"),
    generated("300-inputs", 30, utf8(with_line(27, "    inputs: [" + ", ".join(f"f{i}" for i in range(300)) + "]")), (27, "too-long"), text="the limit is 256"),
    generated("10000-models", 30, many_models, (11, "too-long"), text="the limit is 2000", bounded=True),
    generated("over-the-node-limit", 30, lambda: HEAD.encode() + b"x: [" + b"0," * (DEFAULT_LIMITS.max_nodes + 10) + b"0]\n", (10, "too-many-nodes"), text=f"more than {DEFAULT_LIMITS.max_nodes:,} YAML nodes", bounded=True),
]  # fmt: skip


def _bytes_params() -> Iterable[object]:
    """A bounded case compiles in a child process under memory and CPU limits: slow (make test
    runs it, make test-fast does not); the others compile in-process."""
    for item in BYTES_CASES:
        marks = (pytest.mark.slow,) if item.bounded else ()
        yield pytest.param(item, id=f"{item.row:02d}-{item.name}", marks=marks)


@pytest.mark.parametrize("item", list(_bytes_params()))
def test_bytes_case(item: BytesCase, tmp_path: Path) -> None:
    path = tmp_path / "mlplane.yaml"
    path.write_bytes(item.data())
    if item.bounded:
        got, messages = run_bounded(path)
    else:
        result = compile_spec(path)
        assert_located(result)
        got = {
            (d.location.line, d.severity.value, d.code) for d in result.diagnostics if d.location
        }
        messages = [
            (d.location.line, d.location.column, f"{d.message} {d.hint or ''}")
            for d in result.diagnostics
            if d.location
        ]
    assert got == {(line, "error", code) for line, code in item.expected}, messages
    if item.text:
        assert any(item.text in text for _, _, text in messages), messages
    if item.column is not None:
        assert item.column in {(line, column) for line, column, _ in messages}, messages


RUNNER = """
import resource, sys
memory, cpu = int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
import json, time
from pathlib import Path
from mlplane.compiler.build.pipeline import compile_spec
start = time.process_time()
result = compile_spec(Path(sys.argv[1]))
elapsed = time.process_time() - start
print(json.dumps({
    "elapsed": elapsed,
    "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "diagnostics": [
        [d.location.line, d.location.column, d.severity.value, d.code, f"{d.message} {d.hint or ''}", d.path]
        for d in result.diagnostics
    ],
}))
"""
CPU_KILL = int(3 * TIME_LIMIT) + 2
"""CPU seconds after which the child is killed (SIGXCPU), start-up included."""


def run_bounded(path: Path) -> tuple[set[tuple[int, str, str]], list[tuple[int, int, str]]]:
    """Compile ``path`` in a child under the memory limit; assert it stays in time and memory."""
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), str(MEMORY_LIMIT), str(CPU_KILL)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, (
        f"exit {completed.returncode} (-24: killed after {CPU_KILL} CPU seconds; MemoryError: "
        f"over the memory limit)\n{completed.stderr[-2000:]}"
    )
    report = json.loads(completed.stdout)
    assert report["elapsed"] < TIME_LIMIT, f"compiling took {report['elapsed']:.2f} CPU seconds"
    assert report["peak"] < MEMORY_LIMIT, f"peak RSS {report['peak'] / 2**20:.0f} MiB"
    diagnostics = report["diagnostics"]
    for line, column, _, code, text, spec_path in diagnostics:
        assert line >= 1 and column >= 1, text
        assert spec_path or code in FILE_LEVEL_CODES, f"no spec path: {code} {text}"
    got = {(line, severity, code) for line, _, severity, code, _, _ in diagnostics}
    return got, [(line, column, text) for line, column, _, _, text, _ in diagnostics]


def test_symlink_out_of_the_spec_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(BASE, encoding="utf-8")
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "a.yaml").write_text(BASE, encoding="utf-8")
    (spec / "b.yaml").symlink_to(outside)
    result = compile_spec(spec)
    assert {
        (Path(d.location.file).name, d.location.line, d.code)
        for d in result.diagnostics
        if d.location
    } == {("b.yaml", 1, "path-outside-root")}, describe(result)


def test_every_handled_row_has_a_case() -> None:
    rows = {int(m.group()) for case in CASES if (m := re.match(r"\d+", case.name))}
    rows |= {item.row for item in BYTES_CASES}
    assert sorted(HANDLED_ROWS - rows) == []


# --- the command line --------------------------------------------------------------------------------


def mlplane_command() -> list[str]:
    script = Path(sys.executable).with_name("mlplane")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from mlplane.compiler.cli.main import main; main()"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*mlplane_command(), "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


CLI_CASES = [
    "02-forbidden-character-escapes.yaml",
    "06-duplicate-keys.yaml",
    "13-unknown-field.yaml",
    "24-dangling-references.yaml",
    "26-inline-secrets.yaml",
    "38-secrets-in-keys.yaml",
    "multi-file-locations",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_json(name: str) -> None:
    completed = run_cli(str(CORPUS / name), "--format", "json")
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    document = json.loads(completed.stdout)
    got = {
        (Path(d["file"]).name, d["line"], d["severity"], d["code"]) for d in document["diagnostics"]
    }
    got |= {
        (Path(r["file"]).name, r["line"], "note", d["code"])
        for d in document["diagnostics"]
        for r in d["related"]
    }
    expected = set().union(*(expectations(path) for path in case_files(CORPUS / name)))
    assert got == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", CLI_CASES[:3])
def test_cli_sarif(name: str) -> None:
    completed = run_cli(str(CORPUS / name), "--format", "sarif")
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    log = json.loads(completed.stdout)
    results = log["runs"][0]["results"]
    expected = {
        (line, code) for _, line, kind, code in expectations(CORPUS / name) if kind != "note"
    }
    got = {
        (r["locations"][0]["physicalLocation"]["region"]["startLine"], r["ruleId"]) for r in results
    }
    assert got == expected


@pytest.mark.slow
def test_cli_survives_deep_nesting_and_bad_bytes(tmp_path: Path) -> None:
    for index, data in enumerate((b"a: " + b"[" * 30_000, b"\xff\xfe\x00", b"{" * 30_000)):
        path = tmp_path / f"spec{index}.yaml"
        path.write_bytes(data)
        completed = run_cli(str(path))
        assert completed.returncode == 1, (completed.stdout, completed.stderr)
        assert "Traceback" not in completed.stderr
        assert "error:" in completed.stdout
