"""Training on Kubeflow Pipelines (``training.engine: kubeflow``) and its TensorBoard.

What the graph gets, per model whose training runs on Kubeflow:

- a ``Pipeline`` and a ``PipelineVersion`` (``pipelines.kubeflow.org/v2beta1``, the Kubernetes-
  native API of Kubeflow Pipelines, KFP >= 2.4 with the API server's pipeline store set to
  ``kubernetes``), compiled by the ``kfp`` SDK (``kubeflow_compile.py``): an importer per
  object-store data source, the training step (image, command, resources, GPUs, the data
  sources' URIs from the model's ConfigMap, its secrets as files, its workload labels, so the
  model's training NetworkPolicy selects the pod) writing the ``model`` artifact, and the
  optional evaluation step whose metric gates the promote step. A PipelineVersion is immutable
  (the KFP webhook refuses a changed spec), so its name carries a digest of its content: a
  changed pipeline is a new version, and the old one is deleted after it;
- a ConfigMap ``<model>-recurring-run`` holding the recurring run (:func:`recurring_run`):
  recurring runs have no custom resource in KFP 2.x (the
  ``ScheduledWorkflow`` of ``kubeflow.org/v1beta1`` is the API server's internal object, and its
  spec is either an Argo Workflow the server compiled or server-assigned pipeline IDs), so
  ``mlplane apply`` registers the run through the KFP API after the engine's ``up``
  (``kubeflow_register.py``; see the target README, *Kubeflow Pipelines*);
- with ``tensorboard: true``, a ``Tensorboard`` (``tensorboard.kubeflow.org/v1alpha1``) reading
  ``training.logs``, and under default deny a NetworkPolicy for its pods;
- under default deny, a NetworkPolicy that lets the pipeline's pods (every pod of an Argo
  workflow: drivers and steps) reach the Kubeflow control plane.

``kfp`` is imported only here and only when a spec uses the engine, so builds of other specs
neither need nor load it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from typing import Any
from urllib.parse import urlsplit

from mlplane.compiler.core import ir
from mlplane.targets.kubernetes import codes, mesh, names, network, pods, secrets
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.kubeflow_compile import Gate, PipelinePlan, Step
from mlplane.targets.kubernetes.kubeflow_register import RECURRING_RUN_KEY
from mlplane.targets.kubernetes.training import training_quantities

PIPELINES_API = "pipelines.kubeflow.org/v2beta1"
TENSORBOARD_API = "tensorboard.kubeflow.org/v1alpha1"
KUBEFLOW_NAMESPACE = "kubeflow"
"""Where the Kubeflow Pipelines control plane (API server, ML Metadata, artifact store) runs."""
TENSORBOARD_PORT = 6006
TENSORBOARD_SCHEMES = ("s3", "gs")
DATASET_SCHEMES = ("s3", "gs", "minio")
"""Data source schemes the KFP launcher can import as artifacts."""
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
"""The label Argo Workflows puts on every pod of a workflow (KFP runs on Argo)."""
DIGEST_LENGTH = 10


def lower_training(
    lowering: Lowering,
    model: ir.Model,
    training: ir.Training,
    config: dict[str, Any] | None,
    sources: dict[str, secrets.SecretSource],
    parent: str,
) -> None:
    """The model's pipeline, its recurring run and TensorBoard (module docstring)."""
    path = ("models", model.name, "training")
    origin = lowering.origin(path)
    plan = pipeline_plan(lowering, model, training, config, sources)
    if training.tensorboard and not _tensorboard_logs_supported(lowering, training, path):
        return
    documents = _compiled(lowering, plan, path)
    if documents is None:
        return
    labels = names.workload_labels(lowering.system, model, names.TRAINING)
    logical = {"Pipeline": "pipeline", "PipelineVersion": "pipelineversion"}
    for document in documents:
        document["metadata"]["labels"] = dict(labels)
        suffix = logical[document["kind"]]
        needs = () if suffix == "pipeline" else (names.logical(model.name, "pipeline"),)
        lowering.add(names.logical(model.name, suffix), document, origin, parent, needs)
    run = recurring_run(lowering, model, training, plan)
    lowering.add(names.logical(model.name, "recurring-run"), run, origin, parent)
    if lowering.system.security.default_deny:
        _add_control_plane_policy(lowering, model, parent)
    if training.tensorboard:
        _add_tensorboard(lowering, model, training, parent)


def pipeline_plan(
    lowering: Lowering,
    model: ir.Model,
    training: ir.Training,
    config: dict[str, Any] | None,
    sources: dict[str, secrets.SecretSource],
) -> PipelinePlan:
    """The plain values the ``kfp`` compiler builds the pipeline from."""
    chosen = training_quantities(lowering, model, training)
    labels = tuple(sorted(names.workload_labels(lowering.system, model, names.TRAINING).items()))
    env = [("MLPLANE_MODEL_NAME", model.name), ("MLPLANE_MODEL_VERSION", model.version)]
    if model.artifact is not None:
        env.append(("MLPLANE_MODEL_ARTIFACT", model.artifact))
    if training.logs is not None:
        env.append(("MLPLANE_TENSORBOARD_LOG_DIR", training.logs))
    volumes: list[tuple[str, str]] = []
    for name in model.secrets:
        source = sources.get(name)
        if source is not None:
            directory = f"{secrets.MOUNT_ROOT}/{name}"
            volumes.append((source.secret_name, directory))
            env.append((names.env_var("mlplane-secret", name, "file"), f"{directory}/{source.key}"))
    config_env: tuple[tuple[str, str, str], ...] = ()
    if config is not None:
        config_name = str(config["metadata"]["name"])
        config_env = tuple(
            (config_name, key, names.env_var("mlplane-data-source", key, "uri"))
            for key in sorted(config["data"])
        )
    train = Step(
        name="train",
        image=training.image.text,
        command=training.command,
        cpu=chosen.cpu,
        memory=chosen.memory,
        gpu=training.resources.gpu,
        timeout_seconds=int(training.timeout_seconds),
        env=tuple(env),
        config_env=config_env,
        secret_volumes=tuple(volumes),
        labels=labels,
        annotations=tuple(sorted(mesh.job_pod_annotations(lowering).items())),
    )
    datasets = tuple(
        (name, lowering.system.data_sources[name].uri)
        for name in model.inputs
        if urlsplit(lowering.system.data_sources[name].uri).scheme in DATASET_SCHEMES
    )
    base = names.training(model.name)
    plan = PipelinePlan(
        pipeline=base,
        version=base,
        namespace=lowering.namespace,
        description=f"Training of model {model.name} ({lowering.system.name}), by mlplane",
        train=train,
        datasets=datasets,
        gate=_gate(training, train, labels),
    )
    return PipelinePlan(
        pipeline=base,
        version=f"{base}-{plan_digest(plan)}",
        namespace=plan.namespace,
        description=plan.description,
        train=train,
        datasets=datasets,
        gate=plan.gate,
    )


def _gate(training: ir.Training, train: Step, labels: tuple[tuple[str, str], ...]) -> Gate | None:
    evaluation = training.evaluation
    if evaluation is None:
        return None

    def step(name: str, command: tuple[str, ...]) -> Step:
        assert evaluation is not None
        return Step(
            name=name,
            image=evaluation.image.text,
            command=command,
            cpu=pods.TRAINING_DEFAULTS.cpu,
            memory=pods.TRAINING_DEFAULTS.memory,
            gpu=0,
            timeout_seconds=train.timeout_seconds,
            env=(
                *(e for e in train.env if e[0].startswith("MLPLANE_MODEL_")),
                ("MLPLANE_EVALUATION_METRIC", evaluation.metric),
            ),
            config_env=(),
            secret_volumes=(),
            labels=labels,
            annotations=train.annotations,
        )

    return Gate(
        evaluate=step("evaluate", evaluation.command),
        promote=step("promote", evaluation.promote),
        metric=evaluation.metric,
        threshold=evaluation.threshold,
        goal=evaluation.goal,
    )


def plan_digest(plan: PipelinePlan) -> str:
    """A short digest of everything the pipeline is compiled from (and the SDK version), so a
    changed pipeline gets a new PipelineVersion name."""
    text = json.dumps([repr(plan), _kfp_version()], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


def _kfp_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("kfp")
    except metadata.PackageNotFoundError:
        return "none"


def _compiled(
    lowering: Lowering, plan: PipelinePlan, path: tuple[str, ...]
) -> list[dict[str, Any]] | None:
    from mlplane.targets.kubernetes.kubeflow_compile import KfpUnavailable, compile_manifests

    try:
        documents: list[dict[str, Any]] = compile_manifests(plan)
        return documents
    except KfpUnavailable:
        _refuse_unavailable(lowering, path)
    except (TypeError, ValueError) as error:
        lowering.diagnostics.error(
            codes.KUBEFLOW_UNSUPPORTED,
            f"the Kubeflow Pipelines SDK refused the training pipeline of this model: {error}",
            lowering.location(path),
            path,
        )
    return None


def check_training(lowering: Lowering, model: ir.Model) -> None:
    """What the lowering of a Kubeflow-trained model refuses, found without compiling the
    pipeline (``checks.check_spec``): the SDK is not installed (looked up, not imported), or
    the Tensorboard's logs are on a storage it cannot read. The SDK's own refusal of a
    pipeline (``kubernetes-kubeflow-unsupported``) is known only by compiling it."""
    training = model.training
    if training is None or training.engine != "kubeflow":
        return
    path = ("models", model.name, "training")
    if training.tensorboard:
        _tensorboard_logs_supported(lowering, training, path)
    if importlib.util.find_spec("kfp") is None:
        _refuse_unavailable(lowering, path)


def _refuse_unavailable(lowering: Lowering, path: tuple[str, ...]) -> None:
    lowering.diagnostics.error(
        codes.KUBEFLOW_UNAVAILABLE,
        "training.engine: kubeflow compiles the pipeline with the Kubeflow Pipelines SDK "
        "(kfp), which is not installed",
        lowering.location(path),
        path,
        hint="pip install 'mlplane[kubeflow]'",
    )


def recurring_run(
    lowering: Lowering, model: ir.Model, training: ir.Training, plan: PipelinePlan
) -> dict[str, Any]:
    """The recurring run, in a ConfigMap: the fields of KFP's ``V2beta1RecurringRun`` (the body
    of ``POST /apis/v2beta1/recurringruns``) except the pipeline reference, which KFP takes by
    ID: ``pipeline_objects`` names the Pipeline and PipelineVersion, whose ``metadata.uid`` are
    those IDs in the Kubernetes-native mode, resolved through the API when ``mlplane apply``
    registers the run (``kubeflow_register.py``). KFP's cron has a
    seconds field, so the spec's five fields get ``0`` in front; runs never overlap
    (``max_concurrency: 1``) and missed runs are not caught up."""
    body = {
        "display_name": names.training(model.name),
        "description": plan.description,
        "pipeline_objects": {"pipeline": plan.pipeline, "pipeline_version": plan.version},
        "trigger": {"cron_schedule": {"cron": kfp_cron(training.schedule)}},
        "max_concurrency": "1",
        "no_catchup": True,
        "mode": "ENABLE",
    }
    labels = names.workload_labels(lowering.system, model, names.TRAINING)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": lowering.metadata(names.logical(model.name, "recurring-run"), labels),
        "data": {RECURRING_RUN_KEY: json.dumps(body, indent=2, sort_keys=True) + "\n"},
    }


MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def kfp_cron(schedule: str) -> str:
    """The spec's five-field cron (or macro) in KFP's six-field form (seconds first)."""
    return "0 " + MACROS.get(schedule, schedule)


def _tensorboard_logs_supported(
    lowering: Lowering, training: ir.Training, path: tuple[str, ...]
) -> bool:
    scheme = urlsplit(training.logs or "").scheme
    if scheme in TENSORBOARD_SCHEMES:
        return True
    logs = (*path, "logs")
    lowering.diagnostics.error(
        codes.KUBEFLOW_UNSUPPORTED,
        f"the Kubeflow Tensorboard reads its logs from {' or '.join(TENSORBOARD_SCHEMES)} "
        f"URIs, not {scheme}://",
        lowering.location(logs),
        logs,
        hint="write the runs' TensorBoard logs to an s3:// or gs:// prefix",
    )
    return False


def tensorboard_name(model: str) -> str:
    return f"{model}-tensorboard"


def tensorboard_egress(
    lowering: Lowering, model: ir.Model, training: ir.Training
) -> network.Rule | None:
    """The egress rule of the TensorBoard's pods to where the logs are (``network.uri_rule``)."""
    origin = lowering.origin(("models", model.name, "training", "tensorboard"))
    what = f"the logs of {tensorboard_name(model.name)}"
    return network.uri_rule(lowering, training.logs or "", (), origin, what)


def _add_tensorboard(
    lowering: Lowering, model: ir.Model, training: ir.Training, parent: str
) -> None:
    origin = lowering.origin(("models", model.name, "training", "tensorboard"))
    labels = names.workload_labels(lowering.system, model, names.TRAINING)
    name = tensorboard_name(model.name)
    body = {
        "apiVersion": TENSORBOARD_API,
        "kind": "Tensorboard",
        "metadata": lowering.metadata(name, labels),
        "spec": {"logspath": training.logs},
    }
    lowering.add(names.logical(model.name, "tensorboard"), body, origin, parent)
    if not lowering.system.security.default_deny:
        return
    # The Tensorboard controller labels its Deployment's pods app=<Tensorboard name>.
    policy = network.policy(lowering, name, labels, {"app": name}, ["Ingress", "Egress"])
    kubeflow = network.namespace_peer(KUBEFLOW_NAMESPACE)
    policy["spec"]["ingress"] = [network.rule("ingress", [kubeflow], [TENSORBOARD_PORT])]
    logs = tensorboard_egress(lowering, model, training)
    policy["spec"]["egress"] = [logs] if logs is not None else []
    logical = names.logical(model.name, "tensorboard-networkpolicy")
    lowering.add(logical, policy, origin, parent)


def _add_control_plane_policy(lowering: Lowering, model: ir.Model, parent: str) -> None:
    """Egress from the pipeline's pods to the Kubeflow control plane: every pod of a run (the
    drivers KFP adds and the steps) reports to the API server and ML Metadata and moves
    artifacts through the artifact store, all in the ``kubeflow`` namespace."""
    labels = names.workload_labels(lowering.system, model, names.TRAINING)
    name = names.logical(model.name, "kubeflow-pipelines")
    body = {
        "apiVersion": network.NETWORKING_API,
        "kind": "NetworkPolicy",
        "metadata": lowering.metadata(name, labels),
        "spec": {
            "podSelector": {"matchExpressions": [{"key": WORKFLOW_LABEL, "operator": "Exists"}]},
            "policyTypes": ["Egress"],
            "egress": [{"to": [network.namespace_peer(KUBEFLOW_NAMESPACE)]}],
        },
    }
    origin = lowering.origin(("models", model.name, "training", "engine"))
    lowering.add(names.logical(model.name, "kubeflow-networkpolicy"), body, origin, parent)
