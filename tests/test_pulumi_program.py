"""The printed Pulumi program: docs/quality.md "Pulumi programs", on hand-made and real graphs.

For each graph: the program compiles; ruff (with the project's config) finds nothing; its AST
passes an allow-list (imports, calls, no f-strings); it is pure ASCII and its only comment is
the header; and, the round-trip proof, run under Pulumi's mock runtime it registers exactly the
graph (``tests/pulumi_roundtrip.py`` documents the comparison). Hostile strings must survive the
trip byte for byte. The class table is checked against the installed SDK, and the SDK pins of
``requirements.txt`` against the versions the tests ran with.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import math
import subprocess
import sys
import tokenize
from collections.abc import Callable
from dataclasses import replace
from importlib import import_module
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import Resource, ResourceGraph
from mlplane.compiler.core.ir import System
from mlplane.compiler.core.plugins import targets
from mlplane.compiler.core.provenance import header_line
from mlplane.targets import pulumi_aws_classes as aws_classes
from mlplane.targets.pulumi_classes import CLASSES, UnknownTypeError, keyword_of
from mlplane.targets.pulumi_literals import LiteralError, ProgramError, literal
from mlplane.targets.pulumi_program import print_program
from mlplane.targets.pulumi_project import EMITTER, SDK_PINS
from tests.pulumi_graphs import (
    HOSTILE,
    ORIGIN,
    demo_system,
    hostile_graph,
    rich_graph,
    table_graph,
)
from tests.pulumi_roundtrip import assert_round_trip, registrations_of
from tests.test_examples import EXAMPLES

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_HEURISTICS = "S104,S108"
"""Bandit rules that judge a string's *content*: S104 fires on the text "0.0.0.0", S108 on text
starting with "/tmp". In the program such strings are data (an emptyDir mounted at /tmp, a CIDR),
not code that binds a socket or creates a file, so ruff runs with the project's config minus
these two rules, and nothing else."""
ALLOWED_IMPORTS = {"pulumi", "pulumi_kubernetes", "pulumi_aws"}
FORBIDDEN_NAMES = {"exec", "eval", "compile", "__import__", "open", "getattr", "setattr", "globals"}
FORBIDDEN_ATTRIBUTES = {"system", "popen", "spawn", "run", "call", "check_output", "Popen"}
GRAPHS: dict[str, Callable[[], ResourceGraph]] = {
    "rich": rich_graph,
    "hostile": hostile_graph,
    "table": table_graph,
}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> System:
    return demo_system(tmp_path_factory.mktemp("spec"))


def real_graphs() -> list[tuple[str, str]]:
    """Every (example, environment) to print: every environment of every example (both
    targets), so a new environment is covered without a change here."""
    found = []
    for example in EXAMPLES:
        result = compile_spec(REPO_ROOT / "examples" / example.name)
        found += [(example.name, env) for env in sorted(result.systems)]
    return found


def real_graph(example: str, env: str) -> tuple[ResourceGraph, System]:
    result = compile_spec(REPO_ROOT / "examples" / example, [env])
    system = result.systems[env]
    target = system.environment.target
    assert target in targets(), (
        f"the {target} target is not installed (entry point mlplane.targets)"
    )
    diagnostics = Diagnostics()
    graph = targets()[target].lower(system, diagnostics)
    assert graph is not None, [d.one_line() for d in diagnostics]
    return graph, system


# --- static properties ------------------------------------------------------------------------


def check_static(program: str, directory: Path, system: System) -> None:
    """Compile, ruff, AST allow-list, ASCII, comments: docs/quality.md "Pulumi programs"."""
    compile(program, "__main__.py", "exec")
    assert program.isascii(), "the program must be pure ASCII (no bidi, no homoglyphs)"
    check_ast(ast.parse(program))
    comments = [
        t.string
        for t in tokenize.generate_tokens(io.StringIO(program).readline)
        if t.type == tokenize.COMMENT
    ]
    assert comments == [f"# {header_line(system)}"], comments
    path = directory / "__main__.py"
    path.write_text(program, encoding="utf-8")
    ruff = [
        sys.executable,
        "-m",
        "ruff",
        "check",
        "--no-cache",
        "--config",
        str(REPO_ROOT / "pyproject.toml"),
    ]
    ruff += ["--extend-ignore", DATA_HEURISTICS, str(path)]
    done = subprocess.run(ruff, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def check_ast(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        assert not isinstance(node, ast.JoinedStr), "f-string in the program"
        if isinstance(node, ast.Import):
            assert {alias.name for alias in node.names} <= ALLOWED_IMPORTS, ast.dump(node)
            assert all(alias.asname is None for alias in node.names)
        assert not isinstance(node, ast.ImportFrom), ast.dump(node)
        if isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN_NAMES, node.id
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_ATTRIBUTES, node.attr
        assert not isinstance(node, ast.Lambda | ast.Global | ast.Nonlocal | ast.Delete)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_hand_made_program_is_static_clean(name: str, system: System, tmp_path: Path) -> None:
    check_static(print_program(GRAPHS[name](), system), tmp_path, system)


@pytest.mark.parametrize(("example", "env"), real_graphs())
def test_example_program_is_static_clean(example: str, env: str, tmp_path: Path) -> None:
    graph, system = real_graph(example, env)
    check_static(print_program(graph, system), tmp_path, system)


def test_hostile_strings_stay_inside_literals(system: System) -> None:
    program = print_program(hostile_graph(), system)
    constants = {
        node.value for node in ast.walk(ast.parse(program)) if isinstance(node, ast.Constant)
    }
    for text in HOSTILE:
        assert text in constants, f"{text!a} is not a literal constant of the program"
    tokens = tokenize.generate_tokens(io.StringIO(program).readline)
    code = " ".join(t.string for t in tokens if t.type not in (tokenize.STRING, tokenize.COMMENT))
    for text in HOSTILE:
        assert text not in code, f"{text!a} appears outside a string literal"


# --- the round-trip proof --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_hand_made_program_registers_exactly_the_graph(
    name: str, system: System, tmp_path: Path
) -> None:
    graph = GRAPHS[name]()
    records = registrations_of(graph, system, tmp_path)
    assert_round_trip(graph, records)


@pytest.mark.slow
def test_hostile_strings_arrive_byte_exactly(system: System, tmp_path: Path) -> None:
    graph = hostile_graph()
    records = {r["name"]: r for r in registrations_of(graph, system, tmp_path)}
    config_map = records["demo-hostile"]["inputs"]
    assert config_map["data"] == {f"k{i:02d}-{text}": text for i, text in enumerate(HOSTILE)}
    assert sorted(name for name in records if name.startswith("svc-")) == sorted(
        f"svc-{i:02d}-{text}" for i, text in enumerate(HOSTILE)
    )


@pytest.mark.slow
@pytest.mark.parametrize(("example", "env"), real_graphs())
def test_example_program_registers_exactly_the_graph(
    example: str, env: str, tmp_path: Path
) -> None:
    graph, system = real_graph(example, env)
    records = registrations_of(graph, system, tmp_path)
    assert_round_trip(graph, records)
    assert json.loads(graph.canonical_json())["resources"], "an empty graph proves nothing"


@pytest.mark.slow
def test_round_trip_notices_a_difference(system: System, tmp_path: Path) -> None:
    """The comparison is not vacuous: a graph that differs from the program fails it."""
    graph = rich_graph()
    records = registrations_of(graph, system, tmp_path)
    changed = [
        replace(r, inputs={**r.inputs, "data": {"ratio": "0.6"}}) if r.name == "a-settings" else r
        for r in graph
    ]
    with pytest.raises(AssertionError, match="a-settings"):
        assert_round_trip(ResourceGraph.build(graph.environment, graph.target, changed), records)


# --- determinism and errors ------------------------------------------------------------------


def test_printing_is_deterministic(system: System) -> None:
    graph = rich_graph()
    shuffled = ResourceGraph.build(graph.environment, graph.target, reversed(graph.resources))
    assert print_program(graph, system) == print_program(shuffled, system)


def test_parents_and_dependencies_are_created_first(system: System) -> None:
    program = print_program(rich_graph(), system)
    assert program.index("group_1 = Group(") > program.index("model_1 = Model(")
    assert program.index("config_map_1 = ") > program.index("namespace_1 = ")


def resource(token: str, inputs: dict[str, object], **kwargs: object) -> ResourceGraph:
    return ResourceGraph.build(
        "dev", "kubernetes", [Resource(token, "r", inputs, ORIGIN, **kwargs)]
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("graph", "error", "message"),
    [
        (lambda: resource("kubernetes:example.com/v1:Unknown", {}), UnknownTypeError, "add a row"),
        (
            lambda: resource("kubernetes:core/v1:Namespace", {"status": {}}),
            ProgramError,
            "takes no input 'status'",
        ),
        (
            lambda: resource("kubernetes:core/v1:Namespace", {"kind": "Pod"}),
            ProgramError,
            "must be 'Namespace'",
        ),
        (
            lambda: resource("kubernetes:core/v1:Namespace", {"spec": {"x": math.inf}}),
            LiteralError,
            "non-finite",
        ),
        (
            lambda: resource("kubernetes:core/v1:Namespace", {"spec": {"x": {"$secret": "a b"}}}),
            LiteralError,
            "secret marker",
        ),
        (
            lambda: resource("kubernetes:core/v1:Namespace", {"spec": {1: "x"}}),
            LiteralError,
            "not a string",
        ),
        (
            lambda: resource("kubernetes:core/v1:Namespace", {"spec": {"x": b"bytes"}}),
            LiteralError,
            "type bytes",
        ),
        (lambda: resource("bad:Token", {}, component=True), ProgramError, "pkg:module:Kind"),
        (lambda: resource("bad token", {}, component=True), ProgramError, "CamelCase kind"),
    ],
)
def test_unprintable_graphs_raise(
    graph: Callable[[], ResourceGraph], error: type[Exception], message: str, system: System
) -> None:
    with pytest.raises(error, match=message):
        print_program(graph(), system)


def test_dependency_cycle_raises(system: System) -> None:
    cycle = [
        Resource("kubernetes:core/v1:Namespace", "a", {}, ORIGIN, depends_on=("b",)),
        Resource("kubernetes:core/v1:Namespace", "b", {}, ORIGIN, depends_on=("a",)),
    ]
    with pytest.raises(ProgramError, match="cycle"):
        print_program(ResourceGraph.build("dev", "kubernetes", cycle), system)


def test_literal_layout_round_trips() -> None:
    value = {"b": [1, 2.5, None, True, *HOSTILE], "a": {"k" * 60: ["v" * 60]}, "c": [], "d": {}}
    printed = literal(value)
    assert ast.literal_eval(printed) == value
    assert max(len(line) for line in printed.splitlines()) <= 100 or "v" * 60 in printed


# --- the class table and the project files ---------------------------------------------------


@pytest.mark.parametrize("token", sorted(CLASSES))
def test_table_row_matches_the_installed_sdk(token: str) -> None:
    """The class exists and takes each listed input under the keyword the printer uses, and the
    SDK sends it under the listed wire name (the round trip of ``table_graph`` proves the token)."""
    cls = CLASSES[token]
    python_class = sdk_attribute(cls.module, cls.name)
    parameters = inspect.signature(python_class._internal_init).parameters
    if cls.args is not None:  # pulumi_aws: the generated table names the args class and keywords
        args_class = sdk_attribute(cls.module, cls.args)
        keywords = {wire: field[0] for wire, field in aws_classes.TYPES[cls.args].items()}
    else:
        module = import_module(python_class.__module__)
        class_name = cls.name.rpartition(".")[2]
        args_class = getattr(module, f"{class_name}Args", None) or getattr(
            module, f"{class_name}InitArgs"
        )
        keywords = {wire: keyword_of(wire) for wire in cls.inputs}
    for wire_name in cls.inputs:
        keyword = keywords[wire_name]
        assert keyword in parameters, f"{cls.path} takes no {keyword}"
        getter = getattr(args_class, keyword).fget
        assert getter._pulumi_name == wire_name, (
            f"{cls.path}.{keyword} is sent as {getter._pulumi_name}"
        )


def sdk_attribute(module: str, path: str) -> type:
    """``pulumi_aws`` + ``s3.Bucket`` -> the class (attribute access, as the program does)."""
    found = import_module(module)
    for part in path.split("."):
        found = getattr(found, part)
    return found  # type: ignore[return-value]


def test_sdk_pins_equal_the_tested_versions() -> None:
    installed = {name: version(name) for name in SDK_PINS}
    assert dict(SDK_PINS) == installed, (
        "requirements.txt must pin the SDK the mock round trip ran with: update SDK_PINS in "
        "targets/pulumi_project.py"
    )


def test_project_files(system: System) -> None:
    files = EMITTER.emit(system, rich_graph())
    assert sorted(files) == [
        "pulumi/.gitignore",
        "pulumi/Pulumi.dev.yaml",
        "pulumi/Pulumi.yaml",
        "pulumi/__main__.py",
        "pulumi/requirements.txt",
    ]
    project = yaml.safe_load(files["pulumi/Pulumi.yaml"])
    assert project["name"] == "demo"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": "venv"},
    }
    assert yaml.safe_load(files["pulumi/Pulumi.dev.yaml"]) == {"config": {}}
    pins = [
        line for line in files["pulumi/requirements.txt"].splitlines() if not line.startswith("#")
    ]
    assert pins == [f"{name}=={SDK_PINS[name]}" for name in ("pulumi", "pulumi-kubernetes")]
    for path, text in files.items():  # JSON holds no comment: manifest.json names its generator
        assert path.endswith(".json") or text.startswith(f"# {header_line(system)}\n")
        assert text.isascii()
