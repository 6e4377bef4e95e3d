"""``.mlplane/`` is git-ignored by itself: every command that creates it (plan cache, applied
records, local Pulumi state) writes ``.mlplane/.gitignore`` (``*``) through one helper, so that
``git add -A`` never commits local state, even without ``mlplane init``'s ``.gitignore``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mlplane.compiler.core.diagnostics import Diagnostic, Location, Severity
from mlplane.compiler.deploy.stack import backend_url
from mlplane.compiler.plan.applied import AppliedRecord, record_path, write_record
from mlplane.compiler.plan.cache import Hit, PlanCache
from mlplane.compiler.plan.local_state import GITIGNORE, STATE_DIR, ensure_state_dir


def _ignored(root: Path) -> None:
    assert (root / STATE_DIR / ".gitignore").read_text(encoding="utf-8") == GITIGNORE
    assert GITIGNORE.splitlines()[-1] == "*"


def test_the_plan_cache_ignores_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    repo = tmp_path / "repo"
    repo.mkdir()
    cache = PlanCache.open(repo)
    assert cache is not None
    problem = Diagnostic("io-error", Severity.ERROR, "m", Location("a.yaml", 1, 1))
    cache.write("ab" * 32, Hit('{"resources":[]}', (problem,)))
    _ignored(repo)


def test_an_applied_record_ignores_its_directory(tmp_path: Path) -> None:
    record = AppliedRecord("demo", "dev", None, "0" * 64, "1" * 64, {}, {"resources": []})
    write_record(record_path(tmp_path, "demo", "dev"), record)
    _ignored(tmp_path)


def test_the_default_local_state_is_inside_an_ignored_directory(tmp_path: Path) -> None:
    state = Path(backend_url(None, tmp_path).removeprefix("file://"))
    ensure_state_dir(state)  # what workspace_for does before creating it
    _ignored(tmp_path.resolve())


def test_an_existing_gitignore_is_kept_and_outside_paths_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / STATE_DIR).mkdir()
    (tmp_path / STATE_DIR / ".gitignore").write_text("cache/\n", encoding="utf-8")
    ensure_state_dir(tmp_path / STATE_DIR / "applied")
    assert (tmp_path / STATE_DIR / ".gitignore").read_text(encoding="utf-8") == "cache/\n"
    ensure_state_dir(tmp_path / "state")  # a custom backend elsewhere: nothing to do
    assert not (tmp_path / "state").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_add_all_commits_no_local_state(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "mlplane.yaml").write_text("kind: MLSystem\n", encoding="utf-8")
    record = AppliedRecord("demo", "dev", None, "0" * 64, "1" * 64, {}, {"resources": []})
    write_record(record_path(tmp_path, "demo", "dev"), record)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    staged = subprocess.run(
        ["git", "-C", str(tmp_path), "diff", "--cached", "--name-only"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert staged == ["mlplane.yaml"]
