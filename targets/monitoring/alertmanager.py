"""Alertmanager routing for a system, from the spec's ``alerting`` section.

Route tree: the root sends to the default receiver; below it, one route per spec route, in spec
order (the first match wins), matching the alert's ``team`` (the SLA owner) and, when the route
names one, its ``severity``. Pages wait 30s before the first notification and repeat hourly;
tickets and mixed routes use the root's 5m grouping and 4h/12h repetition. A page inhibits the
ticket of the same SLO, so one incident notifies once, at the higher severity.

Environments that are not production do not page (unless ``alerting.pageOutsideProduction``):
an alert of ``severity: page`` goes where the owner's tickets go (the receiver of the owner's
first ticket route, else of its first route without a severity, else the default receiver, as
long as that receiver does not page), and to a receiver without integrations when the owner has
no such receiver (:func:`delivery_routes`).

Credentials never appear in the file: Slack webhooks, PagerDuty routing keys and the SMTP
password are read from files (``api_url_file``, ``routing_key_file``,
``smtp_auth_password_file``) at ``/etc/alertmanager/secrets/<secret name>/value``, the layout
the Prometheus Operator gives to Kubernetes Secrets listed in an Alertmanager's
``spec.secrets``: the Kubernetes target creates one Secret per referenced spec secret, named
after it, with the key ``value`` (a ``k8s://`` reference names its own Secret and key). E-mail
is sent through ``alerting.smtp``; the front end refuses e-mail receivers without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core import ir, yamltext
from mlplane.targets.monitoring import promql

SECRETS_DIR = "/etc/alertmanager/secrets"
MOUNTED_FILE_NAME = "value"
UNROUTED = "mlplane-unrouted"
"""Receiver without integrations for a spec without ``defaultReceiver`` (alerts with no route
are dropped; ``checks.py`` warns about it)."""
GROUP_BY = ["alertname", "namespace", "system", "slo"]
SLACK_TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} {{ .CommonLabels.slo }}"
SLACK_TEXT = "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One child route of the delivered tree: alerts of ``owner`` (any team when None) and
    ``severity`` (both when None) go to ``receiver``."""

    owner: str | None
    severity: str | None
    receiver: str


def mounted_secret(system: ir.System, name: str) -> tuple[str, str]:
    """The Kubernetes Secret and key that hold spec secret ``name``: the Secret mlplane creates
    (named after the spec secret, key ``value``), or the one a ``k8s://`` reference names."""
    secret = system.security.secrets.get(name)
    if secret is not None and secret.scheme == "k8s":
        rest = secret.ref.removeprefix("k8s://").partition("/")[2]
        secret_name, _, key = rest.partition("#")
        return secret_name, key or MOUNTED_FILE_NAME
    return name, MOUNTED_FILE_NAME


def secret_file(system: ir.System, secret: str) -> str:
    """Where the mounted secret ``secret`` is read from."""
    name, key = mounted_secret(system, secret)
    return f"{SECRETS_DIR}/{promql.safe_value(name)}/{promql.safe_value(key)}"


def pages_here(system: ir.System) -> bool:
    """True when ``severity: page`` alerts may page in this environment."""
    return system.environment.production or system.alerting.page_outside_production


def quiet_receiver(alerting: ir.Alerting, owner: str | None) -> str | None:
    """Where the pages of ``owner`` go where paging is off: a receiver that does not page."""

    def quiet(name: str | None) -> bool:
        found = alerting.receivers.get(name or "")
        return found is not None and not found.pages

    for severity in ("ticket", None):
        for route in alerting.routes:
            if route.owner == owner and route.severity == severity and quiet(route.receiver):
                return route.receiver
    return alerting.default_receiver if quiet(alerting.default_receiver) else None


def delivery_routes(system: ir.System) -> tuple[Delivery, ...]:
    """The child routes as delivered in this environment (see the module docstring)."""
    alerting = system.alerting
    routes = [Delivery(r.owner, r.severity, r.receiver) for r in alerting.routes]
    if pages_here(system):
        return tuple(routes)
    found: list[Delivery] = []
    for route in alerting.routes:
        target = alerting.receivers.get(route.receiver)
        paging = target is not None and target.pages
        if route.severity == "page" or (route.severity is None and paging):
            quiet = quiet_receiver(alerting, route.owner) or UNROUTED
            found.append(Delivery(route.owner, "page", quiet))
        if route.severity != "page":
            found.append(Delivery(route.owner, route.severity, route.receiver))
    default = alerting.receivers.get(alerting.default_receiver or "")
    if default is not None and default.pages:
        found.append(Delivery(None, "page", quiet_receiver(alerting, None) or UNROUTED))
    return tuple(found)


def receiver(system: ir.System, spec: ir.Receiver) -> dict[str, Any]:
    """One receiver: Slack, PagerDuty and e-mail integrations, credentials by file only."""
    entry: dict[str, Any] = {"name": promql.safe_value(spec.name)}
    if spec.slack_channel and spec.slack_webhook_secret:
        entry["slack_configs"] = [
            {
                "api_url_file": secret_file(system, spec.slack_webhook_secret),
                "channel": spec.slack_channel,
                "send_resolved": True,
                "title": SLACK_TITLE,
                "text": SLACK_TEXT,
            }
        ]
    if spec.pagerduty_secret:
        entry["pagerduty_configs"] = [
            {"routing_key_file": secret_file(system, spec.pagerduty_secret), "send_resolved": True}
        ]
    if spec.email:
        entry["email_configs"] = [{"to": ", ".join(spec.email), "send_resolved": True}]
    return entry


def route(spec: Delivery) -> dict[str, Any]:
    """One child route of the tree."""
    matchers = []
    if spec.owner is not None:
        matchers.append(promql.matcher("team", "=", promql.safe_value(spec.owner)))
    entry: dict[str, Any] = {"receiver": promql.safe_value(spec.receiver)}
    if spec.severity is not None:
        matchers.append(promql.matcher("severity", "=", spec.severity))
    entry["matchers"] = matchers
    if spec.severity == "page":
        entry.update({"group_wait": "30s", "repeat_interval": "1h"})
    elif spec.severity == "ticket":
        entry["repeat_interval"] = "12h"
    return entry


def smtp_global(system: ir.System, smtp: ir.Smtp) -> dict[str, Any]:
    """The global SMTP settings; the password by file only."""
    found: dict[str, Any] = {
        "smtp_smarthost": smtp.smarthost,
        "smtp_from": smtp.sender,
        "smtp_require_tls": smtp.require_tls,
    }
    if smtp.auth_username is not None and smtp.auth_password_secret is not None:
        found["smtp_auth_username"] = smtp.auth_username
        found["smtp_auth_password_file"] = secret_file(system, smtp.auth_password_secret)
    return found


def alertmanager_config(system: ir.System) -> dict[str, Any]:
    """The configuration as data."""
    alerting = system.alerting
    receivers = [receiver(system, r) for _, r in sorted(alerting.receivers.items())]
    default = alerting.default_receiver
    routes = delivery_routes(system)
    if default is None or any(r.receiver == UNROUTED for r in routes):
        receivers.append({"name": UNROUTED})
    config: dict[str, Any] = {"global": {"resolve_timeout": "5m"}}
    if alerting.smtp is not None:
        config["global"].update(smtp_global(system, alerting.smtp))
    config["route"] = {
        "receiver": promql.safe_value(default or UNROUTED),
        "group_by": GROUP_BY,
        "group_wait": "1m",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [route(r) for r in routes],
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
