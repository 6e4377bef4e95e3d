"""``benchmarks/engine_bench.py`` end to end on a small generated spec: the real engine previews
the environment as ``mlplane apply`` does, the figures come back, and nothing is created.

Nothing is timed here (benchmarks are not timed tests): the run must succeed, count the
resources the build holds, and leave the cluster as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ROOT, kubectl

pytestmark = pytest.mark.e2e

MODELS = 3
ENVIRONMENT = "dev"


def _namespace(spec_text: str) -> str:
    spec = yaml.safe_load(spec_text)
    return str(spec["environments"][ENVIRONMENT]["kubernetes"]["namespace"])


def test_engine_bench_previews_without_creating_anything(
    e2e_env: dict[str, str], tmp_path: Path
) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from generate import DEFAULT_SEED
        from plan_bench import spec_text  # the very spec the benchmark previews
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    text = spec_text(MODELS, 2 * MODELS, DEFAULT_SEED)
    namespace = _namespace(text)
    assert kubectl(e2e_env, "get", "namespace", namespace, check=False).returncode != 0

    bench = str(ROOT / "benchmarks" / "engine_bench.py")
    done = subprocess.run(
        [sys.executable, bench, "--models", str(MODELS), "--env", ENVIRONMENT, "--json"],
        cwd=tmp_path,
        env=e2e_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = json.loads(done.stdout)

    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "mlplane.yaml").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    built = subprocess.run(
        [sys.executable, "-m", "mlplane", "build", "spec", "--env", ENVIRONMENT, "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    graph = json.loads((out / "resources.json").read_text(encoding="utf-8"))
    # the engine creates every resource of the graph, the stack and its Kubernetes provider
    assert found["resources"] == len(graph["resources"]) + 2
    assert found["models"] == MODELS
    for figure in ("preview_seconds", "host_cpu_seconds", "engine_cpu_seconds"):
        assert found[figure] > 0, figure
    assert found["host_peak_mb"] > 0 and found["engine_peak_mb"] > 0
    assert kubectl(e2e_env, "get", "namespace", namespace, check=False).returncode != 0
