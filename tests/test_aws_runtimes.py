"""The serving runtime on SageMaker: what runs is what the alarms and health checks read.

SageMaker fronts every container with its own endpoint (``/ping``, ``/invocations`` on 8080)
and measures ``AWS/SageMaker`` ``Invocations``, ``Invocation5XXErrors`` and ``ModelLatency``
itself, so a runtime is lowered when its server speaks that contract (``generic``, ``triton``
in its SageMaker mode with the artifact as its model repository) and refused at the
``runtime:`` line otherwise (``kserve``), never deployed as if it were something else.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.core.diagnostics import Severity
from mlplane.schema.serving import Model
from mlplane.targets.aws import codes, runtimes
from mlplane.targets.aws.alarm_math import SAGEMAKER_NAMESPACE
from tests.specs import compile_text
from tests.test_aws_target import SPEC, graph_of, lowered

RANKER_ARTIFACT = "    artifact: s3://shop-models/ranker/2.0.0/\n"


def with_ranker(runtime: str | None, artifact: bool = True) -> str:
    """SPEC with the ranker's runtime (None: not written) and with or without its artifact."""
    line = f"    runtime: {runtime}\n" if runtime else ""
    return SPEC.replace(RANKER_ARTIFACT, (RANKER_ARTIFACT if artifact else "") + line)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def runtime_errors(tmp_path: Path, text: str) -> list[Any]:
    result = compile_text(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    graph, found = lowered(result.systems["prod"])
    errors = [d for d in found if d.code == codes.RUNTIME_UNSUPPORTED]
    if errors:
        assert graph is None
    return errors


def test_every_runtime_of_the_language_is_decided_on_sagemaker() -> None:
    annotation = Model.model_fields["runtime"].annotation
    assert set(typing.get_args(annotation)) == set(runtimes.RUNTIMES)
    for runtime in runtimes.RUNTIMES.values():
        assert runtime.sources
        assert runtime.lowered == (runtime.why_not == "")
        assert runtime.lowered == bool(runtime.contract)


def test_kserve_is_refused_at_its_runtime_line(tmp_path: Path) -> None:
    text = with_ranker("kserve")
    (error,) = runtime_errors(tmp_path, text)
    assert error.severity is Severity.ERROR
    assert error.location is not None
    assert error.location.line == line_of(text, "    runtime: kserve")
    assert "SageMaker" in error.message and "revision_app_request" in error.message
    assert error.hint is not None and "generic" in error.hint


def test_triton_without_an_artifact_is_refused(tmp_path: Path) -> None:
    text = with_ranker("triton", artifact=False)
    (error,) = runtime_errors(tmp_path, text)
    assert error.location is not None
    assert error.location.line == line_of(text, "    runtime: triton")
    assert "/opt/ml/model" in error.message


@pytest.mark.parametrize("runtime", ["triton", "generic", None])
def test_runtimes_sagemaker_runs_are_lowered_with_their_model_repository(
    tmp_path: Path, runtime: str | None
) -> None:
    text = with_ranker(runtime)
    assert not runtime_errors(tmp_path, text)
    graph = graph_of(tmp_path, text)
    (model,) = [r for r in graph if r.type == "aws:sagemaker/model:Model" and "ranker" in r.name]
    container = model.inputs["primaryContainer"]
    # the artifact prefix is what SageMaker mounts at /opt/ml/model: Triton's repository
    (source,) = container["modelDataSource"]["s3DataSources"]
    assert source == {
        "s3Uri": "s3://shop-models/ranker/2.0.0/",
        "s3DataType": "S3Prefix",
        "compressionType": "None",
    }


def test_the_alarms_of_a_triton_model_read_what_sagemaker_measures(tmp_path: Path) -> None:
    """Not Triton's own series (nv_inference_*): a SageMaker endpoint exports none to
    CloudWatch; its alarms read the endpoint metrics SageMaker measures for any container."""
    graph = graph_of(tmp_path, with_ranker("triton"))
    alarms = [
        r
        for r in graph
        if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm" and "ranker" in r.name
    ]
    assert alarms
    text = json.dumps([a.inputs for a in alarms])
    assert "nv_inference" not in text
    namespaces = set()
    for alarm in alarms:
        for query in alarm.inputs.get("metricQueries", []):
            metric = query.get("metric")
            if metric is not None:
                namespaces.add(metric["namespace"])
        if "namespace" in alarm.inputs:
            namespaces.add(alarm.inputs["namespace"])
    assert namespaces == {SAGEMAKER_NAMESPACE}
