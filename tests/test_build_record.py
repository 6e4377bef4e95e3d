"""Build records (``compiler/build/record.py``): a build that would change nothing is not done
again, and says exactly what a full build says; anything it read or wrote that changed, a
damaged record, a failed build or ``MLPLANE_NO_CACHE`` means a full build."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.build import environments, record
from mlplane.compiler.build.cache import DISABLE_VARIABLE
from mlplane.compiler.build.outputs import BuildResult, build_many
from mlplane.compiler.build.pipeline import CompileResult
from mlplane.compiler.build.report import report_json_many, report_text_many, status
from mlplane.compiler.build.writer import UnsafePathError, read_tree
from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import sealed
from mlplane.compiler.core.diagnostics import Severity, code_info
from mlplane.compiler.core.source import DEFAULT_LIMITS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fraud-scoring"
TODAY = date(2026, 1, 15)


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of an example with Rego policies and warnings, its own cache home, and the
    working directory beside it (diagnostics name files from there)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(DISABLE_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(EXAMPLE, tmp_path / "spec")
    (tmp_path / "spec" / "policies" / "notes.rego").write_text(WARNS, encoding="utf-8")
    with (tmp_path / "spec" / "mlplane.yaml").open("a", encoding="utf-8") as stream:
        stream.write(POLICIES)
    return Path("spec")


WARNS = """package mlplane.record_notes

import rego.v1

warn contains {"msg": "every build reports this", "path": ["metadata", "name"]} if true
"""
POLICIES = """policies:
  rego: [policies/no-public-pii.rego, policies/notes.rego]
"""


def _counted(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[int]:
    """One item per call of ``module.compile_spec`` from now on."""
    calls: list[int] = []
    real = module.compile_spec

    def counted(*args: Any, **kwargs: Any) -> CompileResult:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "compile_spec", counted)
    return calls


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the compiles the builds run (one per full build)."""
    return _counted(monkeypatch, environments)


def run(
    spec: Path, check: bool = False, today: date = TODAY, record_: bool = True, **kwargs: Any
) -> tuple[CompileResult, list[BuildResult]]:
    return build_many(
        spec,
        kwargs.get("environments"),
        kwargs.get("out_of", lambda env: Path("out") / env),
        check,
        policies=True,
        today=today,
        record=record_,
    )


def reports(built: tuple[CompileResult, list[BuildResult]], check: bool = False) -> list[str]:
    compiled, results = built
    return [
        report_text_many(compiled, results),
        report_json_many(compiled, results, check),
        *(status(result) for result in results),
    ]


def test_an_unchanged_build_is_replayed_and_reports_what_a_full_build_reports(
    spec: Path, compiles: list[int]
) -> None:
    first = run(spec)
    assert first[0].ok and len(compiles) == 1
    codes = {d.code for d in first[0].sorted_diagnostics()}
    assert "rego.record-notes" in codes  # a warning of a policy file: replayed too
    assert first[0].waived.items  # as the waived findings
    replayed = run(spec)
    assert len(compiles) == 1  # nothing compiled
    full = run(spec, record_=False)
    assert len(compiles) == 2
    assert reports(replayed) == reports(full)
    for got, want in zip(replayed[1], full[1], strict=True):
        assert (got.environment, got.out_dir, got.files) == (
            want.environment,
            want.out_dir,
            want.files,
        )
        assert got.written == want.written == ()
    checked, full_check = run(spec, check=True), run(spec, check=True, record_=False)
    assert len(compiles) == 3
    assert reports(checked, check=True) == reports(full_check, check=True)
    assert all(status(result) == "current" for result in checked[1])


def test_the_cli_build_replays(spec: Path, compiles: list[int]) -> None:
    runner = CliRunner()
    arguments = ["build", str(spec), "--all-envs", "--out", "out"]
    first = runner.invoke(cli, arguments)
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, arguments)
    assert again.exit_code == 0, again.output
    check = runner.invoke(cli, [*arguments, "--check"])
    assert check.exit_code == 0, check.output
    assert len(compiles) == 1
    assert "wrote 0 files to out/dev" in again.output
    assert "out/dev is up to date" in check.output


def _edit_spec(spec: Path) -> None:
    path = spec / "mlplane.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# a comment\n", encoding="utf-8")


def _edit_policy(spec: Path) -> None:
    path = spec / "policies" / "no-public-pii.rego"
    path.write_text(path.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")


def _add_spec_file(spec: Path) -> None:
    (spec / "more.yaml").write_text("slas: {}\n", encoding="utf-8")


def _hand_edit(spec: Path) -> None:
    path = Path("out/dev/manifests/README.md")
    path.write_text(path.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")


def _remove_output(spec: Path) -> None:
    Path("out/prod/monitoring/rules.yaml").unlink()


def _extra_output(spec: Path) -> None:
    Path("out/dev/notes.txt").write_text("mine\n", encoding="utf-8")


def _special_output(spec: Path) -> None:
    Path("out/dev/link").symlink_to("resources.json")


CHANGES: dict[str, Callable[[Path], None]] = {
    "spec file edited": _edit_spec,
    "policy file edited": _edit_policy,
    "spec file added": _add_spec_file,
    "output hand-edited": _hand_edit,
    "output removed": _remove_output,
    "output added": _extra_output,
    "output link added": _special_output,
}
REFUSED = {"output added", "output link added"}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
@pytest.mark.parametrize("check", [False, True], ids=["build", "check"])
def test_a_change_to_what_the_build_read_or_wrote_means_a_full_build(
    spec: Path, compiles: list[int], change: str, check: bool
) -> None:
    run(spec)
    CHANGES[change](spec)
    if change in REFUSED and not check:  # a build refuses to replace them, recorded or not
        for record_ in (True, False):
            with pytest.raises(UnsafePathError, match="refusing to replace"):
                run(spec, record_=record_)
        return
    after = run(spec, check=check)
    assert len(compiles) == 2
    if check:  # what a full check finds
        assert reports(after, check) == reports(run(spec, check=True, record_=False), check)
        return
    fresh = run(spec, record_=False, out_of=lambda env: Path("fresh") / env)
    assert after[0].sorted_diagnostics() == fresh[0].sorted_diagnostics()
    for result in after[1]:  # the output as a build from nothing writes it
        assert read_tree(result.out_dir) == read_tree(Path("fresh") / result.environment)


def test_another_day_another_environment_list_or_another_output_is_not_replayed(
    spec: Path, compiles: list[int]
) -> None:
    run(spec)
    run(spec, today=date(2026, 1, 16))
    assert len(compiles) == 2
    run(spec, today=date(2026, 1, 16))
    assert len(compiles) == 2
    run(spec, environments=["dev"])
    run(spec, environments=["dev"], out_of=lambda env: Path("elsewhere") / env)
    assert len(compiles) == 4


def test_nothing_is_replayed_without_the_cache(
    spec: Path, compiles: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DISABLE_VARIABLE, "1")
    run(spec)
    run(spec)
    assert len(compiles) == 2
    assert not (Path("xdg") / "mlplane" / "build-records").exists()


def _records() -> list[Path]:
    return sorted((Path("xdg") / "mlplane" / "build-records").glob(f"*{record.SUFFIX}"))


@pytest.mark.parametrize("damage", ["flipped", "truncated", "planted"])
def test_a_damaged_or_planted_record_is_ignored(
    spec: Path, compiles: list[int], damage: str
) -> None:
    run(spec)
    [path] = _records()
    data = bytearray(path.read_bytes())
    if damage == "flipped":
        data[-3] ^= 0x01
    elif damage == "truncated":
        del data[len(data) // 2 :]
    else:  # the record still matches everything, but another secret sealed it (copied in)
        key = Path("xdg") / "mlplane" / sealed.KEY_FILE
        key.write_text("ab" * 32 + "\n", encoding="ascii")
        key.chmod(0o600)
    path.write_bytes(bytes(data))
    after = run(spec)
    assert len(compiles) == 2
    assert after[0].ok


def test_a_failed_build_or_a_stale_check_is_not_recorded(spec: Path, compiles: list[int]) -> None:
    run(spec, check=True)  # no output yet: every file missing
    assert _records() == []
    path = spec / "mlplane.yaml"
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("models:", "models:\n  broken: 1", 1), encoding="utf-8")
    failed = run(spec)
    assert not failed[0].ok and _records() == []
    path.write_text(good, encoding="utf-8")
    run(spec)
    assert len(_records()) == 1


def test_a_spec_changed_while_it_compiles_is_not_recorded(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = environments.compile_spec

    def racing(*args: Any, **kwargs: Any) -> CompileResult:
        _edit_spec(spec)  # after the build read the spec for its record, before the compile
        return real(*args, **kwargs)

    monkeypatch.setattr(environments, "compile_spec", racing)
    run(spec)
    assert _records() == []


def test_the_record_names_what_the_build_read_and_wrote(spec: Path) -> None:
    run(spec)
    found = record.Records.open()
    assert found is not None
    spec_read = record.read_spec(spec, DEFAULT_LIMITS)
    assert spec_read is not None
    call = record.Call(spec, None, True, TODAY, DEFAULT_LIMITS)
    recorded = found.find(call, spec_read)
    assert recorded is not None
    for output in recorded.outputs:
        tree = read_tree(Path("out") / output.environment)
        assert set(output.digests) == set(tree)
        manifest = json.loads(tree["manifest.json"])
        listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
        assert {p: d for p, d in output.digests.items() if p != "manifest.json"} == listed
    assert any(d.severity == Severity.WARNING for d in recorded.diagnostics)


def test_a_replayed_code_is_registered_as_recorded() -> None:
    code = "mlplane.record-test-policy"
    assert record._known_code(code, "an organisation policy written in Rego", Severity.ERROR, False)
    assert code_info(code).summary == "an organisation policy written in Rego"
    assert record._known_code(code, "an organisation policy written in Rego", Severity.ERROR, False)
    assert not record._known_code(code, "another summary", Severity.ERROR, False)


def test_output_digests_require_the_manifest_to_list_every_other_file() -> None:
    manifest = json.dumps({"files": [{"path": "a", "sha256": "1" * 64}]}).encode()
    assert record.output_digests({"a": b"x", "manifest.json": manifest}, "manifest.json") == {
        "a": "1" * 64,
        "manifest.json": hashlib.sha256(manifest).hexdigest(),
    }
    assert (
        record.output_digests({"a": b"", "b": b"", "manifest.json": manifest}, "manifest.json")
        is None
    )
    assert record.output_digests({"a": b""}, "manifest.json") is None


@pytest.fixture
def validate_compiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the compiles ``mlplane validate`` runs."""
    return _counted(monkeypatch, record)


def _validate(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", *arguments])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "options", [(), ("--format", "json"), ("--format", "sarif"), ("--strict",)], ids=str
)
def test_an_unchanged_validate_is_replayed_with_the_same_output(
    spec: Path,
    validate_compiles: list[int],
    monkeypatch: pytest.MonkeyPatch,
    options: tuple[str, ...],
) -> None:
    arguments = (str(spec), "--today", TODAY.isoformat(), *options)
    first = _validate(*arguments)
    assert len(validate_compiles) == 1
    assert _validate(*arguments) == first
    assert len(validate_compiles) == 1
    monkeypatch.setenv(DISABLE_VARIABLE, "1")
    assert _validate(*arguments) == first  # what a validate without records prints
    assert len(validate_compiles) == 2
    assert "every build reports this" in first[1]


def test_a_validate_with_errors_is_not_recorded(spec: Path, validate_compiles: list[int]) -> None:
    path = spec / "mlplane.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("models:", "models:\n  broken: 1", 1))
    first = _validate(str(spec))
    assert first[0] == 1 and "broken" in first[1]
    assert _validate(str(spec)) == first
    assert len(validate_compiles) == 2 and _records() == []


def test_a_policy_directory_changed_means_a_full_validate(
    spec: Path, validate_compiles: list[int]
) -> None:
    org = Path("org")
    org.mkdir()
    (org / "a.rego").write_text(WARNS.replace("record_notes", "org_a"), encoding="utf-8")
    arguments = (str(spec), "--policy", str(org))
    first = _validate(*arguments)
    assert "rego.org-a" in first[1]
    assert _validate(*arguments) == first and len(validate_compiles) == 1
    (org / "b.rego").write_text(WARNS.replace("record_notes", "org_b"), encoding="utf-8")
    added = _validate(*arguments)
    assert len(validate_compiles) == 2 and "rego.org-b" in added[1]
    (org / "b.rego").write_text(WARNS.replace("record_notes", "org_c"), encoding="utf-8")
    edited = _validate(*arguments)
    assert len(validate_compiles) == 3 and "rego.org-c" in edited[1]
    assert _validate(str(spec)) != edited and len(validate_compiles) == 4  # without --policy


def test_an_unknown_environment_is_a_usage_error_and_not_recorded(
    spec: Path, validate_compiles: list[int]
) -> None:
    for _ in range(2):
        code, output = _validate(str(spec), "--env", "nowhere")
        assert code == 2 and "nowhere" in output
    assert len(validate_compiles) == 2
    assert _records() == []


def test_a_linked_records_directory_turns_records_off(
    spec: Path, compiles: list[int], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (Path("xdg") / "mlplane").mkdir(parents=True)
    (Path("xdg") / "mlplane" / "build-records").symlink_to(elsewhere)
    run(spec)
    run(spec)
    assert len(compiles) == 2
    assert list(elsewhere.iterdir()) == []


def _step(kind: str, check: bool = False) -> tuple[list[str], dict[str, dict[str, bytes]]]:
    """A build (or check) here, as text and JSON reports with statuses, and the output trees."""
    built = run(Path("spec"), check=check, record_=kind == "recorded")
    trees = {r.environment: read_tree(r.out_dir) for r in built[1]}
    return reports(built, check), trees


def _mutate(action: str, chooser: random.Random) -> None:
    """One of the changes a user makes between builds, in the working directory."""
    if action == "comment":
        _edit_spec(Path("spec"))
    elif action == "replicas":
        path = Path("spec/mlplane.yaml")
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("max: ", f"max: {chooser.randint(4, 9)}", 1), encoding="utf-8")
    elif action == "policy":
        _edit_policy(Path("spec"))
    elif action == "hand-edit" and Path("out/dev/manifests/README.md").exists():
        _hand_edit(Path("spec"))
    elif action == "remove" and Path("out/prod/monitoring/rules.yaml").exists():
        _remove_output(Path("spec"))


@pytest.mark.parametrize("seed", [1, 3, 9, 10])  # sequences with a build after no change
def test_any_sequence_of_changes_and_builds_gives_what_builds_without_records_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Two working directories go through the same changes and builds (and checks), one with
    records and one without: every report, status and output tree is the same."""
    chooser = random.Random(seed)
    homes = {kind: tmp_path / kind for kind in ("recorded", "plain")}
    for home in homes.values():
        shutil.copytree(EXAMPLE, home / "spec")
        (home / "spec" / "policies" / "notes.rego").write_text(WARNS, encoding="utf-8")
        with (home / "spec" / "mlplane.yaml").open("a", encoding="utf-8") as stream:
            stream.write(POLICIES)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    actions = ["build", "check", "build", "comment", "replicas", "policy", "hand-edit", "remove"]
    compiles = _counted(monkeypatch, environments)
    replayed = 0
    for _ in range(12):
        action, seed_of_change = chooser.choice(actions), chooser.random()
        steps = {}
        for kind, home in homes.items():
            monkeypatch.chdir(home)
            if kind == "plain":
                monkeypatch.setenv(DISABLE_VARIABLE, "1")
            else:
                monkeypatch.delenv(DISABLE_VARIABLE, raising=False)
            if action in ("build", "check"):
                before = len(compiles)
                steps[kind] = _step(kind, check=action == "check")
                replayed += len(compiles) == before
            else:
                _mutate(action, random.Random(seed_of_change))
        if steps:
            assert steps["recorded"] == steps["plain"], action
    assert replayed  # the sequence had builds with nothing changed since the last one
