"""The stack a plan is applied to: the rebuilt project, its state backend, passphrase and secrets.

Everything ``mlplane apply``, ``destroy`` and ``drift`` (``compiler/deploy/engine.py``) decide before
the Pulumi engine is touched lives here, so that it can be checked (and tested) without the
``pulumi`` CLI:

- the environment is rebuilt as ``mlplane build`` builds it (policies included: a spec that
  breaks a rule is not deployed) into a temporary directory, so what is applied is exactly what
  the spec says now;
- the stack is ``<system>-<env>``, refused unless it is a plain stack name (QUALITY §A row 34);
- the state backend is the environment's ``state:`` (``file://``, ``s3://``, ``gs://``,
  ``azblob://``, Pulumi Cloud ``https://``); a relative ``file://`` URL and the default (no
  ``state:``) are resolved inside the repository (``.mlplane/state/``, git-ignored), so a first
  user needs no account;
- the secrets passphrase comes from ``PULUMI_CONFIG_PASSPHRASE`` (or ``..._FILE``) in the
  environment, never from the spec; secret config the program reads (``{"$secret": KEY}``
  inputs) comes from ``MLPLANE_SECRET_<KEY>`` variables when set.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from mlplane.compiler.build import outputs as builder
from mlplane.compiler.core.graph import SECRET_MARKER, walk
from mlplane.compiler.core.ir import System
from mlplane.compiler.plan.applied import AppliedRecord
from mlplane.compiler.plan.local_state import STATE_DIR, ensure_state_dir
from mlplane.compiler.plan.lower import graph_digest, spec_hash, spec_texts
from mlplane.schema.formats import PORTABLE_NAME

STATE_SUBDIR = "state"
_PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class DeployError(Exception):
    """The verb stops; the message says why and what to do. ``exit_code`` is the CLI's."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Workspace:
    """Everything :func:`open_stack` needs, decided without touching the engine."""

    project_dir: Path
    project: str
    """The Pulumi project name (``name`` of the project directory's ``Pulumi.yaml``)."""
    stack: str
    backend: str
    config: Mapping[str, str]
    secrets: Mapping[str, str] = field(default_factory=dict)
    env_vars: Mapping[str, str] = field(default_factory=dict)


def today() -> date:
    """The date waiver expiry is judged against (a function, so tests can fix it)."""
    return date.today()


def stack_name(system: str, environment: str) -> str:
    """``<system>-<env>``, refused unless it is a plain Pulumi stack name (QUALITY §A row 34)."""
    name = f"{system}-{environment}"
    if not PORTABLE_NAME.fullmatch(name):
        raise ValueError(f"stack name {name!a} is not a plain Pulumi stack name")
    return name


def backend_url(state: str | None, repository: Path) -> str:
    """The state backend: ``state:`` as written, relative ``file://`` URLs and the default
    resolved inside the repository (where ``.mlplane/`` is git-ignored)."""
    if state is None:
        return (repository / STATE_DIR / STATE_SUBDIR).resolve().as_uri()
    if state.startswith("file://") and not state.startswith(("file:///", "file://~")):
        return (repository / state.removeprefix("file://")).resolve().as_uri()
    return state


def passphrase_problem(backend: str, environ: Mapping[str, str]) -> str | None:
    """Self-managed backends encrypt secrets with a passphrase that only the environment holds."""
    if backend.startswith("https://") or any(environ.get(v) for v in _PASSPHRASE_VARIABLES):
        return None
    return (
        f"state backend {backend} encrypts stack secrets with a passphrase: set "
        "PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) in the environment, "
        "from your secret manager; it is never read from the spec"
    )


def secret_values(keys: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Secret config from ``MLPLANE_SECRET_<KEY>`` variables (``-`` and ``.`` become ``_``)."""
    found = {}
    for key in keys:
        variable = "MLPLANE_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", key).upper()
        if variable in environ:
            found[key] = environ[variable]
    return found


@dataclass
class Built:
    """One rebuilt environment in a temporary directory."""

    out: Path
    system: str
    environment: str
    state: str | None
    commit: str | None
    spec_files: dict[str, str]
    graph_json: str
    resources: dict[str, Any]
    model: System | None = field(default=None, repr=False)
    """The system model the environment was built from (the target's deploy steps read it)."""

    @property
    def spec_sha256(self) -> str:
        return spec_hash(self.spec_files)

    @property
    def graph_sha256(self) -> str:
        return graph_digest(json.loads(self.graph_json))


@contextmanager
def rebuilt(
    path: Path, environment: str, report: Callable[[builder.BuildResult], None]
) -> Iterator[Built]:
    """Build ``environment`` into a temporary directory (removed afterwards)."""
    from mlplane.compiler.plan.gitsource import head_commit

    with tempfile.TemporaryDirectory(prefix="mlplane-deploy-") as directory:
        out = Path(directory) / "build"
        result = builder.build(path, environment, out, policies=True, today=today())
        if not result.ok:
            report(result)
            raise DeployError("the build failed; nothing was done")
        system = result.compiled.systems[environment]
        graph_json = (out / builder.RESOURCES).read_text(encoding="utf-8")
        resources = {r["name"]: r for r in json.loads(graph_json)["resources"]}
        commit = head_commit(path if path.is_dir() else path.parent)
        texts = spec_texts(result.compiled.document)
        yield Built(
            out,
            system.name,
            environment,
            system.environment.state,
            commit,
            texts,
            graph_json,
            resources,
            system,
        )


def workspace_for(built: Built, repository: Path, environ: Mapping[str, str]) -> Workspace:
    backend = backend_url(built.state, repository)
    problem = passphrase_problem(backend, environ)
    if problem is not None:
        raise DeployError(problem)
    if backend.startswith("file://"):
        local = Path(backend.removeprefix("file://"))
        ensure_state_dir(local)  # .mlplane/state: git-ignored from the start
        local.mkdir(parents=True, exist_ok=True)
    project = built.out / "pulumi"
    settings = yaml.safe_load((project / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    stack_file = project / f"Pulumi.{built.environment}.yaml"
    config = (yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}).get("config") or {}
    keys = sorted({k for r in built.resources.values() for k in _secret_keys(r.get("inputs"))})
    try:
        stack = stack_name(built.system, built.environment)
    except ValueError as error:
        raise DeployError(str(error), exit_code=2) from None
    return Workspace(
        project_dir=project,
        project=str(settings.get("name") or built.system),
        stack=stack,
        backend=backend,
        config={str(k): str(v) for k, v in config.items()},
        secrets=secret_values(keys, environ),
        env_vars={"PULUMI_BACKEND_URL": backend, **engine_settings(environ)},
    )


PATCH_FORCE = "PULUMI_K8S_ENABLE_PATCH_FORCE"


def engine_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """What the engine's providers are told beyond the stack's config.

    The spec in git owns every field it declares: when another field manager took one over
    (``kubectl edit``, ``kubectl scale``: the drift that ``mlplane drift`` reports), the
    Kubernetes provider's server-side apply overwrites it instead of failing on the conflict
    (``PULUMI_K8S_ENABLE_PATCH_FORCE``). Fields that controllers own after creation are left out
    of the generated program's patches (``ignoreChanges``), so forcing never fights a controller.
    A value already set in the environment is kept.
    """
    return {PATCH_FORCE: environ.get(PATCH_FORCE, "true")}


def _secret_keys(inputs: Any) -> Iterator[str]:
    """The stack config keys a resource's inputs (as ``resources.json`` holds them) read through
    secret markers: the markers the graph's walk meets (``graph.walk``), which the program's
    printer read the same keys from when the build wrote the program."""
    for marker in walk(inputs).secrets:
        yield str(marker[SECRET_MARKER])


# --- records --------------------------------------------------------------------------------------


def applied_record(built: Built) -> AppliedRecord:
    """What this build would leave deployed, in the form of the applied record."""
    return AppliedRecord(
        system=built.system,
        environment=built.environment,
        commit=built.commit,
        spec_sha256=built.spec_sha256,
        graph_sha256=built.graph_sha256,
        spec_files=built.spec_files,
        graph=json.loads(built.graph_json),
    )


def origin_of(urn: str, resources: Mapping[str, Any]) -> str:
    """``mlplane.yaml:82 (models.scorer.serving)`` for a URN's logical name, from resources.json."""
    name = urn.rsplit("::", 1)[-1]
    origin = (resources.get(name) or {}).get("origin") or {}
    if not origin.get("file"):
        return "not declared by the spec"
    return f"{origin['file']}:{origin['line']} ({origin.get('path', '')})"
