"""Data rules: encryption, exposure, retention, residency and who may read classified data.

These rules read lineage: a model's ``upstream`` is every source it reads, directly or through
``derivedFrom``, so a rule about the data protects every copy and every consumer of it.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Severity
from mlplane.compiler.policy.engine import Finding, RelatedPath
from mlplane.policies.common import (
    CLASSIFIED,
    PACK,
    PERSONAL,
    days,
    env_path,
    first_written,
    through,
    upstream_sources,
)
from mlplane.schema import formats
from mlplane.schema.base import Spec
from mlplane.schema.types import Duration

NO_RESIDENCY = (None, "global")


class RetentionLimits(Spec):
    """The longest retention allowed for each class of personal data."""

    pii: Duration = "365d"
    """Personal data (GDPR): a year covers most analytical and model-training needs."""
    phi: Duration = "365d"
    """Health data; medical records that the law requires to be kept for years (often 7 to
    10) are a policy decision: raise it here (3650d) rather than waive every source."""


class RetentionBoundedParams(Spec):
    """The parameters of data.retention-bounded."""

    max_retention: RetentionLimits = RetentionLimits()
    """The longest retention allowed, per classification."""


@PACK.rule(
    "data.pii-encrypted",
    title="PII and PHI sources are encrypted with customer-managed keys",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV_AWS_145", "CKV_AWS_185", "AVD-AWS-0132"),
    rationale="Provider-managed keys protect a stolen disk, not a leaked account: whoever can "
    "read the bucket can read the data. With a customer-managed key (encryption: kms) access "
    "also needs the key, whose use is logged, can be revoked at once, and can be destroyed to "
    "crypto-shred personal data on request.",
    remediation="set encryption: kms on the data source",
    example="dataSources:\n  patients: {type: database, uri: 'postgresql://db:5432/p', "
    "classification: phi, encryption: managed}",
    fix="dataSources:\n  patients: {type: database, uri: 'postgresql://db:5432/p', "
    "classification: phi, encryption: kms}",
)
def pii_encrypted(system: ir.System) -> Iterator[Finding]:
    for source in system.data_sources.values():
        if source.classification in PERSONAL and source.encryption != "kms":
            path = ("dataSources", source.name, "encryption")
            shown = source.encryption or "not declared"
            yield Finding(
                f"data source {source.name!r} holds {source.classification} data but its "
                f"encryption is {shown}, not kms (customer-managed keys)",
                path,
            )


@PACK.rule(
    "data.confidential-not-public",
    subjects=("models",),
    title="Models that read classified data are not exposed publicly",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV_AWS_17", "CKV_AWS_20"),
    rationale="A public endpoint answers anyone, and a model can leak what it reads: "
    "memorised training rows, retrieved passages, features echoed in explanations. A model "
    "that reads confidential, PII or PHI data (directly or through derivedFrom lineage) must "
    "stay internal unless a reviewed waiver records the compensating controls.",
    remediation="set serving.exposure: internal, or waive with the controls that make the "
    "public endpoint safe (authentication, audit, filtering)",
    example="models:\n  scorer:\n    inputs: [features]        # derived from pii data\n"
    "    serving: {exposure: public}",
    fix="models:\n  scorer:\n    inputs: [features]\n    serving: {exposure: internal}",
)
def confidential_not_public(system: ir.System) -> Iterator[Finding]:
    for model in system.models.values():
        if model.serving.exposure != "public":
            continue
        classified = [s for s in upstream_sources(system, model) if s.classification in CLASSIFIED]
        if classified:
            first = classified[0]
            yield Finding(
                f"model {model.name!r} is exposed publicly but reads {first.classification} "
                f"data ({through(system, model, first.name)})",
                ("models", model.name, "serving", "exposure"),
                tuple(
                    RelatedPath(
                        ("dataSources", s.name, "classification"),
                        f"{s.name!r} is classified {s.classification}",
                    )
                    for s in classified
                ),
            )


@PACK.rule(
    "data.retention-required",
    title="PII and PHI sources declare how long they keep records",
    severity=Severity.ERROR,
    rationale="Storage limitation (GDPR art. 5(1)(e)) needs a retention period for personal "
    "data; without one, records are kept forever by default and deletion is nobody's job.",
    remediation="set retention on the data source, such as retention: 90d",
    example="dataSources:\n  clicks: {type: stream, uri: 'kafka://k:9092/c', classification: pii}",
    fix="dataSources:\n  clicks: {type: stream, uri: 'kafka://k:9092/c', classification: pii, "
    "retention: 90d}",
)
def retention_required(system: ir.System) -> Iterator[Finding]:
    for source in system.data_sources.values():
        if source.classification in PERSONAL and source.retention_seconds is None:
            yield Finding(
                f"data source {source.name!r} holds {source.classification} data but declares "
                "no retention",
                ("dataSources", source.name),
            )


@PACK.rule_with_params(
    "data.retention-bounded",
    params=RetentionBoundedParams,
    title="PII and PHI are kept no longer than their class's limit (365 days by default)",
    severity=Severity.ERROR,
    rationale="The longer personal data is kept, the more a breach exposes and the harder "
    "erasure requests become. A year covers most analytical and model-training needs. Where "
    "the law requires longer (medical records kept 7 to 10 years), the organisation sets the "
    "limit of that class once (params: {maxRetention: {phi: 3650d}}), reviewed with the spec; "
    "single exceptions (a legal hold on one source) are waived with an owner and an expiry.",
    remediation="lower retention to the limit or less, raise the class's limit in "
    "policies.rules.data.retention-bounded.params.maxRetention, or waive with the legal reason "
    "and an owner",
    example="dataSources:\n  clicks: {..., classification: pii, retention: 730d}",
    fix="dataSources:\n  clicks: {..., classification: pii, retention: 365d}",
)
def retention_bounded(system: ir.System, params: RetentionBoundedParams) -> Iterator[Finding]:
    limits = {
        "pii": _seconds(params.max_retention.pii),
        "phi": _seconds(params.max_retention.phi),
    }
    for source in system.data_sources.values():
        kept = source.retention_seconds
        limit = limits.get(source.classification or "")
        if limit is not None and kept is not None and kept > limit:
            yield Finding(
                f"data source {source.name!r} keeps {source.classification} data for "
                f"{days(kept)}, longer than {days(limit)}",
                ("dataSources", source.name, "retention"),
            )


def _seconds(duration: str) -> float | None:
    milliseconds = formats.parse_duration(duration)
    return milliseconds / 1000 if milliseconds is not None else None


@PACK.rule(
    "data.residency-declared",
    title="PII and PHI sources declare their residency",
    severity=Severity.WARNING,
    rationale="Residency rules can only protect data whose home is known: a personal-data "
    "source without residency can flow to a model served anywhere without a finding.",
    remediation="set residency on the data source (eu, us, ..., or global when unrestricted)",
    example="dataSources:\n  clicks: {..., classification: pii}",
    fix="dataSources:\n  clicks: {..., classification: pii, residency: eu}",
)
def residency_declared(system: ir.System) -> Iterator[Finding]:
    for source in system.data_sources.values():
        if source.classification in PERSONAL and source.residency is None:
            yield Finding(
                f"data source {source.name!r} holds {source.classification} data but declares "
                "no residency",
                ("dataSources", source.name),
            )


def _bound_sources(system: ir.System, model: ir.Model) -> list[ir.DataSource]:
    return [s for s in upstream_sources(system, model) if s.residency not in NO_RESIDENCY]


def _residency_path(system: ir.System) -> tuple[str | int, ...]:
    return first_written(
        system, env_path(system, "residency"), env_path(system, "aws", "region"), env_path(system)
    )


@PACK.rule(
    "data.residency-respected",
    subjects=("environment",),
    title="Models are served where the data they read must stay",
    severity=Severity.ERROR,
    mandatory=True,
    rationale="Data-residency law (GDPR chapter V, national localisation rules) follows the "
    "data into every copy: a feature store derived from EU records is EU data, and so are the "
    "requests a model answers from it. A model that reads data resident in one region, "
    "directly or through derivedFrom lineage at any depth, must run in an environment of that "
    "residency. Scanners that see one file cannot check this; the spec's lineage can.",
    remediation="serve the model in an environment of the data's residency (environments.<env>"
    ".residency or an AWS region there), or stop reading the data",
    example="environments:\n  prod: {target: kubernetes, residency: us}\ndataSources:\n"
    "  events: {..., residency: eu}\n  features: {..., derivedFrom: [events]}\n"
    "models:\n  scorer: {..., inputs: [features]}",
    fix="environments:\n  prod: {target: kubernetes, residency: eu}",
)
def residency_respected(system: ir.System) -> Iterator[Finding]:
    served = system.environment.residency
    if served is None:
        return
    for model in system.models.values():
        foreign = [s for s in _bound_sources(system, model) if s.residency != served]
        if foreign:
            first = foreign[0]
            yield Finding(
                f"model {model.name!r} reads data resident in {first.residency!r} "
                f"({through(system, model, first.name)}) but environment "
                f"{system.environment.name!r} serves it in {served!r}",
                _residency_path(system),
                _residency_notes(model, foreign),
            )


def _residency_notes(model: ir.Model, foreign: list[ir.DataSource]) -> tuple[RelatedPath, ...]:
    reads = RelatedPath(("models", model.name, "inputs"), f"{model.name!r} reads it here")
    return reads, *(
        RelatedPath(
            ("dataSources", s.name, "residency"), f"{s.name!r} is resident in {s.residency!r}"
        )
        for s in foreign
    )


@PACK.rule(
    "data.residency-verifiable",
    subjects=("environment",),
    title="Environments that serve residency-bound data declare their residency",
    severity=Severity.WARNING,
    rationale="data.residency-respected compares a model's data with where its environment "
    "runs; an environment that does not say where it runs (a Kubernetes cluster without "
    "residency) cannot be checked, so the guarantee silently lapses.",
    remediation="set environments.<env>.residency (AWS environments derive it from the region)",
    example="environments:\n  prod: {target: kubernetes, kubernetes: {context: prod}}",
    fix="environments:\n  prod: {target: kubernetes, residency: eu, kubernetes: {context: prod}}",
)
def residency_verifiable(system: ir.System) -> Iterator[Finding]:
    if system.environment.residency is not None:
        return
    for model in system.models.values():
        bound = _bound_sources(system, model)
        if bound:
            yield Finding(
                f"environment {system.environment.name!r} declares no residency but serves "
                f"model {model.name!r}, which reads data resident in {bound[0].residency!r}",
                env_path(system),
                (RelatedPath(("models", model.name, "inputs"), f"{model.name!r} reads it here"),),
            )


@PACK.rule(
    "data.readers-declared",
    subjects=("allows",),
    title="Classified data is reachable only by the models that declare it as an input",
    severity=Severity.ERROR,
    rationale="Lineage, residency, explainability and exposure rules all start from a model's "
    "inputs. A network allow that opens a classified data source to anything else (another "
    "model, a namespace, an address range, the internet) creates a reader that none of them "
    "sees, and a principal that was never granted access.",
    remediation="list the data source in the model's inputs, or remove the network allow",
    example="security:\n  network:\n    allow: [{from: 'namespace:analytics', "
    "to: dataSources.patients, ports: [5432]}]",
    fix="security:\n  network:\n    allow: [{from: models.triage, to: dataSources.patients, "
    "ports: [5432]}]   # triage lists patients in its inputs",
)
def readers_declared(system: ir.System) -> Iterator[Finding]:
    for allow in system.security.allow:
        kind, _, name = allow.destination.partition(".")
        source = system.data_sources.get(name) if kind == "dataSources" else None
        if source is None or source.classification not in CLASSIFIED:
            continue
        reader, _, model = allow.source.partition(".")
        if reader == "models" and model in system.models and name in system.models[model].inputs:
            continue
        yield Finding(
            f"network allow from {allow.source!r} reaches {source.classification} data source "
            f"{name!r}, which {allow.source!r} does not declare as an input",
            allow.origin.path,
            (RelatedPath(("dataSources", name, "classification"), f"{name!r} is classified here"),),
        )


@PACK.rule(
    "data.access-explicit",
    subjects=("access",),
    title="Access to classified data names each data source",
    severity=Severity.ERROR,
    mirrors=("AVD-AWS-0057",),
    rationale="A grant on dataSources.* silently extends to every source added later, "
    "including PII and PHI: reviewers approve today's list and the wildcard grants tomorrow's.",
    remediation="list the data sources the principal needs, one by one",
    example="security:\n  access: [{principal: 'group:analysts', actions: [read], "
    "resources: ['dataSources.*']}]",
    fix="security:\n  access: [{principal: 'group:analysts', actions: [read], "
    "resources: [dataSources.sales-daily]}]",
)
def access_explicit(system: ir.System) -> Iterator[Finding]:
    classified = sorted(
        s.name for s in system.data_sources.values() if s.classification in CLASSIFIED
    )
    if not classified:
        return
    for index, rule in enumerate(system.security.access):
        if "dataSources.*" in rule.resources:
            position = rule.resources.index("dataSources.*")
            yield Finding(
                f"{rule.principal} is granted {', '.join(rule.actions)} on every data source, "
                f"including classified ones ({', '.join(repr(n) for n in classified[:3])}"
                f"{', ...' if len(classified) > 3 else ''})",
                ("security", "access", index, "resources", position),
            )
