"""The ``mlplane`` command line: options in, library calls out, nothing clever here.

Exit codes come from the one table in ``compiler/core/exits.py``: 0 success, 1 the spec has
errors (or a check failed), 2 usage error, 3 internal error (a bug: please report it with the
spec that triggers it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from pydantic import TypeAdapter, ValidationError

from mlplane import __version__
from mlplane.compiler.build.pipeline import CompileResult, UnknownEnvironmentError, compile_spec
from mlplane.compiler.cli.explain import explain_json, explain_yaml
from mlplane.compiler.cli.terminal import use_color as _use_color
from mlplane.compiler.core import exits, plugins
from mlplane.compiler.render import dispatch as renderers
from mlplane.schema import formats
from mlplane.schema.types import Name, Owner

if TYPE_CHECKING:
    from mlplane.compiler.build.record import Counts

FORMATS = tuple(renderers.RENDERERS)

PATH_ARGUMENT = click.argument("path", required=False, default=".", type=click.Path(path_type=Path))


def _compile(
    path: Path,
    environments: Sequence[str] | None,
    *,
    policies: bool = False,
    today: date | None = None,
    policy_dirs: Sequence[Path] = (),
    check_targets: bool = False,
) -> CompileResult:
    try:
        return compile_spec(
            path,
            environments,
            policies=policies,
            today=today,
            policy_dirs=policy_dirs,
            check_targets=check_targets,
        )
    except UnknownEnvironmentError as error:
        raise click.UsageError(str(error)) from None


def _report(
    result: CompileResult, fmt: str, *, waived: bool = False, only_waived: bool = False
) -> None:
    """Render the diagnostics (``waived``: with the waived findings; ``only_waived``: just
    those, as notes under the summary line of the text format)."""
    options = renderers.RenderOptions(
        color=_use_color(sys.stdout), tool_version=__version__, summary=not only_waived
    )
    items = () if only_waived else result.sorted_diagnostics()
    if waived or only_waived:
        items += result.waived.sorted()
    text = renderers.render(fmt, items, result.sources, options)
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
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="The date waiver expiry is judged against (default: the current date).",
)
@click.option(
    "--policy",
    "policy_dirs",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    metavar="DIR",
    help="Also evaluate the organisation policies (*.rego) below DIR (repeatable).",
)
def validate(
    path: Path,
    environments: tuple[str, ...],
    fmt: str,
    strict: bool,
    today: datetime | None,
    policy_dirs: tuple[Path, ...],
) -> None:
    """Validate a spec file or directory (default: the current directory).

    Reports every problem at once, each at file:line:col with a stable code, including the
    findings of the policy rules (mlplane policies) and of organisation policies in Rego.
    Waived findings are listed as notes; they do not fail validation.
    Exits 0 when valid, 1 when the spec has errors.

    \b
    Examples:
      mlplane validate examples/fraud-scoring
      mlplane validate spec.yaml --env prod --format sarif > mlplane.sarif
      mlplane validate --format github        # annotations in GitHub Actions
      mlplane validate . --policy org-policies --today 2026-01-31
    """
    from mlplane.compiler.build.record import validated

    day = today.date() if today is not None else date.today()
    try:
        result, counts = validated(path, environments or None, day, policy_dirs)
    except UnknownEnvironmentError as error:
        raise click.UsageError(str(error)) from None
    failed = not result.ok or (strict and len(result.diagnostics) > 0)
    if fmt != "text":
        _report(result, fmt, waived=True)
    else:
        _report(result, fmt)
        if not failed:
            click.echo(_summary(counts, len(result.waived)), err=False)
        _report(result, fmt, only_waived=True)
    sys.exit(exits.FAILED if failed else exits.OK)


def _summary(environments: Sequence[Counts], waived_count: int) -> str:
    """One line: what each environment has after its overlay, and which are production."""
    if not environments:
        return "valid"
    names = [f"{e.environment}{' (production)' * e.production}" for e in environments]
    counts = [_counts(environment) for environment in environments]
    waived = f"; {waived_count} waived finding(s) below" if waived_count else ""
    head = f"valid: system {environments[0].system!r}"
    if len(set(counts)) == 1:
        return f"{head} with {counts[0]}; environments: {', '.join(names)}{waived}"
    groups: dict[str, list[str]] = {}  # environments with the same counts, in name order
    for name, count in zip(names, counts, strict=True):
        groups.setdefault(count, []).append(name)
    each = "; ".join(f"{', '.join(group)} with {count}" for count, group in groups.items())
    return f"{head}; environments: {each}{waived}"


def _counts(environment: Counts) -> str:
    def count(number: int, noun: str) -> str:
        return f"{number} {noun}" if number == 1 else f"{number} {noun}s"

    return (
        f"{count(environment.models, 'model')}, "
        f"{count(environment.data_sources, 'data source')} and {count(environment.slas, 'SLA')}"
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
        sys.exit(exits.FAILED)
    effective = result.effective[environment]
    if fmt == "json":
        click.echo(explain_json(effective.spec, effective.document, environment), nl=False)
    else:
        text = explain_yaml(
            effective.spec, effective.document, result.document, environment, show_origin
        )
        click.echo(text, nl=False)


@cli.command("build")
@PATH_ARGUMENT
@click.option(
    "--env",
    "environments",
    multiple=True,
    metavar="NAME",
    help="An environment to build (repeatable; several share one compile).",
)
@click.option("--all-envs", is_flag=True, help="Build every environment of the spec.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The output directory (default: build/<env> below the current directory); with "
    "several environments, the directory holding one <env> directory each.",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 unless the output directory is current."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def build_command(
    path: Path,
    environments: tuple[str, ...],
    all_envs: bool,
    out_dir: Path | None,
    check: bool,
    fmt: str,
) -> None:
    """Build environments: the Pulumi project, the target's files, resources.json and a
    manifest.json with the SHA-256 of every file.

    Several environments (--env a --env b, or --all-envs) share one compile and are lowered in
    parallel on the free cores. Each output is replaced atomically (a failure leaves every one as
    it was), only files whose bytes changed are rewritten, a lock makes a concurrent build into
    the same directory fail at once, and the same spec always gives the same bytes. When the
    spec, its policy files and every output file are as the last successful build of the same
    environments left them, nothing is compiled: that build's report is given again.
    Exits 0 when written (or, with --check, current), 1 when the spec has errors, an output is
    not current or another build holds the lock, 2 on a usage error or an unusable --out.

    \b
    Examples:
      mlplane build examples/fraud-scoring --env dev
      mlplane build examples/fraud-scoring --env prod --out deploy/prod --check
      mlplane build examples/fraud-scoring --all-envs --out deploy
    """
    from mlplane.compiler.build.outputs import build_many, default_out_dir
    from mlplane.compiler.build.report import (
        report_json,
        report_json_many,
        report_text_many,
        status,
    )
    from mlplane.compiler.build.writer import OutputLockedError, UnsafePathError
    from mlplane.compiler.core.safe_read import READ_BACK_INVALID, ReadBackError

    if all_envs == bool(environments):
        raise click.UsageError("name the environments to build with --env NAME, or use --all-envs")
    names = list(dict.fromkeys(environments)) if environments else None
    single = names is not None and len(names) == 1

    def out_of(name: str) -> Path:
        if out_dir is None:
            return default_out_dir(name)
        return out_dir if single else out_dir / name

    try:
        compiled, results = build_many(
            path, names, out_of, check=check, policies=True, today=date.today(), record=True
        )
    except UnknownEnvironmentError as error:
        raise click.UsageError(str(error)) from None
    except UnsafePathError as error:
        raise click.UsageError(str(error)) from None
    except OutputLockedError as error:
        click.echo(f"mlplane: error: {error}", err=True)
        sys.exit(exits.FAILED)
    except ReadBackError as error:
        click.echo(f"mlplane: error: {error} [{READ_BACK_INVALID}]", err=True)
        sys.exit(exits.FAILED)
    if single and fmt == "json":
        text = report_json(results[0])
    elif fmt == "json":
        text = report_json_many(compiled, results, check)
    else:
        text = report_text_many(compiled, results, _use_color(sys.stdout))
    click.echo(text, nl=False)
    ok = bool(results) and all(status(r) in ("written", "current") for r in results)
    sys.exit(exits.OK if ok else exits.FAILED)


@cli.group("policies", invoke_without_command=True)
@click.pass_context
def policies_group(ctx: click.Context) -> None:
    """List the policy rules: id, severity, mandatory, title and the scanner checks they mirror.

    Tune a rule in the spec with policies: {rules: {ID: {severity: ...}}}; waive a finding with
    waivers: (reason, owner, expiry date).

    \b
    Examples:
      mlplane policies
      mlplane policies explain data.residency-respected
    """
    if ctx.invoked_subcommand is None:
        from mlplane.compiler.policy.engine import installed_rules, rules_table

        click.echo(rules_table(installed_rules()), nl=False)


@policies_group.command("explain")
@click.argument("rule_id", metavar="ID")
def policies_explain(rule_id: str) -> None:
    """Print why a rule exists, how to fix its findings, and an example of each.

    \b
    Example:
      mlplane policies explain models.image-digest
    """
    from mlplane.compiler.policy.engine import explain_rule, installed_rules, rule_by_id
    from mlplane.schema.formats import closest

    rule = rule_by_id(rule_id)
    if rule is None:
        suggestion = closest(rule_id, [known.id for known in installed_rules()])
        hint = f"; did you mean {suggestion!r}?" if suggestion else "; list them: mlplane policies"
        raise click.UsageError(f"policy rule {rule_id!r} is not defined{hint}")
    click.echo(explain_rule(rule), nl=False)


@cli.command("ci")
@PATH_ARGUMENT
@click.option(
    "--provider",
    default=None,
    metavar="NAME",
    help="github or gitlab (default: the spec's ci.provider, else github).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The repository root to write into (default: the git top-level of PATH).",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 listing the CI files that are stale."
)
def ci_command(path: Path, provider: str | None, out_dir: Path | None, check: bool) -> None:
    """Write the CI of the GitOps loop: validate and plan on every pull/merge request, apply
    after merge, and a scheduled drift check.

    GitHub: .github/workflows/mlplane-<system>-{pr,apply,drift}.yml; GitLab: .gitlab-ci.yml.
    Only files that mlplane ci wrote are ever replaced or removed. Exits 0 when written (with
    --check: current), 1 when the spec has errors or a file is stale, 2 on a usage error.

    \b
    Examples:
      mlplane ci                          # the spec here, into its git repository
      mlplane ci deploy/fraud --provider gitlab
      mlplane ci --check                  # fail when the committed workflows are stale
    """
    from mlplane.compiler.build.writer import UnsafePathError

    result = _compile(path, None)
    system = next(iter(result.systems.values())) if result.ok and result.systems else None
    plugin = _ci_provider(provider or system.ci.provider) if system is not None else None
    if system is not None and plugin is not None:
        result.diagnostics.extend(plugin.check(system))  # CI that could not work: refused
    if len(result.diagnostics):
        _report(result, "text")
    if system is None or plugin is None or not result.ok:
        sys.exit(exits.FAILED)
    try:
        root = out_dir or plugin.repository_root(path)
        if root is None:
            raise click.UsageError(f"{path} is not inside a git repository; choose one with --out")
        files = plugin.emit(system, system.ci.spec_path or plugin.spec_path_in(root, path))
        changes = plugin.compare(root, system, files)
        if changes.foreign and not check:
            raise click.UsageError(
                f"refusing to replace {', '.join(changes.foreign)}: not written by mlplane ci; "
                "move it away or choose another --out"
            )
        if not check:
            plugin.apply(root, files, changes)
    except (ValueError, UnsafePathError) as error:
        raise click.UsageError(str(error)) from None
    click.echo(_ci_summary(changes, check, len(files)), nl=False)
    if not check and not any(env.apply for env in system.ci.environments):
        click.echo(
            "note: CI applies no environment yet: give one a remote state backend "
            "(environments.<env>.state: s3://...) or list it in ci.apply"
        )
    sys.exit(exits.FAILED if check and changes.stale else exits.OK)


def _ci_provider(name: str) -> plugins.CiProvider:
    """A CI provider from the ``mlplane.ci`` entry points (``targets/ci`` registers two)."""
    found = plugins.ci_providers()
    if name not in found:
        raise click.UsageError(f"unknown CI provider {name!r}; choose {' or '.join(sorted(found))}")
    return found[name]


def _ci_summary(changes: plugins.CiChanges, check: bool, total: int) -> str:
    lines = [f"{'stale' if check else 'wrote'}: {path}" for path in changes.changed]
    lines += [
        f"{'stale' if check else 'removed'}: {path} (no longer generated)"
        for path in changes.obsolete
    ]
    lines += [f"stale: {path} (not written by mlplane ci)" for path in changes.foreign]
    if check and changes.stale:
        lines.append(f"{len(changes.stale)} CI file(s) are stale; regenerate them with: mlplane ci")
    elif not lines:
        lines.append(f"CI files are current ({total} file(s))")
    return "\n".join(lines) + "\n"


@cli.command()
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the schema to this file (atomically) instead of printing it.",
)
def schema(out_file: Path | None) -> None:
    """Print the JSON Schema of the spec language (for editors and other tools).

    \b
    Example:
      mlplane schema --out mlplane.v1.schema.json
    """
    from mlplane.compiler.build.schema_files import schema_text
    from mlplane.compiler.cli.starter import write_user_file

    if out_file is None:
        click.echo(schema_text(), nl=False)
        return
    try:
        write_user_file(out_file, schema_text())
    except OSError as error:
        raise click.BadParameter(str(error), param_hint="--out") from None
    click.echo(f"wrote {out_file}")


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="The system name (default: the directory's name).")
@click.option("--owner", default="ml-platform", show_default=True, help="The owning team.")
@click.option("--force", is_flag=True, help="Overwrite an existing mlplane.yaml.")
def init(directory: Path, name: str | None, owner: str, force: bool) -> None:
    """Write a commented starter spec (mlplane.yaml) that validates as written, the JSON
    Schema its modeline names, and a .gitignore that keeps build/ and .mlplane/ out of git.

    \b
    Example:
      mlplane init fraud-scoring --owner risk-ml
    """
    from mlplane.compiler.build.schema_files import schema_text
    from mlplane.compiler.cli.starter import (
        SCHEMA_NAME,
        starter_spec,
        write_gitignore,
        write_user_file,
    )

    system = name or directory.resolve().name
    _check_init_name(system, derived=name is None)
    try:
        _OWNER.validate_python(owner)
    except ValueError as error:
        raise click.BadParameter(_first_error(error), param_hint="--owner") from None
    target = directory / "mlplane.yaml"
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite it")
    try:
        write_user_file(target, starter_spec(system, owner))
        write_user_file(directory / SCHEMA_NAME, schema_text())
        ignored = write_gitignore(directory)
    except OSError as error:
        raise click.UsageError(str(error)) from None
    also = f", {directory / SCHEMA_NAME}" + (f", {directory / '.gitignore'}" if ignored else "")
    click.echo(f"wrote {target}{also}; next: mlplane validate {directory}")


def _check_init_name(system: str, *, derived: bool) -> None:
    """The system name: ``--name``'s value, or (``derived``) the directory's name, blamed as
    such, with a valid name to pass instead."""
    try:
        _NAME.validate_python(system)
    except ValueError as error:
        suggestion = formats.dns_suggestion(system, NAME_LIMIT)
        if not derived:
            better = f" (did you mean --name {suggestion}?)" if suggestion else ""
            raise click.BadParameter(_first_error(error) + better, param_hint="--name") from None
        suggestion = suggestion or "NAME"
        raise click.BadParameter(
            f"the system name defaults to the directory's name, {system!r}, which is not a "
            f"valid name ({_first_error(error)}); pass one with --name {suggestion}",
            param_hint="DIRECTORY",
        ) from None


_NAME: TypeAdapter[str] = TypeAdapter(Name)
NAME_LIMIT = 40
"""The longest system name (``schema.types.Name``)."""
_OWNER: TypeAdapter[str] = TypeAdapter(Owner)


def _first_error(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        return str(error.errors(include_url=False)[0]["msg"])
    return str(error)


def _register_gitops_verbs() -> None:
    """plan, apply, destroy, drift and graph (compiler/cli/plan.py), and report
    (compiler/cli/report.py)."""
    from mlplane.compiler.cli.plan import register
    from mlplane.compiler.cli.report import report_command

    register(cli)
    cli.add_command(report_command)


_register_gitops_verbs()


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
        sys.exit(exits.INTERRUPTED)
    except Exception as error:  # a bug in mlplane, not in the spec
        if os.environ.get("MLPLANE_DEBUG"):
            raise
        click.echo(
            f"mlplane: internal error ({type(error).__name__}: {error}); this is a bug, please report it "
            "with the spec that triggers it (set MLPLANE_DEBUG=1 for a traceback)",
            err=True,
        )
        sys.exit(exits.INTERNAL)
    sys.exit(exits.OK)
