"""Whole-spec policy cases in ``policy_cases/``: one violation of every rule, and residency
followed through lineage across domains. Expected findings are inline annotations."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.policy.engine import installed_rules
from tests.test_policies import CASES, TODAY, assert_annotated, describe

ALL_VIOLATIONS = CASES / "all-violations.yaml"
RESIDENCY = CASES / "residency-lineage.yaml"


def test_all_violations_produce_exactly_the_annotated_findings() -> None:
    result = compile_spec(ALL_VIOLATIONS, policies=True, today=TODAY)
    assert_annotated(result, ALL_VIOLATIONS.read_text(encoding="utf-8"))


def test_all_violations_has_one_finding_line_per_rule() -> None:
    result = compile_spec(ALL_VIOLATIONS, policies=True, today=TODAY)
    lines: dict[str, set[int]] = defaultdict(set)
    for diagnostic in result.diagnostics:
        assert diagnostic.location is not None
        lines[diagnostic.code].add(diagnostic.location.line)
    system_rules = {rule.id for rule in installed_rules() if not rule.reads_graph}
    assert set(lines) == system_rules, describe(result)
    assert all(len(found) == 1 for found in lines.values()), dict(lines)


def test_residency_is_followed_through_lineage_to_the_serving_environment() -> None:
    """EU source -> derived feature store -> model served from the US: reported at the
    environment's residency line and at the AWS region an environment derives it from."""
    result = compile_spec(RESIDENCY, policies=True, today=TODAY)
    assert_annotated(result, RESIDENCY.read_text(encoding="utf-8"))
    messages = [d.message for d in result.diagnostics if d.code == "data.residency-respected"]
    assert len(messages) == 2
    for message in messages:
        assert "'card-events' through 'card-features'" in message
    paths = {d.path for d in result.diagnostics if d.code == "data.residency-respected"}
    assert paths == {"environments.us-prod.residency", "environments.us-aws.aws.region"}


def test_residency_findings_name_the_data_and_the_model(tmp_path: Path) -> None:
    result = compile_spec(RESIDENCY, ["us-prod"], policies=True, today=TODAY)
    [finding] = [d for d in result.diagnostics if d.code == "data.residency-respected"]
    assert {r.message for r in finding.related} == {
        "'risk' reads it here",
        "'card-events' is resident in 'eu'",
    }
