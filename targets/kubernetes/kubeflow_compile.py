"""Compiling a training pipeline with the Kubeflow Pipelines SDK (``kfp``, the ``kubeflow``
extra), imported only when a spec asks for ``training.engine: kubeflow``.

The input is a :class:`PipelinePlan` of plain values (``kubeflow.py`` builds it from the spec);
the output is what ``kfp``'s own compiler writes in its Kubernetes-manifest mode: a ``Pipeline``
and a ``PipelineVersion`` (``pipelines.kubeflow.org/v2beta1``) whose ``spec.pipelineSpec`` is the
pipeline IR and ``spec.platformSpec`` the Kubernetes settings of ``kfp-kubernetes`` (node
selector, tolerations, pod labels, ConfigMap environment, Secret volumes, timeouts). The SDK
writes to a file only, so the compiler writes into a private temporary directory that is read
back and removed; nothing else touches the disk.

``kfp`` reads component and pipeline interfaces from run-time annotations, so this module does
not postpone their evaluation.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MODEL_ARTIFACT = "model"
METRIC_OUTPUT = "metric"


class KfpUnavailable(Exception):
    """The ``kfp`` SDK is not installed (``pip install 'mlplane[kubeflow]'``)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One container step: its image, command and the Kubernetes settings of its pod."""

    name: str
    image: str
    command: tuple[str, ...]
    cpu: str
    memory: str
    gpu: int
    timeout_seconds: int
    env: tuple[tuple[str, str], ...]
    config_env: tuple[tuple[str, str, str], ...]
    """(ConfigMap, key, environment variable)."""
    secret_volumes: tuple[tuple[str, str], ...]
    """(Secret, mount path)."""
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...] = ()
    """Pod annotations (the mesh's native-sidecar annotation, so a step's pod completes)."""


@dataclass(frozen=True, slots=True)
class Gate:
    """The evaluation step and the step it gates on its metric."""

    evaluate: Step
    promote: Step
    metric: str
    threshold: float
    goal: str


@dataclass(frozen=True, slots=True)
class PipelinePlan:
    pipeline: str
    version: str
    namespace: str
    description: str
    train: Step
    datasets: tuple[tuple[str, str], ...]
    """(data source name, URI) imported as Dataset artifacts, passed as ``--input-<name> <uri>``."""
    gate: Gate | None


def compile_manifests(plan: PipelinePlan) -> list[dict[str, Any]]:
    """The Pipeline and PipelineVersion objects, as the ``kfp`` compiler writes them."""
    import tempfile

    try:
        from kfp import compiler  # type: ignore[import-untyped]
        from kfp.compiler.compiler_utils import (  # type: ignore[import-untyped]
            KubernetesManifestOptions,
        )
    except ImportError as error:
        raise KfpUnavailable(str(error)) from error
    options = KubernetesManifestOptions(
        pipeline_name=plan.pipeline,
        pipeline_display_name=plan.pipeline,
        pipeline_version_name=plan.version,
        pipeline_version_display_name=plan.version,
        namespace=plan.namespace,
        include_pipeline_manifest=True,
    )
    with tempfile.TemporaryDirectory(prefix="mlplane-kfp-") as directory:
        path = Path(directory) / "pipeline.yaml"
        compiler.Compiler().compile(
            pipeline_function(plan),
            str(path),
            pipeline_name=plan.version,
            kubernetes_manifest_options=options,
            kubernetes_manifest_format=True,
        )
        text = path.read_text(encoding="utf-8")
    return [dict(document) for document in yaml.safe_load_all(text) if document]


def pipeline_function(plan: PipelinePlan) -> Any:
    """The ``@dsl.pipeline`` function of ``plan``."""
    from kfp import dsl

    train = _train_component(plan.train, tuple(name for name, _ in plan.datasets))

    @dsl.pipeline(name=plan.version, description=plan.description)
    def training_pipeline():  # type: ignore[no-untyped-def]  # kfp reads the return annotation
        inputs = {}
        for name, uri in plan.datasets:
            imported = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset, reimport=True)
            imported.set_display_name(f"data-source-{name}")
            inputs[_parameter(name)] = imported.output
        trained = train(**inputs)
        _configure(trained, plan.train)
        if plan.gate is None:
            return
        evaluated = _evaluate_component(plan.gate.evaluate)(model=trained.outputs[MODEL_ARTIFACT])
        _configure(evaluated, plan.gate.evaluate)
        metric = evaluated.outputs[METRIC_OUTPUT]
        meets = (
            metric >= plan.gate.threshold
            if plan.gate.goal == "maximize"
            else metric <= plan.gate.threshold
        )
        with dsl.If(meets, name=f"{plan.gate.metric}-meets-threshold"):
            promoted = _promote_component(plan.gate.promote)(model=trained.outputs[MODEL_ARTIFACT])
            _configure(promoted, plan.gate.promote)

    return training_pipeline


def _parameter(name: str) -> str:
    return "input_" + name.replace("-", "_")


def _train_component(step: Step, datasets: tuple[str, ...]) -> Callable[..., Any]:
    """A container component with one Dataset input per data source and the model output.
    ``kfp`` reads a component's interface from its Python signature, so the function is built
    with that signature (parameters are spec names, which are DNS labels)."""
    from kfp import dsl

    def spec(**artifacts: Any) -> Any:
        args: list[Any] = []
        for name in datasets:
            args += [f"--input-{name}", artifacts[_parameter(name)].uri]
        args += ["--model", artifacts[MODEL_ARTIFACT].path]
        return dsl.ContainerSpec(image=step.image, command=list(step.command), args=args)

    parameters = [(_parameter(name), dsl.Input[dsl.Dataset]) for name in datasets]
    parameters.append((MODEL_ARTIFACT, dsl.Output[dsl.Model]))
    return _component(_with_signature(spec, "train", parameters))


def _evaluate_component(step: Step) -> Callable[..., Any]:
    """Reads the model, writes the metric (a number) to the file after ``--metric``."""
    from kfp import dsl

    def spec(**values: Any) -> Any:
        args = ["--model", values[MODEL_ARTIFACT].path, "--metric", values[METRIC_OUTPUT]]
        return dsl.ContainerSpec(image=step.image, command=list(step.command), args=args)

    parameters = [(MODEL_ARTIFACT, dsl.Input[dsl.Model]), (METRIC_OUTPUT, dsl.OutputPath(float))]
    return _component(_with_signature(spec, "evaluate", parameters))


def _promote_component(step: Step) -> Callable[..., Any]:
    """Runs only when the metric meets the threshold."""
    from kfp import dsl

    def spec(**values: Any) -> Any:
        args = ["--model", values[MODEL_ARTIFACT].path]
        return dsl.ContainerSpec(image=step.image, command=list(step.command), args=args)

    parameters = [(MODEL_ARTIFACT, dsl.Input[dsl.Model])]
    return _component(_with_signature(spec, "promote", parameters))


def _component(function: Callable[..., Any]) -> Callable[..., Any]:
    from kfp import dsl

    component: Callable[..., Any] = dsl.container_component(function)
    return component


def _with_signature(
    body: Callable[..., Any], name: str, parameters: list[tuple[str, Any]]
) -> Callable[..., Any]:
    import inspect

    names = [p for p, _ in parameters]

    def component(*args: Any) -> Any:  # kfp passes the placeholders in signature order
        return body(**dict(zip(names, args, strict=True)))

    component.__name__ = component.__qualname__ = name
    component.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=kind)
            for p, kind in parameters
        ]
    )
    component.__annotations__ = dict(parameters)
    return component


def _configure(task: Any, step: Step) -> None:
    """Resources, GPU placement, environment, secrets as files, labels and timeout of a task."""
    from kfp import kubernetes

    task.set_display_name(step.name)
    task.set_caching_options(False)
    task.set_cpu_request(step.cpu).set_cpu_limit(step.cpu)
    task.set_memory_request(step.memory).set_memory_limit(step.memory)
    if step.gpu:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(step.gpu)
        kubernetes.add_node_selector(task, "nvidia.com/gpu.present", "true")
        kubernetes.add_toleration(
            task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"
        )
    for name, value in step.env:
        task.set_env_variable(name, value)
    by_config: dict[str, dict[str, str]] = {}
    for config_map, key, variable in step.config_env:
        by_config.setdefault(config_map, {})[key] = variable
    for config_map, keys in sorted(by_config.items()):
        kubernetes.use_config_map_as_env(task, config_map, dict(sorted(keys.items())))
    for secret, path in step.secret_volumes:
        kubernetes.use_secret_as_volume(task, secret, path)
    for key, value in step.labels:
        kubernetes.add_pod_label(task, key, value)
    for key, value in step.annotations:
        kubernetes.add_pod_annotation(task, key, value)
    kubernetes.set_image_pull_policy(task, "Always")
    kubernetes.set_timeout(task, step.timeout_seconds)
