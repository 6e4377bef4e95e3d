"""The rows of "speed at a thousand models", measured side by side in one run.

    python benchmarks/scale_bench.py [--models 1000] [--sources 2000] [--mock-models 100]
                                     [--no-plan] [--no-mock] [--program-only] [--json]

Every figure is also given as a ratio to the floor of this run: libyaml's event parse of the
same spec (``yaml.parse`` with the C loader), so figures of different machines and loads
compare. Rows:

* ``validate``: ``compile_spec`` of every environment with policies and target checks (what
  ``mlplane validate`` does minus start-up);
* ``build, one process per environment``: ``build`` of each environment on its own, as three
  ``mlplane build --env`` commands did, summed; ``build --all-envs``: ``build_many`` of every
  environment (one compile, the environments lowered in forked workers on the free cores, with
  the 1-minute load average printed: on a busy machine there are no free cores); the outputs of
  both are compared byte for byte;
* ``rebuild, nothing changed`` and ``rebuild after a one-model change`` (``replicas.max`` of
  one model): ``build_many`` again into the same directories, with the files it wrote and what
  it took from the build cache (``compiler/build/cache.py``, kept in a throw-away
  ``$XDG_CACHE_HOME``; ``build --all-envs`` wrote it), and the one-model rebuild again with the
  cache off (``MLPLANE_NO_CACHE=1``); ``rebuild, nothing changed, recorded``: the same no-op
  build as ``mlplane build`` runs it, with its record (``compiler/build/record.py``: the spec
  read and each output file hashed, nothing compiled when nothing changed);
* ``plan, one-model change, warm cache``: ``make_plan`` against ``HEAD`` of a throw-away git
  repository with the plan cache warm (``plan_bench.py`` has the other plan figures);
* the Pulumi program of one environment: its size, and CPython's ``compile()`` of it (seconds
  and peak RSS of a fresh interpreter), for the program as ``mlplane build`` writes it (the SLO
  metadata and spec of each Kubernetes object read from ``resources.json``, whose ``json.loads``
  and indexing by name, as the program does them, are timed too) and for the program holding
  every value as a literal (``print_program`` without reading the graph, the earlier shape);
* the output of each environment by part (resources.json, pulumi/, manifests/, monitoring/);
* the program under Pulumi's mock runtime, per resource, against the SDK's own cost: a program
  that registers the same resources, with the same classes and inputs, from ``resources.json``
  in a loop (no literal to compile, nothing of mlplane's shape), on a smaller spec
  (``--mock-models``); both run in fresh interpreters, import time excluded, alternated,
  the best of three each, in wall-clock and CPU seconds (the SDK registers from threads: CPU
  time counts them all).

``--program-only`` measures the rows of the program alone (its ``compile()``, the all-literal
program's, the program's read of ``resources.json``, and the mock runtime unless ``--no-mock``): one
build of the first environment, no validate, rebuild or plan rows.

Not a timed test: nothing fails on a threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mlplane.compiler.build.cache import DISABLE_VARIABLE
from mlplane.compiler.build.outputs import build, build_many
from mlplane.compiler.build.pipeline import compile_spec, target_of
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.targets.pulumi_program import print_program

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate_spec  # noqa: E402
from plan_bench import git_repository, one_model_change  # noqa: E402

T = TypeVar("T")
TODAY = date(2030, 1, 1)
PARTS = ("resources.json", "pulumi", "manifests", "monitoring")


CPU: dict[str, float] = {"last": 0.0}
"""CPU seconds of the fastest run of the last :func:`timed` (this process and the children it
waited for): on a shared machine wall-clock times grow with the load, CPU times far less."""


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(action: Callable[[], T], repeat: int = 1) -> tuple[float, T]:
    """Best wall-clock time of ``repeat`` runs, and the last result (its CPU time in ``CPU``)."""
    best, value = float("inf"), None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), _cpu()
        value = action()
        seconds = time.perf_counter() - start
        if seconds < best:
            best, CPU["last"] = seconds, _cpu() - cpu
    return best, value  # type: ignore[return-value]


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def sizes(root: Path) -> dict[str, int]:
    found = dict.fromkeys(PARTS, 0)
    for path, data in tree(root).items():
        part = path.split("/", 1)[0]
        if part in found:
            found[part] += len(data)
    return found


_COMPILE = """
import resource, sys, time
source = open(sys.argv[1], encoding="utf-8").read()
start, cpu = time.perf_counter(), time.process_time()
compile(source, sys.argv[1], "exec")
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
rss = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(seconds, int(rss) * 1024, cpu)
"""


def compile_cost(path: Path) -> tuple[float, int, float]:
    """``compile()`` of ``path`` in a fresh interpreter: seconds, peak RSS in bytes, and CPU
    seconds (on a loaded machine the wall-clock time grows, the CPU time far less)."""
    done = subprocess.run(
        [sys.executable, "-c", _COMPILE, str(path)], capture_output=True, text=True, check=True
    )
    seconds, rss, cpu = done.stdout.split()
    return float(seconds), int(rss), float(cpu)


def measure(models: int, sources: int, plan: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlplane-scale-") as directory:
        return _measure(models, sources, plan, Path(directory))


def measure_program(models: int, sources: int) -> dict[str, Any]:
    """The program rows alone (``--program-only``): one build of the first environment."""
    with tempfile.TemporaryDirectory(prefix="mlplane-scale-") as directory:
        work = Path(directory)
        spec = work / "spec"
        spec.mkdir()
        (spec / "mlplane.yaml").write_text(generate_spec(models, sources, 0), encoding="utf-8")
        compiled = compile_spec(spec, None, today=TODAY)
        assert compiled.ok, [d.message for d in compiled.diagnostics.sorted()[:3]]
        env = sorted(compiled.systems)[0]
        os.environ[DISABLE_VARIABLE] = "1"  # one cold build: nothing to keep in a build cache
        assert build(spec, env, work / "all" / env, policies=True, today=TODAY).ok
        return {"program": _program_figures(work, compiled.systems[env])}


def _taken(results: list[Any]) -> str:
    """What the builds of ``results`` took from the build cache: units and per-resource texts."""
    units = sum(r.taken[0] for r in results)
    texts = sum(r.taken[1] for r in results)
    return f"taken from the build cache: {units} units, {texts} texts"


def _measure(models: int, sources: int, plan: bool, work: Path) -> dict[str, Any]:
    os.environ["XDG_CACHE_HOME"] = str(work / "xdg-cache")  # the build cache, thrown away
    text = generate_spec(models, sources, 0)
    spec = work / "spec"
    spec.mkdir()
    (spec / "mlplane.yaml").write_text(text, encoding="utf-8")
    floor, _ = timed(lambda: sum(1 for _ in yaml.parse(text, Loader=yaml.CSafeLoader)), 3)
    figures: dict[str, Any] = {"floor_seconds": floor, "load_average": os.getloadavg()[0]}

    validate_s, compiled = timed(
        lambda: compile_spec(spec, None, policies=True, today=TODAY, check_targets=True)
    )
    assert compiled.ok, [d.message for d in compiled.diagnostics.sorted()[:3]]
    envs = sorted(compiled.systems)
    figures["validate_seconds"] = validate_s
    figures["validate_cpu_seconds"] = CPU["last"]

    single: dict[str, float] = {}
    single_cpu = 0.0
    for env in envs:
        single[env], result = timed(
            lambda e=env: build(spec, e, work / "single" / e, policies=True, today=TODAY)
        )
        single_cpu += CPU["last"]
        assert result.ok
    figures["build_each_seconds"] = single
    figures["build_each_cpu_seconds"] = single_cpu

    def all_envs(record: bool = False) -> tuple[Any, Any]:
        out = work / "all"
        return build_many(spec, None, lambda e: out / e, policies=True, today=TODAY, record=record)

    figures["load_average_before_all_envs"] = os.getloadavg()[0]
    # recorded as `mlplane build` records it, for the row of the recorded no-op build below
    figures["build_all_envs_seconds"], _ = timed(lambda: all_envs(record=True))
    figures["build_all_envs_cpu_seconds"] = CPU["last"]
    figures["identical"] = all(tree(work / "all" / e) == tree(work / "single" / e) for e in envs)
    figures["rebuild_unchanged_seconds"], (_, again) = timed(all_envs)
    figures["rebuild_unchanged_cpu_seconds"] = CPU["last"]
    figures["rebuild_unchanged_written"] = sum(len(r.written) for r in again)
    figures["rebuild_unchanged_taken"] = _taken(again)
    figures["rebuild_recorded_seconds"], (_, replayed) = timed(lambda: all_envs(record=True))
    figures["rebuild_recorded_cpu_seconds"] = CPU["last"]
    figures["rebuild_recorded_written"] = sum(len(r.written) for r in replayed)
    (spec / "mlplane.yaml").write_text(one_model_change(text), encoding="utf-8")
    figures["rebuild_one_model_seconds"], (_, changed) = timed(all_envs)
    figures["rebuild_one_model_cpu_seconds"] = CPU["last"]
    figures["rebuild_one_model_written"] = {r.environment: list(r.written) for r in changed}
    figures["rebuild_one_model_taken"] = _taken(changed)
    figures["files_per_environment"] = len(changed[0].files)
    os.environ[DISABLE_VARIABLE] = "1"  # the same rebuild without the build cache
    try:
        (spec / "mlplane.yaml").write_text(text, encoding="utf-8")
        all_envs()
        (spec / "mlplane.yaml").write_text(one_model_change(text), encoding="utf-8")
        figures["rebuild_one_model_uncached_seconds"], _ = timed(all_envs)
        figures["rebuild_one_model_uncached_cpu_seconds"] = CPU["last"]
    finally:
        del os.environ[DISABLE_VARIABLE]
    (spec / "mlplane.yaml").write_text(text, encoding="utf-8")

    figures["program"] = _program_figures(work, compiled.systems[envs[0]])
    figures["sizes"] = {e: sizes(work / "all" / e) for e in envs}
    if plan:
        figures["plan_warm_seconds"] = plan_warm(models, sources)
        figures["plan_warm_cpu_seconds"] = CPU["last"]
    return figures


def _program_figures(work: Path, system: Any) -> dict[str, Any]:
    """Size and ``compile()`` of the program built into ``work/all/<env>``, and of the
    all-literal program of the same graph."""
    env = system.environment.name
    program = work / "all" / env / "pulumi" / "__main__.py"
    graph_file = program.parent.parent / "resources.json"
    target = target_of(system, Diagnostics())
    assert target is not None
    graph = target.lower(system, Diagnostics())
    assert graph is not None
    inline = work / "inline.py"
    inline.write_text(print_program(graph, system), encoding="utf-8")
    return {
        "environment": env,
        "program_bytes": program.stat().st_size,
        "data_bytes": graph_file.stat().st_size,
        "compile": compile_cost(program),
        "data_load_seconds": timed(lambda: _read_inputs(graph_file), 3)[0],
        "inline_bytes": inline.stat().st_size,
        "inline_compile": compile_cost(inline),
    }


def _read_inputs(graph_file: Path) -> dict[str, Any]:
    """What the program does first: every resource's inputs of ``resources.json``, by name."""
    resources = json.loads(graph_file.read_bytes())["resources"]
    return {resource["name"]: resource["inputs"] for resource in resources}


def plan_warm(models: int, sources: int) -> float:
    """``make_plan`` of a one-model change against HEAD, the plan cache warm (best of 2), on
    ``plan_bench.py``'s form of the spec."""
    from plan_bench import _plan, spec_text

    base = spec_text(models, sources, 0)
    cwd, home = Path.cwd(), os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory() as directory:
        git_repository(Path(directory), base, one_model_change(base))
        os.chdir(directory)
        os.environ["XDG_CACHE_HOME"] = str(Path(directory) / "xdg")
        try:
            _plan(use_cache=True, empty=True)  # stores the base
            seconds, result = timed(lambda: _plan(use_cache=True), 2)
            assert result.ok
        finally:
            os.chdir(cwd)
            if home is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = home
    return seconds


_MOCK = """
import json, runpy, sys, time
import pulumi
from pulumi.runtime import mocks

class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return args.name + "-id", dict(args.inputs)
    def call(self, args):
        return {}, None

import pulumi_kubernetes  # imports before the clock starts
pulumi.runtime.set_mocks(Mocks(), project="bench", stack="bench", preview=False)
config = {"bench:" + key: "value" for key in json.loads(sys.argv[2])}
pulumi.runtime.set_all_config(config, secret_keys=sorted(config))

@pulumi.runtime.test
def run():
    runpy.run_path(sys.argv[1], run_name="__main__")

start, cpu = time.perf_counter(), time.process_time()
run()
print(time.perf_counter() - start, time.process_time() - cpu)
"""

_FLOOR = '''
"""The SDK's own cost: the same resources, classes and inputs, registered in a loop."""
import importlib, json, pathlib
import pulumi

def plain(value):
    if isinstance(value, dict):
        if "$secret" in value or "$ref" in value:
            return "value"
        if "$json" in value:
            return json.dumps(value["$json"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value

for row in json.loads(pathlib.Path(__file__).with_name("rows.json").read_text()):
    module = importlib.import_module(row["module"])
    cls = module
    for part in row["path"].split("."):
        cls = getattr(cls, part)
    cls(row["name"], **plain(row["kwargs"]))
'''


MOCK_ROUNDS = 3
"""Runs of the program and of the floor, alternated so that both meet the same load."""


def mock_costs(models: int, sources: int) -> dict[str, Any]:
    """Seconds per resource of mlplane's program and of the SDK floor under mocks."""
    with tempfile.TemporaryDirectory(prefix="mlplane-mock-") as directory:
        return _mock_costs(models, sources, Path(directory))


def _mock_costs(models: int, sources: int, work: Path) -> dict[str, Any]:
    from mlplane.targets.pulumi_classes import keyword_of, python_class
    from mlplane.targets.pulumi_literals import secret_keys
    from mlplane.targets.pulumi_project import EMITTER

    text = generate_spec(models, sources, 0)
    (work / "spec").mkdir()
    (work / "spec" / "mlplane.yaml").write_text(text, encoding="utf-8")
    compiled = compile_spec(work / "spec", ["dev"])
    system = compiled.systems["dev"]
    target = target_of(system, Diagnostics())
    assert target is not None
    graph = target.lower(system, Diagnostics())
    assert graph is not None
    files = {"resources.json": graph.canonical_json(), **EMITTER.emit(system, graph)}
    for relative, content in files.items():  # laid out as mlplane build writes them
        path = work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    rows = []
    for resource in graph:
        if resource.component:
            continue
        cls = python_class(resource.type)
        kwargs = {keyword_of(k): v for k, v in resource.inputs.items()}
        kwargs.update({keyword_of(k): v for k, v in cls.implied.items()})
        rows.append(
            {"module": cls.module, "path": cls.path.split(".", 1)[1], "name": resource.name}
        )
        rows[-1]["kwargs"] = kwargs
    floor_dir = work / "floor"
    floor_dir.mkdir()
    (floor_dir / "rows.json").write_text(json.dumps(rows), encoding="utf-8")
    (floor_dir / "__main__.py").write_text(_FLOOR, encoding="utf-8")
    secrets = sorted(set().union(*(secret_keys(dict(r.inputs)) for r in graph)))

    def run(program: Path) -> tuple[float, float]:
        done = subprocess.run(
            [sys.executable, "-c", _MOCK, str(program), json.dumps(secrets)],
            capture_output=True,
            text=True,
            check=True,
            cwd=program.parent,
        )
        wall, cpu = done.stdout.split()[-2:]
        return float(wall), float(cpu)

    programs = (work / "pulumi" / "__main__.py", floor_dir / "__main__.py")
    runs = [[run(program) for program in programs] for _ in range(MOCK_ROUNDS)]  # alternated
    (ours, ours_cpu), (floor, floor_cpu) = (
        (min(r[i][0] for r in runs), min(r[i][1] for r in runs)) for i in range(2)
    )
    count = len(graph.resources)
    return {
        "resources": count,
        "program_us_per_resource": ours / count * 1e6,
        "sdk_floor_us_per_resource": floor / count * 1e6,
        "overhead": ours / floor - 1,
        "program_cpu_us_per_resource": ours_cpu / count * 1e6,
        "sdk_floor_cpu_us_per_resource": floor_cpu / count * 1e6,
        "cpu_overhead": ours_cpu / floor_cpu - 1,
    }


def report(figures: dict[str, Any], mock: dict[str, Any] | None) -> str:
    floor = figures["floor_seconds"]

    def row(label: str, seconds: float, note: str = "", cpu: str = "") -> str:
        used = figures.get(f"{cpu}_cpu_seconds") if cpu else None
        spent = f"{used:.2f} s" if used is not None else "-"
        return f"| {label} | {seconds:.2f} s | {spent} | {seconds / floor:.1f}x | {note} |"

    each = figures["build_each_seconds"]
    program = figures["program"]
    lines = [
        f"floor: libyaml event parse of the spec, {floor:.3f} s; load average "
        f"{figures['load_average']:.1f}",
        "",
        "| step | time | CPU | / floor | note |",
        "|---|---|---|---|---|",
        row("validate (all environments)", figures["validate_seconds"], cpu="validate"),
        row(
            "build, one process per environment (sum)",
            sum(each.values()),
            ", ".join(f"{e} {s:.2f} s" for e, s in each.items()),
            "build_each",
        ),
        row(
            "build --all-envs",
            figures["build_all_envs_seconds"],
            f"load {figures['load_average_before_all_envs']:.1f}; byte-identical: "
            f"{figures['identical']}",
            "build_all_envs",
        ),
        row(
            "rebuild, nothing changed",
            figures["rebuild_unchanged_seconds"],
            f"{figures['rebuild_unchanged_written']} files written; "
            + figures["rebuild_unchanged_taken"],
            "rebuild_unchanged",
        ),
        row(
            "rebuild, nothing changed, recorded (as `mlplane build` runs it)",
            figures["rebuild_recorded_seconds"],
            f"{figures['rebuild_recorded_written']} files written; the spec read and every "
            "output file hashed, nothing compiled",
            "rebuild_recorded",
        ),
        row(
            "rebuild after a one-model change",
            figures["rebuild_one_model_seconds"],
            "written: "
            + "; ".join(
                f"{e}: {len(w)} of {figures['files_per_environment']}"
                for e, w in figures["rebuild_one_model_written"].items()
            )
            + "; "
            + figures["rebuild_one_model_taken"],
            "rebuild_one_model",
        ),
        row(
            "rebuild after a one-model change, MLPLANE_NO_CACHE=1",
            figures["rebuild_one_model_uncached_seconds"],
            "the same rebuild with the build cache off",
            "rebuild_one_model_uncached",
        ),
    ]
    if "plan_warm_seconds" in figures:
        lines.append(
            row("plan, one-model change, warm cache", figures["plan_warm_seconds"], cpu="plan_warm")
        )
    lines += [*program_rows(program, row), ""]
    lines += [
        "| environment | " + " | ".join(PARTS) + " | total |",
        "|---|" + "---|" * (len(PARTS) + 1),
    ]
    for env, found in figures["sizes"].items():
        cells = " | ".join(f"{found[p] / 1e6:.1f} MB" for p in PARTS)
        lines.append(f"| {env} | {cells} | {sum(found.values()) / 1e6:.1f} MB |")
    return "\n".join(lines + mock_lines(mock)) + "\n"


def program_rows(program: dict[str, Any], row: Callable[[str, float, str], str]) -> list[str]:
    seconds, rss, cpu = program["compile"]
    inline_seconds, inline_rss, inline_cpu = program["inline_compile"]
    return [
        row(
            "compile() of pulumi/__main__.py",
            seconds,
            f"{cpu:.2f} s CPU; {program['program_bytes'] / 1e6:.1f} MB, peak {rss / 1e6:.0f} MB; "
            f"read from resources.json ({program['data_bytes'] / 1e6:.1f} MB) in "
            f"{program['data_load_seconds']:.2f} s",
        ),
        row(
            "compile() of the all-literal program",
            inline_seconds,
            f"{inline_cpu:.2f} s CPU; {program['inline_bytes'] / 1e6:.1f} MB, "
            f"peak {inline_rss / 1e6:.0f} MB",
        ),
    ]


def mock_lines(mock: dict[str, Any] | None) -> list[str]:
    if mock is None:
        return []
    return [
        "",
        f"mock runtime, {mock['resources']} resources: the program "
        f"{mock['program_us_per_resource']:.0f} us per resource, the SDK floor "
        f"{mock['sdk_floor_us_per_resource']:.0f} us; overhead {mock['overhead']:+.1%}; in CPU "
        f"time {mock['program_cpu_us_per_resource']:.0f} against "
        f"{mock['sdk_floor_cpu_us_per_resource']:.0f} us, {mock['cpu_overhead']:+.1%} (best of "
        f"{MOCK_ROUNDS} alternated runs each)",
    ]


def main() -> int:
    if ARGS.program_only:
        figures = measure_program(ARGS.models, ARGS.sources)
    else:
        figures = measure(ARGS.models, ARGS.sources, not ARGS.no_plan)
    mock = None if ARGS.no_mock else mock_costs(ARGS.mock_models, ARGS.mock_models * 2)
    if ARGS.json:
        print(json.dumps({"figures": figures, "mock": mock}, indent=2, sort_keys=True))
    elif ARGS.program_only:
        print(program_report(figures["program"], mock), end="")
    else:
        print(report(figures, mock), end="")
    return 0


def program_report(program: dict[str, Any], mock: dict[str, Any] | None) -> str:
    """The rows of ``--program-only``: time and CPU of the compile in a fresh interpreter."""

    def row(label: str, seconds: float, note: str = "") -> str:
        return f"| {label} | {seconds:.2f} s | {note} |"

    lines = ["| step | time | note |", "|---|---|---|", *program_rows(program, row)]
    return "\n".join(lines + mock_lines(mock)) + "\n"


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--models", type=int, default=1000)
parser.add_argument("--sources", type=int, default=2000)
parser.add_argument("--mock-models", type=int, default=100)
parser.add_argument("--no-plan", action="store_true")
parser.add_argument("--no-mock", action="store_true")
parser.add_argument("--program-only", action="store_true")
parser.add_argument("--json", action="store_true")
ARGS = parser.parse_args() if __name__ == "__main__" else parser.parse_args([])

if __name__ == "__main__":
    sys.exit(main())
