"""The engine the e2e tier builds is the engine the printed programs pin: one Pulumi version for
the CLI and the Python SDK, one Kubernetes provider version for the plugin and its SDK."""

from __future__ import annotations

from pathlib import Path

from mlplane.targets.pulumi_project import SDK_PINS

VERSIONS = Path(__file__).resolve().parents[1] / "tools" / "e2e" / "versions.env"


def _pins() -> dict[str, str]:
    lines = VERSIONS.read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_engine_pins_equal_the_sdk_pins() -> None:
    pins = _pins()
    assert pins["E2E_ENGINE_PULUMI_VERSION"] == SDK_PINS["pulumi"]
    assert pins["E2E_ENGINE_PULUMI_KUBERNETES_VERSION"] == SDK_PINS["pulumi-kubernetes"]
