"""Making a plan: compile the head (the working tree) and a base, lower both, compare.

The base is a git revision (read from git objects, ``compiler/plan/gitsource.py``), ``none`` (a first
deployment: everything is created) or ``applied`` (the record of the last apply,
``compiler/plan/applied.py``). Both sides are compiled by the same pipeline and lowered by the
same target, and both graphs are hashed as ``mlplane build`` writes them (``resources.json``,
spec files named relative to the spec directory), so a plan's graph hash is the SHA-256 of the
``resources.json`` that the build of the same spec writes (``compiler/plan/lower.py``). A git
base's whole side goes through the plan cache (``compiler/plan/base_entry.py``: a warm plan
reads the base's blobs from git and nothing of it is loaded, compiled or lowered), and when a
core is idle the base is done in a forked child beside the head
(``compiler/plan/parallel.py``); neither changes the plan.

The graph rules of the policy packs (``compiler/policy/engine.py``) run on the head's graph once it is
lowered, outside the cached lowering, so they judge the graph whether it was lowered now or
read back from the cache; their findings join the head's diagnostics, tuned and waived as in
``mlplane build`` (waiver expiry aside: a plan does not depend on the date). Errors among them
fail the head as a spec error does, because ``build`` and ``apply`` would refuse the same
spec. The system rules are ``mlplane validate``'s; the plan leaves them to it.

A base that does not compile is not fatal: the plan says so, summarises its diagnostics and
shows the head as all-create. A head that does not compile, or a base revision git refuses or
cannot find, is: the plan then carries only those problems.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import Any, Literal

from mlplane.compiler.build.pipeline import (
    UnknownEnvironmentError,
    compile_document,
    compile_spec,
    no_cyclic_gc,
)
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics
from mlplane.compiler.core.ir import System
from mlplane.compiler.core.source import DEFAULT_LIMITS, Limits
from mlplane.compiler.frontend.document import Document, assemble, display_name
from mlplane.compiler.frontend.loader import load_bytes
from mlplane.compiler.plan import codes as plan_codes
from mlplane.compiler.plan import parallel as plan_parallel
from mlplane.compiler.plan.applied import RecordError, read_record, record_path, repository_root
from mlplane.compiler.plan.base_entry import (
    BaseKey,
    CachedBase,
    base_key,
    read_base,
    store_base,
)
from mlplane.compiler.plan.cache import PlanCache
from mlplane.compiler.plan.diff import diff_graphs, readers_of
from mlplane.compiler.plan.gitsource import (
    BlobsAtRevision,
    head_commit,
    load_blobs,
    read_blobs_at,
)
from mlplane.compiler.plan.governance import governance, governance_risks, marked
from mlplane.compiler.plan.lower import Lowered, graph_object, lower
from mlplane.compiler.plan.model import (
    BaseKind,
    Plan,
    ReaderTable,
    ResourceJson,
    Side,
    SpecChange,
)
from mlplane.compiler.plan.redeploy import redeploys, with_redeploys
from mlplane.compiler.plan.risk import resource_risks, spec_risks
from mlplane.compiler.plan.spec_changes import Summary, data_sources, models
from mlplane.compiler.plan.spec_sections import (
    alert_counts,
    alerting,
    environment,
    policies,
    security,
    slas,
    system,
    waivers,
)
from mlplane.compiler.plan.tables import renamed
from mlplane.compiler.policy.engine import PolicyRun
from mlplane.schema.formats import DNS_LABEL

BASE_NONE = "none"
BASE_APPLIED = "applied"
WORKING_TREE = "working tree"
SideKind = BaseKind | Literal["worktree"]


def _display_resources(document: Mapping[str, Any], root: Path | None) -> dict[str, ResourceJson]:
    """Resources of a ``resources.json`` document by name, spec files named from the cwd."""
    namer = cache(lambda rel: display_name(root / rel) if root else rel)
    return {str(r["name"]): renamed(r, namer) for r in document.get("resources", ())}


def make_plan(
    path: Path,
    env: str,
    base: str = "HEAD",
    limits: Limits = DEFAULT_LIMITS,
    *,
    use_cache: bool = True,
    parallel: bool | None = None,
) -> Plan:
    """The plan of ``env`` of the spec at ``path`` against ``base``.

    With ``use_cache``, a git base's lowering is looked up in and stored to the repository's
    plan cache (``compiler/plan/cache.py``), and when the cache holds the base, the head's
    lowering takes the units of the base's lowering whose keys match (``base_entry.py``);
    otherwise, with ``parallel`` (None: when a core is idle), a git base is compiled and
    lowered in a forked child while this process does the head (``compiler/plan/parallel.py``).
    The plan is the same either way.

    Raises ``UnknownEnvironmentError`` when the head does not define ``env``. The cyclic
    garbage collector is paused throughout, as ``compile_spec`` pauses it: reading the base,
    compiling it and lowering both sides build large acyclic structures, and collections over
    them cost as much as the work itself (``benchmarks/plan_bench.py``).
    """
    with no_cyclic_gc():
        git = _kind_of(base) == "git"
        cache = _cache_of(path) if use_cache and git else None
        read = _read_git(path, env, base, limits, cache) if git else None
        hit = read is not None and read.cached is not None
        if parallel is None:
            parallel = not hit and plan_parallel.spare_core()
        if not git or not parallel or hit:
            return _make_plan(path, env, base, limits, use_cache, None, read)
        job = partial(_base, path, env, base, "", None, limits, cache, read)
        pending = plan_parallel.start(job)
        try:
            return _make_plan(path, env, base, limits, use_cache, pending)
        finally:
            pending.cancel()  # when the head failed, the base is not wanted


BaseResult = tuple[Side | None, tuple[Diagnostic, ...]]


def _make_plan(
    path: Path,
    env: str,
    base: str,
    limits: Limits,
    use_cache: bool,
    pending: plan_parallel.Pending[BaseResult] | None,
    read: GitRead | None = None,
) -> Plan:
    """The plan; ``read``: a git base as read before the head was compiled: when the plan
    cache held it, the head's lowering takes the base's units where their keys match."""
    compiled = compile_spec(path, [env], limits)
    commit = head_commit(path if path.is_dir() else path.parent)
    known = read.cached.units if read is not None and read.cached is not None else None
    lowered = lower(compiled, env, known=known) if compiled.ok else None
    if lowered is not None:
        check_graph(lowered, compiled.diagnostics)
    diagnostics = compiled.sorted_diagnostics()
    if lowered is None or not compiled.ok:
        head = Side(WORKING_TREE, "failed", commit=commit, diagnostics=diagnostics)
        name = _declared_name(compiled.document)
        unread = Side(base, "none", _kind_of(base))  # not read: the head has no plan
        return Plan(env, head, unread, system=name, problems=diagnostics)
    head = _side(WORKING_TREE, "worktree", commit, lowered, diagnostics)
    root = compiled.document.root if compiled.document else None
    if pending is not None:
        found, problems = pending.result()
    else:
        cache = _cache_of(path) if use_cache and _kind_of(base) == "git" else None
        found, problems = _base(path, env, base, lowered.system.name, root, limits, cache, read)
    if found is None:
        failed = Side(base, "failed", _kind_of(base))
        return Plan(env, head, failed, system=lowered.system.name, problems=problems)
    return compare(env, head, found)


def check_graph(lowered: Lowered, diagnostics: Diagnostics) -> None:
    """Run the graph rules on the head's graph (``lowered``, fresh or from the cache), adding
    their findings to ``diagnostics``. Waived findings are dropped, as ``build`` drops them;
    an unmatched waiver is not reported, since the system rules did not run."""
    run = PolicyRun()
    run.check_graph(lowered.system, graph_object(lowered), diagnostics, Diagnostics())


def _side(
    label: str,
    kind: SideKind,
    commit: str | None,
    lowered: Lowered,
    diagnostics: tuple[Diagnostic, ...],
) -> Side:
    return Side(
        label,
        "compiled",
        kind,
        commit=commit,
        spec_sha256=lowered.spec_sha256,
        graph_sha256=lowered.graph_sha256,
        system=lowered.system,
        resources=lowered.resources,
        diagnostics=diagnostics,
        files=tuple(sorted(lowered.spec_files)),
    )


def _cache_of(path: Path) -> PlanCache | None:
    return PlanCache.open(repository_root(path))


def _kind_of(base: str) -> BaseKind:
    return "none" if base == BASE_NONE else "applied" if base == BASE_APPLIED else "git"


def _base(
    path: Path,
    env: str,
    base: str,
    system_name: str,
    root: Path | None,
    limits: Limits,
    cache: PlanCache | None,
    read: GitRead | None = None,
) -> BaseResult:
    """The base side, or None with the problems that prevent reading it (``system_name`` and
    ``root`` are only read for ``--base applied``; ``read``: the git base already read)."""
    if base == BASE_NONE:
        return Side(BASE_NONE, "none", "none"), ()
    if base == BASE_APPLIED:
        return _applied_base(path, env, system_name, root, limits)
    read = read or _read_git(path, env, base, limits, cache)
    blobs, diagnostics, key = read.blobs, read.diagnostics, read.key
    if blobs.commit is None:
        return None, diagnostics.sorted()
    if read.cached is not None:
        side = _side(base, "git", blobs.commit, read.cached.lowered, read.cached.diagnostics)
        return replace(side, readers=read.cached.readers, lineage=read.cached.lineage), ()
    found = load_blobs(path, blobs, diagnostics, limits)
    if found.status == "absent" or found.document is None:
        return Side(
            base,
            found.status if found.status == "absent" else "failed",
            "git",
            found.commit,
            diagnostics=diagnostics.sorted(),
        ), ()
    stored = partial(store_base, cache, key) if cache is not None and key is not None else None
    return _compiled_base(found.document, env, base, found.commit, diagnostics, stored), ()


@dataclass(frozen=True)
class GitRead:
    """A git base's blobs (with the problems reading them), its cache key and its side from
    the plan cache when the cache holds it."""

    blobs: BlobsAtRevision
    diagnostics: Diagnostics
    key: BaseKey | None
    cached: CachedBase | None


def _read_git(path: Path, env: str, base: str, limits: Limits, cache: PlanCache | None) -> GitRead:
    """Read the base revision's blobs and, with a ``cache``, its entry: done before the head is
    compiled, so that the head's lowering can take the base's units."""
    diagnostics = Diagnostics()
    blobs = read_blobs_at(path, base, diagnostics, limits)
    if cache is None or blobs.commit is None or blobs.status != "loaded":
        return GitRead(blobs, diagnostics, None, None)
    key = base_key(env, path, blobs.blobs, limits)
    cached = read_base(cache, key) if key is not None else None
    return GitRead(blobs, diagnostics, key, cached)


def _compiled_base(
    document: Document,
    env: str,
    label: str,
    commit: str | None,
    diagnostics: Diagnostics,
    store: Callable[[Lowered, tuple[Diagnostic, ...], ReaderTable], None] | None,
) -> Side:
    try:
        compiled = compile_document(document, [env], diagnostics)
    except UnknownEnvironmentError:
        return Side(label, "new-environment", "git", commit)
    known: Mapping[str, object] | None = {} if store is not None else None  # units to store
    lowered = lower(compiled, env, known=known) if compiled.ok else None
    if lowered is None:
        return Side(label, "failed", "git", commit, diagnostics=diagnostics.sorted())
    check_graph(lowered, diagnostics)  # as on the head, so their warnings compare
    found = diagnostics.sorted()
    side = _side(label, "git", commit, lowered, found)
    if store is None:
        return side
    readers = readers_of(lowered.resources)
    store(lowered, found, readers)
    return replace(side, readers=readers)


def _applied_base(
    path: Path, env: str, system_name: str, root: Path | None, limits: Limits
) -> tuple[Side | None, tuple[Diagnostic, ...]]:
    where = record_path(repository_root(path), system_name, env)
    try:
        record = read_record(where)
    except RecordError as error:
        problems = Diagnostics()
        problems.error(plan_codes.PLAN_FILE_INVALID, str(error), None)
        return None, problems.sorted()
    if record is None:
        return Side(BASE_APPLIED, "absent", "applied"), ()
    diagnostics = Diagnostics()
    found = _recorded_system(record.spec_files, env, root, diagnostics, limits)
    side = Side(
        BASE_APPLIED, "compiled", "applied", record.commit, record.spec_sha256,
        record.graph_sha256, found, _display_resources(record.graph, root), diagnostics.sorted(),
        tuple(sorted(record.spec_files)),
    )  # fmt: skip
    return side, ()


def _recorded_system(
    files: Mapping[str, str], env: str, root: Path | None, diagnostics: Diagnostics, limits: Limits
) -> System | None:
    """The system model of the applied spec, for the ML summary; None when this mlplane no
    longer compiles it (the resource diff, from the recorded graph, still stands)."""
    document = _document_of(files, root, diagnostics, limits)
    try:
        compiled = compile_document(document, [env], diagnostics) if document else None
    except UnknownEnvironmentError:
        return None
    return compiled.systems.get(env) if compiled and compiled.ok else None


def _document_of(
    files: Mapping[str, str], root: Path | None, diagnostics: Diagnostics, limits: Limits
) -> Document | None:
    loaded = []
    for name in sorted(files):
        shown = display_name(root / name) if root else name
        result, problems = load_bytes(files[name].encode("utf-8"), shown, limits)
        diagnostics.extend(problems)
        if result is not None:
            loaded.append(result)
    if diagnostics.has_errors or not loaded:
        return None
    document = assemble(loaded, diagnostics)
    document.root = root
    return document


def compare(env: str, head: Side, base: Side) -> Plan:
    """The plan between two sides (the head compiled; the base in any state)."""
    assert head.system is not None
    base_resources = base.resources if base.status == "compiled" else {}
    readers = base.readers if base.status == "compiled" else None
    resources, unchanged = diff_graphs(base_resources, head.resources, readers)
    lines = with_redeploys(summarise(head, base), redeploys(resources, head.system, head.resources))
    section = governance(head, base)
    raised = spec_risks(lines)
    own = governance_risks(section, raised)
    risks = [*raised, *own, *resource_risks(resources)]
    lines = marked(lines, own)
    return Plan(
        environment=env,
        head=head,
        base=base,
        system=head.system.name,
        target=head.system.environment.target,
        resources=resources,
        unchanged=unchanged,
        spec_changes=tuple(lines),
        risks=tuple(risks),
        warnings=tuple(_warnings(env, base)),
        new_warnings=new_warnings(head, base),
        governance=section,
    )


def new_warnings(head: Side, base: Side) -> tuple[Diagnostic, ...] | None:
    """The head's warnings that the base lacks, matched by code, message and spec path (so a
    warning whose line moved is not new), counting repeats; see :attr:`Plan.new_warnings`."""
    found = head.warnings
    if base.status in ("none", "absent", "new-environment"):
        return found
    if base.status != "compiled" or base.kind != "git":
        return None
    known = Counter((d.code, d.message, d.path) for d in base.warnings)
    fresh = []
    for diagnostic in found:
        key = (diagnostic.code, diagnostic.message, diagnostic.path)
        if known[key] > 0:
            known[key] -= 1
        else:
            fresh.append(diagnostic)
    return tuple(fresh)


def summarise(head: Side, base: Side) -> list[SpecChange]:
    """The ML summary, section by section (empty when the applied base cannot be read)."""
    assert head.system is not None
    if base.status == "compiled" and base.system is None:
        return []
    old = base.system if base.status == "compiled" else None
    summary = Summary(head.system, old, alert_counts(head.resources), alert_counts(base.resources))
    system(summary)
    environment(summary, head.system.environment.name)
    data_sources(summary)
    models(summary)
    slas(summary)
    security(summary)
    policies(summary)
    waivers(summary)
    alerting(summary)
    return summary.lines


def _warnings(env: str, base: Side) -> list[str]:
    at = f"{base.label} ({base.commit[:12]})" if base.commit else base.label
    if base.status == "failed":
        errors = sum(1 for d in base.diagnostics if d.severity == "error")
        return [
            f"the base {at} does not compile ({errors} error(s)); the head is shown as all-create"
        ]
    if base.status == "absent" and base.kind == "applied":
        return [
            f"nothing has been applied to environment {env} from this repository: a first deployment"
        ]
    if base.status == "absent":
        return [f"no spec at base {at}: a first deployment, everything is created"]
    if base.status == "new-environment":
        return [f"environment {env} does not exist at base {at}: everything is created"]
    if base.status == "compiled" and base.system is None:
        return ["the applied spec no longer compiles with this mlplane; the ML summary is left out"]
    return []


def _declared_name(document: Document | None) -> str | None:
    """``metadata.name`` when it is a plain DNS label, so a failed plan keeps its PR marker."""
    metadata = document.data.get("metadata") if document else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) and DNS_LABEL.fullmatch(name) else None
