"""One exit-code table for every command (``compiler/core/exits.py``), checked by running them.

Each row runs a command the way a user or CI would get it wrong (a typo'd environment, an
unknown option, a missing ``--env``, a spec that is not there) and asserts the code the table
documents. The rule that matters most: where 2 reports a result (``plan --detailed-exitcode``:
changes; ``drift``: drift), a usage error exits 1, so CI never reads a typo as "drift found".
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import exits
from tests.specs import CLEAN
from tests.test_plan import Repo, repo, target  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
USAGE, FAILED = "usage", "failed"

CASES: list[tuple[str, list[str], str]] = [
    ("validate", ["validate", "spec", "--env", "prdo"], USAGE),
    ("validate", ["validate", "spec", "--no-such-option"], USAGE),
    ("validate", ["validate", "spec", "--format", "yaml"], USAGE),
    ("validate", ["validate", "missing"], FAILED),
    ("explain", ["explain", "spec", "--env", "prdo"], USAGE),
    ("explain", ["explain", "spec"], USAGE),
    ("explain", ["explain", "missing", "--env", "dev"], FAILED),
    ("build", ["build", "spec", "--env", "prdo"], USAGE),
    ("build", ["build", "spec", "--env", "dev", "--no-such-option"], USAGE),
    ("build", ["build", "missing", "--env", "dev"], FAILED),
    ("ci", ["ci", "spec", "--provider", "jenkins"], USAGE),
    ("ci", ["ci", "missing"], FAILED),
    ("plan", ["plan", "spec", "--env", "prdo"], USAGE),
    ("plan", ["plan", "spec", "--env", "prdo", "--detailed-exitcode"], USAGE),
    ("plan", ["plan", "spec"], USAGE),
    ("plan", ["plan", "spec", "--detailed-exitcode"], USAGE),
    ("plan", ["plan", "spec", "--env", "dev", "--format", "yaml"], USAGE),
    ("plan", ["plan", "spec", "--env", "dev", "--detailed-exitcode", "--bad"], USAGE),
    ("plan", ["plan", "missing", "--env", "dev"], FAILED),
    ("plan", ["plan", "missing", "--env", "dev", "--detailed-exitcode"], FAILED),
    ("apply", ["apply", "spec", "--env", "prdo", "--yes"], USAGE),
    ("apply", ["apply", "spec", "--yes"], USAGE),
    ("apply", ["apply", "spec", "--env", "dev", "--plan", "absent.json"], USAGE),
    ("destroy", ["destroy", "spec", "--env", "prdo", "--yes"], USAGE),
    ("destroy", ["destroy", "spec", "--env", "dev", "--no-such-option"], USAGE),
    ("drift", ["drift", "spec", "--env", "prdo"], USAGE),
    ("drift", ["drift", "spec"], USAGE),
    ("drift", ["drift", "spec", "--env", "dev", "--yes"], USAGE),
    ("graph", ["graph", "spec", "--env", "prdo"], USAGE),
    ("graph", ["graph", "spec", "--env", "dev", "--format", "svg"], USAGE),
    ("graph", ["graph", "missing", "--env", "dev"], FAILED),
    ("report", ["report", "spec", "--env", "prdo"], USAGE),
    ("report", ["report", "spec", "--format", "pdf"], USAGE),
    ("report", ["report", "missing"], FAILED),
    ("policies", ["policies", "explain", "no.such-rule"], USAGE),
    ("schema", ["schema", "--no-such-option"], USAGE),
    ("init", ["init", "new", "--name", "Not_A_Name"], USAGE),
]


def expected(command: str, args: list[str], outcome: str) -> int:
    if outcome == FAILED:
        return exits.FAILED
    return exits.usage_code(command, args)


@pytest.mark.parametrize(
    ("command", "args", "outcome"), CASES, ids=[" ".join(args) for _, args, _ in CASES]
)
def test_every_command_exits_with_the_documented_code(
    repo: Repo,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    args: list[str],
    outcome: str,
) -> None:
    from mlplane.compiler.deploy import engine

    repo.write("spec/mlplane.yaml", CLEAN)
    monkeypatch.setattr(engine, "require_pulumi", lambda: None)  # reach the environment check
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == expected(command, args, outcome), result.output


def test_a_usage_error_never_exits_2_where_2_is_a_result() -> None:
    for command, exits_of in exits.TABLE.items():
        if exits_of.result is not None:
            flag = (exits_of.result_flag,) if exits_of.result_flag else ()
            assert exits.usage_code(command, flag) == exits.FAILED, command
    assert exits.usage_code("drift") == exits.FAILED
    assert exits.usage_code("plan") == exits.USAGE
    assert exits.usage_code("plan", ["--detailed-exitcode"]) == exits.FAILED


def test_the_table_covers_every_command_and_click_agrees() -> None:
    assert set(exits.TABLE) == set(cli.commands)
    assert click.UsageError.exit_code == exits.USAGE
    assert (exits.OK, exits.FAILED, exits.USAGE, exits.INTERNAL) == (0, 1, 2, 3)
    assert exits.CHANGES == exits.DRIFT == 2


def test_the_readme_shows_the_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert exits.markdown_table() in readme
