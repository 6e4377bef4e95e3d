"""Hostile files mlplane reads back, guarded outputs and internal errors turned into diagnostics.

A checkout can plant anything where mlplane reads its own files back: ``build/<env>/manifest.json``,
``.mlplane/applied/*.json``, a saved plan, a plan cache entry. Each is read by
``compiler/core/safe_read.py``: a symbolic link (to ``/dev/zero``) is not followed, a FIFO does
not hang the reader, size and JSON depth are bounded and the shape is checked, and every refusal
is a clear error naming the file with a registered code and exit 1, never an internal error
(exit 3). Also here: ``plan --out`` guarded like ``build --out``, ``explain --show-origin`` with
hostile file names, spec file names that are not UTF-8, symbolic link loops between spec files,
and a ``pulumi`` on PATH whose ``version`` fails.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import safe_read
from mlplane.compiler.plan.applied import AppliedRecord, RecordError, read_record, write_record
from mlplane.compiler.plan.json_format import SavedPlanError, load_saved
from mlplane.compiler.plan.lower import graph_digest, spec_hash
from tests.pulumi_sdk import require_pulumi_sdk
from tests.specs import BASE, CLEAN
from tests.test_plan import Repo, repo, target  # noqa: F401  (fixtures)

DEEP = b"[" * 100_000 + b"]" * 100_000
RECORD = Path(".mlplane") / "applied" / "demo-dev.json"


def invoke(*args: str) -> Result:
    """Run the CLI; an exception other than an exit is an internal error and fails the test."""
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"internal error: {result.exception!r}\n{result.output}")
    return result


def finishes(action: Callable[[], Any], seconds: float = 60) -> Any:
    """``action()``, failing the test instead of hanging when a FIFO would block it."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = action()
        except BaseException as error:  # reported below
            box["error"] = error

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the read blocked (a FIFO was opened for reading)"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def plant(path: Path, kind: str, content: bytes = b"") -> None:
    """Put a hostile file at ``path``: bytes, a link to /dev/zero, a FIFO or a directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_file():
        path.unlink()
    if kind == "bytes":
        path.write_bytes(content)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        raise ValueError(kind)


# --- the bounded reader ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "content", "problem"),
    [
        ("dev-zero", b"", "is a symbolic link"),
        ("fifo", b"", "is not a regular file"),
        ("directory", b"", "is not a regular file"),
        ("bytes", b"x" * 2000, "is larger than 1000 bytes"),
        ("bytes", DEEP, "nests 100000 levels deep; the limit is 128"),
        ("bytes", b"\xff{}", "is not UTF-8"),
        ("bytes", b"[NaN]", "is not valid JSON"),
        ("bytes", b"[1e999]", "is not valid JSON"),
        ("bytes", b"{", "is not valid JSON"),
        ("bytes", b"[" + b"1" * 5000 + b"]", "is not valid JSON"),
    ],
)
def test_the_reader_refuses_what_it_cannot_bound(
    tmp_path: Path, kind: str, content: bytes, problem: str
) -> None:
    path = tmp_path / "file.json"
    plant(path, kind, content)
    with pytest.raises(safe_read.ReadBackError, match=problem) as raised:
        finishes(lambda: safe_read.read_json(path, 1000 if "larger" in problem else 10**6))
    assert raised.value.name.endswith("file.json")


def test_the_reader_reads_regular_json_and_reports_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text('{"a": [1, {"b": "[[[[{{{"}], "c": "\\\\\\""}', encoding="utf-8")
    assert safe_read.read_json(path, 1000) == {"a": [1, {"b": "[[[[{{{"}], "c": '\\"'}
    with pytest.raises(FileNotFoundError):
        safe_read.read_json(tmp_path / "absent.json", 1000)


@pytest.mark.parametrize("size", [0, 1, 2**20 - 1, 2**20, 2**20 + 1, 3 * 2**20 + 7])
@pytest.mark.parametrize("stated", ["true", "zero", "stale", "over"])
def test_the_reader_reads_every_byte_up_to_its_limit(
    tmp_path: Path, size: int, stated: str
) -> None:
    """Whatever ``fstat`` said of the size (true; nothing, as in ``/proc``; less, the file grew
    since; more, it shrank), the chunks are the file's bytes up to ``limit + 1`` and no more."""
    content = os.urandom(size)
    path = tmp_path / "data"
    path.write_bytes(content)
    said = {"true": size, "zero": 0, "stale": size // 3, "over": size * 2 + 5}[stated]
    for limit in (size, size - 1, 2**20, 2 * size + 10):
        if limit < 0:
            continue
        handle = os.open(path, os.O_RDONLY)
        try:
            chunks = safe_read._chunks(handle, said, limit)
        finally:
            os.close(handle)
        assert b"".join(chunks) == content[: limit + 1]
    if size:
        assert safe_read.read_regular(path, size) == content
        with pytest.raises(safe_read.ReadBackError, match="is larger than"):
            safe_read.read_regular(path, size - 1)


def test_the_reader_reads_a_file_whose_size_says_nothing() -> None:
    status = Path("/proc/self/status")
    if not status.is_file():
        pytest.skip("no /proc on this system")
    assert os.stat(status).st_size == 0
    assert safe_read.read_regular(status, 2**20).startswith(b"Name:")


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["]]]]", "[[[[", "\\"[", "\\\\", [["x"]]]', 3),
        (b'[""""]', 1),
        (b'[[["unterminated', 3),
    ],
)
def test_json_depth_skips_strings(text: bytes, depth: int) -> None:
    assert safe_read.json_depth(text) == depth


def test_file_names_in_messages_are_escaped() -> None:
    assert safe_read.printable("a\x1b[31m\nb\u202e") == "a\\u{001B}[31m\\u{000A}b\\u{202E}"


# --- build/<env>/manifest.json ----------------------------------------------------------------------


@pytest.fixture
def built(repo: Repo) -> Path:  # noqa: F811
    """A current build of a spec that passes every policy (as ``mlplane build`` requires)."""
    repo.write("spec/mlplane.yaml", CLEAN)
    result = invoke("build", "spec", "--env", "dev")
    assert result.exit_code == 0, result.output
    return repo.root / "build" / "dev" / "manifest.json"


@pytest.mark.parametrize(
    ("kind", "content", "problem"),
    [
        ("bytes", DEEP, "nests 100000 levels deep"),
        ("dev-zero", b"", "is a symbolic link"),
        ("fifo", b"", "is not a regular file"),
        ("bytes", b"[]", "is not a manifest: the top level"),
        ("bytes", b"null", "is not a manifest"),
        (
            "bytes",
            b'{"generator": {"name": "mlplane"}, "files": [{"path": 1}]}',
            "is not a manifest: files.0.path",
        ),
    ],
)
def test_a_hostile_manifest_is_an_error_not_a_crash(
    built: Path, kind: str, content: bytes, problem: str
) -> None:
    plant(built, kind, content)
    checked = finishes(lambda: invoke("build", "spec", "--env", "dev", "--check"))
    assert checked.exit_code == 1, checked.output
    assert "manifest.json" in checked.output
    written = finishes(lambda: invoke("build", "spec", "--env", "dev"))
    assert written.exit_code == 1, written.output
    assert "build/dev/manifest.json: " + problem in written.output
    assert "[read-back-invalid]" in written.output


# --- .mlplane/applied/*.json ------------------------------------------------------------------------


def good_record(repo: Repo) -> dict[str, Any]:  # noqa: F811
    graph = json.loads(invoke("graph", "spec", "--env", "dev").output)
    files = {"mlplane.yaml": BASE}
    record = AppliedRecord("demo", "dev", None, spec_hash(files), graph_digest(graph), files, graph)
    write_record(repo.root / RECORD, record)
    return record.to_json()


def test_a_good_record_is_planned_against(repo: Repo) -> None:  # noqa: F811
    good_record(repo)
    result = invoke("plan", "spec", "--env", "dev", "--base", "applied", "--detailed-exitcode")
    assert result.exit_code == 0, result.output


def _with_graph(graph: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda document: {**document, "graph": graph}


def _with_resource(change: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    def edit(document: dict[str, Any]) -> Any:
        resources = [{**document["graph"]["resources"][0], **change}]
        return {**document, "graph": {**document["graph"], "resources": resources}}

    return edit


MALFORMED_RECORDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "graph []": _with_graph([]),
    "graph null": _with_graph(None),
    "graph string": _with_graph("resources"),
    "resources not a list": lambda d: {**d, "graph": {**d["graph"], "resources": 5}},
    "resource not an object": lambda d: {**d, "graph": {**d["graph"], "resources": [5]}},
    "name a number": _with_resource({"name": 1}),
    "inputs a number": _with_resource({"inputs": 3}),
    "origin line a string": _with_resource({"origin": {"path": "", "file": "f", "line": "1"}}),
    "dependsOn null": _with_resource({"dependsOn": None}),
    "specFiles values numbers": lambda d: {**d, "specFiles": {"mlplane.yaml": 1}},
    "commit a list": lambda d: {**d, "commit": ["x"]},
    "top level a list": lambda d: [d],
    "top level null": lambda d: None,
    "version a string": lambda d: {**d, "version": "1"},
}


@pytest.mark.parametrize("case", sorted(MALFORMED_RECORDS))
def test_a_malformed_applied_record_is_a_located_error(repo: Repo, case: str) -> None:  # noqa: F811
    document = MALFORMED_RECORDS[case](good_record(repo))
    (repo.root / RECORD).write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(RecordError, match=r"demo-dev\.json"):
        read_record(repo.root / RECORD)
    result = invoke("plan", "spec", "--env", "dev", "--base", "applied", "--format", "json")
    assert result.exit_code == 1, result.output
    diagnostics = json.loads(result.output)["diagnostics"]
    assert [d["code"] for d in diagnostics] == ["plan-file-invalid"]
    assert ".mlplane/applied/demo-dev.json" in diagnostics[0]["message"]


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory"])
def test_an_applied_record_that_is_no_regular_file_is_refused(repo: Repo, kind: str) -> None:  # noqa: F811
    plant(repo.root / RECORD, kind)
    result = finishes(lambda: invoke("plan", "spec", "--env", "dev", "--base", "applied"))
    assert result.exit_code == 1 and "[plan-file-invalid]" in result.output, result.output


def test_a_deep_applied_record_is_refused(repo: Repo) -> None:  # noqa: F811
    plant(repo.root / RECORD, "bytes", DEEP)
    result = invoke("plan", "spec", "--env", "dev", "--base", "applied")
    assert result.exit_code == 1 and "nests 100000 levels deep" in result.output, result.output


# --- saved plans (apply --plan) ---------------------------------------------------------------------


def good_plan(repo: Repo) -> dict[str, Any]:  # noqa: F811
    out = repo.root / "plan.json"
    result = invoke("plan", "spec", "--env", "dev", "--base", "none", "--out", str(out))
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert load_saved(out).system == "demo"
    return document


MALFORMED_PLANS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "head a list": lambda d: {**d, "head": []},
    "head commit a number": lambda d: {**d, "head": {**d["head"], "commit": 5}},
    "base graph an object": lambda d: {**d, "base": {**d["base"], "graphSha256": {}}},
    "changes a string": lambda d: {**d, "summary": {**d["summary"], "changes": "no"}},
    "system missing": lambda d: {k: v for k, v in d.items() if k != "system"},
    "summary null": lambda d: {**d, "summary": None},
    "top level a string": lambda d: "mlplane-plan",
}


@pytest.mark.parametrize("case", sorted(MALFORMED_PLANS))
def test_a_malformed_saved_plan_is_refused_before_anything_runs(
    repo: Repo,  # noqa: F811
    case: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlplane.compiler.deploy import engine

    monkeypatch.setattr(engine, "apply", _never)
    path = repo.root / "plan.json"
    path.write_text(json.dumps(MALFORMED_PLANS[case](good_plan(repo))), encoding="utf-8")
    with pytest.raises(SavedPlanError, match=r"plan\.json"):
        load_saved(path)
    result = invoke("apply", "spec", "--env", "dev", "--plan", str(path), "--yes")
    assert result.exit_code == 1, result.output
    assert "plan.json" in result.output and "[read-back-invalid]" in result.output


@pytest.mark.parametrize(
    ("kind", "content", "problem"),
    [
        ("bytes", DEEP, "nests 100000 levels deep"),
        ("fifo", b"", "is not a regular file"),
        ("bytes", b"\xff", "is not UTF-8"),
    ],
)
def test_a_hostile_saved_plan_is_refused(
    repo: Repo,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    content: bytes,
    problem: str,
) -> None:
    from mlplane.compiler.deploy import engine

    monkeypatch.setattr(engine, "apply", _never)
    path = repo.root / "plan.json"
    plant(path, kind, content)
    result = finishes(lambda: invoke("apply", "spec", "--env", "dev", "--plan", str(path)))
    assert result.exit_code == 1, result.output
    assert problem in result.output and "[read-back-invalid]" in result.output


def test_a_saved_plan_through_a_link_is_refused(
    repo: Repo,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlplane.compiler.deploy import engine

    monkeypatch.setattr(engine, "apply", _never)
    good_plan(repo)
    (repo.root / "link.json").symlink_to(repo.root / "plan.json")
    result = invoke("apply", "spec", "--env", "dev", "--plan", "link.json", "--yes")
    assert result.exit_code == 1 and "link.json: is a symbolic link" in result.output


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("nothing may run after a refused saved plan")


# --- plan cache entries -------------------------------------------------------------------------------


def test_a_fifo_cache_entry_does_not_hang_the_plan(
    repo: Repo,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    first = invoke("plan", "spec", "--env", "dev", "--format", "json")
    assert first.exit_code == 0, first.output
    entries = sorted((repo.root / ".mlplane" / "cache" / "plan").glob("*.entry"))
    assert entries
    for entry in entries:
        plant(entry, "fifo")
    again = finishes(lambda: invoke("plan", "spec", "--env", "dev", "--format", "json"))
    assert again.exit_code == 0 and again.output == first.output


# --- plan --out -----------------------------------------------------------------------------------


def test_plan_out_does_not_write_through_a_linked_directory(repo: Repo, tmp_path: Path) -> None:  # noqa: F811
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo.root / "plans").symlink_to(elsewhere)
    result = invoke("plan", "spec", "--env", "dev", "--out", "plans/plan.json")
    assert result.exit_code == 1 and "symbolic link" in result.output, result.output
    assert not list(elsewhere.iterdir())


def test_plan_out_creates_no_directories(repo: Repo) -> None:  # noqa: F811
    result = invoke("plan", "spec", "--env", "dev", "--out", "new/dir/plan.json")
    assert result.exit_code == 1 and "does not exist" in result.output, result.output
    assert not (repo.root / "new").exists()


def test_plan_out_does_not_write_through_a_linked_file(repo: Repo, tmp_path: Path) -> None:  # noqa: F811
    victim = tmp_path / "victim"
    victim.write_text("keep\n", encoding="utf-8")
    (repo.root / "plan.json").symlink_to(victim)
    result = invoke("plan", "spec", "--env", "dev", "--out", "plan.json")
    assert result.exit_code == 1 and "symbolic link" in result.output
    assert victim.read_text(encoding="utf-8") == "keep\n"


def test_plan_out_replaces_a_plan_atomically(repo: Repo) -> None:  # noqa: F811
    (repo.root / "plan.json").write_text("old\n", encoding="utf-8")
    result = invoke("plan", "spec", "--env", "dev", "--out", "plan.json")
    assert result.exit_code == 0, result.output
    assert load_saved(repo.root / "plan.json").environment == "dev"
    assert [p.name for p in repo.root.iterdir() if p.name.startswith(".plan.json")] == []


# --- explain --show-origin --------------------------------------------------------------------------


def test_explain_escapes_hostile_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec"
    spec.mkdir()
    name = "a\x1b[31m\nb\u202e.yaml"
    (spec / name).write_text(BASE, encoding="utf-8")
    result = invoke("explain", "spec", "--env", "dev", "--show-origin")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "# spec/a\\u{001B}[31m\\u{000A}b\\u{202E}.yaml:" in result.output
    plain = invoke("explain", "spec", "--env", "dev").output
    assert yaml.safe_load(result.output) == yaml.safe_load(plain)


# --- spec files: names that are not UTF-8, link loops -------------------------------------------


@pytest.fixture
def undecodable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if sys.platform == "darwin":
        pytest.skip("macOS file systems refuse names that are not UTF-8")
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / os.fsdecode(b"x\xff.yaml")).write_text(BASE, encoding="utf-8")
    return spec


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_a_spec_file_name_that_is_not_utf8_is_a_diagnostic(undecodable: Path, fmt: str) -> None:
    result = invoke("validate", "spec", "--format", fmt)
    assert result.exit_code == 1, result.output
    assert "not-utf8" in result.output and "DCFF" in result.output  # escaped, as the format does


def test_plan_of_a_spec_with_a_name_that_is_not_utf8(undecodable: Path) -> None:
    result = invoke("plan", "spec", "--env", "dev", "--base", "none")
    assert result.exit_code == 1 and "[not-utf8]" in result.output, result.output


def test_a_symbolic_link_loop_between_spec_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "mlplane.yaml").write_text(BASE, encoding="utf-8")
    (spec / "a.yaml").symlink_to("b.yaml")
    (spec / "b.yaml").symlink_to("a.yaml")
    result = invoke("validate", "spec")
    assert result.exit_code == 1, result.output
    assert (
        "spec/a.yaml:1:1: error: spec/a.yaml is a symbolic link that leads in a loop"
        in result.output
    )
    alone = invoke("validate", "spec/a.yaml")
    assert alone.exit_code == 1 and "[io-error]" in alone.output, alone.output


# --- a pulumi on PATH that does not work -----------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("echo boom >&2; exit 1", "failed with exit code 1"),
        ("echo not-a-version", "reported no usable version"),
    ],
)
def test_a_pulumi_whose_version_fails_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, problem: str
) -> None:
    require_pulumi_sdk("pulumi")
    from mlplane.compiler.deploy import engine
    from mlplane.compiler.deploy.stack import DeployError

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", raising=False)
    with pytest.raises(DeployError, match=problem) as raised:
        engine.require_pulumi()
    assert "[pulumi-unusable]" in str(raised.value) and raised.value.exit_code == 1
    monkeypatch.chdir(tmp_path)
    result = invoke("drift", str(tmp_path), "--env", "dev")
    assert result.exit_code == 1 and problem in result.output, result.output
