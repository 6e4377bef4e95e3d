"""What each serving ``runtime`` really runs on this target: ports, health paths, metric series.

The SLO rules (``targets/monitoring``), the rollout gates (``rollouts.py``), the ServiceMonitor
and the probes of one model must all read what the deployed server really exposes. This table
holds, per runtime, the facts the server's own documentation gives, with the source of each:
where it listens, where it answers health checks, where and which metric series it exports.
``tests/test_kubernetes_runtimes.py`` checks that every series the generated rules and gates
read is listed here, and that the ServiceMonitor and probes use these ports and paths.

* ``generic``: the model's own server. Ports and paths are the spec's ``serving.port``,
  ``healthPath`` and ``metricsPath``; its metrics are a contract the image must meet (the
  names Prometheus client libraries and their HTTP middleware conventionally export).
* ``triton``: NVIDIA Triton Inference Server with its default ports: HTTP/REST 8000, metrics
  8002 (``/metrics``), liveness ``/v2/health/live`` and readiness ``/v2/health/ready``.
* ``kserve``: **not deployed here**. Its series come from Knative's queue-proxy, which only
  exists next to pods KServe's controller creates for a serverless ``InferenceService``;
  this target deploys the server itself (Deployment or Argo Rollout), so a ``kserve`` model's
  SLO rules would read series nothing produces. ``checks.py`` refuses it at the ``runtime:``
  line (see the README for why an InferenceService is not lowered).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplane.compiler.core import ir
from mlplane.targets.kubernetes import names


@dataclass(frozen=True, slots=True)
class Server:
    """One runtime's server as deployed by this target (None: the spec's field decides)."""

    runtime: str
    deployed: bool
    """False when this target cannot deploy the runtime (refused with a located error)."""
    http_port: int | None
    metrics_port: int | None
    """A separate metrics port (named :data:`METRICS_PORT_NAME`); None: metrics on ``http``."""
    metrics_path: str | None
    liveness_path: str | None
    readiness_path: str | None
    series: tuple[str, ...]
    """Every metric series name the server exports that mlplane reads."""
    sources: tuple[str, ...]
    why_not_deployed: str = ""


METRICS_PORT_NAME = "metrics"

GENERIC = Server(
    runtime="generic",
    deployed=True,
    http_port=None,
    metrics_port=None,
    metrics_path=None,
    liveness_path=None,
    readiness_path=None,
    series=(
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_count",
    ),
    sources=(
        "https://prometheus.io/docs/practices/naming/ (http_requests_total, "
        "http_request_duration_seconds)",
        "https://github.com/prometheus/client_golang/blob/main/prometheus/promhttp/instrument_server.go "
        "(request counter with a code label, duration histogram)",
    ),
)

TRITON = Server(
    runtime="triton",
    deployed=True,
    http_port=8000,
    metrics_port=8002,
    metrics_path="/metrics",
    liveness_path="/v2/health/live",
    readiness_path="/v2/health/ready",
    series=(
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
    ),
    sources=(
        "https://github.com/triton-inference-server/server/blob/main/docs/user_guide/metrics.md "
        "(port 8002, /metrics, nv_inference_request_success/failure with labels model, version)",
        "https://github.com/triton-inference-server/server/blob/main/docs/customization_guide/"
        "inference_protocols.md (HTTP 8000, /v2/health/live, /v2/health/ready)",
    ),
)

KSERVE = Server(
    runtime="kserve",
    deployed=False,
    http_port=None,
    metrics_port=None,
    metrics_path=None,
    liveness_path=None,
    readiness_path=None,
    series=(
        "revision_app_request_count",
        "revision_app_request_latencies_bucket",
        "revision_app_request_latencies_count",
    ),
    sources=(
        "https://knative.dev/docs/serving/services/service-metrics/ (queue-proxy metrics)",
        "https://github.com/knative/serving/blob/main/pkg/queue/request_metric.go "
        "(app_request_count, app_request_latencies: emitted by the queue-proxy container)",
        "https://github.com/kserve/kserve/blob/master/pkg/constants/constants.go "
        "(the predictor's Knative service <name>-predictor)",
    ),
    why_not_deployed=(
        "its metrics (revision_app_request_*) come from Knative's queue-proxy, which only runs "
        "in pods KServe creates for a serverless InferenceService; this target deploys the "
        "server itself as a Deployment or Argo Rollout, so the SLO rules and canary gates "
        "would read series nothing produces"
    ),
)

SERVERS: dict[str, Server] = {s.runtime: s for s in (GENERIC, TRITON, KSERVE)}


def server(model: ir.Model) -> Server:
    return SERVERS[model.runtime]


def http_port(model: ir.Model) -> int:
    return server(model).http_port or model.serving.port


def metrics_port(model: ir.Model) -> int:
    """The container port Prometheus scrapes."""
    return server(model).metrics_port or http_port(model)


def metrics_port_name(model: ir.Model) -> str:
    return METRICS_PORT_NAME if server(model).metrics_port else names.CONTAINER_PORT_NAME


def metrics_path(model: ir.Model) -> str:
    return server(model).metrics_path or model.serving.metrics_path


def liveness_path(model: ir.Model) -> str:
    return server(model).liveness_path or model.serving.health_path


def readiness_path(model: ir.Model) -> str:
    return server(model).readiness_path or model.serving.health_path
