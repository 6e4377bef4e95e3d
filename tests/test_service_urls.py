"""The URLs of services mlplane talks to (the drift job's Pushgateway, the Kubeflow Pipelines
API) refuse credentials written in them as ``inline-secret``, without echoing them, and a URL
that does not parse as ``invalid-uri``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from mlplane.schema.drift import PushgatewayUrl
from mlplane.schema.kubeflow import KfpEndpoint

URLS: dict[str, Any] = {"pushgateway": PushgatewayUrl, "kubeflow": KfpEndpoint}


def _refusal(kind: str, value: str) -> tuple[str, str]:
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(URLS[kind]).validate_python(value)
    (error,) = raised.value.errors()
    return str(error["type"]), str(error["msg"])


@pytest.mark.parametrize("kind", sorted(URLS))
@pytest.mark.parametrize("userinfo", ["ci:s3cret@", "s3cret@", ":s3cret@"])
def test_credentials_in_a_service_url_are_refused_unechoed(kind: str, userinfo: str) -> None:
    code, message = _refusal(kind, f"https://{userinfo}service.acme.example:9091")
    assert code == "inline-secret"
    assert "s3cret" not in message


@pytest.mark.parametrize("kind", sorted(URLS))
@pytest.mark.parametrize("value", ["https://service.acme.example:99999", "https://[::1"])
def test_a_service_url_that_does_not_parse_is_invalid(kind: str, value: str) -> None:
    assert _refusal(kind, value)[0] == "invalid-uri"
