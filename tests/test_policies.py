"""The policy engine (compiler/policy/engine.py): registration, order, tuning, waivers, output.

Rule-by-rule cases are in ``test_policies_rules.py``, Rego in ``test_policies_rego.py``. Specs
here carry their expectations as inline comments, like the diagnostics corpus::

    encryption: managed   # error: [data.pii-encrypted]
    classification: pii   # note: [data.confidential-not-public]   (a related location)
    retention: 400d       # info: [data.retention-bounded]          (waived, in result.waived)

Dates are pinned (``TODAY``): the library never reads the clock.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import (
    Diagnostics,
    Severity,
    code_info,
    register_code,
    registered_codes,
)
from mlplane.compiler.core.plugins import PolicyPack, policy_packs
from mlplane.compiler.policy.engine import (
    Finding,
    PolicyRun,
    Rule,
    RulePack,
    installed_rules,
    rule_by_id,
    target_pattern,
)
from mlplane.compiler.render.dispatch import RenderOptions, render
from mlplane.policies.docs import policies_markdown
from tests.test_render import SARIF_SUBSET_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
CASES = Path(__file__).parent / "policy_cases"
COMPLIANT = (CASES / "compliant.yaml").read_text(encoding="utf-8")
TODAY = date(2026, 6, 1)

Key = tuple[int, str, str]
"""(line, "error" | "warning" | "info" | "note", code)."""

_ANNOTATION = re.compile(r"#\s*(?=(?:error|warning|info|note):)")
_GROUP = re.compile(r"(error|warning|info|note):((?:\s*\[[a-z0-9.-]+\])+)")
_CODE = re.compile(r"\[([a-z0-9.-]+)\]")


# --- helpers shared by the policy tests ------------------------------------------------------------


def expectations(text: str) -> set[Key]:
    """The annotations of a spec text; a malformed one fails the test."""
    found: set[Key] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        match = _ANNOTATION.search(line)
        if match is None:
            continue
        tail = line[match.end() :]
        assert not _GROUP.sub("", tail).strip(), f"line {number}: malformed annotation {tail!r}"
        for kind, group in _GROUP.findall(tail):
            found |= {(number, kind, code) for code in _CODE.findall(group)}
    return found


def observed(result: CompileResult) -> set[Key]:
    """Diagnostics and waived findings as (line, severity, code), related places as notes."""
    found: set[Key] = set()
    for diagnostic in (*result.diagnostics, *result.waived):
        assert diagnostic.location is not None, diagnostic.one_line()
        found.add((diagnostic.location.line, diagnostic.severity.value, diagnostic.code))
        found |= {(r.location.line, "note", diagnostic.code) for r in diagnostic.related}
    return found


def describe(result: CompileResult) -> str:
    items = (*result.sorted_diagnostics(), *result.waived.sorted())
    return "\n".join(d.one_line() for d in items) or "(no diagnostics)"


def compile_text(
    tmp_path: Path, text: str, today: date | None = TODAY, **options: Any
) -> CompileResult:
    path = tmp_path / "mlplane.yaml"
    path.write_text(text, encoding="utf-8")
    return compile_spec(path, policies=True, today=today, **options)


def assert_annotated(result: CompileResult, text: str) -> None:
    expected, got = expectations(text), observed(result)
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    assert not missing and not unexpected, (
        f"missing: {missing}\nunexpected: {unexpected}\n{describe(result)}"
    )


def edit(text: str, *changes: tuple[str, str]) -> str:
    for old, new in changes:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("mlplane")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "mlplane"]
    return subprocess.run(
        [*command, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


# --- the registry ------------------------------------------------------------------------------


def test_builtin_pack_is_installed_and_large_enough() -> None:
    packs = policy_packs()
    assert "builtin" in packs and isinstance(packs["builtin"], PolicyPack)
    rules = installed_rules()
    assert len(rules) >= 25
    domains = {"aws", "data", "models", "security", "slas"}
    assert {rule.id.split(".")[0] for rule in rules} == domains


def test_rules_run_in_pack_then_id_order_and_are_codes_with_help() -> None:
    rules = installed_rules()
    assert [r.id for r in rules] == sorted(r.id for r in rules)
    for rule in rules:
        info = code_info(rule.id)
        assert info.summary == rule.title and info.severity is rule.severity
        help_ = codes.code_help(rule.id)
        assert help_ is not None and help_.description == rule.rationale
        assert rule.remediation in help_.help
        assert rule.example and rule.fix, f"{rule.id}: the docs need an example and its fix"


def test_mirrored_checks_are_real_looking_ids() -> None:
    mirrored = {m for rule in installed_rules() for m in rule.mirrors}
    assert {"CKV_K8S_43", "CKV_K8S_14", "CKV_K8S_35", "AVD-KSV-0011"} <= mirrored
    for rule in installed_rules():
        if rule.mirrors:
            assert f"mirrors {', '.join(rule.mirrors)}" in rule.hint()


def _dummy(system: object) -> list[Finding]:
    return []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "NoDot"}, "domain.rule-name"),
        ({"mirrors": ("CKV_FAKE",)}, "mirrors unknown check ids"),
        ({"title": "Ends with a dot."}, "title"),
        ({"mandatory": True, "severity": Severity.WARNING}, "must be an error"),
    ],
)
def test_rule_metadata_is_checked_at_registration(changes: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {
        "title": "A title",
        "severity": Severity.ERROR,
        "rationale": "why",
        "remediation": "how",
    }
    rule_id = changes.pop("id", "test.rule")
    options.update(changes)
    with pytest.raises(ValueError, match=message):
        RulePack("test").rule(rule_id, **options)(_dummy)


def test_a_pack_refuses_the_same_id_twice() -> None:
    pack = RulePack("test")
    decorate = pack.rule(
        "test.twice", title="T", severity=Severity.ERROR, rationale="r", remediation="f"
    )
    decorate(_dummy)
    with pytest.raises(ValueError, match="registered twice"):
        decorate(_dummy)


# --- waiver targets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path", "covered"),
    [
        ("dataSources.events", "dataSources.events.retention", True),
        ("dataSources.events", "dataSources.events", True),
        ("dataSources.event", "dataSources.events", False),
        ("models.*", "models.scorer.image", True),
        ("models.*.image", "models.scorer.image", True),
        ("models.*.image", "models.scorer.training.image", False),
        ("security.network.allow[*]", "security.network.allow[3]", True),
        ("environments.prod", "environments.prod-aws.residency", False),
    ],
)
def test_waiver_targets_cover_paths_below_them(target: str, path: str, covered: bool) -> None:
    assert bool(target_pattern(target).match(path)) is covered


# --- tuning severities -----------------------------------------------------------------------------


def test_severity_can_be_raised_lowered_and_turned_off(tmp_path: Path) -> None:
    text = edit(
        COMPLIANT,
        (
            '  features: {type: featureStore, uri: "feast://demo", classification: pii, residency: eu, retention: 30d,',
            '  features: {type: featureStore, uri: "feast://demo", classification: pii, retention: 400d,',
        ),
        ("  catalogue: {", "  catalogue: {freshness: 1h, "),
    )
    text += (
        "policies:\n  rules:\n"
        "    data.residency-declared: {severity: error}\n"
        "    data.retention-bounded: {severity: info}\n"
        "    slas.freshness-defined: {severity: off}\n"
    )
    result = compile_text(tmp_path, text)
    found = {(d.code, d.severity.value) for d in result.diagnostics}
    assert found == {("data.residency-declared", "error"), ("data.retention-bounded", "info")}
    assert not result.ok


def test_mandatory_rules_cannot_be_disabled_or_lowered(tmp_path: Path) -> None:
    text = edit(
        COMPLIANT,
        (
            "encryption: kms, freshness: 5m}",
            "encryption: managed, freshness: 5m}  # error: [data.pii-encrypted]",
        ),
    )
    text += (
        "policies:\n  rules:\n"
        "    data.pii-encrypted: {severity: off}  # error: [policy-mandatory]\n"
        "    models.image-digest: {severity: warning}  # error: [policy-mandatory]\n"
        "    security.default-deny: {severity: error}\n"
    )
    result = compile_text(tmp_path, text)
    assert_annotated(result, text)
    messages = sorted(d.message for d in result.diagnostics if d.code == "policy-mandatory")
    assert messages == [
        "policy rule 'data.pii-encrypted' is mandatory: it cannot be set to 'off'",
        "policy rule 'models.image-digest' is mandatory: it cannot be set to 'warning'",
    ]


def test_unknown_rule_in_policies_is_located_with_a_suggestion(tmp_path: Path) -> None:
    text = COMPLIANT + (
        "policies:\n  rules:\n    data.pii-encrypt: {severity: warning}  # error: [ref-undefined]\n"
    )
    result = compile_text(tmp_path, text)
    assert_annotated(result, text)
    [diagnostic] = result.diagnostics
    assert diagnostic.hint == "did you mean 'data.pii-encrypted'?"


# --- waivers -----------------------------------------------------------------------------------------

RETENTION = (
    "retention: 30d, encryption: kms, derivedFrom: [events]}",
    "retention: 400d, encryption: kms, derivedFrom: [events]}",
)


def _waiver(policy: str, target: str, expires: str, note: str = "", extra: str = "") -> str:
    return (
        f"  - policy: {policy}{note}\n"
        f"    target: {target}\n"
        "    reason: Chargeback disputes need 400 days of history\n"
        "    owner: dpo@acme.example\n"
        f'    expires: "{expires}"\n'
        f"{extra}"
    )


def test_a_valid_waiver_keeps_the_finding_visible_as_info(tmp_path: Path) -> None:
    text = edit(COMPLIANT, (RETENTION[0], RETENTION[1] + "  # info: [data.retention-bounded]"))
    text += "waivers:\n" + _waiver(
        "data.retention-bounded", "dataSources.features", "2026-06-01", extra="    ticket: DPO-7\n"
    )
    result = compile_text(tmp_path, text)
    assert_annotated(result, text)
    assert result.ok and not result.diagnostics
    [note] = result.waived
    assert note.severity is Severity.INFO
    assert note.message.endswith(
        "; waived until 2026-06-01 by dpo@acme.example (Chargeback disputes need 400 days of "
        "history); ticket DPO-7"
    )


def test_an_expired_waiver_is_an_error_at_its_expiry_and_waives_nothing(tmp_path: Path) -> None:
    text = edit(COMPLIANT, (RETENTION[0], RETENTION[1] + "  # error: [data.retention-bounded]"))
    text += "waivers:\n" + _waiver("data.retention-bounded", "dataSources.features", "2026-05-31")
    text = text.replace('expires: "2026-05-31"', 'expires: "2026-05-31"  # error: [waiver-expired]')
    result = compile_text(tmp_path, text)
    assert_annotated(result, text)
    expired = next(d for d in result.diagnostics if d.code == "waiver-expired")
    assert "expired on 2026-05-31 (today is 2026-06-01)" in expired.message


def test_without_a_date_expiry_is_not_evaluated(tmp_path: Path) -> None:
    text = edit(COMPLIANT, RETENTION)
    text += "waivers:\n" + _waiver("data.retention-bounded", "dataSources.features", "2020-01-01")
    result = compile_text(tmp_path, text, today=None)
    assert result.ok and not result.diagnostics, describe(result)
    assert [d.code for d in result.waived] == ["data.retention-bounded"]


def test_a_waiver_that_matches_nothing_is_a_warning_at_its_line(tmp_path: Path) -> None:
    text = (
        COMPLIANT
        + "waivers:\n"
        + _waiver(
            "data.retention-bounded",
            "dataSources.features",
            "2027-01-01",
            "  # warning: [waiver-unmatched]",
        )
    )
    result = compile_text(tmp_path, text)
    assert_annotated(result, text)
    assert result.ok


def test_a_waiver_used_in_one_environment_only_is_not_unmatched(tmp_path: Path) -> None:
    text = edit(
        COMPLIANT,
        ("  prod: {target: kubernetes, production: true, residency: eu}",
         "  prod:\n    target: kubernetes\n    production: true\n    residency: eu\n"
         "    overrides: {dataSources: {features: {retention: 400d}}}  # info: [data.retention-bounded]"),
    )  # fmt: skip
    text += "waivers:\n" + _waiver("data.retention-bounded", "dataSources.features", "2027-01-01")
    assert_annotated(compile_text(tmp_path, text), text)
    only_dev = compile_spec(tmp_path / "mlplane.yaml", ["dev"], policies=True, today=TODAY)
    assert [d.code for d in only_dev.diagnostics] == ["waiver-unmatched"]


def test_a_waiver_for_an_unknown_policy_is_located_with_a_suggestion(tmp_path: Path) -> None:
    text = (
        COMPLIANT
        + "waivers:\n"
        + _waiver(
            "data.retention-bound",
            "dataSources.features",
            "2027-01-01",
            "  # error: [ref-undefined]",
        )
    )
    result = compile_text(tmp_path, text)
    assert_annotated(result, text)
    [diagnostic] = result.diagnostics
    assert diagnostic.hint == "did you mean 'data.retention-bounded'?"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("    reason: short\n", "too-short"),
        ("", "missing-field"),  # no reason at all
        (
            "    reason: Chargeback disputes need 400 days\n    owner: not an owner!\n",
            "invalid-format",
        ),
    ],
)
def test_malformed_waivers_are_schema_errors(tmp_path: Path, line: str, code: str) -> None:
    waiver = _waiver("data.retention-bounded", "dataSources.features", "2027-01-01")
    waiver = waiver.replace("    reason: Chargeback disputes need 400 days of history\n", line)
    if "owner: not" in line:
        waiver = waiver.replace("    owner: dpo@acme.example\n", "")
    result = compile_text(tmp_path, COMPLIANT + "waivers:\n" + waiver)
    assert code in {d.code for d in result.diagnostics}, describe(result)
    assert not result.waived


def test_a_waiver_with_a_glob_target_covers_every_match(tmp_path: Path) -> None:
    text = edit(
        COMPLIANT,
        ('scorer@sha256:abababababababababababababababababababababababababababababababab"',
         'scorer:1.0.0"  # info: [models.image-digest]'),
        ('train@sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"',
         'train:1.0.0"  # info: [models.image-digest]'),
    )  # fmt: skip
    text += "waivers:\n" + _waiver("models.image-digest", "models.*", "2027-01-01")
    result = compile_text(tmp_path, text)
    assert_annotated(result, text)
    assert result.ok


def test_policy_run_reports_an_unused_waiver_once_across_environments(tmp_path: Path) -> None:
    text = COMPLIANT + "waivers:\n" + _waiver("models.gpu-quota", "models.search", "2027-01-01")
    result = compile_text(tmp_path, text)
    assert [d.code for d in result.diagnostics] == ["waiver-unmatched"]


# --- the command line and the output formats -------------------------------------------------------


@pytest.mark.slow
def test_validate_today_decides_expiry() -> None:
    fraud = "examples/fraud-scoring"
    before = run_cli("validate", fraud, "--today", "2027-03-31")
    after = run_cli("validate", fraud, "--today", "2027-04-01", "--format", "json")
    assert before.returncode == 0, before.stdout + before.stderr
    assert before.stdout.startswith("valid: ") and "waived until 2027-03-31" in before.stdout
    assert after.returncode == 1
    diagnostics = json.loads(after.stdout)["diagnostics"]
    codes_after = {d["code"] for d in diagnostics if d["severity"] == "error"}
    assert codes_after == {"data.retention-bounded", "waiver-expired"}


def test_validate_rejects_a_malformed_date() -> None:
    completed = run_cli("validate", "examples/fraud-scoring", "--today", "31/03/2027")
    assert completed.returncode == 2 and "'--today'" in completed.stderr
    assert "%Y-%m-%d" in completed.stderr


def test_strict_does_not_fail_on_waived_findings() -> None:
    completed = run_cli("validate", "examples/fraud-scoring", "--strict", "--today", "2026-06-01")
    assert completed.returncode == 0, completed.stdout


def test_policies_lists_every_rule() -> None:
    completed = run_cli("policies")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert len(lines) == len(installed_rules())
    digest = next(line for line in lines if line.startswith("models.image-digest "))
    assert "error" in digest and "mandatory" in digest and "[CKV_K8S_43]" in digest


def test_policies_explain_prints_rationale_and_remediation() -> None:
    completed = run_cli("policies", "explain", "slas.objective-realistic")
    assert completed.returncode == 0, completed.stderr
    rule = rule_by_id("slas.objective-realistic")
    assert rule is not None
    assert "Why:" in completed.stdout and "How to fix:" in completed.stdout
    assert "0.86 seconds" in completed.stdout and "Violation:" in completed.stdout


def test_policies_explain_unknown_id_is_a_usage_error_with_a_suggestion() -> None:
    completed = run_cli("policies", "explain", "models.image-digets")
    assert completed.returncode == 2
    assert "did you mean 'models.image-digest'?" in completed.stderr


def _sarif_schema_with_rule_help() -> dict[str, Any]:
    """The subset schema of test_render, plus what policy rules add to a reportingDescriptor
    (``fullDescription`` and ``help`` are multiformatMessageStrings in SARIF 2.1.0)."""
    schema = copy.deepcopy(SARIF_SUBSET_SCHEMA)
    driver = schema["properties"]["runs"]["items"]["properties"]["tool"]["properties"]["driver"]
    rule = driver["properties"]["rules"]["items"]
    message = {
        "type": "object",
        "additionalProperties": False,
        "required": ["text"],
        "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
    }
    rule["properties"] = {**rule["properties"], "fullDescription": message, "help": message}
    return schema


def test_sarif_with_policy_findings_validates_and_describes_rules(tmp_path: Path) -> None:
    text = edit(
        COMPLIANT, ("encryption: kms, freshness: 5m}", "encryption: managed, freshness: 5m}")
    )
    text += "waivers:\n" + _waiver("models.gpu-quota", "models.search", "2027-01-01")
    result = compile_text(tmp_path, text)
    items = (*result.sorted_diagnostics(), *result.waived.sorted())
    log = json.loads(render("sarif", items, result.sources, RenderOptions()))
    jsonschema.Draft7Validator(_sarif_schema_with_rule_help()).validate(log)
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    encrypted = rules["data.pii-encrypted"]
    assert encrypted["shortDescription"]["text"] == rule_by_id("data.pii-encrypted").title  # type: ignore[union-attr]
    assert "customer-managed key" in encrypted["fullDescription"]["text"]
    assert "mirrors CKV_AWS_145" in encrypted["help"]["text"]
    assert "help" not in rules["waiver-unmatched"]
    [finding] = [r for r in log["runs"][0]["results"] if r["ruleId"] == "data.pii-encrypted"]
    line = text.split("\n").index(next(t for t in text.split("\n") if "  events:" in t)) + 1
    assert finding["locations"][0]["physicalLocation"]["region"]["startLine"] == line


@pytest.mark.slow
def test_every_format_shows_waived_findings() -> None:
    for fmt in ("json", "sarif", "github"):
        completed = run_cli(
            "validate", "examples/fraud-scoring", "--format", fmt, "--today", "2026-06-01"
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert "waived until 2027-03-31" in completed.stdout, fmt


# --- documentation and examples --------------------------------------------------------------------


def test_policies_doc_is_current() -> None:
    committed = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    assert committed == policies_markdown(installed_rules()), "run: python -m mlplane.policies.docs"


def test_diagnostics_doc_does_not_depend_on_loaded_packs() -> None:
    installed_rules()  # registers every rule id as a code
    table = codes.code_table_markdown()
    assert "data.pii-encrypted" not in table and "waiver-expired" in table
    assert all(info.code in table for info in registered_codes() if info.code in codes.CORE_CODES)


EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_violate_no_rule(example: Path) -> None:
    """Exemplary specs: no finding at all; the only waivers are reviewed, owned and current."""
    result = compile_spec(example, policies=True, today=TODAY)
    assert result.ok and not result.diagnostics, describe(result)
    for note in result.waived:
        assert "waived until 2027-" in note.message


def test_policy_run_is_deterministic(tmp_path: Path) -> None:
    text = edit(COMPLIANT, ("  prod: {target: kubernetes, production: true, residency: eu}",
                            "  prod: {target: kubernetes, production: true, residency: us}"))  # fmt: skip
    first = describe(compile_text(tmp_path, text))
    assert first == describe(compile_text(tmp_path, text)) and "residency" in first


def test_a_pack_runs_on_the_system_model_alone(tmp_path: Path) -> None:
    """A rule is a function of the IR: run a hand-built pack over a compiled system."""
    pack = RulePack("local")

    @pack.rule(
        "local.always", title="Always", severity=Severity.WARNING, rationale="r", remediation="f"
    )
    def always(system: Any) -> list[Finding]:
        return [Finding("always", ("metadata", "name"))]

    register_code("local.always", "Always", Severity.WARNING)
    system = compile_text(tmp_path, COMPLIANT).systems["prod"]
    found, waived = Diagnostics(), Diagnostics()
    PolicyRun(rules=pack.rules()).check(system, found, waived)
    [diagnostic] = found
    assert (diagnostic.code, diagnostic.location and diagnostic.location.line) == (
        "local.always",
        7,
    )
    assert isinstance(pack.rules()[0], Rule) and pack.rules()[0].check is always
