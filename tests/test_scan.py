"""Whole-spec scans: CI expressions and inline secrets, wherever they are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.core.diagnostics import Diagnostics, Location
from mlplane.compiler.core.redact import Redactions
from mlplane.compiler.render.dispatch import RenderOptions, render
from tests.specs import BASE, codes_of, compile_text

SECRETS = {
    "aws key": "AKIAIOSFODNN7EXAMPLE",
    "github token": "ghp_" + "a1B2" * 9,
    "slack webhook": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXX",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
    "random token": "q8Zr2LmX7vB4nK9wT1yH6pD3sF5gJ0aE",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_known_secret_shapes_in_free_text(tmp_path: Path, name: str) -> None:
    value = SECRETS[name]
    spec = BASE.replace("  owner: ml-team\n", f"  owner: ml-team\n  description: 'key {value}'\n")
    result = compile_text(tmp_path, spec)
    assert codes_of(result) == ["inline-secret"]
    for fmt in ("text", "json", "sarif", "github"):
        assert value not in render(
            fmt, result.sorted_diagnostics(), result.sources, RenderOptions()
        )


def test_secret_named_keys_anywhere(tmp_path: Path) -> None:
    spec = BASE.replace("  owner: ml-team\n", "  owner: ml-team\n  password: hunter2\n")
    result = compile_text(tmp_path, spec)
    # one diagnostic for the secret; the unknown field is not reported twice
    assert codes_of(result) == ["inline-secret"]
    assert "hunter2" not in render(
        "text", result.sorted_diagnostics(), result.sources, RenderOptions()
    )


def test_private_key_block(tmp_path: Path) -> None:
    spec = BASE.replace(
        "  owner: ml-team\n",
        "  owner: ml-team\n  description: |\n    -----BEGIN RSA PRIVATE KEY-----\n    MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n",
    )
    assert codes_of(compile_text(tmp_path, spec)) == ["inline-secret"]


def test_digests_and_references_are_not_secrets(tmp_path: Path) -> None:
    spec = (
        BASE
        + "security:\n  secrets:\n    token: {ref: 'vault://team/very-long-path/with-many-parts#key'}\n"
    )
    spec = spec.replace("inputs: [features]", "inputs: [features]\n    secrets: [token]")
    result = compile_text(tmp_path, spec)
    assert result.ok and codes_of(result) == []


def test_ci_expressions_are_rejected_everywhere(tmp_path: Path) -> None:
    spec = BASE.replace(
        "  owner: ml-team\n", "  owner: ml-team\n  description: 'x ${{ secrets.TOKEN }}'\n"
    )
    spec = spec.replace("uri: feast://demo", "uri: 'feast://demo/${{ github.token }}'")
    result = compile_text(tmp_path, spec)
    assert codes_of(result) == ["invalid-text", "invalid-text"]


# --- keys, lines, URIs and numbers (secrets that once got through) ---------------------------

GITHUB_TOKEN = "ghp_" + "k3Y5" * 9
AWS_KEY_ID = "AKIA" + "KEYSCAN2Q7W3E4R5"
FORMATS = ("text", "json", "sarif", "github")


def _rendered(result: CompileResult) -> str:
    items = result.sorted_diagnostics()
    return "".join(render(fmt, items, result.sources, RenderOptions()) for fmt in FORMATS)


def test_an_unknown_key_that_is_a_token_is_reported_at_the_key_and_never_echoed(
    tmp_path: Path,
) -> None:
    spec = BASE.replace("  owner: ml-team\n", f"  owner: ml-team\n  {GITHUB_TOKEN}: x\n")
    result = compile_text(tmp_path, spec)
    [diagnostic] = result.sorted_diagnostics()  # no unknown-field with a "did you mean" too
    assert diagnostic.code == "inline-secret"
    assert diagnostic.location is not None
    assert (diagnostic.location.line, diagnostic.location.column) == (6, 3)
    assert diagnostic.path == "metadata.***" and "key is not shown" in diagnostic.message
    assert GITHUB_TOKEN not in _rendered(result)


@pytest.mark.parametrize(
    "where",
    [
        "  labels:\n    {key}: team\n",
        "  labels:\n    team:\n      {key}: [1]\n",
        "  annotations:\n  - {{{key}: 1}}\n",
    ],
)
def test_keys_are_scanned_at_any_depth(tmp_path: Path, where: str) -> None:
    spec = BASE.replace("  owner: ml-team\n", "  owner: ml-team\n" + where.format(key=AWS_KEY_ID))
    result = compile_text(tmp_path, spec)
    assert "inline-secret" in codes_of(result) and not result.ok
    assert AWS_KEY_ID not in _rendered(result)


def test_keys_are_scanned_in_every_file_of_a_multi_file_spec(tmp_path: Path) -> None:
    models_at = BASE.index("\nmodels:\n") + 1
    (tmp_path / "a.yaml").write_text(BASE[:models_at], encoding="utf-8")
    models = BASE[models_at:].replace("    inputs:", f"    {GITHUB_TOKEN}: 1\n    inputs:")
    (tmp_path / "b.yaml").write_text(models, encoding="utf-8")
    result = compile_spec(tmp_path)
    [diagnostic] = result.sorted_diagnostics()
    assert diagnostic.code == "inline-secret" and diagnostic.location is not None
    assert diagnostic.location.file.endswith("b.yaml")
    assert GITHUB_TOKEN not in _rendered(result)


def test_no_diagnostic_quotes_a_flagged_line_whatever_its_code(tmp_path: Path) -> None:
    # unknown-field is not a sensitive code, but its line carries a key in a comment
    spec = BASE.replace(
        "      resources:", f"      replica: 3  # deploy key {AWS_KEY_ID}\n      resources:"
    )
    result = compile_text(tmp_path, spec)
    assert codes_of(result) == ["unknown-field"]
    text = render("text", result.sorted_diagnostics(), result.sources, RenderOptions())
    assert AWS_KEY_ID not in text and "replica: 3" not in text
    assert "source line not shown" in text


def test_no_message_repeats_a_flagged_value_whatever_its_code(tmp_path: Path) -> None:
    # the password is flagged on its own line; the schema pass quotes it on another one
    spec = BASE.replace(
        "  owner: ml-team\n", "  owner: ml-team\n  password: Tr0ub4dor-horse\n"
    ).replace("framework: sklearn", "framework: Tr0ub4dor-horse")
    result = compile_text(tmp_path, spec)
    assert codes_of(result) == ["inline-secret", "invalid-value"]
    invalid = result.sorted_diagnostics()[1]
    assert '"***"' in invalid.message and invalid.hide_source
    assert "Tr0ub4dor" not in _rendered(result)


def test_a_duplicate_key_that_is_a_token_is_masked_before_any_scan(tmp_path: Path) -> None:
    spec = BASE.replace(
        "  owner: ml-team\n", f"  owner: ml-team\n  {GITHUB_TOKEN}: 1\n  {GITHUB_TOKEN}: 2\n"
    )
    result = compile_text(tmp_path, spec)
    assert codes_of(result) == ["duplicate-key"]
    assert GITHUB_TOKEN not in _rendered(result)


@pytest.mark.parametrize(
    "uri",
    [
        "s3://acme-state/ml?secretKey=Qs3cretValue1",
        "s3://acme-state/ml?region=eu&PASSWORD=Qs3cretValue1",
        "https://state.example.com/ml?token=Qs3cretValue1",
        "https://acme.blob.core.windows.net/state?sv=2022-11-02&sig=Qs3cretValue1",
        "https://storage.example.com/o?X-Amz-Algorithm=AWS4&X-Amz-Signature=Qs3cretValue1",
        "https://state.example.com/ml?db_password=Qs3cretValue1",
        "https://state.example.com/ml#access_token=Qs3cretValue1",
        "https://ci:Qs3cretValue1@state.example.com/ml",
    ],
)
def test_credentials_in_uri_queries_and_userinfo_are_inline_secrets(
    tmp_path: Path, uri: str
) -> None:
    spec = BASE.replace(
        "  dev:\n    target: kubernetes\n", f"  dev:\n    target: kubernetes\n    state: '{uri}'\n"
    )
    result = compile_text(tmp_path, spec)
    assert codes_of(result) == ["inline-secret"]
    assert "Qs3cretValue1" not in _rendered(result)


@pytest.mark.parametrize(
    "uri",
    ["s3://acme-state/ml?region=eu", "https://state.example.com/ml?token=", "file://./state"],
)
def test_uri_queries_without_credentials_are_accepted(tmp_path: Path, uri: str) -> None:
    spec = BASE.replace(
        "  dev:\n    target: kubernetes\n", f"  dev:\n    target: kubernetes\n    state: '{uri}'\n"
    )
    assert "inline-secret" not in codes_of(compile_text(tmp_path, spec))


@pytest.mark.parametrize(
    ("field", "value", "hidden"),
    [
        ("password", "123456789", "123456789"),
        ("apiKey", "0x1F2E3D4C", "0x1F2E3D4C"),
        ("client_secret", "31415.9265", "31415.9265"),
    ],
)
def test_numbers_in_secret_named_fields_are_inline_secrets(
    tmp_path: Path, field: str, value: str, hidden: str
) -> None:
    spec = BASE.replace("  owner: ml-team\n", f"  owner: ml-team\n  {field}: {value}\n")
    result = compile_text(tmp_path, spec)
    assert codes_of(result) == ["inline-secret"]
    assert hidden not in _rendered(result)


def test_a_boolean_in_a_secret_named_field_is_no_secret(tmp_path: Path) -> None:
    spec = BASE.replace("  owner: ml-team\n", "  owner: ml-team\n  password: true\n")
    assert codes_of(compile_text(tmp_path, spec)) == ["unknown-field"]


def test_masking_is_applied_to_diagnostics_collected_before_the_scan() -> None:
    diagnostics = Diagnostics()
    where = Location("spec.yaml", 3, 1)
    diagnostics.error("unknown-field", "unknown field 'hunter2'", where, ("metadata", "hunter2"))
    diagnostics.redact(["hunter2"], [("spec.yaml", 3, 3)])
    diagnostics.error("invalid-value", "got 'hunter2' and 'hunter2x'", Location("spec.yaml", 9, 1))
    first, second = diagnostics.sorted()
    assert (first.message, first.path, first.hide_source) == (
        "unknown field '***'",
        "metadata.***",
        True,
    )
    # a short value is masked as a whole word only; a line elsewhere is still quoted
    assert second.message == "got '***' and 'hunter2x'" and not second.hide_source


@pytest.mark.slow
def test_masking_cost_stays_linear_in_the_text() -> None:
    redactions = Redactions()
    redactions.add_values(f"value-{n:06d}" for n in range(20_000))
    assert redactions.mask("a value-000042 and value-019999 here") == "a *** and *** here"
