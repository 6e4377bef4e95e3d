"""``mlplane validate`` tells everything in one run: what the build would refuse, references
beside schema errors, overlay entries the base lacks, and which environments are production.

The located expectations are corpus cases (``tests/corpus/24-references-beside-schema-errors``,
``24-overlay-undefined-entry``, ``28-target-refusals``); these tests cover what the corpus does
not: that validate and build agree, the production default, and what explain and the summary
show.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlplane.compiler.build.pipeline import compile_spec, target_of
from mlplane.compiler.build.record import counts_of
from mlplane.compiler.cli.main import _summary, cli
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.frontend.system_model import is_production
from mlplane.schema.models import Environment

CORPUS = Path(__file__).parent / "corpus"
REFUSALS = CORPUS / "28-target-refusals.yaml"
TODAY = date(2026, 1, 31)


def _codes(path: Path, **options: object) -> set[tuple[int, str]]:
    result = compile_spec(path, **options)  # type: ignore[arg-type]
    return {(d.location.line, d.code) for d in result.diagnostics if d.location is not None}


def test_validate_reports_every_target_refusal_the_build_reports() -> None:
    """Whatever the build of an environment refuses in the target's checks, validate reports
    at the same line, without lowering anything."""
    system = compile_spec(REFUSALS, ["prod-aws"]).systems["prod-aws"]
    found = Diagnostics()
    assert target_of(system, found).lower(system, found) is None  # type: ignore[union-attr]
    refused = {(d.location.line, d.code) for d in found if d.location is not None}
    validated = _codes(REFUSALS, policies=True, today=TODAY, check_targets=True)
    assert refused == {
        (35, "aws-isolation-secrets"),
        (36, "aws-instance-type-required"),
        (38, "aws-canary-step"),
        (39, "aws-instance-type-required"),
        (39, "aws-training-output"),
    }
    assert refused <= validated


def test_validate_command_fails_on_target_refusals_and_annotates_them() -> None:
    result = CliRunner().invoke(cli, ["validate", str(REFUSALS), "--format", "json"])
    assert result.exit_code == 1, result.output
    codes = {item["code"] for item in json.loads(result.output)["diagnostics"]}
    assert {"aws-isolation-secrets", "aws-canary-step", "aws-training-output"} <= codes


def test_target_checks_need_a_valid_spec_first() -> None:
    """Schema and reference errors stop before the target checks and policies: no cascade."""
    codes = {code for _, code in _codes(CORPUS / "24-references-beside-schema-errors.yaml")}
    assert not any(code.startswith(("aws-", "kubernetes-")) or "." in code for code in codes)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("prod", True),
        ("production", True),
        ("prod-aws", True),
        ("prod-eu", True),
        ("eu-prod", True),
        ("eu-production-2", True),
        ("dev", False),
        ("staging", False),
        ("preprod", False),
        ("product-demo", False),
        ("prodx", False),
    ],
)
def test_production_follows_a_prod_part_of_the_name(name: str, expected: bool) -> None:
    assert is_production(name, Environment(target="kubernetes")) is expected


def test_an_explicit_production_value_wins_over_the_name() -> None:
    assert not is_production("prod-aws", Environment(target="kubernetes", production=False))
    assert is_production("live", Environment(target="kubernetes", production=True))


def test_production_policies_run_on_an_environment_named_prod_aws() -> None:
    """prod-aws sets no production flag: the production-only rules run on it by its name."""
    result = compile_spec(REFUSALS, policies=True, today=TODAY)
    assert result.systems["prod-aws"].environment.production
    assert not result.systems["dev"].environment.production
    messages = [d.message for d in result.diagnostics if d.code == "models.image-registry"]
    assert messages and all("'prod-aws'" in message for message in messages)


def test_explain_shows_the_effective_production_value() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["explain", str(REFUSALS), "--env", "prod-aws", "--show-origin"])
    assert shown.exit_code == 0, shown.output
    line = next(text for text in shown.output.split("\n") if "production:" in text)
    assert line.split("#")[0].strip() == "production: true" and line.endswith("# default")
    data = json.loads(
        runner.invoke(cli, ["explain", str(REFUSALS), "--env", "dev", "--format", "json"]).output
    )
    assert data["spec"]["environments"]["dev"]["production"] is False


def test_summary_marks_production_and_counts_each_environment(tmp_path: Path) -> None:
    spec = tmp_path / "mlplane.yaml"
    spec.write_text(
        (CORPUS / "24-overlay-undefined-entry.yaml")
        .read_text(encoding="utf-8")
        .replace("cxr-triag:", "cxr-triage:")
        .replace("      slas:\n        cxr-latncy: null  # error: [override-undefined]\n", ""),
        encoding="utf-8",
    )
    result = compile_spec(spec)  # the policies would want digests, resources and SLAs
    assert result.ok, [d.one_line() for d in result.diagnostics]
    assert _summary(counts_of(result), len(result.waived)) == (
        "valid: system 'imaging'; environments: dev with 1 model, 2 data sources and 1 SLA; "
        "prod (production) with 1 model, 1 data source and 1 SLA"
    )
