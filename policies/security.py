"""Security rules: networking, exposure, secrets, access and encryption."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Severity
from mlplane.compiler.policy.engine import Finding, RelatedPath
from mlplane.policies.common import PACK, first_written

SECRET_STORES_BY_TARGET = {
    "kubernetes": frozenset({"vault", "aws-sm", "gcp-sm", "azure-kv", "k8s", "env"}),
    "aws": frozenset({"vault", "aws-sm", "gcp-sm", "azure-kv", "env"}),
}
"""Secret schemes each target can resolve: ``k8s://`` names a Secret in a cluster, which an
``aws`` environment does not have."""


@PACK.rule(
    "security.default-deny",
    title="Networking denies by default",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV2_K8S_6", "AVD-KSV-0038"),
    rationale="Without a default-deny policy every pod can reach every model and data source "
    "in the cluster, and the network allows in the spec document nothing. With it, each "
    "connection exists because a reviewed allow rule says so.",
    remediation="set security.network.defaultDeny: true and list the allowed connections",
    example="security:\n  network: {defaultDeny: false}",
    fix="security:\n  network:\n    defaultDeny: true\n"
    "    allow: [{from: 'namespace:gateway', to: models.scorer, ports: [8080]}]",
)
def default_deny(system: ir.System) -> Iterator[Finding]:
    if not system.security.default_deny:
        yield Finding(
            "security.network.defaultDeny is false: every workload can reach every model",
            ("security", "network", "defaultDeny"),
        )


@PACK.rule(
    "security.public-exposure",
    subjects=("models",),
    title="A public model has an explicit allow from the internet",
    severity=Severity.ERROR,
    rationale="exposure: public creates an ingress; the allow rule from internet is where a "
    "reviewer sees, in the network section, that the model is reachable from outside and on "
    "which ports. Exposure without it is either a mistake or an undocumented opening.",
    remediation="add {from: internet, to: models.<name>, ports: [<port>]} to "
    "security.network.allow, or set serving.exposure: internal",
    example="models:\n  api: {..., serving: {exposure: public}}\nsecurity:\n  network: {allow: []}",
    fix="security:\n  network:\n    allow: [{from: internet, to: models.api, ports: [8080]}]",
)
def public_exposure(system: ir.System) -> Iterator[Finding]:
    allowed = {a.destination for a in system.security.allow if a.source == "internet"}
    for model in system.models.values():
        if model.serving.exposure == "public" and f"models.{model.name}" not in allowed:
            yield Finding(
                f"model {model.name!r} is exposed publicly but no network allow from internet "
                "reaches it",
                ("models", model.name, "serving", "exposure"),
            )


def _open_range(endpoint: str) -> bool:
    if endpoint == "internet":
        return True
    if not endpoint.startswith("cidr:"):
        return False
    return ipaddress.ip_network(endpoint[5:], strict=False).prefixlen == 0


@PACK.rule(
    "security.no-open-ingress",
    subjects=("allows",),
    title="Ingress from anywhere reaches only public models",
    severity=Severity.ERROR,
    mirrors=("CKV_AWS_277", "AVD-AWS-0107"),
    rationale="An allow from the internet (or cidr:0.0.0.0/0) to a data source or an internal "
    "model bypasses the exposure review: the public-exposure and classified-data rules look "
    "at serving.exposure, which such an allow ignores.",
    remediation="allow from internet only to models with serving.exposure: public; for other "
    "clients name their namespace or address range",
    example="security:\n  network:\n    allow: [{from: 'cidr:0.0.0.0/0', to: dataSources.events, "
    "ports: [9092]}]",
    fix="security:\n  network:\n    allow: [{from: 'cidr:10.20.0.0/16', to: dataSources.events, "
    "ports: [9092]}]",
)
def no_open_ingress(system: ir.System) -> Iterator[Finding]:
    public = {f"models.{m.name}" for m in system.models.values() if m.serving.exposure == "public"}
    for allow in system.security.allow:
        if not _open_range(allow.source):
            continue
        if allow.source == "internet" and allow.destination in public:
            continue
        yield Finding(
            f"network allow from {allow.source!r} opens {allow.destination!r} to the whole "
            "internet",
            allow.origin.path,
        )


@PACK.rule(
    "security.no-open-egress",
    subjects=("allows",),
    title="No egress to the whole internet",
    severity=Severity.ERROR,
    mirrors=("AVD-AWS-0104",),
    rationale="A model that can reach any address can exfiltrate what it reads and download "
    "code at run time; both are invisible in the spec. Egress to named ranges (an identity "
    "provider, a package mirror) keeps the destinations reviewable.",
    remediation="replace 'internet' or cidr:0.0.0.0/0 with the address ranges the model "
    "needs, or waive with the reason",
    example="security:\n  network:\n    allow: [{from: models.llm, to: internet, ports: [443]}]",
    fix="security:\n  network:\n    allow: [{from: models.llm, to: 'cidr:10.40.0.0/24', "
    "ports: [443]}]",
)
def no_open_egress(system: ir.System) -> Iterator[Finding]:
    for allow in system.security.allow:
        if _open_range(allow.destination):
            yield Finding(
                f"network allow lets {allow.source!r} reach any address ({allow.destination!r})",
                allow.origin.path,
            )


@PACK.rule(
    "security.no-inline-secrets",
    subjects=("secrets",),
    title="Production secrets come from a secret manager, not the deploy environment",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV_K8S_35",),
    rationale="The compiler already rejects secret values written in the spec "
    "(inline-secret: key-like and high-entropy values, never echoed). What it cannot see is an "
    "env:NAME reference, whose value is pasted into CI variables or a shell at deploy time: no "
    "rotation, no audit trail, and a copy in every pipeline log that prints the environment. "
    "Production secrets must be references into a secret manager (vault://, aws-sm://, "
    "gcp-sm://, azure-kv://, k8s://).",
    remediation="move the secret into a secret manager and reference it there "
    "(vault://PATH#KEY, aws-sm://NAME, ...); env: is for local development",
    example="security:\n  secrets:\n    db-password: {ref: 'env:DB_PASSWORD'}",
    fix="security:\n  secrets:\n    db-password: {ref: 'vault://team/db#password'}",
)
def no_inline_secrets(system: ir.System) -> Iterator[Finding]:
    if not system.environment.production:
        return
    for secret in system.security.secrets.values():
        if secret.scheme == "env":
            yield Finding(
                f"secret {secret.name!r} is read from the deploy environment ({secret.ref}) in "
                f"production environment {system.environment.name!r}",
                (*secret.origin.path, "ref"),
            )


@PACK.rule(
    "security.secret-scheme-supported",
    subjects=("secrets",),
    title="Secret references use a scheme the environment's target can resolve",
    severity=Severity.ERROR,
    rationale="The schema accepts the known secret schemes (env, vault, aws-sm, gcp-sm, "
    "azure-kv, k8s) and rejects anything else as a likely inline secret; whether a scheme "
    "works depends on where it is deployed: k8s:// names a Kubernetes Secret, which an aws "
    "environment has no cluster to read from, so the deployment would fail at run time.",
    remediation="use a scheme of the target (on aws: aws-sm://, vault://, ...), overriding the "
    "secret per environment if needed",
    example="environments:\n  prod: {target: aws, aws: {region: eu-west-1, accountId: "
    "'123456789012'}}\nsecurity:\n  secrets:\n    token: {ref: 'k8s://ml/token#value'}",
    fix="security:\n  secrets:\n    token: {ref: 'aws-sm://ml/token'}",
)
def secret_scheme_supported(system: ir.System) -> Iterator[Finding]:
    target = system.environment.target
    known = SECRET_STORES_BY_TARGET.get(target, frozenset())
    for secret in system.security.secrets.values():
        if secret.scheme not in known:
            yield Finding(
                f"secret {secret.name!r} uses the {secret.scheme} scheme, which target {target!r} of "
                f"environment {system.environment.name!r} cannot resolve",
                (*secret.origin.path, "ref"),
            )


def _wildcard_problem(rule: ir.AccessRule) -> tuple[str, tuple[str | int, ...]] | None:
    if "*" in rule.principal:
        return f"principal {rule.principal!r} is a wildcard", ("principal",)
    if "*" in rule.resources:
        return f"{rule.principal} is granted {', '.join(rule.actions)} on '*' (everything)", (
            "resources",
            rule.resources.index("*"),
        )
    if "admin" in rule.actions:
        wild = next((r for r in rule.resources if r.endswith("*")), None)
        if wild is not None:
            return f"{rule.principal} is granted admin on {wild!r}", (
                "resources",
                rule.resources.index(wild),
            )
    return None


@PACK.rule(
    "security.access-no-wildcards",
    subjects=("access",),
    title="Access rules name their principals, and admin and '*' grants name their resources",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV_K8S_49", "CKV_AWS_62", "CKV_AWS_63", "AVD-KSV-0044", "AVD-AWS-0057"),
    rationale="Wildcard principals grant access to people nobody reviewed; '*' resources and "
    "admin on a wildcard grant today's and tomorrow's models and data alike. Least privilege "
    "needs names. (Scoped read or deploy grants such as slas.* stay allowed.)",
    remediation="name the principal and list the resources; split broad grants per resource",
    example="security:\n  access: [{principal: 'group:ml-admins', actions: [admin], "
    "resources: ['*']}]",
    fix="security:\n  access: [{principal: 'group:ml-admins', actions: [admin], "
    "resources: [models.scorer, dataSources.features]}]",
)
def access_no_wildcards(system: ir.System) -> Iterator[Finding]:
    for index, rule in enumerate(system.security.access):
        problem = _wildcard_problem(rule)
        if problem is not None:
            message, rest = problem
            yield Finding(message, ("security", "access", index, *rest))


@PACK.rule(
    "security.encryption-at-rest",
    subjects=("environment", "dataSources"),
    title="Encryption at rest is required, and no non-public source is unencrypted",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV_AWS_19", "CKV_AWS_16", "AVD-AWS-0088"),
    rationale="Disks, snapshots and backups outlive the systems that wrote them; encryption "
    "at rest keeps a lost volume or a misplaced snapshot from being a data breach. Only data "
    "classified public may be stored unencrypted.",
    remediation="set security.encryption.atRest: required, and encryption: managed or kms on "
    "every data source that is not public",
    example="dataSources:\n  orders: {..., classification: internal, encryption: none}",
    fix="dataSources:\n  orders: {..., classification: internal, encryption: managed}",
)
def encryption_at_rest(system: ir.System) -> Iterator[Finding]:
    if system.security.encryption_at_rest != "required":
        yield Finding(
            "security.encryption.atRest is optional: data may be stored unencrypted",
            ("security", "encryption", "atRest"),
        )
    for source in system.data_sources.values():
        if source.encryption == "none" and source.classification != "public":
            yield Finding(
                f"data source {source.name!r} ({source.classification}) is stored unencrypted",
                ("dataSources", source.name, "encryption"),
                (RelatedPath(("dataSources", source.name, "classification"), "classified here"),),
            )


@PACK.rule(
    "security.encryption-in-transit",
    title="Encryption in transit is required",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV_AWS_2", "CKV2_AWS_69"),
    rationale="Features, predictions and credentials cross node and zone boundaries; "
    "plaintext traffic can be read by anyone on the path, including a compromised pod on a "
    "shared node.",
    remediation="set security.encryption.inTransit: required",
    example="security:\n  encryption: {atRest: required, inTransit: optional}",
    fix="security:\n  encryption: {atRest: required, inTransit: required}",
)
def encryption_in_transit(system: ir.System) -> Iterator[Finding]:
    if system.security.encryption_in_transit != "required":
        yield Finding(
            "security.encryption.inTransit is optional: traffic may be sent in plaintext",
            first_written(system, ("security", "encryption", "inTransit"), ("security",)),
        )
