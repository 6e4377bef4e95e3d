"""The canary gates judged by promtool: the exact queries of a lowered AnalysisTemplate, with the
argument ``canary-hash`` filled in as Argo Rollouts fills it, evaluated on scraped series.

Each scenario runs the queries in a ``promql_expr_test`` and then judges the expected result
with the template's own ``successCondition``/``failureCondition`` the way Argo's
``EvaluateResult`` does with both set: failure wins, neither met is Inconclusive. Then Argo's
``assessMetricStatus`` limits decide the analysis (``failed > failureLimit``,
``inconclusive > inconclusiveLimit``). A gate must fail closed: a canary answering only 5xx
fails, no traffic is never a success, and the stable pods' errors never fail a good canary.
The e2e tier checks the same outcomes with the real Argo Rollouts controller and a real
Prometheus instead of these restated rules (``tests/e2e/test_rollout_analysis.py``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.targets.kubernetes import lower, rollouts

pytestmark = pytest.mark.judge

REPO = Path(__file__).resolve().parents[1]
FRAUD = REPO / "examples" / "fraud-scoring"
CANARY, STABLE = "6d4cf56db9", "7f9c8b5d44"
"""Pod-template hashes of the new and the stable ReplicaSet."""
MINUTES = 10

_CONDITION = re.compile(r"len\(result\) > 0 && result\[0\] (>=|<) ([0-9.]+)")


def _holds(condition: str, result: list[float]) -> bool:
    """One generated condition, read as expr-lang reads it (the generator only emits this form)."""
    match = _CONDITION.fullmatch(condition)
    assert match, f"unexpected condition {condition!r}"
    if not result:
        return False
    threshold = float(match[2])
    return result[0] >= threshold if match[1] == ">=" else result[0] < threshold


def argo_phase(metric: dict[str, Any], result: list[float]) -> str:
    """Argo's EvaluateResult with a success and a failure condition."""
    if _holds(metric["failureCondition"], result):
        return "Failed"
    if not _holds(metric["successCondition"], result):
        return "Inconclusive"
    return "Successful"


def analysis_phase(metric: dict[str, Any], phases: list[str]) -> str:
    """Argo's assessMetricStatus over a running metric's measurements."""
    if phases.count("Failed") > metric["failureLimit"]:
        return "Failed"
    if phases.count("Inconclusive") > metric["inconclusiveLimit"]:
        return "Inconclusive"
    return "Running"


@pytest.fixture(scope="module")
def gate() -> dict[str, Any]:
    """The prod scorer's metrics by name (canary, availability 99.95 % and latency 100 ms)."""
    result = compile_spec(FRAUD)
    assert result.ok
    system = result.systems["prod"]
    graph = lower(system, Diagnostics())
    assert graph is not None
    template = next(
        r.inputs for r in graph if not r.component and r.inputs["kind"] == "AnalysisTemplate"
    )
    assert template["spec"]["args"] == [{"name": rollouts.HASH_ARG}]
    return {
        "namespace": system.environment.namespace,
        "metrics": {m["name"]: m for m in template["spec"]["metrics"]},
    }


def substituted(metric: dict[str, Any]) -> str:
    """The query as the AnalysisRun holds it: ``{{args.canary-hash}}`` replaced by the hash."""
    query: str = metric["provider"]["prometheus"]["query"]
    assert "{{args.canary-hash}}" in query
    return query.replace("{{args.canary-hash}}", CANARY)


def requests(namespace: str, pod_hash: str, code: str, per_minute: int) -> dict[str, str]:
    labels = (
        f'namespace="{namespace}",job="scorer",service="scorer",pod="scorer-{pod_hash}-x1",'
        f'rollouts_pod_template_hash="{pod_hash}",code="{code}"'
    )
    return {"series": f"http_requests_total{{{labels}}}", "values": f"0+{per_minute}x{MINUTES}"}


def durations(
    namespace: str, pod_hash: str, fast_per_minute: int, all_per_minute: int
) -> list[dict[str, str]]:
    labels = (
        f'namespace="{namespace}",job="scorer",pod="scorer-{pod_hash}-x1",'
        f'rollouts_pod_template_hash="{pod_hash}"'
    )
    return [
        {
            "series": f'http_request_duration_seconds_bucket{{{labels},le="0.1"}}',
            "values": f"0+{fast_per_minute}x{MINUTES}",
        },
        {
            "series": f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}}',
            "values": f"0+{all_per_minute}x{MINUTES}",
        },
        {
            "series": f"http_request_duration_seconds_count{{{labels}}}",
            "values": f"0+{all_per_minute}x{MINUTES}",
        },
    ]


def run_promtool(
    promtool: str,
    tmp_path: Path,
    series: list[dict[str, str]],
    query: str,
    expected: list[float],
    at: tuple[str, ...] = ("7m", "8m", "9m"),
) -> None:
    """Assert with promtool that ``query`` returns ``expected`` (one label-less sample, or
    nothing) at every measurement time ``at``."""
    (tmp_path / "empty.rules.yaml").write_text("groups: []\n")
    samples = [{"labels": "{}", "value": value} for value in expected]
    tests = {
        "rule_files": ["empty.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": query, "eval_time": time, "exp_samples": samples} for time in at
                ],
            }
        ],
    }
    (tmp_path / "gate.test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run(
        [promtool, "test", "rules", "gate.test.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def judged(metric: dict[str, Any], expected: list[float], measurements: int = 3) -> str:
    return analysis_phase(metric, [argo_phase(metric, expected)] * measurements)


def test_a_healthy_canary_passes(promtool: str, tmp_path: Path, gate: dict[str, Any]) -> None:
    ns, metric = gate["namespace"], gate["metrics"]["scorer-availability"]
    series = [requests(ns, CANARY, "200", 600), requests(ns, STABLE, "200", 6000)]
    run_promtool(promtool, tmp_path, series, substituted(metric), [1])
    assert argo_phase(metric, [1]) == "Successful"
    assert judged(metric, [1]) == "Running"  # background analysis: runs until the last step


def test_a_canary_answering_only_5xx_fails(
    promtool: str, tmp_path: Path, gate: dict[str, Any]
) -> None:
    """It has no non-5xx series at all: the ratio is 0, not 1."""
    ns, metric = gate["namespace"], gate["metrics"]["scorer-availability"]
    series = [requests(ns, CANARY, "503", 600), requests(ns, STABLE, "200", 6000)]
    run_promtool(promtool, tmp_path, series, substituted(metric), [0])
    assert argo_phase(metric, [0]) == "Failed"
    assert analysis_phase(metric, ["Failed"]) == "Running"  # one failure is tolerated
    assert analysis_phase(metric, ["Failed", "Failed"]) == "Failed"  # the second aborts


def test_stable_pods_failing_do_not_fail_a_healthy_canary(
    promtool: str, tmp_path: Path, gate: dict[str, Any]
) -> None:
    ns, metric = gate["namespace"], gate["metrics"]["scorer-availability"]
    series = [
        requests(ns, CANARY, "200", 600),
        requests(ns, STABLE, "200", 3000),
        requests(ns, STABLE, "500", 3000),
    ]
    run_promtool(promtool, tmp_path, series, substituted(metric), [1])
    assert argo_phase(metric, [1]) == "Successful"


def test_canary_errors_are_not_diluted_by_the_stable_pods(
    promtool: str, tmp_path: Path, gate: dict[str, Any]
) -> None:
    """1 % errors on the canary fail a 99.95 % gate even when the stable pods serve 10x more."""
    ns, metric = gate["namespace"], gate["metrics"]["scorer-availability"]
    series = [
        requests(ns, CANARY, "200", 594),
        requests(ns, CANARY, "500", 6),
        requests(ns, STABLE, "200", 6000),
    ]
    run_promtool(promtool, tmp_path, series, substituted(metric), [0.99])
    assert argo_phase(metric, [0.99]) == "Failed"


@pytest.mark.parametrize("indicator", ["scorer-availability", "scorer-latency"])
def test_no_traffic_to_the_canary_is_never_a_success(
    promtool: str, tmp_path: Path, gate: dict[str, Any], indicator: str
) -> None:
    """Idle canary pods (counters flat) and pods never scraped both give an empty result:
    inconclusive, and the third such measurement pauses the rollout."""
    ns, metric = gate["namespace"], gate["metrics"][indicator]
    idle = [{**requests(ns, CANARY, "200", 0)}, requests(ns, STABLE, "200", 6000)]
    idle += durations(ns, CANARY, 0, 0) + durations(ns, STABLE, 6000, 6000)
    run_promtool(promtool, tmp_path, idle, substituted(metric), [])
    unscraped = [requests(ns, STABLE, "200", 6000), *durations(ns, STABLE, 6000, 6000)]
    run_promtool(promtool, tmp_path, unscraped, substituted(metric), [])
    assert argo_phase(metric, []) == "Inconclusive"
    assert analysis_phase(metric, ["Inconclusive"] * 2) == "Running"
    assert analysis_phase(metric, ["Inconclusive"] * 3) == "Inconclusive"


def test_a_canary_slower_than_the_threshold_fails(
    promtool: str, tmp_path: Path, gate: dict[str, Any]
) -> None:
    """Half the canary's requests above 100 ms: 0.5 of requests are fast, below 99.5 %."""
    ns, metric = gate["namespace"], gate["metrics"]["scorer-latency"]
    series = durations(ns, CANARY, 300, 600) + durations(ns, STABLE, 6000, 6000)
    run_promtool(promtool, tmp_path, series, substituted(metric), [0.5])
    assert argo_phase(metric, [0.5]) == "Failed"


def test_a_fast_canary_passes_the_latency_gate(
    promtool: str, tmp_path: Path, gate: dict[str, Any]
) -> None:
    ns, metric = gate["namespace"], gate["metrics"]["scorer-latency"]
    series = durations(ns, CANARY, 600, 600) + durations(ns, STABLE, 0, 6000)
    run_promtool(promtool, tmp_path, series, substituted(metric), [1])
    assert argo_phase(metric, [1]) == "Successful"
