"""The Kubernetes settings of an environment (``environments.<env>.kubernetes``) that only this
target reads; the namespace is the system model's own (``ir.Environment.namespace``, from
:func:`namespace`), because the monitoring emitter labels every series with it."""

from __future__ import annotations

from dataclasses import dataclass

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.compiler.core.plugins import RiskCode, SettingField
from mlplane.schema import models as spec


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """``kubernetes.edge`` of an environment whose profile is ``edge`` (see ``edge.py``)."""

    node_label: str = "node-role.kubernetes.io/edge"
    taint: str | None = "node-role.kubernetes.io/edge"
    site_label: str = "topology.kubernetes.io/zone"
    residency_label: str = "mlplane.dev/residency"
    sites_at_once: int = 25
    remote_write: str | None = None
    """The full HTTPS URL of the central Prometheus's remote-write endpoint."""
    artifact_loader: str | None = None
    allow_public: bool = False


def _edge(kube: spec.KubernetesSettings) -> EdgeSettings | None:
    if kube.profile != "edge":
        return None
    given = kube.edge or spec.KubernetesEdge()
    remote = given.remote_write
    return EdgeSettings(
        given.node_label,
        given.taint,
        given.site_label,
        given.residency_label,
        given.sites_at_once,
        None if remote is None else f"https://{remote.host}{remote.path}",
        given.artifact_loader,
        given.allow_public,
    )


@dataclass(frozen=True, slots=True)
class KubernetesSettings(ir.TargetSettings):
    kube_context: str | None = None
    """The kubeconfig context to deploy with; None: the current one."""
    alertmanager: str = "alertmanagerConfig"
    """``alertmanagerConfig`` (a namespaced AlertmanagerConfig) or ``file`` (only
    monitoring/alertmanager.yaml, with the receivers' Secrets in the monitoring namespace)."""
    monitoring_namespace: str = "monitoring"
    monitoring_labels: tuple[tuple[str, str], ...] = (("release", "kube-prometheus-stack"),)
    """Labels on PrometheusRules, ServiceMonitors and the AlertmanagerConfig, for the
    Prometheus Operator's selectors."""
    ingress_namespace: str = "ingress-nginx"
    """Where the ingress controller runs; ``from: internet`` admits this namespace."""
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Host name → where it is (``cidr:``, ``namespace:``, ``internet``), sorted by host."""
    mesh: str | None = None
    """``istio``, ``linkerd``, ``none`` (said knowingly) or None (not said): see ``mesh.py``."""
    edge: EdgeSettings | None = None
    """None: the cloud profile; else the edge profile's settings (``edge.py``)."""
    kubeflow_endpoint: str | None = None
    """The Kubeflow Pipelines API where apply registers recurring runs (``kubeflow_register.py``)."""


UNSET = KubernetesSettings()


def settings(environment: spec.Environment) -> KubernetesSettings:
    kube = environment.kubernetes
    if kube is None:
        return UNSET
    hosts = tuple((host, tuple(peers)) for host, peers in sorted(kube.hosts.items()))
    monitoring = kube.monitoring
    if monitoring is None:
        return KubernetesSettings(
            kube.context,
            ingress_namespace=kube.ingress_namespace,
            hosts=hosts,
            mesh=kube.mesh,
            edge=_edge(kube),
            kubeflow_endpoint=_kubeflow_endpoint(kube),
        )
    return KubernetesSettings(
        kube.context,
        monitoring.alertmanager,
        monitoring.monitoring_namespace,
        tuple(sorted(monitoring.labels.items())),
        ingress_namespace=kube.ingress_namespace,
        hosts=hosts,
        mesh=kube.mesh,
        edge=_edge(kube),
        kubeflow_endpoint=_kubeflow_endpoint(kube),
    )


NAMESPACE_PATH: SpecPath = ("kubernetes", "namespace")


def namespace(environment: spec.Environment) -> str | None:
    """``kubernetes.namespace``, where the system's objects go (None: ``<system>-<env>``)."""
    kube = environment.kubernetes
    return kube.namespace if kube else None


def _kubeflow_endpoint(kube: spec.KubernetesSettings) -> str | None:
    return kube.kubeflow.endpoint if kube.kubeflow is not None else None


def kubernetes_of(found: ir.TargetSettings) -> KubernetesSettings:
    """``found`` if these are Kubernetes settings, else :data:`UNSET`."""
    return found if isinstance(found, KubernetesSettings) else UNSET


CONTEXT_CHANGED = "kube-context-changed"
KUBEFLOW_ENDPOINT_CHANGED = "kubeflow-endpoint-changed"
RISK_CODES: tuple[RiskCode, ...] = (
    RiskCode(
        CONTEXT_CHANGED,
        "the Kubernetes cluster context of an environment changes",
        "the next apply deploys into the cluster the new context names: it creates every "
        "resource there while the old cluster keeps running the old ones; check that the "
        "context is the intended cluster on the machine that applies",
    ),
    RiskCode(
        KUBEFLOW_ENDPOINT_CHANGED,
        "the Kubeflow Pipelines API an environment registers its recurring runs with changes "
        "or is removed",
        "the next apply registers the recurring runs at the new API (or nowhere) and never "
        "reaches the old one, whose runs keep starting on schedule, on pipeline versions the "
        "apply deletes; delete them there first (an apply with the old endpoint and "
        "training.engine: job deletes them, as does destroy)",
    ),
)
"""The plan's risk flags that only this target raises (``compiler/plan/risk.py``)."""


def profile_line(found: ir.TargetSettings) -> str:
    """The profile as the plan summary shows it: ``cloud``, or ``edge`` with how its sites
    are found and rolled (``edge, sites by topology.kubernetes.io/zone, 25 % at a time``)."""
    edge = kubernetes_of(found).edge
    if edge is None:
        return "cloud"
    return f"edge, sites by {edge.site_label}, {edge.sites_at_once} % at a time"


SETTING_FIELDS: tuple[SettingField, ...] = (
    SettingField(
        "cluster context",
        ("kubernetes", "context"),
        lambda s: kubernetes_of(s).kube_context or "default",
        lambda old, new: CONTEXT_CHANGED,  # only asked for a changed line
    ),
    SettingField(
        "Kubeflow Pipelines API",
        ("kubernetes", "kubeflow", "endpoint"),
        lambda s: kubernetes_of(s).kubeflow_endpoint or "none",
        # first named: nothing was registered elsewhere
        lambda old, new: (
            KUBEFLOW_ENDPOINT_CHANGED if kubernetes_of(old).kubeflow_endpoint else None
        ),
        unremarkable="none",  # the report leaves it out where nothing is registered
    ),
    SettingField("profile", ("kubernetes", "profile"), profile_line, unremarkable="cloud"),
)
"""The plan summary's lines for these settings, in order."""
