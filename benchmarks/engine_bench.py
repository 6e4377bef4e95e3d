"""The real engine at scale: ``pulumi preview`` of a generated N-model environment, run the way
``mlplane apply`` runs it, against the e2e tier's local control plane.

Needs the e2e cluster up (``make e2e-up``: the Pulumi CLI and Kubernetes provider built from
their pinned Go modules, and a local kube-apiserver; ``.e2e/env`` says where). It is not part of
``make bench`` (which needs nothing running); ``make e2e`` runs it once on a 3-model spec
(``tests/e2e/test_engine_bench.py``). Run::

    make e2e-up
    python benchmarks/engine_bench.py [--models 200] [--env dev] [--json]
    make e2e-down

What it does: the benchmark spec (``benchmarks/generate.py``, as ``plan_bench.py`` writes it) is
committed to a git repository in a temporary directory, whose kubeconfig names the e2e cluster
after the context the spec's environment asks for; a child process then rebuilds the
environment, opens its stack on the local state backend and previews it with the Automation API
exactly as ``mlplane apply`` does before it asks to apply (``compiler/deploy/engine.py``: the
program runs inline, served by that process), with every secret the program reads set to a
placeholder. Nothing is created: a preview only asks the API server, so the cluster is left as
it was, and the temporary directory (with the stack's state) is removed.

Figures, per resource to create (the engine's steps: every resource of the graph, the stack and
its Kubernetes provider), all of the preview alone and measured in the same run: wall-clock
time; CPU time of the process that serves the program (mlplane, the program, the Pulumi SDK and
the Automation API); CPU time of the engine and the provider (the ``pulumi`` CLI and its
plugins, the process's children); peak memory of each. This is a benchmark, not a test: nothing
fails on a threshold, only when the preview itself fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from generate import DEFAULT_SEED
from plan_bench import git_repository, spec_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the e2e tier's own way to reach its cluster
from tests.e2e.conftest import ENV_FILE, cluster_environ, kubeconfig_for  # noqa: E402

PLACEHOLDER = "engine-bench-placeholder"
"""The value of every secret the program reads (a preview sends it to no one)."""


class _WithSecrets(Mapping[str, str]):
    """The process environment, plus a placeholder for every ``MLPLANE_SECRET_<KEY>`` variable
    that ``mlplane apply`` would read (``compiler/deploy/stack.py``, ``secret_values``)."""

    def __init__(self, base: Mapping[str, str]) -> None:
        self._base = base

    def __getitem__(self, name: str) -> str:
        if name.startswith("MLPLANE_SECRET_"):
            return self._base.get(name, PLACEHOLDER)
        return self._base[name]

    def __contains__(self, name: object) -> bool:
        return (isinstance(name, str) and name.startswith("MLPLANE_SECRET_")) or name in self._base

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def measure(models: int, sources: int, environment: str) -> dict[str, Any]:
    """Preview ``environment`` of the ``models``-model spec in a child process; its figures."""
    if not ENV_FILE.is_file():
        raise SystemExit(f"engine_bench: no e2e cluster ({ENV_FILE} is missing): run `make e2e-up`")
    environ = cluster_environ()
    text = spec_text(models, sources, DEFAULT_SEED)
    spec = yaml.safe_load(text)
    context = spec["environments"][environment]["kubernetes"]["context"]
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as directory:
        spec_dir = git_repository(Path(directory), text, text)
        environ["KUBECONFIG"] = str(kubeconfig_for(context, environ, Path(directory)))
        environ["TMPDIR"] = directory
        child = [sys.executable, __file__, "--child", str(spec_dir), environment]
        done = subprocess.run(
            child, env=environ, cwd=directory, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(
            f"engine_bench: the preview failed\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    found["models"] = models
    return found


def child(spec_dir: Path, environment: str) -> None:
    """Rebuild, open the stack and preview as ``mlplane apply`` does; print the figures as JSON."""
    from mlplane.compiler.deploy import engine
    from mlplane.compiler.deploy.stack import rebuilt, workspace_for

    with rebuilt(spec_dir, environment, lambda _: None) as built:
        workspace = workspace_for(built, engine.repository_root(spec_dir), _WithSecrets(os.environ))
        stack = engine.open_stack(workspace)
        started = time.perf_counter()
        host, engine_cpu = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        preview = stack.preview(lambda _: None)  # the engine's process ends, and is counted
        wall = time.perf_counter() - started
        host = _cpu(resource.RUSAGE_SELF) - host
        engine_cpu = _cpu(resource.RUSAGE_CHILDREN) - engine_cpu
    if not preview.ok:
        raise SystemExit(f"the preview failed: {preview.message}")
    creates = sum(1 for _, op in preview.steps if op == "create")
    figures = {
        "resources": creates,
        "preview_seconds": wall,
        "host_cpu_seconds": host,
        "engine_cpu_seconds": engine_cpu,
        "host_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "engine_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def _cpu(who: int) -> float:
    used = resource.getrusage(who)
    return used.ru_utime + used.ru_stime


def report(found: Mapping[str, Any]) -> str:
    count = found["resources"]
    per = 1000 / count if count else 0.0
    return "\n".join(
        [
            f"engine preview, {found['models']} models, {count} resources to create:",
            f"  wall-clock                     {found['preview_seconds']:8.1f} s"
            f"  {found['preview_seconds'] * per:6.1f} ms / resource",
            f"  CPU, program host (mlplane)    {found['host_cpu_seconds']:8.1f} s"
            f"  {found['host_cpu_seconds'] * per:6.1f} ms / resource",
            f"  CPU, engine and provider       {found['engine_cpu_seconds']:8.1f} s"
            f"  {found['engine_cpu_seconds'] * per:6.1f} ms / resource",
            f"  peak memory: host {found['host_peak_mb']:.0f} MB,"
            f" engine or provider {found['engine_peak_mb']:.0f} MB",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--sources", type=int, default=None, help="default: twice the models")
    parser.add_argument("--env", default="dev")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("SPEC", "ENV"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return 0
    found = measure(args.models, args.sources or 2 * args.models, args.env)
    print(json.dumps(found, indent=2) if args.json else report(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
