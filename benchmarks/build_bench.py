"""Build costs on a generated spec: lowering, emitting and writing per model and per resource, and
the same resource graph obtained by running the printed Pulumi program under Pulumi's mock
runtime, as a ratio (the offline plan diffs our graph, so this ratio is its head start).

    python benchmarks/build_bench.py [--models 200] [--sources 400] [--env prod] [--no-mock]

Figures are measured in one run and printed as per-item costs and ratios; this is not a timed
test. The mock run needs the Pulumi SDK (installed by ``make test``), not the Pulumi CLI.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mlplane.compiler.build import outputs
from mlplane.compiler.build.outputs import build
from mlplane.compiler.build.pipeline import compile_spec, no_cyclic_gc
from mlplane.compiler.core import plugins
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.ir import System

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate_spec  # noqa: E402

T = TypeVar("T")
MOCK_RUNNER = HERE.parent / "tests" / "pulumi_mock.py"


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start


def _mock_run(system: System, graph: ResourceGraph, work: Path) -> float:
    """Seconds for the printed program to register everything under the mock runtime."""
    files = plugins.emitters()["pulumi"].emit(system, graph)
    for relative, text in files.items():
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    secrets = sorted({str(v["$secret"]) for r in graph for v in _markers(r.inputs)})
    argv = [
        sys.executable,
        str(MOCK_RUNNER),
        str(work / "pulumi"),
        "--project",
        system.name,
        "--stack",
        system.environment.name,
        "--out",
        str(work / "records.json"),
    ]
    for key in secrets:
        argv += ["--secret", key]
    _, seconds = _timed(lambda: subprocess.run(argv, check=True, capture_output=True))
    return seconds


def _output_parts(
    system: System, graph: ResourceGraph, target: plugins.Target, spec: Path
) -> list[tuple[str, float]]:
    """CPU seconds of each part of one environment's output, in memory (what
    ``compiler/build/outputs.py`` does before the writer): relabelling spec paths, then
    ``resources.json``, the target's files and each emitter's on the relabelled graph, then
    ``output_files`` whole (which shares the specs' JSON between ``resources.json`` and the
    program's data file, so it costs less than the sum of the parts)."""

    def cpu(action: Callable[[], object]) -> float:
        start = time.process_time()
        action()
        return time.process_time() - start

    parts = [("relabel spec paths", cpu(lambda: outputs._rebased(system, graph, spec)))]
    moved_system, moved = outputs._rebased(system, graph, spec)
    parts.append(("resources.json", cpu(moved.canonical_json)))
    parts.append((f"target {target.name} files", cpu(lambda: target.emit(moved_system, moved))))
    for name, emitter in sorted(plugins.emitters().items()):
        parts.append((f"emitter {name}", cpu(lambda e=emitter: e.emit(moved_system, moved))))
    every = cpu(lambda: outputs.output_files(system, graph, target, spec))
    return [*parts, ("every output file, in memory", every)]


def _markers(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if set(value) == {"$secret"}:
            yield value
        for item in value.values():
            yield from _markers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _markers(item)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--sources", type=int, default=400)
    parser.add_argument("--env", default="prod")
    parser.add_argument("--no-mock", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "spec").mkdir()
        (root / "spec" / "mlplane.yaml").write_text(
            generate_spec(args.models, args.sources, 7), encoding="utf-8"
        )
        result, compile_s = _timed(lambda: compile_spec(root / "spec", [args.env], policies=True))
        system = result.systems[args.env]
        target = plugins.targets()[system.environment.target]
        graph, lower_s = _timed(lambda: target.lower(system, Diagnostics()))
        assert graph is not None
        _, emit_s = _timed(lambda: target.emit(system, graph))
        built, build_s = _timed(
            lambda: build(root / "spec", args.env, root / "out" / args.env, policies=True)
        )
        assert built.ok, "the generated spec must build"
        count = len(graph)
        print(f"spec: {args.models} models, {args.sources} data sources; environment {args.env}")
        print(
            f"resources in the graph           {count:>10,}  ({count / args.models:.1f} per model)"
        )
        print(f"compile (with policies)          {compile_s * 1000:>10.1f} ms")
        print(
            f"lower to the resource graph      {lower_s * 1000:>10.1f} ms  {lower_s / count * 1e6:8.1f} µs/resource"
        )
        print(
            f"emit manifests                   {emit_s * 1000:>10.1f} ms  {emit_s / count * 1e6:8.1f} µs/resource"
        )
        print(
            f"mlplane build, end to end        {build_s * 1000:>10.1f} ms  {build_s / args.models * 1000:8.2f} ms/model"
            f"  {build_s / count * 1e6:8.1f} µs/resource"
        )
        with no_cyclic_gc():  # as during a build
            parts = _output_parts(system, graph, target, root / "spec")
        for label, seconds in parts:
            print(
                f"{label:<32} {seconds * 1000:>10.1f} ms  {seconds / count * 1e6:8.1f} µs/resource"
                "  (CPU)"
            )
        if not args.no_mock:
            mock_s = _mock_run(system, graph, root / "mock")
            print(
                f"Pulumi mock run of the program   {mock_s * 1000:>10.1f} ms  {mock_s / count * 1e6:8.1f} µs/resource"
            )
            print(
                f"mock run / our lowering          {mock_s / lower_s:>10.1f}x  (the offline plan's head start)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
