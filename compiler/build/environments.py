"""``mlplane build`` of several environments in one process, sharing the compile.

    load, scan, schema, resolve, system policies      once, in this process
        |-- fork --> lower env a, graph rules, emit, stage build/a   (a worker process)
        |-- fork --> lower env b, ...                                  (another worker)
        '--------->  lower env c, ...                                  (this process)
    unmatched waivers, then: every environment swapped in, or none

The front of the pipeline is the same for every environment, so it runs once. What follows is
independent per environment: lowering, the graph rules, the emitters and staging the output
(``compiler/build/writer.py``: written next to the destination, unchanged files hard-linked).
It runs in forked worker processes on the cores the machine leaves free (the 1-minute load
average), and in this process for the rest; environments that would not divide evenly among
those cores get a process each (:func:`processes`). A worker sends back its diagnostics, the
waivers it used, the file list and where it staged, pickled through a pipe. A worker that fails
in any way (an exception, a crash, a result that cannot be pickled) is replaced by doing its
work here, so the result, and any exception, is what a sequential build gives: output depends
only on the spec, never on how the work was spread. Forking happens only where it is safe
(Linux, a single thread).

After the workers, the waivers that matched no finding in any environment are reported
(``PolicyRun.finish``); then, when there is no error anywhere, each environment's staged tree
is swapped in atomically, one environment after the other; otherwise every staged tree is
removed and no output changes. ``--check`` stages nothing: each worker compares.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlplane.compiler.build import record as records
from mlplane.compiler.build.pipeline import CompileResult, compile_spec, no_cyclic_gc, target_of
from mlplane.compiler.build.writer import (
    check_ancestors,
    check_destination,
    output_lock,
    remove_leftovers,
    stage_tree,
    swap_in,
    tree_digests,
)
from mlplane.compiler.core import plugins, resource_texts
from mlplane.compiler.core.diagnostics import Diagnostics, Location
from mlplane.compiler.core.graph import known_needs, remembered_walks
from mlplane.compiler.core.resource_texts import ResourceTexts
from mlplane.compiler.core.source import DEFAULT_LIMITS

if TYPE_CHECKING:
    from mlplane.compiler.build.cache import Reusing
    from mlplane.compiler.build.outputs import Finding
    from mlplane.compiler.policy.engine import PolicyRun

T = TypeVar("T")
Item = TypeVar("Item")


@dataclass(frozen=True)
class Request:
    """One environment to build, and where."""

    environment: str
    out_dir: Path


@dataclass(frozen=True)
class Outcome:
    """What the work on one environment found (in a worker or here)."""

    environment: str
    diagnostics: Diagnostics
    waived: Diagnostics
    used: frozenset[Location] = frozenset()
    files: tuple[str, ...] = ()
    findings: tuple[tuple[str, Finding], ...] = ()
    staged: Path | None = None
    written: tuple[str, ...] = ()
    taken: tuple[int, int] = (0, 0)
    """From the build cache: the lowering's units taken, and the emitted texts taken."""
    digests: dict[str, str] | None = None
    """The SHA-256 of every file of the output, by path (for the build's record:
    ``compiler/build/record.py``)."""


@dataclass
class Run:
    """The outcomes of one build of several environments, by environment."""

    compiled: CompileResult
    requests: list[Request] = field(default_factory=list)
    """What was built, in order (empty when the spec failed before lowering)."""
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def build_environments(
    target_path: Path,
    environments: Sequence[str] | None,
    out_dir_of: Callable[[str], Path],
    *,
    check: bool = False,
    policies: bool = False,
    today: date | None = None,
    workers: int | None = None,
    record: bool = False,
) -> Run:
    """Compile once, then lower, emit and stage (or, with ``check``, compare) each of
    ``environments`` (None: all) into ``out_dir_of(name)``, in forked processes on up to
    ``workers`` cores besides this process's own (None: the free cores), one per environment
    when the environments would not divide evenly among them (:func:`processes`); then swap
    every staged tree in when nothing failed.

    With ``record`` (``mlplane build``), a build whose spec, policy files and outputs are as the
    last successful build of the same environments left them is not done again, and a
    successful build is recorded (``compiler/build/record.py``); the result then holds no
    document nor system models, only the diagnostics and the spec's texts.

    Raises what :func:`mlplane.compiler.build.outputs.build` raises.
    """
    call = records.Call(target_path, _names(environments), policies, today, DEFAULT_LIMITS)
    book = records.Records.open() if record else None
    spec = records.read_spec(target_path, DEFAULT_LIMITS) if book is not None else None
    with no_cyclic_gc():  # as a compile: thousands of digests and diagnostics, no cycles
        found = book.find(call, spec) if book is not None and spec is not None else None
        replayed = _replayed(found, spec, out_dir_of, check) if found and spec else None
    if replayed is not None:
        return replayed
    run = _built(target_path, environments, out_dir_of, check, policies, today, workers)
    if book is not None and spec is not None and (outputs := _outputs(run, check)) is not None:
        book.store(call, spec, run.compiled, outputs)
    return run


def _names(environments: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if environments is None else tuple(environments)


def _replayed(
    found: records.Recorded,
    spec: records.SpecRead,
    out_dir_of: Callable[[str], Path],
    check: bool,
) -> Run | None:
    """The recorded build's result when each output directory holds exactly what it wrote
    (checked under the outputs' locks, as a build takes them); None otherwise."""
    requests = [Request(o.environment, out_dir_of(o.environment)) for o in found.outputs]
    pairs = list(zip(requests, found.outputs, strict=True))
    if any(str(request.out_dir.absolute()) != output.out_dir for request, output in pairs):
        return None
    sources = spec.sources()
    if sources is None:
        return None
    with contextlib.ExitStack() as locks:
        _prepare(requests, check, locks)
        for request, output in pairs:
            if tree_digests(request.out_dir) != output.digests:
                return None
    compiled = found.compiled(sources)
    outcomes = {
        o.environment: Outcome(
            o.environment, Diagnostics(), Diagnostics(), files=tuple(sorted(o.digests))
        )
        for o in found.outputs
    }
    return Run(compiled, requests, outcomes)


def _outputs(run: Run, check: bool) -> list[records.Output] | None:
    """What a successful build of ``run`` gave, to record; None when it did not succeed."""
    if not run.compiled.ok or not run.requests:
        return None
    outputs: list[records.Output] = []
    for request in run.requests:
        outcome = run.outcomes.get(request.environment)
        if outcome is None or not outcome.files or outcome.digests is None:
            return None
        if check and outcome.findings:
            return None
        out = str(request.out_dir.absolute())
        outputs.append(records.Output(request.environment, out, outcome.digests))
    return outputs


def _built(
    target_path: Path,
    environments: Sequence[str] | None,
    out_dir_of: Callable[[str], Path],
    check: bool,
    policies: bool,
    today: date | None,
    workers: int | None,
) -> Run:
    requests: list[Request] = []
    outcomes: dict[str, Outcome] = {}
    with contextlib.ExitStack() as locks:

        def lower_all(compiled: CompileResult, run: PolicyRun | None) -> None:
            names = environments if environments is not None else sorted(compiled.systems)
            requests.extend(Request(name, out_dir_of(name)) for name in names)
            _prepare(requests, check, locks)
            cores = free_cores() if workers is None else workers
            count = processes(len(requests), cores) - 1
            for outcome in spread(requests, count, lambda r: _work(compiled, run, r, check)):
                outcomes[outcome.environment] = outcome
                compiled.diagnostics.extend(outcome.diagnostics)
                compiled.waived.extend(outcome.waived)
                if run is not None:
                    run.graph_checked_elsewhere(outcome.used)

        try:
            compiled = compile_spec(
                target_path,
                environments,
                policies=policies,
                today=today,
                lower=policies,
                graph_stage=lower_all,
            )
            if compiled.ok and not policies:
                with no_cyclic_gc():
                    lower_all(compiled, None)
            if compiled.ok and not check:
                for request in requests:
                    staged = outcomes[request.environment].staged
                    if staged is not None:
                        swap_in(staged, request.out_dir)
        finally:
            for outcome in outcomes.values():  # not swapped in: nothing changes
                if outcome.staged is not None:
                    shutil.rmtree(outcome.staged, ignore_errors=True)
    return Run(compiled, requests, outcomes)


def _prepare(requests: Sequence[Request], check: bool, locks: contextlib.ExitStack) -> None:
    """Refuse unusable destinations and lock them, before any work is spent on them."""
    from mlplane.compiler.build.outputs import MANIFEST, recorded_hashes

    for request in requests:
        out = request.out_dir
        check_ancestors(out)
        created = _missing_ancestors(out)
        locks.callback(_remove_empty, created)  # runs after the lock is released
        # --check must not create directories: with no parent there is no output, no rival.
        if not check or out.parent.is_dir():
            locks.enter_context(output_lock(out))
        previous = recorded_hashes(out, strict=not check)
        listed = None if previous is None else frozenset(previous) | {MANIFEST}
        check_destination(out, listed, replacing=not check)
        if not check:
            remove_leftovers(out)


def _missing_ancestors(out: Path) -> list[Path]:
    """The directories above ``out`` that do not exist yet, deepest first."""
    return [parent for parent in out.absolute().parents if not parent.exists()]


def _remove_empty(directories: list[Path]) -> None:
    """Remove the directories a build created for its lock when they are still empty (the
    build wrote nothing), deepest first, so a failed build leaves the file system as it was."""
    for directory in directories:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _work(compiled: CompileResult, run: PolicyRun | None, request: Request, check: bool) -> Outcome:
    """Lower one environment, run the graph rules, emit, and stage or compare its output,
    taking from the build cache (``compiler/build/cache.py``) what it holds of the last build
    into that directory and, unless ``check``, storing what this one made. The walks of the
    inputs that lowering makes for the graph's references serve the emitters too
    (``graph.remembered_walks``)."""
    with remembered_walks():
        return _work_walked(compiled, run, request, check)


def _work_walked(
    compiled: CompileResult, run: PolicyRun | None, request: Request, check: bool
) -> Outcome:
    from mlplane.compiler.build.outputs import MANIFEST, compare, output_files

    environment = request.environment
    diagnostics, waived = Diagnostics(), Diagnostics()
    system = compiled.systems[environment]
    target = target_of(system, diagnostics)
    if target is None:
        return Outcome(environment, diagnostics, waived)
    reuse = _reusing(compiled, request, target.name)
    known = reuse.known if reuse is not None else {}
    with known_needs(reuse.needs if reuse is not None else {}):
        graph, made, units = plugins.lower_reusing(target, system, diagnostics, known)
    if graph is None or diagnostics.has_errors:
        return Outcome(environment, diagnostics, waived)
    before = run.used_waivers if run is not None else frozenset()
    if run is not None:
        run.check_graph(system, graph, diagnostics, waived)
    used = (run.used_waivers - before) if run is not None else frozenset()
    if diagnostics.has_errors:
        return Outcome(environment, diagnostics, waived, used)
    root = compiled.document.root if compiled.document else None
    texts = reuse.take_texts(made) if reuse is not None else ResourceTexts()
    with resource_texts.reusing(texts):
        files = output_files(system, graph, target, root)
    names = tuple(sorted(files))
    taken = (units, texts.taken)
    digests = records.output_digests(files, MANIFEST)
    if check:
        findings = compare(request.out_dir, files)
        return Outcome(
            environment, diagnostics, waived, used, names, findings, None, (), taken, digests
        )
    staged = stage_tree(request.out_dir, files)
    if reuse is not None and made:
        reuse.store(made, graph)
    return Outcome(
        environment,
        diagnostics,
        waived,
        used,
        names,
        (),
        staged.path,
        staged.written,
        taken,
        digests,
    )


def _reusing(compiled: CompileResult, request: Request, target: str) -> Reusing | None:
    """The build cache's entry for ``request`` (None: no cache)."""
    from mlplane.compiler.build.cache import BuildCache, reusing, slot_of
    from mlplane.compiler.build.outputs import output_name

    document = compiled.document
    rename = output_name(document.root) if document and document.root is not None else str
    names = {name: rename(name) for name in compiled.sources}
    return reusing(BuildCache.open(), slot_of(request.out_dir, request.environment, target, names))


def free_cores() -> int:
    """Cores left idle besides this process's own (at least 0): the 1-minute load average less
    this process's share of it, bounded by the threads running now (:func:`idle_cores`)."""
    try:
        cores = len(os.sched_getaffinity(0))
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0
    return idle_cores(cores, load, time.process_time(), running_elsewhere())


RUNNING_SAMPLES = 5
RUNNING_SAMPLE_SECONDS = 0.01


def running_elsewhere() -> int | None:
    """The most threads seen running or runnable besides this one, over a few samples of
    ``/proc/loadavg`` 10 ms apart (a process that computes is seen in every sample, one that
    has ended is not); None where there is no such file."""
    seen = 0
    for sample in range(RUNNING_SAMPLES):
        if sample:
            time.sleep(RUNNING_SAMPLE_SECONDS)
        try:
            with open("/proc/loadavg", encoding="ascii") as handle:
                running = handle.read().split()[3].partition("/")[0]
        except (OSError, IndexError):
            return None
        if not running.isdigit():
            return None
        seen = max(seen, int(running) - 1)
    return seen


LOAD_PERIOD_SECONDS = 60.0
"""The period of the load average read (the 1-minute one), for this process's own share."""


def idle_cores(cores: int, load: float, cpu_seconds: float, running: int | None = None) -> int:
    """The cores left to fork workers on: ``cores`` less this process's core and the load
    that other processes make, rounded to the nearest core (at least 0).

    The load average counts this process too once it has run for a while: a process that has
    computed for ``t`` seconds of CPU adds about ``1 - exp(-t / 60)`` to the 1-minute average
    (the kernel decays it exponentially), which is taken off as its own share, so a command that
    compiled for a while, or a benchmark that has built before, does not read its own work as
    another's and give up a free core. The average also lags: a build that ended a few seconds
    ago still weighs on it. ``running`` (the threads seen running elsewhere just now, see
    :func:`running_elsewhere`), when known, bounds the others' load from above."""
    if not math.isfinite(load):
        return 0
    own = 1.0 - math.exp(-max(0.0, cpu_seconds) / LOAD_PERIOD_SECONDS)
    others = max(0.0, load - own)
    if running is not None:
        others = min(others, float(running))
    return max(0, min(cores - 1, round(cores - 1 - others)))


def spread(items: Sequence[Item], workers: int, work: Callable[[Item], T]) -> Iterator[T]:
    """``work`` on every item, in item order: the items are dealt to up to ``workers`` forked
    children and this process (which takes the first share); a failed child's items are done
    here again. (``mlplane report`` spreads its environments with it too.)"""
    shares = max(1, min(len(items), workers + 1)) if _fork_is_safe() else 1
    groups = [list(items[index::shares]) for index in range(shares)]
    children = [_fork(partial(_each, work, group)) for group in groups[1:]]
    results: dict[int, T] = {}
    try:
        for position, item in enumerate(groups[0]):
            results[position * shares] = work(item)
        for offset, (child, group) in enumerate(zip(children, groups[1:], strict=True), start=1):
            found: list[T] | None = _collect(child)
            for position, item in enumerate(group):
                index = position * shares + offset
                results[index] = found[position] if found is not None else work(item)
    finally:
        for child in children:
            _reap(child)
    return (results[index] for index in range(len(items)))


def processes(items: int, workers: int) -> int:
    """How many processes a build of several environments deals ``items`` environments to
    when ``workers`` idle cores are left besides this process's own: one per core, or, when the
    items would not divide evenly among those cores, one per item, up to half as many again as
    the cores.

    Dealt one per core, three environments on two cores end when one process has built two,
    while the other core idles half the time; one process each, the kernel shares the two cores
    among three and all end after about one and a half builds' time, at some more CPU time (the
    processes share the caches of the cores; measured in ``benchmarks/README.md``). Each process
    holds a whole environment's lowering (some 630 MB for the 1,000-model benchmark), so the
    extra processes are bounded to half the cores (a third process on two cores is allowed),
    and with one core there is nothing to balance. ``mlplane report`` keeps one process per
    core: its part of an environment (about half a second) costs less than the pages a third
    process copies."""
    cores = workers + 1
    if cores >= 2 and cores < items <= cores + max(1, cores // 2) and items % cores:
        return items
    return max(1, min(items, cores))


def _each(work: Callable[[Item], T], group: list[Item]) -> list[T]:
    return [work(item) for item in group]


@dataclass
class _Child:
    pid: int
    reader: int
    done: bool = False


def _fork_is_safe() -> bool:
    return sys.platform == "linux" and threading.active_count() == 1 and hasattr(os, "fork")


def _fork(work: Callable[[], object]) -> _Child:
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: work, send the pickled result, exit without cleanup handlers
        os.close(reader)
        code = 1
        try:
            data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(writer, "wb") as stream:
                stream.write(data)
            code = 0
        except BaseException:  # noqa: S110 - the parent does the work again and reports
            pass
        finally:
            os._exit(code)
    os.close(writer)
    return _Child(pid, reader)


def _collect(child: _Child) -> list[Any] | None:
    """The child's results, or None when it failed."""
    with os.fdopen(child.reader, "rb") as stream:
        data = stream.read()
    _, status = os.waitpid(child.pid, 0)
    child.done = True
    if status != 0 or not data:
        return None
    found: list[Any] = pickle.loads(data)  # noqa: S301 - from our own child, never from outside
    return found


def _reap(child: _Child) -> None:
    """End a child whose result is no longer wanted (an exception here)."""
    if child.done:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, 9)
    os.waitpid(child.pid, 0)
    with contextlib.suppress(OSError):
        os.close(child.reader)
