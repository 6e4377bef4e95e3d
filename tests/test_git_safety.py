"""A spec tree cannot make git run anything (docs/quality.md row 36).

A pull request can commit, next to its spec, a directory that git takes for a repository
(``HEAD``, ``config``, ``objects/``, ``refs/``) whose ``config`` names a promisor remote with an
``uploadpack`` command (git runs it to fetch a missing object), an ``fsmonitor`` command and a
hooks directory. Every command of the planted repositories below writes a marker file; each test
first shows that plain git, started where mlplane used to start it, runs those commands (the
attack is live), then that mlplane, through ``plan``, ``drift``, ``apply`` and its git runner,
never does, while still reading the real repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import plugins
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.deploy import engine as deploy
from mlplane.compiler.deploy import stack as plan_stack
from mlplane.compiler.plan import codes as plan_codes
from mlplane.compiler.plan import gitsource
from mlplane.compiler.plan.applied import record_path, repository_root
from mlplane.compiler.plan.gitsource import (
    Git,
    Repository,
    RepositoryRefused,
    find_repository,
    git_environment,
    head_commit,
    read_spec_at,
)
from tests import fake_target
from tests.hypothesis_profiles import examples
from tests.specs import BASE
from tests.test_deploy import EXAMPLE, SYSTEM, FakeEngine
from tests.test_plan import GIT_ENV, Repo

MISSING = "1" * 40
"""An object no repository holds: looking it up makes git fetch it from the promisor remote."""
HOOKS = ("reference-transaction", "post-checkout", "pre-commit", "post-commit")
MARKERS = ("uploadpack", "fsmonitor", *HOOKS)


# --- the planted repository ----------------------------------------------------------------------


def plant(directory: Path, markers: Path) -> Path:
    """Make ``directory`` a repository to git whose every command writes into ``markers``."""
    markers.mkdir(parents=True, exist_ok=True)
    (directory / "objects").mkdir(parents=True, exist_ok=True)
    (directory / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    (directory / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (directory / "refs" / "heads" / "main").write_text(MISSING + "\n", encoding="utf-8")
    hooks = directory / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook in HOOKS:
        script = hooks / hook
        script.write_text(f"#!/bin/sh\ntouch {markers / hook}\n", encoding="utf-8")
        script.chmod(0o755)
    (directory / "config").write_text(
        "[core]\n"
        "\trepositoryformatversion = 1\n"
        "\tbare = false\n"
        "\tworktree = .\n"
        f'\tfsmonitor = "touch {markers / "fsmonitor"}"\n'
        f"\thooksPath = {hooks}\n"
        "[extensions]\n"
        "\tpartialClone = origin\n"
        '[remote "origin"]\n'
        f"\turl = {markers / 'remote'}\n"
        "\tpromisor = true\n"
        f'\tuploadpack = "touch {markers / "uploadpack"}"\n',
        encoding="utf-8",
    )
    return directory


def plain_git(cwd: Path, *args: str) -> None:
    """git as anyone would start it in ``cwd``: discovering the repository from there."""
    env = {**os.environ, **GIT_ENV}
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_ALLOW_PROTOCOL", "GIT_NO_LAZY_FETCH"):
        env.pop(key, None)
    subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=False)


def fired(markers: Path) -> list[str]:
    return sorted(path.name for path in markers.iterdir() if path.name in MARKERS)


def show_attack_is_live(directory: Path, markers: Path) -> None:
    """Plain git in ``directory`` runs the planted upload-pack and fsmonitor commands."""
    plain_git(directory, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    plain_git(directory, "status")
    assert {"uploadpack", "fsmonitor"} <= set(fired(markers))
    for name in fired(markers):
        (markers / name).unlink()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    if "kubernetes" not in plugins.targets():
        fake_target.install(monkeypatch)


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    return tmp_path / "markers"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """The spec committed, then a pull request's commit that plants a repository next to it."""
    made = Repo(tmp_path / "repo")
    made.write("spec/mlplane.yaml", BASE)
    made.commit("base")
    monkeypatch.chdir(made.root)
    return made


def planted_commit(repo: Repo, markers: Path) -> str:
    plant(repo.root / "spec", markers)
    commit = repo.commit("a pull request plants a repository next to the spec")
    assert "spec/config" in repo.git("ls-files")
    return commit


# --- (a) the planted repository ------------------------------------------------------------------


@pytest.mark.parametrize("base", ["HEAD", "HEAD~1"])
@pytest.mark.parametrize("where", [".", "spec"])
def test_plan_reads_the_real_repository_and_runs_nothing_planted(
    repo: Repo, markers: Path, monkeypatch: pytest.MonkeyPatch, base: str, where: str
) -> None:
    real = planted_commit(repo, markers)
    show_attack_is_live(repo.root / "spec", markers)
    monkeypatch.chdir(repo.root / where)
    target = "spec" if where == "." else "."
    result = run("plan", target, "--env", "dev", "--base", base, "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["head"]["commit"] == real
    expected = real if base == "HEAD" else repo.git("rev-parse", "HEAD~1")
    assert plan["base"]["commit"] == expected
    assert fired(markers) == []


def test_the_planted_repository_is_not_even_looked_at(repo: Repo, markers: Path) -> None:
    planted_commit(repo, markers)
    found = find_repository(repo.root / "spec" / "mlplane.yaml")
    assert found == Repository(repo.root.resolve(), repo.root.resolve() / ".git", found.marker)
    assert repository_root(repo.root / "spec") == repo.root.resolve()
    assert head_commit(repo.root / "spec") == repo.git("rev-parse", "HEAD")
    assert fired(markers) == []


# --- (b) a planted .git file ---------------------------------------------------------------------


@pytest.mark.parametrize("inside", [True, False], ids=["in-the-checkout", "outside-any-repository"])
def test_a_planted_git_file_redirects_git_nowhere(
    repo: Repo, markers: Path, tmp_path: Path, inside: bool
) -> None:
    repo.commit()
    evil = plant(repo.root / "evil" if inside else tmp_path / "evil", markers)
    spec = repo.root / "spec" if inside else tmp_path / "loose"
    spec.mkdir(exist_ok=True)
    (spec / "mlplane.yaml").write_text(BASE, encoding="utf-8")
    (spec / ".git").write_text(f"gitdir: {os.path.relpath(evil, spec)}\n", encoding="utf-8")
    show_attack_is_live(spec, markers)
    result = run("plan", os.path.relpath(spec), "--env", "dev", "--base", "HEAD")
    assert result.exit_code == 1, result.output
    problem = "points outside the .git directory" if inside else "is neither a submodule's"
    assert re.search(rf"\S*/\.git:1:1: error: \S*/\.git {problem}", result.output), result.output
    assert "[git-repository-refused]" in result.output
    assert fired(markers) == []
    with pytest.raises(RepositoryRefused):
        find_repository(spec)
    assert head_commit(spec) is None


def test_git_links_and_non_repositories_are_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ".git").symlink_to(tmp_path / "elsewhere")
    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    for directory in (linked, empty):
        diagnostics = Diagnostics()
        found = read_spec_at(directory, "HEAD", diagnostics)
        assert found.status == "failed"
        (problem,) = diagnostics.items
        assert problem.code == plan_codes.GIT_REPOSITORY_REFUSED
        assert problem.location is not None and problem.location.line == 1


def test_linked_worktrees_and_submodules_are_followed(repo: Repo, tmp_path: Path) -> None:
    """The ``.git`` files git writes itself: a linked worktree outside the repository, and a
    submodule whose git directory is kept in the superproject's ``.git/modules``."""
    first = repo.commit()
    worktree = tmp_path / "worktree"
    repo.git("worktree", "add", "-q", "--detach", str(worktree), first)
    assert head_commit(worktree / "spec") == first
    diagnostics = Diagnostics()
    assert read_spec_at(worktree / "spec", "HEAD", diagnostics).status == "loaded"
    assert not diagnostics.has_errors

    library = Repo(tmp_path / "library")
    library.write("spec/mlplane.yaml", BASE)
    inner = library.commit("library")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library.root), "lib")
    assert (repo.root / "lib" / ".git").is_file()
    assert head_commit(repo.root / "lib" / "spec") == inner
    diagnostics = Diagnostics()
    assert read_spec_at(repo.root / "lib" / "spec", "HEAD", diagnostics).status == "loaded"
    assert not diagnostics.has_errors


# --- (c), (d) fsmonitor, hooks and transports, even in a hostile repository -----------------------


@pytest.fixture
def hostile(tmp_path: Path, markers: Path) -> Repo:
    """A real repository whose own ``.git`` carries the planted configuration and hooks (as if
    unpacked from an archive rather than checked out): the layer under the walk."""
    made = Repo(tmp_path / "hostile")
    made.write("spec/mlplane.yaml", BASE)
    made.commit("base")
    made.write("f", "text\n")
    made.git("add", "f")  # an index for fsmonitor to refresh
    git_dir = made.root / ".git"
    planted = plant(tmp_path / "planted", markers)
    config = (planted / "config").read_text(encoding="utf-8")
    config = config.replace("\tworktree = .\n", "").replace(str(planted), str(git_dir))
    (git_dir / "config").write_text(config, encoding="utf-8")
    shutil.copytree(planted / "hooks", git_dir / "hooks", dirs_exist_ok=True)
    return made


def test_the_runner_never_runs_fsmonitor_hooks_or_upload_pack(hostile: Repo, markers: Path) -> None:
    commands: list[Sequence[str]] = [
        ["status"],
        ["rev-parse", "--verify", "--quiet", f"{MISSING}^{{commit}}"],
        ["cat-file", "-p", MISSING],
        ["update-ref", "refs/heads/touched", "HEAD"],
        ["commit", "-q", "--allow-empty", "-m", "hooked"],
    ]
    for command in commands:
        plain_git(hostile.root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", *command)
    assert set(fired(markers)) == set(MARKERS) - {"post-checkout"}
    for name in fired(markers):
        (markers / name).unlink()
    git = Git.of(hostile.root / "spec")
    assert git is not None
    for command in commands:
        git.call(["-c", "user.name=t", "-c", "user.email=t@example.invalid", *command])
    assert fired(markers) == []


def test_plan_in_a_hostile_repository_fetches_nothing(
    hostile: Repo, markers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hostile.root)
    (hostile.root / ".git" / "refs" / "heads" / "gone").write_text(MISSING + "\n")
    result = run("plan", "spec", "--env", "dev", "--base", "gone")
    assert result.exit_code == 1
    assert "[git-error]" in result.output
    assert fired(markers) == []


def test_the_environment_cannot_point_git_elsewhere(
    repo: Repo, markers: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """GIT_DIR, GIT_WORK_TREE and GIT_CONFIG_* of the caller never reach git, nor do secrets."""
    real = repo.git("rev-parse", "HEAD")
    planted = plant(tmp_path / "planted", markers)
    monkeypatch.setenv("GIT_DIR", str(planted))
    monkeypatch.setenv("GIT_WORK_TREE", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.fsmonitor")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"touch {markers / 'fsmonitor'}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "hunter2")
    assert head_commit(repo.root / "spec") == real
    environment = git_environment(os.environ)
    assert not {"GIT_DIR", "GIT_WORK_TREE", "GIT_CONFIG_COUNT", "PULUMI_CONFIG_PASSPHRASE"} & set(
        environment
    )
    assert environment["GIT_CONFIG_GLOBAL"] == os.devnull  # the user's own choice is kept
    assert fired(markers) == []


# --- (e) drift and apply -------------------------------------------------------------------------


@pytest.fixture
def deployable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, markers: Path) -> Iterator[Repo]:
    """The fraud-scoring example under ``spec/`` with a repository planted next to it, and the
    Automation API replaced by a recording engine (the boundary tests/test_deploy.py uses)."""
    monkeypatch.setattr(plan_stack, "today", lambda: date(2026, 6, 1))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "only-for-tests")
    made = Repo(tmp_path / "repo")
    shutil.copytree(EXAMPLE, made.root / "spec")
    made.commit("base")
    planted_commit(made, markers)
    monkeypatch.chdir(made.root)
    fake = FakeEngine()
    monkeypatch.setattr(deploy, "require_pulumi", lambda: None)
    monkeypatch.setattr(deploy, "open_stack", lambda workspace: fake)
    yield made


def test_drift_and_apply_read_the_real_repository(deployable: Repo, markers: Path) -> None:
    show_attack_is_live(deployable.root / "spec", markers)
    assert run("drift", "spec", "--env", "dev").exit_code == 0
    result = run("apply", "spec", "--env", "dev", "--yes")
    assert result.exit_code == 0, result.output
    record = json.loads(record_path(deployable.root, SYSTEM, "dev").read_text(encoding="utf-8"))
    assert record["commit"] == deployable.git("rev-parse", "HEAD")
    assert not (deployable.root / "spec" / ".mlplane").exists()
    assert fired(markers) == []


# --- hostile revisions ---------------------------------------------------------------------------

PIECES = ("-", "--upload-pack=", "-oProxyCommand=", "HEAD", "~", "^", "@{", "^{", "..", ":", "/")
PIECES += (".lock", "main", "\x00", "\n", "\x7f", "refs/heads/", MISSING, "*", " ")
REVISION_TEXT = st.one_of(
    st.text(max_size=40), st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
)


_OURS = {"git", *gitsource.HARDENING, "rev-parse", "--verify", "--quiet", "--absolute-git-dir"}
_OURS |= {"ls-tree", "-z", "-l", "--full-tree", "cat-file", "--batch"}


def _ours(argument: str) -> bool:
    """An argument mlplane itself puts before the operands."""
    return argument in _OURS or argument.startswith(("--git-dir=", "--work-tree="))


def test_hostile_revisions_are_refused_or_name_nothing(
    repo: Repo, markers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any text as ``--base``: a diagnostic with a registered code or a loaded base; git never
    sees the revision as an option, and nothing planted runs."""
    planted_commit(repo, markers)
    operands: list[list[str]] = []
    real = subprocess.run

    def spy(args: Sequence[str], *rest: Any, **options: Any) -> Any:
        operands.append(list(args))
        return real(args, *rest, **options)

    monkeypatch.setattr(gitsource.subprocess, "run", spy)

    @settings(
        max_examples=examples(60),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(revision=REVISION_TEXT)
    def check(revision: str) -> None:
        diagnostics = Diagnostics()
        found = read_spec_at(Path("spec"), revision, diagnostics)
        assert found.status in ("loaded", "failed")
        if found.status == "failed":
            assert {d.code for d in diagnostics.items} <= {
                plan_codes.GIT_REVISION_INVALID,
                plan_codes.GIT_ERROR,
            }, [d.one_line() for d in diagnostics.items]
        for argv in operands:
            end = argv.index("--end-of-options") if "--end-of-options" in argv else len(argv)
            assert all(_ours(argument) for argument in argv[:end]), argv
        operands.clear()

    check()
    assert fired(markers) == []
