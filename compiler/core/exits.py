"""The exit codes of every ``mlplane`` command, in one table.

Scripts and CI branch on these, so each code means one thing per command:

* ``0`` success (for ``--check``: current; ``plan --detailed-exitcode``: no changes; ``drift``:
  no drift);
* ``1`` the command failed: the spec has errors, a check failed, a plan or an apply was
  refused, a file mlplane reads back is unusable, or the engine failed;
* ``2`` a usage error (an unknown option, a missing ``--env``, an unknown environment, an
  unusable ``--out``), **except** where 2 reports a result: ``plan --detailed-exitcode`` exits
  2 when there are changes and ``drift`` when there is drift, so there a usage error exits 1
  and CI never reads a typo as "changes" or "drift";
* ``3`` an internal error: a bug in mlplane, reported without a traceback;
* ``130`` interrupted.

:data:`TABLE` states it per command; the CLI takes every code it exits with from here, and
``tests/test_exits.py`` runs each command and checks the code against this table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

OK = 0
FAILED = 1
USAGE = 2
INTERNAL = 3
INTERRUPTED = 130
CHANGES = 2
"""``plan --detailed-exitcode``: the plan has changes."""
DRIFT = 2
"""``drift``: resources changed outside git."""


@dataclass(frozen=True)
class CommandExits:
    """What each code means for one command; ``result`` names what 2 reports, if anything."""

    ok: str
    failed: str
    result: str | None = None
    """What exit 2 reports (then a usage error exits 1), or None (exit 2 is a usage error)."""
    result_flag: str | None = None
    """The option that makes exit 2 report :attr:`result` (None: always)."""
    usage_error: str = "usage error"
    """What a usage error is for this command, as the table says it."""

    def usage(self, args: Sequence[str] = ()) -> int:
        """The code of a usage error given the command's arguments."""
        if self.result is None:
            return USAGE
        if self.result_flag is not None and self.result_flag not in args:
            return USAGE
        return FAILED


_SPEC_ERRORS = "the spec has errors"
TABLE: dict[str, CommandExits] = {
    "validate": CommandExits("valid", f"{_SPEC_ERRORS} (with --strict, warnings too)"),
    "explain": CommandExits("printed", _SPEC_ERRORS),
    "build": CommandExits(
        "written (--check: current)",
        f"{_SPEC_ERRORS}, the output is not current, its manifest.json is unusable, or another "
        "build holds the lock",
        usage_error="usage error, or an --out that is a link or holds files mlplane did not write",
    ),
    "ci": CommandExits(
        "written (--check: current)",
        f"{_SPEC_ERRORS} or a CI file is stale",
        usage_error="usage error, or a CI file there that mlplane ci did not write",
    ),
    "plan": CommandExits(
        "planned (--detailed-exitcode: no changes)",
        f"{_SPEC_ERRORS}, the base cannot be read, risk flags under --fail-on risk, or the "
        "plan cannot be saved",
        result="changes (with --detailed-exitcode)",
        result_flag="--detailed-exitcode",
    ),
    "apply": CommandExits(
        "applied",
        "refused (stale or unusable saved plan, unusable applied record), cancelled or failed",
        usage_error="usage error (also: no terminal to confirm on and no --yes)",
    ),
    "destroy": CommandExits(
        "destroyed",
        "cancelled or failed",
        usage_error="usage error (also: no terminal to confirm on and no --yes)",
    ),
    "drift": CommandExits("no drift", "the check could not run", result="drift"),
    "graph": CommandExits("printed", _SPEC_ERRORS),
    "report": CommandExits(
        "written",
        f"{_SPEC_ERRORS} (nothing written) or a file cannot be written",
        usage_error="usage error, or an --out that passes through a link",
    ),
    "policies": CommandExits("printed", "-"),
    "schema": CommandExits("printed", "-"),
    "init": CommandExits("written", "-"),
}


def usage_code(command: str, args: Sequence[str] = ()) -> int:
    """The exit code of a usage error of ``command`` (2, or 1 where 2 reports a result)."""
    found = TABLE.get(command)
    return found.usage(args) if found is not None else USAGE


def markdown_table() -> str:
    """The table as the README shows it (a test keeps the two equal)."""
    lines = [
        "| command | 0 | 1 | 2 |",
        "|---|---|---|---|",
    ]
    for name, exits in TABLE.items():
        if exits.result is None:
            two = exits.usage_error
        else:
            two = f"{exits.result}; a usage error exits 1"
            if exits.result_flag is not None:
                two += f" with {exits.result_flag}, 2 without"
        lines.append(f"| `{name}` | {exits.ok} | {exits.failed} | {two} |")
    return "\n".join(lines) + "\n"
