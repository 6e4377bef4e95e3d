"""The drift job on the targets: the Kubernetes CronJob that runs ``python -m mlplane.drift``,
its refusals at their spec lines, the aws target's warning, and the proof that what the job
publishes is what the generated SLO rules read: the job runs with the CronJob's own arguments
on local samples, and its exposition (a textfile, or the real Pushgateway's /metrics) feeds a
promtool scenario in which the drift alert fires.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics
from mlplane.targets.kubernetes import codes, drift, emit_manifests, lower
from mlplane.targets.monitoring import emit, names
from tests.judges import checkov_failed, checkov_kubernetes
from tests.specs import BASE, DIGEST, compile_text
from tests.test_drift_job import pushgateway, scrape, shifted_samples
from tests.test_kubernetes_network import compiled, lowered

__all__ = ["pushgateway"]  # the fixture, shared with the job's own tests

DRIFT_IMAGE = f"ghcr.io/acme/mlplane-drift@{DIGEST}"
SAMPLES = """\
  reference-sample:
    type: objectStore
    uri: s3://acme-drift/reference/
    classification: pii
    derivedFrom: [events]
  scoring-inputs:
    type: objectStore
    uri: s3://acme-drift/inputs/
    classification: pii
    derivedFrom: [events]
"""
JOB = f"""\
    monitoring:
      drift:
        method: psi
        threshold: 0.2
        window: 1h
        features: [amount, country]
        job:
          image: {DRIFT_IMAGE}
          reference: reference-sample
          current: scoring-inputs
          timestampColumn: ts
          pushgateway: http://pushgateway.monitoring.svc:9091
          resources: {{cpu: 500m, memory: 1Gi}}
"""
DRIFT_SLA = """\
  scorer-drift:
    model: scorer
    objective: 99
    window: 7d
    indicator: {drift: {threshold: 0.2}}
"""


def spec(job: str = JOB, *, deny: bool = True) -> str:
    text = BASE.replace(
        "    inputs: [features]\n",
        "    inputs: [features, reference-sample, scoring-inputs]\n" + job,
    )
    text = text.replace("models:\n  scorer:", SAMPLES + "models:\n  scorer:", 1)
    text = text.replace("slas:\n", "slas:\n" + DRIFT_SLA, 1)
    return text + f"security:\n  network:\n    defaultDeny: {str(deny).lower()}\n"


def objects(tmp_path: Path, text: str, env: str = "dev") -> list[dict[str, Any]]:
    found, _ = lowered(compiled(tmp_path, text, env))
    return found


def named(found: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in found if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, [o["metadata"]["name"] for o in found if o["kind"] == kind]
    return matches[0]


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def problems(tmp_path: Path, text: str, env: str = "dev") -> list[Diagnostic]:
    """Compile diagnostics, then (when the spec compiles) the environment's lowering."""
    result = compile_text(tmp_path, text)
    found = list(result.diagnostics)
    if result.ok:
        lowered_with = Diagnostics()
        target = result.systems[env].environment.target
        if target == "aws":
            from mlplane.targets.aws import lower as aws_lower

            aws_lower(result.systems[env], lowered_with)
        else:
            lower(result.systems[env], lowered_with)
        found += list(lowered_with)
    return found


# --- the CronJob -------------------------------------------------------------------------------


def test_the_cron_job_runs_the_job_once_per_window_on_the_hardened_pod(tmp_path: Path) -> None:
    found = objects(tmp_path, spec())
    job = named(found, "CronJob", "scorer-drift")
    assert job["spec"]["schedule"] == "0 * * * *"  # window: 1h
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["spec"]["timeZone"] == "Etc/UTC"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == DRIFT_IMAGE
    assert container["command"] == ["python", "-m", "mlplane.drift"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert pod["serviceAccountName"] == "scorer-drift"
    assert pod["automountServiceAccountToken"] is False
    # The model's data access and nothing more: no secret, no ConfigMap, only its arguments.
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert container["env"] == []
    assert container["args"] == [
        "--namespace", "demo-dev", "--model", "scorer", "--method", "psi",
        "--feature", "amount", "--feature", "country",
        "--reference", "s3://acme-drift/reference/", "--current", "s3://acme-drift/inputs/",
        "--format", "parquet", "--max-rows", "1000000",
        "--timestamp-column", "ts", "--window-seconds", "3600",
        "--pushgateway", "http://pushgateway.monitoring.svc:9091",
    ]  # fmt: skip
    account = named(found, "ServiceAccount", "scorer-drift")
    assert account["automountServiceAccountToken"] is False


def test_egress_reaches_the_two_samples_and_the_pushgateway_only(tmp_path: Path) -> None:
    policy = named(objects(tmp_path, spec()), "NetworkPolicy", "scorer-drift")
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "scorer",
        "app.kubernetes.io/component": "drift",
    }
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"]
    egress = policy["spec"]["egress"]
    assert [rule["ports"] for rule in egress] == [
        [{"protocol": "TCP", "port": 443}],  # s3://acme-drift (both samples: one rule)
        [{"protocol": "TCP", "port": 9091}],
    ]
    assert egress[1]["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    # The model's feature store is not reachable from the drift job.
    assert all(rule["ports"][0]["port"] != 6566 for rule in egress)


def test_without_default_deny_there_is_no_policy(tmp_path: Path) -> None:
    found = objects(tmp_path, spec(deny=False))
    assert not [o for o in found if o["kind"] == "NetworkPolicy"]
    named(found, "CronJob", "scorer-drift")


def test_an_explicit_schedule_wins(tmp_path: Path) -> None:
    text = spec(
        JOB.replace("          timestampColumn: ts\n", "          schedule: '15 6 * * *'\n")
    )
    job = named(objects(tmp_path, text), "CronJob", "scorer-drift")
    assert job["spec"]["schedule"] == "15 6 * * *"
    assert (
        "--timestamp-column"
        not in job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    )


@pytest.mark.parametrize(
    ("window", "schedule"),
    [
        (300, "*/5 * * * *"),
        (900, "*/15 * * * *"),
        (3600, "0 * * * *"),
        (6 * 3600, "0 */6 * * *"),
        (86400, "0 0 * * *"),
        (7 * 86400, "0 0 * * 0"),
        (7 * 60, None),
        (5 * 3600, None),
        (3 * 86400, None),
        (30, None),
        (90.5, None),
    ],
)
def test_a_window_runs_on_the_cron_schedule_that_repeats_it(
    window: float, schedule: str | None
) -> None:
    assert drift.schedule_of(window) == schedule


# --- refusals, at their lines ------------------------------------------------------------------


def test_a_sample_outside_the_models_inputs_is_refused_at_its_line(tmp_path: Path) -> None:
    text = spec().replace(
        "    inputs: [features, reference-sample, scoring-inputs]\n",
        "    inputs: [features, scoring-inputs]\n",
    )
    (found,) = [d for d in problems(tmp_path, text) if d.code == "contradiction"]
    assert "not one of the model's inputs" in found.message
    assert found.location is not None
    assert found.location.line == line_of(text, "          reference: reference-sample")


def test_an_undefined_sample_is_refused_at_its_line(tmp_path: Path) -> None:
    text = spec().replace("current: scoring-inputs", "current: scoring-input")
    (found,) = [d for d in problems(tmp_path, text) if d.code == "ref-undefined"]
    assert "did you mean 'scoring-inputs'" in found.message
    assert found.location is not None
    assert found.location.line == line_of(text, "          current: scoring-input")


def test_a_sample_that_is_no_object_store_is_refused_at_its_line(tmp_path: Path) -> None:
    text = spec().replace(
        "    inputs: [features, reference-sample, scoring-inputs]\n",
        "    inputs: [features, reference-sample, scoring-inputs, events]\n",
    )
    text = text.replace("current: scoring-inputs", "current: events")
    (found,) = [d for d in problems(tmp_path, text) if d.code == codes.DRIFT_JOB]
    assert "cannot read data source 'events' (stream at a kafka:// URI)" in found.message
    assert found.location is not None
    assert found.location.line == line_of(text, "          current: events")


def test_a_window_cron_cannot_repeat_needs_a_schedule(tmp_path: Path) -> None:
    text = spec().replace("        window: 1h\n", "        window: 3d\n")
    (found,) = [d for d in problems(tmp_path, text) if d.code == codes.DRIFT_JOB]
    assert "no cron schedule" in found.message
    assert found.location is not None
    assert found.location.line == line_of(text, "        window: 3d")


def test_a_tagged_job_image_is_refused_in_production(tmp_path: Path) -> None:
    text = spec().replace(DRIFT_IMAGE, "ghcr.io/acme/mlplane-drift:1.0")
    (tmp_path / "mlplane.yaml").write_text(text, encoding="utf-8")
    result = compile_spec(tmp_path / "mlplane.yaml", ["prod"], policies=True)
    (found,) = [d for d in result.diagnostics if d.code == "models.image-digest"]
    assert "drift job image of model 'scorer'" in found.message
    assert found.location is not None
    assert found.location.line == line_of(text, "          image: ghcr.io/acme/mlplane-drift:1.0")


def test_the_aws_target_says_it_generates_no_drift_job(tmp_path: Path) -> None:
    from mlplane.targets.aws import codes as aws_codes

    text = spec().replace(
        "  prod:\n    target: kubernetes\n",
        "  prod:\n    target: aws\n    aws: {region: eu-west-1, accountId: '123456789012'}\n",
    )
    (found,) = [
        d for d in problems(tmp_path, text, "prod") if d.code == aws_codes.DRIFT_JOB_NOT_GENERATED
    ]
    assert found.severity.value == "warning"
    assert found.location is not None
    assert found.location.line == line_of(text, "        job:")


# --- judges ------------------------------------------------------------------------------------


def write_manifests(tmp_path: Path, text: str) -> Path:
    system = compiled(tmp_path, text, "prod")
    graph = lower(system, Diagnostics())
    assert graph is not None
    root = tmp_path / "out"
    for name, body in emit_manifests(system, graph).items():
        if name.endswith(".yaml"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(body, encoding="utf-8")
    return root


def drift_objects(root: Path) -> list[dict[str, Any]]:
    return [
        d
        for path in sorted(root.rglob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if d and d["metadata"].get("name") == "scorer-drift"
    ]


@pytest.mark.judge
def test_the_drift_objects_pass_kubernetes_validate(
    tmp_path: Path, kubernetes_validate: str
) -> None:
    kept = tmp_path / "drift.yaml"
    documents = drift_objects(write_manifests(tmp_path, spec()))
    assert sorted(d["kind"] for d in documents) == ["CronJob", "NetworkPolicy", "ServiceAccount"]
    kept.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    done = subprocess.run(
        [kubernetes_validate, "--strict", str(kept)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cronjob/scorer-drift" in (done.stdout + done.stderr).lower()


@pytest.mark.judge
def test_the_drift_cron_job_passes_checkov(tmp_path: Path, checkov: str) -> None:
    kept = tmp_path / "checked"
    kept.mkdir()
    documents = drift_objects(write_manifests(tmp_path, spec()))
    (kept / "drift.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    reports = checkov_kubernetes(checkov, kept)
    assert checkov_failed(reports) == []
    judged = [
        p for r in reports for p in r["results"]["passed_checks"] if "CronJob" in p["resource"]
    ]
    assert len(judged) >= 40, "checkov judged too little of the CronJob"


# --- what the job publishes is what the rules read (promtool) ----------------------------------


def generated_arguments(tmp_path: Path) -> list[str]:
    job = named(objects(tmp_path, spec()), "CronJob", "scorer-drift")
    return list(job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])


def local(arguments: list[str], samples: Path, output: list[str]) -> list[str]:
    """The CronJob's arguments with the samples on a local path and another output."""
    swapped = {
        "--reference": str(samples / "reference"),
        "--current": str(samples / "current"),
        "--bins": "4",
    }
    result: list[str] = []
    pairs = list(zip(arguments[::2], arguments[1::2], strict=True))
    for flag, value in pairs:
        if flag != "--pushgateway":
            result += [flag, swapped.get(flag, value)]
    return [*result, "--bins", "4", *output]


def series(exposition: str) -> list[dict[str, str]]:
    """The exposition's drift samples as promtool input series, constant for two hours."""
    found = []
    for family in text_string_to_metric_families(exposition):
        if family.name != "mlplane_model_drift_score":
            continue
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()) if v)
            found.append(
                {"series": f"{family.name}{{{labels}}}", "values": f"{sample.value}+0x120"}
            )
    return found


def drift_scenario(promtool: str, tmp_path: Path, exposition: str) -> None:
    system = compiled(tmp_path, spec(), "dev")
    folder = tmp_path / "rules"
    for relative, text in emit.monitoring_files(system).items():
        if relative.startswith("monitoring/") and relative.endswith("rules.yaml"):
            folder.mkdir(exist_ok=True)
            (folder / Path(relative).name).write_text(text, encoding="utf-8")
    firing = f'count(ALERTS{{alertname="{names.DRIFT}",alertstate="firing",feature="amount"}})'
    quiet = f'count(ALERTS{{alertname="{names.DRIFT}",alertstate="firing",feature="country"}})'
    scenario = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "the drift job's scores make the drift alert fire after 15 minutes",
                "interval": "1m",
                "input_series": series(exposition),
                "promql_expr_test": [
                    {"expr": firing, "eval_time": "14m", "exp_samples": []},
                    {"expr": firing, "eval_time": "16m", "exp_samples": [{"value": 1}]},
                    {"expr": quiet, "eval_time": "60m", "exp_samples": []},
                ],
            }
        ],
    }
    (folder / "drift.test.yaml").write_text(yaml.safe_dump(scenario), encoding="utf-8")
    done = subprocess.run(
        [promtool, "test", "rules", "--", "drift.test.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def run_job(arguments: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mlplane.drift", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.judge
def test_the_textfile_makes_the_generated_drift_alert_fire(promtool: str, tmp_path: Path) -> None:
    shifted_samples(tmp_path)
    textfile = tmp_path / "drift.prom"
    run_job(local(generated_arguments(tmp_path), tmp_path, ["--textfile", str(textfile)]))
    # amount scores 0.228 (above 0.2, the quartile PSI of tests/test_drift_job.py), country 0.
    drift_scenario(promtool, tmp_path, textfile.read_text(encoding="utf-8"))


@pytest.mark.judge
def test_the_pushgateways_metrics_make_the_generated_drift_alert_fire(
    promtool: str, tmp_path: Path, pushgateway: str
) -> None:
    shifted_samples(tmp_path)
    run_job(local(generated_arguments(tmp_path), tmp_path, ["--pushgateway", pushgateway]))
    drift_scenario(promtool, tmp_path, scrape(pushgateway))
