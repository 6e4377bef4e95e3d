"""The plan cache of lowered base graphs (``compiler/plan/cache.py``), the plan's lowering and
the base compiled in a forked child (``compiler/plan/parallel.py``).

What must hold: a plan made with the cache, cold or warm, is byte for byte the plan made without
it, in every format; a warm run really skips the base's lowering; an entry that is corrupted,
hand-edited, truncated or planted (authenticated under another secret, as a file committed into
the repository would be) is ignored and replaced; the cache disables itself rather than follow a
symbolic link or work without a private place for its secret; a forked base gives the same plan
and leaves no process behind, and a failing child means the work is done in the parent.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import graph as graph_module
from mlplane.compiler.core import plugins, sealed
from mlplane.compiler.core.diagnostics import Diagnostic, Location, Related, Severity
from mlplane.compiler.plan import cache as plan_cache
from mlplane.compiler.plan import lower as plan_lower
from mlplane.compiler.plan import parallel as plan_parallel
from mlplane.compiler.plan import run as plan_run
from mlplane.compiler.plan.cache import CACHE_DIR, Hit, PlanCache, entry_key
from mlplane.compiler.plan.local_state import ensure_state_dir, termination_held
from tests import fake_target
from tests.specs import BASE
from tests.test_plan import Repo, repo, target  # noqa: F401  (fixtures)

UNENFORCED_ALLOW = (
    'security:\n  network:\n    allow:\n      - {from: "namespace:a", to: "namespace:b"}\n'
)
"""Lowering warns about this allow (neither end is a model): a diagnostic the cache replays."""
FORMATS = ("text", "markdown", "json")


@pytest.fixture
def secret_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache home for the secret, outside the repository."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.fixture
def changed(repo: Repo, secret_home: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:  # noqa: F811
    """The base spec with a lowering warning committed; the head scales the model. The base is
    compiled in this process (the spies below watch it) unless a test asks for a child."""
    del secret_home
    monkeypatch.setattr(plan_parallel, "spare_core", lambda: False)
    repo.write("spec/mlplane.yaml", BASE + UNENFORCED_ALLOW)
    repo.commit("base with a warning")
    repo.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 2, max: 6}")
    return repo


def outputs(*args: str) -> dict[str, str]:
    """The plan in every format (``--detailed-exitcode`` so that changes exit 2, not 1)."""
    found = {}
    for fmt in FORMATS:
        command = ["plan", "spec", "--env", "dev", "--format", fmt, "--detailed-exitcode", *args]
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        found[fmt] = result.output
    return found


def entries(made: Repo) -> list[Path]:
    return sorted((made.root / CACHE_DIR).glob("*.entry"))


def test_cached_plans_equal_the_uncached_plan_byte_for_byte(
    changed: Repo, cache_reads: list[bool]
) -> None:
    uncached = outputs("--no-cache")
    assert cache_reads == [] and not (changed.root / ".mlplane").exists()
    cold = outputs()
    assert cache_reads == [False, True, True] and len(entries(changed)) == 1
    warm = outputs()
    assert cache_reads[3:] == [True, True, True]
    assert cold == uncached and warm == uncached
    codes = {d["code"] for d in json.loads(warm["json"])["base"]["diagnostics"]}
    if plugins.targets()["kubernetes"] is not fake_target.FAKE:
        assert "kubernetes-allow-not-enforced" in codes  # replayed from the entry
    assert json.loads(warm["json"])["summary"]["changes"] is True


def test_a_warm_plan_does_not_lower_the_base(
    changed: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs()
    lowered: list[str] = []
    original = plan_lower._lowered_now

    def counting(compiled: Any, found: Any, chosen: Any, known: Any = None) -> Any:
        lowered.append(found.name)
        return original(compiled, found, chosen, known)

    monkeypatch.setattr(plan_lower, "_lowered_now", counting)
    outputs()
    assert len(lowered) == len(FORMATS)  # the head only, once per format


RANKER = """\
  ranker:
    framework: sklearn
    version: "2.0.0"
    image: ghcr.io/acme/ranker@sha256:{digest}
    inputs: [features]
    serving:
      replicas: {{min: 1, max: 3}}
"""


def test_a_warm_plan_takes_the_base_units_and_plans_the_same(
    repo: Repo,  # noqa: F811
    secret_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The head's lowering takes the units of the base's lowering from the cache entry (the
    other model's, when the target lowers in units) and the plan is the same byte for byte."""
    del secret_home
    monkeypatch.setattr(plan_parallel, "spare_core", lambda: False)
    two = BASE.replace("slas:\n", RANKER.format(digest="b" * 64) + "slas:\n")
    repo.write("spec/mlplane.yaml", two)
    repo.commit("two models")
    repo.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 2, max: 6}")
    uncached = outputs("--no-cache")
    outputs()  # stores the base side with its units
    taken: list[tuple[int, int]] = []
    original = plan_lower.lower_reusing

    known: list[int] = []

    def counting(*args: Any) -> Any:
        graph, units, reused = original(*args)
        taken.append((reused, len(units)))
        # the graph check took the needs of the taken units' resources from the entry: the
        # same needs as walking every resource again
        table = graph_module._KNOWN_NEEDS.get() or {}
        known.append(sum(table.get(id(r), (None,))[0] is r for r in graph))
        assert dict(graph.needs) == {r.name: r.needs() for r in graph}
        return graph, units, reused

    copied: list[int] = []
    writing = plan_lower.graph_reusing

    def checked(system: Any, graph: Any, source: Any, base: Any, names: set[str]) -> Any:
        made = writing(system, graph, source, base, names)
        fresh = plan_lower.lowered_graph(system, graph.to_json(), source)
        assert made.canonical == fresh.canonical and made.graph_sha256 == fresh.graph_sha256
        assert made.graph == fresh.graph and made.resources == fresh.resources
        assert list(made.resources) == list(fresh.resources)
        copied.append(len(names))
        return made

    monkeypatch.setattr(plan_lower, "lower_reusing", counting)
    monkeypatch.setattr(plan_lower, "graph_reusing", checked)
    assert outputs() == uncached
    assert len(taken) == len(FORMATS)
    if plugins.targets()["kubernetes"] is not fake_target.FAKE:
        assert all(0 < reused < units for reused, units in taken)
        assert len(copied) == len(FORMATS) and all(copied)
        assert all(known)


def test_units_that_would_make_the_entry_too_large_are_left_out(
    repo: Repo,  # noqa: F811
    secret_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    cache_reads: list[bool],
) -> None:
    """An entry over the size read back would never be read: the base's side is stored without
    its units instead, and a warm plan still reads the base from it (and takes no unit)."""
    del secret_home
    monkeypatch.setattr(plan_parallel, "spare_core", lambda: False)
    repo.write(
        "spec/mlplane.yaml", BASE.replace("slas:\n", RANKER.format(digest="b" * 64) + "slas:\n")
    )
    repo.commit("two models")
    repo.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 2, max: 6}")
    uncached = outputs("--no-cache")
    outputs()
    (whole,) = entries(repo)
    size = whole.stat().st_size
    whole.unlink()
    monkeypatch.setattr(plan_cache, "MAX_ENTRY_BYTES", size - 1)
    outputs()  # stores the side again, without its units
    (smaller,) = entries(repo)
    assert smaller.stat().st_size < size - 1
    taken: list[int] = []
    original = plan_lower.lower_reusing

    def counting(*args: Any) -> Any:
        graph, units, reused = original(*args)
        taken.append(reused)
        return graph, units, reused

    monkeypatch.setattr(plan_lower, "lower_reusing", counting)
    start = len(cache_reads)
    assert outputs() == uncached
    assert cache_reads[start:] == [True] * len(FORMATS)  # the base side read from the entry
    assert taken == [0] * len(FORMATS)  # the head lowered in units, none of them taken


def _tamper_graph(data: bytes) -> bytes:
    header, problems, graph = data.split(b"\n", 2)
    assert b'"replicas":6' not in graph and b'"replicas":2' in graph
    return b"\n".join([header, problems, graph.replace(b'"replicas":2', b'"replicas":6', 1)])


def _tamper_diagnostics(data: bytes) -> bytes:
    header, _, graph = data.split(b"\n", 2)
    return b"\n".join([header, b"[]", graph])


@pytest.mark.parametrize(
    "damage",
    [
        _tamper_graph,  # hand-edited: the base would seem to have the head's replicas
        _tamper_diagnostics,  # the base's warning dropped
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped
        lambda data: b"not an entry",
        lambda data: b"",
    ],
)
def test_damaged_entries_are_ignored_and_replaced(
    changed: Repo, cache_reads: list[bool], damage: Callable[[bytes], bytes]
) -> None:
    uncached = outputs("--no-cache")
    outputs()
    [entry] = entries(changed)
    good = entry.read_bytes()
    entry.write_bytes(damage(good))
    assert outputs() == uncached
    assert cache_reads[3] is False  # the damaged entry was not used ...
    assert entry.read_bytes() == good  # ... and an authentic one took its place
    assert cache_reads[4:] == [True, True]


def test_entries_authenticated_under_another_secret_are_ignored(
    changed: Repo, cache_reads: list[bool]
) -> None:
    """A file committed into ``.mlplane/cache/`` (or copied from another machine) carries a
    valid MAC under some other secret: it must not be trusted."""
    uncached = outputs("--no-cache")
    outputs()
    [entry] = entries(changed)
    key = entry.name.removesuffix(".entry")
    ours = PlanCache.open(changed.root)
    assert ours is not None
    hit = ours.read(key)
    assert hit is not None
    forged = Hit(hit.graph_text.replace('"replicas":2', '"replicas":6', 1), ())
    PlanCache(ours.directory, b"\x00" * 32).write(key, forged)
    assert ours.read(key) is None
    assert outputs() == uncached
    assert cache_reads[-3:] == [False, True, True]


def test_the_secret_is_private_and_outside_the_repository(changed: Repo, secret_home: Path) -> None:
    outputs()
    key_file = secret_home / "mlplane" / sealed.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text(encoding="ascii").strip())) == 32
    assert not any("key" in p.name for p in (changed.root / ".mlplane").rglob("*"))
    key_file.chmod(0o644)  # readable by others: could be used to forge entries
    assert PlanCache.open(changed.root) is None


def test_the_cache_disables_itself_rather_than_follow_links_or_lack_a_home(
    changed: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (changed.root / ".mlplane").symlink_to(elsewhere, target_is_directory=True)
    assert PlanCache.open(changed.root) is None
    outputs()
    assert list(elsewhere.iterdir()) == []
    (changed.root / ".mlplane").unlink()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("HOME", raising=False)
    assert PlanCache.open(changed.root) is None
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert PlanCache.open(changed.root) is None


def test_linked_entries_are_not_followed(changed: Repo, cache_reads: list[bool]) -> None:
    """An entry committed as a symbolic link (to an authentic entry elsewhere, or to a device
    such as ``/dev/zero``) is not read."""
    uncached = outputs("--no-cache")
    outputs()
    [entry] = entries(changed)
    moved = changed.root / "elsewhere.entry"
    entry.rename(moved)
    entry.symlink_to(moved)
    assert outputs() == uncached
    assert cache_reads[3] is False and not entry.is_symlink()  # replaced by a regular file
    entry.unlink()
    entry.symlink_to("/dev/zero")
    assert outputs() == uncached and cache_reads[6] is False


def test_old_entries_are_pruned(changed: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_cache, "MAX_ENTRIES", 2)
    cache = PlanCache.open(changed.root)
    assert cache is not None
    for number in range(4):
        cache.write(f"{number:064x}", Hit("{}", ()))
    assert [p.name[-7:] for p in entries(changed)] == ["2.entry", "3.entry"]
    assert not list((changed.root / CACHE_DIR).glob(".tmp-*"))


def test_keys_name_spec_environment_and_shown_names() -> None:
    files = {"mlplane.yaml": ("spec/mlplane.yaml", BASE)}
    module = "mlplane.targets.kubernetes"
    key = entry_key("dev", "kubernetes", files, module)
    assert key == entry_key("dev", "kubernetes", dict(files), module)
    assert key != entry_key("prod", "kubernetes", files, module)
    assert key != entry_key("dev", "aws", files, module)
    assert key != entry_key("dev", "kubernetes", {"mlplane.yaml": ("mlplane.yaml", BASE)}, module)
    edited = {"mlplane.yaml": ("spec/mlplane.yaml", BASE.replace("max: 4", "max: 5"))}
    assert key != entry_key("dev", "kubernetes", edited, module)
    split = {"a.yaml": ("spec/a.yaml", "x"), "b.yaml": ("spec/b.yaml", "y")}
    joined = {"a.yaml": ("spec/a.yaml", "xb.yaml"), "b.yaml": ("spec/b.yaml", "")}
    assert entry_key("dev", "k", split, module) != entry_key("dev", "k", joined, module)


def test_the_code_fingerprint_follows_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    before = sealed.code_fingerprint("mlplane.targets.kubernetes")
    assert before == sealed.code_fingerprint("mlplane.targets.kubernetes")
    real = sealed._package_sources

    def edited(package: str) -> list[tuple[str, bytes]]:
        found = real(package)
        return [*found, ("new.py", b"x = 1\n")] if package == "mlplane.targets" else found

    sealed.code_fingerprint.cache_clear()
    monkeypatch.setattr(sealed, "_package_sources", edited)
    try:
        assert sealed.code_fingerprint("mlplane.targets.kubernetes") != before
    finally:
        sealed.code_fingerprint.cache_clear()


def test_diagnostics_survive_the_entry_format(secret_home: Path, tmp_path: Path) -> None:
    del secret_home
    cache = PlanCache.open(tmp_path)
    assert cache is not None
    related = (Related(Location("spec/a.yaml", 3, 4), "the other one"),)
    problems = (
        Diagnostic("allow-not-enforced", Severity.WARNING, "m", Location("spec/a.yaml", 1, 2)),
        Diagnostic("io-error", Severity.ERROR, "é ✓", None, "models.x", "a hint", related),
    )
    cache.write("ab" * 32, Hit('{"resources":[]}', problems))
    assert cache.read("ab" * 32) == Hit('{"resources":[]}', problems)
    assert cache.read("cd" * 32) is None


def _lowered_as_before(compiled: Any, env: str) -> tuple[Any, Any, str]:
    """What ``plan_lower.lower`` computed before it dropped its JSON round trip."""
    graph = plan_lower.graph_of(compiled, env)
    assert graph is not None
    document = json.loads(json.dumps(graph.to_json()))
    resources = {str(r["name"]): r for r in document["resources"]}
    rename = plan_lower.relative_namer(compiled.document.root)
    rebased = {
        **document,
        "resources": [plan_lower.renamed(r, rename) for r in document["resources"]],
    }
    return resources, rebased, plan_lower.graph_digest(rebased)


@pytest.mark.parametrize("example", ["fraud-scoring", "recsys-gpu"])
def test_lowering_without_the_round_trip_gives_the_same_graph(
    example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    compiled = compile_spec(Path("examples") / example, ["prod"])
    assert compiled.ok
    lowered = plan_lower.lower(compiled, "prod")
    assert lowered is not None
    resources, graph, digest = _lowered_as_before(
        compile_spec(Path("examples") / example, ["prod"]), "prod"
    )
    assert lowered.resources == resources and list(lowered.resources) == list(resources)
    assert lowered.graph == graph and lowered.graph_sha256 == digest
    assert json.loads(lowered.canonical) == graph


# --- the base in a forked child (compiler/plan/parallel.py) ------------------------------------


def rendered(plan: Any) -> tuple[str, str, str]:
    from mlplane.compiler.plan.json_format import render_json
    from mlplane.compiler.plan.markdown import render_markdown
    from mlplane.compiler.plan.text import render_text

    return render_json(plan), render_markdown(plan), render_text(plan)


@pytest.mark.parametrize("use_cache", [False, True])
def test_a_forked_base_gives_the_same_plan(changed: Repo, use_cache: bool) -> None:
    del changed
    sequential = plan_run.make_plan(Path("spec"), "dev", use_cache=use_cache, parallel=False)
    forked = plan_run.make_plan(Path("spec"), "dev", use_cache=use_cache, parallel=True)
    assert rendered(forked) == rendered(sequential)
    assert forked.has_changes and forked.base.status == "compiled"


def test_a_base_child_forks_and_leaves_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    if not plan_parallel.fork_is_safe():
        pytest.skip("fork is not safe here (not Linux, or threads are running)")
    pending = plan_parallel.start(lambda: {"pid": os.getpid(), "view": MappingProxyType({1: 2})})
    assert pending.pid is not None
    found = pending.result()
    assert found["pid"] != os.getpid() and found["view"] == {1: 2}
    assert isinstance(found["view"], MappingProxyType)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # the child was reaped


def test_a_failing_child_means_the_work_is_done_here() -> None:
    """An exception (or an unpicklable result) in the child: the parent runs the work itself,
    so the caller sees what a sequential run gives, including the exception."""
    calls: list[int] = []

    def work() -> object:
        calls.append(os.getpid())
        return lambda: None  # cannot be pickled

    assert callable(plan_parallel.start(work).result())
    assert calls[-1] == os.getpid()

    def broken() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        plan_parallel.start(broken).result()


def test_no_fork_while_threads_run_and_cancel_stops_the_child() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert plan_parallel.start(lambda: 1).pid is None
    finally:
        release.set()
        thread.join()
    if not plan_parallel.fork_is_safe():
        pytest.skip("fork is not safe here")
    pending = plan_parallel.start(lambda: time.sleep(60))
    pending.cancel()
    assert pending.pid is None
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_a_cancelled_child_finishes_writing_its_local_state_first(tmp_path: Path) -> None:
    """cancel() stops the child with SIGTERM, which the child holds while it writes local state
    (as the plan cache's writes do): stopped in the middle, it ends once its files are in place,
    and no later. Killed there, it could leave a temporary file in a ``.mlplane`` that has no
    ``.gitignore`` yet, which ``git status`` shows."""
    if not plan_parallel.fork_is_safe():
        pytest.skip("fork is not safe here")
    state = tmp_path / ".mlplane"
    started, done = tmp_path / "started", state / "done"

    def work() -> None:
        with termination_held():
            ensure_state_dir(done)  # the directory and its .gitignore
            started.write_text("", encoding="utf-8")
            time.sleep(0.5)
            done.write_text("", encoding="utf-8")
        time.sleep(60)  # not held: stopped here at once

    pending = plan_parallel.start(work)
    deadline = time.monotonic() + 20
    while not started.exists():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.01)
    began = time.monotonic()
    pending.cancel()
    assert time.monotonic() - began < plan_parallel.CANCEL_GRACE_SECONDS
    assert sorted(p.name for p in state.iterdir()) == [".gitignore", "done"]
    assert pending.pid is None
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_a_head_that_fails_stops_the_base_child(changed: Repo) -> None:
    changed.edit("spec/mlplane.yaml", "framework: sklearn", "framework: 12")
    plan = plan_run.make_plan(Path("spec"), "dev", parallel=True)
    assert not plan.ok and plan.base.status == "none"
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize(
    "distribution",
    ["kfp", "kfp-kubernetes", "kfp-pipeline-spec", "protobuf", "docstring-parser", "PyYAML"],
)
def test_the_code_fingerprint_follows_the_versions_that_shape_lowering(
    monkeypatch: pytest.MonkeyPatch, distribution: str
) -> None:
    sealed.code_fingerprint.cache_clear()
    before = sealed.code_fingerprint("mlplane.targets.kubernetes")
    real = sealed._version_of

    def other(name: str) -> str:
        return "0.0.0-other" if name == distribution else real(name)

    def missing(name: str) -> str:
        return "absent" if name == distribution else real(name)

    assert real(distribution) != "absent"  # the test extra installs the Kubeflow SDK
    try:
        keys = set()
        for lookup in (other, missing):
            sealed.code_fingerprint.cache_clear()
            monkeypatch.setattr(sealed, "_version_of", lookup)
            keys.add(sealed.code_fingerprint("mlplane.targets.kubernetes"))
        assert len(keys) == 2
        assert before not in keys
    finally:
        sealed.code_fingerprint.cache_clear()


def test_an_absent_library_keys_as_absent() -> None:
    assert sealed._version_of("no-such-distribution-of-mlplane") == "absent"


def test_the_key_names_what_each_installed_target_declares_it_is_shaped_by() -> None:
    """The Kubeflow SDK is the Kubernetes target's to declare (``compiler/`` names no target):
    the key reads it from the installed targets' ``libraries``."""
    assert "kfp-kubernetes" in plugins.libraries()
    assert "kfp-kubernetes" not in sealed.DEPENDENCIES


class _Undeclaring:
    name = "odd"

    def __init__(self) -> None:
        self.libraries = ["kfp"]  # a list: not the declared shape

    def lower(self, system: object, diagnostics: object) -> None:
        return None


def test_a_target_that_declares_its_libraries_wrongly_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plugins, "targets", lambda: {"odd": _Undeclaring()})
    with pytest.raises(plugins.PluginError, match="libraries must be a tuple"):
        plugins.libraries()
