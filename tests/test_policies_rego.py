"""Organisation policies in Rego (compiler/policy/rego.py), evaluated in-process by regopy.

The two example policies live in ``examples/fraud-scoring/policies/``; the examples satisfy them,
and a spec that breaks them gets findings located at the spec lines the results' ``path`` names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.cache import DISABLE_VARIABLE
from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.policy.rego import INPUT_VERSION, policy_id, spec_path, to_policy_input
from tests.test_policies import (
    COMPLIANT,
    ROOT,
    TODAY,
    assert_annotated,
    compile_text,
    describe,
    edit,
    run_cli,
)

POLICIES = ROOT / "examples" / "fraud-scoring" / "policies"
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())
PUBLIC = "      exposure: public"


def with_rego(tmp_path: Path, text: str, *files: tuple[str, str], **options: Any) -> CompileResult:
    for name, source in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source, encoding="utf-8")
    return compile_text(tmp_path, text, **options)


def rego_spec() -> str:
    """The compliant spec, with its public search model now reading PII features and no
    cost-center label: both example policies object; the built-in rule is waived."""
    text = edit(
        COMPLIANT,
        ("  name: demo\n", "  name: demo  # error: [rego.require-cost-center-label]\n"),
        (
            "    inputs: [catalogue]\n",
            "    inputs: [catalogue, features]\n"
            "    explainability: {required: true, method: shap}\n"
            "    monitoring: {drift: {method: psi, threshold: 0.2, features: [query]}}\n",
        ),
        (
            PUBLIC + "\n",
            PUBLIC + "  # error: [rego.no-public-pii] warning: [rego.no-public-pii] "
            "info: [data.confidential-not-public]\n",
        ),
    )
    for prefix in ("  events: {", "  features: {"):
        line = next(line for line in text.split("\n") if line.startswith(prefix))
        text = text.replace(line, line + "  # note: [data.confidential-not-public]")
    return text + (
        "waivers:\n"
        "  - policy: data.confidential-not-public\n"
        "    target: models.search\n"
        "    reason: Search results are filtered per user by the gateway (SEC-9)\n"
        "    owner: security@acme.example\n"
        '    expires: "2027-01-01"\n'
    )


# --- the examples and the example policies ----------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_satisfy_the_example_policies(example: Path) -> None:
    result = compile_spec(example, policies=True, today=TODAY, policy_dirs=[POLICIES])
    assert result.ok and not result.diagnostics, describe(result)


def test_example_policies_find_and_locate_violations(tmp_path: Path) -> None:
    text = rego_spec()
    result = compile_text(tmp_path, text, policy_dirs=[POLICIES])
    # the label finding points at metadata (its path), reported at the metadata key's line
    text = text.replace("  name: demo  # error: [rego.require-cost-center-label]", "  name: demo")
    text = text.replace("metadata:\n", "metadata:  # error: [rego.require-cost-center-label]\n")
    assert_annotated(result, text)
    denied = sorted(d.message for d in result.diagnostics if d.code == "rego.no-public-pii")
    assert denied == [
        "model 'search' is public but reads pii data from 'events'",
        "model 'search' is public but reads pii data from 'features'",
        "public model 'search' has no access rule naming who may call it",
    ]
    hint = next(d.hint for d in result.diagnostics if d.code == "rego.no-public-pii")
    assert hint is not None and "no-public-pii.rego" in hint


def test_rego_findings_are_tuned_and_waived_like_builtin_ones(tmp_path: Path) -> None:
    text = rego_spec() + (
        "  - policy: rego.require-cost-center-label\n"
        "    target: metadata\n"
        "    reason: Cost centres are assigned at the next budget round\n"
        "    owner: finance@acme.example\n"
        '    expires: "2027-01-01"\n'
        "policies:\n  rules:\n    rego.no-public-pii: {severity: info}\n"
    )
    result = compile_text(tmp_path, text, policy_dirs=[POLICIES])
    assert result.ok, describe(result)
    assert {(d.code, d.severity.value) for d in result.diagnostics} == {
        ("rego.no-public-pii", "info")
    }
    assert "rego.require-cost-center-label" in {d.code for d in result.waived}


def test_spec_listed_rego_files_are_loaded_relative_to_the_spec(tmp_path: Path) -> None:
    source = (POLICIES / "require-cost-center-label.rego").read_text(encoding="utf-8")
    text = COMPLIANT.replace(
        "metadata:\n", "metadata:  # error: [rego.require-cost-center-label]\n"
    )
    text += "policies: {rego: [org/require-cost-center-label.rego]}\n"
    result = with_rego(tmp_path, text, ("org/require-cost-center-label.rego", source))
    assert_annotated(result, text)


def test_validate_policy_option_and_machine_output_stay_clean() -> None:
    """regopy's own error printing is silenced: SARIF on stdout stays valid JSON."""
    completed = run_cli(
        "validate", "examples/llm-rag", "--policy", str(POLICIES), "--format", "sarif"
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    log = json.loads(completed.stdout)
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"data.confidential-not-public"}


# --- paths, results and errors ------------------------------------------------------------------------

LABEL_POLICY = """package mlplane.paths
import rego.v1
deny contains {"msg": "string path", "path": "models.scorer.serving.exposure"} if { true }
deny contains {"msg": "array path", "path": ["models", "scorer", "inputs", 0]} if { true }
warn contains {"msg": "no such path", "path": "nothing.here"} if { true }
"""


def test_result_paths_map_back_to_spec_lines(tmp_path: Path) -> None:
    result = with_rego(
        tmp_path, COMPLIANT, ("org/paths.rego", LABEL_POLICY), policy_dirs=[tmp_path / "org"]
    )
    found = {
        (d.message.split(" (")[0], d.severity.value, Path(d.location.file).name, d.location.line)
        for d in result.diagnostics
        if d.location is not None
    }
    assert found == {
        ("string path", "error", "mlplane.yaml", 27),
        ("array path", "error", "mlplane.yaml", 21),
        ("no such path", "warning", "paths.rego", 1),
    }, describe(result)
    missing = next(d for d in result.diagnostics if d.message.startswith("no such path"))
    assert "'nothing.here' is not in the spec" in missing.message


@pytest.mark.parametrize(
    ("source", "line", "text"),
    [
        (
            "package mlplane.broken\nimport rego.v1\ndeny contains x if {\n  x := [\n}\n",
            4,
            "unclosed",
        ),
        ("package acme.policies\ndeny[x] { x := 1 }\n", 1, "package must be mlplane.<name>"),
        (
            'package mlplane.shape\nimport rego.v1\ndeny contains "just text" if { true }\n',
            1,
            "not {msg",
        ),
        ("package mlplane.shape\nimport rego.v1\ndeny := 3\n", 1, "must be a set"),
    ],
    ids=["syntax", "package", "result-shape", "not-a-set"],
)
def test_broken_policies_are_located_errors(
    tmp_path: Path, source: str, line: int, text: str
) -> None:
    result = with_rego(tmp_path, COMPLIANT, ("org/p.rego", source), policy_dirs=[tmp_path / "org"])
    errors = [d for d in result.diagnostics if d.code == "rego-error"]
    assert errors, describe(result)
    assert any(
        d.location is not None and d.location.file.endswith("p.rego") and d.location.line == line
        and text in d.message
        for d in errors
    ), describe(result)  # fmt: skip


def test_a_symlink_out_of_the_spec_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.rego"
    outside.write_text(LABEL_POLICY, encoding="utf-8")
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "linked.rego").symlink_to(outside)
    text = COMPLIANT + "policies: {rego: [linked.rego]}  # error: [rego-error]\n"
    result = with_rego(spec, text)
    assert_annotated(result, text)
    assert "outside the spec directory" in result.diagnostics.items[0].message


# --- the input document ---------------------------------------------------------------------------

INPUT_SHAPE = {
    "": ["alerting", "dataSources", "description", "environment", "labels", "models", "name",
         "owner", "policies", "security", "slas", "version", "waivers"],
    "environment": ["awsAccountId", "awsRegion", "kubeContext", "name", "namespace",
                    "production", "residency", "state", "target"],
    "dataSources.events": ["classification", "derivedFrom", "description", "encryption",
                           "freshnessSeconds", "name", "owner", "residency", "retentionSeconds",
                           "type", "upstream", "uri"],
    "models.scorer": ["artifact", "description", "drift", "explainabilityMethod",
                      "explainabilityRequired", "framework", "image", "inputs", "name", "owner",
                      "runtime", "secrets", "serving", "training", "upstream", "version"],
    "models.scorer.image": ["digest", "registry", "repository", "tag", "text"],
    "models.scorer.serving": ["autoscalingMetric", "autoscalingTarget", "exposure", "healthPath",
                              "metricsPath", "port", "replicasMax", "replicasMin", "resources",
                              "rollout"],
    "models.scorer.serving.resources": ["cpu", "cpuMillis", "gpu", "memory", "memoryBytes"],
    "security": ["access", "allow", "allowedRegistries", "defaultDeny", "encryptionAtRest",
                 "encryptionInTransit", "requireDigest", "secrets"],
    "slas.scorer-availability": ["description", "indicator", "name", "objective", "owner",
                                 "subject", "subjectKind", "windowSeconds"],
}  # fmt: skip


def _at(document: dict[str, Any], dotted: str) -> Any:
    for part in filter(None, dotted.split(".")):
        document = document[part]
    return document


def test_policy_input_shape_is_pinned(tmp_path: Path) -> None:
    """Renaming or removing an IR field changes what organisation policies read: bump
    INPUT_VERSION then (new fields are additions, compatible with version 1)."""
    document = to_policy_input(compile_text(tmp_path, COMPLIANT).systems["prod"])
    assert document["version"] == INPUT_VERSION == 1
    for where, keys in INPUT_SHAPE.items():  # new IR fields may appear; none may go away
        assert set(keys) <= set(_at(document, where)), where
    assert "origin" not in json.dumps(document)
    assert _at(document, "models.scorer.upstream") == ["events", "features"]
    assert _at(document, "dataSources.events.retentionSeconds") == 90 * 86400


def test_policy_input_is_deterministic_json(tmp_path: Path) -> None:
    first = json.dumps(to_policy_input(compile_text(tmp_path, COMPLIANT).systems["dev"]))
    again = json.dumps(to_policy_input(compile_text(tmp_path, COMPLIANT).systems["dev"]))
    assert first == again


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("models.scorer.inputs[0]", ("models", "scorer", "inputs", 0)),
        (["models", "scorer", "inputs", 0], ("models", "scorer", "inputs", 0)),
        ("metadata", ("metadata",)),
        (3, None),
        (["models", True], None),
    ],
)
def test_spec_path_forms(value: Any, expected: Any) -> None:
    assert spec_path(value) == expected


def test_policy_ids_come_from_the_package_name() -> None:
    assert policy_id("mlplane.acme.no_public_pii") == "rego.no-public-pii"
    assert policy_id("mlplane.RequireOwner") == "rego.requireowner"


LIMITED = """
import resource, sys
limit = 512 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from mlplane.compiler.cli.main import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("with_rego", [False, True], ids=["builtin-only", "with-rego"])
def test_validate_under_an_address_space_limit(with_rego: bool) -> None:
    """rego-cpp's allocator aborts under RLIMIT_AS; regopy is imported only for Rego policies,
    and a limited process gets a located error instead of an abort."""
    extra = ["--policy", str(POLICIES)] if with_rego else []
    completed = subprocess.run(
        [sys.executable, "-c", LIMITED, "validate", "examples/llm-rag", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # a record of an unlimited validate of the same files would give its verdict again
        env={**os.environ, DISABLE_VARIABLE: "1"},
    )
    assert completed.returncode == (1 if with_rego else 0), completed.stdout + completed.stderr
    if with_rego:
        assert "cannot run under an address-space limit" in completed.stdout
        assert "[rego-error]" in completed.stdout
