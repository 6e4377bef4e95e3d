"""Hardened pod templates (docs/quality.md "Kubernetes"), shared by serving and training.

Every pod runs as a high non-root UID with a read-only root filesystem (``/tmp`` is an
``emptyDir``, sized with ``/dev/shm`` by ``storage.py``), without privilege escalation or capabilities, under the RuntimeDefault seccomp
profile, with requests and limits, a dedicated ServiceAccount and no service-account token.
These are also what Pod Security ``restricted`` enforces on the namespace, so a template that
drifted from them would be rejected by the cluster, not only by the scanners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, Severity, format_path
from mlplane.compiler.core.ir import Origin
from mlplane.targets.kubernetes import codes, names, servers
from mlplane.targets.kubernetes.context import Lowering

RUN_AS_ID = 10001
"""UID and GID of every container: above 10000 so it maps to no user of the node."""

TMP_VOLUME = "tmp"
TMP_SIZE_LIMIT = "1Gi"
"""Until ``storage.apply`` sizes ``/tmp`` to the workload."""
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "nvidia.com/gpu.present"
"""Set on GPU nodes by NVIDIA GPU feature discovery (part of the GPU operator)."""

IMAGE_PULL_POLICY = "Always"
"""Always: the kubelet re-checks the registry's authorisation for the digest on every start."""


@dataclass(frozen=True, slots=True)
class Quantities:
    cpu: str
    memory: str


SERVING_DEFAULTS = Quantities(cpu="500m", memory="512Mi")
TRAINING_DEFAULTS = Quantities(cpu="1", memory="2Gi")


@dataclass
class PodInputs:
    """What a workload's container reads: environment, and volumes mounted from secrets."""

    env: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)


def quantities(
    lowering: Lowering, resources: ir.Resources, defaults: Quantities, origin: Origin, what: str
) -> Quantities:
    """The spec's CPU and memory, or the defaults, saying so (limits are required by §B)."""
    chosen = Quantities(resources.cpu or defaults.cpu, resources.memory or defaults.memory)
    if resources.cpu is None or resources.memory is None:
        lowering.diagnostics.add(
            Diagnostic(
                codes.DEFAULT_RESOURCES,
                Severity.INFO,
                f"{what} gives no {_missing(resources)}; using cpu {chosen.cpu} and memory "
                f"{chosen.memory} as requests and limits",
                origin.location,
                format_path(origin.path),
            )
        )
    return chosen


def _missing(resources: ir.Resources) -> str:
    missing = [n for n, v in (("cpu", resources.cpu), ("memory", resources.memory)) if v is None]
    return " or ".join(missing)


def resource_requirements(chosen: Quantities, gpu: int) -> dict[str, Any]:
    """Requests equal limits (Guaranteed QoS): a model server's memory is its working set."""
    amounts: dict[str, Any] = {"cpu": chosen.cpu, "memory": chosen.memory}
    limits = dict(amounts)
    if gpu > 0:
        # A quantity string, as the API server stores it: an integer here is rewritten to "1"
        # by controllers that update the pod template (Argo Rollouts), which then own the field
        # and make the next server-side apply conflict.
        limits[GPU_RESOURCE] = str(gpu)
    return {"requests": amounts, "limits": limits}


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsGroup": RUN_AS_ID,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "fsGroup": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def http_probes(liveness_path: str, readiness_path: str) -> dict[str, Any]:
    """Startup and readiness on the readiness path, liveness on the liveness path.

    The startup probe allows ten minutes for loading weights, so liveness (which restarts the
    container) only starts judging a server that has come up once.
    """

    def probe(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": names.CONTAINER_PORT_NAME}}

    timing = {"periodSeconds": 10, "timeoutSeconds": 5}
    return {
        "startupProbe": {**probe(readiness_path), **timing, "failureThreshold": 60},
        "livenessProbe": {**probe(liveness_path), **timing, "failureThreshold": 3},
        "readinessProbe": {
            **probe(readiness_path),
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


def container(
    name: str, image: ir.ImageRef, requirements: dict[str, Any], inputs: PodInputs
) -> dict[str, Any]:
    """A hardened container; the image is the spec's reference, pinned by digest when given."""
    return {
        "name": name,
        "image": image.text,
        "imagePullPolicy": IMAGE_PULL_POLICY,
        "resources": requirements,
        "securityContext": container_security_context(),
        "env": list(inputs.env),
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}, *inputs.mounts],  # noqa: S108
    }


def serving_container(
    model: ir.Model, requirements: dict[str, Any], inputs: PodInputs
) -> dict[str, Any]:
    """The model server: its ports and health paths are its runtime's (``servers.py``)."""
    body = container("model", model.image, requirements, inputs)
    body["ports"] = [
        {
            "name": names.CONTAINER_PORT_NAME,
            "containerPort": servers.http_port(model),
            "protocol": "TCP",
        }
    ]
    if servers.server(model).metrics_port is not None:
        body["ports"].append(
            {
                "name": servers.METRICS_PORT_NAME,
                "containerPort": servers.metrics_port(model),
                "protocol": "TCP",
            }
        )
    body.update(http_probes(servers.liveness_path(model), servers.readiness_path(model)))
    return body


def pod_spec(
    service_account: str, main: dict[str, Any], inputs: PodInputs, gpu: int
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [main],
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "serviceAccountName": service_account,
        "volumes": [
            {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
            *inputs.volumes,
        ],
    }
    if gpu > 0:
        spec["nodeSelector"] = {GPU_NODE_LABEL: "true"}
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    return spec


def pod_template(labels: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": spec}
