"""The ML summary of a plan, continued: SLAs, environment, security, policies, waivers, alerting.

Same helpers and rules as ``compiler/plan/spec_changes.py``; kept apart so each module stays short.
These sections are where most *relaxations* hide (default-deny off, a digest no longer required,
a rule turned off, a waiver pushed a year out), so most risk codes are raised here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from mlplane.compiler.core import ir, plugins
from mlplane.compiler.plan import tables
from mlplane.compiler.plan.model import ResourceJson
from mlplane.compiler.plan.spec_changes import (
    ARROW,
    Field,
    Summary,
    duration,
    listed,
    percent,
    same,
)

_SEVERITY_ORDER = {"off": 0, "info": 1, "warning": 2, "error": 3}


def _state_risk(old: ir.Environment, new: ir.Environment) -> str | None:
    """The state backend decides where the stack's state lives: any change of it is a risk."""
    del old, new  # only called for a changed line
    return "state-backend-changed"


_TARGET_FIELD: Field[ir.Environment] = Field("target", ("target",), lambda e: e.target)
_ENVIRONMENT_TAIL: tuple[Field[ir.Environment], ...] = (
    Field("state backend", ("state",), lambda e: e.state or "default", _state_risk),
    Field("production", ("production",), lambda e: "yes" if e.production else "no"),
    Field("residency", ("residency",), lambda e: e.residency or "none"),
)


def _environment_fields(target: str) -> tuple[Field[ir.Environment], ...]:
    """The compared environment fields: the settings of every installed target (its
    ``setting_fields``, in the language's target order) between the common ones; a namespace
    change points at the setting of the head's ``target`` that names it (``namespace_path``),
    or at the environment when it names none."""
    named: Field[ir.Environment] = Field(
        "namespace", plugins.namespace_path(target) or (), lambda e: e.namespace
    )
    settings = (_setting(f) for t in plugins.ordered_targets() for f in t.setting_fields)
    return (_TARGET_FIELD, named, *settings, *_ENVIRONMENT_TAIL)


def _setting(setting: plugins.SettingField) -> Field[ir.Environment]:
    """A target's setting as a field of the environment, read through its opaque settings."""
    risk = setting.risk

    def show(env: ir.Environment) -> str:
        return setting.show(env.target_settings)

    def check(old: ir.Environment, new: ir.Environment) -> str | None:
        return risk(old.target_settings, new.target_settings) if risk else None

    return Field(setting.label, setting.path, show, check if risk else None)


def _relaxed(attribute: str) -> Callable[[ir.Security, ir.Security], str | None]:
    """``encryption-relaxed`` when ``attribute`` was required and no longer is."""

    def check(old: ir.Security, new: ir.Security) -> str | None:
        relaxed = getattr(old, attribute) == "required" and getattr(new, attribute) != "required"
        return "encryption-relaxed" if relaxed else None

    return check


def _deny_risk(old: ir.Security, new: ir.Security) -> str | None:
    return "default-deny-disabled" if old.default_deny and not new.default_deny else None


def _registry_risk(old: ir.Security, new: ir.Security) -> str | None:
    loosened = bool(set(new.allowed_registries) - set(old.allowed_registries))
    dropped_digest = old.require_digest and not new.require_digest
    return "image-policy-relaxed" if loosened or dropped_digest else None


_SECURITY_FIELDS: tuple[Field[ir.Security], ...] = (
    Field("encryption at rest", ("encryption", "atRest"), lambda s: s.encryption_at_rest, _relaxed("encryption_at_rest")),
    Field("encryption in transit", ("encryption", "inTransit"), lambda s: s.encryption_in_transit, _relaxed("encryption_in_transit")),
    Field("default deny", ("network", "defaultDeny"), lambda s: "on" if s.default_deny else "off", _deny_risk),
    Field("allowed registries", ("images", "allowedRegistries"), lambda s: listed(s.allowed_registries), _registry_risk),
    Field("image digests", ("images", "requireDigest"), lambda s: "required" if s.require_digest else "optional", _registry_risk),
)  # fmt: skip


_RECEIVER_FIELDS: tuple[Field[ir.Receiver], ...] = (
    Field("Slack channel", ("slack", "channel"), lambda r: r.slack_channel or "none"),
    Field(
        "Slack webhook secret",
        ("slack", "webhookSecret"),
        lambda r: r.slack_webhook_secret or "none",
    ),
    Field(
        "PagerDuty key secret",
        ("pagerduty", "routingKeySecret"),
        lambda r: r.pagerduty_secret or "none",
    ),
    Field("email", ("email",), lambda r: listed(r.email)),
)


def environment(summary: Summary, name: str) -> None:
    if summary.base is None:
        return
    old, new = summary.base.environment, summary.head.environment
    root = ("environments", name)
    fields = _environment_fields(new.target)
    summary.fields("environment", "environment", name, root, old, new, fields)
    old_role, new_role = _ci_role(summary.base, name), _ci_role(summary.head, name)
    before, after = (role.role_arn if role else "none" for role in (old_role, new_role))
    if before != after:
        text = f"environment {name}: CI deploy role {before} {ARROW} {after}"
        declared = new_role or old_role
        path = (*declared.origin.path, "roleArn") if declared else ("ci", "environments", name)
        summary.add("environment", name, "changed", text, path, ("deploy-role-changed",))


def _ci_role(system: ir.System, name: str) -> ir.CiRole | None:
    """The role the CI workflows assume to plan and apply environment ``name``."""
    for env in system.ci.environments:
        if env.name == name and env.role is not None:
            return env.role
    return None


def system(summary: Summary) -> None:
    if summary.base is None:
        return
    old, new = summary.base, summary.head
    for label, path, before, after in (
        ("owner", ("metadata", "owner"), old.owner, new.owner),
        ("labels", ("metadata", "labels"), _pairs(old.labels), _pairs(new.labels)),
    ):
        if before != after:
            text = f"system {new.name}: {label} {before} {ARROW} {after}"
            summary.add("system", new.name, "changed", text, path)


def security(summary: Summary) -> None:
    head = summary.head.security
    if summary.base is not None:
        old = summary.base.security
        summary.fields("security", "security", "policy", ("security",), old, head, _SECURITY_FIELDS)
    _network(summary)
    _access(summary)
    _secrets(summary)


def _network(summary: Summary) -> None:
    def key(allow: ir.NetworkAllow) -> str:
        ports = ",".join(str(p) for p in allow.ports) or "all ports"
        return f"{allow.source} {ARROW} {allow.destination} ({ports})"

    old = {key(a): a for a in summary.base.security.allow} if summary.base else {}
    new = {key(a): a for a in summary.head.security.allow}
    for text in sorted(set(old) ^ set(new)):
        gone = text in old
        allow = old[text] if gone else new[text]
        line = f"network allow {text} {'REMOVED' if gone else 'ADDED'}"
        summary.add("security", "network", "removed" if gone else "added", line, allow.origin.path)


def _access(summary: Summary) -> None:
    def key(rule: ir.AccessRule) -> str:
        return f"{rule.principal} may {'/'.join(rule.actions)} {listed(rule.resources)}"

    old = {key(r): r for r in summary.base.security.access} if summary.base else {}
    new = {key(r): r for r in summary.head.security.access}
    for text in sorted(set(old) ^ set(new)):
        gone = text in old
        rule = old[text] if gone else new[text]
        line = f"access: {text} {'REMOVED' if gone else 'ADDED'}"
        summary.add(
            "security", rule.principal, "removed" if gone else "added", line, rule.origin.path
        )


def _secrets(summary: Summary) -> None:
    def added(name: str, secret: ir.Secret) -> None:
        summary.add(
            "security", name, "added", f"secret {name} ADDED ({secret.scheme})", secret.origin.path
        )

    def removed(name: str, secret: ir.Secret) -> None:
        summary.add("security", name, "removed", f"secret {name} REMOVED", secret.origin.path)

    def changed(name: str, old: ir.Secret, new: ir.Secret) -> None:
        text = f"secret {name}: reference {old.ref} {ARROW} {new.ref}"
        summary.add("security", name, "changed", text, new.origin.path)

    base = summary.base.security.secrets if summary.base else None
    summary.entries("security", base, summary.head.security.secrets, added, removed, changed)


def policies(summary: Summary) -> None:
    old = summary.base.policies if summary.base else ir.PolicySettings({}, ())
    new = summary.head.policies
    for rule in sorted(set(old.severities) | set(new.severities)):
        before, after = old.severities.get(rule, "default"), new.severities.get(rule, "default")
        if before == after or (summary.base is None and after == "default"):
            continue
        lowered = _SEVERITY_ORDER.get(after, 3) < _SEVERITY_ORDER.get(before, 3)
        text = f"policy rule {rule}: severity {before} {ARROW} {after}"
        path = ("policies", "rules", rule)
        summary.add(
            "policies", rule, "changed", text, path, ("policy-relaxed" if lowered else None,)
        )
    _policy_params(summary, old, new)
    for rego in sorted(set(old.rego) ^ set(new.rego)):
        gone = rego in old.rego
        text = f"Rego policy {rego} {'REMOVED' if gone else 'ADDED'}"
        summary.add(
            "policies",
            rego,
            "removed" if gone else "added",
            text,
            ("policies", "rego"),
            ("policy-relaxed" if gone else None,),
        )


def _policy_params(summary: Summary, old: ir.PolicySettings, new: ir.PolicySettings) -> None:
    """One line per rule parameter whose value changes (``default``: the rule's own)."""
    for rule in sorted(set(old.params) | set(new.params)):
        before = _flat(old.params.get(rule, {}))
        after = _flat(new.params.get(rule, {}))
        for key in sorted(set(before) | set(after)):
            was, now = before.get(key, "default"), after.get(key, "default")
            if was == now:
                continue
            text = f"policy rule {rule}: params.{'.'.join(key)} {was} {ARROW} {now}"
            summary.add(
                "policies", rule, "changed", text, ("policies", "rules", rule, "params", *key)
            )


def _flat(params: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Nested parameters as leaf paths -> their text (lists and numbers as JSON)."""
    found: dict[tuple[str, ...], str] = {}
    for name, value in params.items():
        if isinstance(value, Mapping):
            found.update(_flat(value, (*prefix, name)))
        else:
            found[(*prefix, name)] = value if isinstance(value, str) else json.dumps(value)
    return found


def waivers(summary: Summary) -> None:
    def key(waiver: ir.Waiver) -> tuple[str, str]:
        return waiver.policy, waiver.target

    old = {key(w): w for w in summary.base.waivers} if summary.base else {}
    new = {key(w): w for w in summary.head.waivers}
    for policy, target in sorted(set(old) | set(new)):
        before, after = old.get((policy, target)), new.get((policy, target))
        label = f"waiver of {policy} for {target}"
        if before is None and after is not None:
            text = f"{label} ADDED until {after.expires} (owner {after.owner}: {after.reason})"
            summary.add("waivers", policy, "added", text, after.origin.path, ("waiver-added",))
        elif after is None and before is not None:
            summary.add("waivers", policy, "removed", f"{label} REMOVED", before.origin.path)
        elif before is not None and after is not None and not same(before, after):
            _waiver_change(summary, label, before, after)


def _waiver_change(summary: Summary, label: str, before: ir.Waiver, after: ir.Waiver) -> None:
    path = after.origin.path
    if before.expires != after.expires:
        risk = "waiver-extended" if after.expires > before.expires else None
        text = f"{label}: expires {before.expires} {ARROW} {after.expires}"
        summary.add("waivers", before.policy, "changed", text, (*path, "expires"), (risk,))
    for attribute in ("owner", "reason", "ticket"):
        if getattr(before, attribute) != getattr(after, attribute):
            text = f"{label}: {attribute} {getattr(before, attribute)} {ARROW} {getattr(after, attribute)}"
            summary.add("waivers", before.policy, "changed", text, (*path, attribute))


def alerting(summary: Summary) -> None:
    old = summary.base.alerting if summary.base else None
    new = summary.head.alerting

    def added(name: str, receiver: ir.Receiver) -> None:
        summary.add("alerting", name, "added", f"alert receiver {name} ADDED", receiver.origin.path)

    def removed(name: str, receiver: ir.Receiver) -> None:
        text = f"alert receiver {name} REMOVED"
        summary.add("alerting", name, "removed", text, receiver.origin.path, ("alert-removed",))

    def changed(name: str, before: ir.Receiver, after: ir.Receiver) -> None:
        root = after.origin.path
        summary.fields("alerting", "alert receiver", name, root, before, after, _RECEIVER_FIELDS)

    summary.entries(
        "alerting", old.receivers if old else None, new.receivers, added, removed, changed
    )
    _routes(summary, old.routes if old else (), new.routes)
    if old is not None and old.default_receiver != new.default_receiver:
        text = f"default alert receiver {old.default_receiver} {ARROW} {new.default_receiver}"
        risk = "alert-removed" if new.default_receiver is None else None
        summary.add(
            "alerting", "default", "changed", text, ("alerting", "defaultReceiver"), (risk,)
        )


def _routes(summary: Summary, old: tuple[ir.Route, ...], new: tuple[ir.Route, ...]) -> None:
    def key(route: ir.Route) -> str:
        return f"{route.owner}/{route.severity or 'any'} {ARROW} {route.receiver}"

    before, after = {key(r): r for r in old}, {key(r): r for r in new}
    for text in sorted(set(before) ^ set(after)):
        gone = text in before
        route = before[text] if gone else after[text]
        line = f"alert route {text} {'REMOVED' if gone else 'ADDED'}"
        summary.add(
            "alerting",
            route.owner,
            "removed" if gone else "added",
            line,
            route.origin.path,
            ("alert-removed" if gone else None,),
        )


def _pairs(labels: Mapping[str, str]) -> str:
    return listed(f"{k}={v}" for k, v in sorted(labels.items()))


# --- SLAs --------------------------------------------------------------------------------------


def indicator(sla: ir.Sla) -> str:
    found = sla.indicator
    if found.kind == "latency":
        return f"latency < {duration(found.latency_threshold_seconds)}"
    if found.kind == "freshness":
        return f"freshness < {duration(found.max_age_seconds)}"
    if found.kind == "drift":
        return f"drift < {found.drift_threshold:g}"
    if found.kind == "ratio":
        return "ratio of error and total queries"
    return found.kind


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _ratio(found: ir.Indicator) -> str:
    return f"{found.ratio_errors} / {found.ratio_total}" if found.kind == "ratio" else "none"


def _subject(sla: ir.Sla) -> str:
    if sla.subject is None:
        return "none"
    noun = "model" if sla.subject_kind == "model" else "data source"
    return f"{noun} {sla.subject}"


_SLA_FIELDS: tuple[Field[ir.Sla], ...] = (
    Field("objective", ("objective",), lambda s: percent(s.objective)),
    Field("window", ("window",), lambda s: duration(s.window_seconds)),
    Field("indicator", ("indicator",), lambda s: s.indicator.kind),
    Field(
        "latency threshold",
        ("indicator", "latency", "threshold"),
        lambda s: duration(s.indicator.latency_threshold_seconds),
    ),
    Field(
        "max age",
        ("indicator", "freshness", "maxAge"),
        lambda s: duration(s.indicator.max_age_seconds),
    ),
    Field(
        "drift threshold",
        ("indicator", "drift", "threshold"),
        lambda s: _number(s.indicator.drift_threshold),
    ),
    Field("ratio queries", ("indicator", "ratio"), lambda s: _ratio(s.indicator)),
    Field("subject", (), _subject),
    Field("owner", ("owner",), lambda s: s.owner),
)


def slas(summary: Summary) -> None:
    def added(name: str, sla: ir.Sla) -> None:
        goal = f"{percent(sla.objective)} {indicator(sla)} over {duration(sla.window_seconds)}"
        text = f"SLA {name} ADDED: {goal}" + _alerts(summary.alerts_head, name, "generated")
        summary.add("slas", name, "added", text, ("slas", name))

    def removed(name: str, sla: ir.Sla) -> None:
        text = f"SLA {name} REMOVED" + _alerts(summary.alerts_base, name, "removed")
        summary.add("slas", name, "removed", text, ("slas", name), ("sla-removed",))

    def changed(name: str, old: ir.Sla, new: ir.Sla) -> None:
        suffix = _alerts(summary.alerts_head, name, "regenerated")
        summary.fields("slas", "SLA", name, ("slas", name), old, new, _SLA_FIELDS, suffix)

    base = summary.base.slas if summary.base else None
    summary.entries("slas", base, summary.head.slas, added, removed, changed)
    if summary.base is not None:
        _alert_counts(summary)


def _alerts(counts: Mapping[str, int], name: str, verb: str) -> str:
    count = counts.get(name, 0)
    return f": {count} alert{'s' if count != 1 else ''} {verb}" if count else ""


def _alert_counts(summary: Summary) -> None:
    """SLAs kept on both sides whose number of alerts went down (a drift alert dropped...)."""
    assert summary.base is not None
    for name in sorted(set(summary.base.slas) & set(summary.head.slas)):
        before, after = summary.alerts_base.get(name, 0), summary.alerts_head.get(name, 0)
        if after < before:
            text = f"SLA {name}: alerts {before} {ARROW} {after}"
            summary.add("slas", name, "changed", text, ("slas", name), ("alert-removed",))


def alert_counts(resources: Mapping[str, ResourceJson]) -> dict[str, int]:
    """Alerting rules per SLA (label ``slo``) in the graph's PrometheusRule resources; empty
    when the target puts no rules in its graph (``tables.alert_counts``: a base read from the
    plan cache gives the counts stored with it, a head that took units from it those counts
    with the resources it does not share counted apart)."""
    return tables.alert_counts(resources)
