"""The build cache (``compiler/build/cache.py``): a build that takes an earlier build's units and
texts writes, file for file, what a build without the cache writes; ``--check`` reads it and
never writes it; a damaged, planted or hostile entry is ignored; ``MLPLANE_NO_CACHE`` turns it
off."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplane.compiler.build import cache as build_cache
from mlplane.compiler.build.cache import DISABLE_VARIABLE, BuildCache
from mlplane.compiler.build.environments import Request, _reusing
from mlplane.compiler.build.outputs import BuildResult, build_many
from mlplane.compiler.build.pipeline import compile_spec, target_of
from mlplane.compiler.build.writer import read_tree
from mlplane.compiler.core import plugins
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import known_needs
from mlplane.compiler.core.resource_texts import ResourceTexts, reusing, text_of
from tests.hypothesis_profiles import examples
from tests.test_kubernetes_reuse import KINDS, changed, property_base
from tests.test_pickled import loaded_inputs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*/mlplane.yaml"))


@contextlib.contextmanager
def no_cache() -> Iterator[None]:
    """``MLPLANE_NO_CACHE=1`` within (Hypothesis tests cannot take ``monkeypatch``)."""
    before = os.environ.get(DISABLE_VARIABLE)
    os.environ[DISABLE_VARIABLE] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[DISABLE_VARIABLE]
        else:
            os.environ[DISABLE_VARIABLE] = before


def built(spec: Path, out: Path, check: bool = False) -> list[BuildResult]:
    compiled, results = build_many(spec, None, lambda env: out / env, check)
    assert compiled.ok, compiled.sorted_diagnostics()
    return results


def trees(out: Path) -> dict[str, dict[str, bytes]]:
    return {env.name: read_tree(env) for env in sorted(out.iterdir()) if env.is_dir()}


def entries() -> list[Path]:
    """The cache's slots (one per output directory and environment)."""
    cache = BuildCache.open()
    assert cache is not None
    found = cache.directory.iterdir() if cache.directory.is_dir() else iter(())
    return sorted(p for p in found if p.is_dir())


def cache_files() -> dict[Path, int]:
    """Every file of the cache with its modification time."""
    return {p: p.stat().st_mtime_ns for slot in entries() for p in slot.iterdir()}


def taken_units(results: list[BuildResult]) -> int:
    return sum(r.taken[0] for r in results)


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.parent.name)
def test_an_example_rebuilt_from_the_cache_is_the_fresh_build(spec: Path, tmp_path: Path) -> None:
    built(spec, tmp_path / "cached")
    again = built(spec, tmp_path / "cached")
    with no_cache():
        built(spec, tmp_path / "fresh")
    assert trees(tmp_path / "cached") == trees(tmp_path / "fresh")
    assert all(r.written == () for r in again)
    assert taken_units(again) > 0  # every example has a Kubernetes environment
    assert all(r.taken[1] > 0 for r in again if r.taken[0])


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the property test's spec: every base and head is written to the same file,
    so that origins name the same file."""
    return tmp_path_factory.mktemp("build-cache")


def _rebuilt_equals_fresh(folder: Path, head: str, count: int) -> list[BuildResult]:
    """Build the base into a directory, then ``head`` into it with the cache, and ``head``
    without the cache into another: the same files. The cached rebuild's results."""
    spec = folder / "mlplane.yaml"
    out, fresh = folder / f"out-{count}", folder / f"fresh-{count}"
    spec.write_text(property_base(), encoding="utf-8")
    built(spec, out)
    spec.write_text(head, encoding="utf-8")
    compiled, results = build_many(spec, None, lambda env: out / env)
    with no_cache():
        compiled_fresh, _ = build_many(spec, None, lambda env: fresh / env)
    assert compiled.sorted_diagnostics() == compiled_fresh.sorted_diagnostics()
    if compiled.ok:  # else neither wrote (a change may break the spec)
        assert trees(out) == trees(fresh)
    return results


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_change_rebuilds_from_the_cache_as_without(spec_dir: Path, kind: str) -> None:
    results = _rebuilt_equals_fresh(spec_dir, changed(property_base(), kind, 3), 0)
    if kind in ("model", "sla", "port", "drift"):
        assert taken_units(results) > 0


CHANGES = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 1000)), min_size=1, max_size=2)
_RUNS = [0]


@settings(max_examples=examples(12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CHANGES)
def test_a_rebuild_after_any_change_is_the_fresh_build(
    spec_dir: Path, changes: list[tuple[str, int]]
) -> None:
    head = property_base()
    for kind, index in changes:
        head = changed(head, kind, index)
    _RUNS[0] += 1
    results = _rebuilt_equals_fresh(spec_dir, head, _RUNS[0])
    if all(kind in ("model", "sla") for kind, _ in changes):
        assert taken_units(results) > 0


def test_check_reads_the_cache_and_never_writes_it(tmp_path: Path) -> None:
    spec = tmp_path / "mlplane.yaml"
    spec.write_text(property_base(), encoding="utf-8")
    built(spec, tmp_path / "out")
    before = cache_files()
    checked = built(spec, tmp_path / "out", check=True)
    assert all(r.ok and not r.findings for r in checked)
    assert taken_units(checked) > 0
    spec.write_text(changed(property_base(), "model", 1), encoding="utf-8")
    stale = built(spec, tmp_path / "out", check=True)
    with no_cache():
        stale_fresh = built(spec, tmp_path / "out", check=True)
    assert [r.findings for r in stale] == [r.findings for r in stale_fresh]
    assert any(r.findings for r in stale)
    assert cache_files() == before


def test_no_cache_variable_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    spec = EXAMPLES[0]
    monkeypatch.setenv(DISABLE_VARIABLE, "1")
    built(spec, tmp_path / "out")
    assert BuildCache.open() is None
    monkeypatch.setenv(DISABLE_VARIABLE, "0")
    assert entries() == []
    again = built(spec, tmp_path / "out")
    assert taken_units(again) == 0 and entries()


def _parts(path: Path) -> tuple[dict[str, object], bytes]:
    header, _, body = path.read_bytes().partition(b"\n")
    return json.loads(header), body


def _resealed(path: Path, body: bytes) -> None:
    """Write ``body`` into the file at ``path`` with a valid HMAC (as only this user's mlplane,
    holding the secret, could)."""
    header, _ = _parts(path)
    cache = BuildCache.open()
    assert cache is not None
    key = str(header["key"])
    mac = hmac.new(cache.secret, key.encode("ascii") + b"\n", hashlib.sha256)
    mac.update(body)
    header["hmac"] = mac.hexdigest()
    path.write_bytes(json.dumps(header).encode("ascii") + b"\n" + body)


def _flipped(path: Path) -> None:
    data = path.read_bytes()
    middle = len(data) * 3 // 4
    path.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :])


def _units_resealed(slot: Path, change: Callable[[dict[str, Any], bytes], bytes]) -> None:
    """Every unit file of ``slot`` with its body changed by ``change`` (of its head, by unit
    key, and its blob), authentic."""
    for pack in slot.glob("*.unit"):
        _, body = _parts(pack)
        head_line, _, blob = body.partition(b"\n")
        _resealed(pack, change(json.loads(head_line)["units"], blob))


def _hostile(tmp_path: Path) -> Callable[[dict[str, Any], bytes], bytes]:
    def change(heads: dict[str, Any], blob: bytes) -> bytes:
        hostile = pickle.dumps(_Hostile(tmp_path / "ran"))
        for head in heads.values():
            head["unit"] = [len(blob), len(blob) + len(hostile)]
        return json.dumps({"units": heads}).encode("ascii") + b"\n" + blob + hostile

    return change


def _out_of_range(heads: dict[str, Any], blob: bytes) -> bytes:
    for head in heads.values():
        head["unit"] = [0, len(blob) + 10]
    return json.dumps({"units": heads}).encode("ascii") + b"\n" + blob


DAMAGES = (
    "index-flipped",
    "units-flipped",
    "planted",
    "index-link",
    "slot-link",
    "fifo",
    "oversize",
    "hostile-unit",
    "bad-offsets",
    "foreign-name",
)


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_planted_or_hostile_entry_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    spec = tmp_path / "spec" / "mlplane.yaml"
    spec.parent.mkdir()
    spec.write_text(property_base(), encoding="utf-8")
    built(spec, tmp_path / "out")
    with no_cache():
        built(spec, tmp_path / "fresh")
    slots = entries()
    assert slots
    for slot in slots:
        _damage(slot, damage, tmp_path, monkeypatch)
    results = built(spec, tmp_path / "out")
    assert taken_units(results) == 0
    assert trees(tmp_path / "out") == trees(tmp_path / "fresh")
    assert not (tmp_path / "ran").exists()


def _damage(slot: Path, damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = slot / build_cache.INDEX
    if damage == "index-flipped":
        _flipped(index)
    elif damage == "units-flipped":
        for unit in slot.glob("*.unit"):
            _flipped(unit)
    elif damage == "planted":  # another secret's index: the HMAC does not check out
        header, body = _parts(index)
        header["hmac"] = "0" * 64
        index.write_bytes(json.dumps(header).encode("ascii") + b"\n" + body)
    elif damage == "index-link":
        target = tmp_path / f"elsewhere-{slot.name}"
        index.rename(target)
        index.symlink_to(target)
    elif damage == "slot-link":
        target = tmp_path / f"moved-{slot.name}"
        slot.rename(target)
        slot.symlink_to(target)
    elif damage == "fifo":
        index.unlink()
        os.mkfifo(index)
    elif damage == "oversize":
        monkeypatch.setattr(build_cache, "MAX_FILE_BYTES", 64)
    elif damage == "hostile-unit":  # authentic, but a unit that would run a function
        _units_resealed(slot, _hostile(tmp_path))
    elif damage == "bad-offsets":  # authentic, but a unit beyond its file
        _units_resealed(slot, _out_of_range)
    else:  # authentic, but naming a file outside the slot
        _, body = _parts(index)
        units = json.loads(body)["units"]
        renamed = {key: "../" + name for key, name in units.items()}
        _resealed(index, json.dumps({"units": renamed}).encode("ascii"))


class _Hostile:
    """Unpickled, it would make a directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.path),))


def test_a_link_in_the_cache_directories_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "xdg"
    (home / "mlplane").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (home / "mlplane" / "build").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    assert BuildCache.open() is None
    built(EXAMPLES[0], tmp_path / "out")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_entries_are_pruned_to_the_newest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(build_cache, "MAX_ENTRIES", 2)
    for count in range(3):
        built(EXAMPLES[0], tmp_path / f"out-{count}")
    assert len(entries()) == 2


def test_a_one_model_rebuild_writes_the_files_of_the_changed_units_only(tmp_path: Path) -> None:
    spec = tmp_path / "mlplane.yaml"
    spec.write_text(property_base(), encoding="utf-8")
    built(spec, tmp_path / "out")
    before = cache_files()
    spec.write_text(changed(property_base(), "model", 1), encoding="utf-8")
    results = built(spec, tmp_path / "out")
    after = cache_files()
    rewritten = {p for p, time in after.items() if before.get(p) != time}
    units = {p for p in rewritten if p.suffix == ".unit"}
    assert taken_units(results) > 0
    assert {p.name for p in rewritten - units} <= {build_cache.INDEX}
    assert 0 < len(units) < len(after) // 4
    assert not set(before) - set(after) - {p for p in before if p.suffix == ".unit"}


def test_forked_workers_rebuild_from_the_cache_as_without(tmp_path: Path) -> None:
    """With workers (forked where ``environments.spread`` finds forking safe: a single
    thread), each environment's worker reads and writes its own slot."""
    spec = tmp_path / "mlplane.yaml"
    spec.write_text(property_base(), encoding="utf-8")
    build_many(spec, None, lambda env: tmp_path / "out" / env, workers=2)
    spec.write_text(changed(property_base(), "sla", 2), encoding="utf-8")
    _, results = build_many(spec, None, lambda env: tmp_path / "out" / env, workers=2)
    with no_cache():
        built(spec, tmp_path / "fresh")
    assert trees(tmp_path / "out") == trees(tmp_path / "fresh")
    assert all(r.taken[0] > 0 for r in results)


def test_needs_taken_from_the_cache_are_those_walked(tmp_path: Path) -> None:
    spec = tmp_path / "mlplane.yaml"
    spec.write_text(property_base(), encoding="utf-8")
    built(spec, tmp_path / "out")
    compiled = compile_spec(spec)
    system = compiled.systems["prod"]
    target = target_of(system, Diagnostics())
    assert target is not None
    reuse = _reusing(compiled, Request("prod", tmp_path / "out" / "prod"), target.name)
    assert reuse is not None
    with known_needs(reuse.needs):
        graph, _, taken = plugins.lower_reusing(target, system, Diagnostics(), reuse.known)
    assert graph is not None and taken > 0 and reuse.needs
    assert dict(graph.needs) == {r.name: r.needs() for r in graph}


def test_texts_are_taken_only_inside_reusing() -> None:
    made: list[str] = []

    def compute() -> str:
        made.append("computed")
        return "fresh"

    assert text_of("kind", "a", compute) == "fresh"
    texts = ResourceTexts({"kind": {"a": "known"}})
    with reusing(texts):
        assert text_of("kind", "a", compute) == "known"
        assert text_of("kind", "b", compute) == "fresh"
        assert text_of("other", "a", compute) == "fresh"
    assert text_of("kind", "a", compute) == "fresh"
    assert made == ["computed"] * 4
    assert texts.taken == 1
    assert texts.made == {"kind": {"a": "known", "b": "fresh"}, "other": {"a": "fresh"}}


def test_a_rebuild_leaves_the_inputs_of_taken_units_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit taken from the cache holds its resources' inputs pickled apart; the rebuild takes
    every text of its resources from the cache too, so nothing reads those inputs: an unchanged
    rebuild unpickles none, and writes what a build without the cache writes."""
    spec = tmp_path / "mlplane.yaml"
    spec.write_text(property_base(), encoding="utf-8")
    built(spec, tmp_path / "out")
    loaded = loaded_inputs(monkeypatch)
    results = built(spec, tmp_path / "out")
    assert taken_units(results) > 0 and loaded == []
    with no_cache():
        built(spec, tmp_path / "fresh")
    assert trees(tmp_path / "out") == trees(tmp_path / "fresh")


@given(st.integers(0, 70_000), st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_a_files_head_ends_at_its_first_line_break_however_long(head: int, after: int) -> None:
    body = b"h" * head + b"\n" + b"x\n" * after
    assert build_cache._line_end(memoryview(body)) == head
    with pytest.raises(ValueError, match="no head"):
        build_cache._line_end(memoryview(b"h" * head))
