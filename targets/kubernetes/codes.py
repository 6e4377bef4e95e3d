"""Diagnostic codes of the Kubernetes target, registered once (see ``compiler.core.codes``).

Every code names a spec that validates but cannot be lowered as written to Kubernetes; the
message says which line and why, and the target README lists each code with its remedy.
"""

from __future__ import annotations

from mlplane.compiler.core.diagnostics import Severity, register_code

UNSUPPORTED = register_code(
    "kubernetes-unsupported", "a spec feature is not supported on the kubernetes target"
)
NOT_LOWERED = register_code(
    "kubernetes-not-lowered",
    "a spec setting only another target acts on is ignored on the kubernetes target",
    Severity.WARNING,
)
NAME_TOO_LONG = register_code(
    "kubernetes-name-too-long", "a generated Kubernetes object name exceeds its length limit"
)
NAME_INVALID = register_code(
    "kubernetes-name-invalid", "a generated Kubernetes object name breaks a naming rule"
)
NAME_COLLISION = register_code(
    "kubernetes-name-collision", "two generated Kubernetes objects would get the same name"
)
CANARY_PAUSE_TOO_SHORT = register_code(
    "kubernetes-canary-pause-too-short",
    "a gated canary's pauses end before its SLO analysis can judge the new version",
)
PUBLIC_WITHOUT_ALLOW = register_code(
    "kubernetes-public-without-allow",
    "a model is exposed publicly but no network allow admits traffic from the internet",
)
RESERVED_NAMESPACE = register_code(
    "kubernetes-reserved-namespace", "the environment deploys into a namespace Kubernetes owns"
)
SECRET_NAMESPACE = register_code(
    "kubernetes-secret-namespace",
    "a k8s:// secret lives in another namespace, where pods cannot mount it",
)
EGRESS_PORT_UNKNOWN = register_code(
    "kubernetes-egress-port-unknown",
    "no egress port can be derived for a URI; traffic to it stays denied",
    Severity.WARNING,
)
EGRESS_OPEN = register_code(
    "kubernetes-egress-open",
    "egress to a host named by DNS name is open to every address on its port",
    Severity.WARNING,
)
ALLOW_NOT_ENFORCED = register_code(
    "kubernetes-allow-not-enforced",
    "a network allow cannot be expressed as a NetworkPolicy rule",
    Severity.WARNING,
)
DEFAULT_RESOURCES = register_code(
    "kubernetes-default-resources",
    "a workload gives no CPU or memory; the target's defaults are used",
    Severity.INFO,
)
INGRESS_HOST_MISSING = register_code(
    "kubernetes-ingress-host-missing",
    "a model is exposed publicly but serving.ingress names no host",
)
INGRESS_TLS_MISSING = register_code(
    "kubernetes-ingress-tls-missing",
    "a public model's Ingress has no TLS (an error in production or when inTransit is required)",
)
IN_TRANSIT_NOT_ENFORCED = register_code(
    "kubernetes-in-transit-not-enforced",
    "inTransit encryption is required but no mesh encrypts pod traffic (a warning; an error "
    "when a production environment says kubernetes.mesh: none)",
    Severity.WARNING,
)
SHM_EXCEEDS_MEMORY = register_code(
    "kubernetes-shm-exceeds-memory",
    "a memory-backed /dev/shm (resources.shm) is not smaller than the pod's memory limit",
)
KUBEFLOW_UNAVAILABLE = register_code(
    "kubernetes-kubeflow-unavailable",
    "training.engine: kubeflow needs the Kubeflow Pipelines SDK (pip install 'mlplane[kubeflow]')",
)
KUBEFLOW_UNSUPPORTED = register_code(
    "kubernetes-kubeflow-unsupported",
    "a Kubeflow training setting cannot be lowered as written (the message says why)",
)
KUBEFLOW_ENDPOINT_MISSING = register_code(
    "kubernetes-kubeflow-endpoint-missing",
    "a model trains on Kubeflow Pipelines but the environment names no Kubeflow Pipelines API "
    "(kubernetes.kubeflow.endpoint) where apply registers its recurring run",
)
EDGE_IMAGE_UNPINNED = register_code(
    "kubernetes-edge-image-unpinned",
    "an image of an edge environment is not pinned by digest (edge nodes run pre-loaded images)",
)
EDGE_PUBLIC = register_code(
    "kubernetes-edge-public",
    "a model of an edge environment is exposed publicly without kubernetes.edge.allowPublic",
)
EDGE_UNSUPPORTED = register_code(
    "kubernetes-edge-unsupported",
    "a serving setting cannot run on edge nodes as written (the message says why)",
)
EDGE_RESIDENCY = register_code(
    "kubernetes-edge-residency",
    "a model of an edge environment reads data bound to more than one residency",
)
EDGE_REPLICAS_IGNORED = register_code(
    "kubernetes-edge-replicas-ignored",
    "an edge model states a replica count, but a DaemonSet runs one pod per edge node",
    Severity.WARNING,
)
DRIFT_JOB = register_code(
    "kubernetes-drift-job",
    "a model's drift job cannot be generated as written (the message says why)",
)
