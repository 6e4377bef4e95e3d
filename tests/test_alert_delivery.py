"""Alerts reach a human: for every example and environment, each alert rule's labels route
(``amtool config routes test`` on the generated ``monitoring/alertmanager.yaml``) to a receiver
whose credentials exist in the build output, and nothing outside production pages.

* Kubernetes: every secret the receiver reads is provided (an ExternalSecret or a Secret named
  after it, or an existing ``k8s://`` Secret) in the namespace the Alertmanager reads it from:
  the AlertmanagerConfig's namespace by default, the monitoring namespace in ``file`` mode; the
  AlertmanagerConfig carries the receiver.
* AWS: an alarm of the alert's severity publishes to the receiver's topic, and the receiver is
  subscribed to it (an SNS subscription, or an AWS Chatbot configuration on the topic).
* ``amtool check-config`` accepts the generated file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplane.targets.monitoring import monitoring_files
from tests.judges import REPO_ROOT
from tests.test_monitoring import systems

MLPLANE = REPO_ROOT / ".venv" / "bin" / "mlplane"
EXAMPLES = sorted(p for p in (REPO_ROOT / "examples").iterdir() if p.is_dir())
PAGING_KEYS = ("pagerduty_configs",)


def environments(example: Path) -> list[tuple[str, str, bool]]:
    """(name, target, production) of each environment the example declares."""
    out = []
    for path in sorted(example.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        for env, entry in sorted((spec.get("environments") or {}).items()):
            production = entry.get("production")
            if production is None:
                production = env in ("prod", "production")
            out.append((env, entry["target"], bool(production)))
    return out


CASES = [(example, *env) for example in EXAMPLES for env in environments(example)]


@pytest.fixture(scope="module", params=CASES, ids=[f"{c[0].name}-{c[1]}" for c in CASES])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str, bool]:
    example, env, target, production = request.param
    out = tmp_path_factory.mktemp(f"{example.name}-{env}")
    done = subprocess.run(
        [str(MLPLANE), "build", str(example), "--env", env, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    if target == "aws":
        # CloudWatch alarms, not Prometheus, alert here; their topics' subscribers follow the
        # same routing tree (alertmanager.delivery_routes), which amtool reads from this file.
        files = monitoring_files(systems(example)[env])
        for name in ("monitoring/rules.yaml", "monitoring/alertmanager.yaml"):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text(files[name], encoding="utf-8")
    return out, env, target, production


def alert_labels(out: Path) -> list[dict[str, str]]:
    rules = yaml.safe_load((out / "monitoring" / "rules.yaml").read_text(encoding="utf-8"))
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                found.append({"alertname": rule["alert"], **rule.get("labels", {})})
    return found


def route(amtool: str, config: Path, labels: dict[str, str]) -> list[str]:
    args = [f"{key}={value}" for key, value in sorted(labels.items())]
    done = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", "--", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().split(",")


def resources(out: Path) -> list[dict[str, Any]]:
    graph = json.loads((out / "resources.json").read_text(encoding="utf-8"))
    return [r for r in graph["resources"] if not r.get("component")]


def kubernetes_providers(out: Path) -> dict[tuple[str, str], str]:
    """(namespace, Secret name) -> kind of the object that provides it."""
    found = {}
    for resource in resources(out):
        body = resource["inputs"]
        if body.get("kind") == "Secret":
            found[(body["metadata"]["namespace"], body["metadata"]["name"])] = "Secret"
        elif body.get("kind") == "ExternalSecret":
            target = body["spec"]["target"]["name"]
            found[(body["metadata"]["namespace"], target)] = "ExternalSecret"
    return found


def file_secret_paths(receiver: dict[str, Any], config: dict[str, Any]) -> list[str]:
    paths = [c["api_url_file"] for c in receiver.get("slack_configs", [])]
    paths += [c["routing_key_file"] for c in receiver.get("pagerduty_configs", [])]
    if receiver.get("email_configs") and "smtp_auth_password_file" in config["global"]:
        paths.append(config["global"]["smtp_auth_password_file"])
    return paths


def check_kubernetes(out: Path, receiver: dict[str, Any], config: dict[str, Any]) -> None:
    providers = kubernetes_providers(out)
    bodies = [r["inputs"] for r in resources(out)]
    amc = [b for b in bodies if b.get("kind") == "AlertmanagerConfig"]
    namespace = amc[0]["metadata"]["namespace"] if amc else "monitoring"
    if amc:
        names = {r["name"] for r in amc[0]["spec"]["receivers"]}
        assert receiver["name"] in names
    for path in file_secret_paths(receiver, config):
        secret = path.split("/")[-2]  # /etc/alertmanager/secrets/<secret>/<key>
        assert (namespace, secret) in providers, (receiver["name"], path, sorted(providers))


def check_aws(out: Path, receiver: str, severity: str) -> None:
    """The receiver's topic exists, some alarm of ``severity`` publishes to it, and the
    receiver is subscribed to it."""
    topic = f"sns-{receiver}"
    published = wired = False
    for resource in resources(out):
        inputs = resource["inputs"]
        if resource["type"].startswith("aws:cloudwatch/") and resource["name"].endswith(
            f".{severity}"
        ):
            published |= {"$ref": topic, "$output": "arn"} in inputs.get("alarmActions", [])
        if resource["type"] == "aws:sns/topicSubscription:TopicSubscription":
            wired |= inputs["topic"]["$ref"] == topic
        if resource["type"].startswith("aws:chatbot/"):
            wired |= topic in [a["$ref"] for a in inputs["snsTopicArns"]]
    assert published, f"no {severity} alarm publishes to the topic of {receiver!r}"
    assert wired, f"receiver {receiver!r} is not subscribed to its topic"


@pytest.mark.judge
def test_every_alert_reaches_a_receiver_with_credentials(
    built: tuple[Path, str, str, bool], amtool: str
) -> None:
    out, _, target, production = built
    config_path = out / "monitoring" / "alertmanager.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    receivers = {r["name"]: r for r in config["receivers"]}
    labels = alert_labels(out)
    assert labels
    for alert in labels:
        names = route(amtool, config_path, alert)
        for name in names:
            receiver = receivers[name]
            integrations = [k for k in receiver if k.endswith("_configs")]
            assert integrations, f"{alert} reaches {name!r}, which notifies no one"
            if not production and alert.get("severity") == "page":
                assert not any(k in PAGING_KEYS for k in integrations), (alert, name)
            if target == "kubernetes":
                check_kubernetes(out, receiver, config)
            else:
                check_aws(out, name, alert.get("severity", "ticket"))


@pytest.mark.judge
def test_generated_alertmanager_passes_amtool(
    built: tuple[Path, str, str, bool], amtool: str
) -> None:
    out = built[0]
    done = subprocess.run(
        [amtool, "check-config", "--", "alertmanager.yaml"],
        cwd=out / "monitoring",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
