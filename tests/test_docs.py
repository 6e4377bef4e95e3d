"""Generated documentation stays in step with the code it is generated from."""

from __future__ import annotations

from pathlib import Path

from mlplane.compiler.core.codes import code_table_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_diagnostic_codes_doc_is_current() -> None:
    committed = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    assert committed == code_table_markdown(), "run: python -m mlplane.compiler.build.codes_doc"


def test_every_code_is_kebab_case_and_documented() -> None:
    from mlplane.compiler.core.diagnostics import registered_codes

    infos = registered_codes()
    assert len(infos) >= 40
    for info in infos:
        assert info.summary and not info.summary.endswith("."), info.code
