"""The program's data (``targets/pulumi_program.py``, ``DATA_INPUTS``): the ``metadata`` and
``spec`` of each Kubernetes object are read from the build's ``resources.json`` instead of
printed as literals or copied into a file of the program's own, and the program still registers
exactly the graph under Pulumi's mock runtime."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import compile_spec, target_of
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.ir import System
from mlplane.targets.pulumi_classes import keyword_of
from mlplane.targets.pulumi_program import (
    DATA_FUNCTION,
    DATA_INPUTS,
    DATA_TYPES,
    print_program,
)
from mlplane.targets.pulumi_project import EMITTER
from tests import test_pulumi_program as static
from tests.pulumi_roundtrip import assert_round_trip, registrations_of
from tests.test_pulumi_program import real_graph, real_graphs

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "recsys-gpu"
RULE_TOKEN = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


@pytest.fixture(scope="module")
def lowered() -> tuple[System, ResourceGraph]:
    compiled = compile_spec(EXAMPLE, ["dev"])
    assert compiled.ok
    system = compiled.systems["dev"]
    diagnostics = Diagnostics()
    target = target_of(system, diagnostics)
    assert target is not None
    graph = target.lower(system, diagnostics)
    assert graph is not None and not diagnostics.has_errors
    return system, graph


def test_specs_are_read_from_the_graph(lowered: tuple[System, ResourceGraph]) -> None:
    system, graph = lowered
    files = EMITTER.emit(system, graph)
    assert not [path for path in files if path.endswith(".json")]  # no copy of the graph's values
    program = files["pulumi/__main__.py"]
    objects = [r for r in graph if r.type.startswith(DATA_TYPES)]
    assert any(r.type == RULE_TOKEN and "spec" in r.inputs for r in objects)
    reading = [r for r in objects if set(DATA_INPUTS) & set(r.inputs)]
    for resource in reading:  # each reads all it has, by its own name
        assert f"**{DATA_FUNCTION}({resource.name!r})" in program, resource.name
    assert program.count(f"**{DATA_FUNCTION}(") == len(reading)
    assert "metadata=" not in program and "spec=" not in program
    assert len(program) < len(print_program(graph, system)) / 4  # the literals held them
    assert all(keyword_of(key) == key for key in DATA_INPUTS)  # read by name, passed as keywords


@pytest.mark.slow
def test_the_program_with_its_data_registers_exactly_the_graph(
    lowered: tuple[System, ResourceGraph], tmp_path: Path
) -> None:
    system, graph = lowered
    assert_round_trip(graph, registrations_of(graph, system, tmp_path))


def test_an_input_holding_a_marker_stays_in_the_program(
    lowered: tuple[System, ResourceGraph], tmp_path: Path
) -> None:
    system, graph = lowered
    rule = next(r for r in graph if r.type == RULE_TOKEN)
    marked = {"groups": [{"name": "g", "rules": [{"record": {"$secret": "rule-name"}}]}]}
    changed = ResourceGraph.build(
        "dev",
        graph.target,
        [replace(r, inputs={**r.inputs, "spec": marked}) if r is rule else r for r in graph],
    )
    program = print_program(changed, system, read_graph=True)
    assert f"**{DATA_FUNCTION}({rule.name!r}, 'metadata')" in program
    assert "config.require_secret('rule-name')" in program
    assert_round_trip(changed, registrations_of(changed, system, tmp_path))


def test_the_program_reading_the_graph_is_static_clean(
    lowered: tuple[System, ResourceGraph], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program as ``mlplane build`` writes it passes the checks of the all-literal program,
    with the two standard modules that read the graph allowed."""
    system, graph = lowered
    program = EMITTER.emit(system, graph)["pulumi/__main__.py"]
    allowed = {*static.ALLOWED_IMPORTS, "json", "pathlib"}
    monkeypatch.setattr(static, "ALLOWED_IMPORTS", allowed)
    static.check_static(program, tmp_path, system)
    assert "import json\nimport pathlib\n" in program


KUBERNETES_NODES_PER_RESOURCE = 40
"""The syntax tree of the program's statements, per resource, of every Kubernetes example:
CPython's ``compile()`` takes time and memory in proportion to it (about 1.4 us per node on
the project's machine, ``benchmarks/scale_bench.py``), so this bounds the compile of the
1,000-model benchmark's ~14,000 resources. Today 28 to 32 (the class, the logical name, the
inputs left in the program, ``**inputs_of(name)`` and ``opts=child(...)``); printing the
metadata inline again would double it."""


def kubernetes_graphs() -> list[tuple[str, str]]:
    """The (example, environment) pairs of :func:`real_graphs` on Kubernetes: only Kubernetes
    objects read their inputs from the graph."""
    found = []
    for example in sorted({name for name, _ in real_graphs()}):
        systems = compile_spec(static.REPO_ROOT / "examples" / example).systems
        found += [
            (example, env)
            for env in sorted(systems)
            if systems[env].environment.target == "kubernetes"
        ]
    return found


@pytest.mark.parametrize(("example", "env"), kubernetes_graphs())
def test_a_kubernetes_program_is_small_per_resource(example: str, env: str) -> None:
    graph, system = real_graph(example, env)
    assert graph.target == "kubernetes"
    tree = ast.parse(EMITTER.emit(system, graph)["pulumi/__main__.py"])
    statements = [n for n in tree.body if isinstance(n, ast.Assign)]
    nodes = sum(1 for statement in statements for _ in ast.walk(statement))
    assert nodes / len(graph.resources) <= KUBERNETES_NODES_PER_RESOURCE
