"""The report's JSON writer (``compiler/report/json_format.py``) writes, straight from the
report's dataclasses, the bytes of ``json.dumps(indent=2, sort_keys=True)`` of the report as
JSON data: on every example's reports, and on reports holding values the fast path does not
write itself (non-finite floats, a ``str`` subclass, which go through the general path)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.report.json_format import render_json, to_data
from mlplane.compiler.report.model import Report
from mlplane.compiler.report.run import build_reports, judge_reports

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (REPO / "examples").iterdir() if any(p.glob("*.yaml")))


def _reference(report: Report) -> str:
    return json.dumps(to_data(report), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


@pytest.fixture(scope="module", params=EXAMPLES)
def reports(request: pytest.FixtureRequest) -> dict[str, Report]:
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        run = build_reports(
            judge_reports(Path("examples") / request.param, None, today=date(2026, 1, 15))
        )
    finally:
        os.chdir(cwd)
    assert run.ok
    assert run.reports
    return run.reports


def test_same_bytes_as_json_dumps(reports: dict[str, Report]) -> None:
    for report in reports.values():
        assert render_json(report) == _reference(report)


class Tagged(str):
    """A ``str`` subclass: not one of the writer's own scalar kinds."""


def _replace_first_data_entry(report: Report, **changes: Any) -> Report:
    entries = report.data_register
    assert entries, "the example has data sources"
    first = dataclasses.replace(entries[0], **changes)
    return dataclasses.replace(report, data_register=(first, *entries[1:]))


@functools.cache
def _first_report() -> Report:
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        run = build_reports(
            judge_reports(Path("examples") / EXAMPLES[0], None, today=date(2026, 1, 15))
        )
    finally:
        os.chdir(cwd)
    return next(iter(run.reports.values()))


@settings(max_examples=25, deadline=None)
@given(
    value=st.floats(allow_nan=True, allow_infinity=True) | st.none(),
    text=st.text(max_size=20),
)
def test_unusual_values_same_bytes(value: float | None, text: str) -> None:
    report = _first_report()
    for changed in (
        _replace_first_data_entry(report, retention_seconds=value),
        _replace_first_data_entry(report, description=Tagged(text)),
        _replace_first_data_entry(report, description=text),
    ):
        assert render_json(changed) == _reference(changed)
