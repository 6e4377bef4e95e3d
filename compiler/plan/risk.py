"""Risk flags: the changes a reviewer must not miss, and ``--fail-on risk``.

Most changes are routine; a few are how outages, data loss and compliance findings happen. Each
flag has a stable code (documented in ``docs/plan.md``) so that CI rules and people can refer
to it. Resource-level flags come from the graph diff and the targets' tables of what holds data
and what serves traffic (``Target.risky_types``, see ``compiler/core/plugins.py``); spec-level
flags (exposure, classification, default-deny, SLAs, alerts, waivers, policies) are raised by
``compiler/plan/spec_changes.py`` next to the summary line they belong to, so that they point at
the spec line a reviewer should read. Some depend on the target, which declares them
(``Target.risk_codes``) and raises them from its settings (``SettingField.risk``), its model
risks (``Target.model_risks``) or its redeploys (``Target.redeploy``): on AWS, an instance type
change of an autoscaled model is flagged, because SageMaker refuses to apply it while the
endpoint's variant is registered with Application Auto Scaling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from mlplane.compiler.core import plugins
from mlplane.compiler.plan.model import ResourceChange, Risk, SpecChange

CORE_RISK_CODES: Mapping[str, str] = MappingProxyType(
    {
        "data-deleted": "a resource that holds data is deleted",
        "data-replaced": "a resource that holds data is replaced (deleted, then created empty)",
        "serving-deleted": "a resource that serves traffic is deleted",
        "serving-replaced": "a resource that serves traffic is replaced (serving is interrupted)",
        "protected-resource": "a protected resource would be deleted or replaced (Pulumi refuses)",
        "exposure-public": "a model becomes reachable from outside the cluster",
        "classification-downgraded": "a data source's classification is lowered",
        "default-deny-disabled": "the default-deny network policy is turned off",
        "encryption-relaxed": "encryption at rest or in transit is no longer required",
        "image-policy-relaxed": "image digests are no longer required or a registry is allowed",
        "policy-relaxed": "a policy rule is lowered or turned off, or a Rego policy is dropped",
        "sla-removed": "an SLA is removed (its SLO alerts go with it)",
        "alert-removed": "an alert, a drift monitor or an alert route is removed",
        "waiver-added": "a policy waiver is added",
        "waiver-extended": "a policy waiver's expiry is moved later",
        "personal-data-consumer-added": "a model reads PII or PHI it did not read before "
        "(directly or through lineage), or a new model reads it",
        "residency-crossing-added": "a lineage edge newly crosses a residency border (data "
        "derived, read or written across jurisdictions)",
        "explainability-dropped": "a model that required explanations no longer does",
        "data-source-removed": "a data source is removed (its lineage and monitoring go with it)",
        "state-backend-changed": "the Pulumi state backend of an environment changes",
        "production-model-redeployed": "a production model's live serving is redeployed (the "
        "model's line says how, and by which rollout)",
    }
)
"""The risk codes of the compiler itself, with their one-line meaning (:func:`risk_codes` adds
the installed targets')."""

CORE_RISK_NOTES: Mapping[str, str] = MappingProxyType(
    {
        "state-backend-changed": "the next apply reads and writes the stack in the new backend: "
        "it finds no state there and creates every resource again beside the old ones, which "
        "the old backend still records; the new backend also receives the stack's state "
        "(resource outputs and encrypted secrets), so check that it is one the team controls, "
        "and move the state deliberately (pulumi stack export, then import) before applying",
        "production-model-redeployed": "the apply moves production traffic by that rollout; "
        "check that the change is meant to reach the live model now",
    }
)
"""What a spec-level flag means and what to do, where its line does not say it: appended to the
line's text in the flag's message (:func:`risk_notes` adds the installed targets')."""


def risk_codes() -> Mapping[str, str]:
    """Every risk code with its one-line meaning: the compiler's, then each installed target's
    (``Target.risk_codes``, in the language's target order)."""
    found = dict(CORE_RISK_CODES)
    for target in plugins.ordered_targets():
        found.update((risk.code, risk.meaning) for risk in target.risk_codes)
    return MappingProxyType(found)


def risk_notes() -> Mapping[str, str]:
    """What each flag means and what to do, where the flagged line does not say it."""
    found = dict(CORE_RISK_NOTES)
    for target in plugins.ordered_targets():
        found.update((risk.code, risk.note) for risk in target.risk_codes if risk.note)
    return MappingProxyType(found)


def risky_types() -> plugins.RiskyTypes:
    """The resource types that hold data or serve traffic, by every installed target."""
    known = [target.risky_types for target in plugins.targets().values()]
    return plugins.RiskyTypes(
        data=frozenset().union(*(k.data for k in known)),
        serving=frozenset().union(*(k.serving for k in known)),
        data_notes=MappingProxyType({t: n for k in known for t, n in k.data_notes.items()}),
    )


def resource_risks(changes: Iterable[ResourceChange]) -> list[Risk]:
    """Flags for deleted or replaced data and serving resources, and protected ones."""
    risky = risky_types()
    found: list[Risk] = []
    for change in changes:
        if change.action not in ("delete", "replace"):
            continue
        verb = "deleted" if change.action == "delete" else "replaced"
        what = f"{_kind(change.type)} {change.name}"
        why = f" ({'; '.join(change.replace_reasons)})" if change.replace_reasons else ""
        if change.type in risky.data:
            note = f"; {risky.data_notes[change.type]}" if change.type in risky.data_notes else ""
            message = f"{what} holds data and is {verb}{why}{note}"
            found.append(Risk(f"data-{verb}", message, change.name, change.source))
        if change.type in risky.serving:
            message = f"{what} serves traffic and is {verb}{why}"
            found.append(Risk(f"serving-{verb}", message, change.name, change.source))
        if change.protected:
            message = f"{what} is protected: Pulumi will refuse to have it {verb}"
            found.append(Risk("protected-resource", message, change.name, change.source))
    return found


def spec_risks(changes: Iterable[SpecChange]) -> list[Risk]:
    """The flags that the spec summary attached to its lines, one per (line, code); the message
    is the line, followed by the code's note (:func:`risk_notes`) when it has one."""
    notes = risk_notes()
    return [
        Risk(code, _noted(change.text, notes.get(code)), change.subject, change.source)
        for change in changes
        for code in change.risks
    ]


def _noted(text: str, note: str | None) -> str:
    return f"{text}: {note}" if note else text


def _kind(token: str) -> str:
    """``kubernetes:apps/v1:Deployment`` -> ``Deployment``."""
    return token.rsplit(":", 1)[-1]
