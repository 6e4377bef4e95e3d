"""apply, a second apply, plan against what is applied, and destroy, on every example's dev
environment, with the real engine and Kubernetes provider."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import (
    EXAMPLE_NAMES,
    declared_resources,
    dev_namespace,
    engine_changes,
    engine_preview,
    kubectl_json,
    namespace_gone,
    recorded_resources,
    system_name,
    wait_workloads_ready,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_apply_twice_then_destroy(example: str, repo_factory: Any) -> None:
    repo = repo_factory(example)
    system = system_name(repo)
    namespace = dev_namespace(repo)
    try:
        first = repo.mlplane("apply", "--env", "dev", "--yes")
        assert engine_changes(first.stdout), "the first apply reported no change"
        # The stack holds exactly the resources of the build: types and names.
        assert recorded_resources(repo, system) == declared_resources(repo)
        labels = kubectl_json(repo.env, "get", "namespace", namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert wait_workloads_ready(repo.env, namespace)

        repo.mlplane("apply", "--env", "dev", "--yes")
        # After the second apply the engine has nothing left to do (the stack resource's own
        # outputs aside).
        assert engine_preview(repo) == {}
        plan = repo.mlplane("plan", "--env", "dev", "--base", "applied", "--detailed-exitcode")
        assert "No changes" in plan.stdout
        repo.mlplane("drift", "--env", "dev")  # exit 0: nothing changed outside git
    finally:
        repo.mlplane("destroy", "--env", "dev", "--yes")
    assert recorded_resources(repo, system) == set()
    assert namespace_gone(repo.env, namespace), f"namespace {namespace} is still there"
