"""The round-trip proof: a printed program registers exactly its resource graph.

``registrations_of(graph, system, directory)`` prints the graph's Pulumi project into
``directory``, runs it under Pulumi's mock runtime in a subprocess (``tests/pulumi_mock.py``) and
returns what it registered; ``expected_registrations(graph)`` says what the graph planned, and
``assert_round_trip`` compares the two resource by resource with a readable difference.

The SDK changes what it sends in a few documented ways; the expected side applies exactly these
and nothing else (input keys are NOT renamed: the graph holds Kubernetes wire-form camelCase keys
and the SDK must pass them through unchanged, which is part of what this proves):
1. typed classes always send ``apiVersion`` and ``kind`` (``PythonClass.implied``);
2. a mapping entry whose value is None is not sent (null means "absent" to the engine);
3. numbers travel as protobuf doubles: an integral float equals the int (bools stay bools);
4. a secret marker ``{"$secret": KEY}`` arrives as the value of the secret config KEY (the mock
   sets it to ``secret:KEY``), inside a secret wrapper: the marker's path must be covered by one;
5. the SDK adds its own ``additionalSecretOutputs`` for some classes (a Kubernetes Secret's
   ``data`` and ``stringData``: ``PythonClass.sdk_secret_outputs``);
6. a ``$ref`` marker arrives as the mock's value of that output (``tests/pulumi_mock.py``:
   computed from the referenced resource's expected inputs), a ``$json`` marker as the JSON text
   of its resolved document (keys sorted, as printed), and every referenced resource is an
   implicit dependency (``dependsOn``), as Pulumi makes it;
7. some pulumi_aws constructors add defaults (:data:`SDK_DEFAULTS`), and a provider resource
   (``pulumi:providers:*``) sends every non-string input as JSON text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlplane.compiler.core.graph import (
    GRAPH_FILE,
    JSON_MARKER,
    PROVIDER_TYPE_PREFIX,
    SECRET_MARKER,
    Resource,
    ResourceGraph,
    is_json_document,
    output_ref,
)
from mlplane.compiler.core.ir import System
from mlplane.targets.pulumi_classes import python_class
from mlplane.targets.pulumi_literals import secret_keys
from mlplane.targets.pulumi_project import EMITTER
from tests.pulumi_mock import mock_output
from tests.pulumi_sdk import require_pulumi_sdk

MOCK_RUNNER = Path(__file__).with_name("pulumi_mock.py")
SECRET_VALUE_PREFIX = "secret:"
SDK_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "pulumi:providers:aws": {"skipCredentialsValidation": False, "skipRegionValidation": True},
    "aws:ec2/securityGroup:SecurityGroup": {"description": "Managed by Pulumi"},
}
"""Inputs that pulumi_aws's constructors set when the program does not (their defaults)."""


def write_project(graph: ResourceGraph, system: System, directory: Path) -> Path:
    """Write the Pulumi project files of ``graph`` below ``directory``, next to the graph's
    JSON that the program reads (as ``mlplane build`` lays them out); the project directory."""
    files = {GRAPH_FILE: graph.canonical_json(), **EMITTER.emit(system, graph)}
    for relative, text in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return directory / "pulumi"


def graph_secret_keys(graph: ResourceGraph) -> list[str]:
    return sorted(set().union(*(secret_keys(dict(r.inputs)) for r in graph)))


def run_mock(
    program_dir: Path, project: str, stack: str, secrets: list[str]
) -> list[dict[str, Any]]:
    """The registrations of the program in ``program_dir`` under Pulumi's mock runtime (the
    test is skipped without the Pulumi SDK, and fails under CI=true)."""
    require_pulumi_sdk()
    out = program_dir.parent / "registrations.json"
    command = [sys.executable, str(MOCK_RUNNER), str(program_dir), "--project", project]
    command += ["--stack", stack, "--out", str(out)]
    for key in secrets:
        command += ["--secret", key]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise AssertionError(f"the program failed under mocks:\n{done.stderr[-4000:]}")
    records: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return records


def registrations_of(graph: ResourceGraph, system: System, directory: Path) -> list[dict[str, Any]]:
    program = write_project(graph, system, directory)
    return run_mock(program, system.name, graph.environment, graph_secret_keys(graph))


def expected_registrations(graph: ResourceGraph) -> list[dict[str, Any]]:
    """What the SDK should send for each resource of ``graph``, after rules 1-7 above."""
    resolver = _Resolver(graph)
    return sorted((_expected(r, resolver) for r in graph), key=lambda record: str(record["name"]))


class _Resolver:
    """Rule 6: the values that ``$ref`` and ``$json`` markers arrive as, memoised per resource."""

    def __init__(self, graph: ResourceGraph) -> None:
        self.resources = {r.name: r for r in graph}
        self.resolved: dict[str, dict[str, Any]] = {}

    def inputs(self, name: str) -> dict[str, Any]:
        """The inputs of ``name`` as sent (markers resolved, None entries dropped)."""
        if name not in self.resolved:
            raw: dict[str, Any] = json.loads(json.dumps(dict(self.resources[name].inputs)))
            self.resolved[name] = _without_none(self.value(raw))
        return self.resolved[name]

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            target = output_ref(value)
            if target is not None:
                name, output = target
                return mock_output(self.resources[name].type, name, self.inputs(name), output)
            if is_json_document(value):
                return json.dumps(self.value(value[JSON_MARKER]), sort_keys=True)
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value


def _expected(resource: Resource, resolver: _Resolver) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(json.dumps(dict(resource.inputs)))
    inputs = resolver.inputs(resource.name)
    sdk_secrets: tuple[str, ...] = ()
    if not resource.component:
        cls = python_class(resource.type)
        inputs = {**SDK_DEFAULTS.get(resource.type, {}), **inputs, **cls.implied}
        sdk_secrets = cls.sdk_secret_outputs
    if resource.type.startswith(PROVIDER_TYPE_PREFIX):
        inputs = {k: v if isinstance(v, str) else json.dumps(v) for k, v in inputs.items()}
    options = resource.options
    return {
        "type": resource.type,
        "name": resource.name,
        "custom": not resource.component,
        "parent": resource.parent,
        "dependsOn": sorted({*resource.depends_on, *resource.references()}),
        "options": {
            "protect": options.protect,
            "retainOnDelete": options.retain_on_delete,
            "deleteBeforeReplace": options.delete_before_replace,
            "ignoreChanges": sorted(options.ignore_changes),
            "additionalSecretOutputs": sorted({*options.additional_secret_outputs, *sdk_secrets}),
            "provider": options.provider,
        },
        "inputs": canonical(_without_secrets(inputs)),
        "secretMarkers": sorted(_marker_paths(raw, [])),
    }


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {SECRET_MARKER}:
            return SECRET_VALUE_PREFIX + value[SECRET_MARKER]
        return {k: _without_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def _marker_paths(value: Any, path: list[Any]) -> list[list[Any]]:
    if isinstance(value, dict):
        if set(value) == {SECRET_MARKER}:
            return [path]
        return [p for k, v in value.items() for p in _marker_paths(v, [*path, k])]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _marker_paths(v, [*path, i])]
    return []


def canonical(value: Any) -> Any:
    """Rule 3: integral floats as ints (protobuf has only doubles); bools untouched."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def recorded_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A mock record in the shape of ``expected_registrations`` (secret coverage checked apart)."""
    options = dict(record["options"])
    options["ignoreChanges"] = sorted(options["ignoreChanges"])
    options["additionalSecretOutputs"] = sorted(options["additionalSecretOutputs"])
    return {
        "type": record["type"],
        "name": record["name"],
        "custom": record["custom"],
        "parent": record["parent"],
        "dependsOn": record["dependsOn"],
        "options": options,
        "inputs": canonical(record["inputs"]),
    }


def assert_round_trip(graph: ResourceGraph, records: list[dict[str, Any]]) -> None:
    """Exactly the graph's resources, field by field; every secret marker arrived as a secret."""
    expected = {r["name"]: r for r in expected_registrations(graph)}
    recorded = {r["name"]: r for r in records}
    assert sorted(recorded) == sorted(expected), "registered names differ from the graph's"
    assert len(records) == len(expected), "a resource was registered twice"
    for name, want in expected.items():
        got = recorded_view(recorded[name])
        markers = want.pop("secretMarkers")
        assert _dumps(got) == _dumps(want), f"resource {name!r} differs:\n{_diff(want, got)}"
        covered = recorded[name]["secretPaths"]
        for marker in markers:
            assert any(marker[: len(p)] == p for p in covered), f"{name}: {marker} not secret"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def _diff(want: Any, got: Any) -> str:
    import difflib

    left = json.dumps(want, indent=1, sort_keys=True).splitlines()
    right = json.dumps(got, indent=1, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(left, right, "graph", "registered", lineterm=""))
