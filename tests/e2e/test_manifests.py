"""The plain manifests of every example's dev environment, applied for real.

`kubectl apply --server-side` (not a dry run) of everything under build/<env>/manifests/: the API
server validates each object against its schema (the CRDs of Argo Rollouts, prometheus-operator
and External Secrets included), Pod Security admission enforces `restricted` on the namespace,
and the controllers (Deployment and ReplicaSet controllers, Argo Rollouts, the scheduler) make
pods that must be admitted and become Ready on the kwok nodes.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e.conftest import (
    EXAMPLE_NAMES,
    delete_namespace,
    kubectl,
    kubectl_json,
    wait_workloads_ready,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_manifests_apply_and_their_pods_become_ready(example: str, repo_factory: Any) -> None:
    repo = repo_factory(example)
    out = repo.path / "build"
    repo.mlplane("build", "--env", "dev", "--out", str(out))
    manifests = out / "manifests"
    documents = yaml.safe_load_all((manifests / "00-namespace.yaml").read_text(encoding="utf-8"))
    name = next(d["metadata"]["name"] for d in documents if d and d["kind"] == "Namespace")
    try:
        done = kubectl(
            repo.env, "apply", "--server-side", "--field-manager=mlplane-e2e", "-f", str(manifests),
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"the API server refused objects:\n{done.stderr}"
        labels = kubectl_json(repo.env, "get", "namespace", name)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        workloads = wait_workloads_ready(repo.env, name)
        assert workloads, f"{example}: no Deployment or Rollout in {name}"
        pods = kubectl_json(repo.env, "get", "pods", "-n", name)["items"]
        assert pods and all(p["status"].get("phase") == "Running" for p in pods)
        # Re-applying as the manifests' README says is accepted, also after the controllers took
        # over the fields the README lists (blue-green Services' selectors).
        readme = (manifests / "README.md").read_text(encoding="utf-8")
        again = kubectl(repo.env, "apply", "-f", str(manifests), check=False)
        assert again.returncode == 0, f"re-applying the manifests fails:\n{again.stderr}"
        blue_green = any(
            "strategy: blueGreen" in f.read_text(encoding="utf-8") for f in repo.path.glob("*.yaml")
        )
        assert ("## Re-applying" in readme) == blue_green
        if blue_green:
            ssa = kubectl(
                repo.env, "apply", "--server-side", "--field-manager=mlplane-e2e",
                "-f", str(manifests), check=False,
            )  # fmt: skip
            assert ssa.returncode != 0 and ".spec.selector" in ssa.stderr, (
                "the README's warning about server-side re-applies no longer holds"
            )
    finally:
        delete_namespace(repo.env, name)
