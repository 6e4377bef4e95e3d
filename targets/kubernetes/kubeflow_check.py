"""What ``training.engine: kubeflow`` needs from the environment before anything is built: the
Kubeflow Pipelines API where ``mlplane apply`` registers the model's recurring run
(``kubeflow_register.py``). Kept apart from ``kubeflow.py`` so that checking a spec never
imports the ``kfp`` SDK."""

from __future__ import annotations

from mlplane.compiler.core import ir
from mlplane.targets.kubernetes import codes
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.settings import kubernetes_of

ENGINE = "kubeflow"


def uses_kubeflow(model: ir.Model) -> bool:
    return model.training is not None and model.training.engine == ENGINE


def check_endpoint(lowering: Lowering, model: ir.Model) -> None:
    """A Kubeflow-trained model needs ``kubernetes.kubeflow.endpoint`` in its environment."""
    if not uses_kubeflow(model):
        return
    environment = lowering.system.environment
    if kubernetes_of(environment.target_settings).kubeflow_endpoint is not None:
        return
    path = ("models", model.name, "training", "engine")
    lowering.diagnostics.error(
        codes.KUBEFLOW_ENDPOINT_MISSING,
        f"model {model.name!r} trains on Kubeflow Pipelines in environment "
        f"{environment.name!r}, which names no Kubeflow Pipelines API: mlplane apply registers "
        "the model's recurring run through that API (recurring runs have no custom resource)",
        lowering.location(path),
        path,
        hint=f"set environments.{environment.name}.kubernetes.kubeflow.endpoint "
        "(https://HOST/pipeline, or http://127.0.0.1:8888 through kubectl port-forward)",
    )
