"""Whole-spec scans: CI expressions and inline secrets, wherever they are written."""

from __future__ import annotations

from pathlib import Path

import pytest

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
