"""Rollout gates judged by the real Argo Rollouts controller, on series in a real Prometheus.

``tests/test_rollout_gates.py`` evaluates the generated queries with promtool and restates
Argo's rules for the conditions and the limits. Here nothing is restated: the e2e cluster's
Argo Rollouts controller runs the generated AnalysisTemplates against the cluster's Prometheus
(``tools/e2e/up.sh``), which scrapes series that this test serves on loopback in the names and
labels of the runtime each model declares (``generic``: the Prometheus client libraries'
defaults; ``triton``: NVIDIA Triton's counters). kwok's pods run
no containers, so the test stands in for them: it learns each new ReplicaSet's pod-template
hash from the Rollout and serves that version's traffic under it, as a ServiceMonitor with
``podTargetLabels`` would label the pods' series.

One system, nine models, each gated on one SLA; one apply changes every model's image, and
the controller must then, for the canaries (``steps: [50], pause: 3m``, the analysis in the
background):

* ``healthy``: promote the new version, although the *stable* pods answer only 5xx (the gate
  measures the new version's pods alone);
* ``failing`` (the new pods answer only 5xx) and ``slow`` (every answer takes a second, against
  a 250 ms latency objective): abort the update and keep the stable version;
* ``silent`` (no traffic reaches the new pods): never promote it; the analysis ends
  Inconclusive and the rollout waits for a person, although its pause has run out;
* ``triton-healthy`` and ``triton-failing``: the same on the ``triton`` runtime's series, which
  count successes and failures apart (a healthy version with no failure counter yet, a failing
  one with no success counter);

and for the blue-green models (``pause: 30s``, the analysis after promotion, five measurements):

* ``bg-healthy``: keep the new version after five successful measurements;
* ``bg-failing``: abort after two failed ones and send the active Service back to the stable
  version;
* ``bg-silent``: end the analysis Inconclusive and wait for a person, the new version serving
  (it was promoted before its analysis) and the stable one kept to switch back to.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import loopback
from tests.e2e.conftest import Repo, delete_namespace, kubectl_json, wait_workloads_ready
from tests.judges import in_ci

pytestmark = pytest.mark.e2e

NAMESPACE = "gate-dev"
POD_HASH_LABEL = "rollouts-pod-template-hash"
PAUSE_SECONDS = 180
BLUE_GREEN_PAUSE = 30
OLD_IMAGE = "ghcr.io/acme/ranker@sha256:" + hashlib.sha256(b"ranker 1").hexdigest()
NEW_IMAGE = "ghcr.io/acme/ranker@sha256:" + hashlib.sha256(b"ranker 2").hexdigest()
LATENCY_THRESHOLD = 0.25
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""The Python client's default histogram buckets, which the ``generic`` runtime reads."""
SETTLE_TIMEOUT = 600
"""Seconds from the image change until every model's rollout must have reached its end: the
longest, a healthy blue-green's, takes its pause and five measurements a minute apart (about
4.5 minutes on the 2-core machine)."""


@dataclass(frozen=True)
class Traffic:
    """What one version of a model answers: requests a second, the share of 5xx answers and
    how long each answer takes."""

    rate: float = 5.0
    errors: float = 0.0
    seconds: float = 0.02


OK, ERRORS, SLOW = Traffic(), Traffic(errors=1.0), Traffic(seconds=1.0)
CANARY = f"{{strategy: canary, steps: [50], pause: {PAUSE_SECONDS // 60}m}}"
BLUE_GREEN = f"{{strategy: blueGreen, pause: {BLUE_GREEN_PAUSE}s}}"
LATENCY = f"{{latency: {{threshold: {int(LATENCY_THRESHOLD * 1000)}ms}}}}"


@dataclass(frozen=True)
class Case:
    """One model: its rollout, its SLA's indicator, what its stable and its new pods answer
    (None: no traffic) and how its rollout must end (``promoted``, ``aborted``, ``held``)."""

    rollout: str
    indicator: str
    stable: Traffic
    new: Traffic | None
    end: str
    runtime: str = "generic"


CASES = {
    "healthy": Case(CANARY, "availability", ERRORS, OK, "promoted"),
    "failing": Case(CANARY, "availability", OK, ERRORS, "aborted"),
    "slow": Case(CANARY, LATENCY, OK, SLOW, "aborted"),
    "silent": Case(CANARY, "availability", OK, None, "held"),
    "bg-healthy": Case(BLUE_GREEN, "availability", OK, OK, "promoted"),
    "bg-failing": Case(BLUE_GREEN, "availability", OK, ERRORS, "aborted"),
    "bg-silent": Case(BLUE_GREEN, "availability", OK, None, "held"),
    "triton-healthy": Case(CANARY, "availability", ERRORS, OK, "promoted", "triton"),
    "triton-failing": Case(CANARY, "availability", OK, ERRORS, "aborted", "triton"),
}
"""Triton counts successes and failures apart: a healthy version here has no failure counter
yet, and a failing one no success counter (each query reads a missing counter as zero)."""


def spec_text(image: str) -> str:
    lines = [
        "apiVersion: mlplane.dev/v1",
        "kind: MLSystem",
        "metadata: {name: gate, owner: ml, description: Canary gates judged at run time}",
        "environments:",
        "  dev:",
        "    target: kubernetes",
        f"    kubernetes: {{namespace: {NAMESPACE}, mesh: none}}",
        "    state: file://.mlplane/state",
        "models:",
    ]
    for model, case in CASES.items():
        lines += [
            f"  {model}:",
            "    framework: sklearn",
            '    version: "1.0"',
            f"    image: {image}",
            f"    runtime: {case.runtime}",
            "    serving:",
            *(["      port: 8000"] if case.runtime == "triton" else []),
            "      replicas: {min: 2, max: 2}",
            "      resources: {cpu: 100m, memory: 128Mi}",
            f"      rollout: {case.rollout}",
        ]
    lines.append("slas:")
    for model, case in CASES.items():
        lines.append(
            f"  {model}-gate: {{model: {model}, objective: 99, indicator: {case.indicator}}}"
        )
    return "\n".join(lines) + "\n"


class Series:
    """Counters of every model's versions, served in Prometheus's text format on loopback.

    A version's counters grow from the moment it is added at its :class:`Traffic`'s rate, so
    the ``rate()`` of the generated queries reads that rate back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str], tuple[Traffic, float]] = {}
        self.server = loopback.scrape_target(lambda: self.exposition(time.monotonic()))
        self.address = loopback.address(self.server)

    def serve(self, model: str, pod_hash: str, traffic: Traffic) -> None:
        with self._lock:
            self._versions.setdefault((model, pod_hash), (traffic, time.monotonic()))

    def exposition(self, now: float) -> str:
        with self._lock:
            versions = sorted(self._versions.items())
        lines = [
            "# TYPE http_requests_total counter",
            "# TYPE http_request_duration_seconds histogram",
        ]
        for (model, pod_hash), (traffic, since) in versions:
            total = traffic.rate * (now - since)
            failed = total * traffic.errors
            if CASES[model].runtime == "triton":
                lines += _triton(model, pod_hash, total - failed, failed)
                continue
            labels = (
                f'namespace="{NAMESPACE}",job="{model}",rollouts_pod_template_hash="{pod_hash}"'
            )
            lines.append(f'http_requests_total{{{labels},code="200"}} {total - failed:.3f}')
            if failed:
                lines.append(f'http_requests_total{{{labels},code="500"}} {failed:.3f}')
            for bound in BUCKETS:
                within = total if traffic.seconds <= bound else 0.0
                lines.append(
                    f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {within:.3f}'
                )
            lines.append(f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {total:.3f}')
            lines.append(f"http_request_duration_seconds_count{{{labels}}} {total:.3f}")
            lines.append(
                f"http_request_duration_seconds_sum{{{labels}}} {total * traffic.seconds:.3f}"
            )
        return "\n".join(lines) + "\n"


def _triton(model: str, pod_hash: str, succeeded: float, failed: float) -> list[str]:
    """Triton's per-model counters, each only once it has counted something."""
    labels = (
        f'namespace="{NAMESPACE}",model="{model}",version="1",'
        f'rollouts_pod_template_hash="{pod_hash}"'
    )
    counters = (
        ("nv_inference_request_success", succeeded),
        ("nv_inference_request_failure", failed),
    )
    return [f"{name}{{{labels}}} {value:.3f}" for name, value in counters if value]


@contextmanager
def scraped(series: Series, prometheus: str, targets: Path) -> Iterator[None]:
    """Serve ``series`` and list it among Prometheus's scrape targets until the block ends."""
    listed = targets / "rollout-analysis.json"
    # Written under another name first (not *.json): discovery never reads it half-written.
    written = targets / "rollout-analysis.json.new"
    with loopback.serving(series.server):
        written.write_text(json.dumps([{"targets": [series.address]}]), encoding="utf-8")
        written.replace(listed)
        try:
            _wait(lambda: _target_up(prometheus, series.address), 60, "Prometheus to scrape it")
            yield
        finally:
            listed.unlink(missing_ok=True)


def _target_up(prometheus: str, address: str) -> bool:
    query = urllib.parse.urlencode({"query": f'up{{instance="{address}"}} == 1'})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query?{query}", timeout=5) as answer:
        return bool(json.load(answer)["data"]["result"])


def _wait(done: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)


def rollout(env: dict[str, str], model: str) -> dict[str, Any]:
    return kubectl_json(env, "get", "rollouts.argoproj.io", model, "-n", NAMESPACE)


def analysis_runs(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The namespace's AnalysisRuns by the Rollout that owns them (the newest of each)."""
    found: dict[str, dict[str, Any]] = {}
    items = kubectl_json(env, "get", "analysisruns.argoproj.io", "-n", NAMESPACE)["items"]
    for run in sorted(items, key=lambda item: item["metadata"]["creationTimestamp"]):
        for owner in run["metadata"].get("ownerReferences", ()):
            if owner["kind"] == "Rollout":
                found[owner["name"]] = run
    return found


def active_selector(env: dict[str, str], model: str) -> str | None:
    """The pod-template hash a blue-green model's active Service sends traffic to (None for a
    canary's Service, which selects every version's pods)."""
    service = kubectl_json(env, "get", "service", model, "-n", NAMESPACE)
    selected = service["spec"].get("selector", {}).get(POD_HASH_LABEL)
    return None if selected is None else str(selected)


def measurements(run: dict[str, Any]) -> list[str]:
    return [
        str(m.get("phase"))
        for metric in run.get("status", {}).get("metricResults", ())
        for m in metric.get("measurements", ())
    ]


def settled(state: dict[str, Any], stable: str, new: str, end: str) -> bool:
    """Whether a rollout has reached ``end``."""
    status = state.get("status", {})
    kept = status.get("stableRS")
    if end == "promoted":
        return bool(kept == new and status.get("phase") == "Healthy")
    if end == "aborted":
        return bool(status.get("abort")) and kept == stable
    reasons = {c.get("reason") for c in status.get("pauseConditions") or ()}
    return "InconclusiveAnalysisRun" in reasons and kept == stable


def test_the_controller_promotes_only_a_canary_that_meets_its_objective(
    e2e_env: dict[str, str], tmp_path: Path
) -> None:
    prometheus = e2e_env.get("MLPLANE_E2E_PROMETHEUS")
    targets = e2e_env.get("MLPLANE_E2E_PROMETHEUS_TARGETS")
    if not prometheus or not targets:
        message = "the e2e cluster runs no Prometheus (the prometheus binary was not on PATH)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path / "gate"
    path.mkdir()
    (path / "mlplane.yaml").write_text(spec_text(OLD_IMAGE), encoding="utf-8")
    repo = Repo(path, e2e_env)
    repo.git("init", "--quiet", "--initial-branch=main")
    repo.commit("canary-gated and blue-green models")
    series = Series()
    try:
        with scraped(series, prometheus, Path(targets)):
            repo.mlplane("apply", "--env", "dev", "--yes")
            wait_workloads_ready(e2e_env, NAMESPACE)
            stable = {model: rollout(e2e_env, model)["status"]["stableRS"] for model in CASES}
            for model, pod_hash in stable.items():
                series.serve(model, pod_hash, CASES[model].stable)

            (path / "mlplane.yaml").write_text(spec_text(NEW_IMAGE), encoding="utf-8")
            repo.commit("a new image for every model")
            started = time.monotonic()
            repo.mlplane("apply", "--env", "dev", "--yes")

            new: dict[str, str] = {}
            states: dict[str, dict[str, Any]] = {}
            while time.monotonic() - started < SETTLE_TIMEOUT:
                states = {model: rollout(e2e_env, model) for model in CASES}
                for model, state in states.items():
                    current = state.get("status", {}).get("currentPodHash")
                    if current and current != stable[model] and model not in new:
                        new[model] = current
                        traffic = CASES[model].new
                        if traffic is not None:
                            series.serve(model, current, traffic)
                done = [
                    model
                    for model, case in CASES.items()
                    if model in new and settled(states[model], stable[model], new[model], case.end)
                ]
                # The silent canary must still be held once its pause has run out.
                waited = time.monotonic() - started > PAUSE_SECONDS + 30
                if len(done) == len(CASES) and waited:
                    break
                time.sleep(2)
            runs = analysis_runs(e2e_env)
            report = {
                model: {
                    "status": {
                        key: states[model].get("status", {}).get(key)
                        for key in ("phase", "abort", "stableRS", "currentPodHash", "message")
                    },
                    "pauseConditions": states[model].get("status", {}).get("pauseConditions"),
                    "active": active_selector(e2e_env, model),
                    "analysis": runs.get(model, {}).get("status", {}).get("phase"),
                    "measurements": measurements(runs.get(model, {})),
                }
                for model in CASES
            }
            shown = json.dumps(report, indent=2)
            for model, case in CASES.items():
                assert model in new, f"{model}: no new ReplicaSet appeared\n{shown}"
                assert settled(states[model], stable[model], new[model], case.end), (
                    f"{model}: the rollout did not end {case.end}\n{shown}"
                )
            for model in ("healthy", "triton-healthy"):
                assert report[model]["measurements"].count("Successful") >= 2, shown
            for model in ("failing", "slow", "bg-failing", "triton-failing"):
                assert report[model]["analysis"] == "Failed", shown
                assert report[model]["measurements"].count("Failed") == 2, shown
            assert report["silent"]["analysis"] == "Inconclusive", shown
            assert set(report["silent"]["measurements"]) == {"Inconclusive"}, shown
            assert report["bg-healthy"]["analysis"] == "Successful", shown
            assert report["bg-healthy"]["measurements"] == ["Successful"] * 5, shown
            assert report["bg-healthy"]["active"] == new["bg-healthy"], shown
            assert report["bg-failing"]["active"] == stable["bg-failing"], shown
            # Promoted before its analysis, the silent blue-green version keeps the traffic while
            # the rollout waits for a person; the stable version stays up to switch back to.
            assert report["bg-silent"]["analysis"] == "Inconclusive", shown
            assert report["bg-silent"]["active"] == new["bg-silent"], shown
    finally:
        delete_namespace(e2e_env, NAMESPACE)
