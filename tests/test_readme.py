"""The README's console samples are what the commands they show print today.

Each ```` ```console ```` block of README.md is a sequence of ``$ mlplane ...`` commands, each
followed by its output. The test runs every command in a directory holding a copy of
``examples/`` and of the sample files in ``tests/readme/`` (``broken.yaml``), so the paths in
the output read as in the README, and compares. ``MLPLANE_ACCEPT=1`` rewrites the blocks with
what the commands print instead (review the diff: a sample that changes is a visible change).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlplane.compiler.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SAMPLES = Path(__file__).parent / "readme"
BLOCK = re.compile(r"^```console\n(.*?)^```$", re.S | re.M)


def commands(block: str) -> list[tuple[str, str]]:
    """(command, output) pairs of one console block; outputs without their trailing blank lines."""
    found: list[tuple[str, list[str]]] = []
    for line in block.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            assert found, f"output before any command in a console block: {line!r}"
            found[-1][1].append(line)
    return [(command, "\n".join(lines).rstrip("\n")) for command, lines in found]


def run(command: str) -> str:
    argv = shlex.split(command)
    assert argv[0] == "mlplane", f"a console sample runs mlplane only: {command!r}"
    result = CliRunner().invoke(cli, argv[1:], catch_exceptions=False)
    return result.output.rstrip("\n")


def render(pairs: list[tuple[str, str]]) -> str:
    return "\n\n".join(f"$ {command}\n{output}" for command, output in pairs) + "\n"


@pytest.fixture
def sample_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for sample in SAMPLES.iterdir():
        shutil.copy(sample, tmp_path / sample.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_console_samples_are_current(sample_dir: Path) -> None:
    text = README.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    assert blocks, "README.md has no console sample"
    rewritten, last, stale = [], 0, []
    for match in blocks:
        pairs = commands(match.group(1))
        actual = [(command, run(command)) for command, _ in pairs]
        stale += [
            command for (command, old), (_, new) in zip(pairs, actual, strict=True) if old != new
        ]
        rewritten += [text[last : match.start(1)], render(actual)]
        last = match.end(1)
    updated = "".join([*rewritten, text[last:]])
    if os.environ.get("MLPLANE_ACCEPT") == "1":
        README.write_text(updated, encoding="utf-8")
        return
    assert not stale, (
        f"README.md samples differ from what these commands print: {stale} "
        "(MLPLANE_ACCEPT=1 pytest tests/test_readme.py rewrites them)"
    )


def test_the_summary_counts_each_environment_after_its_overlays(sample_dir: Path) -> None:
    """fraud-scoring's prod-aws overlay adds a data source: the summary says so."""
    output = run("mlplane validate examples/fraud-scoring").split("\n")[0]
    assert "dev, edge, prod (production) with 1 model, 5 data sources and 5 SLAs" in output
    assert "prod-aws (production) with 1 model, 6 data sources and 5 SLAs" in output
