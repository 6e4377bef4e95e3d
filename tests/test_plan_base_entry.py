"""A git base's whole side in the plan cache (``compiler/plan/base_entry.py``): a warm plan
neither loads nor compiles the base, gives the plan byte for byte, and stops using an entry
whose one outside input (a ``policies.rego`` file of the working tree) is gone; the payload is
unpickled under an allow-list; the key follows every input."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import governance as core_governance
from mlplane.compiler.core import pickled
from mlplane.compiler.core.source import DEFAULT_LIMITS
from mlplane.compiler.plan import base_entry
from mlplane.compiler.plan import parallel as plan_parallel
from mlplane.compiler.plan import run as plan_run
from mlplane.compiler.plan.gitsource import head_commit
from tests.specs import BASE
from tests.test_pickled import loaded_inputs
from tests.test_plan import Repo, repo, target  # noqa: F401  (fixtures)

FORMATS = ("text", "markdown", "json")
REGO = "policies: {rego: [org.rego]}\n"
SLA = """\
  scorer-availability:
    model: scorer
    objective: 99.9
    indicator: availability
"""


@pytest.fixture
def private(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:  # noqa: F811
    """The repository with a private cache home; the base is done in this process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(plan_parallel, "spare_core", lambda: False)
    return repo


@pytest.fixture
def compiled_bases(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The environments the plan compiled a git base for."""
    found: list[str] = []
    original = plan_run.compile_document

    def spy(document: Any, environments: Any, *args: Any, **kwargs: Any) -> Any:
        found.extend(environments)
        return original(document, environments, *args, **kwargs)

    monkeypatch.setattr(plan_run, "compile_document", spy)
    return found


def outputs(*args: str) -> dict[str, str]:
    found = {}
    for fmt in FORMATS:
        command = ["plan", "spec", "--env", "dev", "--format", fmt, *args]
        result = CliRunner().invoke(cli, command)
        assert result.exit_code in (0, 1, 2), result.output
        found[fmt] = result.output
    return found


def test_a_warm_plan_does_not_compile_the_base(private: Repo, compiled_bases: list[str]) -> None:
    private.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 2, max: 6}")
    uncached = outputs("--no-cache")
    assert compiled_bases == ["dev"] * len(FORMATS)
    cold = outputs()
    assert compiled_bases == ["dev"] * (len(FORMATS) + 1)  # the first stores the entry
    warm = outputs()
    assert len(compiled_bases) == len(FORMATS) + 1
    assert cold == uncached and warm == uncached
    assert '"status": "compiled"' in warm["json"] and "replicas" in warm["text"]


def test_an_entry_stands_only_while_its_rego_files_exist(
    private: Repo, compiled_bases: list[str]
) -> None:
    """The base names a Rego file of the working tree; the head drops it and deletes the file,
    so the base no longer compiles here: the entry must not say it does."""
    private.write("spec/org.rego", "package org\n")
    private.write("spec/mlplane.yaml", BASE + REGO)
    private.commit("rego")
    with_file = outputs()
    assert compiled_bases == ["dev"]
    (private.root / "spec" / "org.rego").unlink()
    private.write("spec/mlplane.yaml", BASE)
    without = outputs("--no-cache")
    assert outputs() == without != with_file
    assert "does not compile" in without["text"]


def test_the_payload_round_trips_and_refuses_what_is_not_listed(tmp_path: Path) -> None:
    compiled = compile_spec(Path(__file__).parent.parent / "examples" / "fraud-scoring", ["prod"])
    system = compiled.systems["prod"]
    readers = {"a": {"arn": [("b", "x", ("x",))]}}
    stored = base_entry.Stored(system, {"mlplane.yaml": "x"}, system.policies.rego, readers)
    payload = pickled.dumped(stored)
    assert payload is not None and base_entry._loaded(payload) == stored
    assert base_entry._loaded(pickle.dumps(tmp_path)) is None  # pathlib is not listed
    assert base_entry._loaded(pickle.dumps(print)) is None  # nor any function
    assert base_entry._loaded(pickle.dumps(head_commit)) is None  # mlplane's own included
    assert base_entry._loaded(payload[: len(payload) // 2]) is None
    assert base_entry._loaded(pickle.dumps({"not": "stored"})) is None
    for _ in range(2):  # what was allowed is remembered, what was refused is refused again
        assert base_entry._loaded(payload) == stored
        assert base_entry._loaded(pickle.dumps(tmp_path)) is None


def test_the_key_follows_every_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    monkeypatch.chdir(tmp_path)
    blobs = {"mlplane.yaml": BASE.encode()}
    key = base_entry.base_key("dev", spec, blobs, DEFAULT_LIMITS)
    assert key is not None and key.shown == {"mlplane.yaml": "spec/mlplane.yaml"}
    same = base_entry.base_key("dev", spec, dict(blobs), DEFAULT_LIMITS)
    assert same is not None and same.key == key.key
    others = [
        base_entry.base_key("prod", spec, blobs, DEFAULT_LIMITS),
        base_entry.base_key("dev", spec, {"mlplane.yaml": BASE.encode() + b"\n"}, DEFAULT_LIMITS),
        base_entry.base_key("dev", spec, {"other.yaml": BASE.encode()}, DEFAULT_LIMITS),
        base_entry.base_key("dev", spec, blobs, replace(DEFAULT_LIMITS, max_depth=10)),
    ]
    monkeypatch.chdir(spec)  # the files are shown under other names
    others.append(base_entry.base_key("dev", spec, blobs, DEFAULT_LIMITS))
    assert all(other is not None for other in others)
    assert len({key.key, *(other.key for other in others if other)}) == len(others) + 1


def test_the_origins_stored_apart_read_back_when_first_read() -> None:
    """The system model is stored without its origins, which are pickled apart and read back
    (with the allow-list) only when the plan first looks one up: the same system model."""
    compiled = compile_spec(Path(__file__).parent.parent / "examples" / "fraud-scoring", ["prod"])
    system = compiled.systems["prod"]
    without, data = base_entry._origins_apart(system)
    assert data and not without.origins and without.models == system.models
    origins = base_entry.StoredOrigins(data)
    again = replace(without, origins=origins)
    assert origins._read is None  # nothing read yet
    path = next(iter(system.origins))
    assert again.locate(path) == system.locate(path) and origins._read is not None
    assert again == system and list(again.origins) == list(system.origins)
    assert dict(again.origins) == dict(system.origins) and len(again.origins) == len(system.origins)
    damaged = base_entry.StoredOrigins(pickle.dumps(print))  # refused by the allow-list
    with pytest.raises(RuntimeError, match="do not read back"):
        damaged.get(path)


def test_a_warm_plan_locates_a_removed_entry_on_the_base(
    private: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ML summary locates a removed SLA at the base's line: read from the origins stored
    apart, the plan is byte for byte the uncached one (and says where the SLA was)."""
    assert BASE.endswith(SLA)
    removed = BASE.removesuffix("slas:\n" + SLA)
    private.write("spec/mlplane.yaml", removed)
    uncached = outputs("--no-cache")
    assert "REMOVED" in uncached["text"]
    outputs()  # stores the entry
    read: list[int] = []
    original = base_entry.StoredOrigins._origins

    def spy(self: base_entry.StoredOrigins) -> Any:
        read.append(len(self._data))
        return original(self)

    monkeypatch.setattr(base_entry.StoredOrigins, "_origins", spy)
    assert outputs() == uncached
    assert read, "the base's origins were read"


def test_a_warm_plan_takes_the_base_lineage_from_the_entry(
    private: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry holds the base's lineage: a warm plan computes the head's alone, and its
    governance section (a residency crossing added) is byte for byte the uncached plan's."""
    derived = "    classification: pii\n    derivedFrom: [events]\n"
    private.edit("spec/mlplane.yaml", derived, derived + "    residency: us\n")
    uncached = outputs("--no-cache")
    assert "crosses a residency border" in uncached["text"]
    outputs()  # stores the entry
    computed: list[str] = []
    original = core_governance.lineage

    def spy(system: Any) -> Any:
        computed.append(system.environment.name)
        return original(system)

    monkeypatch.setattr(core_governance, "lineage", spy)
    assert outputs() == uncached
    assert computed == ["dev"] * len(FORMATS), "one lineage per plan: the head's"
    head = compile_spec(private.root / "spec", ["dev"]).systems["dev"]
    (private.root / "base").mkdir()
    (private.root / "base" / "mlplane.yaml").write_text(BASE, encoding="utf-8")
    base = compile_spec(private.root / "base", ["dev"]).systems["dev"]
    given = core_governance.governance_diff(base, head, original(base))
    assert given == core_governance.governance_diff(base, head) and given.edges_crossing
    assert core_governance.governance_diff(None, head, original(base)) == (
        core_governance.governance_diff(None, head)
    )  # without a base, a lineage given for it is ignored


def test_a_warm_plan_reads_the_inputs_of_the_changed_model_only(
    private: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The units the head takes from the entry hold their resources' inputs pickled apart
    (``graph.Deferred``): a one-line plan unpickles those of the units it lowers again (when
    it stores nothing, none), and says byte for byte what the uncached plan says."""
    private.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 2, max: 6}")
    uncached = outputs("--no-cache")
    outputs()  # stores the entry
    loaded = loaded_inputs(monkeypatch)
    assert outputs() == uncached
    assert loaded == []
