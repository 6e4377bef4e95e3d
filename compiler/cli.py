"""The ``mlplane`` command line: options in, library calls out, nothing clever here.

Exit codes: 0 success, 1 the spec has errors (or a check failed), 2 usage error, 3 internal
error (a bug: please report it with the spec that triggers it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click
from pydantic import TypeAdapter, ValidationError

from mlplane import __version__
from mlplane.compiler import render as renderers
from mlplane.compiler.explain import explain_json, explain_yaml
from mlplane.compiler.pipeline import CompileResult, UnknownEnvironmentError, compile_spec
from mlplane.compiler.writer import write_new_file
from mlplane.schema.types import Name, Owner

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
FORMATS = tuple(renderers.RENDERERS)

PATH_ARGUMENT = click.argument("path", required=False, default=".", type=click.Path(path_type=Path))


def _use_color(stream: object) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _compile(path: Path, environments: Sequence[str] | None) -> CompileResult:
    try:
        return compile_spec(path, environments)
    except UnknownEnvironmentError as error:
        raise click.UsageError(str(error)) from None


def _report(result: CompileResult, fmt: str) -> None:
    options = renderers.RenderOptions(color=_use_color(sys.stdout), tool_version=__version__)
    text = renderers.render(fmt, result.sorted_diagnostics(), result.sources, options)
    if text:
        click.echo(text, nl=not text.endswith("\n"))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mlplane")
def cli() -> None:
    """mlplane: a declarative GitOps compiler for ML systems.

    One YAML spec describes data sources, models, security policies and SLAs; mlplane validates
    it with located diagnostics and lowers it per environment.

    \b
    Example:
      mlplane init my-system && mlplane validate my-system
    """


@cli.command()
@PATH_ARGUMENT
@click.option(
    "--env", "environments", multiple=True, metavar="NAME", help="Validate only these environments."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(path: Path, environments: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Validate a spec file or directory (default: the current directory).

    Reports every problem at once, each at file:line:col with a stable code.
    Exits 0 when valid, 1 when the spec has errors.

    \b
    Examples:
      mlplane validate examples/fraud-scoring
      mlplane validate spec.yaml --env prod --format sarif > mlplane.sarif
      mlplane validate --format github        # annotations in GitHub Actions
    """
    result = _compile(path, environments or None)
    _report(result, fmt)
    failed = not result.ok or (strict and len(result.diagnostics) > 0)
    if fmt == "text" and not failed:
        click.echo(_summary(result), err=False)
    sys.exit(EXIT_SPEC if failed else EXIT_OK)


def _summary(result: CompileResult) -> str:
    if not result.systems:
        return "valid"
    first = next(iter(result.systems.values()))
    envs = ", ".join(sorted(result.systems))
    return (
        f"valid: system {first.name!r} with {len(first.models)} models, {len(first.data_sources)} "
        f"data sources and {len(first.slas)} SLAs; environments: {envs}"
    )


@cli.command()
@PATH_ARGUMENT
@click.option(
    "--env", "environment", required=True, metavar="NAME", help="The environment to explain."
)
@click.option(
    "--show-origin", is_flag=True, help="Annotate every value with the file:line it came from."
)
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
def explain(path: Path, environment: str, show_origin: bool, fmt: str) -> None:
    """Print the effective spec of one environment, after its overrides are applied.

    \b
    Example:
      mlplane explain examples/fraud-scoring --env prod --show-origin
    """
    result = _compile(path, [environment])
    if not result.ok or result.document is None or environment not in result.effective:
        _report(result, "text")
        sys.exit(EXIT_SPEC)
    effective = result.effective[environment]
    if fmt == "json":
        click.echo(explain_json(effective.spec, effective.document, environment), nl=False)
    else:
        text = explain_yaml(
            effective.spec, effective.document, result.document, environment, show_origin
        )
        click.echo(text, nl=False)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the spec language (for editors and other tools).

    \b
    Example:
      mlplane schema > mlplane.v1.schema.json
    """
    from mlplane.schema.export import schema_text

    click.echo(schema_text(), nl=False)


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="The system name (default: the directory's name).")
@click.option("--owner", default="ml-platform", show_default=True, help="The owning team.")
@click.option("--force", is_flag=True, help="Overwrite an existing mlplane.yaml.")
def init(directory: Path, name: str | None, owner: str, force: bool) -> None:
    """Write a commented starter spec (mlplane.yaml) that validates as written.

    \b
    Example:
      mlplane init fraud-scoring --owner risk-ml
    """
    from mlplane.compiler.starter import starter_spec

    system = name or directory.resolve().name
    for label, value, adapter in (("name", system, _NAME), ("owner", owner, _OWNER)):
        try:
            adapter.validate_python(value)
        except ValueError as error:
            raise click.BadParameter(_first_error(error), param_hint=f"--{label}") from None
    target = directory / "mlplane.yaml"
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite it")
    write_new_file(target, starter_spec(system, owner))
    click.echo(f"wrote {target}; next: mlplane validate {directory}")


_NAME: TypeAdapter[str] = TypeAdapter(Name)
_OWNER: TypeAdapter[str] = TypeAdapter(Owner)


def _first_error(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        return str(error.errors(include_url=False)[0]["msg"])
    return str(error)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point: never a traceback for a user's mistake, exit 3 for our own bugs."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="mlplane", standalone_mode=True
        )
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # a bug in mlplane, not in the spec
        if os.environ.get("MLPLANE_DEBUG"):
            raise
        click.echo(
            f"mlplane: internal error ({type(error).__name__}: {error}); this is a bug, please report it "
            "with the spec that triggers it (set MLPLANE_DEBUG=1 for a traceback)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)
