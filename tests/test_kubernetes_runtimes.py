"""Runtimes on the kubernetes target read what the deployed pods expose.

* every runtime's table (``targets/kubernetes/servers.py``) names its upstream sources;
* the series the SLO rules and the canary gates of a model read are series its runtime's
  server exports, and the ServiceMonitor and probes use the runtime's ports and paths;
* ``runtime: kserve`` is refused at its ``runtime:`` line, Triton on another port too;
* per deployed runtime, a promtool scenario built from the table's series, labelled as the
  ServiceMonitor labels them, makes the burn-rate page fire.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.targets.kubernetes import codes, lower, servers
from mlplane.targets.monitoring import emit
from tests.specs import DIGEST, compile_text

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())
_METRIC = re.compile(r"(?<![a-zA-Z0-9_:])([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
GATED = ("availability", "latency")


def kubernetes_systems(example: Path) -> list[ir.System]:
    result = compile_spec(example)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    return [s for s in result.systems.values() if s.environment.target == "kubernetes"]


def spec_text(runtime: str, port: str = "") -> str:
    serving = f"\n    serving: {{port: {port}}}" if port else ""
    return f"""\
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata: {{name: demo, owner: ml-team}}
environments:
  prod: {{target: kubernetes, kubernetes: {{namespace: shop}}}}
models:
  scorer:
    framework: sklearn
    version: "1.0.0"
    image: ghcr.io/acme/scorer@{DIGEST}
    runtime: {runtime}{serving}
slas:
  scorer-availability: {{model: scorer, objective: 99.9, window: 30d, indicator: availability}}
"""


def lowered(system: ir.System) -> tuple[list[dict[str, Any]], Diagnostics]:
    diagnostics = Diagnostics()
    graph = lower(system, diagnostics)
    bodies = [dict(r.inputs) for r in graph or () if not r.component]
    return bodies, diagnostics


@pytest.mark.parametrize("runtime", sorted(servers.SERVERS))
def test_every_runtime_table_names_its_upstream_sources(runtime: str) -> None:
    server = servers.SERVERS[runtime]
    assert server.series and server.sources
    assert all(source.startswith("https://") for source in server.sources)
    assert server.deployed == (not server.why_not_deployed)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_rules_and_gates_read_series_the_runtime_exposes(example: Path) -> None:
    for system in kubernetes_systems(example):
        _rules_and_gates_read_series_the_runtime_exposes(system)


def _rules_and_gates_read_series_the_runtime_exposes(system: ir.System) -> None:
    rules = yaml.safe_load(emit.monitoring_files(system)["monitoring/rules.yaml"])
    bodies, _ = lowered(system)
    checked = 0
    for name, sla in system.slas.items():
        if sla.subject_kind != "model" or sla.indicator.kind not in GATED:
            continue
        model = system.models[str(sla.subject)]
        exposed = set(servers.server(model).series)
        group = next(g for g in rules["groups"] if g["name"].endswith(f"/{name}"))
        read = {m for rule in group["rules"] for m in _METRIC.findall(rule["expr"])}
        raw = {m for m in read if ":" not in m and m not in ("ALERTS", "absent")}
        assert raw and raw <= exposed, (name, raw - exposed)
        checked += 1
    for body in bodies:
        if body["kind"] == "AnalysisTemplate":
            model = system.models[body["metadata"]["labels"]["app.kubernetes.io/name"]]
            for metric in body["spec"]["metrics"]:
                read = set(_METRIC.findall(metric["provider"]["prometheus"]["query"]))
                assert read <= set(servers.server(model).series), read
                checked += 1
    assert checked or not system.slas


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_scrapes_and_probes_use_the_runtime_ports_and_paths(example: Path) -> None:
    for system in kubernetes_systems(example):
        _scrapes_and_probes_use_the_runtime_ports_and_paths(system)


def _scrapes_and_probes_use_the_runtime_ports_and_paths(system: ir.System) -> None:
    bodies, _ = lowered(system)
    for body in bodies:
        name = body["metadata"]["name"]
        if body["kind"] == "ServiceMonitor":
            model = system.models[name]
            (endpoint,) = body["spec"]["endpoints"]
            assert endpoint["path"] == servers.metrics_path(model)
            service = next(
                b for b in bodies if b["kind"] == "Service" and b["metadata"]["name"] == name
            )
            port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
            assert port["port"] == servers.metrics_port(model)
        if body["kind"] in ("Deployment", "Rollout"):
            model = system.models[name]
            (container,) = body["spec"]["template"]["spec"]["containers"]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["http"] == servers.http_port(model)
            assert ports.get(servers.metrics_port_name(model)) == servers.metrics_port(model)
            assert container["livenessProbe"]["httpGet"]["path"] == servers.liveness_path(model)
            assert container["readinessProbe"]["httpGet"]["path"] == servers.readiness_path(model)


def test_triton_is_deployed_with_its_own_ports_and_health_paths(tmp_path: Path) -> None:
    result = compile_text(tmp_path, spec_text("triton", port="8000"))
    assert result.ok
    bodies, diagnostics = lowered(result.systems["prod"])
    assert not diagnostics.has_errors
    rollout = next(b for b in bodies if b["kind"] == "Deployment")
    (container,) = rollout["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8000,
        "metrics": 8002,
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    monitor = next(b for b in bodies if b["kind"] == "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize(
    ("runtime", "port", "line_of"),
    [("kserve", "", "    runtime: kserve"), ("triton", "8080", "    serving: {port: 8080}")],
)
def test_a_runtime_that_cannot_run_as_written_is_refused_at_its_line(
    tmp_path: Path, runtime: str, port: str, line_of: str
) -> None:
    text = spec_text(runtime, port)
    result = compile_text(tmp_path, text)
    assert result.ok
    graph_diagnostics = lowered(result.systems["prod"])[1]
    errors = [d for d in graph_diagnostics if d.code == codes.UNSUPPORTED]
    assert len(errors) == 1, [d.one_line() for d in graph_diagnostics]
    assert errors[0].location is not None
    assert errors[0].location.line == text.splitlines().index(line_of) + 1


def _scraped(runtime: str, healthy: bool) -> list[dict[str, str]]:
    """The scorer's series as Prometheus stores them: names from the runtime's table, labels
    from the server (Triton: model, version) and from the ServiceMonitor (namespace, job,
    service, pod). 10 % of the requests fail after one healthy hour."""
    server = servers.SERVERS[runtime]
    target = 'namespace="shop",job="scorer",service="scorer",pod="scorer-5d9c7-x1"'
    ok, bad = ("0+600x60", "0+0x60") if healthy else ("0+600x60 3600+540x60", "0+0x60 0+60x60")
    if runtime == "triton":
        success, failure = "nv_inference_request_success", "nv_inference_request_failure"
        assert {success, failure} <= set(server.series)
        labels = f'{target},model="scorer",version="1"'
        return [
            {"series": f"{success}{{{labels}}}", "values": ok},
            {"series": f"{failure}{{{labels}}}", "values": bad},
        ]
    assert "http_requests_total" in server.series
    return [
        {"series": f'http_requests_total{{{target},code="200"}}', "values": ok},
        {"series": f'http_requests_total{{{target},code="500"}}', "values": bad},
    ]


@pytest.mark.judge
@pytest.mark.parametrize("runtime", [r for r, s in sorted(servers.SERVERS.items()) if s.deployed])
def test_the_page_fires_on_the_series_the_runtime_exposes(
    promtool: str, tmp_path: Path, runtime: str
) -> None:
    port = "8000" if runtime == "triton" else ""
    result = compile_text(tmp_path, spec_text(runtime, port))
    assert result.ok
    system = result.systems["prod"]
    assert not lowered(system)[1].has_errors
    (tmp_path / "rules.yaml").write_text(emit.monitoring_files(system)["monitoring/rules.yaml"])
    page = {
        "alertname": "ErrorBudgetFastBurn",
        "slo": "scorer-availability",
        "severity": "page",
    }

    def check(healthy: bool) -> subprocess.CompletedProcess[str]:
        tests = {
            "rule_files": ["rules.yaml"],
            "evaluation_interval": "1m",
            "tests": [
                {
                    "interval": "1m",
                    "input_series": _scraped(runtime, healthy),
                    "promql_expr_test": [
                        {
                            "expr": 'count(ALERTS{alertname="ErrorBudgetFastBurn",'
                            'slo="scorer-availability",alertstate="firing"})',
                            "eval_time": "115m",
                            "exp_samples": [{"labels": "{}", "value": 1}],
                        }
                    ],
                }
            ],
        }
        (tmp_path / "page.test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
        return subprocess.run(
            [promtool, "test", "rules", "page.test.yaml"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    firing = check(healthy=False)
    assert firing.returncode == 0, firing.stdout + firing.stderr
    quiet = check(healthy=True)
    assert quiet.returncode != 0 and "FAILED" in quiet.stdout + quiet.stderr, page
