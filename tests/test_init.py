"""``mlplane init``: a repository safe by default (``.gitignore`` merged, idempotent), files
written with the user's umask, a schema modeline that resolves before anything is published,
aligned comments, and a name error that blames what the user typed."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlplane.compiler.cli.starter import (
    COMMENT_COLUMN,
    IGNORED,
    merged_gitignore,
    starter_spec,
    write_gitignore,
)
from mlplane.schema.export import SCHEMA_ID
from tests.test_policies import run_cli

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(?P<target>\S+)$")


def _init(directory: Path, *args: str) -> None:
    result = run_cli("init", str(directory), *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_writes_a_gitignore_for_build_outputs_and_local_state(tmp_path: Path) -> None:
    target = tmp_path / "imaging"
    _init(target)
    lines = (target / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert set(IGNORED) <= set(lines)


@pytest.mark.slow
def test_an_existing_gitignore_is_merged_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "imaging"
    target.mkdir()
    (target / ".gitignore").write_text("*.pyc\n/build\n", encoding="utf-8")
    _init(target)
    merged = (target / ".gitignore").read_text(encoding="utf-8")
    assert merged.startswith("*.pyc\n/build\n")
    entries = [line.strip("/") for line in merged.splitlines()]
    assert entries.count("build") == 1 and merged.endswith(".mlplane/\n")
    _init(target, "--force")
    assert (target / ".gitignore").read_text(encoding="utf-8") == merged
    assert not write_gitignore(target)


def test_merging_keeps_a_file_without_a_final_newline_intact() -> None:
    assert merged_gitignore("node_modules") == (
        "node_modules\n\n# mlplane: build outputs and local state (plan cache, applied records)\n"
        "build/\n.mlplane/\n"
    )
    assert merged_gitignore("build/\n.mlplane\n") is None


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_init_writes_with_the_users_umask(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "imaging"
    previous = os.umask(umask)
    try:
        _init(target)
    finally:
        os.umask(previous)
    for name in ("mlplane.yaml", ".gitignore", "mlplane.v1.schema.json"):
        mode = stat.S_IMODE((target / name).stat().st_mode)
        assert mode == 0o666 & ~umask, (name, oct(mode))


@pytest.mark.slow
def test_the_modeline_resolves_to_the_written_schema_as_yaml_language_server_does(
    tmp_path: Path,
) -> None:
    """yaml-language-server resolves a relative ``$schema`` against the spec file's directory;
    the file found there is the exported schema, and the starter validates against it."""
    target = tmp_path / "imaging"
    _init(target)
    spec = target / "mlplane.yaml"
    text = spec.read_text(encoding="utf-8")
    match = MODELINE.match(text.splitlines()[0])
    assert match is not None
    schema_uri = spec.resolve().parent.as_uri() + "/" + match["target"]
    schema_file = Path(schema_uri.removeprefix("file://"))
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["$id"] == SCHEMA_ID
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(text))
    printed = run_cli("schema")
    assert json.loads(printed.stdout) == schema


def test_schema_out_writes_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = run_cli("schema", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["$id"] == SCHEMA_ID


@pytest.mark.parametrize("name", ["ab", "a-system-name-of-forty-characters-exactly"])
def test_comments_are_aligned_on_one_column(name: str) -> None:
    columns = {
        line.index("  # ") + 2
        for line in starter_spec(name, "ml-platform").splitlines()
        if not line.startswith("#") and "  # " in line
    }
    assert len(columns) == 1
    assert columns.pop() >= COMMENT_COLUMN


def test_an_invalid_directory_name_blames_the_directory_and_suggests_a_name(
    tmp_path: Path,
) -> None:
    result = run_cli("init", str(tmp_path / "My_System"))
    assert result.returncode == 2
    assert "Invalid value for DIRECTORY" in result.stderr
    assert "--name my-system" in result.stderr
    assert "Invalid value for --name" not in result.stderr
    assert not (tmp_path / "My_System").exists()


def test_an_invalid_name_option_blames_the_option(tmp_path: Path) -> None:
    result = run_cli("init", str(tmp_path / "ok"), "--name", "My_System")
    assert result.returncode == 2
    assert "Invalid value for --name" in result.stderr
    assert "did you mean --name my-system?" in result.stderr
