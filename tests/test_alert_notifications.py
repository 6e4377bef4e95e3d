"""Alerts reach a human, run for real: the generated rules in a real Prometheus, the generated
Alertmanager configuration in a real Alertmanager, and every integration it names delivering
on loopback: Slack's webhook, PagerDuty's Events API and an SMTP smarthost
(``tests/test_alert_delivery.py`` checks every route statically with amtool).

For each Kubernetes environment of each example (all of an example's at once) the test builds
``monitoring/rules.yaml`` and ``monitoring/alertmanager.yaml``, starts Prometheus and
Alertmanager (the Debian packages' servers) on loopback, and serves the series that make SLOs
burn their error budget: every data source with a freshness SLA last succeeded ten days ago,
every model served by the ``generic`` runtime (the Prometheus client libraries' series) answers
only 5xx, and every model with a drift SLA has drifted on every monitored feature (the drift
job's own exposition). Then:

* Prometheus evaluates the generated rules and sends each burning SLO's
  ``ErrorBudgetFastBurn`` page to Alertmanager;
* Alertmanager routes it with the generated routes to a receiver with at least one
  integration: outside production never to one that pages (PagerDuty), in production the
  on-call's PagerDuty receiver gets pages;
* every integration of that receiver delivers the page, with the credentials Alertmanager reads
  from the secret files the configuration names (the test writes each file where the
  configuration reads it, a temporary directory instead of ``/etc/alertmanager/secrets``):
  - Slack: a JSON post to the webhook URL of its secret, in the receiver's channel, the alert
    and the SLO in the title;
  - PagerDuty: an Events API v2 ``trigger`` with the routing key of its secret, the alert and
    the SLO in the summary;
  - e-mail: a message to the receiver's address, from the configuration's sender, the alert and
    the SLO in the subject, sent after STARTTLS and after logging in with the configured user
    and the password of its secret (the smarthost refuses mail otherwise).

What the test changes in its copy of the configuration, besides the secret files' paths, are the
two addresses it cannot reach: PagerDuty's Events API URL (a fixed public address, unset in the
generated file) becomes a loopback webhook, and the SMTP smarthost the loopback SMTP server,
with its certificate (made by the test for ``127.0.0.1``) as the e-mail TLS settings' CA.
Nothing leaves the machine: Alertmanager's HTTP clients also go through a proxy on a closed
loopback port (Go never proxies loopback addresses, so the webhooks are reached directly).
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import json
import ssl
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.drift import export
from mlplane.targets.monitoring import emit
from tests import loopback
from tests.judges import free_port, require_judge

pytestmark = pytest.mark.judge

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(path for path in (REPO / "examples").iterdir() if path.is_dir())
SECRETS = "/etc/alertmanager/secrets/"
DELIVERY_TIMEOUT = 180
"""Seconds for every page to be delivered: a few evaluations, then a group's wait (1 minute at
most in the generated routes)."""
STALE_SECONDS = 10 * 24 * 3600
FRESHNESS = "mlplane_data_last_success_timestamp_seconds"
PAGE = "ErrorBudgetFastBurn"
DRIFTED = 100.0
"""A drift score above any threshold a spec may set."""


@dataclass
class Webhook:
    """A loopback server standing in for Slack and PagerDuty: it records every JSON body
    posted to it, with the path it was posted to."""

    posted: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = loopback.webhook(self.posted)
        self.url = f"http://{loopback.address(self.server)}"


@dataclass(frozen=True)
class Mail:
    """A message the smarthost accepted, and how it was sent."""

    sender: str
    recipients: tuple[str, ...]
    subject: str
    to: str
    encrypted: bool
    login: str


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``127.0.0.1`` and its key (PEM files), valid for an hour."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    signed = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert.write_bytes(signed.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


class _Smtp(SMTP):
    """aiosmtpd's SMTP session with the ``AUTH LOGIN`` challenges that mail servers send
    (Postfix's and Exchange's ``Username:``, ``Password:``), the ones Go clients answer."""

    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Smtp(self.handler, **self.SMTP_kwargs)


class Smarthost:
    """A loopback SMTP server standing in for the smarthost: STARTTLS before AUTH, AUTH (with
    ``login`` and ``password``) before any mail; it records every message it accepts."""

    def __init__(self, port: int, cert: Path, key: Path, login: str, password: str) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.credentials = (login, password)
        self.messages: list[Mail] = []
        self.controller = _Controller(
            self,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            authenticator=self.authenticate,
            auth_require_tls=True,
            auth_required=True,
        )

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        given = (
            (data.login.decode(), data.password.decode())
            if isinstance(data, LoginPassword)
            else None
        )
        return AuthResult(success=given == self.credentials, auth_data=given and given[0])

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        self.messages.append(
            Mail(
                sender=str(envelope.mail_from),
                recipients=tuple(envelope.rcpt_tos),
                subject=str(message["Subject"]),
                to=str(message["To"]),
                encrypted=session.ssl is not None,
                login=str(session.auth_data),
            )
        )
        return "250 OK"


@dataclass(frozen=True)
class Burning:
    """An SLO the served series make burn: a data source's freshness (its last success, in
    ``source``), a ``generic`` model's availability (its requests, all 5xx, in ``model``) or a
    model's drift (every monitored feature's score far above any threshold, in ``drifted``:
    the features)."""

    slo: str
    namespace: str
    source: str | None = None
    model: str | None = None
    drifted: tuple[str, ...] = ()


def burning(rules: dict[str, Any], system: ir.System) -> list[Burning]:
    """The SLOs of ``rules`` that the test can make burn, from their page's labels."""
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") != PAGE:
                continue
            labels = rule["labels"]
            slo, namespace = labels["slo"], labels["namespace"]
            source, name = labels.get("dataSource"), labels.get("model")
            model = system.models.get(name) if name is not None else None
            if source is not None and _reads(group, FRESHNESS):
                found.append(Burning(slo, namespace, source=source))
            elif model is not None and model.drift is not None and _reads(group, export.GAUGE):
                features = model.drift.features or ("any-feature",)
                found.append(Burning(slo, namespace, model=model.name, drifted=features))
            elif model is not None and model.runtime == "generic" and _availability(group):
                found.append(Burning(slo, namespace, model=model.name))
    return found


def _reads(group: dict[str, Any], metric: str) -> bool:
    return any(metric in str(rule.get("expr", "")) for rule in group["rules"])


def _availability(group: dict[str, Any]) -> bool:
    return _reads(group, 'code=~"5.."') and _reads(group, "http_requests_total")


class Series:
    """The burning SLOs' series in Prometheus's text format: each data source last succeeded
    ten days before the test began, each model's request counter grows at 10 a second, every
    request answered 5xx, each drifting model's scores are the drift job's own exposition
    (``mlplane.drift.export``)."""

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
            elif burn.drifted and burn.model is not None:
                scores = dict.fromkeys(burn.drifted, DRIFTED)
                lines += export.exposition(burn.namespace, burn.model, scores).splitlines()
            else:
                labels = f'namespace="{burn.namespace}",job="{burn.model}",code="500"'
                lines.append(f"http_requests_total{{{labels}}} {count:.3f}")
        # a drift family's HELP and TYPE once, though several models repeat them
        return "\n".join(dict.fromkeys(lines)) + "\n"


def _secret_name(path: str) -> str:
    return Path(path).parent.name


def with_local_secrets(
    config: dict[str, Any], directory: Path, webhook: Webhook, smarthost: int, ca: Path
) -> None:
    """The configuration's secret files written under ``directory`` (a Slack webhook's URL is
    ``webhook``'s, with the secret's name as its path; any other secret's value is its name and
    ``-value``), PagerDuty's Events API sent to ``webhook`` (``/pagerduty/<routing key's
    secret>``), the SMTP smarthost to the loopback port ``smarthost`` with ``ca`` trusted: besides
    the secrets, the only addresses the configuration names or implies."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if "routing_key_file" in node:
                node["url"] = f"{webhook.url}/pagerduty/{_secret_name(node['routing_key_file'])}"
            for mail in node.get("email_configs", ()):
                mail["tls_config"] = {"ca_file": str(ca)}
            for key, value in node.items():
                if isinstance(value, str) and key.endswith("_file") and value.startswith(SECRETS):
                    name = value.removeprefix(SECRETS).split("/")[0]
                    path = directory / value.removeprefix(SECRETS)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    secret = f"{webhook.url}/{name}" if key == "api_url_file" else f"{name}-value"
                    path.write_text(secret, encoding="utf-8")
                    node[key] = str(path)
                elif key in ("smtp_smarthost", "smarthost"):
                    node[key] = f"127.0.0.1:{smarthost}"
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(config)


def _paged(text: str, slo: str) -> bool:
    return text.startswith("[FIRING") and PAGE in text and slo in text.split()


@dataclass
class Stand:
    """One environment's alerting, as it runs: its configuration (the test's copy), the
    loopback stand-ins its integrations deliver to, what burns."""

    system: ir.System
    config: dict[str, Any]
    burn: list[Burning]
    webhook: Webhook
    smarthost: Smarthost | None
    alertmanager: str = ""

    @property
    def receivers(self) -> dict[str, dict[str, Any]]:
        return {receiver["name"]: receiver for receiver in self.config["receivers"]}

    def delivered(self, receiver: dict[str, Any], slo: str) -> bool:
        """Whether every integration of ``receiver`` delivered ``slo``'s page."""
        done = [self._slack(slack, slo) for slack in receiver.get("slack_configs", ())]
        done += [self._pagerduty(pd, slo) for pd in receiver.get("pagerduty_configs", ())]
        done += [self._email(mail, slo) for mail in receiver.get("email_configs", ())]
        return bool(done) and all(done)

    def _slack(self, slack: dict[str, Any], slo: str) -> bool:
        path = "/" + _secret_name(slack["api_url_file"])
        return any(
            where == path
            and body.get("channel") == slack["channel"]
            and any(_paged(a.get("title", ""), slo) for a in body.get("attachments", ()))
            for where, body in self.webhook.posted
        )

    def _pagerduty(self, pagerduty: dict[str, Any], slo: str) -> bool:
        secret = _secret_name(pagerduty["routing_key_file"])
        return any(
            where == f"/pagerduty/{secret}"
            and body.get("routing_key") == f"{secret}-value"
            and body.get("event_action") == "trigger"
            and _paged(body.get("payload", {}).get("summary", ""), slo)
            for where, body in self.webhook.posted
        )

    def _email(self, mail: dict[str, Any], slo: str) -> bool:
        assert self.smarthost is not None
        sender = self.config["global"]["smtp_from"]
        login = self.config["global"]["smtp_auth_username"]
        return any(
            message.recipients == (mail["to"],)
            and message.to == mail["to"]
            and message.sender == sender
            and message.encrypted
            and message.login == login
            and _paged(message.subject, slo)
            for message in self.smarthost.messages
        )


def alert_groups(alertmanager: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts/groups", timeout=5) as answer:
        loaded = json.load(answer)
    assert isinstance(loaded, list)
    return loaded


def routed_pages(alertmanager: str) -> dict[str, str]:
    """Each page Alertmanager holds: its SLO, and the receiver it was routed to."""
    return {
        alert["labels"]["slo"]: group["receiver"]["name"]
        for group in alert_groups(alertmanager)
        for alert in group["alerts"]
        if alert["labels"].get("alertname") == PAGE
    }


def stand(system: ir.System, directory: Path, ca: tuple[Path, Path]) -> Stand:
    """An environment's alerting files written under ``directory``, with its stand-ins."""
    files = emit.monitoring_files(system)
    (directory / "rules.yaml").write_text(files["monitoring/rules.yaml"], encoding="utf-8")
    rules = yaml.safe_load(files["monitoring/rules.yaml"])
    config = yaml.safe_load(files["monitoring/alertmanager.yaml"])
    webhook = Webhook()
    smtp_port = free_port()
    with_local_secrets(config, directory / "secrets", webhook, smtp_port, ca[0])
    smarthost = None
    login = config.get("global", {}).get("smtp_auth_username")
    if login is not None:
        password = Path(config["global"]["smtp_auth_password_file"]).read_text(encoding="utf-8")
        smarthost = Smarthost(smtp_port, *ca, login, password)
    (directory / "alertmanager.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return Stand(system, config, burning(rules, system), webhook, smarthost)


def start(stand: Stand, directory: Path, stack: ExitStack) -> None:
    """Its stand-ins, its Alertmanager and its Prometheus, running until ``stack`` closes."""
    alertmanager = require_judge("prometheus-alertmanager")
    series = Series(stand.burn)
    am_port = free_port()
    stand.alertmanager = f"http://127.0.0.1:{am_port}"
    stack.enter_context(loopback.serving(stand.webhook.server))
    stack.enter_context(loopback.serving(series.server))
    if stand.smarthost is not None:
        stand.smarthost.controller.start()
        stack.callback(stand.smarthost.controller.stop)
    stack.enter_context(
        loopback.running(
            [
                alertmanager,
                f"--config.file={directory / 'alertmanager.yaml'}",
                f"--storage.path={directory / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            directory / "alertmanager.log",
            f"{stand.alertmanager}/-/ready",
            loopback.offline_environment(),
        )
    )
    rules = [directory / "rules.yaml"]
    alerting = f"127.0.0.1:{am_port}"
    stack.enter_context(loopback.prometheus(directory, rules, series.address, alerting))


def failed_attempts(log: Path) -> list[str]:
    """The last three notifications Alertmanager's log says failed."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if "failed" in line.lower()][-3:]


def waiting(stand: Stand) -> str | None:
    """What is not delivered yet in ``stand``'s environment, or None when every page is."""
    routed = routed_pages(stand.alertmanager)
    missing = sorted({b.slo for b in stand.burn} - routed.keys())
    undelivered = sorted(
        f"{slo} to {name}"
        for slo, name in routed.items()
        if not stand.delivered(stand.receivers[name], slo)
    )
    if not missing and not undelivered:
        return None
    return f"not routed {missing}, routed but not delivered {undelivered}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_burning_slo_pages_a_receiver_that_delivers_it(example: Path, tmp_path: Path) -> None:
    require_judge("prometheus")
    require_judge("prometheus-alertmanager")
    result = compile_spec(example)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    ca = certificate(tmp_path / "tls")
    stands = {}
    for name, system in sorted(result.systems.items()):
        if system.environment.target == "kubernetes":
            (tmp_path / name).mkdir()
            stands[name] = stand(system, tmp_path / name, ca)
            assert stands[name].burn, f"{name} has no SLO this test can make burn"
    with ExitStack() as stack:
        for name, each in stands.items():
            start(each, tmp_path / name, stack)
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while True:
            left = {name: w for name, each in stands.items() if (w := waiting(each)) is not None}
            if not left:
                break
            if time.monotonic() > deadline:
                logs = {
                    name: failed_attempts(tmp_path / name / "alertmanager.log") for name in left
                }
                pytest.fail(
                    f"after {DELIVERY_TIMEOUT}s: {left}; Alertmanager's last failures: {logs}"
                )
            time.sleep(2)
        routed = {name: routed_pages(each.alertmanager) for name, each in stands.items()}
    for name, each in stands.items():
        paging = {
            slo: receiver
            for slo, receiver in routed[name].items()
            if each.receivers[receiver].get("pagerduty_configs")
        }
        if each.system.environment.production:
            assert paging, f"{example.name} {name}: production, yet no page reached PagerDuty"
        else:
            assert not paging, (
                f"{example.name} {name} pages {paging}: an environment that is not production "
                "must not page"
            )
    kinds = {
        kind
        for name, each in stands.items()
        for receiver in routed[name].values()
        for kind in each.receivers[receiver]
        if kind.endswith("_configs")
    }
    assert "slack_configs" in kinds, f"no page of {example.name} reached a Slack receiver"
