"""Risk flags of the environment settings that decide where and as whom a deployment happens.

A state backend change (``s3://…`` to an ``https://`` host, or any other change of ``state:``),
a change of the role that deploys (Pulumi's ``aws.deployRoleArn`` or the CI workflows'
``ci.environments.<env>.aws.roleArn``) and a change of the Kubernetes context each raise their
flag in every format, at the spec line that makes the change, and ``--fail-on risk`` fails on
each. Each test commits a base in a git repository and edits the working tree, as in
``tests/test_plan.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.cli.main import cli
from mlplane.compiler.plan import risk as plan_risk
from tests.specs import BASE
from tests.test_plan import _VALIDATOR, committed, plan, plan_json, risk_codes

SPEC = "spec/mlplane.yaml"
DEV = "  dev:\n    target: kubernetes\n"


def with_dev(settings: str) -> str:
    """``BASE`` with ``settings`` (indented lines) added to the dev environment."""
    assert BASE.count(DEV) == 1
    return BASE.replace(DEV, DEV + settings)


def flagged(document: dict[str, Any], code: str) -> dict[str, Any]:
    [risk] = [r for r in document["risks"] if r["code"] == code]
    assert risk["meaning"] == plan_risk.risk_codes()[code]
    return risk


KUBERNETES_CASES = [
    # (id, base settings of dev, head settings of dev, summary line, risk code)
    ("state-default-to-s3", "", "    state: s3://acme-pulumi/demo\n",
     "environment dev: state backend default → s3://acme-pulumi/demo", "state-backend-changed"),
    ("state-s3-to-https", "    state: s3://acme-pulumi/demo\n",
     "    state: https://state.example.net\n",
     "environment dev: state backend s3://acme-pulumi/demo → https://state.example.net",
     "state-backend-changed"),
    ("state-s3-bucket", "    state: s3://acme-pulumi/demo\n", "    state: s3://other/demo\n",
     "environment dev: state backend s3://acme-pulumi/demo → s3://other/demo",
     "state-backend-changed"),
    ("state-to-default", "    state: file://.pulumi-state\n", "",
     "environment dev: state backend file://.pulumi-state → default", "state-backend-changed"),
    ("context-default-to-named", "", "    kubernetes: {context: prod-eu}\n",
     "environment dev: cluster context default → prod-eu", "kube-context-changed"),
    ("context-renamed", "    kubernetes: {context: kind-mlplane}\n",
     "    kubernetes: {context: prod-eu}\n",
     "environment dev: cluster context kind-mlplane → prod-eu", "kube-context-changed"),
    ("kubeflow-endpoint-moved",
     '    kubernetes: {kubeflow: {endpoint: "https://kfp-a.example/pipeline"}}\n',
     '    kubernetes: {kubeflow: {endpoint: "https://kfp-b.example/pipeline"}}\n',
     "environment dev: Kubeflow Pipelines API https://kfp-a.example/pipeline → "
     "https://kfp-b.example/pipeline", "kubeflow-endpoint-changed"),
    ("kubeflow-endpoint-removed",
     '    kubernetes: {kubeflow: {endpoint: "https://kfp-a.example/pipeline"}}\n', "",
     "environment dev: Kubeflow Pipelines API https://kfp-a.example/pipeline → none",
     "kubeflow-endpoint-changed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "after", "line", "code"),
    [case[1:] for case in KUBERNETES_CASES],
    ids=[case[0] for case in KUBERNETES_CASES],
)
def test_environment_change_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: str, after: str, line: str, code: str
) -> None:
    repo = committed(tmp_path, monkeypatch, with_dev(before))
    repo.write(SPEC, with_dev(after))
    document = plan_json()
    [change] = [c for c in document["specChanges"] if c["text"] == line]
    assert change["risks"] == [code]
    risk = flagged(document, code)
    assert risk["message"] == f"{line}: {plan_risk.risk_notes()[code]}"
    if after:  # the line that makes the change; a removed setting points at the environment
        written = with_dev(after).splitlines().index(after.splitlines()[0]) + 1
        assert (change["source"]["file"], change["source"]["line"]) == (SPEC, written)
    text = plan().output
    assert f"⚠ [{code}] {line}" in text
    assert f"| `{code}` |" in plan("--format", "markdown").output
    assert plan("--fail-on", "risk").exit_code == 1
    assert plan("--fail-on", "risk", "--detailed-exitcode").exit_code == 1


def test_unchanged_settings_raise_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = "    state: s3://acme-pulumi/demo\n    kubernetes: {context: prod-eu}\n"
    repo = committed(tmp_path, monkeypatch, with_dev(settings))
    repo.edit(SPEC, "replicas: {min: 2, max: 4}", "replicas: {min: 3, max: 6}")
    document = plan_json()
    assert risk_codes(document) == set()
    assert plan("--fail-on", "risk").exit_code == 0


def test_a_first_kubeflow_endpoint_is_shown_and_raises_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed(tmp_path, monkeypatch, with_dev(""))
    endpoint = "https://kfp-a.example/pipeline"
    Path(SPEC).write_text(
        with_dev(f'    kubernetes: {{kubeflow: {{endpoint: "{endpoint}"}}}}\n'), encoding="utf-8"
    )
    document = plan_json()
    line = f"environment dev: Kubeflow Pipelines API none → {endpoint}"
    [change] = [c for c in document["specChanges"] if c["text"] == line]
    assert change["risks"] == []
    assert risk_codes(document) == set()


# --- the roles that deploy (AWS) ----------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/shop-deploy"
CI_ROLE = "arn:aws:iam::123456789012:role/shop-ci"


def aws_plan(env: str = "prod", *args: str) -> Any:
    return CliRunner().invoke(cli, ["plan", "spec", "--env", env, "--format", "json", *args])


@pytest.fixture
def aws_spec() -> str:
    pytest.importorskip("mlplane.targets.aws")
    from tests.test_aws_target import SPEC as AWS  # imports the AWS target

    return AWS + f"ci:\n  environments:\n    prod:\n      aws: {{roleArn: {CI_ROLE}}}\n"


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("role/shop-deploy\n", "role/shop-deploy-v2\n",
         f"environment prod: deploy role {ROLE} → {ROLE}-v2"),
        (f"      deployRoleArn: {ROLE}\n", "",
         f"environment prod: deploy role {ROLE} → none"),
        (f"{{roleArn: {CI_ROLE}}}", "{roleArn: arn:aws:iam::123456789012:role/other}",
         f"environment prod: CI deploy role {CI_ROLE} → arn:aws:iam::123456789012:role/other"),
    ],
    ids=["pulumi-role-renamed", "pulumi-role-removed", "ci-role-changed"],
)  # fmt: skip
def test_deploy_role_change_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_spec: str, old: str, new: str, line: str
) -> None:
    repo = committed(tmp_path, monkeypatch, aws_spec)
    repo.edit(SPEC, old, new)
    result = aws_plan()
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    _VALIDATOR.validate(document)
    [change] = [c for c in document["specChanges"] if c["text"] == line]
    assert change["risks"] == ["deploy-role-changed"]
    flagged(document, "deploy-role-changed")
    if "CI" in line:
        assert change["source"]["path"] == "ci.environments.prod.aws.roleArn"
        written = aws_spec.replace(old, new).splitlines().index(f"      aws: {new}") + 1
        assert change["source"]["line"] == written
    assert aws_plan("prod", "--fail-on", "risk").exit_code == 1


def test_first_deployment_raises_no_environment_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing to compare (``--base none``), settings are an inventory, not a change."""
    committed(tmp_path, monkeypatch, with_dev("    state: https://state.example.net\n"))
    document = plan_json("--base", "none")
    assert not risk_codes(document) & {"state-backend-changed", "kube-context-changed"}
