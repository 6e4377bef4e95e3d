"""What policy evaluation costs on a large spec: the built-in pack against organisation Rego.

Generates the benchmark spec (``benchmarks/generate.py``), compiles it once without policies,
then times, per environment, (1) the built-in pack through the engine (tuning and waivers
included), rule by rule as well, (2) the example Rego policies of
``examples/fraud-scoring/policies`` in regopy, in the sandbox process of
``compiler/policy/rego.py``: building the input document, the first evaluation (which starts the
process) and later ones, and (3) the graph rules (``Rule.reads_graph``: they find nothing
in the system model, so they are not among the system rules timed one by one) on the
environment's lowered resource graph, when its target lowers it without errors (the generated
AWS environment has no VPC, so only the Kubernetes graphs are checked). Prints the cost per
model, the measure that scales.

Usage::

    python benchmarks/policy_bench.py [--models 1000] [--sources 2000] [--repeat 3] [--json]

Times are the best of ``--repeat`` runs (the minimum is the least disturbed by the machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from mlplane.compiler.build.pipeline import compile_spec, target_of
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.policy.engine import PolicyRun, Rule, installed_rules
from mlplane.compiler.policy.rego import RegoPolicies, to_policy_input

HERE = Path(__file__).resolve().parent
POLICIES = HERE.parent / "examples" / "fraud-scoring" / "policies"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate", HERE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def best(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def builtin(system: ir.System) -> int:
    found, waived = Diagnostics(), Diagnostics()
    run = PolicyRun()
    run.check(system, found, waived)
    return len(found) + len(waived)


def rego_phases(system: ir.System, policies: RegoPolicies, repeat: int) -> dict[str, float]:
    """The example Rego policies in their sandbox process: building the input document, a
    first evaluation (starting the process, loading the modules), and later evaluations of the
    same process (sending the input, the queries, reading the replies)."""
    diagnostics = Diagnostics()

    def cold() -> None:
        policies.close()
        list(policies.findings(system, diagnostics))

    phases = {
        "input_seconds": best(repeat, lambda: to_policy_input(system)),
        "first_seconds": best(repeat, cold),
        "total_seconds": best(repeat, lambda: list(policies.findings(system, diagnostics))),
    }
    policies.close()
    return phases


def lowered(system: ir.System) -> ResourceGraph | None:
    """The environment's graph, or None when its target is missing or reports errors."""
    diagnostics = Diagnostics()
    target = target_of(system, diagnostics)
    graph = target.lower(system, diagnostics) if target is not None else None
    return None if diagnostics.has_errors else graph


def graph_rules(system: ir.System, repeat: int) -> dict[str, Any] | None:
    """The graph rules through the engine on the lowered graph (None: it does not lower)."""
    graph = lowered(system)
    if graph is None:
        return None

    def run() -> int:
        found, waived = Diagnostics(), Diagnostics()
        PolicyRun().check_graph(system, graph, found, waived)
        return len(found) + len(waived)

    return {"resources": len(graph), "seconds": best(repeat, run), "findings": run()}


def _timed(rule: Rule, system: ir.System, repeat: int) -> float:
    return best(repeat, lambda: list(rule.check(system)))


def _environment(system: ir.System, policies: RegoPolicies, repeat: int) -> dict[str, Any]:
    per_rule = {
        rule.id: _timed(rule, system, repeat)
        for rule in installed_rules()
        if not rule.reads_graph  # its system check finds nothing: see graph_rules
    }
    return {
        "builtin_seconds": best(repeat, lambda: builtin(system)),
        "builtin_findings": builtin(system),
        "slowest_rules": dict(sorted(per_rule.items(), key=lambda item: -item[1])[:3]),
        "rego": rego_phases(system, policies, repeat),
        "graph_rules": graph_rules(system, repeat),
    }


def measure(models: int, sources: int, repeat: int) -> dict[str, Any]:
    generate = _generator()
    with tempfile.TemporaryDirectory(prefix="mlplane-policy-bench-") as temporary:
        root = Path(temporary)
        generate.write_spec(
            generate.generate_files(models, sources, generate.DEFAULT_SEED, 1), root
        )
        result = compile_spec(root)
    if not result.systems:
        raise RuntimeError(
            "the generated spec does not compile: " + str(result.sorted_diagnostics()[:5])
        )
    files = sorted(POLICIES.glob("*.rego"))
    policies = RegoPolicies.load(files, Diagnostics())
    report: dict[str, Any] = {"models": models, "sources": sources, "environments": {}}
    for name, system in sorted(result.systems.items()):
        report["environments"][name] = _environment(system, policies, repeat)
    return report


def summary(report: dict[str, Any]) -> str:
    models = report["models"]
    lines = [
        f"policy evaluation, {models} models / {report['sources']} data sources (best of runs)"
    ]
    for name, env in report["environments"].items():
        built, rego = env["builtin_seconds"], env["rego"]["total_seconds"]
        lines.append(
            f"  {name:<8} built-in pack {built * 1e3:7.1f} ms ({built / models * 1e6:6.1f} us/model, "
            f"{env['builtin_findings']} findings)   Rego {rego * 1e3:7.1f} ms "
            f"({rego / models * 1e6:6.1f} us/model, {rego / built:4.1f}x)"
        )
        phases = env["rego"]
        lines.append(
            "           Rego phases: input "
            f"{phases['input_seconds'] * 1e3:.1f} ms, first evaluation (sandbox start) "
            f"{phases['first_seconds'] * 1e3:.1f} ms; slowest rules: "
            + ", ".join(
                f"{rule} {seconds * 1e3:.1f} ms" for rule, seconds in env["slowest_rules"].items()
            )
        )
        lines.append(f"           graph rules: {_graph_text(env['graph_rules'])}")
    return "\n".join(lines)


def _graph_text(found: dict[str, Any] | None) -> str:
    if found is None:
        return "not timed (the environment's graph does not lower without errors)"
    seconds, resources = found["seconds"], found["resources"]
    return (
        f"{seconds * 1e3:.1f} ms on {resources} resources "
        f"({seconds / max(resources, 1) * 1e6:.1f} us/resource, {found['findings']} findings)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1_000)
    parser.add_argument("--sources", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args(argv)
    report = measure(args.models, args.sources, args.repeat)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
