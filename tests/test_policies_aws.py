"""Graph rules (policies/aws.py): each mirrored check fails and passes on a hand-built graph,
the engine tunes, waives and locates their findings like any rule's, and the examples' AWS
graphs are clean.

The base graph is a hardened data bucket, its access-log bucket, a key, a SageMaker model with
its endpoint configuration, a log group, a topic and an execution-role policy; each case edits
one resource of it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import plugins
from mlplane.compiler.core.diagnostics import Diagnostics, Location
from mlplane.compiler.core.graph import Resource, ResourceGraph, json_document, ref
from mlplane.compiler.core.ir import Origin, System
from mlplane.compiler.policy.engine import PolicyRun, installed_rules
from tests.fake_target import FakeTarget
from tests.test_policies import COMPLIANT, ROOT, _waiver, compile_text, describe

Inputs = dict[str, Any]
Graph = dict[str, tuple[str, Inputs]]
"""Logical name -> (type token, inputs): what a case edits."""

LOCATION = Location("mlplane.yaml", 12, 3)
SOURCE_PATH = ("dataSources", "events")
DATA, LOGS = "events-bucket", "access-logs"
_TLS = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def _bucket_side(bucket: str, algorithm: Inputs) -> Graph:
    on = ref(bucket, "bucket")
    return {
        f"{bucket}-pab": (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            {"bucket": on, "blockPublicAcls": True, "blockPublicPolicy": True,
             "ignorePublicAcls": True, "restrictPublicBuckets": True},
        ),
        f"{bucket}-sse": (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            {"bucket": on, "rules": [{"applyServerSideEncryptionByDefault": algorithm}]},
        ),
        f"{bucket}-versioning": (
            "aws:s3/bucketVersioning:BucketVersioning",
            {"bucket": on, "versioningConfiguration": {"status": "Enabled"}},
        ),
        f"{bucket}-policy": (
            "aws:s3/bucketPolicy:BucketPolicy",
            {"bucket": on, "policy": json_document({"Version": "2012-10-17", "Statement": [_TLS]})},
        ),
    }  # fmt: skip


def compliant() -> Graph:
    kms = {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": ref("key", "arn")}
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Effect": "Allow", "Action": ["ec2:DescribeSubnets", "ec2:DescribeVpcs"], "Resource": "*"},
    ]}  # fmt: skip
    return {
        DATA: ("aws:s3/bucket:Bucket", {"bucket": "acme-events"}),
        LOGS: ("aws:s3/bucket:Bucket", {"bucket": "acme-logs"}),
        **_bucket_side(DATA, kms),
        **_bucket_side(LOGS, {"sseAlgorithm": "AES256"}),
        f"{DATA}-logging": (
            "aws:s3/bucketLogging:BucketLogging",
            {"bucket": ref(DATA, "bucket"), "targetBucket": ref(LOGS, "bucket")},
        ),
        "key": ("aws:kms/key:Key", {"enableKeyRotation": True}),
        "model": ("aws:sagemaker/model:Model", {"enableNetworkIsolation": True}),
        "config": (
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            {"kmsKeyArn": ref("key", "arn"),
             "productionVariants": [{"instanceType": "ml.m5.xlarge", "modelName": ref("model", "name")}]},
        ),
        "logs": ("aws:cloudwatch/logGroup:LogGroup", {"kmsKeyId": ref("key", "arn"), "retentionInDays": 365}),
        "topic": ("aws:sns/topic:Topic", {"kmsMasterKeyId": ref("key", "arn")}),
        "role-policy": ("aws:iam/rolePolicy:RolePolicy", {"policy": json_document(policy)}),
    }  # fmt: skip


def graph_of(spec: Graph) -> ResourceGraph:
    resources = [
        Resource(token, name, inputs, Origin(SOURCE_PATH, LOCATION))
        for name, (token, inputs) in spec.items()
    ]
    return ResourceGraph.build("prod", "aws", resources)


def changed(name: str, **inputs: Any) -> Callable[[Graph], Graph]:
    """A case: ``name``'s inputs updated (a value of None removes the input)."""

    def apply(spec: Graph) -> Graph:
        token, old = spec[name]
        new = {**old, **inputs}
        spec[name] = (token, {k: v for k, v in new.items() if v is not None})
        return spec

    return apply


def dropped(name: str) -> Callable[[Graph], Graph]:
    def apply(spec: Graph) -> Graph:
        del spec[name]
        return spec

    return apply


def statements(*items: Inputs) -> Inputs:
    return {"policy": json_document({"Version": "2012-10-17", "Statement": list(items)})}


def tls(**changes: Any) -> Inputs:
    return statements({**_TLS, **changes})


def same(spec: Graph) -> Graph:
    return spec


def variant(instance: str) -> list[Inputs]:
    return [{"instanceType": instance, "modelName": ref("model", "name")}]


CREATE_ENI = {"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "*"}
FAILING: dict[str, Callable[[Graph], Graph]] = {
    "aws.s3-public-access-block": dropped(f"{DATA}-pab"),
    "aws.s3-public-access-flags": changed(f"{DATA}-pab", blockPublicPolicy=False),
    "aws.s3-kms-encrypted": changed(f"{DATA}-sse", rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
    "aws.s3-versioned": changed(f"{DATA}-versioning", versioningConfiguration={"status": "Suspended"}),
    "aws.s3-access-logged": changed(f"{DATA}-logging", bucket=ref(LOGS, "bucket")),
    "aws.s3-tls-only": changed(f"{DATA}-policy", **tls(Resource=["arn:aws:s3:::b/*"])),
    "aws.kms-rotation": changed("key", enableKeyRotation=False),
    "aws.sagemaker-endpoint-kms": changed("config", kmsKeyArn=None),
    "aws.sagemaker-network-isolation": changed("model", enableNetworkIsolation=False),
    "aws.log-group-kms": changed("logs", kmsKeyId=None),
    "aws.log-group-retention": changed("logs", retentionInDays=180),
    "aws.sns-encrypted": changed("topic", kmsMasterKeyId=None),
    "aws.iam-no-wildcard-write": changed("role-policy", **statements(CREATE_ENI)),
}  # fmt: skip
PASSING: dict[str, Callable[[Graph], Graph]] = {
    "aws.s3-public-access-block": same,
    "aws.s3-public-access-flags": same,
    "aws.s3-kms-encrypted": same,  # the access-log bucket may only use SSE-S3, and does
    "aws.s3-versioned": same,
    "aws.s3-access-logged": same,  # the access-log bucket itself is not logged
    "aws.s3-tls-only": changed(f"{DATA}-policy", **tls(Action="*", Principal={"AWS": "*"})),
    "aws.kms-rotation": changed("key", enableKeyRotation=False, customerMasterKeySpec="RSA_2048"),
    "aws.sagemaker-endpoint-kms": changed("config", kmsKeyArn=None, productionVariants=variant("ml.g5.2xlarge")),
    "aws.sagemaker-network-isolation": same,
    "aws.log-group-kms": same,
    "aws.log-group-retention": changed("logs", retentionInDays=0),
    "aws.sns-encrypted": same,
    "aws.iam-no-wildcard-write": changed("role-policy", **statements(
        {**CREATE_ENI, "Condition": {"ArnEquals": {"ec2:Subnet": "arn:aws:ec2:us-east-1:1:subnet/s"}}},
        {**CREATE_ENI, "Resource": "arn:aws:ec2:us-east-1:1:network-interface/*"},
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
    )),
}  # fmt: skip
MORE_FAILING: list[tuple[str, Callable[[Graph], Graph]]] = [
    ("aws.s3-kms-encrypted", dropped(f"{LOGS}-sse")),  # the log bucket still needs SSE-S3
    ("aws.s3-tls-only", changed(f"{DATA}-policy", **tls(Effect="Allow"))),
    ("aws.s3-tls-only", dropped(f"{DATA}-policy")),
    ("aws.sagemaker-endpoint-kms", changed("config", kmsKeyArn=None, shadowProductionVariants=variant("ml.c5.xlarge"), productionVariants=variant("ml.g5.2xlarge"))),
    ("aws.log-group-retention", changed("logs", retentionInDays=None)),
    ("aws.iam-no-wildcard-write", changed("role-policy", **statements({"Effect": "Allow", "Action": "s3:*", "Resource": ["*"]}))),
]  # fmt: skip
GRAPH_RULES = sorted(rule.id for rule in installed_rules() if rule.reads_graph)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> System:
    return compile_text(tmp_path_factory.mktemp("spec"), COMPLIANT).systems["prod"]


def findings(system: System, spec: Graph, rule_id: str | None = None) -> list[str]:
    found, waived = Diagnostics(), Diagnostics()
    PolicyRun().check_graph(system, graph_of(spec), found, waived)
    assert not waived
    return [d.code for d in found if rule_id is None or d.code == rule_id]


def test_every_graph_rule_has_a_failing_and_a_passing_case() -> None:
    assert set(FAILING) == set(PASSING) == set(GRAPH_RULES)
    rules = {rule.id: rule for rule in installed_rules()}
    assert all(rules[r].mirrors or r == "aws.s3-tls-only" for r in GRAPH_RULES)


def test_the_base_graph_is_compliant(system: System) -> None:
    assert findings(system, compliant()) == []


@pytest.mark.parametrize(
    ("rule_id", "case"),
    [*sorted(FAILING.items()), *MORE_FAILING],
    ids=[*sorted(FAILING), *(f"{r}-more" for r, _ in MORE_FAILING)],
)
def test_failing_case_is_found(
    system: System, rule_id: str, case: Callable[[Graph], Graph]
) -> None:
    assert findings(system, case(copy.deepcopy(compliant()))) == [rule_id]


@pytest.mark.parametrize("rule_id", sorted(PASSING))
def test_passing_case_has_no_finding(system: System, rule_id: str) -> None:
    assert findings(system, PASSING[rule_id](copy.deepcopy(compliant()))) == []


def test_a_finding_is_located_at_the_origin_of_its_resource(system: System) -> None:
    found, waived = Diagnostics(), Diagnostics()
    spec = FAILING["aws.s3-versioned"](compliant())
    PolicyRun().check_graph(system, graph_of(spec), found, waived)
    [diagnostic] = found
    assert (diagnostic.location, diagnostic.path) == (LOCATION, "dataSources.events")
    assert "CKV_AWS_21" in (diagnostic.hint or "")
    assert diagnostic.message == f"bucket {DATA!r} has no versioning enabled"


# --- the engine: tuning, waivers, where graph rules run ------------------------------------------


def test_a_waiver_on_the_spec_path_of_the_origin_waives_a_graph_finding(tmp_path: Path) -> None:
    text = (
        COMPLIANT + "waivers:\n" + _waiver("aws.s3-versioned", "dataSources.events", "2027-01-01")
    )
    system = compile_text(tmp_path, text).systems["prod"]
    found, waived = Diagnostics(), Diagnostics()
    PolicyRun().check_graph(
        system, graph_of(FAILING["aws.s3-versioned"](compliant())), found, waived
    )
    assert not found
    [note] = waived
    assert note.code == "aws.s3-versioned" and "waived until 2027-01-01" in note.message


def test_graph_rules_are_tuned_like_any_rule(tmp_path: Path) -> None:
    text = COMPLIANT + "policies:\n  rules:\n    aws.s3-versioned: {severity: off}\n"
    text += "    aws.log-group-kms: {severity: warning}\n"
    system = compile_text(tmp_path, text).systems["prod"]
    spec = changed("logs", kmsKeyId=None)(FAILING["aws.s3-versioned"](compliant()))
    found, waived = Diagnostics(), Diagnostics()
    PolicyRun().check_graph(system, graph_of(spec), found, waived)
    assert [(d.code, d.severity.value) for d in found] == [("aws.log-group-kms", "warning")]


def test_validate_does_not_call_a_graph_rule_waiver_unmatched(tmp_path: Path) -> None:
    """``validate`` lowers nothing, so it cannot know whether the waiver is still needed."""
    text = (
        COMPLIANT + "waivers:\n" + _waiver("aws.s3-versioned", "dataSources.events", "2027-01-01")
    )
    result = compile_text(tmp_path, text)
    assert result.ok and not result.diagnostics and not result.graphs, describe(result)


def test_lowering_with_policies_runs_graph_rules_and_keeps_the_graph(tmp_path: Path) -> None:
    text = (
        COMPLIANT + "waivers:\n" + _waiver("aws.s3-versioned", "dataSources.events", "2027-01-01")
    )
    result = compile_text(tmp_path, text, lower=True)
    assert set(result.graphs) == {"dev", "prod"}
    # The Kubernetes graph has no bucket: now the waiver is known to match nothing. (The dev
    # environment also warns that egress to its DNS-named data sources stays open, and both
    # that no mesh encrypts their pod traffic.)
    target_codes = ("kubernetes-egress-open", "kubernetes-in-transit-not-enforced")
    policy_codes = [d.code for d in result.diagnostics if d.code not in target_codes]
    assert policy_codes == ["waiver-unmatched"], describe(result)


class _FixedGraph(FakeTarget):
    """A target that lowers every environment to one hand-built graph (the rest of the target
    protocol is the fake target's)."""

    name = "kubernetes"

    def __init__(self, spec: Graph) -> None:
        self.graph = graph_of(spec)

    def lower(self, system: System, diagnostics: Diagnostics) -> ResourceGraph:
        del system, diagnostics
        return self.graph

    def emit(self, system: System, graph: ResourceGraph) -> dict[str, str]:
        del system, graph
        return {}


def test_the_pipeline_runs_graph_rules_on_what_the_target_lowered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _FixedGraph(FAILING["aws.s3-versioned"](compliant()))
    monkeypatch.setattr(plugins, "targets", lambda: {"kubernetes": target})
    result = compile_text(tmp_path, COMPLIANT, lower=True)
    assert result.graphs == {"dev": target.graph, "prod": target.graph}
    assert {(d.code, d.path, d.location) for d in result.diagnostics} == {
        ("aws.s3-versioned", "dataSources.events", LOCATION)
    }
    waiver = _waiver("aws.s3-versioned", "dataSources.events", "2027-01-01")
    waived = compile_text(tmp_path, COMPLIANT + "waivers:\n" + waiver, lower=True)
    assert not waived.diagnostics and {d.code for d in waived.waived} == {"aws.s3-versioned"}


def test_system_rules_do_not_run_graph_rules(system: System) -> None:
    found, waived = Diagnostics(), Diagnostics()
    PolicyRun().check(system, found, waived)
    assert not found and not waived


# --- the examples' AWS graphs ---------------------------------------------------------------------

AWS_EXAMPLES = sorted(
    path.parent.name
    for path in (ROOT / "examples").glob("*/mlplane.yaml")
    if "target: aws" in path.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("example", AWS_EXAMPLES)
def test_example_aws_graphs_have_no_findings(example: str) -> None:
    aws = pytest.importorskip("mlplane.targets.aws")
    compiled = compile_spec(ROOT / "examples" / example)
    found = set()
    for name, system in compiled.systems.items():
        if system.environment.target != "aws":
            continue
        diagnostics, waived = Diagnostics(), Diagnostics()
        graph = aws.TARGET.lower(system, diagnostics)
        assert graph is not None and not diagnostics.has_errors, list(diagnostics)
        PolicyRun().check_graph(system, graph, diagnostics, waived)
        found |= {(example, name, d.code, d.path) for d in diagnostics if d.code in GRAPH_RULES}
    assert not found, sorted(found)
