"""Every example in ``examples/`` compiles cleanly and the CLI behaves on it.

The examples are discovered, not listed, so a new example is tested the day it is added and an
example cannot rot: it must compile with no diagnostics at all (warnings included) for every
environment, ``mlplane validate`` must accept it, and ``mlplane explain`` must print valid YAML
that agrees leaf by leaf with the validated spec, byte-identically from run to run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplane.compiler.build.pipeline import CompileResult, compile_spec, environment_names
from mlplane.targets.aws.settings import aws_of

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"
SCHEMA_FILE = REPO_ROOT / "schema" / "mlplane.v1.schema.json"
PINNED_TODAY = "2026-11-22"
"""Waivers in the examples expire; the tests evaluate them on a fixed day, not the clock's."""
FRAGMENT_SCHEMA_FILE = REPO_ROOT / "schema" / "mlplane.v1.fragment.schema.json"
SPEC_SUFFIXES = (".yaml", ".yml")
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(?P<target>\S+)$")
EXPLAINED_ENV = "prod"


def discover_examples() -> list[Path]:
    """Every directory of ``examples/`` (hidden ones excepted), sorted by name."""
    return sorted(
        path for path in EXAMPLES_DIR.iterdir() if path.is_dir() and not path.name.startswith(".")
    )


def spec_files(example: Path) -> list[Path]:
    """The spec files of an example, as the compiler discovers them."""
    return sorted(
        path
        for path in example.iterdir()
        if path.is_file() and path.suffix in SPEC_SUFFIXES and not path.name.startswith(".")
    )


EXAMPLES = discover_examples()


def cli_command() -> list[str]:
    """The installed ``mlplane`` entry point of this interpreter's environment."""
    script = Path(sys.executable).with_name("mlplane")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlplane"]


def run_cli(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess[str]:
    """Run ``mlplane ARGS`` from the repository root (so file names in output are relative)."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "NO_COLOR": "1"}
    env.pop("MLPLANE_DEBUG", None)
    return subprocess.run(
        [*cli_command(), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def relative(example: Path) -> str:
    return example.relative_to(REPO_ROOT).as_posix()


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, value) for every scalar and every empty container of a nested structure."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path, value


def lookup(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


# --- shared results (one compile and one explain per example and module) ---------------------


@pytest.fixture(scope="module", params=EXAMPLES, ids=[path.name for path in EXAMPLES])
def example(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


@pytest.fixture(scope="module")
def compiled(example: Path) -> CompileResult:
    return compile_spec(example)


@pytest.fixture(scope="module")
def explained(example: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("explain", relative(example), "--env", EXPLAINED_ENV, "--show-origin")


def test_examples_are_discovered() -> None:
    assert len(EXAMPLES) >= 3, f"expected at least three examples in {EXAMPLES_DIR.name}/"


# --- compiling ------------------------------------------------------------------------------


def test_compiles_without_any_diagnostic(compiled: CompileResult) -> None:
    shown = "\n".join(
        f"{d.location}: {d.severity}: {d.message} [{d.code}]" for d in compiled.sorted_diagnostics()
    )
    assert not compiled.sorted_diagnostics(), f"the example must compile silently:\n{shown}"


def test_builds_a_system_model_for_every_environment(compiled: CompileResult) -> None:
    assert compiled.document is not None
    names = environment_names(compiled.document)
    assert EXPLAINED_ENV in names, f"every example needs a {EXPLAINED_ENV!r} environment"
    assert sorted(compiled.systems) == names
    for name, system in compiled.systems.items():
        assert system.environment.name == name
        assert system.models, f"environment {name!r} has no models"


def test_production_environments_are_marked(compiled: CompileResult) -> None:
    prod = compiled.systems[EXPLAINED_ENV].environment
    assert prod.production
    assert prod.target in ("kubernetes", "aws")


def test_aws_environments_carry_their_settings(compiled: CompileResult) -> None:
    for system in compiled.systems.values():
        env = system.environment
        if env.target == "aws":
            assert aws_of(env).aws_region and aws_of(env).aws_account_id, env.name
            assert env.residency is not None, f"{env.name}: residency not derived from the region"
        else:
            assert aws_of(env).aws_region is None and aws_of(env).aws_account_id is None


# --- the command line -----------------------------------------------------------------------


def test_validate_exits_zero(example: Path) -> None:
    result = run_cli("validate", relative(example), "--today", PINNED_TODAY)
    assert result.returncode == 0, result.stdout + result.stderr
    before, summary, _ = result.stdout.partition("valid: ")
    assert summary, result.stdout
    # only notes come before the summary (a volume SageMaker gives no KMS key, say)
    heads = [line for line in before.splitlines() if line and not line.startswith(" ")]
    *notes, count = heads or ["0 errors, 0 warnings"]
    assert all(": info: " in line for line in notes), result.stdout
    assert count.startswith("0 errors, 0 warnings"), result.stdout
    assert ": warning: " not in result.stdout + result.stderr


def test_explain_exits_zero(explained: subprocess.CompletedProcess[str]) -> None:
    assert explained.returncode == 0, explained.stdout + explained.stderr
    assert explained.stderr == ""


def test_explain_marks_overrides(
    compiled: CompileResult, explained: subprocess.CompletedProcess[str]
) -> None:
    assert compiled.document is not None
    env = compiled.document.data["environments"][EXPLAINED_ENV]
    marked = [line for line in explained.stdout.splitlines() if line.endswith("(override)")]
    if env.get("overrides"):
        assert marked, f"{EXPLAINED_ENV} has overrides but explain marks no value as (override)"
    else:
        assert not marked, f"{EXPLAINED_ENV} has no overrides, yet explain marks:\n{marked}"


def test_explain_origins_name_the_example_files(
    example: Path, explained: subprocess.CompletedProcess[str]
) -> None:
    files = {relative(path) for path in spec_files(example)}
    origins = re.findall(r"  # (\S+):\d+(?: \(override\))?$", explained.stdout, re.MULTILINE)
    assert origins, "explain --show-origin printed no origins"
    assert set(origins) <= files
    assert str(REPO_ROOT) not in explained.stdout


def test_explain_output_matches_the_effective_spec(
    compiled: CompileResult, explained: subprocess.CompletedProcess[str]
) -> None:
    shown = yaml.safe_load(explained.stdout)
    assert isinstance(shown, dict)
    validated = compiled.effective[EXPLAINED_ENV].spec
    expected = validated.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert list(shown["environments"]) == [EXPLAINED_ENV]
    shown_leaves = dict(leaves(shown))
    for path, value in shown_leaves.items():
        truth = lookup(expected, path)
        assert truth == value and type(truth) is type(value), (path, value, truth)
    for path, value in leaves(expected):
        if value in ({}, []):
            continue  # empty defaults nobody wrote are left out on purpose
        if path[0] == "environments" and (path[1] != EXPLAINED_ENV or path[2] == "overrides"):
            continue  # other environments and overlays are already applied
        if path[:2] == ("ci", "environments") and path[2] != EXPLAINED_ENV:
            continue  # CI settings of the environments left out go with them
        assert path in shown_leaves, f"explain leaves out {path} = {value!r}"


@pytest.mark.slow
def test_explain_output_validates_again(
    explained: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    """The effective spec that explain prints is itself a valid spec (its documented promise)."""
    (tmp_path / "effective.yaml").write_text(explained.stdout, encoding="utf-8")
    checked = run_cli("validate", str(tmp_path / "effective.yaml"), "--today", PINNED_TODAY)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_explain_is_deterministic(
    example: Path, explained: subprocess.CompletedProcess[str]
) -> None:
    args = ("explain", relative(example), "--env", EXPLAINED_ENV, "--show-origin")
    again = run_cli(*args, hash_seed="4242")  # the shared run used PYTHONHASHSEED=0
    assert again.returncode == explained.returncode == 0, again.stderr
    assert again.stdout.encode() == explained.stdout.encode()


def test_every_file_references_the_schema(example: Path) -> None:
    for path in spec_files(example):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        match = SCHEMA_LINE.match(first)
        assert match, (
            f"{relative(path)}: the first line must be '# yaml-language-server: $schema=...'"
        )
        # a single-file spec uses the whole schema; each file of a multi-file spec the fragment one
        expected = SCHEMA_FILE if len(spec_files(example)) == 1 else FRAGMENT_SCHEMA_FILE
        assert (path.parent / match["target"]).resolve() == expected, match["target"]


# --- commands that do not need an example ---------------------------------------------------


@pytest.mark.slow
def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "churn-model"
    created = run_cli("init", str(target), "--owner", "growth-ml")
    assert created.returncode == 0, created.stdout + created.stderr
    spec = target / "mlplane.yaml"
    written = spec.read_bytes()
    assert SCHEMA_LINE.match(written.decode().splitlines()[0])

    checked = run_cli("validate", str(target))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    again = run_cli("init", str(target), "--owner", "growth-ml")
    assert again.returncode == 2, again.stdout + again.stderr
    assert "--force" in again.stderr
    assert spec.read_bytes() == written

    spec.write_text("# edited by hand\n", encoding="utf-8")
    forced = run_cli("init", str(target), "--owner", "growth-ml", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert spec.read_bytes() == written


def test_schema_command_prints_the_committed_schema() -> None:
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
