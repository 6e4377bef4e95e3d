"""Dashboards show every objective once running: the generated rules in a real Prometheus, and
every query of the generated Grafana dashboard asked of it, over the series a healthy system
exports (``tests/test_monitoring.py`` checks the dashboard's shape and that its queries parse).

For each example, one Prometheus (the Debian package's server, on loopback) loads the
``monitoring/rules.yaml`` of every Kubernetes environment, as a Prometheus watching several
namespaces would, and scrapes a loopback target serving, in each environment's namespace:

* every model, in the metric names and labels of its runtime: every request answered (a 2xx
  code, or Triton's success counter; no failure series yet, as a healthy server has none), each
  within 3 ms, below the latency histogram's first bucket boundary;
* every data source with a freshness SLA: its last success, a minute before the test began;
* every model watched for drift: each monitored feature's score, below the model's threshold,
  in the drift job's own exposition (``mlplane.drift.export``);
* every ``ratio`` SLA: the series its queries select, at rates that give no errors (the same
  solution the generated promtool tests use, ``targets/monitoring/synth.py``).

Then every query of each environment's ``monitoring/dashboard.json`` must answer, Grafana's
``$__rate_interval`` taken at its floor of four scrape intervals:

* the SLO panels: one series for each SLA of the environment, none of another environment's;
  attainment 1, error budget remaining 1, burn rates 0;
* latency: one series for each model with a latency SLA, its 99th percentile within the first
  bucket;
* freshness: one series for each data source with a freshness SLA, aged about a minute;
* drift: one series for each monitored feature of each model with a drift SLA, the served score.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.drift import export
from mlplane.schema import runtimes
from mlplane.targets.monitoring import emit, synth
from tests import loopback
from tests.judges import require_judge

pytestmark = pytest.mark.judge

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(path for path in (REPO / "examples").iterdir() if path.is_dir())
RATE = 10.0
"""Requests a second of every served model (and of every ratio SLA's total)."""
FAST_SECONDS = 0.003
AGE_SECONDS = 60.0
RATE_INTERVAL = "4s"
"""Grafana's ``$__rate_interval`` at its floor: four scrape intervals (1 s here)."""
ANSWER_TIMEOUT = 90
SUCCESS: dict[str, dict[str, str]] = {"generic": {"code": "200"}, "triton": {"version": "1"}}
"""Labels of a runtime's answered requests besides the model's own: the Prometheus client
libraries' status code; Triton counts successes in a counter of their own, per model version.
(The Kubernetes target refuses ``kserve``, whose series only a KServe installation exports.)"""


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def model_lines(runtime: runtimes.Runtime, model: str, namespace: str, count: float) -> list[str]:
    """A healthy model's series in its runtime's names, ``count`` requests served so far."""
    own = {}
    for name, op, template in runtime.selector:
        assert op == "=", f"{runtime.name}: the test serves equality matchers only"
        own[name] = template.format(model=model, namespace=namespace)
    lines = [f"{runtime.requests.total[0]}{_labels(own | SUCCESS[runtime.name])} {count}"]
    histogram = runtime.latency
    if histogram is not None:
        assert histogram.unit == "seconds", f"{runtime.name}: the test serves seconds only"
        metric = histogram.metric
        for boundary in histogram.boundaries_ms:  # as the Python client writes them: 0.005, 1.0
            le = repr(boundary / 1000)
            lines.append(f"{metric}_bucket{_labels(own | {'le': le})} {count}")
        lines.append(f"{metric}_bucket{_labels(own | {'le': '+Inf'})} {count}")
        lines.append(f"{metric}_count{_labels(own)} {count}")
        lines.append(f"{metric}_sum{_labels(own)} {count * FAST_SECONDS}")
    return lines


def ratio_lines(sla: ir.Sla, count: float) -> list[str]:
    """The series a ``ratio`` SLA's queries select, at rates that make no error."""
    indicator = sla.indicator
    assert indicator.ratio_errors is not None and indicator.ratio_total is not None
    errors, total = (
        q.replace("{{window}}", "5m") for q in (indicator.ratio_errors, indicator.ratio_total)
    )
    model = synth.ratio_model(errors, total)
    rates = model.rates(Fraction(0)) if model is not None else None
    assert model is not None and rates is not None, f"{sla.name}: no healthy series for its ratio"
    return [
        f"{synth.series_text(series)} {float(rate) * count}"
        for series, rate in zip(model.candidates, rates, strict=True)
    ]


@dataclass(frozen=True)
class Environment:
    """One environment's system, the rules and the dashboard built for it."""

    system: ir.System
    rules: str
    dashboard: dict[str, Any]

    @property
    def namespace(self) -> str:
        return self.system.environment.namespace

    def subjects(self, kind: str) -> list[str]:
        return sorted(
            {s.subject for s in self.system.slas.values() if s.indicator.kind == kind and s.subject}
        )

    def drift_scores(self) -> dict[str, dict[str, float]]:
        """Each model with a drift SLA: a score per monitored feature, below its threshold."""
        scores = {}
        for name in self.subjects("drift"):
            drift = self.system.models[name].drift
            assert drift is not None, f"{name} has a drift SLA but no drift monitoring"
            features = drift.features or ("any-feature",)
            scores[name] = {
                f: round(drift.threshold * (i + 1) / (len(features) + 2), 6)
                for i, f in enumerate(features)
            }
        return scores


def environments(example: Path) -> list[Environment]:
    result = compile_spec(example)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    found = []
    for _, system in sorted(result.systems.items()):
        if system.environment.target != "kubernetes":
            continue
        files = emit.monitoring_files(system)
        dashboard = json.loads(files["monitoring/dashboard.json"])
        found.append(Environment(system, files["monitoring/rules.yaml"], dashboard))
    return found


class Served:
    """What every environment's healthy system exports, counters growing from the start."""

    def __init__(self, envs: list[Environment]) -> None:
        self._envs = envs
        self._since = time.monotonic()
        self._succeeded = time.time() - AGE_SECONDS
        self.server = loopback.scrape_target(self.exposition)
        self.address = loopback.address(self.server)

    def exposition(self) -> str:
        count = RATE * (time.monotonic() - self._since)
        lines: list[str] = []
        for env in self._envs:
            system, namespace = env.system, env.namespace
            for name, model in sorted(system.models.items()):
                lines += model_lines(runtimes.runtime(model.runtime), name, namespace, count)
            for source in env.subjects("freshness"):
                labels = {"namespace": namespace, "data_source": source}
                lines.append(
                    f"mlplane_data_last_success_timestamp_seconds{_labels(labels)} {self._succeeded}"
                )
            for sla in sorted(system.slas.values(), key=lambda s: s.name):
                if sla.indicator.kind == "ratio":
                    lines += ratio_lines(sla, count)
            for model, scores in env.drift_scores().items():
                lines += export.exposition(env.namespace, model, scores).splitlines()
        # a series or a drift family's HELP and TYPE served once, though environments repeat them
        return "\n".join(dict.fromkeys(lines)) + "\n"


Check = Callable[[list[dict[str, Any]]], str | None]
"""What a panel's answer must be: None when it is, else what is wrong with it."""


def _value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


def by_label(label: str, wanted: dict[str, Callable[[float], bool]]) -> Check:
    """One series for each key of ``wanted`` (its ``label``), each value passing its test."""

    def check(answer: list[dict[str, Any]]) -> str | None:
        got = {s["metric"].get(label): _value(s) for s in answer}
        if len(got) != len(answer) or got.keys() != wanted.keys():
            return f"series by {label}: {sorted(map(str, got))}, wanted {sorted(wanted)}"
        wrong = {k: v for k, v in got.items() if not wanted[k](v)}
        return f"values out of range: {wrong}" if wrong else None

    return check


def one(test: Callable[[float], bool]) -> Check:
    def check(answer: list[dict[str, Any]]) -> str | None:
        if len(answer) != 1:
            return f"{len(answer)} series, wanted 1"
        value = _value(answer[0])
        return None if test(value) else f"value {value}"

    return check


def checks(env: Environment) -> dict[tuple[str, str], Check]:
    """For each (panel title, query) of the dashboard, what its answer must be."""
    slas = sorted(env.system.slas)
    exactly = lambda want: lambda v: math.isclose(v, want, abs_tol=1e-9)  # noqa: E731
    scores = env.drift_scores()
    found: dict[tuple[str, str], Check] = {}
    for panel in env.dashboard["panels"]:
        title = panel["title"]
        for target in panel.get("targets", ()):
            expr = target["expr"]
            if title.startswith("SLO attainment") or title.startswith("Error budget remaining"):
                check = by_label("slo", {s: exactly(1) for s in slas})
            elif title.startswith("Burn rate"):
                check = by_label("slo", {s: exactly(0) for s in slas})
            elif title.startswith("p99 request latency"):
                check = one(lambda v: 0 < v <= 0.005)
            elif title.startswith("Data age"):
                ages = {
                    s: lambda v: AGE_SECONDS - 5 <= v <= AGE_SECONDS + ANSWER_TIMEOUT + 30
                    for s in env.subjects("freshness")
                }
                check = by_label("data_source", ages)
            elif title.startswith("Drift score"):
                model = _drift_model(expr, scores)
                check = by_label("feature", {f: exactly(v) for f, v in scores[model].items()})
            else:
                pytest.fail(f"the test does not know what panel {title!r} must show")
            found[(title, expr)] = check
    return found


def _drift_model(expr: str, scores: dict[str, dict[str, float]]) -> str:
    named = [model for model in scores if f'model="{model}"' in expr]
    assert len(named) == 1, expr
    return named[0]


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_dashboard_query_answers_for_every_objective(example: Path, tmp_path: Path) -> None:
    require_judge("prometheus")
    envs = environments(example)
    assert envs, f"{example.name} has no Kubernetes environment"
    rule_files = []
    for env in envs:
        path = tmp_path / f"rules-{env.system.environment.name}.yaml"
        path.write_text(env.rules, encoding="utf-8")
        rule_files.append(path)
    served = Served(envs)
    wanted = {
        (env.system.environment.name, *key): check
        for env in envs
        for key, check in checks(env).items()
    }
    with ExitStack() as stack:
        stack.enter_context(loopback.serving(served.server))
        url = stack.enter_context(loopback.prometheus(tmp_path, rule_files, served.address))
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            wrong = {}
            for (environment, title, expr), check in wanted.items():
                answer = loopback.query(url, expr.replace("$__rate_interval", RATE_INTERVAL))
                problem = check(answer)
                if problem is not None:
                    wrong[(environment, title, expr)] = problem
            if not wrong:
                break
            if time.monotonic() > deadline:
                shown = "\n".join(
                    f"{e} / {t}:\n  {q}\n  -> {p}" for (e, t, q), p in sorted(wrong.items())
                )
                pytest.fail(
                    f"after {ANSWER_TIMEOUT}s, {len(wrong)} of {len(wanted)} dashboard queries answer wrongly:\n{shown}"
                )
            time.sleep(2)
