"""Benchmark of ``mlplane plan``: a one-model change on the large generated spec.

What is measured, side by side in one run (figures from different runs do not compare):

* ``make_plan`` end to end against ``HEAD`` in a throw-away git repository: compile and lower
  the working tree, read the base from git objects, compile and lower it, diff, summarise;
  three ways: without the plan cache (``use_cache=False``), with an empty cache (the run that
  lowers the base and stores it) and with the cache warm (the base's lowering read back from
  ``.mlplane/cache/``); the cache's secret lives in a temporary ``XDG_CACHE_HOME``; the first
  two again with the base in a forked child (``parallel=True``, which ``mlplane plan``
  chooses only when a core is idle: on a busy machine it is slower), with the 1-minute load
  average at the start, because that decides whether the child has a core of its own. With
  the cache warm there is no forked figure: the base's entry is read first and no child is
  forked (the head takes the base's lowered units, ``targets/kubernetes/reuse.py``), so it
  would time the plain warm plan again; with the cache empty the child compiles the cold base
  and the parent stores its entry;
* its parts: the diff of the two resource graphs alone, and the ML summary with risk flags;
  each also per thousand resources (the target: well under a second per thousand);
* the renderers (text, markdown, JSON);
* the same diff computed the way a Pulumi-based tool would without mlplane's graph: print both
  Pulumi programs, run each under Pulumi's mock runtime (``tests/pulumi_mock.py``, the official
  unit-test mechanism) and diff what they register. That needs a subprocess per program, so it
  runs on a smaller spec (``--mock-models``, chosen to finish within about a minute); the
  ratio is taken per resource against mlplane's own diff of the same two graphs.

The generated spec uses every rollout strategy; the Kubernetes target refuses ``shadow`` (it
needs a service mesh) and Secrets of another namespace, so those are rewritten to supported
forms before timing. Run::

    python benchmarks/plan_bench.py [--models 1000] [--sources 2000] [--repeat 3]
                                    [--mock-models 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generate import DEFAULT_MODELS, DEFAULT_SEED, DEFAULT_SOURCES, generate_files

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests/ holds the Pulumi mock runner
    sys.path.insert(0, str(ROOT))

from mlplane.compiler.build.pipeline import compile_spec  # noqa: E402
from mlplane.compiler.plan.diff import diff_graphs, diff_values  # noqa: E402
from mlplane.compiler.plan.json_format import render_json  # noqa: E402
from mlplane.compiler.plan.lower import graph_of, lower  # noqa: E402
from mlplane.compiler.plan.markdown import render_markdown  # noqa: E402
from mlplane.compiler.plan.run import compare, make_plan, summarise  # noqa: E402
from mlplane.compiler.plan.text import render_text  # noqa: E402

ENV = "prod"
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
_REPLICAS = re.compile(r"replicas: \{min: (\d+), max: (\d+)\}")


CPU: dict[str, float] = {}
"""Process CPU time of the fastest run of each figure, by label: on a loaded machine wall time
varies a lot, CPU time much less (it leaves out git's subprocesses)."""


def best(repeat: int, action: Callable[[], object], label: str = "") -> tuple[float, Any]:
    """The fastest wall time of ``repeat`` runs and the last result (CPU time in :data:`CPU`)."""
    fastest, result = float("inf"), None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = action()
        seconds = time.perf_counter() - start
        if seconds < fastest:
            fastest = seconds
            CPU[label] = time.process_time() - cpu
    return fastest, result


def spec_text(models: int, sources: int, seed: int) -> str:
    files = generate_files(models, sources, seed, 1)
    text = next(iter(files.values()))
    text = text.replace("strategy: shadow", "strategy: rolling")
    return text.replace("k8s://ml-secrets/", "k8s://acme-ml/")


def one_model_change(text: str) -> str:
    """Scale the first model: its ``replicas.max`` goes up by two."""
    start = text.index("\nmodels:\n")
    match = _REPLICAS.search(text, start)
    assert match is not None, "no model with replicas"
    changed = f"replicas: {{min: {match[1]}, max: {int(match[2]) + 2}}}"
    return text[: match.start()] + changed + text[match.end() :]


def git_repository(directory: Path, base: str, head: str) -> Path:
    """A repository whose HEAD holds ``base`` and whose working tree holds ``head``."""
    spec = directory / "spec"
    spec.mkdir(parents=True)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    (spec / "mlplane.yaml").write_text(base, encoding="utf-8")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run([*GIT, *args], cwd=directory, check=True, env=env, capture_output=True)
    (spec / "mlplane.yaml").write_text(head, encoding="utf-8")
    return spec


def measure_plan(models: int, sources: int, seed: int, repeat: int) -> dict[str, Any]:
    base = spec_text(models, sources, seed)
    head = one_model_change(base)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory() as directory:
        spec = git_repository(Path(directory), base, head)
        cwd, home = Path.cwd(), os.environ.get("XDG_CACHE_HOME")
        os.chdir(directory)
        os.environ["XDG_CACHE_HOME"] = str(Path(directory) / "xdg")
        try:
            total, plan = best(repeat, lambda: _plan(use_cache=False), "make_plan")
            assert plan.ok, [d.one_line() for d in plan.problems[:5]]
            empty_s, _ = best(repeat, lambda: _plan(use_cache=True, empty=True), "empty_cache")
            warm_s, warm = best(repeat, lambda: _plan(use_cache=True), "warm_cache")
            assert render_json(warm) == render_json(plan), "the cache changed the plan"
            forked_s, forked = best(repeat, lambda: _plan(False, parallel=True), "forked")
            forked_empty_s, forked_empty = best(
                repeat, lambda: _plan(True, empty=True, parallel=True), "forked_empty"
            )
            assert render_json(forked) == render_json(plan), "the child changed the plan"
            assert render_json(forked_empty) == render_json(plan), "the child changed the plan"
            compiled = compile_spec(Path("spec"), [ENV])
            head_lowered = lower(compiled, ENV)
            assert head_lowered is not None
            compile_s, _ = best(
                repeat, lambda: lower(compile_spec(Path("spec"), [ENV]), ENV), "compile"
            )
        finally:
            os.chdir(cwd)
            _restore("XDG_CACHE_HOME", home)
        del spec
    resources = len(plan.head.resources)
    diff_s, _ = best(repeat, lambda: diff_graphs(plan.base.resources, plan.head.resources), "diff")
    summary_s, _ = best(repeat, lambda: summarise(plan.head, plan.base), "summary")
    compare_s, _ = best(repeat, lambda: compare(ENV, plan.head, plan.base), "compare")
    renders = {
        name: best(repeat, lambda r=render: r(plan))[0]
        for name, render in (
            ("text", render_text),
            ("markdown", render_markdown),
            ("json", render_json),
        )
    }
    thousands = resources / 1000
    return {
        "models": models,
        "resources": resources,
        "counts": plan.counts(),
        "spec_lines": [c.text for c in plan.spec_changes],
        "make_plan_seconds": total,
        "make_plan_ms_per_1000_resources": total / thousands * 1e3,
        "empty_cache_seconds": empty_s,
        "empty_cache_ms_per_1000_resources": empty_s / thousands * 1e3,
        "warm_cache_seconds": warm_s,
        "warm_cache_ms_per_1000_resources": warm_s / thousands * 1e3,
        "warm_cache_cpu_ms_per_1000_resources": CPU["warm_cache"] / thousands * 1e3,
        "forked_ms_per_1000_resources": forked_s / thousands * 1e3,
        "forked_empty_cache_ms_per_1000_resources": forked_empty_s / thousands * 1e3,
        "load_average": load,
        "compile_and_lower_one_side_seconds": compile_s,
        "diff_seconds": diff_s,
        "diff_ms_per_1000_resources": diff_s / thousands * 1e3,
        "summary_seconds": summary_s,
        "compare_seconds": compare_s,
        "compare_ms_per_1000_resources": compare_s / thousands * 1e3,
        "render_seconds": renders,
        "cpu_seconds": dict(CPU),
        "make_plan_cpu_ms_per_1000_resources": CPU["make_plan"] / thousands * 1e3,
    }


def _plan(use_cache: bool, empty: bool = False, parallel: bool = False) -> Any:
    """``make_plan`` of the benchmark's spec; ``empty`` removes the plan cache first."""
    if empty:
        shutil.rmtree(Path(".mlplane"), ignore_errors=True)
    return make_plan(Path("spec"), ENV, "HEAD", use_cache=use_cache, parallel=parallel)


def _restore(variable: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = value


def measure_mock(models: int, sources: int, seed: int) -> dict[str, Any]:
    """Both programs under Pulumi's mock runtime, then a diff of what they registered."""
    from tests.pulumi_roundtrip import recorded_view, registrations_of

    base_text = spec_text(models, sources, seed)
    sides = {"base": base_text, "head": one_model_change(base_text)}
    graphs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, text in sides.items():
            folder = Path(directory) / name
            folder.mkdir()
            (folder / "mlplane.yaml").write_text(text, encoding="utf-8")
            compiled = compile_spec(folder, [ENV])
            graph = graph_of(compiled, ENV)
            assert graph is not None, [d.one_line() for d in compiled.diagnostics.items[:5]]
            graphs[name] = (graph, compiled.systems[ENV], Path(directory) / f"{name}-project")
        start = time.perf_counter()
        registered = {
            name: {r["name"]: recorded_view(r) for r in registrations_of(*graphs[name])}
            for name in sides
        }
        changed = _diff_registrations(registered["base"], registered["head"])
        mock_s = time.perf_counter() - start
    as_json = {
        name: {r.name: json.loads(json.dumps(r.to_json())) for r in g[0]}
        for name, g in graphs.items()
    }
    ours_s, _ = best(3, lambda: diff_graphs(as_json["base"], as_json["head"]))
    resources = len(graphs["head"][0])
    return {
        "models": models,
        "resources": resources,
        "changed_by_mock_diff": changed,
        "mock_seconds": mock_s,
        "mlplane_diff_seconds": ours_s,
        "ratio_mock_to_mlplane": mock_s / ours_s,
    }


def _diff_registrations(base: dict[str, Any], head: dict[str, Any]) -> int:
    changed = 0
    for name in set(base) | set(head):
        if base.get(name) != head.get(name):
            found: list[Any] = []
            diff_values(base.get(name) or {}, head.get(name) or {}, (), found)
            changed += 1
    return changed


def report(plan: dict[str, Any], mock: dict[str, Any] | None) -> str:
    ms = 1e3
    lines = [
        f"mlplane plan benchmark: {plan['models']:,} models, {plan['resources']:,} resources, "
        f"one model scaled",
        f"  changes: {plan['counts']}; ML summary: {plan['spec_lines']}",
        "",
        f"  make_plan end to end, no cache          {plan['make_plan_seconds'] * ms:9.1f} ms  "
        f"{plan['make_plan_ms_per_1000_resources']:8.1f} ms / 1000 resources",
        f"    the same, CPU time of this process    {plan['cpu_seconds']['make_plan'] * ms:9.1f} ms  "
        f"{plan['make_plan_cpu_ms_per_1000_resources']:8.1f} ms / 1000 resources",
        f"  make_plan, empty cache (stores the base){plan['empty_cache_seconds'] * ms:9.1f} ms  "
        f"{plan['empty_cache_ms_per_1000_resources']:8.1f} ms / 1000 resources",
        f"  make_plan, base cache warm              {plan['warm_cache_seconds'] * ms:9.1f} ms  "
        f"{plan['warm_cache_ms_per_1000_resources']:8.1f} ms / 1000 resources",
        f"    the same, CPU time of this process    {plan['cpu_seconds']['warm_cache'] * ms:9.1f} ms  "
        f"{plan['warm_cache_cpu_ms_per_1000_resources']:8.1f} ms / 1000 resources",
        f"    warm / no cache                       {plan['warm_cache_seconds'] / plan['make_plan_seconds']:9.2f}x",
        f"  base in a forked child, no cache        {plan['forked_ms_per_1000_resources']:9.1f} ms / 1000 resources",
        f"  base in a forked child, empty cache     {plan['forked_empty_cache_ms_per_1000_resources']:9.1f} ms / 1000 resources"
        f"  (load average {plan['load_average'] or 0:.2f})",
        f"    compile + lower, one side             {plan['compile_and_lower_one_side_seconds'] * ms:9.1f} ms"
        f"  (CPU {plan['cpu_seconds']['compile'] * ms:.1f} ms)",
        f"    diff of the two graphs                {plan['diff_seconds'] * ms:9.1f} ms  "
        f"{plan['diff_ms_per_1000_resources']:8.2f} ms / 1000 resources",
        f"    ML summary + risk flags               {plan['summary_seconds'] * ms:9.1f} ms",
        f"    compare (diff + summary + risks)      {plan['compare_seconds'] * ms:9.1f} ms  "
        f"{plan['compare_ms_per_1000_resources']:8.2f} ms / 1000 resources",
    ]
    for name, seconds in plan["render_seconds"].items():
        lines.append(f"    render {name:<31}{seconds * ms:9.1f} ms")
    if mock is not None:
        lines += [
            "",
            f"  Pulumi mock runtime, both programs ({mock['models']} models, "
            f"{mock['resources']:,} resources)",
            f"    run both under mocks + diff           {mock['mock_seconds'] * ms:9.1f} ms "
            f"({mock['changed_by_mock_diff']} resources differ)",
            f"    mlplane graph diff, same specs        {mock['mlplane_diff_seconds'] * ms:9.2f} ms",
            f"    ratio mock / mlplane                  {mock['ratio_mock_to_mlplane']:9.0f}x",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=DEFAULT_MODELS)
    parser.add_argument("--sources", type=int, default=DEFAULT_SOURCES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mock-models", type=int, default=40, help="0 skips the mock comparison")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    plan = measure_plan(args.models, args.sources, args.seed, args.repeat)
    mock = None
    if args.mock_models:
        mock = measure_mock(args.mock_models, max(2, args.mock_models * 2), args.seed)
    print(json.dumps({"plan": plan, "mock": mock}, indent=2) if args.json else report(plan, mock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
