"""Reuse of lowered units (``targets/kubernetes/reuse.py``): what a unit reads, and that a
lowering that takes another lowering's units equals a fresh one.

The read audit runs each model's and each SLA's unit on a system whose models, SLAs and
origins (and the secret sources handed to a model) are mappings that record every key looked
up and every walk over them; a read outside what the unit's key covers fails. The unit is run
alone on a fresh lowering too, and must add exactly what it added in the whole lowering: so it
reads nothing another unit left behind either.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.targets.kubernetes import checks, rollouts, secrets
from mlplane.targets.kubernetes import reuse as reuse_module
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.lower import lower, lower_model, lower_slo_rule, lower_system
from mlplane.targets.kubernetes.reuse import (
    UNIT_SECTIONS,
    Reads,
    Reuse,
    Unit,
    model_reads,
    sla_reads,
)
from tests.hypothesis_profiles import examples

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*/mlplane.yaml"))
CORPUS = sorted((ROOT / "tests" / "corpus").iterdir())
EVERY = object()
"""What a walk over a mapping (iteration, ``len``, ``items``) records: every entry was read."""


def _load_generator() -> ModuleType:
    """benchmarks/ is a folder of scripts: load generate.py by its path."""
    spec = importlib.util.spec_from_file_location(
        "reuse_generate", ROOT / "benchmarks" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


def generated_spec(models: int, sources: int, seed: int = 1042) -> str:
    """The benchmark generator's spec, made lowerable as ``benchmarks/plan_bench.py`` makes it
    (the target refuses ``shadow`` without a mesh and Secrets of another namespace)."""
    text = next(iter(generate.generate_files(models, sources, seed, 1).values()))
    text = text.replace("strategy: shadow", "strategy: rolling")
    return str(text.replace("k8s://ml-secrets/", "k8s://acme-ml/"))


class Recorded(Mapping[Any, Any]):
    """A mapping that records, into ``log``, each key looked up and each walk over it."""

    def __init__(self, section: str, data: Mapping[Any, Any], log: list[tuple[str, object]]):
        self._section, self._data, self._log = section, data, log

    def __getitem__(self, key: Any) -> Any:
        self._log.append((self._section, key))
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        self._log.append((self._section, key))
        return key in self._data

    def __iter__(self) -> Iterator[Any]:
        self._log.append((self._section, EVERY))
        return iter(self._data)

    def __len__(self) -> int:
        self._log.append((self._section, EVERY))
        return len(self._data)


def _declared(section: str, key: object, reads: Reads, own_secrets: tuple[str, ...]) -> bool:
    if section == "models":
        return key in reads.models
    if section == "slas":
        return key in reads.slas
    if section == "sources":  # a source a model mounts: the context's secret, used by this model
        return key in own_secrets
    assert section == "origins" and isinstance(key, tuple)
    if len(key) < 2 or key[0] not in UNIT_SECTIONS:
        return True  # the context
    return key[1] in (reads.models if key[0] == "models" else reads.slas)


def systems_of(spec: Path) -> list[ir.System]:
    compiled = compile_spec(spec)
    return [s for _, s in sorted(compiled.systems.items()) if s.environment.target == "kubernetes"]


def audit(system: ir.System) -> int:
    """Run every unit of ``system`` under the read audit; the number of units audited."""
    log: list[tuple[str, object]] = []
    watched = replace(
        system,
        models=Recorded("models", system.models, log),
        slas=Recorded("slas", system.slas, log),
        origins=Recorded("origins", system.origins, log),
    )
    whole = Reuse()
    lower(system, Diagnostics(), whole)  # every unit as the whole lowering made it
    lowering = Lowering(watched, Diagnostics())
    checks.check_spec(lowering)
    root = lower_system(lowering)
    sources = secrets.lower_secrets(lowering, root)
    watched_sources = Recorded("sources", sources, log)
    if system.models:  # the gating index: each model's entry holds only SLAs of that model
        rollouts.gating_slas(watched, next(iter(system.models.values())))
    with _gated(log):
        return _audit_units(system, whole, lowering, watched_sources, root, log)


@contextmanager
def _gated(log: list[tuple[str, object]]) -> Iterator[None]:
    """Record the SLAs the gating index gives a model: read through the index (built once
    from every SLA's subject and indicator), not through the SLA mapping."""
    original = rollouts.gating_slas

    def recorded(system: ir.System, model: ir.Model) -> list[ir.Sla]:
        found = original(system, model)
        log.extend(("slas", sla.name) for sla in found)
        return found

    rollouts.gating_slas = recorded  # type: ignore[assignment]
    try:
        yield
    finally:
        rollouts.gating_slas = original  # type: ignore[assignment]


def _audit_units(
    system: ir.System,
    whole: Reuse,
    lowering: Lowering,
    watched_sources: Mapping[str, secrets.SecretSource],
    root: str,
    log: list[tuple[str, object]],
) -> int:
    watched = lowering.system
    units = iter(whole.made.values())
    audited = 0
    for _, model in sorted(system.models.items()):
        reads = model_reads(lowering, model)
        alone = Lowering(watched, Diagnostics())
        log.clear()
        lower_model(alone, model, watched_sources, root)  # type: ignore[arg-type]
        undeclared = [r for r in log if not _declared(*r, reads, model.secrets)]
        assert not undeclared, f"model {model.name!r} reads outside its key: {undeclared[:5]}"
        _same(next(units), alone, f"model {model.name!r}")
        audited += 1
    for _, sla in sorted(system.slas.items()):
        reads = sla_reads(system, sla)
        alone = Lowering(watched, Diagnostics())
        log.clear()
        lower_slo_rule(alone, sla, root)
        undeclared = [r for r in log if not _declared(*r, reads, ())]
        assert not undeclared, f"SLA {sla.name!r} reads outside its key: {undeclared[:5]}"
        _same(next(units), alone, f"SLA {sla.name!r}")
        audited += 1
    assert next(units, None) is None
    return audited


def _same(unit: Unit, alone: Lowering, what: str) -> None:
    assert isinstance(unit, Unit)
    assert unit.resources == tuple(alone.resources), f"{what} lowers otherwise alone"
    assert unit.claims == tuple(alone.claims), f"{what} claims otherwise alone"
    assert unit.diagnostics == tuple(alone.diagnostics.items), f"{what} reports otherwise alone"


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_units_read_only_what_their_key_covers(spec: Path) -> None:
    found = systems_of(spec)
    assert found and sum(audit(system) for system in found) > len(found)


@pytest.mark.parametrize("spec", CORPUS, ids=lambda p: p.name)
def test_corpus_units_read_only_what_their_key_covers(spec: Path) -> None:
    for system in systems_of(spec):
        audit(system)


def test_benchmark_spec_units_read_only_what_their_key_covers(tmp_path: Path) -> None:
    (tmp_path / "mlplane.yaml").write_text(generated_spec(40, 80), encoding="utf-8")
    found = systems_of(tmp_path)
    assert len(found) == 3 and all(audit(system) > 40 for system in found)


# --- reuse equals a fresh lowering -------------------------------------------------------------

PEER_ALLOW = "      - {from: models.fraud-scorer-0, to: models.churn-predictor-1}\n"
"""An allow between two models without ports: the first's egress rule reads the second's port."""
SETTINGS = (
    ("tier: gold", "tier: silver"),
    ("defaultDeny: true", "defaultDeny: false"),
    ("requireDigest: true", "requireDigest: false"),
    ("mesh: istio}", "mesh: none}"),
    (
        "    allow:\n",
        "    allow:\n      - {from: models.search-ranker-2, to: internet, ports: [443]}\n",
    ),
)
_BLOCK_KEY = re.compile(r"^ *[A-Za-z0-9_.\"-]+:( |$)")


_ENTRY = re.compile(r"^    [A-Za-z]+: [^\s#]")


def property_base() -> str:
    """The generated spec with an allow between two models, each model's port written out
    (so that a change of port moves no line)."""
    text = generated_spec(8, 12).replace("    allow:\n", "    allow:\n" + PEER_ALLOW, 1)
    models_at = text.index("\nmodels:\n")
    serving = re.compile(r"\n    serving:\n((?:      .*\n)*)")
    return text[:models_at] + serving.sub(_with_port, text[models_at:])


def _with_port(match: re.Match[str]) -> str:
    written = "" if "      port:" in match[1] else "      port: 8080\n"
    return f"\n    serving:\n{written}{match[1]}"


def _swappable(lines: list[str], at: int) -> bool:
    """Lines ``at`` and ``at + 1`` are one-line entries of the same four-space mapping."""
    pair = lines[at : at + 2]
    return all(_ENTRY.match(line) and not line.rstrip().endswith((",", "[", "{")) for line in pair)


def changed(text: str, kind: str, index: int) -> str:
    """``text`` with one change of ``kind``, the ``index``-th of its candidates (modulo)."""
    models_at = text.index("\nmodels:\n")
    if kind == "model":
        found = list(re.finditer(r"replicas: \{min: (\d+), max: (\d+)\}", text[models_at:]))
        match = found[index % len(found)]
        start, end = models_at + match.start(), models_at + match.end()
        return f"{text[:start]}replicas: {{min: {match[1]}, max: {int(match[2]) + 1}}}{text[end:]}"
    if kind == "port":
        found = list(re.finditer(r"\n      port: 8080\n", text[models_at:]))
        match = found[index % len(found)]
        start, end = models_at + match.start(), models_at + match.end()
        return f"{text[:start]}\n      port: 9000\n{text[end:]}"
    if kind == "swap":  # two entries of a mapping trade lines: their origins move, nothing else
        lines = text.splitlines(keepends=True)
        pairs = [i for i in range(len(lines) - 2) if _swappable(lines, i)]
        at = pairs[index % len(pairs)]
        return "".join([*lines[:at], lines[at + 1], lines[at], *lines[at + 2 :]])
    if kind == "drift":
        found = list(re.finditer(r"\n        features: \[([^\]\n]*)\]", text[models_at:]))
        match = found[index % len(found)]
        start, end = models_at + match.start(), models_at + match.end()
        extra = f"basket_size_{text.count('basket_size_')}"
        return f"{text[:start]}\n        features: [{match[1]}, {extra}]{text[end:]}"
    if kind == "sla":
        slas_at = text.index("\nslas:\n")
        found = list(re.finditer(r"\n    objective: [0-9.]+\n", text[slas_at:]))
        match = found[index % len(found)]
        start, end = slas_at + match.start(), slas_at + match.end()
        return f"{text[:start]}\n    objective: 97.5\n{text[end:]}"
    if kind == "source":
        sources_at = text.index("\ndataSources:\n")
        found = list(re.finditer(r"\n    uri: (\S+)\n", text[sources_at:models_at]))
        match = found[index % len(found)]
        start, end = sources_at + match.start(), sources_at + match.end()
        return f"{text[:start]}\n    uri: {match[1]}-v2\n{text[end:]}"
    if kind == "setting":
        old, new = SETTINGS[index % len(SETTINGS)]
        return text.replace(old, new, 1)
    assert kind == "insert"
    lines = text.splitlines(keepends=True)
    places = [
        i
        for i in range(1, len(lines))
        if _BLOCK_KEY.match(lines[i]) and not lines[i - 1].rstrip().endswith((",", "[", "{"))
    ]
    at = places[index % len(places)]
    return "".join([*lines[:at], "# a line inserted\n", *lines[at:]])


def compiled_systems(directory: Path, text: str) -> dict[str, ir.System]:
    (directory / "mlplane.yaml").write_text(text, encoding="utf-8")
    return dict(compile_spec(directory).systems)


def _graph(system: ir.System, reuse: Reuse | None) -> tuple[Any, list[Any]]:
    found = Diagnostics()
    graph: ResourceGraph | None = lower(system, found, reuse)
    return (graph.to_json() if graph is not None else None), found.items


Based = tuple[Path, dict[str, dict[str, Unit]]]


@pytest.fixture(scope="module")
def based(tmp_path_factory: pytest.TempPathFactory) -> Based:
    """A folder holding the property test's base spec (each head is written to the same file,
    so that locations name the same file) and the units of the base's lowering, by
    environment."""
    folder = tmp_path_factory.mktemp("reuse")
    units = {}
    for env, system in compiled_systems(folder, property_base()).items():
        made = Reuse()
        lower(system, Diagnostics(), made)
        units[env] = made.made
    return folder, units


KINDS = ("model", "port", "swap", "drift", "sla", "source", "setting", "insert")


def _equal_with_reuse(based: Based, head: str, what: object) -> int:
    """Lower ``head`` in every environment with and without the base's units: the same
    graph and diagnostics. The number of units taken."""
    folder, units = based
    after = compiled_systems(folder, head)
    assert after.keys() == units.keys() == {"dev", "staging", "prod"}, what
    taken = 0
    for env, system in after.items():
        reuse = Reuse(units[env])
        assert _graph(system, reuse) == _graph(system, None), (env, what)
        taken += reuse.reused
    return taken


@pytest.mark.parametrize("kind", KINDS)
def test_every_single_change_lowers_with_reuse_as_without(based: Based, kind: str) -> None:
    """Each candidate of one kind of change (every fifth pair of lines to swap, every
    sixtieth place for an inserted line: each moves every later line, so no unit is taken)."""
    base = property_base()
    seen: set[str] = set()
    taken = 0
    step = {"insert": 60, "swap": 5}.get(kind, 1)
    for index in range(0, 600, step):
        head = changed(base, kind, index)
        if head in seen:
            break  # the candidates came round again
        seen.add(head)
        taken += _equal_with_reuse(based, head, (kind, index))
    assert seen and (taken > 0 or kind in ("insert", "setting", "source"))  # the context


CHANGES = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 1000),
    ),
    min_size=1,
    max_size=2,
)


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CHANGES)
def test_a_lowering_reusing_the_base_units_equals_a_fresh_one(
    based: Based, changes: list[tuple[str, int]]
) -> None:
    head = property_base()
    for kind, index in changes:
        head = changed(head, kind, index)
    taken = _equal_with_reuse(based, head, changes)
    if all(kind in ("model", "sla") for kind, _ in changes):
        assert taken > 0  # a model's or an SLA's change leaves the other units be


def test_a_known_value_that_is_not_a_unit_is_lowered_again(based: Based) -> None:
    """What the plan cache gives back that is not one of the target's units (a unit that no
    longer reads back is None) is lowered afresh: the same graph, nothing taken."""
    folder, units = based
    system = compiled_systems(folder, property_base())["prod"]
    for junk in (None, "unit", ("resources", (), ())):
        reuse = Reuse(dict.fromkeys(units["prod"], junk))
        assert _graph(system, reuse) == _graph(system, None)
        assert reuse.reused == 0 and reuse.made.keys() == units["prod"].keys()


_KEYS_OF = """
import json, sys
from pathlib import Path
from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.targets.kubernetes.lower import lower
from mlplane.targets.kubernetes.reuse import Reuse

found = {}
for env, system in sorted(compile_spec(Path(sys.argv[1])).systems.items()):
    if system.environment.target == "kubernetes":
        made = Reuse()
        lower(system, Diagnostics(), made)
        found[env] = list(made.made)
print(json.dumps(found))
"""


@pytest.mark.parametrize("example", ["fraud-scoring", "llm-rag"])
def test_unit_keys_are_the_same_in_every_process_and_hash_seed(
    example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base's units are keyed in the process that stores them and looked up by a later
    one: the keys depend on the spec alone, not on the process or its string hash seed."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    spec = str(Path("examples") / example)
    runs = []
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _KEYS_OF, spec],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    assert runs[0] and all(keys for keys in runs[0].values())
    assert runs[0] == runs[1] == runs[2]


def test_origins_are_encoded_by_value() -> None:
    """The origins' encoding tells a list index from a key, a file from another, and does not
    depend on whether equal strings are one object (interned) or two."""
    name = "".join(["fraud", "-scorer"])
    one = [(("models", name, "serving", 0), "spec/a.yaml", 3, 5)]
    same = [(("models", sys.intern("fraud-scorer"), "serving", 0), "spec/a.yaml", 3, 5)]
    assert reuse_module._encoded(one) == reuse_module._encoded(same)
    others = [
        [(("models", name, "serving", "0"), "spec/a.yaml", 3, 5)],
        [(("models", name, "serving", 0), "spec/b.yaml", 3, 5)],
        [(("models", name, "serving", 0), "spec/a.yaml", 5, 3)],
        [(("models", name, "serving"), "spec/a.yaml", 3, 5)],
        None,
        [],
    ]
    encoded = {reuse_module._encoded(other) for other in [one, *others]}
    assert len(encoded) == len(others) + 1
    assert reuse_module._digest("x", None) != reuse_module._digest("x", [])
