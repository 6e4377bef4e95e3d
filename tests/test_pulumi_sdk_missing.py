"""Without the Pulumi SDK, the tests that need it skip with the reason, and fail under CI=true.

Each case runs pytest in a subprocess on a few of those tests with the SDK's modules blocked
(``sys.modules[name] = None``, which makes both ``import`` and ``find_spec`` report them
missing), once as on a developer's machine and once with ``CI=true``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pulumi_sdk import SDK_MODULES

ROOT = Path(__file__).resolve().parent.parent
NEEDS_SDK = (
    "tests/test_pulumi_data.py::test_the_program_with_its_data_registers_exactly_the_graph",
    "tests/test_aws_guardrails.py::test_the_printed_program_registers_the_guardrails",
    "tests/test_pulumi_aws_classes.py::test_the_table_comes_from_the_pinned_sdk",
    "tests/test_read_back.py::test_a_pulumi_whose_version_fails_is_a_clear_error",
)
RUNNER = """
import json, sys
for name in json.loads(sys.argv[1]):
    sys.modules[name] = None  # blocked: import raises ImportError, find_spec returns None
import pytest
sys.exit(pytest.main(["-q", "-rsf", "-p", "no:cacheprovider", "-p", "no:xdist", *sys.argv[2:]]))
"""


def run_without_sdk(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    command = [sys.executable, "-c", RUNNER, json.dumps(SDK_MODULES), *NEEDS_SDK]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def outcome(ci: bool, expected: str, exit_code: int) -> list[str]:
    """Run the tests without the SDK; every one of them had ``expected`` (the whole summary
    line says so); the report lines (``SKIPPED``/``FAILED``) of that outcome."""
    done = run_without_sdk(ci)
    assert done.returncode == exit_code, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    found = re.fullmatch(rf"(\d+) {expected} in [0-9.]+s", summary)
    assert found is not None and int(found[1]) >= len(NEEDS_SDK), summary
    word = "SKIPPED" if expected == "skipped" else "FAILED"
    return [line for line in done.stdout.splitlines() if line.startswith(word)]


@pytest.mark.slow
def test_without_the_sdk_the_tests_skip_with_the_reason() -> None:
    reasons = outcome(ci=False, expected="skipped", exit_code=0)
    assert reasons  # -rs folds the tests that skip with the same reason into one line
    assert all("needs the Pulumi SDK, missing pulumi" in line for line in reasons), reasons
    assert all("pip install -e '.[test]'" in line for line in reasons), reasons


@pytest.mark.slow
def test_without_the_sdk_the_tests_fail_under_ci() -> None:
    failures = outcome(ci=True, expected="failed", exit_code=1)
    assert len(failures) >= len(NEEDS_SDK)
    assert all("CI=true: a missing SDK is a failure" in line for line in failures), failures
