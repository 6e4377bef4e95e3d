"""Alert delivery on the Kubernetes target: the receivers' credentials and their routing.

Every secret a receiver reads (Slack webhook, PagerDuty routing key, SMTP password) becomes the
object that fetches it, like a model's secrets (``secrets.py``): an ``ExternalSecret`` for
``vault://``, ``aws-sm://``, ``gcp-sm://`` and ``azure-kv://``, a ``Secret`` from Pulumi
secret config for ``env:``, nothing for ``k8s://`` (which must live where it is read). Where
they live depends on ``environments.<env>.kubernetes.monitoring.alertmanager``:

- ``alertmanagerConfig`` (the default): one ``AlertmanagerConfig``
  (``monitoring.coreos.com/v1alpha1``) in the environment's namespace, merged by the Prometheus
  Operator into a shared Alertmanager, and the Secrets beside it (an AlertmanagerConfig reads
  Secrets of its own namespace only). The operator restricts its routes to alerts whose
  ``namespace`` label is that namespace, which every mlplane alert carries.
- ``file``: no AlertmanagerConfig; ``monitoring/alertmanager.yaml`` is the whole configuration
  of an Alertmanager this system owns, which reads each Secret at
  ``/etc/alertmanager/secrets/<secret>/value``: the Secrets are created in the monitoring
  namespace, to be listed in that Alertmanager's ``spec.secrets``.

The routes are those of ``monitoring/alertmanager.yaml`` (``alertmanager.delivery_routes``:
pages go to the owner's ticket receiver outside production), so both outputs deliver alike.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.targets.kubernetes import codes, names, secrets
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.settings import KubernetesSettings, kubernetes_of
from mlplane.targets.monitoring import alertmanager, promql

ALERTMANAGER_CONFIG_API = "monitoring.coreos.com/v1alpha1"
FILE_MODE = "file"
LOGICAL_PREFIX = "alerting-"


def settings_of(system: ir.System) -> KubernetesSettings:
    return kubernetes_of(system.environment.target_settings)


def monitoring_labels(system: ir.System, labels: dict[str, str]) -> dict[str, str]:
    """``labels`` plus the environment's monitoring labels, for the operator's selectors."""
    return {**labels, **dict(settings_of(system).monitoring_labels)}


def receiver_secrets(system: ir.System) -> list[str]:
    """The spec secrets the receivers (and the SMTP login) read, in name order."""
    alerting = system.alerting
    found = {name for receiver in alerting.receivers.values() for name in receiver.secrets}
    if alerting.smtp is not None and alerting.smtp.auth_password_secret is not None:
        found.add(alerting.smtp.auth_password_secret)
    return sorted(found)


def secrets_namespace(lowering: Lowering) -> str:
    settings = settings_of(lowering.system)
    return (
        settings.monitoring_namespace if settings.alertmanager == FILE_MODE else lowering.namespace
    )


def lower_alerting(
    lowering: Lowering, sources: dict[str, secrets.SecretSource], parent: str
) -> None:
    """The receivers' Secrets and, in ``alertmanagerConfig`` mode, the AlertmanagerConfig."""
    system = lowering.system
    if not system.alerting.receivers:
        return
    namespace = secrets_namespace(lowering)
    needs: list[str] = []
    for name in receiver_secrets(system):
        secret = system.security.secrets.get(name)
        if secret is None:
            continue  # the front end reported the undefined reference
        resource = _lower_secret(lowering, secret, sources, parent, namespace)
        needs += [resource] if resource is not None else []
    if settings_of(system).alertmanager != FILE_MODE:
        body = alertmanager_config(lowering)
        origin = lowering.origin(("alerting",))
        logical = names.logical(system.name, "alertmanagerconfig")
        lowering.add(logical, body, origin, parent, tuple(sorted(set(needs))))


def _lower_secret(
    lowering: Lowering,
    secret: ir.Secret,
    sources: dict[str, secrets.SecretSource],
    parent: str,
    namespace: str,
) -> str | None:
    """The resource that provides ``secret`` in ``namespace`` (None: nothing to create)."""
    if secret.scheme == "k8s":
        _check_namespace(lowering, secret, namespace)
        return None
    if namespace == lowering.namespace:
        known = sources.get(secret.name)
        if known is not None:
            return known.resource  # a model reads it too: one Secret serves both
        made = secrets.lower_in(lowering, secret, parent, namespace, "")
        return made.resource
    made = secrets.lower_in(lowering, secret, parent, namespace, LOGICAL_PREFIX)
    return made.resource


def check_receiver_secrets(lowering: Lowering) -> None:
    """The ``k8s://`` secrets of the receivers live where Alertmanager reads them (refused at
    their definition otherwise; ``checks.check_spec`` reports it before lowering)."""
    system = lowering.system
    if not system.alerting.receivers:
        return
    namespace = secrets_namespace(lowering)
    for name in receiver_secrets(system):
        secret = system.security.secrets.get(name)
        if secret is not None and secret.scheme == "k8s":
            _check_namespace(lowering, secret, namespace)


def _check_namespace(lowering: Lowering, secret: ir.Secret, namespace: str) -> None:
    where = secret.ref.removeprefix("k8s://").partition("/")[0]
    if where != namespace:
        lowering.diagnostics.error(
            codes.SECRET_NAMESPACE,
            f"secret {secret.name!r} refers to a Secret in namespace {where!r}, but "
            f"Alertmanager reads the receivers' Secrets in {namespace!r}",
            secret.origin.location,
            secret.origin.path,
            hint=f"copy the Secret into {namespace!r} and refer to it there",
        )


def _key_ref(system: ir.System, secret: str) -> dict[str, str]:
    name, key = alertmanager.mounted_secret(system, secret)
    return {"name": name, "key": key}


def _matcher(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value, "matchType": "="}


def _receiver(system: ir.System, spec: ir.Receiver) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": promql.safe_value(spec.name)}
    if spec.slack_channel and spec.slack_webhook_secret:
        entry["slackConfigs"] = [
            {
                "apiURL": _key_ref(system, spec.slack_webhook_secret),
                "channel": spec.slack_channel,
                "sendResolved": True,
                "title": alertmanager.SLACK_TITLE,
                "text": alertmanager.SLACK_TEXT,
            }
        ]
    if spec.pagerduty_secret:
        entry["pagerdutyConfigs"] = [
            {"routingKey": _key_ref(system, spec.pagerduty_secret), "sendResolved": True}
        ]
    smtp = system.alerting.smtp
    if spec.email and smtp is not None:
        email: dict[str, Any] = {
            "to": ", ".join(spec.email),
            "from": smtp.sender,
            "smarthost": smtp.smarthost,
            "requireTLS": smtp.require_tls,
            "sendResolved": True,
        }
        if smtp.auth_username is not None and smtp.auth_password_secret is not None:
            email["authUsername"] = smtp.auth_username
            email["authPassword"] = _key_ref(system, smtp.auth_password_secret)
        entry["emailConfigs"] = [email]
    return entry


def _route(delivery: alertmanager.Delivery) -> dict[str, Any]:
    plain = alertmanager.route(delivery)
    entry: dict[str, Any] = {"receiver": plain["receiver"]}
    matchers = []
    if delivery.owner is not None:
        matchers.append(_matcher("team", promql.safe_value(delivery.owner)))
    if delivery.severity is not None:
        matchers.append(_matcher("severity", delivery.severity))
    entry["matchers"] = matchers
    for key, camel in (("group_wait", "groupWait"), ("repeat_interval", "repeatInterval")):
        if key in plain:
            entry[camel] = plain[key]
    return entry


def alertmanager_config(lowering: Lowering) -> dict[str, Any]:
    """The AlertmanagerConfig: the routing tree, receivers and inhibition of
    ``monitoring/alertmanager.yaml``, with credentials as Secret key references."""
    system = lowering.system
    plain = alertmanager.alertmanager_config(system)
    root = plain["route"]
    receivers = [_receiver(system, r) for _, r in sorted(system.alerting.receivers.items())]
    known = {r["name"] for r in receivers}
    receivers += [{"name": r["name"]} for r in plain["receivers"] if r["name"] not in known]
    inhibit = plain["inhibit_rules"][0]
    spec = {
        "route": {
            "receiver": root["receiver"],
            "groupBy": list(root["group_by"]),
            "groupWait": root["group_wait"],
            "groupInterval": root["group_interval"],
            "repeatInterval": root["repeat_interval"],
            "routes": [_route(d) for d in alertmanager.delivery_routes(system)],
        },
        "receivers": receivers,
        "inhibitRules": [
            {
                "sourceMatch": [_matcher("severity", "page")],
                "targetMatch": [_matcher("severity", "ticket")],
                "equal": list(inhibit["equal"]),
            }
        ],
    }
    labels = monitoring_labels(system, names.system_labels(system))
    return {
        "apiVersion": ALERTMANAGER_CONFIG_API,
        "kind": "AlertmanagerConfig",
        "metadata": lowering.metadata(system.name, labels),
        "spec": spec,
    }
