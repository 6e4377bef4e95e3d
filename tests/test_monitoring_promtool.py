"""The monitoring outputs judged by the real tools: promtool (rules and their unit tests) and
amtool (Alertmanager configuration).

* every example's rules pass ``promtool check rules --lint=all --lint-fatal`` and its generated
  ``rules.test.yaml`` passes ``promtool test rules``, for every environment;
* the hand-written tests in ``tests/promtool/`` (issue 5's acceptance list) pass against rules
  generated from ``tests/promtool/spec``;
* mutation check: three deliberately broken generators (budget from percent, a window label on
  the recording rules, single-window alerts) each make the hand-written tests fail;
* a spec with 300 SLAs in one file passes the linter;
* every example's ``alertmanager.yaml`` passes ``amtool check-config``.

Tools run with argument lists on files in ``tmp_path``; nothing is written elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir, yamltext
from mlplane.targets import slo
from mlplane.targets.monitoring import (
    alerts,
    emit,
    inputs,
    names,
    promql,
    rule_tests,
    rules,
    sli,
    synth,
)
from tests.judges import require_judge

pytestmark = pytest.mark.judge

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())
HANDWRITTEN = REPO / "tests" / "promtool"
SPEC = HANDWRITTEN / "spec"
FULL_HISTORY_SLA = "checkout-availability"


@cache
def systems(path: Path) -> dict[str, ir.System]:
    result = compile_spec(path)
    assert result.ok, [d.message for d in result.sorted_diagnostics()]
    return result.systems


def example_environments() -> list[tuple[Path, str]]:
    return [(path, env) for path in EXAMPLES for env in systems(path)]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=900, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def write_monitoring(system: ir.System, directory: Path) -> Path:
    """The emitted monitoring files of ``system`` under ``directory``; returns their folder."""
    for relative, text in emit.monitoring_files(system).items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return directory / "monitoring"


def check_rules(promtool: str, folder: Path, name: str = "rules.yaml") -> None:
    proc = run([promtool, "check", "rules", "--lint=all", "--lint-fatal", "--", name], folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules(promtool: str, folder: Path, name: str) -> subprocess.CompletedProcess[str]:
    return run([promtool, "test", "rules", "--", name], folder)


test_rules.__test__ = False  # type: ignore[attr-defined]


# --- examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "env"), example_environments(), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_example_rules_pass_promtool(
    example: Path, env: str, promtool: str, tmp_path: Path
) -> None:
    folder = write_monitoring(systems(example)[env], tmp_path)
    check_rules(promtool, folder)
    proc = test_rules(promtool, folder, "rules.test.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_alertmanager_passes_amtool(example: Path, tmp_path: Path) -> None:
    amtool = require_judge("amtool")
    for env, system in systems(example).items():
        folder = write_monitoring(system, tmp_path / env)
        proc = run([amtool, "check-config", "--", "alertmanager.yaml"], folder)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# --- hand-written acceptance tests ---------------------------------------------------------------


def acceptance() -> ir.System:
    return systems(SPEC)["prod"]


def prepare(tmp_path: Path, tests: tuple[str, ...]) -> Path:
    """Rules generated from the acceptance spec next to copies of the hand-written tests."""
    folder = write_monitoring(acceptance(), tmp_path)
    for name in tests:
        shutil.copyfile(HANDWRITTEN / name, folder / name)
    return folder


@pytest.mark.parametrize("name", ["availability.test.yaml", "freshness-drift.test.yaml"])
def test_handwritten_acceptance(name: str, promtool: str, tmp_path: Path) -> None:
    folder = prepare(tmp_path, (name,))
    proc = test_rules(promtool, folder, name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_handwritten_fast_burn_with_three_days_of_history(promtool: str, tmp_path: Path) -> None:
    name = "availability-full-history.test.yaml"
    folder = prepare(tmp_path, (name,))
    system = acceptance()
    group = rules.sla_group(system, system.slas[FULL_HISTORY_SLA])
    (folder / f"{FULL_HISTORY_SLA}.rules.yaml").write_text(yamltext.dump({"groups": [group]}))
    proc = test_rules(promtool, folder, name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- mutation check ----------------------------------------------------------------------------------


def _budget_from_percent(objective_percent: float) -> Decimal:
    """Broken: the budget as a percentage (0.1 for 99.9 %), not a ratio (0.001)."""
    return Decimal(100) - Decimal(repr(objective_percent))


def _window_label_on_records(window: str, expr: str, labels: dict[str, str]) -> rules.Rule:
    """Broken: the window as a label (as Sloth's sloth_window), so ``and`` matches nothing."""
    return rules.record(names.ratio(window), expr, {**labels, "window": window})


def _single_window(system: ir.System, sla: ir.Sla, threshold: slo.Threshold) -> str:
    """Broken: only the long window, so an alert keeps firing long after the problem stopped."""
    limit = slo.number(threshold.ratio)
    return f"{names.of(names.ratio(threshold.pair.long), system, sla)} > {limit}"


MONITORING_MODULES = (inputs, promql, rule_tests, sli, synth)

MUTANTS: dict[str, tuple[object, str, Callable[..., object]]] = {
    "budget-from-percent": (slo, "error_budget", _budget_from_percent),
    "window-label-on-recording-rules": (rules, "ratio_rule", _window_label_on_records),
    "single-window-alerts": (alerts, "burn_condition", _single_window),
}


def _forget_remembered() -> None:
    """Empty the generators' memo tables (``functools.lru_cache``): a result remembered from the
    correct function would hide a mutant, and one remembered from a mutant would outlive it."""
    for module in (slo, alerts, names, rules, *MONITORING_MODULES):
        for value in vars(module).values():
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()


@pytest.fixture
def forgetting() -> Iterator[None]:
    _forget_remembered()
    yield
    _forget_remembered()


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
@pytest.mark.usefixtures("forgetting")
def test_broken_generators_fail_the_handwritten_tests(
    mutant: str, promtool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, attribute, broken = MUTANTS[mutant]
    monkeypatch.setattr(module, attribute, broken)
    folder = prepare(tmp_path, ("availability.test.yaml",))
    check_rules(promtool, folder)  # still valid rules: only their behaviour is wrong
    proc = test_rules(promtool, folder, "availability.test.yaml")
    assert proc.returncode != 0, f"mutant {mutant} passed the hand-written tests"
    assert "FAILED" in proc.stdout + proc.stderr


# --- scale -----------------------------------------------------------------------------------------------


def many_slas_spec(count: int) -> str:
    """A spec with ``count`` SLAs of every indicator kind over 30 models on all runtimes."""
    lines = [
        "apiVersion: mlplane.dev/v1",
        "kind: MLSystem",
        "metadata: {name: big, owner: sre}",
        "environments: {prod: {target: kubernetes, kubernetes: {namespace: big}}}",
        "dataSources:",
        "  events: {type: stream, uri: 'kafka://e:9093/events', classification: internal}",
        "models:",
    ]
    digest = "0" * 64
    for index in range(30):
        runtime = ("generic", "kserve", "triton")[index % 3]
        lines.append(
            f"  m{index}: {{framework: sklearn, version: '1', image: 'ghcr.io/a/m@sha256:{digest}', "
            f"runtime: {runtime}, monitoring: {{drift: {{method: psi, threshold: 0.2, features: [a, b]}}}}}}"
        )
    lines.append("slas:")
    for index in range(count):
        model = f"m{index % 30}"
        kind = index % 5
        if kind == 1 and index % 30 % 3 == 2:
            kind = 0  # Triton has no latency SLI
        indicator = [
            "availability",
            "{latency: {threshold: 100ms}}",
            "{freshness: {maxAge: 10m}}",
            "{drift: {threshold: 0.3}}",
            f"{{ratio: {{errors: 'sum(rate(e_total{{job=\"j{index}\"}}[{{{{window}}}}]))', "
            f"total: 'sum(rate(r_total{{job=\"j{index}\"}}[{{{{window}}}}]))'}}}}",
        ][kind]
        subject = "dataSource: events" if kind == 2 else f"model: {model}"
        objective = (99, 99.5, 99.9, 99.95)[index % 4]
        lines.append(f"  s{index}: {{{subject}, objective: {objective}, indicator: {indicator}}}")
    return "\n".join(lines) + "\n"


def test_three_hundred_slas_pass_the_linter(promtool: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "mlplane.yaml").write_text(many_slas_spec(300))
    system = systems(spec)["prod"]
    assert len(system.slas) == 300
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "rules.yaml").write_text(emit.monitoring_files(system)["monitoring/rules.yaml"])
    check_rules(promtool, folder)
