"""Defects the e2e tier (tests/e2e/) found in generated Kubernetes output, pinned without a
cluster: each test fails on the output from before the fix.

- A blue-green Service's ``spec.selector`` becomes the Argo Rollouts controller's after the first
  rollout (it adds ``rollouts-pod-template-hash``; the selector is an atomic map): the program
  leaves it out of later patches (``ignoreChanges``), and the manifests' README says how to
  re-apply.
- The Pulumi Kubernetes provider (4.25.0) crashes awaiting a foreground deletion of a Rollout
  (its generic status check cannot read the string ``status.observedGeneration`` of Argo
  Rollouts): Rollouts are deleted in the background.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplane.compiler.build import outputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recsys_dev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recsys") / "build"
    result = outputs.build(ROOT / "examples" / "recsys-gpu", "dev", out)
    assert result.ok, result.diagnostics
    return out


def _resources(out: Path) -> list[dict[str, object]]:
    graph = json.loads((out / "resources.json").read_text(encoding="utf-8"))
    resources: list[dict[str, object]] = graph["resources"]
    return resources


def test_blue_green_services_leave_their_selector_to_the_rollouts_controller(
    recsys_dev: Path,
) -> None:
    services = {
        str(r["name"]): r
        for r in _resources(recsys_dev)
        if r["type"] == "kubernetes:core/v1:Service"
    }
    assert services["ranker-service"]["options"]["ignoreChanges"] == ["spec.selector"]  # type: ignore[index]
    assert services["ranker-preview-service"]["options"]["ignoreChanges"] == ["spec.selector"]  # type: ignore[index]
    assert services["retrieval-service"]["options"]["ignoreChanges"] == []  # type: ignore[index]
    program = (recsys_dev / "pulumi" / "__main__.py").read_text(encoding="utf-8")
    assert "ignore_changes=['spec.selector']" in program
    readme = (recsys_dev / "manifests" / "README.md").read_text(encoding="utf-8")
    assert "## Re-applying" in readme
    assert "Service `ranker-preview`: `spec.selector`" in readme


def test_rollouts_are_deleted_in_the_background(recsys_dev: Path) -> None:
    rollouts = [r for r in _resources(recsys_dev) if str(r["type"]).endswith(":Rollout")]
    assert rollouts
    for rollout in rollouts:
        metadata = rollout["inputs"]["metadata"]  # type: ignore[index]
        assert metadata["annotations"]["pulumi.com/deletionPropagationPolicy"] == "background"
