"""What the monitoring emitter costs on a large spec, and what promtool needs to check its output.

Generates the benchmark spec (``benchmarks/generate.py``), compiles the ``prod`` environment once,
then times (best of ``--repeat``):

* the rule groups as data (``prometheus_rules``) and as YAML (``rules_yaml``),
* every monitoring file (rules, generated promtool tests, dashboard, Alertmanager config),
* ``promtool check rules --lint=all --lint-fatal`` on the rule file (when promtool is installed),

and prints each as SLAs per second and microseconds per SLA, the figures that stay comparable
when the spec or the machine changes.

Latency SLAs whose threshold is not a bucket boundary of their model's runtime (or that sit on
a Triton model, which has no latency histogram) cannot be measured; the front end rejects them.
If the generated spec has any, they are left out of the timed system and counted in the output.

Usage::

    python benchmarks/monitoring_bench.py [--models 1000] [--sources 2000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.targets.monitoring import monitoring_files, monitoring_problems
from mlplane.targets.monitoring.rules import prometheus_rules, rules_yaml

HERE = Path(__file__).resolve().parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate", HERE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def best(repeat: int, action: Callable[[], object]) -> float:
    """Seconds of the fastest of ``repeat`` calls (the least disturbed by the machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def build_system(models: int, sources: int) -> tuple[ir.System, int]:
    """The generated spec's prod system, without SLAs the emitter cannot measure (counted)."""
    generate = _generator()
    with tempfile.TemporaryDirectory(prefix="mlplane-monitoring-bench-") as folder:
        root = Path(folder) / "spec"
        generate.write_spec(
            generate.generate_files(models, sources, generate.DEFAULT_SEED, 1), root
        )
        result = compile_spec(root, ["prod"])
    if "prod" not in result.systems:
        first = next(iter(result.sorted_diagnostics()), None)
        raise SystemExit(f"the generated spec does not compile: {first.message if first else '?'}")
    system = result.systems["prod"]
    unmeasurable = {p.origin.path[1] for p in monitoring_problems(system) if p.severity == "error"}
    kept = {name: sla for name, sla in system.slas.items() if name not in unmeasurable}
    return dataclasses.replace(system, slas=kept), len(unmeasurable)


def promtool_seconds(text: str, repeat: int) -> float | None:
    """Best time of ``promtool check rules --lint=all --lint-fatal`` on ``text``; None without
    promtool. Raises when promtool rejects the file (then the timing would be meaningless)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mlplane-monitoring-bench-") as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(text, encoding="utf-8")
        argv = [promtool, "check", "rules", "--lint=all", "--lint-fatal", "--", str(path)]

        def check() -> None:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"promtool rejected the rules:\n{proc.stdout}{proc.stderr}")

        return best(repeat, check)


def measure(models: int, sources: int, repeat: int) -> dict[str, Any]:
    system, left_out = build_system(models, sources)
    slas = len(system.slas)
    rule_text = rules_yaml(system)
    figures: dict[str, Any] = {
        "slas": slas,
        "slas_left_out": left_out,
        "rules": sum(len(g["rules"]) for g in prometheus_rules(system)["groups"]),
        "rules_yaml_bytes": len(rule_text.encode()),
    }
    timed = {
        "rules_as_data": lambda: prometheus_rules(system),
        "rules_yaml": lambda: rules_yaml(system),
        "all_monitoring_files": lambda: monitoring_files(system),
    }
    for name, action in timed.items():
        figures[f"{name}_seconds"] = best(repeat, action)
    figures["promtool_check_seconds"] = promtool_seconds(rule_text, repeat)
    return figures


def report(figures: dict[str, Any]) -> str:
    slas = figures["slas"]
    lines = [
        f"spec: {slas} SLAs ({figures['slas_left_out']} unmeasurable left out), "
        f"{figures['rules']} rules, rules.yaml {figures['rules_yaml_bytes'] / 1e6:.1f} MB",
        f"{'step':<34}{'seconds':>10}{'SLAs/s':>12}{'us/SLA':>10}",
    ]
    for name in ("rules_as_data", "rules_yaml", "all_monitoring_files", "promtool_check"):
        seconds = figures[f"{name}_seconds"]
        if seconds is None:
            lines.append(f"{name:<34}{'(promtool not installed)':>32}")
            continue
        lines.append(
            f"{name:<34}{seconds:>10.3f}{slas / seconds:>12,.0f}{seconds / slas * 1e6:>10.0f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.models, args.sources, max(1, args.repeat))
    print(json.dumps(figures, indent=2, sort_keys=True) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
