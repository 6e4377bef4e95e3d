"""Unit tests of the monitoring target (targets/monitoring): presets, budget maths, rules,
generated tests, dashboard, Alertmanager routing and emitted files. No external tool is needed
here; tests/test_monitoring_promtool.py runs promtool and amtool on the same outputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.schema import models, runtimes
from mlplane.targets import slo
from mlplane.targets.monitoring import (
    alertmanager,
    checks,
    dashboards,
    emit,
    names,
    presets,
    promql,
    rule_tests,
    rules,
    synth,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())
SPEC = REPO / "tests" / "promtool" / "spec"
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z_]+:[a-z0-9_]+$")
"""``level:metric:operations``."""


@cache
def systems(path: Path) -> dict[str, ir.System]:
    result = compile_spec(path)
    assert result.ok, [d.message for d in result.sorted_diagnostics()]
    return result.systems


def every_system() -> list[tuple[str, ir.System]]:
    return [
        (f"{path.name}/{env}", system)
        for path in [*EXAMPLES, SPEC]
        for env, system in systems(path).items()
    ]


def acceptance() -> ir.System:
    return systems(SPEC)["prod"]


SYSTEMS = every_system()
over_systems = pytest.mark.parametrize(
    "system", [s for _, s in SYSTEMS], ids=[name for name, _ in SYSTEMS]
)
"""Every environment of every example, and the promtool acceptance spec."""


def all_rules(system: ir.System) -> list[dict[str, Any]]:
    return [r for g in rules.prometheus_rules(system)["groups"] for r in g["rules"]]


# --- presets (schema/runtimes.py and presets.py) -------------------------------------------------


def test_runtime_presets_cover_the_language() -> None:
    """Every runtime the schema accepts has a preset, and no preset is unreachable."""
    field = models.Model.model_fields["runtime"].annotation
    assert set(typing.get_args(field)) == set(runtimes.RUNTIMES)


@pytest.mark.parametrize("preset", runtimes.RUNTIMES.values(), ids=lambda p: p.name)
def test_preset_facts_are_consistent(preset: runtimes.Runtime) -> None:
    assert preset.sources, "every preset names where its facts come from"
    assert (preset.latency is None) == (preset.no_latency_reason is not None)
    if preset.latency is not None:
        bounds = preset.latency.boundaries_ms
        assert list(bounds) == sorted(set(bounds)) and bounds[0] > 0


@pytest.mark.parametrize(
    ("runtime", "seconds"),
    [("generic", 0.1), ("generic", 10.0), ("generic", 2.5), ("kserve", 0.1), ("kserve", 100.0)],
)
def test_bucket_boundaries_are_accepted(runtime: str, seconds: float) -> None:
    assert runtimes.latency_threshold_problem(runtime, seconds) is None


def test_a_threshold_between_buckets_is_rejected_with_the_allowed_values() -> None:
    problem = runtimes.latency_threshold_problem("generic", 0.03)
    assert problem is not None
    assert "30ms is not a bucket boundary" in problem
    assert "5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2500ms, 5s, 10s" in problem
    kserve = runtimes.latency_threshold_problem("kserve", 0.025)
    assert kserve is not None and "20ms, 40ms" in kserve and "1m40s" in kserve


def test_triton_has_no_latency_sli_and_says_why() -> None:
    problem = runtimes.latency_threshold_problem("triton", 0.1)
    assert problem is not None and "no latency SLI" in problem and "ratio" in problem
    with pytest.raises(presets.UnsupportedSliError):
        presets.latency("triton", "m", "ns", 0.1)


def test_latency_buckets_match_go_and_python_label_formats() -> None:
    one_second = presets.latency("generic", "m", "ns", 1.0)
    assert 'le=~"1(\\\\.0)?"' in one_second.errors_at("5m")
    assert 'le="0.25"' in presets.latency("generic", "m", "ns", 0.25).errors_at("5m")
    kserve = presets.latency("kserve", "m", "ns", 0.1)
    assert "revision_app_request_latencies_bucket" in kserve.errors_at("5m")
    assert 'le=~"100(\\\\.0)?"' in kserve.errors_at("5m")
    assert 'service_name="m-predictor"' in kserve.errors_at("5m")


def test_availability_selects_one_model_in_one_namespace() -> None:
    generic = presets.availability("generic", "scorer", "fraud")
    assert generic.errors_at("1h") == (
        'sum(rate(http_requests_total{namespace="fraud",job="scorer",code=~"5.."}[1h]))'
    )
    triton = presets.availability("triton", "scorer", "fraud")
    assert "nv_inference_request_failure" in triton.errors_at("5m")
    assert triton.presence_at("5m").startswith("sum(rate(nv_inference_request_success")


# --- allow-list (docs/quality.md row 20) ------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ['x"} or vector(1) #', "{{ .Value }}", "a\nb", "a b", "", 'q"', "a\\", "${x}"]
)
def test_unsafe_values_never_reach_promql(value: str) -> None:
    with pytest.raises(promql.UnsafeValueError):
        promql.safe_value(value)
    with pytest.raises(promql.UnsafeValueError):
        promql.label_selector({"slo": value})


def test_an_unsafe_name_in_the_model_stops_the_emitter() -> None:
    system = acceptance()
    sla = system.slas["checkout-availability"]
    hostile = dataclasses.replace(sla, owner='team"} or vector(1)')
    with pytest.raises(promql.UnsafeValueError):
        rules.sla_group(system, hostile)


def test_regex_alternatives_escape_dots() -> None:
    assert promql.regex_alternatives(["f.one", "b"]) == "b|f\\\\.one"


# --- budget maths --------------------------------------------------------------------------------


def test_error_budget_is_exact() -> None:
    assert slo.error_budget(99.95) == Decimal("0.0005")
    assert slo.error_budget(99.9) == Decimal("0.001")


def test_workbook_factors_for_30_days() -> None:
    found = {(t.pair.long, t.pair.short): t for t in slo.thresholds(99.9, 30 * 86400)}
    assert {k: slo.number(t.factor) for k, t in found.items()} == {
        ("1h", "5m"): "14.4",
        ("6h", "30m"): "6",
        ("1d", "2h"): "3",
        ("3d", "6h"): "1",
    }
    assert slo.number(found[("1h", "5m")].ratio) == "0.0144"


@pytest.mark.parametrize("days", [7, 14, 28, 30, 90])
def test_scaled_factors_keep_the_budget_fractions(days: int) -> None:
    """factor x long window / SLO window = the workbook's budget fraction (unless floored at 1)."""
    window = days * 86400
    for threshold in slo.thresholds(99.9, window):
        pair = threshold.pair
        spent = threshold.factor * slo.WINDOW_SECONDS[pair.long] / window
        if threshold.factor > 1:
            assert abs(spent - pair.budget_fraction) < Decimal("0.0001")
        else:
            assert spent >= pair.budget_fraction - Decimal("0.0001")


def test_pairs_longer_than_the_window_are_dropped() -> None:
    assert [t.pair.long for t in slo.thresholds(99, 86400)] == ["1h", "6h", "1d"]
    assert slo.thresholds(99, 1800) == ()


# --- rules ---------------------------------------------------------------------------------------


@over_systems
def test_rules_are_well_formed(system: ir.System) -> None:
    groups = rules.prometheus_rules(system)["groups"]
    assert [g["name"] for g in groups] == sorted({g["name"] for g in groups})
    assert len(groups) == len(system.slas)
    for rule in (r for g in groups for r in g["rules"]):
        promql_parser.parse(rule["expr"])
        assert "{{" not in rule["expr"], "no template may reach a query"
        if "record" in rule:
            assert RECORD_NAME.match(rule["record"]), rule["record"]
            assert "window" not in rule["labels"]
            assert {"slo", "system", "namespace"} <= set(rule["labels"])


@over_systems
def test_every_alert_is_labelled_and_annotated_safely(system: ir.System) -> None:
    alerts = [r for r in all_rules(system) if "alert" in r]
    for alert in alerts:
        labels = alert["labels"]
        assert {"slo", "system", "namespace", "severity", "team"} <= set(labels)
        assert labels["severity"] in ("page", "ticket")
        sla = system.slas[labels["slo"]]
        if sla.subject_kind != "none":
            assert labels[names.SUBJECT_LABEL[sla.subject_kind]] == sla.subject
        for text in alert["annotations"].values():
            templates = re.findall(r"\{\{.*?\}\}", text)
            assert set(templates) <= {
                "{{ $value | humanizePercentage }}",
                "{{ $value }}",
                "{{ $labels.feature }}",
            }
        assert alert["annotations"]["runbook_url"].startswith("https://")
    absent = {r["labels"]["slo"] for r in alerts if r["alert"] == names.ABSENT}
    assert absent == set(system.slas), "one absent-data alert per SLA"


def test_no_spec_free_text_reaches_the_outputs() -> None:
    """Descriptions of the examples (free text) appear in no monitoring file."""
    for path in EXAMPLES:
        for system in systems(path).values():
            texts = " ".join(emit.monitoring_files(system).values())
            for sla in system.slas.values():
                if sla.description:
                    assert sla.description not in texts
            for model in system.models.values():
                if model.description:
                    assert model.description not in texts


def test_ratio_windows_use_each_window_and_guard_zero_traffic() -> None:
    system = systems(REPO / "examples" / "llm-rag")["prod"]
    group = rules.sla_group(system, system.slas["answers-cited"])
    by_name = {r["record"]: r["expr"] for r in group["rules"] if "record" in r}
    for window in slo.RAW_WINDOWS:
        expr = by_name[names.ratio(window)]
        assert f"[{window}]" in expr and "{{window}}" not in expr
        assert expr.endswith("> 0)"), "0/0 must give no sample"
    assert "sum_over_time" in by_name[names.ratio("3d")]
    assert "[7d]" in by_name[names.SLO_WINDOW_RATIO], "the SLO window comes from recorded rates"
    assert "rate(" not in by_name[names.SLO_WINDOW_RATIO]


def test_time_slis_average_a_recorded_bool() -> None:
    system = acceptance()
    group = rules.sla_group(system, system.slas["orders-fresh"])
    exprs = {r["record"]: r["expr"] for r in group["rules"] if "record" in r}
    assert exprs[names.BAD_TIME] == (
        'time() - max(mlplane_data_last_success_timestamp_seconds{namespace="shop",'
        'data_source="orders"}) > bool 300'
    )
    assert exprs[names.ratio("1h")].startswith("avg_over_time(slo:sli_error:bool{")


def test_drift_has_an_slo_and_a_direct_threshold_alert() -> None:
    system = acceptance()
    group = rules.sla_group(system, system.slas["checkout-drift"])
    drift = next(r for r in group["rules"] if r.get("alert") == names.DRIFT)
    assert drift["expr"] == (
        'max by (feature) (mlplane_model_drift_score{namespace="shop",model="checkout",'
        'feature=~"amount|country"}) > 0.2'
    )
    assert drift["for"] == "15m"


def test_rules_are_deterministic() -> None:
    for _, system in SYSTEMS:
        assert rules.rules_yaml(system) == rules.rules_yaml(system)
        assert emit.monitoring_files(system) == emit.monitoring_files(system)


def test_prometheus_rule_spec_holds_the_same_groups() -> None:
    system = acceptance()
    spec = emit.prometheus_rule_spec(system)
    assert spec == rules.prometheus_rules(system)
    spec["groups"].clear()
    assert rules.prometheus_rules(system)["groups"], "the caller gets its own copy"


# --- generated rule tests -----------------------------------------------------------------------


@over_systems
def test_every_sla_gets_an_incident_a_healthy_and_a_no_data_test(system: ir.System) -> None:
    data = rule_tests.rule_tests(system)
    assert data["rule_files"] == ["rules.yaml"]
    queries = " ".join(c["expr"] for g in data["tests"] for c in g["promql_expr_test"])
    for sla in system.slas:
        assert f'slo="{sla}"' in queries
        kinds = {s.kind for s in rule_tests.scenarios(system, system.slas[sla])}
        assert kinds == {"incident", "healthy", "no data"}, sla


def test_slas_reading_the_same_series_share_one_incident() -> None:
    system = acceptance()
    base = system.slas["checkout-availability"]
    weekly = dataclasses.replace(
        base, name="checkout-weekly", objective=99.0, window_seconds=604800.0
    )
    both = dataclasses.replace(system, slas={**system.slas, "checkout-weekly": weekly})
    incidents = [s for s in rule_tests.incidents(both) if s.sla.name.startswith("checkout-")]
    shared = [
        dict(s.series)
        for s in incidents
        if s.sla.subject_kind == "model" and "http" in str(s.series)
    ]
    assert len(shared) == 2 and shared[0] == shared[1], "one incident, identical values"
    groups = rule_tests.rule_tests(both)["tests"]
    assert len([g for g in groups if "incident" in g["name"]]) == 1


def test_a_system_without_slas_still_emits_valid_files() -> None:
    bare = dataclasses.replace(acceptance(), slas={})
    files = emit.monitoring_files(bare)
    assert yaml.safe_load(files["monitoring/rules.yaml"]) == {"groups": []}
    assert yaml.safe_load(files["monitoring/rules.test.yaml"])["tests"] == []
    assert json.loads(files["monitoring/dashboard.json"])["panels"]


def test_incident_timing_follows_the_budget_maths() -> None:
    page = tuple(t for t in slo.thresholds(99.9, 30 * 86400) if t.pair.severity == "page")
    minute = rule_tests.crossing(page, rule_tests.Fraction(1, 10), 360, time_sli=False)
    assert minute == 9, "0.1 x d / 60 > 0.0144 first at d = 9"


def test_batches_never_share_a_series() -> None:
    system = systems(REPO / "examples" / "recsys-gpu")["prod"]
    for group in rule_tests.rule_tests(system)["tests"]:
        series = [s["series"] for s in group["input_series"]]
        assert len(series) == len(set(series))


@pytest.mark.parametrize(
    ("errors", "total", "solvable"),
    [
        ('sum(rate(a_total{job="x",code=~"5.."}[5m]))', 'sum(rate(a_total{job="x"}[5m]))', True),
        ('sum(rate(c[5m])) - sum(rate(b{le="2.5"}[5m]))', "sum(rate(c[5m]))", True),
        ("sum(rate(a[5m])) or vector(0)", "sum(rate(b[5m]))", False),
        ("sum(increase(a[5m]))", "sum(increase(b[5m]))", False),
    ],
)
def test_custom_ratios_are_solved_when_linear(errors: str, total: str, solvable: bool) -> None:
    model = synth.ratio_model(errors, total)
    assert (model is not None) == solvable
    if model is not None:
        for ratio in (rule_tests.Fraction(0), rule_tests.Fraction(1, 10)):
            rates = model.rates(ratio)
            assert rates is not None and min(rates) >= 0
            assert sum(a * r for a, r in zip(model.a, rates, strict=True)) == ratio
            assert sum(b * r for b, r in zip(model.b, rates, strict=True)) == 1


# --- dashboard -----------------------------------------------------------------------------------

DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time", "version"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "id": {"type": "null"},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "required": ["list"]},
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "type": {"enum": ["row", "timeseries", "bargauge", "stat", "table"]},
                    "gridPos": {
                        "type": "object",
                        "required": ["h", "w", "x", "y"],
                        "properties": {
                            "w": {"type": "integer", "minimum": 1, "maximum": 24},
                            "x": {"type": "integer", "minimum": 0, "maximum": 23},
                        },
                    },
                    "targets": {
                        "type": "array",
                        "items": {"type": "object", "required": ["expr", "refId", "datasource"]},
                    },
                },
            },
        },
    },
}


@over_systems
def test_dashboard_is_valid(system: ir.System) -> None:
    text = dashboards.dashboard_json(system)
    model = json.loads(text)
    jsonschema.validate(model, DASHBOARD_SCHEMA)
    panels = model["panels"]
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs))
        for target in panel.get("targets", []):
            promql_parser.parse(target["expr"].replace("$__rate_interval", "5m"))
    titles = {p["title"] for p in panels}
    assert "Error budget remaining" in titles and "SLO attainment over each SLO's window" in titles
    assert text == dashboards.dashboard_json(system)


def test_dashboard_uid_is_stable_and_per_environment() -> None:
    fraud = systems(REPO / "examples" / "fraud-scoring")
    uids = {dashboards.dashboard_uid(system) for system in fraud.values()}
    assert len(uids) == len(fraud)
    expected = hashlib.sha256(b"fraud-scoring\0prod").hexdigest()[:16]
    assert dashboards.dashboard_uid(fraud["prod"]) == f"mlplane-{expected}"


def test_dashboard_shows_every_ml_signal_of_the_recommender() -> None:
    system = systems(REPO / "examples" / "recsys-gpu")["prod"]
    rows = [p["title"] for p in dashboards.dashboard(system)["panels"] if p["type"] == "row"]
    assert rows == ["Service level objectives", "Latency", "Data freshness", "Model drift"]


# --- alertmanager --------------------------------------------------------------------------------

_CREDENTIAL_KEYS = {
    "api_url",
    "routing_key",
    "service_key",
    "auth_password",
    "auth_secret",
    "api_key",
}

ALERTMANAGER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["route", "receivers"],
    "additionalProperties": False,
    "properties": {
        "global": {"type": "object"},
        "route": {"$ref": "#/$defs/route"},
        "inhibit_rules": {"type": "array"},
        "receivers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "slack_configs": {
                        "type": "array",
                        "items": {"required": ["api_url_file", "channel"]},
                    },
                    "pagerduty_configs": {
                        "type": "array",
                        "items": {"required": ["routing_key_file"]},
                    },
                    "email_configs": {"type": "array", "items": {"required": ["to"]}},
                },
            },
        },
    },
    "$defs": {
        "route": {
            "type": "object",
            "required": ["receiver"],
            "properties": {
                "receiver": {"type": "string"},
                "matchers": {
                    "type": "array",
                    "items": {"type": "string", "pattern": '^[a-z_]+="[^"]+"$'},
                },
                "routes": {"type": "array", "items": {"$ref": "#/$defs/route"}},
            },
        }
    },
}


def _walk(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(k, v) for k, v in value.items()] + [p for v in value.values() for p in _walk(v)]
    if isinstance(value, list):
        return [p for v in value for p in _walk(v)]
    return []


@over_systems
def test_alertmanager_config_is_valid_and_credential_free(system: ir.System) -> None:
    config = yaml.safe_load(alertmanager.alertmanager_yaml(system))
    jsonschema.validate(config, ALERTMANAGER_SCHEMA)
    defined = {r["name"] for r in config["receivers"]}
    used = {config["route"]["receiver"], *(r["receiver"] for r in config["route"]["routes"])}
    assert used <= defined
    for key, value in _walk(config):
        assert key not in _CREDENTIAL_KEYS, f"credential {key} inline"
        if key.endswith("_file"):
            assert value.startswith(alertmanager.SECRETS_DIR + "/")


def test_routes_follow_the_spec_in_order() -> None:
    system = systems(REPO / "examples" / "recsys-gpu")["prod"]
    routes = alertmanager.alertmanager_config(system)["route"]["routes"]
    assert [(r["receiver"], r["matchers"]) for r in routes] == [
        ("recs-oncall", ['team="recs-ml"', 'severity="page"']),
        ("recs-channel", ['team="recs-ml"', 'severity="ticket"']),
        ("storefront-data-mail", ['team="storefront-data"']),
    ]


def test_without_a_default_receiver_alerts_are_reported_as_unrouted() -> None:
    system = acceptance()
    bare = dataclasses.replace(system, alerting=ir.Alerting({}, (), None))
    config = alertmanager.alertmanager_config(bare)
    assert config["route"]["receiver"] == alertmanager.UNROUTED
    problems = checks.monitoring_problems(bare)
    assert {p.code for p in problems} == {"monitoring-unrouted"}
    assert all(p.origin.location.line > 0 for p in problems)


# --- located problems -----------------------------------------------------------------------------


def test_problems_are_located_at_the_sla() -> None:
    system = acceptance()
    sla = system.slas["checkout-availability"]
    short = dataclasses.replace(sla, window_seconds=1800.0)
    latency = dataclasses.replace(
        sla, indicator=ir.Indicator("latency", latency_threshold_seconds=0.03)
    )
    low = dataclasses.replace(sla, objective=80.0)
    bad = dataclasses.replace(system, slas={"a": short, "b": latency, "c": low})
    found = [(p.code, p.severity, p.message) for p in checks.monitoring_problems(bad)]
    assert [f[:2] for f in found] == [
        ("monitoring-unsupported", "warning"),
        ("indicator-mismatch", "error"),
        ("monitoring-unsupported", "warning"),
    ]
    assert "shorter than 1h" in found[0][2] and "no page can fire" in found[2][2]
    assert all(p.origin == sla.origin for p in checks.monitoring_problems(bad))
    assert checks.monitoring_problems(system) == ()


# --- emitted files ---------------------------------------------------------------------------------


def test_monitoring_files_have_headers_and_parse() -> None:
    files = emit.monitoring_files(acceptance())
    assert sorted(files) == [
        "monitoring/alertmanager.yaml",
        "monitoring/dashboard.json",
        "monitoring/rules.test.yaml",
        "monitoring/rules.yaml",
    ]
    for path, text in files.items():
        if path.endswith(".json"):
            json.loads(text)
            continue
        first = text.splitlines()[0]
        assert first.startswith("# Generated by mlplane ") and first.endswith("DO NOT EDIT.")
        assert yaml.safe_load(text)
        assert text.isascii() and "/work/" not in text and "\\" not in first


# --- the YAML writer (property-tested for any data in tests/test_yamltext.py) ---------------------

from mlplane.compiler.core import yamltext  # noqa: E402


@pytest.mark.parametrize("document", ["rules", "tests", "alertmanager"])
def test_yaml_writer_round_trips_the_outputs(document: str) -> None:
    for _, system in SYSTEMS:
        data = {
            "rules": rules.prometheus_rules,
            "tests": rule_tests.rule_tests,
            "alertmanager": alertmanager.alertmanager_config,
        }[document](system)
        assert yaml.safe_load(yamltext.dump(data)) == data


_DIGEST = """
import hashlib
from pathlib import Path
from mlplane.compiler.build.pipeline import compile_spec
from mlplane.targets.monitoring import monitoring_files
digest = hashlib.sha256()
for path in {paths!r}:
    for env, system in sorted(compile_spec(Path(path)).systems.items()):
        for name, text in sorted(monitoring_files(system).items()):
            digest.update(f"{{path}}/{{env}}/{{name}}".encode() + b"\\0" + text.encode() + b"\\0")
print(digest.hexdigest())
"""


@pytest.mark.slow
def test_output_is_identical_across_hash_seeds() -> None:
    """Byte-identical output whatever PYTHONHASHSEED (docs/quality.md, whole output)."""
    import subprocess
    import sys

    paths = [str(p) for p in [*EXAMPLES, SPEC]]
    script = _DIGEST.format(paths=paths)
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
        ).stdout.strip()
        for seed in ("0", "1", "4242")
    }
    assert len(digests) == 1


@pytest.mark.parametrize(("label", "system"), SYSTEMS, ids=[label for label, _ in SYSTEMS])
def test_the_rule_file_is_the_same_whoever_wrote_its_groups(label: str, system: ir.System) -> None:
    """In a build the rule file takes each group's text that the manifests had written (both key
    orders at once) and writes the others itself (its own order only): every mix gives the bytes
    of the rule file written alone."""
    from mlplane.compiler.core import canonical

    alone = rules.rules_yaml(system)
    computed = _groups_by_sla(system)
    with canonical.shared_fragments():
        nothing_shared = rules.rules_yaml(system, computed)
    with canonical.shared_fragments():
        for index, group in enumerate(computed.values()):
            if index % 2 == 0:  # the manifests wrote every other group
                rules.shared_group(group)
        half_shared = rules.rules_yaml(system, computed)
    assert alone == nothing_shared == half_shared, label


def _groups_by_sla(system: ir.System) -> dict[str, dict[str, Any]]:
    """Each SLA's rule group by group name, as the lowering computes it (the graph's, in a
    build)."""
    return {
        rules.group_name(system, sla): rules.sla_group(system, sla)
        for _, sla in sorted(system.slas.items())
    }
