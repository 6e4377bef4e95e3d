"""Alerts reach a human, run for real: the generated rules in a real Prometheus, the generated
Alertmanager configuration in a real Alertmanager, and a Slack webhook on loopback that must be
posted to (``tests/test_alert_delivery.py`` checks every route statically with amtool).

For each example's ``dev`` environment the test builds ``monitoring/rules.yaml`` and
``monitoring/alertmanager.yaml``, starts Prometheus and Alertmanager (the Debian packages'
servers) on loopback, and serves the series that make SLOs burn their error budget: every data
source with a freshness SLA last succeeded ten days ago, and every model served by the
``generic`` runtime (the Prometheus client libraries' series) answers only 5xx. Then:

* Prometheus evaluates the generated rules and sends each burning SLO's
  ``ErrorBudgetFastBurn`` page to Alertmanager;
* Alertmanager routes it with the generated routes: in ``dev`` (not production) a page never
  goes to a PagerDuty receiver;
* a receiver with Slack settings posts to its webhook, whose URL Alertmanager reads from the
  secret file the configuration names: the test writes each file where the configuration reads
  it (a temporary directory instead of ``/etc/alertmanager/secrets``), and the Slack webhook is
  a loopback server that records what it is sent.

Nothing leaves the machine: Alertmanager's HTTP clients go through a proxy on a closed loopback
port (Go never proxies loopback addresses, so the Slack webhook is reached directly) and the
SMTP smarthost is a closed loopback port, so PagerDuty and e-mail deliveries fail locally.
"""

from __future__ import annotations

import json
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.targets.monitoring import emit
from tests import loopback
from tests.judges import free_port, require_judge

pytestmark = pytest.mark.judge

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(path for path in (REPO / "examples").iterdir() if path.is_dir())
SECRETS = "/etc/alertmanager/secrets/"
DELIVERY_TIMEOUT = 180
"""Seconds for every page to be posted: a few evaluations, then a group's wait (1 minute at most
in the generated routes)."""
STALE_SECONDS = 10 * 24 * 3600
FRESHNESS = "mlplane_data_last_success_timestamp_seconds"


@dataclass
class Webhook:
    """A loopback server standing in for Slack: it records every JSON body posted to it."""

    posted: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = loopback.webhook(self.posted)
        self.url = f"http://{loopback.address(self.server)}"


@dataclass(frozen=True)
class Burning:
    """An SLO the served series make burn: a data source's freshness (its last success, in
    ``source``) or a ``generic`` model's availability (its requests, all 5xx, in ``model``)."""

    slo: str
    namespace: str
    source: str | None = None
    model: str | None = None


def burning(rules: dict[str, Any], runtimes: dict[str, str]) -> list[Burning]:
    """The SLOs of ``rules`` that the test can make burn, from their page's labels."""
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") != "ErrorBudgetFastBurn":
                continue
            labels = rule["labels"]
            slo, namespace = labels["slo"], labels["namespace"]
            source, model = labels.get("dataSource"), labels.get("model")
            if source is not None and _reads(group, FRESHNESS):
                found.append(Burning(slo, namespace, source=source))
            elif model is not None and runtimes.get(model) == "generic" and _availability(group):
                found.append(Burning(slo, namespace, model=model))
    return found


def _reads(group: dict[str, Any], metric: str) -> bool:
    return any(metric in str(rule.get("expr", "")) for rule in group["rules"])


def _availability(group: dict[str, Any]) -> bool:
    return _reads(group, 'code=~"5.."') and _reads(group, "http_requests_total")


class Series:
    """The burning SLOs' series in Prometheus's text format: each data source last succeeded
    ten days before the test began, each model's request counter grows at 10 a second, every
    request answered 5xx."""

    def __init__(self, burning: list[Burning]) -> None:
        self._burning = burning
        self._since = time.monotonic()
        self._stale = time.time() - STALE_SECONDS
        self.server = loopback.scrape_target(self.exposition)
        self.address = loopback.address(self.server)

    def exposition(self) -> str:
        count = 10 * (time.monotonic() - self._since)
        lines = []
        for burn in self._burning:
            if burn.source is not None:
                labels = f'namespace="{burn.namespace}",data_source="{burn.source}"'
                lines.append(f"{FRESHNESS}{{{labels}}} {self._stale:.0f}")
            else:
                labels = f'namespace="{burn.namespace}",job="{burn.model}",code="500"'
                lines.append(f"http_requests_total{{{labels}}} {count:.3f}")
        return "\n".join(lines) + "\n"


def with_local_secrets(config: dict[str, Any], directory: Path, webhook: Webhook) -> None:
    """The configuration's secret files written under ``directory`` (a Slack webhook's URL is
    the loopback webhook's, with the secret's name as its path), and its SMTP smarthosts sent
    to a closed loopback port: besides the secrets, the only hosts the configuration names."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and key.endswith("_file") and value.startswith(SECRETS):
                    name = value.removeprefix(SECRETS).split("/")[0]
                    path = directory / value.removeprefix(SECRETS)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    secret = f"{webhook.url}/{name}" if key == "api_url_file" else f"{name}-value"
                    path.write_text(secret, encoding="utf-8")
                    node[key] = str(path)
                elif key in ("smtp_smarthost", "smarthost"):
                    node[key] = f"127.0.0.1:{free_port()}"
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(config)


def posted_to(receiver: dict[str, Any], slo: str, webhook: Webhook) -> bool:
    """Whether the webhook of ``receiver``'s Slack settings (its secret's name is the path)
    was sent ``slo``'s page, firing, in the receiver's channel."""
    slack = receiver["slack_configs"][0]
    path = "/" + Path(slack["api_url_file"]).parent.name
    return any(
        where == path
        and body.get("channel") == slack["channel"]
        and any(
            a.get("title", "").startswith("[FIRING")
            and "ErrorBudgetFastBurn" in a.get("title", "")
            and a.get("title", "").endswith(f" {slo}")
            for a in body.get("attachments", ())
        )
        for where, body in webhook.posted
    )


def alert_groups(alertmanager: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts/groups", timeout=5) as answer:
        loaded = json.load(answer)
    assert isinstance(loaded, list)
    return loaded


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_burning_slo_pages_a_receiver_that_is_posted_to(
    example: Path, tmp_path: Path
) -> None:
    prometheus = require_judge("prometheus")
    alertmanager_bin = require_judge("prometheus-alertmanager")
    result = compile_spec(example)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    system = result.systems["dev"]
    files = emit.monitoring_files(system)
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(files["monitoring/rules.yaml"], encoding="utf-8")
    rules = yaml.safe_load(files["monitoring/rules.yaml"])
    config = yaml.safe_load(files["monitoring/alertmanager.yaml"])
    runtimes = {name: model.runtime for name, model in system.models.items()}
    burn = burning(rules, runtimes)
    assert burn, "the example has no SLO this test can make burn"

    webhook = Webhook()
    with_local_secrets(config, tmp_path / "secrets", webhook)
    (tmp_path / "alertmanager.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    series = Series(burn)
    am_port, prom_port = free_port(), free_port()
    alertmanager = f"http://127.0.0.1:{am_port}"
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"PATH": "/usr/bin:/bin", "HTTP_PROXY": closed, "HTTPS_PROXY": closed}
    (tmp_path / "prometheus.yaml").write_text(
        loopback.prometheus_config([rules_path], series.address, f"127.0.0.1:{am_port}"),
        encoding="utf-8",
    )
    with ExitStack() as stack:
        stack.enter_context(loopback.serving(webhook.server))
        stack.enter_context(loopback.serving(series.server))
        stack.enter_context(
            loopback.running(
                [
                    alertmanager_bin,
                    f"--config.file={tmp_path / 'alertmanager.yaml'}",
                    f"--storage.path={tmp_path / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp_path / "alertmanager.log",
                f"{alertmanager}/-/ready",
                env,
            )
        )
        stack.enter_context(
            loopback.running(
                [
                    prometheus,
                    f"--config.file={tmp_path / 'prometheus.yaml'}",
                    f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp_path / "prometheus.log",
                f"http://127.0.0.1:{prom_port}/-/ready",
                env,
            )
        )
        wanted = {b.slo for b in burn}
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while True:
            routed = {
                alert["labels"]["slo"]: group["receiver"]["name"]
                for group in alert_groups(alertmanager)
                for alert in group["alerts"]
                if alert["labels"].get("alertname") == "ErrorBudgetFastBurn"
            }
            slack = {slo for slo, name in routed.items() if receivers[name].get("slack_configs")}
            posted = {slo for slo in slack if posted_to(receivers[routed[slo]], slo, webhook)}
            if wanted <= routed.keys() and slack <= posted:
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"after {DELIVERY_TIMEOUT}s: burning {sorted(wanted)}, routed {routed}, "
                    f"posted to Slack for {sorted(posted)}"
                )
            time.sleep(2)
    for slo, name in routed.items():
        assert not receivers[name].get("pagerduty_configs"), (
            f"{example.name} dev pages {name} for {slo}: an environment that is not production "
            "must not page"
        )
    assert posted, f"no page of {example.name} dev reached a Slack receiver"
