"""``mlplane build``: the output, its determinism, and the writer's guarantees.

docs/quality.md rows 21 (nothing written outside the output root), 31 (a failure half-way leaves
the output byte-identical), 32 (``--check`` detects stale and hand-edited output) and 33 (a
concurrent build fails fast on the lock), and §B "Whole output" (byte-identical across runs,
hash seeds, key order and working directories; no absolute paths or timestamps; a manifest).

Most tests use ``tests/fake_target.py`` so they do not depend on any real target's lowering; the
determinism test also runs the real ``kubernetes`` target on every example once it is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mlplane.compiler.build import outputs as build_module
from mlplane.compiler.build import writer
from mlplane.compiler.build.outputs import MANIFEST, RESOURCES, BuildError, build
from mlplane.compiler.build.writer import OutputLockedError, UnsafePathError, check_relative_path
from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import plugins
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.ir import System
from mlplane.compiler.core.provenance import header_line
from tests import fake_target
from tests.specs import CLEAN as BASE
from tests.specs import write_spec
from tests.test_examples import EXAMPLES

REPO_ROOT = Path(__file__).resolve().parent.parent
FAKE_SCRIPT = REPO_ROOT / "tests" / "fake_target.py"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_target.install(monkeypatch)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    directory = tmp_path / "spec"
    directory.mkdir()
    write_spec(directory, BASE)
    return directory


def snapshot(root: Path) -> dict[str, bytes]:
    """Every entry below ``root`` (directories too), never following links."""
    found: dict[str, bytes] = {}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            found[str(Path(directory, name).relative_to(root)) + "/"] = b""
        for name in files:
            path = Path(directory, name)
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def siblings(out: Path) -> list[str]:
    """What a build may leave next to its output: its lock, staging and set-aside trees."""
    names = (p.name for p in out.parent.iterdir())
    return sorted(n for n in names if n.startswith(f".{out.name}.") or n == f"{out.name}.lock")


# --- what a build writes ---------------------------------------------------------------------


def test_build_writes_every_file_with_a_manifest(fake: None, spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "dev"
    result = build(spec, "dev", out)
    assert result.ok and result.diagnostics.items == []
    files = snapshot(out)
    assert sorted(k for k in files if not k.endswith("/")) == list(result.files)
    assert {"pulumi/__main__.py", "pulumi/Pulumi.yaml", "pulumi/Pulumi.dev.yaml", RESOURCES} <= set(
        result.files
    )
    manifest = json.loads(files[MANIFEST])
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    assert listed == {
        p: hashlib.sha256(d).hexdigest()
        for p, d in files.items()
        if p not in (MANIFEST,) and not p.endswith("/")
    }
    assert [entry["path"] for entry in manifest["files"]] == sorted(listed)
    assert manifest["generator"] == {"name": "mlplane", "version": manifest["generator"]["version"]}
    assert "JSON files" in manifest["note"] and manifest["spec"] == ["mlplane.yaml"]
    for path, data in files.items():
        if path.endswith("/") or path.endswith(".json"):
            continue
        head = data.decode("utf-8").splitlines()[:3]
        assert any(manifest["header"] in line for line in head), path
    assert siblings(out) == [], "no lock, staging or set-aside directory is left behind"


def test_resources_json_is_the_canonical_graph(fake: None, spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    build(spec, "dev", out)
    document = json.loads((out / RESOURCES).read_text(encoding="utf-8"))
    assert document["target"] == "kubernetes" and document["environment"] == "dev"
    assert {r["origin"]["file"] for r in document["resources"]} == {"mlplane.yaml"}
    assert (out / RESOURCES).read_text(encoding="utf-8") == json.dumps(
        document, indent=2, sort_keys=True
    ) + "\n"


def test_missing_target_is_a_located_diagnostic(
    monkeypatch: pytest.MonkeyPatch, spec: Path, tmp_path: Path
) -> None:
    fake_target.install(monkeypatch, target=None)
    out = tmp_path / "dev"
    result = build(spec, "dev", out)
    [diagnostic] = result.diagnostics.items
    assert diagnostic.code == "target-unavailable"
    assert diagnostic.path == "environments.dev.target"
    assert diagnostic.location is not None
    assert (diagnostic.location.line, diagnostic.location.column) == (8, 5)
    assert not out.exists()


def test_spec_errors_write_nothing(fake: None, tmp_path: Path) -> None:
    directory = tmp_path / "bad"
    directory.mkdir()
    write_spec(directory, BASE.replace("replicas: {min: 2, max: 4}", "replica: 2"))
    out = tmp_path / "dev"
    result = CliRunner().invoke(cli, ["build", str(directory), "--env", "dev", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "unknown-field" in result.output and "nothing written" in result.output
    assert not out.exists()


def test_cli_lists_the_files_and_speaks_json(fake: None, spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    runner = CliRunner()
    text = runner.invoke(cli, ["build", str(spec), "--env", "dev", "--out", str(out)])
    assert text.exit_code == 0, text.output
    assert "  pulumi/__main__.py\n" in text.output and f"to {out.as_posix()}:" in text.output
    done = runner.invoke(
        cli, ["build", str(spec), "--env", "dev", "--out", str(out), "--check", "--format", "json"]
    )
    report = json.loads(done.output)
    assert done.exit_code == 0 and report["status"] == "current" and report["mode"] == "check"
    assert MANIFEST in report["files"] and report["findings"] == []
    unknown = runner.invoke(cli, ["build", str(spec), "--env", "staging", "--out", str(out)])
    assert unknown.exit_code == 2 and "staging" in unknown.output


def test_default_output_is_build_env(
    fake: None, spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["build", str(spec), "--env", "prod"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "build" / "prod" / "pulumi" / "Pulumi.prod.yaml").is_file()


# --- determinism (QUALITY §B "Whole output") --------------------------------------------------


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def shuffle_spec(source: Path, target: Path) -> None:
    """Copy a spec directory with every mapping's keys in a different order."""
    target.mkdir(parents=True)
    rng = random.Random(4)
    for path in sorted(source.glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        text = yaml.safe_dump(shuffled(data, rng), sort_keys=False, allow_unicode=True)
        (target / path.name).write_text(text, encoding="utf-8")


def run_build(command: list[str], cwd: Path, seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed, "NO_COLOR": "1"}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def without_origins(data: bytes) -> Any:
    document = json.loads(data)
    for resource in document["resources"]:
        resource.pop("origin")
    return document


def check_deterministic(
    prefix: list[str], spec: Path, env: str, tmp_path: Path
) -> dict[str, bytes]:
    """Build three times: another hash seed, working directory and path spelling must give the
    same bytes; a key-shuffled spec the same bytes except where origins (line numbers) appear."""
    work_a, work_b = tmp_path / "a", tmp_path / "b" / "deeper"
    work_a.mkdir()
    work_b.mkdir(parents=True)
    run_build(
        [*prefix, "build", os.path.relpath(spec, work_a), "--env", env, "--out", "o"], work_a, "0"
    )
    run_build(
        [*prefix, "build", str(spec), "--env", env, "--out", str(tmp_path / "o2")], work_b, "4242"
    )
    shuffle_spec(spec, tmp_path / "shuffled")
    run_build([*prefix, "build", "shuffled", "--env", env, "--out", "o3"], tmp_path, "77")
    first, second, third = (
        snapshot(work_a / "o"),
        snapshot(tmp_path / "o2"),
        snapshot(tmp_path / "o3"),
    )
    assert first == second
    assert set(first) == set(third)
    for path in first:
        if path not in (RESOURCES, MANIFEST):
            assert first[path] == third[path], f"{path} depends on the spec's key order"
    assert without_origins(first[RESOURCES]) == without_origins(third[RESOURCES])
    return first


def check_no_machine_paths(files: Mapping[str, bytes], tmp_path: Path) -> None:
    markers = {str(tmp_path), str(REPO_ROOT), str(Path.home()), str(Path(tmp_path).resolve())}
    for path, data in files.items():
        text = data.decode("utf-8")
        for marker in markers:
            assert marker not in text, f"{path} contains the machine path {marker}"


@pytest.mark.slow
def test_build_is_deterministic_with_the_fake_target(spec: Path, tmp_path: Path) -> None:
    files = check_deterministic([sys.executable, str(FAKE_SCRIPT)], spec, "dev", tmp_path)
    check_no_machine_paths(files, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("example", [e.name for e in EXAMPLES])
def test_example_builds_are_deterministic(example: str, tmp_path: Path) -> None:
    if "kubernetes" not in plugins.targets():
        pytest.skip("the kubernetes target is not installed yet (entry point mlplane.targets)")
    mlplane = Path(sys.executable).with_name("mlplane")
    files = check_deterministic([str(mlplane)], REPO_ROOT / "examples" / example, "dev", tmp_path)
    check_no_machine_paths(files, tmp_path)


# --- atomicity (QUALITY §A row 31) -------------------------------------------------------------


class BrokenEmitter:
    name = "zz-broken"

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        raise RuntimeError("emitter failed half-way")


def test_a_failing_emitter_leaves_the_output_byte_identical(
    monkeypatch: pytest.MonkeyPatch, spec: Path, tmp_path: Path
) -> None:
    fake_target.install(monkeypatch)
    out = tmp_path / "dev"
    build(spec, "dev", out)
    before = snapshot(out)
    write_spec(spec, BASE.replace("min: 2, max: 4", "min: 3, max: 4"))
    fake_target.install(monkeypatch, extra_emitters={"zz-broken": BrokenEmitter()})
    with pytest.raises(RuntimeError, match="half-way"):
        build(spec, "dev", out)
    assert snapshot(out) == before
    assert siblings(out) == []


@pytest.mark.parametrize("stage", ["write", "verify", "swap"])
def test_a_failing_write_leaves_the_output_byte_identical(
    fake: None, stage: str, spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "dev"
    build(spec, "dev", out)
    before = snapshot(out)
    write_spec(spec, BASE.replace("min: 2, max: 4", "min: 3, max: 4"))
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if stage != "swap" or calls["n"] == 2:
            raise OSError("disk full")
        return real_rename(*args, **kwargs)

    real_rename, real_write = os.rename, writer._write_file

    def write(root: Path, relative: str, data: bytes) -> None:
        if relative.startswith("pulumi/"):
            failing()
        real_write(root, relative, data)

    if stage == "write":
        monkeypatch.setattr(writer, "_write_file", write)
    elif stage == "verify":
        monkeypatch.setattr(writer, "_walk", lambda root: iter(()))
    else:
        monkeypatch.setattr(writer, "_exchange", lambda first, second: False)
        monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError):
        build(spec, "dev", out)
    monkeypatch.undo()
    assert snapshot(out) == before
    assert siblings(out) == []


def test_an_emitter_writing_a_file_twice_is_a_bug(
    monkeypatch: pytest.MonkeyPatch, spec: Path, tmp_path: Path
) -> None:
    class Clash:
        name = "clash"

        def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
            return {"pulumi/__main__.py": f"# {header_line(system)}\n"}

    fake_target.install(monkeypatch, extra_emitters={"clash": Clash()})
    with pytest.raises(BuildError, match="another producer"):
        build(spec, "dev", tmp_path / "dev")
    assert not (tmp_path / "dev").exists()


# --- --check (QUALITY §A row 32) ---------------------------------------------------------------


def check(spec: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["build", str(spec), "--env", "dev", "--out", str(out), "--check"]
    )
    return result.exit_code, result.output


def test_check_reports_current_stale_edited_missing_and_extra(
    fake: None, spec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dev"
    code, output = check(spec, out)
    assert code == 1 and "missing: pulumi/__main__.py" in output and not out.exists()
    count = len(build(spec, "dev", out).files)
    assert check(spec, out) == (0, f"{out.as_posix()} is up to date ({count} files)\n")
    program = out / "pulumi" / "__main__.py"
    program.write_text(program.read_text(encoding="utf-8") + "import os\n", encoding="utf-8")
    (out / "pulumi" / "requirements.txt").unlink()
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    edited = snapshot(out)
    code, output = check(spec, out)
    assert code == 1
    assert "hand-edited: pulumi/__main__.py" in output
    assert "missing: pulumi/requirements.txt" in output
    assert "extra: notes.txt" in output
    assert snapshot(out) == edited, "--check writes nothing"


def test_check_reports_stale_output_after_a_spec_change(
    fake: None, spec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dev"
    build(spec, "dev", out)
    write_spec(spec, BASE.replace("min: 2, max: 4", "min: 3, max: 4"))
    code, output = check(spec, out)
    assert code == 1
    assert "stale: resources.json" in output and "stale: pulumi/__main__.py" in output
    assert "hand-edited" not in output


def test_check_ignores_tool_directories(fake: None, spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    build(spec, "dev", out)
    (out / "pulumi" / "venv" / "bin").mkdir(parents=True)
    (out / "pulumi" / "venv" / "bin" / "python").symlink_to(sys.executable)
    (out / "pulumi" / "__pycache__").mkdir()
    assert check(spec, out)[0] == 0
    assert build(spec, "dev", out).ok, "a rebuild replaces Pulumi's venv instead of refusing it"


# --- the lock (QUALITY §A row 33) --------------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from mlplane.compiler.build.writer import output_lock
with output_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_concurrent_build_fails_fast_on_the_lock(fake: None, spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    build(spec, "dev", out)
    before = snapshot(out)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        with pytest.raises(OutputLockedError, match="another mlplane build"):
            build(spec, "dev", out)
        assert time.monotonic() - started < 5
        result = CliRunner().invoke(cli, ["build", str(spec), "--env", "dev", "--out", str(out)])
        assert result.exit_code == 1 and "another mlplane build is writing" in result.output
    finally:
        holder.communicate("\n", timeout=30)
    assert snapshot(out) == before
    assert build(spec, "dev", out).ok, "the lock is released when its holder ends"
    assert siblings(out) == []


@pytest.mark.slow
def test_two_build_processes_never_interleave(fake: None, spec: Path, tmp_path: Path) -> None:
    """Two real processes race: each either builds or fails fast on the lock; the output is whole."""
    out = tmp_path / "dev"
    command = [
        sys.executable,
        str(FAKE_SCRIPT),
        "build",
        str(spec),
        "--env",
        "dev",
        "--out",
        str(out),
    ]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [(p.wait(timeout=120), p.communicate()[0]) for p in processes]
    assert all(code == 0 or "another mlplane build" in text for code, text in outputs), outputs
    assert any(code == 0 for code, _ in outputs)
    assert check(spec, out)[0] == 0


# --- path safety (QUALITY §A row 21) -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "a\\b",
        "C:/x",
        "a//b",
        "./a",
        "a/",
        "",
        "a\x00b",
        "a\nb",
        "x/venv/y",
    ],
)
def test_unsafe_relative_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePathError):
        check_relative_path(path)


@pytest.mark.parametrize(
    "files",
    [{"A.txt": b"", "a.txt": b""}, {"a": b"", "a/b": b""}],
)
def test_colliding_paths_are_refused(files: dict[str, bytes]) -> None:
    with pytest.raises(UnsafePathError):
        writer.check_tree(files)


class TraversingTarget(fake_target.FakeTarget):
    def __init__(self, path: str) -> None:
        self.path = path

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        return {self.path: f"# {header_line(system)}\n"}


@pytest.mark.parametrize(
    "path", ["../../escaped.txt", "../escaped.txt", "/tmp/escaped-mlplane.txt"]
)
def test_an_emitted_path_outside_the_root_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, path: str, spec: Path, tmp_path: Path
) -> None:
    fake_target.install(monkeypatch, target=TraversingTarget(path))
    out = tmp_path / "a" / "b" / "dev"
    before = snapshot(tmp_path)
    with pytest.raises(UnsafePathError):
        build(spec, "dev", out)
    assert snapshot(tmp_path) == before
    assert not Path("/tmp/escaped-mlplane.txt").exists()


def test_a_symlinked_output_directory_is_refused(fake: None, spec: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "dev"
    out.symlink_to(elsewhere, target_is_directory=True)
    result = CliRunner().invoke(cli, ["build", str(spec), "--env", "dev", "--out", str(out)])
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert list(elsewhere.iterdir()) == [] and out.is_symlink()


def test_a_symlinked_parent_of_the_default_output_is_refused(
    fake: None, spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "build").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.chdir(work)
    result = CliRunner().invoke(cli, ["build", str(spec), "--env", "dev"])
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_inside_the_output_is_refused(fake: None, spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    build(spec, "dev", out)
    target = tmp_path / "secret.txt"
    target.write_text("keep\n", encoding="utf-8")
    (out / "pulumi" / "link").symlink_to(target)
    before = snapshot(out)
    with pytest.raises(UnsafePathError, match="symbolic links"):
        build(spec, "dev", out)
    assert snapshot(out) == before and target.read_text(encoding="utf-8") == "keep\n"
    code, output = check(spec, out)
    assert code == 1 and "not-a-file: pulumi/link" in output


def test_a_symlinked_lock_file_is_refused(fake: None, spec: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n", encoding="utf-8")
    (tmp_path / "dev.lock").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        build(spec, "dev", tmp_path / "dev")
    assert victim.read_text(encoding="utf-8") == "keep\n"


@pytest.mark.parametrize("foreign", ["not-ours", "with-manifest"])
def test_a_directory_with_foreign_files_is_never_replaced(
    fake: None, foreign: str, spec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dev"
    if foreign == "with-manifest":
        build(spec, "dev", out)
        (out / "pulumi" / ".mlplane" / "state").mkdir(parents=True)
        (out / "pulumi" / ".mlplane" / "state" / "stack.json").write_text("{}", encoding="utf-8")
    else:
        out.mkdir()
        (out / "thesis.tex").write_text("years of work\n", encoding="utf-8")
    before = snapshot(out)
    result = CliRunner().invoke(cli, ["build", str(spec), "--env", "dev", "--out", str(out)])
    assert result.exit_code == 2 and "refusing to replace" in result.output
    assert snapshot(out) == before


def test_build_module_names_no_target_package() -> None:
    """``compiler/`` finds targets and emitters through entry points, never by import."""
    source = Path(build_module.__file__).read_text(encoding="utf-8")
    assert "mlplane.targets" not in source


def test_a_staged_tree_links_what_is_unchanged_and_reads_back_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose bytes the destination holds is hard-linked, not written; a file written
    is read back, and one not written intact (here: the same size, another byte) fails the
    stage and leaves no staging directory behind."""
    out = tmp_path / "out"
    files = {"a.txt": b"one\n", "dir/b.txt": b"two\n"}
    writer.replace_tree(out, files)
    changed = {**files, "dir/b.txt": b"six\n", "dir/c.txt": b"new\n"}
    original = writer._write_file

    def damaged(root: Path, relative: str, data: bytes) -> None:
        original(root, relative, data[:-2] + b"?\n" if relative == "dir/c.txt" else data)

    monkeypatch.setattr(writer, "_write_file", damaged)
    with pytest.raises(OSError, match=r"dir/c\.txt was not written intact"):
        writer.stage_tree(out, changed)
    assert not list(tmp_path.glob(".out.tmp-*"))
    monkeypatch.setattr(writer, "_write_file", original)
    staged = writer.stage_tree(out, changed)
    assert staged.written == ("dir/b.txt", "dir/c.txt")
    assert (staged.path / "a.txt").stat().st_ino == (out / "a.txt").stat().st_ino
    assert writer.read_tree(staged.path) == changed
    writer.swap_in(staged.path, out)
    assert writer.read_tree(out) == changed
