"""Two applies of one stack at once, and an apply killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    Repo,
    declared_resources,
    engine_preview,
    recorded_resources,
    system_name,
)

pytestmark = pytest.mark.e2e


def _start_apply(repo: Repo, log: Path) -> subprocess.Popen[bytes]:
    """``mlplane apply`` in the background, its temporary files beside ``log``: a killed apply
    cannot remove its build directory, which then stays in the test's own directory."""
    temporary = log.with_suffix(".tmp")
    temporary.mkdir()
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mlplane", "apply", "--env", "dev", "--yes"],
            cwd=repo.path, env={**repo.env, "TMPDIR": str(temporary)}, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _engine_processes_of(repo: Repo) -> list[int]:
    """Processes of this repository's engine runs (their environment names its state backend):
    what a killed apply leaves behind."""
    marker = f"PULUMI_BACKEND_URL={(repo.path / '.mlplane' / 'state').resolve().as_uri()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_concurrent_applies_wait_or_are_refused_and_corrupt_nothing(
    repo_factory: Any, tmp_path: Path
) -> None:
    repo: Repo = repo_factory("fraud-scoring")
    system = system_name(repo)
    runs = [_start_apply(repo, tmp_path / f"apply-{i}.log") for i in (1, 2)]
    codes = [run.wait(timeout=900) for run in runs]
    logs = [(tmp_path / f"apply-{i}.log").read_text(encoding="utf-8") for i in (1, 2)]
    try:
        assert 0 in codes, logs
        for code, log in zip(codes, logs, strict=True):
            if code != 0:
                assert "currently locked" in log and "another apply" in log, log[-3000:]
        assert recorded_resources(repo, system) == declared_resources(repo)
        assert engine_preview(repo) == {}
    finally:
        repo.mlplane("destroy", "--env", "dev", "--yes")


def test_an_apply_killed_mid_way_is_completed_by_the_next(
    repo_factory: Any, tmp_path: Path
) -> None:
    repo: Repo = repo_factory("fraud-scoring")
    system = system_name(repo)
    log = tmp_path / "killed.log"
    run = _start_apply(repo, log)
    deadline = time.monotonic() + 300
    while "created (" not in log.read_text(encoding="utf-8", errors="replace"):
        assert run.poll() is None, "the apply ended before it could be killed"
        assert time.monotonic() < deadline, "the apply created nothing in time"
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    for pid in _engine_processes_of(repo):  # the plugin the killed engine left running
        os.kill(pid, signal.SIGKILL)
    try:
        done = repo.mlplane("apply", "--env", "dev", "--yes")
        assert "Removed the lock of an interrupted run" in done.stdout
        assert recorded_resources(repo, system) == declared_resources(repo)
        assert engine_preview(repo) == {}
    finally:
        repo.mlplane("destroy", "--env", "dev", "--yes")
