"""Find the external judges (docs/architecture.md, External judges) that the tests run mlplane's outputs through.

Usage in a test::

    from tests.judges import require_judge

    def test_rules_pass_promtool(tmp_path):
        promtool = require_judge("promtool")
        subprocess.run([promtool, "check", "rules", ...], check=True)

or through the session fixtures of ``tests/conftest.py`` (``promtool``, ``checkov``, ...).

A missing judge skips the test with a visible reason on a developer's machine; under ``CI=true``
it fails the test instead, so that CI cannot go green without having asked the real tools.
`make judges` (part of `make test`) installs them all.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Project-local install locations, searched before PATH so the pinned versions win.
JUDGE_DIRS: tuple[Path, ...] = (
    REPO_ROOT / ".judges" / "checkov" / "bin",
    REPO_ROOT / ".judges" / "bin",
    REPO_ROOT / ".venv" / "bin",
)

# How each judge gets installed, for the skip/fail message.
INSTALL_HINTS: dict[str, str] = {
    "promtool": "Debian package 'prometheus' (apt-get install --no-install-recommends prometheus)",
    "amtool": "Debian package 'prometheus-alertmanager' (apt-get install --no-install-recommends "
    "prometheus-alertmanager)",
    "prometheus-pushgateway": "Debian package 'prometheus-pushgateway' (apt-get install "
    "--no-install-recommends prometheus-pushgateway)",
    "prometheus": "Debian package 'prometheus' (apt-get install --no-install-recommends "
    "prometheus)",
    "prometheus-alertmanager": "Debian package 'prometheus-alertmanager' (apt-get install "
    "--no-install-recommends prometheus-alertmanager)",
    "checkov": "PyPI 'checkov' in its own venv .judges/checkov",
    "zizmor": "PyPI 'zizmor' (pyproject's test extra)",
    "check-jsonschema": "PyPI 'check-jsonschema' (pyproject's test extra)",
    "kubernetes-validate": "PyPI 'kubernetes-validate' (pyproject's test extra)",
    "opa": "Go module github.com/open-policy-agent/opa, built into .judges/bin with the local Go",
    "actionlint": "Go module github.com/rhysd/actionlint, built into .judges/bin with the local Go",
    "chromium": "Debian package 'chromium' (apt-get install --no-install-recommends chromium)",
    "mermaid": "npm package 'mermaid' in .judges/mermaid (npm install --prefix .judges/mermaid "
    "--ignore-scripts mermaid@VERSION; see tools/install-judges.sh)",
}

FILE_JUDGES: dict[str, Path] = {
    "mermaid": REPO_ROOT
    / ".judges"
    / "mermaid"
    / "node_modules"
    / "mermaid"
    / "dist"
    / "mermaid.min.js",
}
"""Judges that are files a judge runs (Mermaid's parser and renderer run inside chromium)."""

JUDGES: tuple[str, ...] = tuple(name for name in INSTALL_HINTS if name not in FILE_JUDGES)

# The arguments that make a judge print its version, when not ``--version``.
VERSION_ARGS: dict[str, tuple[str, ...]] = {"opa": ("version",)}


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where a missing judge is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def find_judge(name: str) -> str | None:
    """Path of the judge's executable, or None when it is not installed."""
    for directory in JUDGE_DIRS:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def free_port() -> int:
    """A loopback TCP port free now, for a judge's server (the kernel's pick, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_judge(name: str) -> str:
    """Path of the judge's executable (or file, :data:`FILE_JUDGES`); skips the test (fails it
    under CI=true) if missing."""
    path = find_judge(name)
    if name in FILE_JUDGES:
        path = str(FILE_JUDGES[name]) if FILE_JUDGES[name].is_file() else None
    if path is not None:
        return path
    hint = INSTALL_HINTS.get(name, "see tools/install-judges.sh")
    message = f"external judge {name!r} is not installed: {hint}; run `make judges`"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing judge is a failure)", pytrace=False)
    pytest.skip(message)


def checkov_kubernetes(checkov: str, directory: Path) -> list[dict[str, Any]]:
    """checkov's Kubernetes framework run offline over the manifests below ``directory``: its
    JSON reports (one per framework part); none of them may hold a parsing error."""
    done = subprocess.run(
        [
            checkov,
            "--framework",
            "kubernetes",
            "--skip-download",
            "-o",
            "json",
            "-d",
            str(directory),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(done.stdout)
    reports: list[dict[str, Any]] = report if isinstance(report, list) else [report]
    assert sum(r["summary"]["parsing_errors"] for r in reports) == 0, done.stderr[-2000:]
    return reports


def checkov_failed(reports: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(check id, resource)`` of every failed check of :func:`checkov_kubernetes`'s reports."""
    return [(f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]]
