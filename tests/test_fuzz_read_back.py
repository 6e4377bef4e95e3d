"""Fuzzing the files mlplane reads back: saved plans (``apply --plan``) and applied records
(``.mlplane/applied/*.json``), in the style of ``tests/test_fuzz.py``.

The only acceptable outcomes are a value of the documented shape or the reader's own error
(``SavedPlanError``, ``RecordError``) naming the file; never another exception, never a
recursion error, never a hang. What the reader accepts must also be usable: an accepted record's
graph goes through the plan's resource diff, an accepted plan through the staleness check.

Three sources of cases: structural mutations of a valid document (a value anywhere replaced by
arbitrary JSON, a key deleted, a subtree wrapped in lists), arbitrary JSON values, and byte
mutations of a valid file (flips, truncations, insertions of brackets and quotes).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplane.compiler.plan.applied import AppliedRecord, RecordError, read_record, stale_reasons
from mlplane.compiler.plan.diff import diff_graphs
from mlplane.compiler.plan.json_format import SavedPlan, SavedPlanError, load_saved
from mlplane.compiler.plan.run import _display_resources

pytestmark = pytest.mark.slow  # fuzzing: make test runs it, make test-fast does not

QUICK = os.environ.get("MLPLANE_FUZZ_QUICK") == "1"
CASES = 60 if QUICK else 300

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same cases on every run, so CI is reproducible
    database=None,
    print_blob=True,
    max_examples=CASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_RESOURCE: dict[str, Any] = {
    "type": "kubernetes:apps/v1:Deployment",
    "name": "scorer-deployment",
    "component": False,
    "parent": None,
    "dependsOn": ["scorer-service-account"],
    "options": {
        "protect": False,
        "retainOnDelete": False,
        "deleteBeforeReplace": False,
        "ignoreChanges": [],
        "additionalSecretOutputs": [],
    },
    "inputs": {"spec": {"replicas": 2, "template": {"labels": {"app": "scorer"}}}},
    "origin": {"path": "models.scorer", "file": "mlplane.yaml", "line": 30, "column": 3},
}
RECORD: dict[str, Any] = {
    "version": 1,
    "tool": {"name": "mlplane", "version": "0"},
    "system": "demo",
    "environment": "dev",
    "commit": "0" * 40,
    "specSha256": "a" * 64,
    "graphSha256": "b" * 64,
    "specFiles": {"mlplane.yaml": "apiVersion: mlplane.dev/v1\n"},
    "graph": {
        "version": 1,
        "environment": "dev",
        "target": "kubernetes",
        "resources": [
            _RESOURCE,
            {**_RESOURCE, "name": "scorer-service-account", "dependsOn": [], "inputs": {}},
        ],
    },
}
PLAN: dict[str, Any] = {
    "kind": "mlplane-plan",
    "version": 1,
    "status": "ok",
    "system": "demo",
    "environment": "dev",
    "head": {"ref": "worktree", "kind": "worktree", "commit": None, "specSha256": "a" * 64,
             "graphSha256": "b" * 64},
    "base": {"ref": "HEAD", "kind": "git", "commit": "0" * 40, "graphSha256": None},
    "summary": {"changes": True},
}  # fmt: skip

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, document: dict[str, Any]) -> Any:
    """``document`` with a few of its values replaced, keys deleted or subtrees wrapped."""
    result: Any = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(result)))
        if not path:
            return draw(JSON)
        parent = result
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "wrap", "deepen"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        elif action == "deepen":
            deep: Any = parent[path[-1]]
            for _ in range(draw(st.integers(100, 400))):
                deep = [deep]
            parent[path[-1]] = deep
        else:
            parent[path[-1]] = draw(JSON)
    return result


@st.composite
def damaged_bytes(draw: st.DrawFn, document: dict[str, Any]) -> bytes:
    data = bytearray(json.dumps(document).encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "truncate", "insert"]))
        if action == "truncate":
            del data[where:]
        elif action == "flip" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        else:
            data[where:where] = draw(
                st.sampled_from([b"[" * 300, b'"', b"\\", b"{", b"\xff", b"NaN"])
            )
    return bytes(data)


def _check_record(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        record = read_record(path)
    except RecordError as error:
        assert path.name in str(error)
        return
    assert isinstance(record, AppliedRecord)
    resources = _display_resources(record.graph, None)
    diff_graphs(resources, resources)
    diff_graphs({}, resources)


def _check_plan(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        saved = load_saved(path)
    except SavedPlanError as error:
        assert path.name in str(error)
        return
    assert isinstance(saved, SavedPlan)
    current = AppliedRecord("demo", "dev", None, "a" * 64, "b" * 64, {}, RECORD["graph"])
    stale_reasons(saved, current, current)


def test_the_seeds_are_accepted(tmp_path: Path) -> None:
    _check_record(tmp_path / "record.json", json.dumps(RECORD).encode())
    assert read_record(tmp_path / "record.json") is not None
    _check_plan(tmp_path / "plan.json", json.dumps(PLAN).encode())
    assert load_saved(tmp_path / "plan.json").system == "demo"


@FUZZ
@given(document=mutated(RECORD))
def test_mutated_applied_records(tmp_path_factory: Any, document: Any) -> None:
    _check_record(tmp_path_factory.mktemp("r") / "demo-dev.json", json.dumps(document).encode())


@FUZZ
@given(data=damaged_bytes(RECORD))
def test_damaged_applied_record_bytes(tmp_path_factory: Any, data: bytes) -> None:
    _check_record(tmp_path_factory.mktemp("r") / "demo-dev.json", data)


@FUZZ
@given(document=mutated(PLAN))
def test_mutated_saved_plans(tmp_path_factory: Any, document: Any) -> None:
    _check_plan(tmp_path_factory.mktemp("p") / "plan.json", json.dumps(document).encode())


@FUZZ
@given(data=damaged_bytes(PLAN))
def test_damaged_saved_plan_bytes(tmp_path_factory: Any, data: bytes) -> None:
    _check_plan(tmp_path_factory.mktemp("p") / "plan.json", data)


@FUZZ
@given(document=JSON)
def test_arbitrary_json_as_either_file(tmp_path_factory: Any, document: Any) -> None:
    directory = tmp_path_factory.mktemp("j")
    data = json.dumps(document).encode()
    _check_record(directory / "demo-dev.json", data)
    _check_plan(directory / "plan.json", data)
