"""No output of mlplane may carry a value the secret scanner flags.

Canary credentials are planted, one placement at a time and all at once, in an otherwise valid
two-file spec — as mapping keys at several depths and in an overlay, as label keys and label
values, as values of free-text and secret-named fields (numbers included), in URI userinfo and
query strings, and in a comment on a line that another diagnostic points at. Then every command
a pull request or a reviewer runs on it — ``validate`` in every format, ``explain`` (with and
without origins, YAML and JSON), ``plan`` (text, markdown, json, and ``--out``), ``build`` and
``graph`` — is run, and every byte it printed or wrote is searched for every canary, also in the
escaped spellings a renderer might use. A git base holding the canaries is planned against a
clean head as well, since ``plan`` summarises the diagnostics of a base that does not compile.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlplane.compiler.cli.main import cli
from tests.specs import CLEAN

# Built from pieces so that this file is not itself a credential to scanners of the repository.
GITHUB_TOKEN = "ghp_" + "Cn4ry" * 7 + "K"
AWS_KEY_ID = "AKIA" + "CANARY7Q2W3E4R5T"
SLACK_TOKEN = "xoxb-" + "4242-canary-slack-0042"
GOOGLE_KEY = "AIza" + "Sy" + "Canary_Google-Key0123456789abcdef"
RANDOM_TOKEN = "Zq8Lm2Xv7Bn4Kw9Ty1Hp6Ds3Fg5Ja0EcR"
NUMERIC_PASSWORD = "918273645"
QUERY_SECRET = "Cq7QuerySecret42"
SIGNATURE = "c1gN4tur3Canary99"
USERINFO_PASSWORD = "Cu9UserinfoPass"
COMMENT_KEY = "sk_" + "live_" + "Canary0Comment1Stripe2Key"

CANARIES = (
    GITHUB_TOKEN,
    AWS_KEY_ID,
    SLACK_TOKEN,
    GOOGLE_KEY,
    RANDOM_TOKEN,
    NUMERIC_PASSWORD,
    QUERY_SECRET,
    SIGNATURE,
    USERINFO_PASSWORD,
    COMMENT_KEY,
)

MAIN, MODELS = "mlplane.yaml", "models.yaml"
_MODELS_AT = CLEAN.index("\nmodels:\n") + 1
_SLAS_AT = CLEAN.index("\nslas:\n") + 1
FILES = {
    MAIN: CLEAN[:_MODELS_AT] + CLEAN[_SLAS_AT:],
    MODELS: "apiVersion: mlplane.dev/v1\nkind: MLSystem\n" + CLEAN[_MODELS_AT:_SLAS_AT],
}

PLACEMENTS: dict[str, tuple[str, str, str]] = {
    # name: (file, text to replace, replacement)
    "unknown key": (MAIN, "  owner: ml-team\n", f"  owner: ml-team\n  {GITHUB_TOKEN}: x\n"),
    "label key": (
        MAIN,
        "  owner: ml-team\n",
        f"  owner: ml-team\n  labels:\n    {AWS_KEY_ID}: team\n",
    ),
    "label value in an overlay": (
        MAIN,
        "    overrides:\n",
        f"    overrides:\n      metadata:\n        labels:\n          team: {RANDOM_TOKEN}\n",
    ),
    "deep key in another file": (
        MODELS,
        "      resources:",
        f"      {SLACK_TOKEN}:\n        nested: 1\n      resources:",
    ),
    "key in an overlay": (
        MAIN,
        "            replicas: {min: 3, max: 9}\n",
        f"            replicas: {{min: 3, max: 9}}\n          '{GOOGLE_KEY}': on\n",
    ),
    "numeric password": (
        MODELS,
        "    inputs: [features]\n",
        f"    inputs: [features]\n    password: {NUMERIC_PASSWORD}\n",
    ),
    "query string": (
        MAIN,
        "  dev:\n    target: kubernetes\n",
        f"  dev:\n    target: kubernetes\n    state: s3://acme-state/ml?secretKey={QUERY_SECRET}\n",
    ),
    "signed url": (
        MAIN,
        "uri: kafka://broker:9092/events",
        f"uri: 'kafka://broker:9092/events?X-Amz-Date=20240101&x-amz-signature={SIGNATURE}'",
    ),
    "userinfo": (
        MAIN,
        "  prod:\n    target: kubernetes\n",
        f"  prod:\n    target: kubernetes\n    state: https://ci:{USERINFO_PASSWORD}@state.example.com/ml\n",
    ),
    "comment on a diagnosed line": (
        MODELS,
        "      replicas: {min: 2, max: 4}\n",
        f"      replicas: {{min: 2, max: 4}}\n      replica: 3  # {COMMENT_KEY}\n",
    ),
}


def _write(root: Path, names: list[str]) -> Path:
    spec = root / "spec"
    spec.mkdir(parents=True)
    files = dict(FILES)
    for name in names:
        file, old, new = PLACEMENTS[name]
        assert old in files[file], name
        files[file] = files[file].replace(old, new, 1)
    for file, text in files.items():
        (spec / file).write_text(text, encoding="utf-8")
    return spec


def _spellings(value: str) -> set[str]:
    return {value, json.dumps(value)[1:-1], repr(value)[1:-1], value.replace("_", "\\_")}


def assert_clean(what: str, data: bytes) -> None:
    for canary in CANARIES:
        for spelling in _spellings(canary):
            assert spelling.encode() not in data, f"{canary!r} leaked by {what}"


def _files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


COMMANDS: dict[str, list[str]] = {
    "validate text": ["validate", "spec"],
    "validate json": ["validate", "spec", "--format", "json"],
    "validate sarif": ["validate", "spec", "--format", "sarif"],
    "validate github": ["validate", "spec", "--format", "github"],
    "explain": ["explain", "spec", "--env", "prod"],
    "explain origins json": ["explain", "spec", "--env", "prod", "--show-origin", "--format", "json"],
    "plan text": ["plan", "spec", "--env", "prod", "--base", "none"],
    "plan markdown": ["plan", "spec", "--env", "prod", "--base", "none", "--format", "markdown"],
    "plan json": [
        "plan", "spec", "--env", "prod", "--base", "none", "--format", "json", "--out", "out/plan.json",
    ],
    "build": ["build", "spec", "--env", "prod", "--out", "out/build"],
    "graph": ["graph", "spec", "--env", "dev"],
}  # fmt: skip


def _run_everything(root: Path) -> dict[str, int]:
    """Every command on the spec under ``root``; every byte printed or written is checked."""
    exits: dict[str, int] = {}
    (root / "out").mkdir(exist_ok=True)  # plan --out creates no directories (like build --out)
    for name, args in COMMANDS.items():
        result = CliRunner().invoke(cli, args)
        assert not isinstance(result.exception, AssertionError | KeyError | TypeError), name
        assert_clean(name, result.stdout_bytes + result.stderr_bytes)
        exits[name] = result.exit_code
    for path in _files_under(root / "out"):
        assert_clean(str(path.relative_to(root)), path.read_bytes())
    return exits


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CI", raising=False)
    return tmp_path


def test_the_clean_spec_passes_through_every_command(here: Path) -> None:
    """The harness sees real output: without canaries every command succeeds and writes files."""
    _write(here, [])
    exits = _run_everything(here)
    assert exits == dict.fromkeys(COMMANDS, 0), exits
    assert any(_files_under(here / "out" / "build"))


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_one_canary_leaks_nowhere(here: Path, placement: str) -> None:
    _write(here, [placement])
    exits = _run_everything(here)
    assert exits["validate text"] == 1 and exits["build"] != 0 and exits["plan text"] != 0
    validate = CliRunner().invoke(cli, ["validate", "spec", "--format", "json"])
    codes = {item["code"] for item in json.loads(validate.stdout)["diagnostics"]}
    assert "inline-secret" in codes or placement == "comment on a diagnosed line", codes


def test_every_canary_at_once_leaks_nowhere(here: Path) -> None:
    _write(here, sorted(PLACEMENTS))
    _run_everything(here)
    assert not (here / "out" / "build").exists()


def test_a_base_holding_canaries_leaks_nowhere(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``plan`` shows the diagnostics of a base that does not compile: masked, like the head's."""
    for key, value in {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(key, value)
    spec = _write(here, sorted(PLACEMENTS))
    git = ["git", "-C", str(here)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "spec"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    for file, text in FILES.items():
        (spec / file).write_text(text, encoding="utf-8")
    for fmt in ("text", "markdown", "json"):
        result = CliRunner().invoke(cli, ["plan", "spec", "--env", "prod", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert_clean(f"plan {fmt} of a failing base", result.stdout_bytes + result.stderr_bytes)
        assert "does not compile" in result.stdout or "inline-secret" in result.stdout
    assert "inline-secret" in result.stdout  # the json plan lists the base's diagnostics
