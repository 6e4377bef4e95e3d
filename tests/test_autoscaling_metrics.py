"""Autoscalers read metrics that exist, run for real: each ``rps`` or ``concurrency``
autoscaler's per-pod metric, recorded by the model's own PrometheusRule, in a real Prometheus
over the series each runtime exports.

An autoscaler on requests per second or requests in flight reads a per-pod custom metric
(through a custom-metrics API such as prometheus-adapter). No runtime exports one under a common
name (Triton counts successes and failures apart and has no in-flight gauge; the Prometheus
client libraries have none either), so each such model gets a PrometheusRule recording
``mlplane_model_requests_per_second`` or ``mlplane_model_requests_in_flight`` by ``namespace``
and ``pod`` from its runtime's series, and its HorizontalPodAutoscaler reads that name
(``tests/test_kubernetes_target.py`` checks the pairing).

One Prometheus (the Debian package's server, on loopback) loads those rules of every Kubernetes
environment of every example, a rule file each (as the Prometheus Operator gives each object),
and scrapes what two pods of each model export, with the
``namespace`` and ``pod`` labels a ServiceMonitor's scrape attaches: pod ``a`` answers 2
requests a second and fails 1 (a 5xx, or Triton's failure counter), pod ``b`` answers 7 and has
no failure series yet; pod ``a`` spends 0.4 s handling requests each second, pod ``b`` 1.6 s, in
the unit of the runtime's counter (microseconds for Triton). The recorded metric must then give,
for exactly those pods of each environment's namespace, 3 and 7 requests a second, or 0.4 and
1.6 requests in flight.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import compile_spec, target_of
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.schema import runtimes
from tests import loopback
from tests.judges import require_judge

pytestmark = pytest.mark.judge

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(path for path in (REPO / "examples").iterdir() if path.is_dir())
ANSWER_TIMEOUT = 200
"""Seconds for the recorded rates to settle: ``rate()`` divides by the whole range (2 minutes),
so a rate reads low until its series are older than that."""
PODS = {"a": (2.0, 1.0, 0.4), "b": (7.0, 0.0, 1.6)}
"""Each pod: requests answered a second, failed a second, seconds spent handling them a second."""


@dataclass(frozen=True)
class Scaled:
    """A model whose autoscaler reads a recorded per-pod metric."""

    model: ir.Model
    namespace: str
    metric: str
    """The custom metric its HorizontalPodAutoscaler reads."""

    def pod(self, key: str) -> str:
        return f"{self.model.name}-5d8f7c9b6-{key}"

    def expected(self, key: str) -> float:
        answered, failed, busy = PODS[key]
        return answered + failed if self.model.serving.autoscaling_metric == "rps" else busy


def lowered(example: Path) -> tuple[list[Scaled], dict[str, list[dict[str, Any]]]]:
    """Every Kubernetes environment's autoscaled models, and per environment the rule groups
    of their PrometheusRule objects (the SLAs' own are ``monitoring/rules.yaml``'s, judged
    elsewhere)."""
    result = compile_spec(example)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    scaled: list[Scaled] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for env, system in sorted(result.systems.items()):
        if system.environment.target != "kubernetes":
            continue
        target = target_of(system, Diagnostics())
        graph = target.lower(system, Diagnostics()) if target is not None else None
        assert graph is not None
        bodies = [r.inputs for r in graph if "kind" in r.inputs]
        for body in bodies:
            labels = body["metadata"].get("labels", {})
            if body["kind"] == "PrometheusRule" and "mlplane.dev/sla" not in labels:
                groups.setdefault(env, []).extend(body["spec"]["groups"])
            if body["kind"] == "HorizontalPodAutoscaler":
                (metric,) = body["spec"]["metrics"]
                if metric["type"] == "Pods":
                    model = system.models[body["spec"]["scaleTargetRef"]["name"]]
                    name = metric["pods"]["metric"]["name"]
                    scaled.append(Scaled(model, body["metadata"]["namespace"], name))
    return scaled, groups


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def pod_lines(scaled: Scaled, key: str, seconds: float) -> list[str]:
    """What pod ``key`` of ``scaled``'s model has exported after ``seconds``, in its runtime's
    names, with the labels the scrape attaches."""
    runtime = runtimes.runtime(scaled.model.runtime)
    answered, failed, busy = PODS[key]
    own = {"namespace": scaled.namespace, "pod": scaled.pod(key)}
    for name, op, template in runtime.selector:
        assert op == "=", f"{runtime.name}: the test serves equality matchers only"
        own[name] = template.format(model=scaled.model.name, namespace=scaled.namespace)
    handling = runtime.handling_time
    lines = [f"{handling.metric}{_labels(own)} {busy * handling.units_per_second * seconds}"]
    if runtime.name == "triton":
        version = {**own, "version": "1"}
        lines.append(f"nv_inference_request_success{_labels(version)} {answered * seconds}")
        if failed:
            reason = {**version, "reason": "BACKEND"}
            lines.append(f"nv_inference_request_failure{_labels(reason)} {failed * seconds}")
    elif runtime.name == "generic":
        ok, error = {**own, "code": "200"}, {**own, "code": "503"}
        lines.append(f"http_requests_total{_labels(ok)} {answered * seconds}")
        if failed:
            lines.append(f"http_requests_total{_labels(error)} {failed * seconds}")
    else:
        pytest.fail(f"the test serves no series of runtime {runtime.name!r}")
    return lines


def test_every_autoscaler_s_metric_is_recorded_per_pod(tmp_path: Path) -> None:
    require_judge("prometheus")
    scaled: list[Scaled] = []
    rules = []
    for example in EXAMPLES:
        models, groups = lowered(example)
        scaled += models
        for env, held in groups.items():
            rules.append(tmp_path / f"rules-{example.name}-{env}.yaml")
            rules[-1].write_text(json.dumps({"groups": held}), encoding="utf-8")
    kinds = {(s.model.runtime, s.model.serving.autoscaling_metric) for s in scaled}
    # what the examples give this test to judge: both metrics, and Triton's counters
    assert {("generic", "rps"), ("generic", "concurrency"), ("triton", "concurrency")} <= kinds
    since = time.monotonic()

    def exposition() -> str:
        seconds = time.monotonic() - since
        return "\n".join(line for s in scaled for k in PODS for line in pod_lines(s, k, seconds))

    served = loopback.scrape_target(lambda: exposition() + "\n")
    wanted = {
        (metric, namespace): {
            s.pod(k): s.expected(k)
            for s in scaled
            if (s.metric, s.namespace) == (metric, namespace)
            for k in PODS
        }
        for metric, namespace in {(s.metric, s.namespace) for s in scaled}
    }
    with ExitStack() as stack:
        stack.enter_context(loopback.serving(served))
        url = stack.enter_context(loopback.prometheus(tmp_path, rules, loopback.address(served)))
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            found = {
                (metric, namespace): {
                    series["metric"]["pod"]: float(series["value"][1])
                    for series in loopback.query(url, f'{metric}{{namespace="{namespace}"}}')
                }
                for metric, namespace in wanted
            }
            if all(
                got.keys() == wanted[key].keys()
                and all(math.isclose(got[p], wanted[key][p], rel_tol=0.05) for p in got)
                for key, got in found.items()
            ):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"after {ANSWER_TIMEOUT}s, recorded {found}, wanted {wanted}")
            time.sleep(2)
