"""``mlplane validate`` checks the names the Kubernetes lowering would generate without
lowering (``targets/kubernetes/name_plan.py``); these tests hold the plan to the lowering.

For every Kubernetes environment of the examples and of the corpus cases that compile, the
planned object names (kind, name, origin) and logical names (name, origin) are exactly those a
real lowering takes, in the same order, so validate's ``kubernetes-name-*`` diagnostics are the
build's. A change to the lowering that adds, renames or drops an object fails here until the
plan follows it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.targets.kubernetes import checks, name_plan
from mlplane.targets.kubernetes.context import Claim, Lowering

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "corpus"
SPECS = sorted(
    [*(ROOT / "examples").iterdir(), *(p for p in CORPUS.iterdir() if p.suffix == ".yaml")]
)
LOWER = importlib.import_module("mlplane.targets.kubernetes.lower")
PIPELINE_VERSION = "PipelineVersion"
"""Named after a digest of the compiled pipeline; the plan leaves it out (module docstring)."""


def _systems() -> Iterator[tuple[str, ir.System]]:
    for spec in SPECS:
        result = compile_spec(spec)
        for name, system in sorted(result.systems.items()):
            if system.environment.target == "kubernetes":
                yield f"{spec.name}:{name}", system


SYSTEMS = dict(_systems())


def _lowered(system: ir.System, monkeypatch: pytest.MonkeyPatch) -> Lowering:
    """The lowering's own state when it checks its names (it runs even with errors)."""
    seen: list[Lowering] = []
    real = checks.check_names

    def spy(lowering: Lowering) -> None:
        seen.append(lowering)
        real(lowering)

    monkeypatch.setattr(LOWER.checks, "check_names", spy)
    LOWER.lower(system, Diagnostics())
    (lowering,) = seen
    return lowering


def _keys(claims: tuple[Claim, ...] | list[Claim]) -> list[tuple[str, str, str]]:
    return [(c.kind, c.name, str(c.origin.path)) for c in claims]


def test_there_are_kubernetes_environments_to_compare() -> None:
    assert len(SYSTEMS) >= 10, sorted(SYSTEMS)


@pytest.mark.parametrize("key", sorted(SYSTEMS))
def test_the_plan_takes_exactly_the_names_the_lowering_takes(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assert_planned(SYSTEMS[key], monkeypatch)


def test_the_plan_follows_the_lowering_of_the_benchmark_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generated benchmark spec uses every kind of thing the language has (every rollout
    strategy, training, batch and drift jobs, secrets of every scheme, receivers)."""
    from tests.test_benchmarks import generate

    (tmp_path / "mlplane.yaml").write_text(generate.generate_spec(60, 120, 7), encoding="utf-8")
    result = compile_spec(tmp_path)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()[:5]]
    assert len(result.systems) == 3
    for system in result.systems.values():
        _assert_planned(system, monkeypatch)


def _assert_planned(system: ir.System, monkeypatch: pytest.MonkeyPatch) -> None:
    lowering = _lowered(system, monkeypatch)
    planned = name_plan.plan(Lowering(system, Diagnostics()))
    claimed = [c for c in lowering.claims if c.kind != PIPELINE_VERSION]
    assert _keys(planned.claims) == _keys(claimed)
    logical = [
        Claim("resource", r.name, r.origin)
        for r in lowering.resources
        if not r.type.endswith(f":{PIPELINE_VERSION}")
    ]
    expected = _keys(logical)
    got = [k for k in _keys(planned.logical) if not k[1].endswith("-pipelineversion")]
    assert got == expected
