"""Small specs for unit tests: a compact valid base and a helper to compile variants of it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mlplane.compiler.build.pipeline import CompileResult, compile_spec

DIGEST = "sha256:" + "ab" * 32

BASE = f"""\
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata:
  name: demo
  owner: ml-team
environments:
  dev:
    target: kubernetes
  prod:
    target: kubernetes
    overrides:
      models:
        scorer:
          serving:
            replicas: {{min: 3, max: 9}}
dataSources:
  events:
    type: stream
    uri: kafka://broker:9092/events
    classification: pii
    residency: eu
    freshness: 5m
  features:
    type: featureStore
    uri: feast://demo
    classification: pii
    derivedFrom: [events]
models:
  scorer:
    framework: sklearn
    version: "1.0.0"
    image: ghcr.io/acme/scorer@{DIGEST}
    inputs: [features]
    serving:
      replicas: {{min: 2, max: 4}}
      resources: {{cpu: 500m, memory: 1Gi}}
slas:
  scorer-availability:
    model: scorer
    objective: 99.9
    indicator: availability
"""


def write_spec(directory: Path, text: str, name: str = "mlplane.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def compile_text(
    directory: Path, text: str, environments: list[str] | None = None
) -> CompileResult:
    return compile_spec(write_spec(directory, text), environments)


def codes_of(result: CompileResult) -> list[str]:
    return [d.code for d in result.sorted_diagnostics()]


def _policy_clean(text: str) -> str:
    """``BASE`` changed so that the built-in policy pack finds nothing (for build and CLI tests)."""
    text = text.replace("classification: pii", "classification: internal")
    text = text.replace("    target: kubernetes\n", "    target: kubernetes\n    residency: eu\n")
    text = text.replace("    objective: 99.9\n", "    objective: 99.5\n")
    return text + (
        "  events-fresh:\n    dataSource: events\n    objective: 99\n"
        "    indicator: {freshness: {maxAge: 5m}}\n"
        "security:\n  images: {allowedRegistries: [ghcr.io/acme]}\n"
    )


CLEAN = _policy_clean(BASE)
"""A valid spec that also passes every built-in policy."""
