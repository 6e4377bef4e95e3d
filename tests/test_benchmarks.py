"""Smoke tests for benchmarks/: the generator makes valid, varied, deterministic specs, and the
benchmark script runs end to end. Nothing here is timed: benchmarks are not timed tests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import compile_spec

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
MODELS, SOURCES, SEED = 20, 40, 7
TODAY = date(2030, 1, 1)


def _load_generator() -> ModuleType:
    """benchmarks/ is a folder of scripts, not a package: load generate.py by its path."""
    spec = importlib.util.spec_from_file_location("bench_generate", BENCHMARKS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("files", [1, 4])
def test_generated_spec_validates_without_diagnostics(tmp_path: Path, files: int) -> None:
    texts = generate.generate_files(MODELS, SOURCES, SEED, files)
    assert len(texts) == files
    generate.write_spec(texts, tmp_path)
    result = compile_spec(tmp_path, policies=True, today=TODAY)  # as mlplane validate does
    assert result.ok
    assert [d.one_line() for d in result.diagnostics] == []  # not even a warning
    assert sorted(result.systems) == ["dev", "prod", "staging"]
    system = result.systems["prod"]
    assert len(system.models) == MODELS
    assert len(system.data_sources) == SOURCES


def test_generation_is_deterministic() -> None:
    first = generate.generate_spec(MODELS, SOURCES, SEED)
    assert generate.generate_spec(MODELS, SOURCES, SEED) == first
    assert generate.generate_spec(MODELS, SOURCES, SEED + 1) != first


@pytest.mark.slow
def test_generation_does_not_depend_on_hash_randomisation(tmp_path: Path) -> None:
    """Iterating a set of strings would make the text vary with PYTHONHASHSEED."""
    expected = generate.generate_spec(MODELS, SOURCES, SEED).encode("utf-8")
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        proc = _run(
            [
                str(BENCHMARKS / "generate.py"),
                *("--models", str(MODELS), "--sources", str(SOURCES), "--seed", str(SEED)),
                *("--out", str(out)),
            ],
            env={"PYTHONHASHSEED": hash_seed},
        )
        assert proc.returncode == 0, proc.stderr
        assert (out / "mlplane.yaml").read_bytes() == expected


def test_small_spec_still_covers_every_kind() -> None:
    """The benchmark's value is its variety: even a small spec uses every kind of thing."""
    data: dict[str, Any] = generate.build_spec(MODELS, SOURCES, SEED).data
    sources, models, slas = data["dataSources"], data["models"], data["slas"]
    assert {s["type"] for s in sources.values()} == {
        "objectStore",
        "database",
        "stream",
        "featureStore",
    }
    assert {s["classification"] for s in sources.values()} == {
        "public",
        "internal",
        "confidential",
        "pii",
        "phi",
    }
    serving = [m["serving"] for m in models.values()]
    strategies = {s.get("rollout", {}).get("strategy", "rolling") for s in serving}
    assert strategies == {"rolling", "canary", "blueGreen"}  # shadow: unsupported on kubernetes
    assert {s["autoscaling"]["metric"] for s in serving if "autoscaling" in s} == {
        "cpu",
        "memory",
        "rps",
        "concurrency",
    }
    assert any(s["resources"].get("gpu") for s in serving)
    kinds = Counter(
        sla["indicator"] if isinstance(sla["indicator"], str) else next(iter(sla["indicator"]))
        for sla in slas.values()
    )
    assert set(kinds) == {"availability", "latency", "freshness", "drift", "ratio"}
    assert data["environments"]["prod"]["overrides"]["models"]
    assert data["waivers"] and data["security"]["access"] and data["security"]["network"]["allow"]


def test_lineage_is_deep_and_acyclic() -> None:
    sources = generate.build_spec(MODELS, SOURCES, SEED).data["dataSources"]
    order = {name: index for index, name in enumerate(sources)}
    depth: dict[str, int] = {}
    for name, source in sources.items():  # parents come first: a parent's depth is known
        parents = source.get("derivedFrom", [])
        assert all(order[parent] < order[name] for parent in parents)
        depth[name] = 1 + max((depth[p] for p in parents), default=0)
    assert max(depth.values()) >= 4


def test_write_spec_refuses_foreign_files_and_replaces_its_own(tmp_path: Path) -> None:
    generate.write_spec(generate.generate_files(MODELS, SOURCES, SEED, 4), tmp_path)
    generate.write_spec(generate.generate_files(MODELS, SOURCES, SEED, 1), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlplane.yaml"]
    (tmp_path / "mine.yaml").write_text("models: {}\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match=r"mine\.yaml"):
        generate.write_spec(generate.generate_files(MODELS, SOURCES, SEED, 1), tmp_path)


@pytest.mark.slow
def test_run_script_prints_json_results() -> None:
    args = ["--models", "10", "--sources", "20", "--repeat", "1", "--json"]
    proc = _run([str(BENCHMARKS / "run.py"), *args])
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert set(results) >= {"settings", "spec", "loader", "compile", "stages", "validate", "memory"}
    assert results["spec"]["models"] == 10
    assert results["spec"]["environments"] == ["dev", "prod", "staging"]
    assert set(results["loader"]) >= {"load_bytes_seconds", "bare_libyaml_seconds", "ratio_to_bare"}
    assert set(results["compile"]) >= {"seconds", "ms_per_model", "gc_seconds"}
    assert set(results["stages"]) >= {"load", "scan", "schema_base", "per_environment"}
    assert set(results["stages"]["per_environment"]["prod"]) == {
        "overlay",
        "schema",
        "resolve_check",
        "resolve_build",
        "policies",
        "total",
    }
    assert set(results["validate"]) >= {"seconds", "ms_per_model", "startup_seconds"}
    assert results["memory"]["validate_peak_rss_bytes"] > 0
