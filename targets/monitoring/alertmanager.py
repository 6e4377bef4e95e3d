"""Alertmanager routing for a system, from the spec's ``alerting`` section.

Route tree: the root sends to the default receiver; below it, one route per spec route, in spec
order (the first match wins), matching the alert's ``team`` (the SLA owner) and, when the route
names one, its ``severity``. Pages wait 30s before the first notification and repeat hourly;
tickets and mixed routes use the root's 5m grouping and 4h/12h repetition. A page inhibits the
ticket of the same SLO, so one incident notifies once, at the higher severity.

Credentials never appear in the file: Slack webhooks and PagerDuty routing keys are read from
files (``api_url_file``, ``routing_key_file``) at
``/etc/alertmanager/secrets/<secret name>/value``, the layout the Prometheus Operator gives to
Kubernetes Secrets listed in an Alertmanager's ``spec.secrets``: the Kubernetes target is to
create one Secret per referenced spec secret, named after it, with the key ``value``.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir, yamltext
from mlplane.targets.monitoring import promql

SECRETS_DIR = "/etc/alertmanager/secrets"
MOUNTED_FILE_NAME = "value"
UNROUTED = "mlplane-unrouted"
"""Receiver without integrations for a spec without ``defaultReceiver`` (alerts with no route
are dropped; ``checks.py`` warns about it)."""
SMTP_RELAY = "localhost:25"
SMTP_FROM = "alertmanager@localhost"
"""The spec has no SMTP settings yet: e-mail goes through a relay next to Alertmanager (a
sidecar), which sets the real sender."""

GROUP_BY = ["alertname", "namespace", "system", "slo"]


def secret_file(secret: str) -> str:
    """Where the mounted secret ``secret`` is read from."""
    return f"{SECRETS_DIR}/{promql.safe_value(secret)}/{MOUNTED_FILE_NAME}"


def receiver(spec: ir.Receiver) -> dict[str, Any]:
    """One receiver: Slack, PagerDuty and e-mail integrations, credentials by file only."""
    entry: dict[str, Any] = {"name": promql.safe_value(spec.name)}
    if spec.slack_channel and spec.slack_webhook_secret:
        entry["slack_configs"] = [
            {
                "api_url_file": secret_file(spec.slack_webhook_secret),
                "channel": spec.slack_channel,
                "send_resolved": True,
                "title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} {{ .CommonLabels.slo }}",
                "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
            }
        ]
    if spec.pagerduty_secret:
        entry["pagerduty_configs"] = [
            {"routing_key_file": secret_file(spec.pagerduty_secret), "send_resolved": True}
        ]
    if spec.email:
        entry["email_configs"] = [{"to": ", ".join(spec.email), "send_resolved": True}]
    return entry


def route(spec: ir.Route) -> dict[str, Any]:
    """One child route of the tree."""
    matchers = [promql.matcher("team", "=", promql.safe_value(spec.owner))]
    entry: dict[str, Any] = {"receiver": promql.safe_value(spec.receiver)}
    if spec.severity is not None:
        matchers.append(promql.matcher("severity", "=", spec.severity))
    entry["matchers"] = matchers
    if spec.severity == "page":
        entry.update({"group_wait": "30s", "repeat_interval": "1h"})
    elif spec.severity == "ticket":
        entry["repeat_interval"] = "12h"
    return entry


def alertmanager_config(system: ir.System) -> dict[str, Any]:
    """The configuration as data."""
    alerting = system.alerting
    receivers = [receiver(r) for _, r in sorted(alerting.receivers.items())]
    default = alerting.default_receiver
    if default is None:
        receivers.append({"name": UNROUTED})
    config: dict[str, Any] = {"global": {"resolve_timeout": "5m"}}
    if any(r.email for r in alerting.receivers.values()):
        config["global"].update({"smtp_smarthost": SMTP_RELAY, "smtp_from": SMTP_FROM})
    config["route"] = {
        "receiver": promql.safe_value(default or UNROUTED),
        "group_by": GROUP_BY,
        "group_wait": "1m",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [route(r) for r in alerting.routes],
    }
    config["inhibit_rules"] = [
        {
            "source_matchers": ['severity="page"'],
            "target_matchers": ['severity="ticket"'],
            "equal": ["namespace", "system", "slo"],
        }
    ]
    config["receivers"] = receivers
    return config


def alertmanager_yaml(system: ir.System) -> str:
    """The configuration as YAML (without the generated-file header)."""
    return yamltext.dump(alertmanager_config(system))
