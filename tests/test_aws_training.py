"""Scheduled training on the AWS target: EventBridge Scheduler -> SageMaker pipeline -> job.

The schedule expression is checked against EventBridge's six-field form (day of month or day of
week, the other ``?``); the graph structurally: the pipeline's one Training step is isolated,
encrypted and in the VPC, the training role grants exactly the inputs, the output prefix and
pipeline-named jobs, the schedule role may only start that pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.core.graph import ResourceGraph
from mlplane.schema import formats
from mlplane.targets.aws import codes
from mlplane.targets.aws.training import eventbridge_cron
from tests.specs import compile_text
from tests.test_aws_target import DIGEST, ECR, SPEC, document, graph_of, lowered, one, statements

TRAINED = SPEC.replace(
    "      rollout: {strategy: canary, steps: [50], pause: 10m}\n",
    "      rollout: {strategy: canary, steps: [50], pause: 10m}\n"
    "    training:\n"
    '      schedule: "30 2 * * 1-5"\n'
    f"      image: {ECR}/shop/train@{DIGEST}\n"
    "      instanceType: ml.m5.2xlarge\n"
    "      timeout: 4h\n"
    "      output: s3://shop-models/scorer/training/\n",
)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("0 3 * * *", "cron(0 3 * * ? *)"),
        ("0 3 * * 0", "cron(0 3 ? * SUN *)"),
        ("0 3 * * 7", "cron(0 3 ? * SUN *)"),
        ("0 0 * * 0,7", "cron(0 0 ? * SUN *)"),
        ("*/15 * * * 1-5", "cron(0,15,30,45 * ? * MON-FRI *)"),
        ("30 */6 * * *", "cron(30 0,6,12,18 * * ? *)"),
        ("0 12 * * MON,wed,5", "cron(0 12 ? * MON,WED,FRI *)"),
        ("0 0 1-7 */3 *", "cron(0 0 1-7 1,4,7,10 ? *)"),
        ("0 0 * * 0-6", "cron(0 0 * * ? *)"),
        ("0 0 * * */2", "cron(0 0 ? * SUN,TUE,THU,SAT *)"),
        ("5 4 1,15 jan,jul *", "cron(5 4 1,15 1,7 ? *)"),
        ("@hourly", "cron(0 * * * ? *)"),
        ("@daily", "cron(0 0 * * ? *)"),
        ("@weekly", "cron(0 0 ? * SUN *)"),
        ("@monthly", "cron(0 0 1 * ? *)"),
        ("@yearly", "cron(0 0 1 1 ? *)"),
        ("0 3 1 * 1", None),
        ("0 3 */2 * MON", None),
    ],
)
def test_cron_becomes_an_eventbridge_expression(schedule: str, expected: str | None) -> None:
    assert formats.cron_problem(schedule) is None
    assert eventbridge_cron(schedule) == expected


def test_every_expression_fits_eventbridge_limits() -> None:
    # the longest lists a five-field cron can ask for still fit the 256-character expression
    text = eventbridge_cron("*/2 */2 */2 * *")
    assert text is not None and len(text) <= 256
    assert text.count(" ") == 5


def training_graph(tmp_path: Path, text: str = TRAINED) -> ResourceGraph:
    return graph_of(tmp_path, text)


def test_training_lowers_to_a_scheduled_pipeline(tmp_path: Path) -> None:
    graph = training_graph(tmp_path)
    schedule = one(graph, "scorer-training-schedule")
    assert schedule.type == "aws:scheduler/schedule:Schedule"
    assert schedule.inputs["scheduleExpression"] == "cron(30 2 ? * MON-FRI *)"
    assert schedule.inputs["scheduleExpressionTimezone"] == "UTC"
    assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    assert schedule.inputs["name"] == "shop-prod-scorer-training"
    target = schedule.inputs["target"]
    assert target["arn"] == {"$ref": "scorer-training-pipeline", "$output": "arn"}
    assert target["roleArn"] == {"$ref": "scorer-schedule-role", "$output": "arn"}
    assert target["retryPolicy"]["maximumEventAgeInSeconds"] == 3600
    assert "input" not in target  # no payload: nothing for a customer key to protect
    assert schedule.depends_on == ("scorer-schedule-role-policy",)
    assert schedule.origin.path == ("models", "scorer", "training", "schedule")
    pipeline = one(graph, "scorer-training-pipeline")
    assert pipeline.inputs["pipelineName"] == "shop-prod-scorer-training"
    assert pipeline.inputs["roleArn"] == {"$ref": "scorer-training-role", "$output": "arn"}
    assert pipeline.depends_on == ("scorer-training-role-policy",)
    assert pipeline.parent == "scorer-model"


def _step(graph: ResourceGraph) -> dict[str, Any]:
    definition = one(graph, "scorer-training-pipeline").inputs["pipelineDefinition"]["$json"]
    assert definition["Version"] == "2020-12-01"
    (step,) = definition["Steps"]
    assert step["Type"] == "Training" and step["Name"] == "Train"
    return dict(step["Arguments"])


def test_the_training_job_is_isolated_encrypted_and_bounded(tmp_path: Path) -> None:
    job = _step(training_graph(tmp_path))
    key = {"$ref": "confidential-kms-key", "$output": "arn"}
    assert job["EnableNetworkIsolation"] is True
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["VpcConfig"] == {"Subnets": ["subnet-0a1b2c3d"], "SecurityGroupIds": ["sg-0a1b2c3d"]}
    assert job["OutputDataConfig"] == {
        "S3OutputPath": "s3://shop-models/scorer/training/",
        "KmsKeyId": key,
    }
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == key
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 4 * 3600}
    assert job["RoleArn"] == {"$ref": "scorer-training-role", "$output": "arn"}
    assert job["AlgorithmSpecification"] == {
        "TrainingImage": f"{ECR}/shop/train@{DIGEST}",
        "TrainingInputMode": "File",
    }
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]
    }
    assert channels == {"events": "s3://shop-events/raw/", "lake": "s3://shop-lake/curated/"}


def test_training_role_grants_exactly_what_the_job_needs(tmp_path: Path) -> None:
    graph = training_graph(tmp_path)
    role = one(graph, "scorer-training-role")
    trust = document(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    granted = statements(one(graph, "scorer-training-role-policy").inputs["policy"])
    assert granted["ReadData"]["Resource"] == [
        "arn:aws:s3:::shop-events/raw/*",
        "arn:aws:s3:::shop-lake/curated/*",
    ]
    assert granted["WriteOutput"]["Resource"] == "arn:aws:s3:::shop-models/scorer/training/*"
    assert granted["WriteOutput"]["Action"] == "s3:PutObject"
    jobs = "arn:aws:sagemaker:eu-west-1:123456789012:training-job/pipelines-*"
    create = granted["CreateIsolatedJobs"]
    assert create["Resource"] == jobs
    assert create["Condition"]["Bool"] == {
        "sagemaker:NetworkIsolation": "true",
        "sagemaker:InterContainerTrafficEncryption": "true",
    }
    passed = granted["PassOwnRole"]
    assert passed["Resource"] == {"$ref": "scorer-training-role", "$output": "arn"}
    assert passed["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert granted["UseKeys"]["Resource"] == [{"$ref": "confidential-kms-key", "$output": "arn"}]
    assert "PullImage" in granted and "VpcNetworkInterfaces" in granted
    everything = [s for s in granted.values() if s["Resource"] == "*"]
    assert {s["Sid"] for s in everything} == {"VpcDescribe", "EcrToken", "PutMetrics"}
    assert granted["PutMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    }


def test_schedule_role_only_starts_its_pipeline(tmp_path: Path) -> None:
    graph = training_graph(tmp_path)
    trust = document(one(graph, "scorer-schedule-role").inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    granted = statements(one(graph, "scorer-schedule-role-policy").inputs["policy"])
    assert granted == {
        "StartTraining": {
            "Sid": "StartTraining",
            "Effect": "Allow",
            "Action": "sagemaker:StartPipelineExecution",
            "Resource": {"$ref": "scorer-training-pipeline", "$output": "arn"},
        }
    }


def test_the_tier_key_lets_the_training_role_in(tmp_path: Path) -> None:
    key = one(training_graph(tmp_path), "confidential-kms-key")
    principals = statements(key.inputs["policy"])["ExecutionRoles"]["Principal"]["AWS"]
    assert {"$ref": "scorer-training-role", "$output": "arn"} in principals


def test_nvme_training_instances_get_no_volume_key(tmp_path: Path) -> None:
    text = TRAINED.replace("instanceType: ml.m5.2xlarge", "instanceType: ml.g5.12xlarge")
    result = compile_text(tmp_path, text)
    graph, found = lowered(result.systems["prod"])
    assert graph is not None
    assert "VolumeKmsKeyId" not in _step(graph)["ResourceConfig"]
    infos = [
        d
        for d in found
        if d.code == codes.KMS_INSTANCE_STORAGE and d.path.endswith("training.instanceType")
    ]
    assert len(infos) == 1 and "training volume" in infos[0].message


def test_a_non_ecr_training_image_is_pulled_through_the_vpc(tmp_path: Path) -> None:
    text = TRAINED.replace(f"image: {ECR}/shop/train@", "image: ghcr.io/acme/train@")
    result = compile_text(tmp_path, text)
    graph, found = lowered(result.systems["prod"])
    assert graph is not None
    algorithm = _step(graph)["AlgorithmSpecification"]
    assert algorithm["TrainingImageConfig"] == {"TrainingRepositoryAccessMode": "Vpc"}
    warned = [d for d in found if d.code == codes.IMAGE_OUTSIDE_ECR]
    assert [d.path for d in warned] == ["models.scorer.training.image"]
    granted = statements(one(graph, "scorer-training-role-policy").inputs["policy"])
    assert "PullImage" not in granted


def test_output_to_a_less_classified_managed_bucket_is_refused(tmp_path: Path) -> None:
    text = TRAINED.replace(
        "output: s3://shop-models/scorer/training/", "output: s3://shop-events/models/"
    ).replace("classification: confidential", "classification: internal")
    text = text.replace(
        "  clicks:\n",
        "  secret:\n    type: objectStore\n    uri: s3://shop-secret/x/\n"
        "    classification: pii\n    residency: eu\n  clicks:\n",
    )
    text = text.replace("inputs: [events, lake]", "inputs: [events, lake, secret]")
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    graph, found = lowered(result.systems["prod"])
    refused = [d for d in found if d.code == codes.TRAINING_OUTPUT]
    assert graph is None and len(refused) == 1
    assert (
        "learns from pii data" in refused[0].message and "classified internal" in refused[0].message
    )
    assert refused[0].path == "models.scorer.training.output"


def test_names_over_the_schedule_limit_are_refused(tmp_path: Path) -> None:
    # the endpoint name fits SageMaker's 63 characters, the schedule's does not fit 64
    long_name = "scorer-for-the-storefront"
    text = TRAINED.replace("  name: shop\n", "  name: shop-recommendations-platform\n")
    text = text.replace("  scorer:\n", f"  {long_name}:\n").replace(
        "model: scorer,", f"model: {long_name},"
    )
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    _, found = lowered(result.systems["prod"])
    messages = [d.message for d in found if d.code == codes.NAME_TOO_LONG]
    assert any("EventBridge Scheduler allows 64" in m for m in messages), messages


def test_the_recsys_example_trains_retrieval_on_aws() -> None:
    from tests.test_aws_target import recsys

    graph, found = recsys()
    assert graph is not None
    schedule = one(graph, "retrieval-training-schedule")
    assert schedule.inputs["scheduleExpression"] == "cron(0 2 * * ? *)"
    assert graph.get("ranker-training-schedule") is None  # trained by the prod cluster
    assert not [d for d in found if d.code == codes.NOT_LOWERED and "training" in d.path]
