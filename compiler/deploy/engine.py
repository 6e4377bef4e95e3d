"""``mlplane apply``, ``destroy`` and ``drift``: the emitted Pulumi project, driven through the
Pulumi Automation API.

Each verb rebuilds the environment with ``mlplane build`` into a temporary directory and runs
the Pulumi project found there (its program inline, in this process: no language host), so what
is applied is exactly what the spec says now. Order matters, and every check that needs no
engine runs before the engine is touched:

1. the ``pulumi`` CLI must be on PATH (the Automation API drives it; it cannot be installed from
   PyPI): without it the verb stops at once with one message saying how to install it. Nothing
   is ever simulated;
2. the build must succeed;
3. ``apply --plan``: the saved plan must match the rebuilt head (commit, spec hash, graph hash)
   and what is deployed (the applied record), or it is refused: "apply exactly what was reviewed";
4. confirmation: ``--yes``, or an answer on a terminal (no stdin in CI: without a terminal and
   without ``--yes`` the verb refuses);
5. only then :func:`open_stack` (the boundary to the Automation API, which tests replace)
   selects or creates the stack ``<system>-<env>`` on the state backend (after removing the
   lock of a run killed on this machine, ``locks.py``); the preview, the confirmation on a
   terminal, ``pulumi up`` and the record of what was applied follow. Preview and up refresh
   first, so they compare the program with what is deployed and an apply repairs drift; the
   spec owns the fields it declares (server-side apply conflicts are forced, ``stack.py``).
6. last, the target's own step, if it has one (``plugins.after_apply``: the kubernetes target
   registers Kubeflow recurring runs, which no resource of the engine can hold); ``destroy``
   runs ``plugins.before_destroy`` before the engine's destroy.

The stack, its state backend, the passphrase and secret config are decided in
``compiler/deploy/stack.py`` (no engine needed); this module drives the engine.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlplane.compiler.build import outputs as builder
from mlplane.compiler.core import exits, plugins, safe_read
from mlplane.compiler.deploy import locks
from mlplane.compiler.deploy.changes import changed_paths
from mlplane.compiler.deploy.stack import (
    Built,
    DeployError,
    Workspace,
    applied_record,
    origin_of,
    rebuilt,
    workspace_for,
)
from mlplane.compiler.plan import codes as plan_codes
from mlplane.compiler.plan.applied import (
    AppliedRecord,
    RecordError,
    read_record,
    record_path,
    repository_root,
    stale_reasons,
    write_record,
)
from mlplane.compiler.plan.json_format import SavedPlan

__all__ = ["DeployError", "Workspace", "apply", "destroy", "drift", "open_stack", "require_pulumi"]

PULUMI_INSTALL_URL = "https://www.pulumi.com/docs/install/"


def require_pulumi() -> None:
    """Stop before anything else when the engine is missing (docs/architecture.md: never fake an apply)."""
    if shutil.which("pulumi") is None:
        raise DeployError(
            "the pulumi CLI is not on PATH: apply, destroy and drift drive the Pulumi engine "
            "through the Automation API, which needs the CLI (it is not on PyPI). Install it "
            f"from {PULUMI_INSTALL_URL} and run the command again. Nothing was done. "
            "(mlplane plan needs no CLI.)"
        )
    try:
        from pulumi import automation as auto
    except ImportError:
        raise DeployError(
            "the Pulumi Python SDK is missing: pip install 'mlplane[pulumi]'. Nothing was done."
        ) from None
    try:  # what the Automation API runs first: `pulumi version`, checked against its minimum
        auto.PulumiCommand()
    except (OSError, subprocess.CalledProcessError, auto.InvalidVersionError, ValueError) as error:
        raise DeployError(
            f"the pulumi CLI on PATH ({safe_read.printable(str(shutil.which('pulumi')))}) cannot "
            f"be used: `pulumi version` {_version_problem(error)}. Install a current CLI from "
            f"{PULUMI_INSTALL_URL}. Nothing was done. [{plan_codes.PULUMI_UNUSABLE}]"
        ) from None


def _version_problem(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        return f"failed with exit code {error.returncode}"
    if isinstance(error, OSError):
        return f"could not run ({error.strerror or type(error).__name__})"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"reported no usable version ({safe_read.printable(text[:200])})"


# --- the engine boundary -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    failed: tuple[str, ...] = ()
    """URNs of resources whose operation failed."""
    message: str = ""
    steps: tuple[tuple[str, str], ...] = ()
    """``(urn, op)`` of every step that changes a resource (create, update, replace, delete),
    in the engine's order; a replacement is one ``replace`` step."""
    grown: tuple[str, ...] = ()
    """URNs whose refreshed live object holds list elements the resource does not declare
    (``changes.py``): the engine's diff cannot see them, so the run may leave them in place."""


@dataclass(frozen=True)
class Drifted:
    urn: str
    op: str
    keys: tuple[str, ...] = ()


class Engine(Protocol):
    """What the verbs need from a Pulumi stack (the Automation API behind :func:`open_stack`)."""

    def preview(self, echo: Callable[[str], None]) -> Outcome: ...

    def up(self, echo: Callable[[str], None]) -> Outcome: ...

    def destroy(self, echo: Callable[[str], None]) -> Outcome: ...

    def drift(self, echo: Callable[[str], None]) -> list[Drifted]: ...


def open_stack(workspace: Workspace) -> Engine:
    """Select or create the stack: the boundary to the Automation API (tests replace this).

    The project directory's program runs *inline*: the Automation API serves the language
    runtime to the engine from this process (:func:`inline_program`), so no
    ``pulumi-language-python`` plugin and no ``venv/`` in the project are needed; the program runs
    against the Pulumi SDK installed next to mlplane (the ``pulumi`` extra), the versions that the
    project's ``requirements.txt`` pins. ``Pulumi.yaml`` and ``Pulumi.<env>.yaml`` in the project
    directory are read as for ``pulumi up`` run there.
    """
    from pulumi import automation as auto

    settings = {workspace.stack: auto.StackSettings(config=dict(workspace.config))}
    options = auto.LocalWorkspaceOptions(
        work_dir=str(workspace.project_dir),
        env_vars=dict(workspace.env_vars),
        stack_settings=settings,
    )
    program = inline_program(workspace.project_dir)
    try:
        stack = _create_or_select(auto, workspace, program, options)
        for key, value in sorted(workspace.secrets.items()):
            stack.set_config(key, auto.ConfigValue(value, secret=True))
    except auto.CommandError as error:
        raise DeployError(
            f"pulumi could not open stack {workspace.stack}: {_last(error)}"
        ) from None
    return _AutomationEngine(stack)


OPEN_ATTEMPTS = 3


def _create_or_select(auto: Any, workspace: Workspace, program: Any, options: Any) -> Any:
    """Select the stack, or create it. Two runs may create the same new stack at once: the
    loser sees "already exists", or the local backend's lock files move under it; it then
    selects what the winner created (a few attempts, a second apart)."""
    args = {
        "stack_name": workspace.stack,
        "project_name": workspace.project,
        "program": program,
        "opts": options,
    }
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return auto.create_or_select_stack(**args)
        except auto.StackAlreadyExistsError:
            return auto.select_stack(**args)
        except auto.CommandError as error:
            if attempt == OPEN_ATTEMPTS or ".pulumi/locks/" not in str(error):
                raise
            time.sleep(attempt)
    raise AssertionError("unreachable")


def inline_program(project_dir: Path) -> Callable[[], None]:
    """The project's ``__main__.py`` as an Automation API inline program.

    It runs as ``pulumi up`` would run it: as ``__main__``, with the project directory first on
    ``sys.path`` and as the working directory, each time the engine asks (preview, then up),
    from a fresh namespace. The import path and working directory are restored afterwards.
    """
    main = project_dir / "__main__.py"

    def program() -> None:
        saved_path, saved_cwd = list(sys.path), os.getcwd()
        sys.path.insert(0, str(project_dir))
        os.chdir(project_dir)
        try:
            runpy.run_path(str(main), run_name="__main__")
        finally:
            os.chdir(saved_cwd)
            sys.path[:] = saved_path

    return program


_CHANGES = {
    "create": "create",
    "update": "update",
    "delete": "delete",
    "replace": "replace",
    "create-replacement": "replace",
    "delete-replaced": "replace",
    "discard-replaced": "replace",
}
"""The engine's step kinds that change a resource, as the plan's actions."""


class _AutomationEngine:
    """:class:`Engine` on a ``pulumi.automation.Stack``: output streamed, failures collected."""

    def __init__(self, stack: Any) -> None:
        self._stack = stack

    # Both refresh first: the engine then compares the program with what is really deployed
    # (not with its last record), so an apply also puts back what changed outside git.
    def preview(self, echo: Callable[[str], None]) -> Outcome:
        return self._run(
            lambda on_event: self._stack.preview(
                on_output=echo, on_event=on_event, diff=True, refresh=True
            )
        )

    def up(self, echo: Callable[[str], None]) -> Outcome:
        return self._run(
            lambda on_event: self._stack.up(on_output=echo, on_event=on_event, refresh=True)
        )

    def destroy(self, echo: Callable[[str], None]) -> Outcome:
        return self._run(lambda on_event: self._stack.destroy(on_output=echo, on_event=on_event))

    def drift(self, echo: Callable[[str], None]) -> list[Drifted]:
        found: dict[str, Drifted] = {}

        def on_event(event: Any) -> None:
            step = event.res_outputs_event or event.resource_pre_event
            meta = step.metadata if step is not None else None
            if meta is None or meta.type.startswith("pulumi:"):
                return
            op, keys = str(getattr(meta.op, "value", meta.op)), tuple(meta.diffs or ())
            # An unchanged step's outputs event holds the refreshed state ("new"; its pre event
            # holds the recorded one twice): an element added to a declared list leaves the
            # engine's view of the inputs unchanged, yet the live object holds it (changes.py).
            refreshed = op in _UNCHANGED and event.res_outputs_event is not None
            if not keys and (op == "update" or refreshed):
                keys = changed_paths(_outputs(meta.old), _outputs(meta.new))
            if op in ("update", "delete", "replace"):
                found[meta.urn] = Drifted(meta.urn, op, keys)
            elif refreshed and keys:
                found[meta.urn] = Drifted(meta.urn, "update", keys)

        self._call(
            lambda: self._stack.refresh(preview_only=True, on_output=echo, on_event=on_event)
        )
        return [found[urn] for urn in sorted(found)]

    def _run(self, action: Callable[[Callable[[Any], None]], object]) -> Outcome:
        failed: list[str] = []
        steps: dict[str, str] = {}
        grown: dict[str, None] = {}

        def on_event(event: Any) -> None:
            done = event.res_outputs_event
            meta = done.metadata if done is not None else None
            if meta is not None and _left_unchanged_with_grown_lists(meta):
                grown[meta.urn] = None
            pre = event.resource_pre_event
            if pre is not None:
                op = _CHANGES.get(str(getattr(pre.metadata.op, "value", pre.metadata.op)))
                if op is not None:
                    steps.setdefault(pre.metadata.urn, op)
            if event.res_op_failed_event is not None:
                failed.append(event.res_op_failed_event.metadata.urn)
            diagnostic = event.diagnostic_event
            if diagnostic is not None and diagnostic.severity == "error" and diagnostic.urn:
                failed.append(diagnostic.urn)

        message = self._call(lambda: action(on_event))
        unique = tuple(dict.fromkeys(failed))
        return Outcome(
            message is None and not unique,
            unique,
            message or "",
            tuple(steps.items()),
            tuple(grown),
        )

    @staticmethod
    def _call(action: Callable[[], object]) -> str | None:
        from pulumi import automation as auto

        try:
            action()
        except auto.CommandError as error:
            return _last(error)
        return None


_UNCHANGED = frozenset({"refresh", "same"})
"""Step operations that leave a resource as it is (its refresh, or no change in the update)."""


def _left_unchanged_with_grown_lists(meta: Any) -> bool:
    unchanged = str(getattr(meta.op, "value", meta.op)) in _UNCHANGED
    return unchanged and bool(changed_paths(_outputs(meta.old), _outputs(meta.new)))


def _outputs(state: Any) -> dict[str, Any] | None:
    outputs = getattr(state, "outputs", None)
    return outputs if isinstance(outputs, dict) else None


_LABELS_ONLY = re.compile(r"^\s*(code|stdout|stderr):\s*\d*\s*$")


def _last(error: Exception) -> str:
    """The engine's last meaningful line (a CommandError ends with bare ``stderr:`` labels)."""
    lines = [ln for ln in str(error).splitlines() if ln.strip() and not _LABELS_ONLY.match(ln)]
    errors = [ln for ln in lines if "error:" in ln]
    chosen = (errors or lines)[-1].strip() if lines else type(error).__name__
    chosen = re.sub(r"^(?:stderr|stdout):\s*", "", chosen)
    if "currently locked" in chosen:
        chosen += (
            " (another apply, destroy or drift of this stack is running: wait for it to end; "
            "mlplane removes the lock of a run killed on this machine by itself)"
        )
    return safe_read.printable(chosen[:700])


def environ() -> Mapping[str, str]:
    """The process environment (a function, so tests can give the verbs another one)."""
    return os.environ


# --- the verbs --------------------------------------------------------------------------------------


class Console(Protocol):
    """Where the verbs talk to the user (the CLI passes click's; tests a recorder)."""

    interactive: bool

    def echo(self, text: str) -> None: ...

    def confirm(self, prompt: str) -> bool: ...

    def ask(self, prompt: str) -> str: ...


Reporter = Callable[[builder.BuildResult], None]


def apply(
    path: Path, environment: str, console: Console, report: Reporter,
    saved: SavedPlan | None = None, yes: bool = False,
) -> int:  # fmt: skip
    """Rebuild, check the saved plan, preview, confirm, ``pulumi up``, record what was applied."""
    require_pulumi()
    _require_answer(console, yes, "apply")
    repository = repository_root(path)
    with rebuilt(path, environment, report) as built:
        current = applied_record(built)
        deployed = _deployed(built, repository)
        if saved is not None:
            _check_saved(saved, current, deployed)
        workspace = workspace_for(built, repository, environ())
        _clear_stale_locks(workspace, console)
        engine = open_stack(workspace)
        console.echo(f"Previewing stack {workspace.stack} ({workspace.backend}):")
        preview = engine.preview(console.echo)
        if not preview.ok:
            raise DeployError(f"the preview failed: {preview.message}; nothing was changed")
        if not yes and not console.confirm(f"Apply these changes to stack {workspace.stack}?"):
            console.echo("Apply cancelled; nothing was changed.")
            return exits.FAILED
        outcome = engine.up(console.echo)
        if not outcome.ok:
            raise DeployError(_failure("the apply", outcome, built))
        where = record_path(repository, built.system, environment)
        write_record(where, current)
        console.echo(f"Applied stack {workspace.stack}; recorded in {_shown(where, repository)}.")
        if outcome.grown:
            _warn_left_in_place(engine, console)
        _target_step(plugins.after_apply, built, console, "the stack was applied and recorded")
    return exits.OK


def destroy(
    path: Path,
    environment: str,
    console: Console,
    report: Reporter,
    yes: bool = False,
    target_cleanup: bool = True,
) -> int:
    """Delete every resource of the environment's stack, after the environment name is typed.

    The target's own step runs first (``plugins.before_destroy``: the Kubernetes target deletes
    the environment's Kubeflow recurring runs) and its failure stops the destroy. Without
    ``target_cleanup`` (``--skip-target-cleanup``) it is not run, and the console says so: for
    when it cannot succeed, such as a Kubeflow Pipelines API that no longer exists; what it
    would have removed is left as it is."""
    require_pulumi()
    _require_answer(console, yes, "destroy")
    repository = repository_root(path)
    with rebuilt(path, environment, report) as built:
        workspace = workspace_for(built, repository, environ())
        if not yes:
            prompt = f"Destroy every resource of stack {workspace.stack}? Type {environment!r} to confirm"
            if console.ask(prompt).strip() != environment:
                console.echo("Destroy cancelled; nothing was changed.")
                return exits.FAILED
        if target_cleanup:
            _target_step(
                plugins.before_destroy, built, console, "nothing was destroyed", SKIP_CLEANUP_HINT
            )
        elif _has_step(built, "before_destroy"):
            console.echo(
                "The target's clean-up before the destroy is skipped (--skip-target-cleanup): "
                "what it would have removed is left as it is."
            )
        _clear_stale_locks(workspace, console)
        outcome = open_stack(workspace).destroy(console.echo)
        if not outcome.ok:
            raise DeployError(_failure("the destroy", outcome, built))
        record_path(repository, built.system, environment).unlink(missing_ok=True)
        console.echo(f"Destroyed stack {workspace.stack}.")
    return exits.OK


def drift(path: Path, environment: str, console: Console, report: Reporter) -> int:
    """Refresh in preview mode; list what changed outside git. 0: none, 2: drift."""
    require_pulumi()
    repository = repository_root(path)
    with rebuilt(path, environment, report) as built:
        workspace = workspace_for(built, repository, environ())
        _clear_stale_locks(workspace, console)
        found = open_stack(workspace).drift(console.echo)
        if not found:
            console.echo(f"No drift: stack {workspace.stack} matches its recorded state.")
            return exits.OK
        console.echo(
            f"Drift in stack {workspace.stack}: {len(found)} resource(s) changed outside git:"
        )
        for item in found:
            keys = f" [{', '.join(item.keys)}]" if item.keys else ""
            name = item.urn.rsplit("::", 1)[-1]
            console.echo(
                f"  ~ {name}: {item.op}{keys}; declared at {origin_of(item.urn, built.resources)}"
            )
    return exits.DRIFT


SKIP_CLEANUP_HINT = ", or with --skip-target-cleanup to destroy without this step"
"""What a failed clean-up before the destroy adds to how to go on."""


def _target_step(
    step: Callable[..., None], built: Built, console: Console, state: str, hint: str = ""
) -> None:
    """Run the target's own deploy step (``plugins.after_apply``, ``plugins.before_destroy``);
    its failure fails the verb, saying where the stack stands (``state``) and how to go on
    (``hint``, after "run the command again once fixed")."""
    target = _target_of(built)
    if target is None or built.model is None:
        return
    try:
        step(target, built.model, built.resources, environ(), console.echo)
    except plugins.DeployStepError as error:
        raise DeployError(f"{error} ({state}; run the command again once fixed{hint})") from None


def _has_step(built: Built, name: str) -> bool:
    """Whether the target of ``built`` has the deploy step ``name`` (``plugins.DeployStep``)."""
    return callable(getattr(_target_of(built), name, None))


def _target_of(built: Built) -> plugins.Target | None:
    """The installed target ``built`` was lowered by (None: no system model, or not installed)."""
    if built.model is None:
        return None
    return plugins.targets().get(built.model.environment.target)


def _warn_left_in_place(engine: Engine, console: Console) -> None:
    """Name what the apply could not put back: list elements added outside git to a list the
    spec declares. The engine compares the program with the live object cut to the declared
    fields, so it saw nothing to change (``changes.py``); ``drift`` names them until removed."""
    for item in engine.drift(lambda _line: None):
        if item.op != "update" or not item.keys:
            continue
        name = item.urn.rsplit("::", 1)[-1]
        console.echo(
            f"warning: {name}: {', '.join(item.keys)} changed outside git and left in place "
            "(elements added to a declared list are not compared by the engine); remove them "
            "with kubectl, then 'mlplane drift' shows no drift"
        )


def _clear_stale_locks(workspace: Workspace, console: Console) -> None:
    """Remove the locks of killed runs on this machine, so this run completes theirs, and the
    empty checkpoint attribute files such a run can leave (``locks.empty_attributes``)."""
    stale = locks.stale_locks(workspace.backend, workspace.project, workspace.stack)
    for lock in stale:
        locks.remove(lock)
        console.echo(
            f"Removed the lock of an interrupted run of stack {workspace.stack} (process "
            f"{lock.pid}, which no longer runs; locked at {safe_read.printable(lock.timestamp)}): "
            "this run completes what it left."
        )
    if stale:
        for path in locks.empty_attributes(workspace.backend, workspace.project, workspace.stack):
            path.unlink(missing_ok=True)
            console.echo(f"Removed the empty checkpoint attributes the run left ({path.name}).")


def _require_answer(console: Console, yes: bool, verb: str) -> None:
    if not yes and not console.interactive:
        raise DeployError(
            f"{verb} asks for confirmation and there is no terminal to answer on: "
            "pass --yes (in CI, after reviewing a saved plan)",
            exit_code=exits.USAGE,
        )


def _deployed(built: Built, repository: Path) -> AppliedRecord | None:
    try:
        return read_record(record_path(repository, built.system, built.environment))
    except RecordError as error:
        raise DeployError(f"the applied-state record is unusable: {error}") from None


def _check_saved(saved: SavedPlan, current: AppliedRecord, deployed: AppliedRecord | None) -> None:
    reasons = stale_reasons(saved, current, deployed)
    if reasons:
        listed = "".join(f"\n  - {reason}" for reason in reasons)
        raise DeployError(
            f"the saved plan no longer matches what would be applied; nothing was done "
            f"(apply exactly what was reviewed):{listed}\nmake a new plan with mlplane plan --out "
            "and review it"
        )


def _failure(what: str, outcome: Outcome, built: Built) -> str:
    lines = [f"{what} failed: {outcome.message or 'some resources failed'}"]
    lines += [
        f"  {urn.rsplit('::', 1)[-1]}: declared at {origin_of(urn, built.resources)}"
        for urn in outcome.failed
    ]
    return "\n".join(lines)


def _shown(path: Path, repository: Path) -> str:
    try:
        return path.relative_to(repository).as_posix()
    except ValueError:
        return path.name
