"""drift against the real engine's refresh, apply putting back what changed outside git, and saved
plans applied exactly or refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Repo, kubectl, kubectl_json, wait_workloads_ready

pytestmark = pytest.mark.e2e

NAMESPACE = "fraud-dev"


def _fixed_replicas(repo: Repo) -> None:
    """The fraud scorer without an autoscaler: its Rollout then declares spec.replicas, which
    `kubectl scale` changes out of band (with an autoscaler the HPA owns the count)."""
    spec = repo.spec()
    del spec["models"]["scorer"]["serving"]["autoscaling"]
    repo.write_spec(spec)
    repo.commit("scorer with a fixed replica count")


def test_drift_names_each_change_and_apply_puts_back_what_it_can(repo_factory: Any) -> None:
    repo: Repo = repo_factory("fraud-scoring")
    _fixed_replicas(repo)
    repo.mlplane("apply", "--env", "dev", "--yes")
    try:
        assert "No drift" in repo.mlplane("drift", "--env", "dev").stdout
        kubectl(repo.env, "scale", "rollout", "scorer", "-n", NAMESPACE, "--replicas=3")
        kubectl(
            repo.env, "patch", "networkpolicy", "scorer", "-n", NAMESPACE, "--type=json",
            "-p", '[{"op": "replace", "path": "/spec/ingress/0/ports/0/port", "value": 9999}]',
        )  # fmt: skip
        kubectl(
            repo.env, "patch", "networkpolicy", "scorer-batch", "-n", NAMESPACE, "--type=json",
            "-p", '[{"op": "add", "path": "/spec/egress/-", "value": {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}}]',
        )  # fmt: skip
        kubectl(repo.env, "delete", "servicemonitor", "scorer", "-n", NAMESPACE)

        drift = repo.mlplane("drift", "--env", "dev", expect=2).stdout
        lines = {line.split(":")[0].strip("~ ").strip(): line for line in drift.splitlines()}
        assert "spec.replicas" in lines["scorer-rollout"], drift
        assert "spec.ingress[0].ports[0].port" in lines["scorer-networkpolicy"], drift
        assert "delete" in lines["scorer-servicemonitor"], drift
        # An added rule: the provider's refreshed inputs are cut to the declared rules.
        assert "spec.egress[2]" in lines["scorer-batch-networkpolicy"], drift
        assert "4 resource(s) changed outside git" in drift

        # The engine's diff cannot see the added rule: apply leaves it, says so, and drift keeps
        # naming it until it is removed.
        applied = repo.mlplane("apply", "--env", "dev", "--yes").stdout
        assert "warning: scorer-batch-networkpolicy: spec.egress[2]" in applied, applied
        left = repo.mlplane("drift", "--env", "dev", expect=2).stdout
        assert "1 resource(s) changed outside git" in left and "spec.egress[2]" in left, left
        kubectl(
            repo.env, "patch", "networkpolicy", "scorer-batch", "-n", NAMESPACE, "--type=json",
            "-p", '[{"op": "remove", "path": "/spec/egress/2"}]',
        )  # fmt: skip
        assert "No drift" in repo.mlplane("drift", "--env", "dev").stdout
        rollout = kubectl_json(repo.env, "get", "rollout", "scorer", "-n", NAMESPACE)
        assert rollout["spec"]["replicas"] == 1
        policy = kubectl_json(repo.env, "get", "networkpolicy", "scorer", "-n", NAMESPACE)
        assert policy["spec"]["ingress"][0]["ports"][0]["port"] == 8080
        kubectl(repo.env, "get", "servicemonitor", "scorer", "-n", NAMESPACE)
        wait_workloads_ready(repo.env, NAMESPACE)
    finally:
        repo.mlplane("destroy", "--env", "dev", "--yes")


def test_a_saved_plan_is_applied_exactly_or_refused(repo_factory: Any) -> None:
    repo: Repo = repo_factory("fraud-scoring")
    repo.mlplane("apply", "--env", "dev", "--yes")
    try:
        spec = repo.spec()
        spec["environments"]["dev"]["overrides"]["models"]["scorer"]["serving"]["replicas"] = {
            "min": 1,
            "max": 3,
        }
        repo.write_spec(spec)
        repo.commit("scorer may scale to 3")
        plan_file = repo.path.parent / "reviewed-plan.json"
        repo.mlplane("plan", "--env", "dev", "--base", "applied", "--out", str(plan_file))
        repo.mlplane("apply", "--env", "dev", "--plan", str(plan_file), "--yes")
        hpa = kubectl_json(repo.env, "get", "hpa", "scorer", "-n", NAMESPACE)
        assert hpa["spec"]["maxReplicas"] == 3
        repo.mlplane("plan", "--env", "dev", "--base", "applied", "--detailed-exitcode")

        # A plan made before a new commit is refused before the engine is touched.
        repo.mlplane("plan", "--env", "dev", "--base", "applied", "--out", str(plan_file))
        spec["slas"]["scorer-availability"]["objective"] = 99.9
        repo.write_spec(spec)
        repo.commit("a stricter availability objective")
        refused = repo.mlplane("apply", "--env", "dev", "--plan", str(plan_file), "--yes", expect=1)
        assert "no longer matches" in refused.stderr + refused.stdout
        assert "Previewing" not in refused.stdout
    finally:
        repo.mlplane("destroy", "--env", "dev", "--yes")
