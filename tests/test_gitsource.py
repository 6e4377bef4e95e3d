"""Reading a spec at a git revision: git objects only, hostile revisions refused before git runs
(docs/quality.md row 34), renames, absent paths, limits, links, and an untouched working tree."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.source import Limits
from mlplane.compiler.frontend.document import load_spec
from mlplane.compiler.plan import gitsource
from mlplane.compiler.plan.gitsource import read_spec_at, revision_problem
from tests.specs import BASE
from tests.test_plan import GIT_ENV, Repo


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    made = Repo(tmp_path / "repo")
    made.write("spec/mlplane.yaml", BASE)
    made.commit("base")
    monkeypatch.chdir(made.root)
    return made


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every argv gitsource hands to subprocess.run."""
    calls: list[list[str]] = []
    real = subprocess.run

    def spy(args: Sequence[str], *rest: Any, **options: Any) -> Any:
        calls.append(list(args))
        return real(args, *rest, **options)

    monkeypatch.setattr(gitsource.subprocess, "run", spy)
    return calls


def read(
    revision: str, target: str = "spec", limits: Limits | None = None
) -> tuple[Any, Diagnostics]:
    diagnostics = Diagnostics()
    if limits is None:
        return read_spec_at(Path(target), revision, diagnostics), diagnostics
    return read_spec_at(Path(target), revision, diagnostics, limits), diagnostics


@pytest.mark.parametrize(
    "revision",
    [
        "HEAD",
        "HEAD~1",
        "HEAD^",
        "HEAD~2^2",
        "main",
        "origin/main",
        "refs/heads/feature/x",
        "v1.2.3",
        "abc1234",
        "a" * 40,
    ],
)
def test_ordinary_revisions_are_accepted(revision: str) -> None:
    assert revision_problem(revision) is None


@pytest.mark.parametrize(
    "revision",
    [
        "--upload-pack=evil", "-oProxyCommand=touch pwned", "-", "", "a..b", "HEAD@{1}", "@",
        "main.lock", ".hidden", "a//b", "a/", "x y", "HEAD^{tree}", "a:b", "a?b", "a*", "a[b",
        "a\\b", "main\x1b[31m", "main\n", "x" * 300,
    ],
)  # fmt: skip
def test_hostile_or_malformed_revisions_are_refused(revision: str) -> None:
    assert revision_problem(revision) is not None


@pytest.mark.parametrize("revision", ["--upload-pack=evil", "-oProxyCommand=touch pwned"])
def test_argument_injection_never_reaches_git(
    repo: Repo, git_calls: list[list[str]], revision: str
) -> None:
    result = CliRunner().invoke(cli, ["plan", "spec", "--env", "dev", f"--base={revision}"])
    assert result.exit_code == 1
    assert "[git-revision-invalid]" in result.output
    assert "cannot start with '-'" in result.output
    assert all(revision not in argument for call in git_calls for argument in call)
    assert not (repo.root / "pwned").exists()


def test_git_is_called_with_argument_lists_and_separators(
    repo: Repo, git_calls: list[list[str]]
) -> None:
    found, diagnostics = read("HEAD")
    assert found.status == "loaded", [d.one_line() for d in diagnostics]
    rev_parse = next(c for c in git_calls if "--verify" in c)
    assert rev_parse[-2:] == ["--end-of-options", "HEAD^{commit}"]
    ls_tree = next(c for c in git_calls if "ls-tree" in c)
    assert "--end-of-options" in ls_tree and ls_tree[-2] == "--"
    assert any(c[-2:] == ["cat-file", "--batch"] for c in git_calls)


def test_base_loads_like_the_working_tree(repo: Repo) -> None:
    found, diagnostics = read("HEAD")
    assert not diagnostics.has_errors
    here = load_spec(Path("spec"), Diagnostics())
    assert here is not None and found.document is not None
    assert found.document.files == here.files
    assert found.document.data == here.data
    assert found.document.values == here.values
    assert found.commit == repo.git("rev-parse", "HEAD")


def test_renamed_added_and_deleted_files(repo: Repo) -> None:
    split = BASE.index("slas:")
    repo.write("spec/mlplane.yaml", BASE[:split])
    repo.write("spec/slas.yaml", "apiVersion: mlplane.dev/v1\nkind: MLSystem\n" + BASE[split:])
    repo.write("spec/README.md", "not a spec")
    repo.write("spec/.hidden.yaml", "not: read")
    repo.commit("split")
    repo.git("mv", "spec/slas.yaml", "spec/objectives.yaml")
    (repo.root / "spec" / "mlplane.yaml").unlink()
    found, diagnostics = read("HEAD")
    assert not diagnostics.has_errors
    assert sorted(found.document.files) == ["spec/mlplane.yaml", "spec/slas.yaml"]
    older, _ = read("HEAD~1")
    assert sorted(older.document.files) == ["spec/mlplane.yaml"]


def test_path_missing_at_the_base_is_absent(repo: Repo) -> None:
    repo.write("new/mlplane.yaml", BASE)
    found, diagnostics = read("HEAD", "new")
    assert found.status == "absent" and found.document is None
    assert len(diagnostics) == 0


def test_single_file_spec_and_repository_root(repo: Repo) -> None:
    found, _ = read("HEAD", "spec/mlplane.yaml")
    assert found.status == "loaded" and list(found.document.files) == ["spec/mlplane.yaml"]
    repo.write("mlplane.yaml", BASE)
    repo.commit("root spec")
    at_root, diagnostics = read("HEAD", ".")
    assert at_root.status == "loaded", [d.one_line() for d in diagnostics]
    assert list(at_root.document.files) == ["mlplane.yaml"]


def test_paths_are_literal_not_globs(repo: Repo) -> None:
    repo.write("spec[1]/mlplane.yaml", BASE)
    repo.write("spec1/mlplane.yaml", BASE.replace("name: demo", "name: other"))
    repo.commit("odd names")
    found, diagnostics = read("HEAD", "spec[1]")
    assert found.status == "loaded", [d.one_line() for d in diagnostics]
    assert found.document.data["metadata"]["name"] == "demo"


def test_unknown_revision_and_no_repository(repo: Repo, tmp_path: Path) -> None:
    found, diagnostics = read("no-such-branch")
    assert found.status == "failed" and found.commit is None
    assert [d.code for d in diagnostics] == ["git-error"]
    assert "unknown revision 'no-such-branch'" in diagnostics.items[0].message
    outside = tmp_path / "plain"
    (outside / "spec").mkdir(parents=True)
    (outside / "spec" / "mlplane.yaml").write_text(BASE)
    os.chdir(outside)
    found, diagnostics = read("HEAD")
    assert "not inside a git repository; use --base none" in diagnostics.items[0].message
    result = CliRunner().invoke(cli, ["plan", "spec", "--env", "dev", "--base", "none"])
    assert result.exit_code == 0 and "head: working tree (" in result.output


def test_size_limits_apply_before_blobs_are_read(repo: Repo, git_calls: list[list[str]]) -> None:
    found, diagnostics = read("HEAD", limits=Limits(max_file_bytes=100))
    assert found.status == "failed"
    assert [d.code for d in diagnostics] == ["file-too-large"]
    assert diagnostics.items[0].location is not None
    assert diagnostics.items[0].location.file == "spec/mlplane.yaml"
    assert not any("cat-file" in call for call in git_calls)
    _, total = read("HEAD", limits=Limits(max_total_bytes=100))
    assert [d.code for d in total] == ["file-too-large"]


def test_symbolic_links(repo: Repo) -> None:
    (repo.root / "spec" / "link.yaml").symlink_to("mlplane.yaml")
    repo.write("elsewhere.yaml", "a: 1\n")
    (repo.root / "spec" / "out.yaml").symlink_to("../elsewhere.yaml")
    repo.commit("links")
    found, diagnostics = read("HEAD")
    assert [d.code for d in diagnostics] == ["path-outside-root"]
    (repo.root / "spec" / "out.yaml").unlink()
    repo.commit("inside only")
    found, diagnostics = read("HEAD")
    assert found.document is not None  # the link was followed, as in the working tree:
    here = Diagnostics()
    load_spec(Path("spec"), here)
    assert [d.one_line() for d in diagnostics] == [d.one_line() for d in here]
    assert "duplicate-name" in {d.code for d in diagnostics}


def test_a_base_file_name_that_is_not_utf8_is_a_located_error(repo: Repo) -> None:
    """At the base as in the working tree: a spec file whose name is not UTF-8 is refused with
    its name escaped (a lone surrogate would break every output format), never exit 3."""
    raw = os.path.join(os.fsencode(repo.root / "spec"), b"bad-\xff.yaml")
    with open(raw, "wb") as handle:
        handle.write(b"a: 1\n")
    repo.commit("latin-1 name")
    os.remove(raw)
    found, diagnostics = read("HEAD")
    assert found.document is None
    problems = [d for d in diagnostics if d.code == "not-utf8"]
    assert len(problems) == 1, [d.one_line() for d in diagnostics]
    assert problems[0].location is not None
    assert "\\u{DCFF}" in problems[0].location.file
    problems[0].one_line().encode("utf-8")  # printable in every format
    result = CliRunner().invoke(
        cli, ["plan", "spec", "--env", "dev", "--base", "HEAD", "--format", "json"]
    )
    assert result.exit_code == 0, result.output  # a base that fails to compile: all-create
    assert "does not compile" in json.loads(result.output)["warnings"][0]


def test_working_tree_and_index_are_untouched(repo: Repo) -> None:
    repo.edit("spec/mlplane.yaml", "objective: 99.9", "objective: 99.5")
    repo.write("spec/draft.yaml", "draft: true\n")
    index = repo.root / ".git" / "index"
    status = repo.git("status", "--porcelain")  # settles the index's stat cache first
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    tree = {p: p.read_bytes() for p in (repo.root / "spec").iterdir()}
    result = CliRunner().invoke(cli, ["plan", "spec", "--env", "dev", "--base", "HEAD"])
    assert result.exit_code in (0, 1)
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    assert repo.git("status", "--porcelain") == status
    assert {p: p.read_bytes() for p in (repo.root / "spec").iterdir()} == tree


def test_repository_without_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=fresh, check=True)
    (fresh / "mlplane.yaml").write_text(BASE)
    monkeypatch.chdir(fresh)
    found, diagnostics = read("HEAD", ".")
    assert found.status == "failed"
    assert "no commit yet; use --base none" in diagnostics.items[0].message
