"""The record of the last successful apply: ``.mlplane/applied/<system>-<env>.json``.

Why keep it: a plan against a git revision says what changes between two *specs*; what matters
before an apply is what changes against what is *deployed*. ``mlplane apply`` records the graph
it applied (exactly ``resources.json`` of the build it ran) with the spec files it came from and
the commit, so ``mlplane plan --base applied`` diffs against reality as mlplane last left it,
and ``apply --plan`` can refuse a plan reviewed against a base that is no longer deployed.
(Changes made outside mlplane are ``mlplane drift``'s job.)

The record lives in the repository (``.mlplane/`` is git-ignored), next to the default local
state backend, because both describe the same deployments. It is written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from mlplane import __version__
from mlplane.compiler.build.writer import write_new_file
from mlplane.compiler.core import canonical, safe_read
from mlplane.compiler.plan.gitsource import Git, GitError
from mlplane.compiler.plan.json_format import SavedPlan
from mlplane.compiler.plan.local_state import STATE_DIR, ensure_state_dir

APPLIED_DIR = "applied"
RECORD_VERSION = 1


class RecordError(Exception):
    """The record exists but cannot be used; the message says why."""


@dataclass(frozen=True)
class AppliedRecord:
    system: str
    environment: str
    commit: str | None
    spec_sha256: str
    graph_sha256: str
    spec_files: Mapping[str, str]
    """Name relative to the spec directory -> text, as compiled."""
    graph: Mapping[str, Any]
    """The applied ``resources.json`` (spec files named relative to the spec directory)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "tool": {"name": "mlplane", "version": __version__},
            "system": self.system,
            "environment": self.environment,
            "commit": self.commit,
            "specSha256": self.spec_sha256,
            "graphSha256": self.graph_sha256,
            "specFiles": dict(sorted(self.spec_files.items())),
            "graph": self.graph,
        }


def repository_root(start: Path) -> Path:
    """The work tree of the git repository holding ``start`` (a file or directory), found as
    :func:`~mlplane.compiler.plan.gitsource.find_repository` finds it; else the working
    directory (also when that repository is refused)."""
    try:
        git = Git.of(start)
    except GitError:
        git = None
    return git.repository.work_tree if git is not None else Path.cwd()


def record_path(root: Path, system: str, environment: str) -> Path:
    return root / STATE_DIR / APPLIED_DIR / f"{system}-{environment}.json"


def read_record(path: Path) -> AppliedRecord | None:
    """The record at ``path``; None when there is none (nothing applied yet).

    Read as every file mlplane reads back is (``compiler/core/safe_read.py``): a regular file,
    not a link, of at most :data:`MAX_RECORD_BYTES`, bounded JSON depth, and the shape of a
    record (its graph that of ``resources.json``) checked before any field is used."""
    try:
        document = safe_read.read_json(path, MAX_RECORD_BYTES)
        if isinstance(document, dict) and document.get("version") != RECORD_VERSION:
            version = safe_read.printable(repr(document.get("version"))[:40])
            shown = safe_read.shown(path)
            raise RecordError(f"{shown} has version {version}, not {RECORD_VERSION}")
        record = safe_read.validated(document, _RECORD, safe_read.shown(path), _WHAT)
    except FileNotFoundError:
        return None
    except safe_read.ReadBackError as error:
        raise RecordError(str(error)) from None
    return AppliedRecord(
        system=record.system,
        environment=record.environment,
        commit=record.commit,
        spec_sha256=record.specSha256,
        graph_sha256=record.graphSha256,
        spec_files=record.specFiles,
        graph=document["graph"],
    )


MAX_RECORD_BYTES = 128 * 2**20
"""As the plan cache's entries: a graph of some 12,000 resources is about 30 MiB."""
_WHAT = "an mlplane applied-state record"


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)


class _Origin(_Shape):
    path: str
    file: str
    line: int
    column: int


class _Options(_Shape):
    protect: bool
    retainOnDelete: bool
    deleteBeforeReplace: bool
    ignoreChanges: list[str]
    additionalSecretOutputs: list[str]
    provider: str | None = None


class _Resource(_Shape):
    """One resource as ``Resource.to_json`` writes it."""

    type: str
    name: str
    component: bool
    parent: str | None
    dependsOn: list[str]
    options: _Options
    inputs: dict[str, Any]
    origin: _Origin


class _Graph(_Shape):
    """``resources.json`` (``ResourceGraph.to_json``)."""

    version: int
    environment: str
    target: str
    resources: list[_Resource]


class _Record(_Shape):
    """What :meth:`AppliedRecord.to_json` writes (``tool`` is informative and not checked)."""

    version: int
    system: str
    environment: str
    commit: str | None
    specSha256: str
    graphSha256: str
    specFiles: dict[str, str]
    graph: _Graph


_RECORD: TypeAdapter[_Record] = TypeAdapter(_Record)


def write_record(path: Path, record: AppliedRecord) -> None:
    """Write atomically (the writer's rule): a crash leaves the previous record, never half."""
    text = canonical.canonical_json(record.to_json())
    ensure_state_dir(path.parent)
    write_new_file(path, text)


def stale_reasons(
    saved: SavedPlan, current: AppliedRecord, deployed: AppliedRecord | None
) -> list[str]:
    """Why the saved plan is not what applying ``current`` would do; empty when it still is.

    ``current`` is the rebuilt head (as the record it would leave); ``deployed`` the record of
    the last apply, when this repository has one: a plan reviewed against another base than
    what is deployed would not describe what the apply does.
    """
    reasons = []
    if (saved.system, saved.environment) != (current.system, current.environment):
        reasons.append(
            f"the plan is for {saved.system}/{saved.environment}, "
            f"not {current.system}/{current.environment}"
        )
    if saved.head_commit != current.commit:
        reasons.append(
            f"the plan was made at commit {_short(saved.head_commit)}; "
            f"the checkout is at {_short(current.commit)}"
        )
    if saved.spec_sha256 != current.spec_sha256:
        reasons.append("the spec files changed since the plan was made (spec hash differs)")
    if saved.graph_sha256 != current.graph_sha256:
        reasons.append("the resources to apply differ from the reviewed plan (graph hash differs)")
    if deployed is not None and saved.base_graph_sha256 != deployed.graph_sha256:
        reasons.append(
            f"the plan was reviewed against base {saved.base_ref} ({_short(saved.base_commit)}), "
            f"but what is deployed was applied from {_short(deployed.commit)}: "
            "re-plan with --base applied"
        )
    return reasons


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "no commit"
