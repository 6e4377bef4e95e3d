"""What each serving ``runtime`` runs as on SageMaker, and the runtimes refused here.

SageMaker starts the model's image as ``docker run IMAGE serve`` behind its own endpoint: the
container answers ``GET /ping`` (health) and ``POST /invocations`` on port 8080, whatever the
spec's ``serving.port``, ``healthPath`` and ``metricsPath`` say (they are the Kubernetes
target's). The SLO alarms read ``Invocations``, ``Invocation5XXErrors`` and ``ModelLatency``
of ``AWS/SageMaker``, which SageMaker measures in front of every container, so a runtime is
lowered here when its server speaks that contract, and refused at the ``runtime:`` line when
it does not (``aws-runtime-unsupported``):

* ``generic``: the image implements SageMaker's container contract itself.
* ``triton``: a SageMaker Triton image (the ``sagemaker-tritonserver`` containers, or an image
  built on them): its ``serve`` runs ``tritonserver --allow-sagemaker=true`` on 8080, answers
  ``/ping`` with the server's readiness and ``/invocations`` with the loaded model, and loads
  the model repository SageMaker puts at ``/opt/ml/model`` from the model's ``artifact``, so a
  Triton model without an artifact is refused (the server exits: no model in the repository).
  With more than one model directory in that repository the image needs
  ``SAGEMAKER_TRITON_DEFAULT_MODEL_NAME``, which the spec cannot say: keep one directory (an
  ensemble's own directory holding its steps is one).
* ``kserve``: refused. KServe is a Kubernetes serving layer (an InferenceService reconciled
  into Knative revisions); on SageMaker nothing runs it, and the series its SLO rules read
  (Knative's queue-proxy ``revision_app_request_*``) do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.targets.aws import codes
from mlplane.targets.aws.context import Lowering

CONTAINER_PORT = 8080
HEALTH_PATH = "/ping"
INVOKE_PATH = "/invocations"


@dataclass(frozen=True, slots=True)
class SageMakerRuntime:
    runtime: str
    lowered: bool
    needs_artifact: bool
    contract: str
    """What the image must be for SageMaker to run it (README and messages)."""
    sources: tuple[str, ...]
    why_not: str = ""


GENERIC = SageMakerRuntime(
    runtime="generic",
    lowered=True,
    needs_artifact=False,
    contract="an image whose 'serve' answers GET /ping and POST /invocations on port 8080",
    sources=(
        "https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html "
        "(docker run IMAGE serve; /ping and /invocations on port 8080)",
    ),
)
TRITON = SageMakerRuntime(
    runtime="triton",
    lowered=True,
    needs_artifact=True,
    contract=(
        "a SageMaker Triton image (sagemaker-tritonserver) whose 'serve' runs tritonserver "
        "--allow-sagemaker=true on 8080 with the artifact's model repository at /opt/ml/model"
    ),
    sources=(
        "https://docs.aws.amazon.com/sagemaker/latest/dg/deploy-models-frameworks-triton.html "
        "(SageMaker Triton containers, single-model endpoints)",
        "https://github.com/triton-inference-server/server/blob/main/docker/sagemaker/serve "
        "(/opt/ml/model, one model directory or SAGEMAKER_TRITON_DEFAULT_MODEL_NAME)",
    ),
)
KSERVE = SageMakerRuntime(
    runtime="kserve",
    lowered=False,
    needs_artifact=False,
    contract="",
    sources=("https://kserve.github.io/website/ (InferenceService on Kubernetes and Knative)",),
    why_not=(
        "KServe is a Kubernetes serving layer (an InferenceService reconciled into Knative "
        "revisions); SageMaker runs the image itself, so neither KServe nor the "
        "revision_app_request_* series its SLO rules read exist on a SageMaker endpoint"
    ),
)
RUNTIMES: dict[str, SageMakerRuntime] = {r.runtime: r for r in (GENERIC, TRITON, KSERVE)}


def check_runtime(lowering: Lowering, model: ir.Model) -> None:
    """A runtime SageMaker cannot run as written is refused at the model's ``runtime:``
    line (or at the model, when the runtime is the language's default)."""
    runtime = RUNTIMES.get(model.runtime)
    path: SpecPath = ("models", model.name, "runtime")
    location = lowering.location(path)
    if runtime is None or not runtime.lowered:
        why = runtime.why_not if runtime else "the aws target knows nothing of it"
        lowering.diagnostics.error(
            codes.RUNTIME_UNSUPPORTED,
            f"runtime {model.runtime!r} of model {model.name!r} cannot run on SageMaker: {why}",
            location,
            path,
            hint="use runtime 'generic' (an image meeting SageMaker's container contract) or "
            "'triton' (a SageMaker Triton image) in this environment's overrides",
        )
        return
    if runtime.needs_artifact and model.artifact is None:
        lowering.diagnostics.error(
            codes.RUNTIME_UNSUPPORTED,
            f"model {model.name!r} runs {model.runtime!r} on SageMaker, which loads its model "
            "repository from the model artifact (/opt/ml/model), but the model names no "
            "artifact: the server would start with an empty repository and exit",
            location,
            path,
            hint="add artifact: s3://BUCKET/PREFIX/ holding the Triton model repository",
        )
