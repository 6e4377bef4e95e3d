"""Every built-in rule: a failing case located at its line, and a passing near miss.

Each case edits ``policy_cases/compliant.yaml`` (which no rule objects to) and marks the lines
where diagnostics are expected with inline annotations; the test compiles the edited spec with
the policy stage and compares the set of (line, severity, code), related places included,
exactly: a finding on the wrong line, a missing one or an extra one all fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlplane.compiler.policy.engine import installed_rules
from tests.test_policies import COMPLIANT, assert_annotated, compile_text, describe, edit

Case = Callable[[str], str]

# Unique line prefixes of compliant.yaml.
EVENTS, FEATURES, CATALOGUE = "  events: {", "  features: {", "  catalogue: {"
PROD = "  prod: {"
SCORER, SEARCH = "  scorer:", "  search:"
SCORER_IMAGE = '    image: "ghcr.io/acme/scorer@'
SCORER_INPUTS = "    inputs: [features]"
PUBLIC = "      exposure: public"
AVAILABILITY = "  scorer-availability:"
SECRET = "    feast-token:"
ENCRYPTION = "  encryption: {atRest"
ACCESS = '    - {principal: "group:analysts"'
SCORER_ALLOW = "      - {from: models.scorer, to: dataSources.features, ports: [6566]}\n"
PROD_LINE = "  prod: {target: kubernetes, production: true, residency: eu}\n"
DIGEST = "@sha256:abababababababababababababababababababababababababababababababab"


def mark(text: str, prefix: str, note: str) -> str:
    """Append ``# note`` to the one line that starts with ``prefix``."""
    lines = text.split("\n")
    hits = [index for index, line in enumerate(lines) if line.startswith(prefix)]
    assert len(hits) == 1, f"{prefix!r} starts {len(hits)} lines"
    lines[hits[0]] += f"  # {note}"
    return "\n".join(lines)


def marks(text: str, *pairs: tuple[str, str]) -> str:
    for prefix, note in pairs:
        text = mark(text, prefix, note)
    return text


def add_allow(text: str, allow: str) -> str:
    return edit(text, (SCORER_ALLOW, SCORER_ALLOW + f"      - {allow}\n"))


def dev_only_tags(text: str, tag: str) -> str:
    """Only a non-production environment, digests not required, the scorer on a tag."""
    return edit(
        text,
        (PROD_LINE, ""),
        ("requireDigest: true", "requireDigest: false"),
        (f'scorer{DIGEST}"', f'scorer:{tag}"'),
    )


SCORES = "  scores: {"
SCORES_OUTPUTS = "      outputs: [scores]"
TRAINING_RESOURCES = '      resources: {cpu: "2", memory: 4Gi}\n'


def with_batch(text: str, scores: str) -> str:
    """The scorer scores events in batch into a ``scores`` data source with ``scores``."""
    source = f'  scores: {{type: objectStore, uri: "s3://acme-scores/daily/", {scores}}}\n'
    batch = (
        '    batch:\n      schedule: "0 2 * * *"\n      inputs: [events]\n'
        '      outputs: [scores]\n      resources: {cpu: "1", memory: 2Gi}\n'
    )
    catalogue = next(line for line in text.split("\n") if line.startswith(CATALOGUE))
    return edit(
        text,
        (catalogue + "\n", catalogue + "\n" + source),
        (TRAINING_RESOURCES, TRAINING_RESOURCES + batch),
    )


SCORES_OK = "classification: pii, residency: eu, retention: 30d, encryption: kms"


FAILING: dict[str, Case] = {
    "data.pii-encrypted": lambda t: mark(
        edit(t, ("encryption: kms, freshness", "encryption: managed, freshness")),
        EVENTS, "error: [data.pii-encrypted]",
    ),
    "data.confidential-not-public": lambda t: marks(
        edit(t, ("classification: internal", "classification: confidential")),
        (PUBLIC, "error: [data.confidential-not-public]"),
        (CATALOGUE, "note: [data.confidential-not-public]"),
    ),
    "data.retention-required": lambda t: mark(
        edit(t, ("retention: 30d, ", "")), FEATURES, "error: [data.retention-required]"
    ),
    "data.retention-bounded": lambda t: mark(
        edit(t, ("retention: 30d", "retention: 400d")), FEATURES, "error: [data.retention-bounded]"
    ),
    "data.residency-declared": lambda t: mark(
        edit(t, ('"feast://demo", classification: pii, residency: eu,', '"feast://demo", classification: pii,')),
        FEATURES, "warning: [data.residency-declared]",
    ),
    "data.residency-respected": lambda t: marks(
        edit(t, ("production: true, residency: eu", "production: true, residency: us")),
        (PROD, "error: [data.residency-respected]"),
        (SCORER_INPUTS, "note: [data.residency-respected]"),
        (EVENTS, "note: [data.residency-respected]"),
        (FEATURES, "note: [data.residency-respected]"),
    ),
    "data.residency-verifiable": lambda t: marks(
        edit(t, ("production: true, residency: eu}", "production: true}")),
        (PROD, "warning: [data.residency-verifiable]"),
        (SCORER_INPUTS, "note: [data.residency-verifiable]"),
    ),
    "data.readers-declared": lambda t: marks(
        add_allow(t, "{from: models.search, to: dataSources.features, ports: [6566]}"),
        ("      - {from: models.search", "error: [data.readers-declared]"),
        (FEATURES, "note: [data.readers-declared]"),
    ),
    "data.access-explicit": lambda t: mark(
        edit(t, ("resources: [dataSources.features]}", "resources: ['dataSources.*']}")),
        ACCESS, "error: [data.access-explicit]",
    ),
    "data.batch-output-classified": lambda t: marks(
        with_batch(t, "classification: internal, residency: eu, encryption: managed"),
        (SCORES, "error: [data.batch-output-classified]"),
        (SCORES_OUTPUTS, "note: [data.batch-output-classified]"),
        (EVENTS, "note: [data.batch-output-classified]"),
        (FEATURES, "note: [data.batch-output-classified]"),
    ),
    "data.batch-residency": lambda t: marks(
        with_batch(t, SCORES_OK.replace("residency: eu", "residency: us")),
        (SCORES, "error: [data.batch-residency]"),
        (SCORES_OUTPUTS, "note: [data.batch-residency]"),
        (EVENTS, "note: [data.batch-residency]"),
        (FEATURES, "note: [data.batch-residency]"),
    ),
    "models.explainability-required": lambda t: mark(
        edit(t, ("    explainability: {required: true, method: shap}\n", "")),
        SCORER, "error: [models.explainability-required]",
    ),
    "models.drift-monitored": lambda t: mark(
        edit(t, ("    monitoring:\n      drift: {method: psi, threshold: 0.2, features: [amount]}\n", "")),
        SCORER, "error: [models.drift-monitored]",
    ),
    "models.image-digest": lambda t: mark(
        edit(t, (f'scorer{DIGEST}"', 'scorer:1.0.0"')), '    image: "ghcr.io/acme/scorer:',
        "error: [models.image-digest]",
    ),
    "models.image-registry": lambda t: mark(
        edit(t, ('"ghcr.io/acme/search@', '"docker.io/acme/search@')),
        '    image: "docker.io', "error: [models.image-registry]",
    ),
    "models.image-tag-fixed": lambda t: mark(
        dev_only_tags(t, "latest"), '    image: "ghcr.io/acme/scorer:', "error: [models.image-tag-fixed]"
    ),
    "models.resources-set": lambda t: mark(
        edit(t, ("resources: {cpu: 500m, memory: 1Gi}", "resources: {cpu: 500m}")),
        "      resources: {cpu: 500m}", "error: [models.resources-set]",
    ),
    "models.ha-replicas": lambda t: marks(
        edit(t, ("replicas: {min: 2, max: 4}", "replicas: {min: 1, max: 4}")),
        ("      replicas: {min: 1, max: 4}", "error: [models.ha-replicas]"),
        (AVAILABILITY, "note: [models.ha-replicas]"),
    ),
    "models.safe-rollout": lambda t: marks(
        edit(t, ("rollout: {strategy: canary, steps: [10, 50], pause: 5m}", "rollout: {strategy: rolling}")),
        ("      rollout: {strategy: rolling}", "error: [models.safe-rollout]"),
        (AVAILABILITY, "note: [models.safe-rollout]"),
    ),
    "models.gpu-quota": lambda t: mark(
        edit(t, ("replicas: {min: 2, max: 6}", "replicas: {min: 2}")),
        "      replicas: {min: 2}", "error: [models.gpu-quota]",
    ),
    "security.default-deny": lambda t: mark(
        edit(t, ("defaultDeny: true", "defaultDeny: false")), "    defaultDeny:",
        "error: [security.default-deny]",
    ),
    "security.public-exposure": lambda t: mark(
        edit(t, ("      - {from: internet, to: models.search, ports: [8080]}\n", "")),
        PUBLIC, "error: [security.public-exposure]",
    ),
    "security.no-open-ingress": lambda t: mark(
        add_allow(t, "{from: internet, to: models.scorer, ports: [8080]}"),
        "      - {from: internet, to: models.scorer", "error: [security.no-open-ingress]",
    ),
    "security.no-open-egress": lambda t: mark(
        add_allow(t, "{from: models.search, to: 'cidr:0.0.0.0/0', ports: [443]}"),
        "      - {from: models.search", "error: [security.no-open-egress]",
    ),
    "security.no-inline-secrets": lambda t: mark(
        edit(t, ('"vault://ml/feast#token"', '"env:FEAST_TOKEN"')), SECRET,
        "error: [security.no-inline-secrets]",
    ),
    "security.secret-scheme-supported": lambda t: mark(
        edit(
            t,
            (PROD_LINE, PROD_LINE + '  prod-aws: {target: aws, production: true, aws: {region: eu-west-1, accountId: "123456789012"}}\n'),
            ('"vault://ml/feast#token"', '"k8s://demo-prod/feast#token"'),
        ),
        SECRET, "error: [security.secret-scheme-supported]",
    ),
    "security.access-no-wildcards": lambda t: mark(
        edit(t, ('"group:analysts"', '"group:*"')), '    - {principal: "group:*"',
        "error: [security.access-no-wildcards]",
    ),
    "security.encryption-at-rest": lambda t: mark(
        edit(t, ("atRest: required", "atRest: optional")), ENCRYPTION,
        "error: [security.encryption-at-rest]",
    ),
    "security.encryption-in-transit": lambda t: mark(
        edit(t, ("inTransit: required", "inTransit: optional")), ENCRYPTION,
        "error: [security.encryption-in-transit]",
    ),
    "slas.availability-defined": lambda t: mark(
        edit(t, ("  search-availability: {model: search, objective: 99.5, window: 30d, indicator: availability}\n", "")),
        SEARCH, "error: [slas.availability-defined]",
    ),
    "slas.freshness-defined": lambda t: mark(
        edit(t, ("encryption: managed}", "encryption: managed, freshness: 1h}")), CATALOGUE,
        "warning: [slas.freshness-defined]",
    ),
    "slas.objective-realistic": lambda t: mark(
        edit(t, ("objective: 99.9, window: 30d", "objective: 99.999, window: 1d")), AVAILABILITY,
        "error: [slas.objective-realistic] note: [slas.objective-realistic]",
    ),
    "slas.freshness-consistent": lambda t: marks(
        edit(t, ("maxAge: 5m", "maxAge: 1m")),
        ("  events-fresh:", "warning: [slas.freshness-consistent]"),
        (EVENTS, "note: [slas.freshness-consistent]"),
    ),
}  # fmt: skip


def same(text: str) -> str:
    return text


PASSING: dict[str, Case] = {
    "data.pii-encrypted": lambda t: edit(t, ("classification: pii, residency: eu, retention: 90d, encryption: kms", "classification: internal, residency: eu, retention: 90d, encryption: managed")),
    "data.confidential-not-public": lambda t: edit(t, ("classification: internal", "classification: public")),
    "data.retention-required": lambda t: edit(t, ("classification: pii, residency: eu, retention: 30d, ", "classification: confidential, residency: eu, ")),
    "data.retention-bounded": lambda t: edit(t, ("retention: 30d", "retention: 365d")),
    "data.residency-declared": lambda t: edit(t, ('"feast://demo", classification: pii, residency: eu,', '"feast://demo", classification: pii, residency: global,')),
    "data.residency-respected": lambda t: edit(
        t.replace("residency: eu, retention", "residency: global, retention"),
        ("production: true, residency: eu", "production: true, residency: us"),
    ),
    "data.residency-verifiable": lambda t: edit(
        t.replace("residency: eu, retention", "residency: global, retention"),
        ("production: true, residency: eu}", "production: true}"),
    ),
    "data.readers-declared": lambda t: add_allow(t, "{from: 'namespace:bi', to: dataSources.catalogue, ports: [5432]}"),
    "data.access-explicit": lambda t: edit(t, ("resources: [dataSources.features]}", "resources: ['models.*']}")),
    "data.batch-output-classified": lambda t: with_batch(t, SCORES_OK),
    "data.batch-residency": lambda t: with_batch(t, SCORES_OK),
    "models.explainability-required": same,  # search reads internal data and explains nothing
    "models.drift-monitored": same,  # search reads internal data and has no drift monitoring
    "models.image-digest": lambda t: dev_only_tags(t, "1.0.0"),
    "models.image-registry": lambda t: edit(t, ("allowedRegistries: [ghcr.io/acme]", "allowedRegistries: [ghcr.io/acme/scorer, ghcr.io/acme/train, ghcr.io/acme/search]")),
    "models.image-tag-fixed": lambda t: dev_only_tags(t, "1.0.0-latest"),
    "models.resources-set": same,  # training resources are set too
    "models.ha-replicas": lambda t: edit(t, ("replicas: {min: 2, max: 6}", "replicas: {min: 1, max: 6}")),
    "models.safe-rollout": lambda t: edit(t, ("rollout: {strategy: blueGreen, pause: 10m}", "rollout: {strategy: rolling}")),
    "models.gpu-quota": lambda t: edit(t, ("replicas: {min: 2, max: 6}", "replicas: {min: 2}"), ("gpu: 1", "gpu: 0")),
    "security.default-deny": same,
    "security.public-exposure": same,  # search is public and allowed from internet
    "security.no-open-ingress": lambda t: add_allow(t, "{from: 'cidr:10.0.0.0/8', to: models.scorer, ports: [8080]}"),
    "security.no-open-egress": lambda t: add_allow(t, "{from: models.search, to: 'cidr:10.40.0.0/24', ports: [443]}"),
    "security.no-inline-secrets": lambda t: edit(t, (PROD_LINE, ""), ('"vault://ml/feast#token"', '"env:FEAST_TOKEN"')),
    "security.secret-scheme-supported": lambda t: edit(t, ('"vault://ml/feast#token"', '"k8s://demo-prod/feast#token"')),
    "security.access-no-wildcards": lambda t: edit(t, ("resources: [dataSources.features]}", "resources: ['slas.*']}")),
    "security.encryption-at-rest": lambda t: edit(t, ("classification: internal, encryption: managed", "classification: public, encryption: none")),
    "security.encryption-in-transit": same,
    "slas.availability-defined": lambda t: edit(t, (PROD_LINE, ""), ("  search-availability: {model: search, objective: 99.5, window: 30d, indicator: availability}\n", "")),
    "slas.freshness-defined": same,  # events declares freshness and events-fresh measures it
    "slas.objective-realistic": lambda t: edit(t, ("objective: 99.9, window: 30d", "objective: 99.99, window: 90d")),
    "slas.freshness-consistent": lambda t: edit(t, ("maxAge: 5m", "maxAge: 10m")),
}  # fmt: skip


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    ids = {rule.id for rule in installed_rules() if not rule.reads_graph}  # graph rules: see
    assert set(FAILING) == ids  # test_policies_aws.py
    assert set(PASSING) == ids


def test_the_base_spec_is_compliant(tmp_path: Path) -> None:
    result = compile_text(tmp_path, COMPLIANT)
    assert result.ok and not result.diagnostics and not result.waived, describe(result)


@pytest.mark.parametrize("rule_id", sorted(FAILING))
def test_failing_case_is_found_at_its_line(rule_id: str, tmp_path: Path) -> None:
    text = FAILING[rule_id](COMPLIANT)
    result = compile_text(tmp_path, text)
    assert_annotated(result, text)
    assert any(d.code == rule_id for d in result.diagnostics)


@pytest.mark.parametrize("rule_id", sorted(PASSING))
def test_passing_case_has_no_finding(rule_id: str, tmp_path: Path) -> None:
    result = compile_text(tmp_path, PASSING[rule_id](COMPLIANT))
    assert not result.diagnostics, describe(result)
