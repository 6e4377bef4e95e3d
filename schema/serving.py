"""Models: image, serving, rollout, explainability, drift monitoring and training."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from mlplane.schema.base import Spec, UniqueNames, _no_duplicates
from mlplane.schema.drift import DriftJob
from mlplane.schema.types import (
    ArtifactUri,
    Cpu,
    Cron,
    Duration,
    Feature,
    Hostname,
    HttpPath,
    Image,
    InstanceType,
    MediaType,
    Memory,
    Name,
    NamespaceName,
    Owner,
    Text,
    Version,
    fail,
)

# --- models -----------------------------------------------------------------------------------------


class Replicas(Spec):
    min: Annotated[int, Field(ge=0, le=1000)] = 1
    max: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.max is not None and self.min > self.max:
            raise fail(
                "contradiction",
                f"replicas.min ({self.min}) is greater than replicas.max ({self.max})",
                fields=("min", "max"),
            )
        return self


class Autoscaling(Spec):
    metric: Literal["cpu", "memory", "rps", "concurrency"]
    target: Annotated[int, Field(ge=1, le=100_000)]
    """Percent of requests for cpu/memory; requests per second or in-flight requests per replica otherwise."""

    @model_validator(mode="after")
    def _percent(self) -> Autoscaling:
        if self.metric in ("cpu", "memory") and self.target > 100:
            raise fail(
                "out-of-range",
                f"a {self.metric} target is a percentage from 1 to 100, not {self.target}",
            )
        return self


class Resources(Spec):
    cpu: Cpu | None = None
    memory: Memory | None = None
    gpu: Annotated[int, Field(ge=0, le=16)] = 0
    """Whole GPUs per replica."""
    shm: Memory | None = None
    """Size of the memory-backed ``/dev/shm`` (kubernetes target), charged to ``memory`` and
    smaller than it. Default: half the memory for GPU pods and Triton servers (data loaders, NCCL
    and Triton's Python backend exchange tensors there), else the container runtime's 64 MiB."""
    scratch: Memory | None = None
    """Disk-backed scratch space at ``/tmp`` (kubernetes target), requested and limited as
    ``ephemeral-storage``. Default: a training job's memory (at least 1 GiB), 1 GiB for serving."""


class Rollout(Spec):
    strategy: Literal["rolling", "canary", "blueGreen", "shadow"] = "rolling"
    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(max_length=20)] = []
    """Traffic percentages for canary steps, strictly increasing, such as [10, 50]."""
    pause: Duration | None = None
    """How long each canary step, or a blue-green deployment, waits before promotion. On the
    kubernetes target a blue-green preview (the new pods behind the preview Service, no user
    traffic) lasts the pause; SageMaker (aws target) has no preview: all traffic moves to the
    new fleet at once and the pause is the bake during which its rollback alarms watch it."""

    @model_validator(mode="after")
    def _steps_fit_strategy(self) -> Rollout:
        if self.steps and self.strategy != "canary":
            raise fail(
                "contradiction",
                f"rollout.steps only apply to strategy 'canary', not {self.strategy!r}",
                fields=("steps", "strategy"),
            )
        if self.strategy == "canary" and not self.steps:
            raise fail("missing-field", "a canary rollout needs steps, such as steps: [10, 50]")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise fail(
                "contradiction",
                "rollout.steps must increase strictly, such as [10, 50]",
                fields=("steps",),
            )
        if self.pause is not None and self.strategy in ("rolling", "shadow"):
            raise fail(
                "contradiction",
                f"rollout.pause has no meaning for strategy {self.strategy!r}",
                fields=("pause", "strategy"),
            )
        return self


class DataCapture(Spec):
    """Requests and responses of the endpoint, copied to a managed object store (aws target)."""

    destination: Name
    """A managed objectStore data source classified at least as high as the model's data."""
    sampling_percentage: Annotated[int, Field(ge=1, le=100)] = 100


class IngressTls(Spec):
    """Where the Ingress's certificate comes from: exactly one of an existing Secret or a
    cert-manager issuer (which then writes the Secret <model>-tls)."""

    secret_name: NamespaceName | None = None
    """An existing kubernetes.io/tls Secret in the environment's namespace."""
    issuer: NamespaceName | None = None
    """A cert-manager Issuer in the environment's namespace."""
    cluster_issuer: NamespaceName | None = None
    """A cert-manager ClusterIssuer."""

    @model_validator(mode="after")
    def _one_source(self) -> IngressTls:
        given = [
            key
            for key, value in (
                ("secretName", self.secret_name),
                ("issuer", self.issuer),
                ("clusterIssuer", self.cluster_issuer),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise fail(
                "contradiction" if given else "missing-field",
                "tls needs exactly one of secretName, issuer or clusterIssuer"
                + (f", not {' and '.join(given)}" if given else ""),
                fields=tuple(given),
            )
        return self


class Ingress(Spec):
    """How a public model is reached from outside the cluster (kubernetes target): one host,
    one path prefix, one ingress class, TLS terminated at the ingress controller."""

    host: Hostname
    """The DNS name clients use, such as api.acme.example ('*.' only as its first label)."""
    path: HttpPath = "/"
    """The path prefix routed to the model."""
    class_name: NamespaceName = "nginx"
    """The IngressClass whose controller serves it (ingress-nginx installs 'nginx')."""
    tls: IngressTls | None = None
    """Required in production and whenever security.encryption.inTransit is required."""

    @model_validator(mode="after")
    def _host_is_a_name(self) -> Ingress:
        if all(part.isdigit() for part in self.host.split(".")):
            raise fail(
                "invalid-format",
                f"ingress.host {self.host!r} is an IP address; an Ingress host is a DNS name",
                fields=("host",),
            )
        return self


class Serving(Spec):
    replicas: Replicas = Replicas()
    autoscaling: Autoscaling | None = None
    resources: Resources = Resources()
    rollout: Rollout = Rollout()
    exposure: Literal["internal", "public"] = "internal"
    ingress: Ingress | None = None
    """The host, path, class and TLS of a public model's Ingress (kubernetes target)."""
    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    health_path: HttpPath = "/healthz"
    metrics_path: HttpPath = "/metrics"
    instance_type: InstanceType | None = None
    """The SageMaker instance type (such as ml.m5.xlarge); required on the aws target."""
    data_capture: DataCapture | None = None
    """Off by default; refused for models that read phi."""

    @model_validator(mode="after")
    def _autoscaling_needs_room(self) -> Serving:
        maximum = self.replicas.max
        if self.autoscaling is not None and (maximum is None or maximum <= self.replicas.min):
            raise fail(
                "contradiction",
                "autoscaling needs replicas.max greater than replicas.min "
                f"(min {self.replicas.min}, max {maximum if maximum is not None else 'unset'})",
                fields=("autoscaling", "replicas"),
            )
        return self

    @model_validator(mode="after")
    def _ingress_is_public(self) -> Serving:
        if self.ingress is not None and self.exposure != "public":
            raise fail(
                "contradiction",
                "serving.ingress applies to exposure: public only, and exposure is "
                f"{self.exposure!r}",
                fields=("ingress", "exposure"),
            )
        return self


class Explainability(Spec):
    required: bool
    method: Literal["shap", "lime", "integrated-gradients", "anchors", "counterfactual"] | None = (
        None
    )

    @model_validator(mode="after")
    def _method_when_required(self) -> Explainability:
        if self.required and self.method is None:
            raise fail("missing-field", "explainability.required is true but no method is named")
        return self


class Drift(Spec):
    method: Literal["psi", "ks", "kl", "js", "wasserstein", "chi2"]
    threshold: Annotated[float, Field(gt=0, le=100)]
    features: Annotated[list[Feature], Field(min_length=1, max_length=256)]
    window: Duration = "1d"
    """The window of recent inputs compared against the reference; the drift job runs once
    per window unless job.schedule says otherwise."""
    job: DriftJob | None = None
    """The job that computes the scores (``python -m mlplane.drift``); without it, something
    else must export ``mlplane_model_drift_score``."""

    @model_validator(mode="after")
    def _unique_features(self) -> Drift:
        _no_duplicates(self.features, "drift.features")
        return self


class Monitoring(Spec):
    drift: Drift | None = None


class Evaluation(Spec):
    """The evaluation step of a Kubeflow training pipeline (``training.engine: kubeflow``): it
    reads the trained model, writes one metric, and ``promote`` runs only when the metric meets
    ``threshold`` (at least it for ``goal: maximize``, at most it for ``minimize``)."""

    image: Image
    command: Annotated[list[Text], Field(min_length=1, max_length=64)]
    """Run with ``--model <path> --metric <file>`` appended; it writes the metric (a number) to
    the file."""
    metric: Name
    """The metric's name (the step sees it as ``MLPLANE_EVALUATION_METRIC``)."""
    threshold: float
    goal: Literal["maximize", "minimize"] = "maximize"
    promote: Annotated[list[Text], Field(min_length=1, max_length=64)]
    """Run in ``image`` with ``--model <path>`` appended when the metric meets the threshold
    (for instance, to copy the model to the registry)."""


class Training(Spec):
    schedule: Cron
    image: Image
    engine: Literal["job", "kubeflow"] = "job"
    """``job``: a Kubernetes CronJob; ``kubeflow``: a Kubeflow Pipelines v2 pipeline (a Pipeline
    and PipelineVersion of the Kubernetes-native API) run on the schedule as a recurring run
    (kubernetes target)."""
    command: Annotated[list[Text], Field(min_length=1, max_length=64)] | None = None
    """The training command (default: the image's entrypoint); with ``engine: kubeflow`` it is
    run with ``--model <path>`` appended, the directory the run's model artifact goes to."""
    evaluation: Evaluation | None = None
    """An evaluation step gated on a metric threshold (``engine: kubeflow`` only)."""
    tensorboard: bool = False
    """A Kubeflow Tensorboard reading ``logs`` (``engine: kubeflow`` only)."""
    logs: ArtifactUri | None = None
    """Where a run writes its TensorBoard logs (s3:// or gs://); the trainer sees it as
    ``MLPLANE_TENSORBOARD_LOG_DIR``. Required with ``tensorboard: true``."""
    resources: Resources = Resources()
    """Requests and limits of the training pod (kubernetes target); on aws the instance type
    decides."""
    timeout: Duration = "6h"
    instance_type: InstanceType | None = None
    """The SageMaker training instance type (such as ml.g5.12xlarge); required on the aws target."""
    output: ArtifactUri | None = None
    """Where a run writes its model artifacts (an s3:// prefix); required on the aws target,
    where SageMaker uploads ``<output><run>/output/model.tar.gz``."""

    @model_validator(mode="after")
    def _kubeflow_only(self) -> Training:
        if self.engine == "kubeflow":
            if self.command is None:
                raise fail(
                    "missing-field",
                    "training.engine: kubeflow needs training.command: the Kubeflow launcher "
                    "wraps the step's command and cannot read the image's entrypoint",
                )
            if self.tensorboard and self.logs is None:
                raise fail(
                    "missing-field",
                    "training.tensorboard: true needs training.logs, the directory the runs "
                    "write their TensorBoard logs to",
                )
            return self
        for field, used in (
            ("evaluation", self.evaluation is not None),
            ("tensorboard", self.tensorboard),
        ):
            if used:
                raise fail(
                    "contradiction",
                    f"training.{field} needs training.engine: kubeflow (a CronJob has one step "
                    "and no TensorBoard)",
                )
        return self


class Batch(Spec):
    """Offline scoring on a schedule: the model reads its ``inputs`` and writes its predictions
    to its ``outputs``. Outputs are data sources derived from the inputs and from the model's
    own data (lineage, classification and residency flow into them). A Kubernetes CronJob of
    an Indexed Job (``parallelism`` shards) on the kubernetes target; a SageMaker Batch
    Transform in a pipeline started by an EventBridge Scheduler schedule on the aws target."""

    schedule: Cron
    """When a run starts, in UTC (five-field cron or @daily...)."""
    inputs: Annotated[list[Name], Field(min_length=1, max_length=64)]
    """Data sources scored (on aws: objectStore sources, one transform per run)."""
    outputs: Annotated[list[Name], Field(min_length=1, max_length=16)]
    """Data sources the predictions are written to (on aws: exactly one objectStore)."""
    image: Image | None = None
    """The scoring image; default: the model's image."""
    command: Annotated[list[Text], Field(min_length=1, max_length=64)] | None = None
    """The scoring command (kubernetes target; default: the image's entrypoint). It finds its
    data in ``MLPLANE_BATCH_INPUT_<NAME>`` and ``MLPLANE_BATCH_OUTPUT_<NAME>``, its shard in
    ``JOB_COMPLETION_INDEX`` of ``MLPLANE_BATCH_SHARDS``."""
    resources: Resources = Resources()
    """Requests and limits of each scoring pod (kubernetes target)."""
    parallelism: Annotated[int, Field(ge=1, le=100)] = 1
    """Shards scored at once: pods of an Indexed Job (kubernetes), instances (aws)."""
    timeout: Duration = "6h"
    """How long a run may take before it is stopped (kubernetes target; SageMaker bounds each
    request instead, see the aws target's README)."""
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    """Retries of a failed shard (kubernetes) or of a run failed by SageMaker (aws)."""
    content_type: MediaType = "text/csv"
    """The media type of the input records."""
    split: Literal["line", "none"] = "line"
    """line: one record per line, predictions one per line; none: each object is one record."""
    instance_type: InstanceType | None = None
    """The SageMaker instance type of the transform (such as ml.m5.xlarge); required on aws."""

    @model_validator(mode="after")
    def _distinct(self) -> Batch:
        _no_duplicates(self.inputs, "batch.inputs")
        _no_duplicates(self.outputs, "batch.outputs")
        both = sorted(set(self.inputs) & set(self.outputs))
        if both:
            raise fail(
                "contradiction",
                f"batch.outputs overwrites its own input {both[0]!r}: a run would read what "
                "it writes",
                fields=("outputs", "inputs"),
            )
        return self


ModelFramework = Literal[
    "sklearn", "xgboost", "lightgbm", "catboost", "pytorch", "tensorflow", "onnx",
    "huggingface", "vllm", "custom",
]  # fmt: skip


class Model(Spec):
    framework: ModelFramework
    version: Version
    image: Image
    artifact: ArtifactUri | None = None
    runtime: Literal["generic", "kserve", "triton"] = "generic"
    """The metrics preset: which metric names the serving runtime exposes."""
    inputs: UniqueNames = []
    """Data sources this model reads (at serving or training time)."""
    secrets: UniqueNames = []
    """Names from security.secrets made available to the model."""
    serving: Serving = Serving()
    explainability: Explainability | None = None
    monitoring: Monitoring | None = None
    training: Training | None = None
    batch: Batch | None = None
    """Scheduled offline scoring next to the online endpoint."""
    owner: Owner | None = None
    description: Text | None = None

    @model_validator(mode="after")
    def _unique_refs(self) -> Model:
        _no_duplicates(self.inputs, "inputs")
        _no_duplicates(self.secrets, "secrets")
        return self
