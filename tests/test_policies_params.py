"""Rule parameters: ``policies.rules.<id>.params``, declared by each rule as a model with
defaults, checked with located errors, shown by ``policies explain``, in docs/policies.md and in
the exported JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.build.schema_files import schema_text
from mlplane.compiler.policy.engine import explain_rule, installed_rules, rule_by_id
from mlplane.policies.docs import policies_markdown
from tests.test_policies import (
    CASES,
    COMPLIANT,
    TODAY,
    assert_annotated,
    compile_text,
    describe,
    edit,
    run_cli,
)

PARAMS = CASES / "params.yaml"
POLICIES = "\npolicies:\n  rules:\n"


def test_params_case_produces_exactly_the_annotated_diagnostics() -> None:
    """phi kept 3650d passes under a 3650d limit, pii 400d fails the default 365d; ha-replicas
    judges a 99.5% objective and 2 replicas by its parameters; wrong parameters are located."""
    result = compile_spec(PARAMS, policies=True, today=TODAY)
    assert_annotated(result, PARAMS.read_text(encoding="utf-8"))


def test_parameter_errors_are_reported_once_with_a_suggestion() -> None:
    result = compile_spec(PARAMS, policies=True, today=TODAY)
    unknown = [d for d in result.diagnostics if d.code == "unknown-field"]
    assert len(unknown) == 3, describe(result)  # once, although two environments are checked
    [typo] = [d for d in unknown if "objectve" in d.message]
    assert "did you mean 'objective'?" in typo.message
    assert typo.path == 'policies.rules["models.safe-rollout"].params.objectve'
    assert any("takes no parameters" in d.message for d in unknown)


def test_a_rule_whose_parameters_are_wrong_does_not_run(tmp_path: Path) -> None:
    text = edit(
        COMPLIANT,
        (
            "retention: 90d, encryption: kms, freshness",
            "retention: 900d, encryption: kms, freshness",
        ),
    )
    wrong = text + POLICIES + "    data.retention-bounded: {params: {maxRetention: {pii: 10}}}\n"
    codes = {d.code for d in compile_text(tmp_path, wrong).diagnostics}
    assert codes == {"wrong-type"}


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ("{minReplicas: 1}", "out-of-range", "at least 2"),
        ("{minReplicas: '3'}", "wrong-type", "remove the quotes"),
        ("{objective: 101}", "out-of-range", "at most 100"),
        ("{minReplicas: 2.5}", "wrong-type", "whole number"),
        ("{maxReplicas: 3}", "unknown-field", "did you mean 'minReplicas'?"),
    ],
)
def test_parameters_are_checked_against_the_rules_declaration(
    tmp_path: Path, params: str, code: str, words: str
) -> None:
    text = COMPLIANT + POLICIES + f"    models.ha-replicas: {{params: {params}}}\n"
    result = compile_text(tmp_path, text)
    [problem] = list(result.diagnostics)
    assert problem.code == code, describe(result)
    assert words in f"{problem.message} {problem.hint}"
    assert problem.location is not None and problem.location.line == text.count("\n")


def test_defaults_are_the_fixed_thresholds_of_before(tmp_path: Path) -> None:
    longer = edit(
        COMPLIANT,
        (
            "retention: 90d, encryption: kms, freshness",
            "retention: 366d, encryption: kms, freshness",
        ),
    )
    codes = [d.code for d in compile_text(tmp_path, longer).diagnostics]
    assert codes == ["data.retention-bounded"]
    raised = (
        longer + POLICIES + "    data.retention-bounded: {params: {maxRetention: {pii: 400d}}}\n"
    )
    assert not list(compile_text(tmp_path, raised).diagnostics)


def test_explain_and_docs_show_the_parameters() -> None:
    rule = rule_by_id("data.retention-bounded")
    assert rule is not None
    explained = explain_rule(rule)
    assert "maxRetention.phi (duration; default 365d)" in explained
    assert "| `maxRetention.phi` | duration | `365d` |" in policies_markdown(installed_rules())
    shown = run_cli("policies", "explain", "models.ha-replicas")
    assert shown.returncode == 0, shown.stderr
    assert "minReplicas (whole number, 2 to 100; default 2)" in shown.stdout


def test_every_rule_with_parameters_has_defaults_for_all_of_them() -> None:
    tunable = [rule for rule in installed_rules() if rule.params is not None]
    assert {r.id for r in tunable} >= {"data.retention-bounded", "models.ha-replicas"}
    for rule in tunable:
        assert rule.params is not None
        rule.params()  # every field has a default


def test_the_json_schema_describes_each_rules_parameters() -> None:
    """The exported schema (what editors check) accepts the case's good parameters and refuses
    an unknown one or a wrong type, per rule id; other ids keep an open params mapping."""
    schema = json.loads(schema_text())
    validator = jsonschema.Draft202012Validator(schema)

    def errors(rules: dict[str, object]) -> list[str]:
        spec = {"policies": {"rules": rules}}
        return [e.message for e in validator.iter_errors(spec) if "policies" in e.json_path]

    good = {"data.retention-bounded": {"params": {"maxRetention": {"phi": "3650d"}}}}
    assert errors(good) == []
    assert errors({"data.retention-bounded": {"params": {"maxRetentoin": {}}}})
    assert errors({"models.ha-replicas": {"params": {"minReplicas": "3"}}})
    assert errors({"rego.custom": {"params": {"anything": 1}}}) == []
