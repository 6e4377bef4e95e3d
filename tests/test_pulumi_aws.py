"""The printer side of the AWS target: typed args classes, output references, providers.

A hand-built AWS graph (``tests/pulumi_aws_graphs.py``) is printed, passes the same static
checks as every program (compile, ruff, AST allow-list, ASCII) and, run under Pulumi's mock
runtime, registers exactly the graph with every ``$ref``/``$json`` marker resolved. A misspelled
nested argument in the printed program fails when the program runs (the ``*Args`` classes are
really used), and the printer rejects unknown, missing or mistyped inputs at any depth first.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.core.graph import (
    GraphError,
    Resource,
    ResourceGraph,
    ResourceOptions,
    json_document,
    ref,
    references,
)
from mlplane.compiler.core.ir import System
from mlplane.targets.pulumi_classes import CLASSES
from mlplane.targets.pulumi_literals import LiteralError, ProgramError
from mlplane.targets.pulumi_program import print_program
from mlplane.targets.pulumi_project import EMITTER, SDK_PINS
from tests.pulumi_aws_graphs import PROVIDER, aws_graph, aws_table_graph, minimal_inputs
from tests.pulumi_graphs import ORIGIN, demo_system
from tests.pulumi_roundtrip import assert_round_trip, registrations_of, run_mock, write_project
from tests.test_pulumi_program import check_static


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> System:
    return demo_system(tmp_path_factory.mktemp("spec"))


GRAPHS: dict[str, Callable[[], ResourceGraph]] = {"aws": aws_graph, "aws-table": aws_table_graph}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_aws_program_is_static_clean(name: str, system: System, tmp_path: Path) -> None:
    check_static(print_program(GRAPHS[name](), system), tmp_path, system)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_aws_program_registers_exactly_the_graph(name: str, system: System, tmp_path: Path) -> None:
    graph = GRAPHS[name]()
    assert_round_trip(graph, registrations_of(graph, system, tmp_path))


@pytest.mark.slow
def test_references_arrive_resolved(system: System, tmp_path: Path) -> None:
    """Spot checks of rule 6, in case the resolver and the mock agreed on a wrong value."""
    records = {r["name"]: r for r in registrations_of(aws_graph(), system, tmp_path)}
    sse = records["demo-artifacts-sse"]["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]
    assert sse["kmsMasterKeyId"] == "arn:mock:aws:kms/key:Key:demo-key"
    assert records["demo-artifacts-versioning"]["inputs"]["bucket"] == "demo-artifacts-id"
    policy = json.loads(records["demo-artifacts-policy"]["inputs"]["policy"])
    assert policy["Statement"][0]["Resource"] == ["arn:mock:aws:s3/bucket:Bucket:demo-artifacts"]
    assert (
        records["demo-scorer-endpoint"]["inputs"]["endpointConfigName"] == "demo-scorer-config-name"
    )
    assert records["demo-scorer-endpoint"]["dependsOn"] == ["demo-scorer-config"]
    assert records["demo-key"]["options"]["provider"] == PROVIDER
    assert records[PROVIDER]["options"]["additionalSecretOutputs"] == [
        "accessKey",
        "secretKey",
        "token",
    ]


@pytest.mark.slow
def test_round_trip_notices_a_wrong_reference(system: System, tmp_path: Path) -> None:
    graph = aws_graph()
    records = registrations_of(graph, system, tmp_path)
    changed = [
        replace(r, inputs={**r.inputs, "kmsKeyArn": ref("demo-key", "keyId")})
        if r.name == "demo-scorer-config"
        else r
        for r in graph
    ]
    with pytest.raises(AssertionError, match="demo-scorer-config"):
        assert_round_trip(ResourceGraph.build(graph.environment, graph.target, changed), records)


# --- the typed classes are really used ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("right", "wrong"),
    [
        ("variant_name=", "varient_name="),  # nested, inside a list of Args
        ("object_ownership=", "object_owner_ship="),  # nested, one level
        ("target_key_id=", "target_keyid="),  # top level
    ],
)
def test_a_misspelled_argument_fails_when_the_program_runs(
    right: str, wrong: str, system: System, tmp_path: Path
) -> None:
    graph = aws_graph()
    program = write_project(graph, system, tmp_path)
    source = (program / "__main__.py").read_text(encoding="utf-8")
    assert source.count(right) == 1, right
    (program / "__main__.py").write_text(source.replace(right, wrong), encoding="utf-8")
    with pytest.raises(
        AssertionError, match=rf"TypeError: .*unexpected keyword argument '{re.escape(wrong[:-1])}'"
    ):
        run_mock(program, system.name, graph.environment, [])


def test_nested_objects_print_as_args_classes(system: System) -> None:
    program = print_program(aws_graph(), system)
    calls = {
        ast.unparse(node.func)
        for node in ast.walk(ast.parse(program))
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("Args")
    }
    assert {
        "pulumi_aws.ProviderDefaultTagsArgs",
        "pulumi_aws.s3.BucketOwnershipControlsRuleArgs",
        "pulumi_aws.s3.BucketLifecycleConfigurationRuleExpirationArgs",
        "pulumi_aws.sagemaker.EndpointConfigurationProductionVariantArgs",
        "pulumi_aws.sagemaker.ModelPrimaryContainerArgs",
    } <= calls
    dictionaries = [node for node in ast.walk(ast.parse(program)) if isinstance(node, ast.Dict)]
    plain_keys = {
        key.value for node in dictionaries for key in node.keys if isinstance(key, ast.Constant)
    }
    assert "variantName" not in plain_keys and "objectOwnership" not in plain_keys


# --- the printer rejects what the SDK would --------------------------------------------------


def one(token: str, inputs: dict[str, Any], **kwargs: Any) -> ResourceGraph:
    return ResourceGraph.build("prod", "aws", [Resource(token, "r", inputs, ORIGIN, **kwargs)])


VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
VARIANT = {"variantName": "primary", "modelName": "m"}


@pytest.mark.parametrize(
    ("inputs", "token", "message"),
    [
        (
            {"bucket": "b", "versioningConfig": {"status": "Enabled"}},
            VERSIONING,
            r"takes no input 'versioningConfig' \(did you mean 'versioningConfiguration'\?\)",
        ),
        (
            {"bucket": "b", "versioningConfiguration": {"status": "Enabled", "mfaDeleet": "x"}},
            VERSIONING,
            r"input versioningConfiguration.mfaDeleet: .*takes no input 'mfaDeleet'",
        ),
        (
            {"productionVariants": [VARIANT, {**VARIANT, "varientName": "x"}]},
            CONFIG,
            r"productionVariants\[1\].varientName",
        ),
        ({"bucket": "b"}, VERSIONING, r"requires the inputs \['versioningConfiguration'\]"),
        (
            {"bucket": "b", "versioningConfiguration": {}},
            VERSIONING,
            r"requires the inputs \['status'\]",
        ),
        (
            {"bucket": 3, "versioningConfiguration": {"status": "Enabled"}},
            VERSIONING,
            "input bucket: must be a str, not int 3",
        ),
        (
            {"productionVariants": [{**VARIANT, "initialInstanceCount": True}]},
            CONFIG,
            "must be an int, not bool",
        ),
        ({"productionVariants": VARIANT}, CONFIG, "productionVariants: must be a list"),
        (
            {"productionVariants": ["primary"]},
            CONFIG,
            r"productionVariants\[0\]: must be an object",
        ),
        ({"productionVariants": [VARIANT], "tags": ["a"]}, CONFIG, "tags: must be a mapping"),
        (
            {"productionVariants": [VARIANT], "tags": {"a": {"b": 1}}},
            CONFIG,
            r"tags.a: must be a str, not a mapping",
        ),
    ],
)
def test_bad_inputs_are_program_errors(
    inputs: dict[str, Any], token: str, message: str, system: System
) -> None:
    with pytest.raises(ProgramError, match=message):
        print_program(one(token, inputs), system)


def test_a_reference_to_an_unknown_output_is_a_program_error(system: System) -> None:
    resources = [
        Resource("aws:kms/key:Key", "key", {}, ORIGIN),
        Resource(
            "aws:kms/alias:Alias", "alias", {"targetKeyId": ref("key", "keyIdentifier")}, ORIGIN
        ),
    ]
    with pytest.raises(ProgramError, match="reads output 'keyIdentifier' of 'key'"):
        print_program(ResourceGraph.build("prod", "aws", resources), system)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: one("aws:kms/alias:Alias", {"targetKeyId": ref("nothing", "arn")}),
            r"unknown resources \['nothing'\]",
        ),
        (
            lambda: one(
                "aws:kms/alias:Alias", {"x": [{"y": json_document({"a": ref("gone", "arn")})}]}
            ),
            r"unknown resources \['gone'\]",
        ),
        (
            lambda: one("aws:kms/key:Key", {}, options=ResourceOptions(provider="nope")),
            r"unknown resources \['nope'\]",
        ),
        (
            lambda: one("aws:kms/key:Key", {"policy": {"$ref": "r", "$output": "arn", "extra": 1}}),
            "malformed output reference",
        ),
        (
            lambda: one("aws:kms/key:Key", {"policy": {"$ref": "r", "$output": "Not-Camel"}}),
            "malformed output name",
        ),
        (
            lambda: one("aws:kms/key:Key", {"policy": {"$json": {}, "other": 1}}),
            "malformed JSON document",
        ),
    ],
)
def test_inconsistent_graphs_are_graph_errors(
    build: Callable[[], ResourceGraph], message: str
) -> None:
    with pytest.raises(GraphError, match=message):
        build()


def test_a_provider_must_be_a_provider_resource() -> None:
    resources = [
        Resource("aws:kms/key:Key", "key", {}, ORIGIN),
        Resource(
            "aws:kms/alias:Alias",
            "alias",
            {"targetKeyId": "k"},
            ORIGIN,
            options=ResourceOptions(provider="key"),
        ),
    ]
    with pytest.raises(
        GraphError, match="names 'key' as its provider, but that is a aws:kms/key:Key"
    ):
        ResourceGraph.build("prod", "aws", resources)


def test_a_reference_inside_kubernetes_inputs_needs_a_known_output(system: System) -> None:
    resources = [
        Resource("kubernetes:core/v1:Namespace", "ns", {}, ORIGIN),
        Resource(
            "kubernetes:core/v1:ConfigMap", "cm", {"data": {"ns": ref("ns", "metadata")}}, ORIGIN
        ),
    ]
    with pytest.raises(ProgramError, match="reads output 'metadata' of 'ns'"):
        print_program(ResourceGraph.build("dev", "kubernetes", resources), system)


def test_markers_outside_a_program_cannot_print() -> None:
    from mlplane.targets.pulumi_literals import literal

    with pytest.raises(LiteralError, match="cannot be printed here"):
        literal({"a": ref("r", "arn")})


# --- the graph markers -----------------------------------------------------------------------


def test_references_are_collected_at_any_depth() -> None:
    value = {
        "a": [ref("x", "arn"), {"b": json_document({"c": [ref("y", "id")]})}],
        "d": ref("x", "name"),
    }
    assert references(value) == {"x", "y"}
    resource = Resource(
        "aws:kms/key:Key",
        "k",
        value,
        ORIGIN,
        parent="p",
        depends_on=("z",),
        options=ResourceOptions(provider="aws"),
    )
    assert resource.references() == ("x", "y")
    assert resource.needs() == ("aws", "p", "x", "y", "z")


def test_references_order_the_program(system: System) -> None:
    program = print_program(aws_graph(), system)
    assert program.index("endpoint_configuration_1 = ") < program.index("endpoint_1 = ")
    assert program.index("topic_1 = ") < program.index("metric_alarm_1 = ")
    assert program.index("aws_1 = pulumi_aws.Provider(") < program.index("key_1 = ")
    assert "target_key_id=key_1.key_id" in program
    assert "policy=pulumi.Output.json_dumps({" in program


def test_provider_is_in_the_json_only_when_set() -> None:
    assert "provider" not in ResourceOptions().to_json()
    assert ResourceOptions(provider="aws").to_json()["provider"] == "aws"
    resources = {r["name"]: r for r in aws_graph().to_json()["resources"]}
    assert resources["demo-key"]["options"]["provider"] == PROVIDER
    assert "provider" not in resources[PROVIDER]["options"]
    assert resources["demo-key-alias"]["inputs"]["targetKeyId"] == {
        "$ref": "demo-key",
        "$output": "keyId",
    }


def test_requirements_pin_pulumi_aws(system: System) -> None:
    files = EMITTER.emit(system, aws_graph())
    pins = [
        line for line in files["pulumi/requirements.txt"].splitlines() if not line.startswith("#")
    ]
    assert pins == [f"pulumi=={SDK_PINS['pulumi']}", f"pulumi-aws=={SDK_PINS['pulumi-aws']}"]


def test_every_aws_row_has_a_generated_minimal_resource() -> None:
    rows = [token for token, cls in CLASSES.items() if cls.args is not None]
    assert len(rows) == 29
    assert minimal_inputs("s3.BucketVersioningInitArgs") == {
        "bucket": "x",
        "versioningConfiguration": {"status": "x"},
    }
