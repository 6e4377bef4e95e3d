"""Golden plans: what a replacement drags along, in text, markdown and JSON, byte for byte.

Each case commits an example to a throw-away repository, edits one line in the working tree and
plans against ``HEAD``, exactly as a pull request's CI would:

- ``aws-replicas``: the fraud-scoring scorer's minimum replicas 4 → 5 on ``prod-aws``. The
  SageMaker endpoint configuration is replaced, so the endpoint (``endpointConfigName``) and
  the rollback alarms that watch the configuration are updated with the new name known after
  apply, the ML summary says the live endpoint is redeployed by its rollout, and the production
  redeploy is a risk flag;
- ``kubernetes-config``: the scorer's feature store moves (``uri``) on ``prod`` (Kubernetes):
  the ConfigMap the pods read by name is replaced, the Rollout's config hash changes, and the
  summary says the pods restart by the canary.

Regenerate on purpose with ``MLPLANE_ACCEPT=1 pytest tests/test_plan_golden.py`` and review the
diff; the JSON plans are validated against ``docs/plan.schema.json`` either way.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.test_plan import _VALIDATOR, committed, plan

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "plan"
ACCEPT = os.environ.get("MLPLANE_ACCEPT") == "1"
EXAMPLE = REPO / "examples" / "fraud-scoring" / "mlplane.yaml"
HARDSHIP_CLAIMS = """  hardship-claims:
    type: database
    uri: postgresql://hardship.db.internal:5432/claims
    classification: phi
    residency: eu
    retention: 365d
    encryption: kms
    owner: payments-data
    description: Medical hardship claims that suspend a card's fraud rules
"""

CASES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    # case: (environment, the edits of the example: (old text, new text) each)
    "aws-replicas": (
        "prod-aws",
        (
            (
                "instanceType: ml.c5.xlarge\n            replicas: {min: 4, max: 20}",
                "instanceType: ml.c5.xlarge\n            replicas: {min: 5, max: 20}",
            ),
        ),
    ),
    "kubernetes-config": ("prod", (("uri: feast://fraud\n", "uri: feast://fraud-v2\n"),)),
    "kubernetes-governance": (
        "prod",
        (
            ("\nmodels:\n", HARDSHIP_CLAIMS + "\nmodels:\n"),
            ("inputs: [fraud-features]", "inputs: [fraud-features, hardship-claims]"),
            ("    residency: eu\n    retention: 730d", "    residency: us\n    retention: 730d"),
            ("    explainability: {required: true, method: shap}\n", ""),
            ('expires: "2027-03-31"', 'expires: "2027-09-30"'),
        ),
    ),
}
FORMATS = {"text": "plan.txt", "markdown": "plan.md", "json": "plan.json"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_plan(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, edits = CASES[case]
    repo = committed(tmp_path, monkeypatch, EXAMPLE.read_text(encoding="utf-8"))
    shutil.copytree(EXAMPLE.parent / "policies", repo.root / "spec" / "policies")
    repo.commit("policies")
    for old, new in edits:
        repo.edit("spec/mlplane.yaml", old, new)
    produced = {}
    for fmt, name in FORMATS.items():
        result = plan("--format", fmt, env=env)
        assert result.exit_code == 0, result.output
        produced[name] = result.output
    _VALIDATOR.validate(json.loads(produced["plan.json"]))
    folder = GOLDEN / case
    if ACCEPT:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in produced.items():
            (folder / name).write_text(text, encoding="utf-8")
    for name, text in produced.items():
        expected = (folder / name).read_text(encoding="utf-8")
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"golden/{case}/{name}",
                f"planned/{name}",
            )
        )
        assert not diff, f"{case}/{name} differs (MLPLANE_ACCEPT=1 to accept):\n{diff[:6000]}"


def test_the_aws_golden_lists_the_endpoint_with_its_reason() -> None:
    text = (GOLDEN / "aws-replicas" / "plan.txt").read_text(encoding="utf-8")
    assert (
        "~ aws:sagemaker/endpoint:Endpoint scorer-endpoint "
        "(endpointConfigName: from the replaced scorer-endpoint-config)"
    ) in text
    assert "~ endpointConfigName: ${scorer-endpoint-config.name} → (known after apply)" in text
    assert (
        "model scorer: the live endpoint is redeployed (blue/green, canary 25 %, bake 10 m)" in text
    )
    assert "[production-model-redeployed]" in text
    document = json.loads((GOLDEN / "aws-replicas" / "plan.json").read_text(encoding="utf-8"))
    [endpoint] = [r for r in document["resources"] if r["name"] == "scorer-endpoint"]
    assert endpoint["because"] == [
        {"cause": "replaced", "output": "name", "path": "endpointConfigName",
         "resource": "scorer-endpoint-config"},
    ]  # fmt: skip
    assert document["summary"]["update"] == sum(
        1 for r in document["resources"] if r["action"] == "update"
    )
    markdown = (GOLDEN / "aws-replicas" / "plan.md").read_text(encoding="utf-8")
    assert "# endpointConfigName: from the replaced scorer-endpoint-config" in markdown


def test_the_kubernetes_golden_says_the_pods_restart() -> None:
    text = (GOLDEN / "kubernetes-config" / "plan.txt").read_text(encoding="utf-8")
    assert "model scorer: pods restart (config hash; canary 10 %, 50 %, pause 10 m)" in text
    assert "-/+ kubernetes:core/v1:ConfigMap scorer-configmap (replace: data)" in text
