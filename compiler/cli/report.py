"""``mlplane report``: the governance report of each environment, as HTML, Markdown or JSON.

Options in, one library call (``compiler/report/run.py``), files out through the atomic writer.
Exit codes (``compiler/core/exits.py``): 0 written, 1 the spec has errors (located diagnostics
on stderr, nothing written) or a file could not be written, 2 a usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlplane import __version__
from mlplane.compiler.build.pipeline import UnknownEnvironmentError, no_cyclic_gc
from mlplane.compiler.cli.terminal import use_color
from mlplane.compiler.core import exits
from mlplane.compiler.render import dispatch as renderers

if TYPE_CHECKING:
    from mlplane.compiler.report.model import Report

EXTENSIONS = {"html": "html", "markdown": "md", "json": "json"}
DEFAULT_OUT = Path("build") / "report"


def renderer(fmt: str) -> Callable[[Report], str]:
    """The function that renders one report in ``fmt`` (only its renderer is imported)."""
    if fmt == "html":
        from mlplane.compiler.report.html import render_html

        return render_html
    if fmt == "markdown":
        from mlplane.compiler.report.markdown import render_markdown

        return render_markdown
    if fmt == "json":
        from mlplane.compiler.report.json_format import render_json

        return render_json
    raise ValueError(f"unknown report format {fmt!r}")


@click.command("report")
@click.argument("path", required=False, default=".", type=click.Path(path_type=Path))
@click.option(
    "--env", "environments", multiple=True, metavar="NAME", help="Only these environments."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The directory to write into (default: build/report below the current directory).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(tuple(EXTENSIONS)),
    default="html",
    show_default=True,
)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="The date waiver expiry and the waiver calendar are judged against (default: today).",
)
@click.option(
    "--policy",
    "policy_dirs",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    metavar="DIR",
    help="Also evaluate the organisation policies (*.rego) below DIR (repeatable).",
)
@click.option(
    "--lower",
    is_flag=True,
    help="Also lower each environment and run the graph rules on it, as build does (slower).",
)
def report_command(
    path: Path,
    environments: tuple[str, ...],
    out_dir: Path | None,
    fmt: str,
    today: datetime | None,
    policy_dirs: tuple[Path, ...],
    lower: bool,
) -> None:
    """Write the governance report of each environment: data register, model cards,
    controls matrix with the waiver calendar, and the lineage picture.

    One file per environment, <env>.html (self-contained, works offline), <env>.md (the
    lineage as Mermaid, which GitHub draws) or <env>.json (docs/report.v1.schema.json); each is
    written atomically, and other files in the directory are left alone. Policy findings are
    the report's content (fail rows), not errors; a spec with errors is reported as validate
    reports it and nothing is written.

    \b
    Examples:
      mlplane report examples/fraud-scoring
      mlplane report . --env prod --format markdown --out docs/governance
      mlplane report . --format json --today 2026-01-31 --lower
    """
    from mlplane.compiler.build.writer import UnsafePathError, check_ancestors, write_output_file
    from mlplane.compiler.report.run import judge_reports, render_reports

    day = today.date() if today is not None else date.today()
    # The compiled spec and the reports are large acyclic structures that reference counting
    # frees: the cyclic collector would walk them again and again (a third of the report's time
    # on the 1,000-model benchmark spec), so it is paused while they are built and rendered.
    # The environments' reports are built and rendered in forked workers on the cores the
    # load leaves free (``render_reports``), after one compile.
    with no_cyclic_gc():
        try:
            run = judge_reports(
                path, environments or None, today=day, policy_dirs=policy_dirs, lower=lower
            )
        except UnknownEnvironmentError as error:
            raise click.UsageError(str(error)) from None
        texts = render_reports(run, renderer(fmt))
        files = {f"{name}.{EXTENSIONS[fmt]}": text for name, text in texts.items()}
    problems = (*run.compiled.sorted_diagnostics(), *run.problems.sorted())
    if problems:
        options = renderers.RenderOptions(color=use_color(sys.stderr), tool_version=__version__)
        text = renderers.render("text", problems, run.compiled.sources, options)
        click.echo(text, err=True, nl=not text.endswith("\n"))
    if not run.ok:
        sys.exit(exits.FAILED)
    target = out_dir or DEFAULT_OUT
    try:
        check_ancestors(target)
        if target.is_symlink():
            raise UnsafePathError(f"{target} is a symbolic link; refusing to write through it")
        target.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            write_output_file(target / name, text)
    except UnsafePathError as error:
        raise click.UsageError(str(error)) from None
    except OSError as error:
        click.echo(f"mlplane: error: cannot write the report to {target}: {error}", err=True)
        sys.exit(exits.FAILED)
    for name in files:
        click.echo(f"wrote {target / name}")
