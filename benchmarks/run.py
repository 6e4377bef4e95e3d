"""Benchmarks of the mlplane compiler on a large generated spec, measured in one run.

Why one script that measures everything in one run: figures from different runs (or machines)
cannot be compared, but ratios measured side by side can. So every figure here is reported with
a ratio or a per-item cost next to it (loader time per MiB, loader against bare libyaml, compile
time per model and per environment, each stage's share of the compile), which is what stays
meaningful when the machine changes. This is a benchmark, not a test: nothing here fails on a
threshold; it fails only when the generated spec does not validate (then the timings would
measure error reporting, not compilation).

Each figure is the best of ``--repeat`` runs (``time.perf_counter``): the minimum is the least
disturbed by other processes. ``--files K`` also times the same spec split into K files (off by
default to keep the run short). Run::

    python benchmarks/run.py [--models 1000] [--sources 2000] [--repeat 3] [--files K] [--json]

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from generate import DEFAULT_MODELS, DEFAULT_SEED, DEFAULT_SOURCES, generate_files, write_spec

from mlplane.compiler.build.pipeline import CompileResult, compile_spec, environment_names
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.frontend.document import load_spec
from mlplane.compiler.frontend.loader import load_bytes
from mlplane.compiler.frontend.overlay import apply_overlay
from mlplane.compiler.frontend.resolve import Resolver
from mlplane.compiler.frontend.scan import scan_document
from mlplane.compiler.frontend.schema_pass import validate_document
from mlplane.compiler.frontend.system_model import Shared
from mlplane.compiler.policy.engine import PolicyRun
from mlplane.compiler.policy.rego import RegoSource

_LIBYAML: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
MIB = 1 << 20
TODAY = date(2030, 1, 1)
"""The date waiver expiry is judged against, fixed so that no figure depends on the clock
(the generated waivers expire later)."""


def compile_all(target: Path) -> CompileResult:
    """What ``mlplane validate`` compiles: every environment, with the target checks and the
    policy stage."""
    return compile_spec(target, policies=True, today=TODAY, check_targets=True)


class GcTimer:
    """Time spent in cyclic garbage collection, through ``gc.callbacks`` (nearly free).

    Worth reporting on its own: the compiler keeps large position tables alive, so each full
    collection walks all of them, and that cost grows with the spec without showing up under
    any function name in a profile."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1


@dataclass
class Timing:
    """The fastest of several runs, with the garbage-collection time of that same run."""

    seconds: float = float("inf")
    gc_seconds: float = 0.0
    gc_collections: int = 0


def best_of(repeat: int, action: Callable[[], object], timing: Timing | None = None) -> Timing:
    """Keep the fastest of ``repeat`` calls (the least disturbed by other processes), added to
    ``timing`` if given (so a run made for another reason can count as the first). A collection
    runs before each call so that the previous call's garbage is not billed to this one;
    collections *during* the call are part of its real cost and stay in."""
    timing = timing or Timing()
    for _ in range(repeat):
        gc.collect()
        timer = GcTimer()
        gc.callbacks.append(timer)
        try:
            start = time.perf_counter()
            action()
            seconds = time.perf_counter() - start
        finally:
            gc.callbacks.remove(timer)
        if seconds < timing.seconds:
            timing.seconds, timing.gc_seconds = seconds, timer.seconds
            timing.gc_collections = timer.collections
    return timing


@dataclass
class StageTimes:
    """Best time of each compile stage over the repeats; per-environment stages by name."""

    load: float = float("inf")
    scan: float = float("inf")
    schema_base: float = float("inf")
    overlay: dict[str, float] = field(default_factory=dict)
    schema_env: dict[str, float] = field(default_factory=dict)
    check: dict[str, float] = field(default_factory=dict)
    build: dict[str, float] = field(default_factory=dict)
    policies: dict[str, float] = field(default_factory=dict)
    policy_finish: float = float("inf")

    def keep_best(self, table: dict[str, float], env: str, seconds: float) -> None:
        table[env] = min(table.get(env, float("inf")), seconds)

    def environment_total(self, env: str) -> float:
        return (
            self.overlay[env]
            + self.schema_env[env]
            + self.check[env]
            + self.build[env]
            + self.policies[env]
        )

    def shared(self) -> float:
        return self.load + self.scan + self.schema_base + self.policy_finish

    def total(self) -> float:
        return self.shared() + sum(self.environment_total(env) for env in self.overlay)


def measure_stages(target: Path, repeat: int) -> StageTimes:
    """Time the pipeline's passes one by one, calling them as ``compile_spec`` does (see
    compiler/build/pipeline.py); a stage that reports an error stops the benchmark.

    Cyclic GC is paused here: a collection is triggered by everything allocated before it, so
    with GC on, its cost lands on whichever stage happens to be running (the same stage would
    vary by 3x between runs). Stage times are therefore pure work; the GC total is measured on
    ``compile_spec`` as a whole."""
    times = StageTimes()
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            _time_stages_once(target, times)
        finally:
            gc.enable()
    return times


def _time_stages_once(target: Path, times: StageTimes) -> None:
    """One pass over the stages; keeps the best time of each in ``times``."""
    diagnostics = Diagnostics()
    clock = time.perf_counter
    start = clock()
    document = load_spec(target, diagnostics)
    times.load = min(times.load, clock() - start)
    if document is None:
        raise RuntimeError(_problems(diagnostics))
    start = clock()
    flagged = scan_document(document, diagnostics)
    times.scan = min(times.scan, clock() - start)
    start = clock()
    base = validate_document(document, diagnostics, flagged)
    times.schema_base = min(times.schema_base, clock() - start)
    waived = Diagnostics()
    policy_run = PolicyRun(today=TODAY, external=RegoSource(document.root, (), diagnostics))
    shared = Shared()  # as compile_spec: what one environment builds, the next may take
    reuse = None if base is None else (document, base)
    for env in environment_names(document):
        start = clock()
        effective = apply_overlay(document, env)
        times.keep_best(times.overlay, env, clock() - start)
        start = clock()
        validated = (
            base
            if effective is document
            else validate_document(effective, diagnostics, flagged, base=reuse)
        )
        times.keep_best(times.schema_env, env, clock() - start)
        if validated is None:
            raise RuntimeError(_problems(diagnostics))
        resolver = Resolver(validated, effective, diagnostics, shared=shared)
        start = clock()
        resolver.check()
        times.keep_best(times.check, env, clock() - start)
        start = clock()
        system = resolver.build(env)
        times.keep_best(times.build, env, clock() - start)
        start = clock()
        policy_run.check(system, diagnostics, waived)
        times.keep_best(times.policies, env, clock() - start)
    start = clock()
    policy_run.finish(diagnostics)
    times.policy_finish = min(times.policy_finish, clock() - start)
    if diagnostics.has_errors:
        raise RuntimeError(_problems(diagnostics))


def _problems(diagnostics: Diagnostics) -> str:
    shown = [d.one_line() for d in diagnostics.sorted()[:10]]
    return "the generated spec does not validate:\n  " + "\n  ".join(shown)


def peak_rss_bytes() -> int:
    """This process's peak resident set size: VmHWM where /proc exists (Linux), else
    ``ru_maxrss`` (KiB on Linux, bytes on macOS).

    Why not ``getrusage(RUSAGE_CHILDREN)`` for the ``validate`` subprocess: on Linux a child's
    ``ru_maxrss`` keeps the high-water mark of the memory it shared with its parent before
    ``exec``, so it reports the benchmark's own size, not the child's. VmHWM belongs to the
    address space after ``exec``; the child reports it itself (see ``_CHILD``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


_PEAK_MARK = "mlplane-benchmark-peak-rss-bytes"
_CHILD = f"""
import atexit, resource, sys

def peak():
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib if sys.platform == "darwin" else kib * 1024

atexit.register(lambda: print({_PEAK_MARK!r}, peak(), file=sys.stderr))
from mlplane.compiler.cli.main import main
main(sys.argv[1:])
"""
"""``python -m mlplane`` plus a last line on stderr with the process's peak RSS (measured as
``peak_rss_bytes`` does; this text runs in the child, which must not import the benchmark)."""


def _cli(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the mlplane command line in a new interpreter; the process and its peak RSS."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
    )
    marks = [line for line in proc.stderr.splitlines() if line.startswith(_PEAK_MARK)]
    return proc, int(marks[-1].split()[1]) if marks else 0


def measure_cli(target: Path, repeat: int) -> tuple[Timing, Timing, int]:
    """``mlplane validate`` end to end (interpreter start-up, imports, compile, report), and
    ``mlplane --version`` for the start-up and import cost alone; with validate's peak RSS."""
    peak = 0

    def validate() -> None:
        nonlocal peak
        args = ("validate", target.name, "--today", TODAY.isoformat())
        proc, rss = _cli(*args, cwd=target.parent)
        if proc.returncode != 0:
            output = proc.stdout + proc.stderr
            shown = "\n".join(output.splitlines()[:30])
            raise RuntimeError(f"mlplane validate exited {proc.returncode}:\n{shown}")
        peak = max(peak, rss)

    def version() -> None:
        proc, _ = _cli("--version", cwd=target.parent)
        if proc.returncode != 0:
            raise RuntimeError(f"mlplane --version exited {proc.returncode}:\n{proc.stderr}")

    return best_of(repeat, validate), best_of(repeat, version), peak


@dataclass
class Counts:
    """What the first compile found, for the report's per-item costs."""

    slas: int
    waived: int
    environments: list[str]


EXPECTED = frozenset({"kubernetes-egress-open", "kubernetes-egress-port-unknown"})
"""What the generated spec is allowed to be told, as the build tells it: its data sources and
artifacts name hosts by DNS name, as real ones do, and no environment says where those hosts
are, so the network policies leave egress to them open to every address; a few name a scheme
with no default port (a ``delta://`` table, an ``oci://`` artifact) and no port, so egress to
them stays denied."""


def measure_compile(target: Path, repeat: int) -> tuple[Timing, Counts]:
    """``compile_spec`` for every environment, policies included; the first run also checks
    that the spec is valid without a single diagnostic (waived findings are expected) but the
    Kubernetes target's egress warnings (:data:`EXPECTED`)."""
    gc.collect()
    timer = GcTimer()
    gc.callbacks.append(timer)
    try:
        start = time.perf_counter()
        probe = compile_all(target)
        seconds = time.perf_counter() - start
    finally:
        gc.callbacks.remove(timer)
    if not probe.ok or any(d.code not in EXPECTED for d in probe.diagnostics.items):
        raise RuntimeError(_problems(probe.diagnostics))
    environments = sorted(probe.systems)
    counts = Counts(len(probe.systems[environments[0]].slas), len(probe.waived), environments)
    del probe
    first = Timing(seconds, timer.seconds, timer.collections)
    return best_of(repeat - 1, lambda: compile_all(target), first), counts


def run(models: int, sources: int, repeat: int, files: int, seed: int) -> dict[str, Any]:
    """Generate the spec into a temporary directory and measure everything; plain-data results."""
    start = time.perf_counter()
    single = generate_files(models, sources, seed, 1)
    generate_seconds = time.perf_counter() - start
    split = generate_files(models, sources, seed, files) if files > 1 else None
    ((name, text),) = single.items()
    data = text.encode("utf-8")
    events = sum(1 for _ in yaml.parse(text, Loader=_LIBYAML))

    def bare() -> None:
        for _ in yaml.parse(text, Loader=_LIBYAML):
            pass

    def load() -> None:
        loaded, problems = load_bytes(data, name)
        if loaded is None:
            raise RuntimeError("\n".join(p.one_line() for p in problems))

    with tempfile.TemporaryDirectory(prefix="mlplane-bench-") as temporary:
        root = Path(temporary)
        one_dir, many_dir = root / "spec", root / "spec-split"
        write_spec(single, one_dir)
        if split is not None:
            write_spec(split, many_dir)
        loader = best_of(repeat, load)
        bare_s = best_of(repeat, bare).seconds
        compiled, counts = measure_compile(one_dir, repeat)
        split_s = best_of(repeat, lambda: compile_all(many_dir)).seconds if split else None
        stages = measure_stages(one_dir, repeat)
        validate, startup, validate_rss = measure_cli(one_dir, repeat)

    environments = counts.environments
    n_env = len(environments)
    compile_s = compiled.seconds
    shared = stages.shared()
    per_env = {
        env: {
            "overlay": stages.overlay[env],
            "schema": stages.schema_env[env],
            "resolve_check": stages.check[env],
            "resolve_build": stages.build[env],
            "policies": stages.policies[env],
            "total": stages.environment_total(env),
        }
        for env in environments
    }
    env_mean = sum(v["total"] for v in per_env.values()) / n_env
    net = validate.seconds - startup.seconds
    mib = len(data) / MIB
    return {
        "settings": {"models": models, "sources": sources, "seed": seed, "repeat": repeat},
        "spec": {
            "bytes": len(data),
            "lines": text.count("\n"),
            "yaml_events": events,
            "models": models,
            "data_sources": sources,
            "slas": counts.slas,
            "waived_findings": counts.waived,
            "environments": environments,
            "split_files": files if split is not None else 1,
            "generate_seconds": generate_seconds,
        },
        "loader": {
            "load_bytes_seconds": loader.seconds,
            "ms_per_mib": loader.seconds / mib * 1e3,
            "us_per_event": loader.seconds / events * 1e6,
            "gc_seconds": loader.gc_seconds,
            "bare_libyaml_seconds": bare_s,
            "ratio_to_bare": loader.seconds / bare_s,
        },
        "compile": {
            "seconds": compile_s,
            "ms_per_model": compile_s / models * 1e3,
            "gc_seconds": compiled.gc_seconds,
            "gc_collections": compiled.gc_collections,
            "gc_share": compiled.gc_seconds / compile_s,
            "split_seconds": split_s,
            "split_ratio": split_s / compile_s if split_s is not None else None,
        },
        "stages": {
            "load": stages.load,
            "scan": stages.scan,
            "schema_base": stages.schema_base,
            "policy_finish": stages.policy_finish,
            "shared": shared,
            "per_environment_mean": env_mean,
            "per_environment": per_env,
            "sum": stages.total(),
            "sum_ratio_to_compile": stages.total() / compile_s,
        },
        "validate": {
            "seconds": validate.seconds,
            "ms_per_model": validate.seconds / models * 1e3,
            "startup_seconds": startup.seconds,
            "net_seconds": net,
            "net_ms_per_model": net / models * 1e3,
        },
        "memory": {
            "benchmark_peak_rss_bytes": peak_rss_bytes(),
            "validate_peak_rss_bytes": validate_rss,
        },
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def _share(part: float, whole: float, of: str = "compile") -> str:
    return f"{part / whole:5.1%} of {of}"


def report(results: dict[str, Any]) -> str:
    """The results as an aligned table: figure, time, and the ratio or per-item cost beside it."""
    spec, loader, comp = results["spec"], results["loader"], results["compile"]
    stages, cli, memory = results["stages"], results["validate"], results["memory"]
    envs, total = spec["environments"], comp["seconds"]
    rows: list[tuple[str, str, str]] = [
        ("spec size (one file)", f"{spec['bytes'] / MIB:.2f} MiB",
         f"{spec['lines']:,} lines, {spec['yaml_events']:,} YAML events"),
        ("generate (once)", _ms(spec["generate_seconds"]), "not part of the compiler"),
        ("", "", ""),
        ("load_bytes", _ms(loader["load_bytes_seconds"]),
         f"{loader['ms_per_mib']:,.1f} ms/MiB, {loader['us_per_event']:.2f} µs/event"),
        ("bare libyaml event iteration", _ms(loader["bare_libyaml_seconds"]),
         f"load_bytes/bare = {loader['ratio_to_bare']:.2f}x"),
        ("", "", ""),
        (f"compile_spec, {len(envs)} environments", _ms(total),
         f"{comp['ms_per_model']:.2f} ms/model"),
        ("  of which cyclic GC", _ms(comp["gc_seconds"]),
         f"{comp['gc_share']:5.1%} of compile ({comp['gc_collections']} collections)"),
    ]  # fmt: skip
    if comp["split_seconds"] is not None:
        rows.append(
            (
                f"compile_spec, {spec['split_files']} files",
                _ms(comp["split_seconds"]),
                f"split/one file = {comp['split_ratio']:.2f}x",
            )
        )
    rows += [
        ("", "", ""),
        ("stages, timed one by one, GC paused", "", ""),
        ("  load: read, parse, assemble", _ms(stages["load"]), _share(stages["load"], total)),
        ("  scan: secrets, CI expressions", _ms(stages["scan"]), _share(stages["scan"], total)),
        ("  schema: base document", _ms(stages["schema_base"]), _share(stages["schema_base"], total)),
        ("  policies: unmatched waivers", _ms(stages["policy_finish"]),
         _share(stages["policy_finish"], total)),
        ("  shared by all environments", _ms(stages["shared"]), _share(stages["shared"], total)),
    ]  # fmt: skip
    for env in envs:
        per = stages["per_environment"][env]
        rows.append((f"  environment {env}", _ms(per["total"]), _share(per["total"], total)))
        for key, label in (
            ("overlay", "overlay"),
            ("schema", "schema: overlaid document"),
            ("resolve_check", "resolve: check references"),
            ("resolve_build", "resolve: build system model"),
            ("policies", "policies: rules and waivers"),
        ):
            rows.append((f"    {label}", _ms(per[key]), _share(per[key], total)))
    rows += [
        ("  per environment, mean", _ms(stages["per_environment_mean"]),
         f"{stages['per_environment_mean'] / spec['models'] * 1e3:.3f} ms/model/environment"),
        ("  sum of stages", _ms(stages["sum"]),
         f"{stages['sum_ratio_to_compile']:.2f}x compile_spec; with its GC added: "
         f"{(stages['sum'] + comp['gc_seconds']) / total:.2f}x"),
        ("", "", ""),
        ("mlplane validate (subprocess)", _ms(cli["seconds"]), f"{cli['ms_per_model']:.2f} ms/model"),
        ("  start-up + imports (--version)", _ms(cli["startup_seconds"]),
         _share(cli["startup_seconds"], cli["seconds"], "validate")),
        ("  validate minus start-up", _ms(cli["net_seconds"]),
         f"{cli['net_ms_per_model']:.2f} ms/model"),
        ("", "", ""),
        ("peak RSS, validate subprocess", f"{memory['validate_peak_rss_bytes'] / MIB:,.0f} MiB",
         f"{memory['validate_peak_rss_bytes'] / spec['bytes']:.0f}x the spec's size"),
        ("peak RSS, this benchmark", f"{memory['benchmark_peak_rss_bytes'] / MIB:,.0f} MiB", ""),
    ]  # fmt: skip
    settings = results["settings"]
    title = (
        f"mlplane benchmark: {spec['models']:,} models, {spec['data_sources']:,} data sources, "
        f"{spec['slas']:,} SLAs ({spec['waived_findings']} waived findings), "
        f"environments {', '.join(envs)}; "
        f"best of {settings['repeat']}, seed {settings['seed']}"
    )
    width = max(len(r[0]) for r in rows)
    lines = [title, ""]
    lines += [f"{a:<{width}}  {b:>11}  {c}".rstrip() if a else "" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure, then print the table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=DEFAULT_MODELS)
    parser.add_argument("--sources", type=int, default=DEFAULT_SOURCES)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument(
        "--files", type=int, default=1, help="also time the spec split into this many files"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.files < 1:
        parser.error("--repeat and --files must be at least 1")
    try:
        results = run(args.models, args.sources, args.repeat, args.files, args.seed)
    except (ValueError, RuntimeError) as error:
        print(f"run.py: {error}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
