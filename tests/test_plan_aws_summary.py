"""The plan's ML summary of the AWS fields of a spec, and the autoscaled instance type flag.

A git repository holds the AWS spec of ``tests/test_aws_target.py`` as the base; the working
tree changes a model's instance type and data capture, a data source's ``managed`` and the
environment's AWS settings. Every change is one summary line at the spec line that makes it,
in text, markdown and JSON. The risk flag ``autoscaled-instance-type-changed`` is tested on
the two system models directly: it fires on AWS when the model autoscales at the base or the
head and its instance type changes, and nowhere else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.cli.main import cli
from mlplane.compiler.plan.model import Side
from mlplane.compiler.plan.risk import risk_codes, risk_notes, spec_risks
from mlplane.compiler.plan.run import summarise
from tests.specs import BASE, compile_text
from tests.test_plan import _VALIDATOR, Repo, committed

pytest.importorskip("mlplane.targets.aws")
from tests.test_aws_target import SPEC  # imports the AWS target

RISK = "autoscaled-instance-type-changed"
REGION = "aws-region-changed"
SCORER_TYPE = "      instanceType: ml.m5.xlarge\n"
RANKER_TYPE = "      instanceType: ml.g5.xlarge\n"
SCORER_SCALING = "      autoscaling: {metric: rps, target: 50}\n"
EDITS = (
    (SCORER_TYPE, "      instanceType: ml.m5.2xlarge\n"
     "      dataCapture: {destination: events, samplingPercentage: 20}\n"),
    (RANKER_TYPE, "      instanceType: ml.g5.2xlarge\n"),
    ("    residency: eu\n  clicks:", "    residency: eu\n    managed: true\n  clicks:"),
    ("region: eu-west-1", "region: eu-central-1"),
    ("vpc: {subnetIds: [subnet-0a1b2c3d], securityGroupIds: [sg-0a1b2c3d]}",
     "vpc: {subnetIds: [subnet-0a1b2c3d, subnet-0e1f2a3b], securityGroupIds: [sg-0f9e8d7c]}"),
    ("role/shop-deploy\n", "role/shop-deploy-v2\n"),
)  # fmt: skip


def edited(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


HEAD = edited(SPEC, *EDITS)


def line_of(needle: str, after: str | None = None) -> int:
    """The line of the head spec holding ``needle`` (the first one below ``after``)."""
    lines = HEAD.splitlines()
    start = line_of(after) if after is not None else 0
    return next(n for n, line in enumerate(lines[start:], start + 1) if needle in line)


ROLE = "arn:aws:iam::123456789012:role/shop-deploy"
EXPECTED = [
    # (line text, spec path, line of the head spec, risk codes)
    ("environment prod: AWS region eu-west-1 → eu-central-1", "environments.prod.aws.region",
     line_of("region: eu-central-1"), [REGION]),
    ("environment prod: VPC subnets subnet-0a1b2c3d → subnet-0a1b2c3d, subnet-0e1f2a3b",
     "environments.prod.aws.vpc.subnetIds", line_of("vpc: {"), []),
    ("environment prod: VPC security groups sg-0a1b2c3d → sg-0f9e8d7c",
     "environments.prod.aws.vpc.securityGroupIds", line_of("vpc: {"), []),
    (f"environment prod: deploy role {ROLE} → {ROLE}-v2", "environments.prod.aws.deployRoleArn",
     line_of("deployRoleArn:"), ["deploy-role-changed"]),
    ("data source lake: managed no → yes", "dataSources.lake.managed",
     line_of("managed: true", after="  lake:"), []),
    ("model ranker: instance type ml.g5.xlarge → ml.g5.2xlarge",
     "models.ranker.serving.instanceType", line_of("instanceType: ml.g5.2xlarge"), []),
    ("model scorer: instance type ml.m5.xlarge → ml.m5.2xlarge",
     "models.scorer.serving.instanceType", line_of("instanceType: ml.m5.2xlarge"), [RISK]),
    ("model scorer: data capture off → 20% to events", "models.scorer.serving.dataCapture",
     line_of("dataCapture:"), []),
    # the new configurations drag both endpoints along: SageMaker redeploys them
    ("model ranker: the live endpoint is redeployed (blue/green, all at once, bake 10 m)",
     "models.ranker.serving.rollout", line_of("rollout: {strategy: blueGreen}"),
     ["production-model-redeployed"]),
    ("model scorer: the live endpoint is redeployed (blue/green, canary 50 %, bake 10 m)",
     "models.scorer.serving.rollout", line_of("rollout: {strategy: canary"),
     ["production-model-redeployed"]),
]  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    made = committed(tmp_path, monkeypatch, SPEC)
    made.write("spec/mlplane.yaml", HEAD)
    return made


def plan(fmt: str) -> str:
    result = CliRunner().invoke(cli, ["plan", "spec", "--env", "prod", "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.output


def test_aws_fields_are_summarised_at_their_lines_in_every_format(repo: Repo) -> None:
    del repo
    text, markdown = plan("text"), plan("markdown")
    document: dict[str, Any] = json.loads(plan("json"))
    _VALIDATOR.validate(document)
    assert [c["text"] for c in document["specChanges"]] == [e[0] for e in EXPECTED]
    for (line, path, number, risks), change in zip(EXPECTED, document["specChanges"], strict=True):
        mark = " ⚠" if risks else ""
        assert f"  ~ {line}{mark}  (spec/mlplane.yaml:{number})" in text.splitlines()
        assert f"- `~` `{line}`{mark} — `spec/mlplane.yaml:{number}`" in markdown.splitlines()
        source = change["source"]
        assert (source["path"], source["file"], source["line"]) == (
            path, "spec/mlplane.yaml", number
        ), line  # fmt: skip
        assert change["risks"] == risks


def test_the_instance_type_flag_says_what_fails_and_what_to_do(repo: Repo) -> None:
    del repo
    document: dict[str, Any] = json.loads(plan("json"))
    [risk] = [r for r in document["risks"] if r["code"] == RISK]
    assert risk["subject"] == "scorer" and risk["meaning"] == risk_codes()[RISK]
    assert risk["message"].startswith("model scorer: instance type ml.m5.xlarge → ml.m5.2xlarge: ")
    assert "UpdateEndpoint fails" in risk["message"]
    assert "deregisters the scalable target" in risk["message"]
    assert (risk["source"]["line"], risk["source"]["side"]) == (
        line_of("instanceType: ml.m5.2xlarge"), "head"
    )  # fmt: skip
    text = plan("text")
    assert f"⚠ [{RISK}] model scorer: instance type" in text
    assert f"| `{RISK}` |" in plan("markdown")


def test_new_aws_fields_of_a_data_source_and_a_model_read_in_an_added_line(
    tmp_path: Path,
) -> None:
    system = compile_text(tmp_path, SPEC).systems["prod"]
    lines = summarise(Side("head", "compiled", system=system), Side("none", "none"))
    [events] = [c.text for c in lines if c.subject == "events" and c.section == "dataSources"]
    assert events == "data source events ADDED (objectStore, confidential, eu, managed)"
    [lake] = [c.text for c in lines if c.subject == "lake" and c.section == "dataSources"]
    assert lake == "data source lake ADDED (objectStore, internal, eu)"


# --- the flag, on the two system models ----------------------------------------------------------


def flags(tmp_path: Path, base: str, head: str, env: str = "prod") -> list[tuple[str, str]]:
    """(code, subject) of the spec-level risks between two spec texts."""
    old = compile_text(tmp_path / "base", base)
    new = compile_text(tmp_path / "head", head)
    assert old.ok and new.ok, [d.one_line() for d in (*old.diagnostics, *new.diagnostics)]
    lines = summarise(
        Side("head", "compiled", system=new.systems[env]),
        Side("base", "compiled", system=old.systems[env]),
    )
    return [(r.code, r.subject) for r in spec_risks(lines)]


def _dirs(tmp_path: Path) -> Path:
    for side in ("base", "head"):
        (tmp_path / side).mkdir()
    return tmp_path


BIGGER = (SCORER_TYPE, "      instanceType: ml.m5.2xlarge\n")
UNSCALED = (SCORER_SCALING, "")


@pytest.mark.parametrize(
    ("base", "head", "expected"),
    [
        (SPEC, edited(SPEC, BIGGER), [(RISK, "scorer")]),  # autoscaled on both sides
        (SPEC, edited(SPEC, BIGGER, UNSCALED), [(RISK, "scorer")]),  # at the base only
        (edited(SPEC, UNSCALED), edited(SPEC, BIGGER), [(RISK, "scorer")]),  # at the head only
        (edited(SPEC, UNSCALED), edited(SPEC, BIGGER, UNSCALED), []),  # never autoscaled
        (SPEC, edited(SPEC, (RANKER_TYPE, "      instanceType: ml.g5.2xlarge\n")), []),
        (SPEC, edited(SPEC, ("target: 50}", "target: 80}")), []),  # same instance type
    ],
    ids=["both", "base-only", "head-only", "no-autoscaling", "ranker-unscaled", "same-type"],
)
def test_the_flag_fires_for_an_autoscaled_model_on_aws(
    tmp_path: Path, base: str, head: str, expected: list[tuple[str, str]]
) -> None:
    assert flags(_dirs(tmp_path), base, head) == expected


KUBERNETES_SCORER = (
    "      replicas: {min: 2, max: 4}\n",
    "      replicas: {min: 2, max: 4}\n      autoscaling: {metric: cpu, target: 70}\n"
    "      instanceType: ml.m5.xlarge\n",
)


def test_the_flag_does_not_fire_on_the_kubernetes_target(tmp_path: Path) -> None:
    base = edited(BASE, KUBERNETES_SCORER)
    head = edited(base, ("instanceType: ml.m5.xlarge", "instanceType: ml.m5.2xlarge"))
    found = flags(_dirs(tmp_path), base, head, env="dev")
    assert found == []
    old = compile_text(tmp_path / "base", base).systems["dev"]
    new = compile_text(tmp_path / "head", head).systems["dev"]
    lines = summarise(Side("h", "compiled", system=new), Side("b", "compiled", system=old))
    assert [c.text for c in lines] == ["model scorer: instance type ml.m5.xlarge → ml.m5.2xlarge"]


def test_every_note_belongs_to_a_risk_code() -> None:
    assert set(risk_notes()) <= set(risk_codes())


def test_training_on_aws_reads_its_instance_type_and_output(tmp_path: Path) -> None:
    from tests.test_aws_training import TRAINED

    base, head = _dirs(tmp_path) / "base", tmp_path / "head"
    moved = TRAINED.replace(
        "output: s3://shop-models/scorer/training/", "output: s3://shop-models/v2/"
    )
    old, new = compile_text(base, TRAINED), compile_text(head, moved)
    lines = summarise(
        Side("head", "compiled", system=new.systems["prod"]),
        Side("base", "compiled", system=old.systems["prod"]),
    )
    [change] = [c.text for c in lines if c.subject == "scorer"]
    job = "'30 2 * * 1-5' 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/train@sha256:"
    job += "abababababab…, cpu default, memory default, on ml.m5.2xlarge, to s3://shop-models/"
    assert change == f"model scorer: training {job}scorer/training/ → {job}v2/"


def test_a_region_move_says_pulumi_will_not_move_the_resources(repo: Repo) -> None:
    del repo
    document: dict[str, Any] = json.loads(plan("json"))
    [risk] = [r for r in document["risks"] if r["code"] == REGION]
    assert risk["message"].startswith("environment prod: AWS region eu-west-1 → eu-central-1: ")
    assert "replaces nothing" in risk["message"] and "destroy the environment" in risk["message"]
    assert risk["meaning"] == risk_codes()[REGION]
