"""Smoke test: every external judge is installed and runs (CI fails if one is missing)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.judges import JUDGES, VERSION_ARGS, require_judge


@pytest.mark.judge
@pytest.mark.parametrize("name", JUDGES)
def test_judge_reports_its_version(name: str) -> None:
    judge = require_judge(name)
    proc = subprocess.run(
        [judge, *VERSION_ARGS.get(name, ("--version",))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{judge} --version exited {proc.returncode}:\n{output}"
    assert re.search(r"\d+\.\d+", output), f"no version in {judge} --version output:\n{output}"


def test_missing_judge_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_judge("mlplane-no-such-judge")


def test_missing_judge_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_judge("mlplane-no-such-judge")
