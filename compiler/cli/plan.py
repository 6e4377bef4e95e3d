"""The GitOps verbs of the command line: ``plan``, ``apply``, ``destroy``, ``drift``, ``graph``.

Declarative like ``compiler/cli/main.py`` (options in, one library call, output out); kept in their
own module so that ``cli.py`` stays short, and registered on the ``mlplane`` group by
:func:`register`. This module imports nothing from ``cli.py`` so either can be imported first.

Exit codes come from the one table in ``compiler/core/exits.py``: ``plan`` 0, or with
``--detailed-exitcode`` 0 no changes / 2 changes; 1 for any error (so that 2 never means both
"changes" and "usage error" there) and for risk flags under ``--fail-on risk``.
``apply``/``destroy``: 0 done, 1 failed, refused or cancelled, 2 usage (``--yes`` needed without
a terminal, an unknown environment). ``drift``: 0 none, 2 drift, 1 error, a usage error included.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from mlplane import __version__
from mlplane.compiler.build.pipeline import UnknownEnvironmentError
from mlplane.compiler.cli.terminal import use_color as _use_color
from mlplane.compiler.core import exits, safe_read
from mlplane.compiler.render import dispatch as renderers

if TYPE_CHECKING:
    from mlplane.compiler.build.outputs import BuildResult

PATH_ARGUMENT = click.argument("path", required=False, default=".", type=click.Path(path_type=Path))
ENV_OPTION = click.option(
    "--env", "environment", required=True, metavar="NAME", help="The environment."
)


def _fail(message: str, code: int = exits.FAILED) -> NoReturn:
    click.echo(f"mlplane: error: {message}", err=True)
    sys.exit(code)


class _UsageExitCommand(click.Command):
    """A command whose exit code 2 can report a result (changes, drift): a usage error (an
    unknown option, a bad value, a missing ``--env``) exits with the code the table gives for
    the arguments (``exits.usage_code``: 1 where 2 is taken), so CI never reads a typo as
    "there are changes"."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        code = exits.usage_code(self.name or "", list(args))  # before parsing consumes ``args``
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            if code == exits.USAGE:
                raise
            raise _UsageErrorExit1(error.format_message(), error.ctx) from None


class _UsageErrorExit1(click.UsageError):
    exit_code = exits.FAILED


def _usage(command: str, message: str, flags: tuple[str, ...] = ()) -> NoReturn:
    """A usage error found after parsing (an unknown environment), exiting with the table's
    code for ``command`` given the ``flags`` that were set."""
    code = exits.usage_code(command, flags)
    if code == exits.USAGE:
        raise click.UsageError(message)
    _fail(message, code)


@click.command("plan", cls=_UsageExitCommand)
@PATH_ARGUMENT
@ENV_OPTION
@click.option(
    "--base", default="HEAD", show_default=True, metavar="REF|none|applied",
    help="Compare with this git revision (read from git objects; the working tree is untouched), "
    "with nothing (none: a first deployment) or with the last apply (applied).",
)  # fmt: skip
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also save the plan (JSON) for apply --plan.",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 without changes, 2 with changes, 1 on error."
)
@click.option(
    "--fail-on",
    type=click.Choice(["risk"]),
    default=None,
    help="Exit 1 when the plan has risk flags.",
)
@click.option(
    "--no-cache", is_flag=True,
    help="Lower the base again instead of using .mlplane/cache/ (the plan is the same).",
)  # fmt: skip
def plan_command(
    path: Path,
    environment: str,
    base: str,
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    fail_on: str | None,
    no_cache: bool,
) -> None:
    """Preview what applying the spec would change: in ML terms first, then resource by resource.

    Compiles the working tree and the base with no credentials and no network, so it is safe on
    pull requests from forks. Each change points at its spec line; risky changes are flagged.

    \b
    Examples:
      mlplane plan examples/fraud-scoring --env prod --base none
      mlplane plan . --env prod --base origin/main --format markdown > comment.md
      mlplane plan . --env prod --base origin/main --out plan.json --detailed-exitcode
      mlplane plan . --env prod --base applied --fail-on risk
    """
    from mlplane.compiler.build.writer import UnsafePathError, write_output_file
    from mlplane.compiler.core.safe_read import shown
    from mlplane.compiler.plan.json_format import render_json
    from mlplane.compiler.plan.markdown import render_markdown
    from mlplane.compiler.plan.run import make_plan
    from mlplane.compiler.plan.text import render_text

    try:
        plan = make_plan(path, environment, base, use_cache=not no_cache)
    except UnknownEnvironmentError as error:
        _usage("plan", str(error), ("--detailed-exitcode",) if detailed_exitcode else ())
    if fmt == "json":
        text = render_json(plan)
    elif fmt == "markdown":
        text = render_markdown(plan)
    else:
        text = render_text(plan, _use_color(sys.stdout))
    click.echo(text, nl=False)
    if out is not None and plan.ok:
        try:
            write_output_file(out, render_json(plan))
        except (OSError, UnsafePathError) as error:
            _fail(f"cannot save the plan to {shown(out)}: {shown(str(error))}")
    elif out is not None:
        click.echo(f"mlplane: no plan, so nothing was saved to {shown(out)}", err=True)
    if not plan.ok or (fail_on == "risk" and plan.risks):
        sys.exit(exits.FAILED)
    sys.exit(exits.CHANGES if detailed_exitcode and plan.has_changes else exits.OK)


@click.command("graph")
@PATH_ARGUMENT
@ENV_OPTION
@click.option(
    "--view",
    type=click.Choice(["resources", "lineage"]),
    default="resources",
    show_default=True,
    help="resources: what the target lowers; lineage: data sources, models, endpoints, SLAs.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "dot", "mermaid"]),
    default="json",
    show_default=True,
    help="mermaid: lineage view only.",
)
def graph_command(path: Path, environment: str, view: str, fmt: str) -> None:
    """Print the resource graph of one environment (JSON as in resources.json, or Graphviz
    DOT), or with --view lineage its data lineage (JSON, DOT or Mermaid; as in mlplane report).

    \b
    Examples:
      mlplane graph examples/fraud-scoring --env prod > resources.json
      mlplane graph examples/fraud-scoring --env prod --format dot | dot -Tsvg > graph.svg
      mlplane graph examples/fraud-scoring --env prod --view lineage --format mermaid
    """
    from mlplane.compiler.build.graph_dot import render_dot
    from mlplane.compiler.build.pipeline import compile_spec
    from mlplane.compiler.plan.lower import lower

    if view == "resources" and fmt == "mermaid":
        raise click.UsageError("--format mermaid draws the lineage view: add --view lineage")
    try:
        compiled = compile_spec(path, [environment])
    except UnknownEnvironmentError as error:
        raise click.UsageError(str(error)) from None
    if view == "lineage" and compiled.ok and environment in compiled.systems:
        from mlplane.compiler.report.views import lineage_text

        click.echo(lineage_text(compiled.systems[environment], fmt), nl=False)
        return
    lowered = lower(compiled, environment) if compiled.ok else None
    if lowered is None:
        options = renderers.RenderOptions(color=_use_color(sys.stderr), tool_version=__version__)
        click.echo(
            renderers.render("text", compiled.sorted_diagnostics(), compiled.sources, options),
            err=True,
            nl=False,
        )
        sys.exit(exits.FAILED)
    title = f"{lowered.system.name}-{environment}"
    text = lowered.graph_text()
    click.echo(render_dot(text, title) if fmt == "dot" else text, nl=False)


class _ClickConsole:
    """The deploy verbs' console: click for output, prompts only on a terminal."""

    def __init__(self) -> None:
        self.interactive = sys.stdin.isatty() and sys.stdout.isatty()

    def echo(self, text: str) -> None:
        click.echo(text, nl=not text.endswith("\n"))

    def confirm(self, prompt: str) -> bool:
        return click.confirm(prompt, default=False)

    def ask(self, prompt: str) -> str:
        return str(click.prompt(prompt, default="", show_default=False))


def _report_build(result: BuildResult) -> None:
    from mlplane.compiler.build.report import report_text

    click.echo(report_text(result, _use_color(sys.stderr)), err=True, nl=False)


def _deploy(command: str, run: Callable[[_ClickConsole], int]) -> NoReturn:
    """Run a deploy verb, turning its refusals into one message and an exit code; a usage
    error exits with the table's code for ``command`` (never 2 for ``drift``, where 2 is
    "drift")."""
    from mlplane.compiler.deploy.engine import DeployError

    try:
        code = run(_ClickConsole())
    except DeployError as error:
        usage = error.exit_code == exits.USAGE
        _fail(str(error), exits.usage_code(command) if usage else error.exit_code)
    except UnknownEnvironmentError as error:
        _fail(str(error), exits.usage_code(command))
    sys.exit(code)


YES_OPTION = click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)


@click.command("apply")
@PATH_ARGUMENT
@ENV_OPTION
@click.option("--plan", "plan_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Apply only if this saved plan still matches (commit, spec hash, graph, base).")  # fmt: skip
@YES_OPTION
def apply_command(path: Path, environment: str, plan_file: Path | None, yes: bool) -> None:
    """Apply the spec to an environment with Pulumi (needs the pulumi CLI on PATH).

    Rebuilds the Pulumi project, refuses a saved plan that no longer matches, shows Pulumi's
    preview, asks for confirmation, applies and records what was applied (.mlplane/applied/).

    \b
    Examples:
      mlplane apply examples/fraud-scoring --env dev
      mlplane apply . --env prod --plan plan.json --yes      # in CI, after review
    """
    saved = None
    if plan_file is not None:
        from mlplane.compiler.plan.json_format import SavedPlanError, load_saved

        try:
            saved = load_saved(plan_file)
        except SavedPlanError as error:
            _fail(f"{error} [{safe_read.READ_BACK_INVALID}]")
    from mlplane.compiler.deploy import engine as deploy

    _deploy(
        "apply",
        lambda console: deploy.apply(path, environment, console, _report_build, saved, yes),
    )


@click.command("destroy")
@PATH_ARGUMENT
@ENV_OPTION
@YES_OPTION
@click.option(
    "--skip-target-cleanup",
    is_flag=True,
    help="Do not run the target's own clean-up first (such as deleting the environment's "
    "Kubeflow recurring runs): for when it cannot succeed, such as a Kubeflow Pipelines API "
    "that no longer exists. What it would have removed is left as it is.",
)
def destroy_command(path: Path, environment: str, yes: bool, skip_target_cleanup: bool) -> None:
    """Delete every resource of an environment's stack (type the environment's name, or --yes).

    \b
    Example:
      mlplane destroy examples/fraud-scoring --env dev
    """
    from mlplane.compiler.deploy import engine as deploy

    cleanup = not skip_target_cleanup
    _deploy(
        "destroy",
        lambda console: deploy.destroy(path, environment, console, _report_build, yes, cleanup),
    )


@click.command("drift", cls=_UsageExitCommand)
@PATH_ARGUMENT
@ENV_OPTION
def drift_command(path: Path, environment: str) -> None:
    """Report resources changed outside git, each with the spec line that declares it.

    Refreshes the stack in preview mode (nothing is changed). Exits 0 without drift, 2 with,
    1 on any error (a usage error included).

    \b
    Example:
      mlplane drift examples/fraud-scoring --env prod
    """
    from mlplane.compiler.deploy import engine as deploy

    _deploy("drift", lambda console: deploy.drift(path, environment, console, _report_build))


COMMANDS = (plan_command, apply_command, destroy_command, drift_command, graph_command)


def register(group: click.Group) -> None:
    """Add the GitOps verbs to the ``mlplane`` command group."""
    for command in COMMANDS:
        group.add_command(command)
