"""Regression tests for the bugs that ``tests/test_fuzz.py`` found, each reduced to a minimal input.

Each test failed before its fix and guards against the bug coming back.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.cli.explain import effective_data, explain_yaml
from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostic, Location, Severity
from mlplane.compiler.frontend.loader import load_bytes
from mlplane.compiler.render.dispatch import render
from mlplane.schema.models import MLSystem

MINIMAL = """\
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata: {name: shop, owner: ml, description: DESCRIPTION}
environments:
  dev: {target: kubernetes}
models:
  ranker:
    framework: sklearn
    version: "1.0"
    image: ghcr.io/acme/ranker@sha256:14a866f751e10ed211e2cbaf1af17b33323aac0629d7cb7ca2961ff4f3fe8186
    serving: {resources: {cpu: 500m, memory: 1Gi}}
slas:
  ranker-up: {model: ranker, objective: 99, indicator: availability}
"""


def compiled(tmp_path: Path, description: str = "Shop ranking") -> CompileResult:
    spec = tmp_path / "mlplane.yaml"
    spec.write_text(MINIMAL.replace("DESCRIPTION", description), encoding="utf-8")
    result = compile_spec(spec)
    assert result.ok, [d.one_line() for d in result.diagnostics]
    return result


def explained(result: CompileResult) -> str:
    assert result.document is not None
    effective = result.effective["dev"]
    return explain_yaml(effective.spec, effective.document, result.document, "dev", False)


def read_back(text: str) -> dict[str, object]:
    loaded, problems = load_bytes(text.encode("utf-8"), "explain.yaml")
    assert loaded is not None, [d.one_line() for d in problems]
    return loaded.data


# --- fixed: compiler/cli/explain.py -----------------------------------------------------------------


def test_explain_keeps_the_availability_shorthand(tmp_path: Path) -> None:
    """``indicator: availability`` came out as ``indicator: {}``: the empty ``availability: {}``
    was pruned as if it were an empty default, and the output no longer validated."""
    result = compiled(tmp_path)
    text = explained(result)
    data = read_back(text)
    assert data["slas"] == {
        "ranker-up": {
            "objective": 99.0,
            "window": "30d",
            "model": "ranker",
            "indicator": {"availability": {}},
        }
    }
    MLSystem.model_validate(data)


def test_explain_still_leaves_out_empty_defaults(tmp_path: Path) -> None:
    data = read_back(explained(compiled(tmp_path)))
    model = data["models"]["ranker"]  # type: ignore[index]
    assert "inputs" not in model and "secrets" not in model


@pytest.mark.parametrize("char", ["\U0001f600", "\U00020000", "é", "\u4e2d"])
def test_explain_quotes_characters_beyond_the_bmp_so_that_yaml_reads_them(
    tmp_path: Path, char: str
) -> None:
    """``json.dumps(ensure_ascii=True)`` wrote U+1F600 as the surrogate pair ``\\ud83d\\ude00``,
    which YAML does not decode: explain's output failed with "found invalid Unicode character
    escape code"."""
    description = f"Shop {char} ranking"
    result = compiled(tmp_path, f'"{description}"')
    text = explained(result)
    assert text.isascii()
    data = read_back(text)
    assert data["metadata"]["description"] == description  # type: ignore[index]
    effective = result.effective["dev"]
    assert data["models"] == effective_data(effective.spec, effective.document)["models"]


# --- compiler/frontend/loader.py: end-of-stream errors past the last line ------------------------------------


@pytest.mark.parametrize("source", [b"a: [1", b"a: {b", b"a:\n  - [x"])
def test_end_of_stream_error_is_located_inside_the_file(source: bytes) -> None:
    loaded, problems = load_bytes(source, "spec.yaml")
    assert loaded is None and problems
    lines = source.decode().split("\n")
    for problem in problems:
        assert problem.location is not None
        assert problem.location.line <= len(lines), problem.one_line()
        assert problem.location.column <= len(lines[problem.location.line - 1]) + 1


# --- compiler/render/text.py: excerpts of very long lines --------------------------------------


def test_text_excerpts_cost_does_not_grow_with_the_line_length() -> None:
    line = "a: [" + ", ".join(["x"] * 16_500) + "]"  # 50 KB on one line
    diagnostics = [
        Diagnostic(
            codes.YAML_SYNTAX,
            Severity.ERROR,
            "problem",
            Location("spec.yaml", 1, 1 + index * len(line) // 10),
        )
        for index in range(10)
    ]
    started = time.process_time()
    out = render("text", diagnostics, {"spec.yaml": line + "\n"})
    spent = time.process_time() - started
    assert out.count("^") == 10
    # Ten excerpts of at most 200 cells each take milliseconds; the whole line ten times over
    # takes over half a second.
    assert spent < 0.15, f"rendering 10 excerpts of a 50 KB line took {spent:.2f} s of CPU"
