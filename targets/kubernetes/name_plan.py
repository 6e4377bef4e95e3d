"""The names a lowering of one environment would take, computed from the system model alone.

``mlplane validate`` builds no graph (lowering every environment of a large spec costs about
twice a validate), yet it must refuse what the build refuses: generated names that are too long,
invalid or that collide once suffixed (a model ``scorer-training`` beside the training job of
model ``scorer``). This module lists, in the lowering's order and with the same origins, every
Kubernetes object name the lowering claims in the environment's namespace and every logical
(Pulumi) name it gives a resource, so that ``checks.check_claims`` reports exactly what the
build's ``checks.check_names`` reports on the lowered graph.

It mirrors the ``lowering.add`` calls of ``lower.py`` and the modules it calls;
``tests/test_validate_name_plan.py`` compares the plan with a real lowering of every example and
corpus environment, so a lowering that adds an object without adding it here fails that test.
Two kinds of name are left out on purpose: a Kubeflow PipelineVersion (its name carries a digest
of the compiled pipeline, under the model's unique ``<model>-training`` prefix, so it collides
with nothing) and objects a refusal already stops (a ``shadow`` rollout, a Secret in another
namespace, a Tensorboard whose logs it cannot read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.targets.kubernetes import (
    alerting,
    edge,
    ingress,
    mesh,
    names,
    rollouts,
    secrets,
)
from mlplane.targets.kubernetes.context import Claim, Lowering
from mlplane.targets.kubernetes.kubeflow import TENSORBOARD_SCHEMES, tensorboard_name

NETWORK_POLICY = "NetworkPolicy"
SERVICE_ACCOUNT = "ServiceAccount"

Where: TypeAlias = "ir.Origin | SpecPath"
"""An origin, or the spec path whose origin (``Lowering.origin``) is looked up when needed."""


class Planned:
    """The names of one lowering in its order: the object names taken in the environment's
    namespace (kind, name, where) and the logical names of every resource (name, where).

    Origins are kept as spec paths where the lowering looks them up, and looked up only when
    asked for (:meth:`origin`): a check reports few of the names it checks."""

    __slots__ = ("claims", "logical", "lowering")

    def __init__(self, lowering: Lowering) -> None:
        self.lowering = lowering
        self.claims: list[tuple[str, str, Where]] = []
        self.logical: list[tuple[str, Where]] = []

    def add(self, logical: str, where: Where, kind: str = "", name: str = "") -> None:
        """One resource: its logical name (``""``: none) and, when it takes a name in the
        namespace, that object's kind and name."""
        if kind and name:
            self.claims.append((kind, name, where))
        if logical:
            self.logical.append((logical, where))

    def origin(self, where: Where) -> ir.Origin:
        return where if isinstance(where, ir.Origin) else self.lowering.origin(where)


@dataclass(frozen=True, slots=True)
class NamePlan:
    claims: tuple[Claim, ...]
    """Object names taken in the namespace, in the lowering's order."""
    logical: tuple[Claim, ...]
    """Logical names of every resource (kind ``resource``), in the lowering's order."""


def plan(lowering: Lowering) -> NamePlan:
    """The planned names with their origins (:func:`planned`, every origin looked up)."""
    found = planned(lowering)
    origin = found.origin
    claims = tuple(Claim(kind, name, origin(where)) for kind, name, where in found.claims)
    logical = tuple(Claim("resource", name, origin(where)) for name, where in found.logical)
    return NamePlan(claims, logical)


def planned(lowering: Lowering) -> Planned:
    found = Planned(lowering)
    _system(lowering, found)
    return found


def _system(lowering: Lowering, out: Planned) -> None:
    system = lowering.system
    out.add(names.system_component(system), ("metadata",))
    env_path = ("environments", system.environment.name, "kubernetes", "namespace")
    out.add(lowering.namespace_resource, env_path, "Namespace", lowering.namespace)
    _mesh(lowering, out)
    _edge(lowering, out)
    if system.security.default_deny:
        where = ("security", "network", "defaultDeny")
        _policy(out, system.name, "default-deny-networkpolicy", where, "mlplane-default-deny")
        _policy(out, system.name, "dns-egress-networkpolicy", where, "mlplane-allow-dns")
        if ingress.issues_certificates(system):
            _policy(out, system.name, "acme-solver-networkpolicy", where, ingress.SOLVER_POLICY)
    sources: set[str] = set()
    for secret in secrets.used_secrets(system):
        if _secret(lowering, secret, out):
            sources.add(secret.name)
    shape = _Shape(lowering)
    for _, model in sorted(system.models.items()):
        _model(lowering, model, shape, out)
    for name in sorted(system.slas):
        out.add(
            names.logical(name, "prometheusrule"), ("slas", name), "PrometheusRule", f"{name}-slo"
        )
    _alerting(lowering, sources, out)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What every model's names depend on in the environment, looked up once."""

    default_deny: bool
    daemon_set: bool
    """Rolling models run as DaemonSets (the edge profile)."""
    pod_monitors: bool
    """Edge agents scrape the models (PodMonitors instead of ServiceMonitors)."""

    def __init__(self, lowering: Lowering) -> None:
        object.__setattr__(self, "default_deny", lowering.system.security.default_deny)
        object.__setattr__(self, "daemon_set", edge.edge_of(lowering) is not None)
        object.__setattr__(self, "pod_monitors", edge.agent_scrapes(lowering))


def _policy(out: Planned, owner: str, suffix: str, where: Where, name: str) -> None:
    out.add(names.logical(owner, suffix), where, NETWORK_POLICY, name)


def _mesh(lowering: Lowering, out: Planned) -> None:
    chosen = mesh.mesh_of(lowering)
    if chosen not in (mesh.ISTIO, mesh.LINKERD):
        return
    system = lowering.system
    where = ("environments", system.environment.name, "kubernetes", "mesh")
    if chosen == mesh.ISTIO:
        out.add(
            names.logical(system.name, "peerauthentication"), where, "PeerAuthentication", "default"
        )
    if system.security.default_deny:
        _policy(out, system.name, "mesh-egress-networkpolicy", where, mesh.CONTROL_PLANE_POLICY)


def _edge(lowering: Lowering, out: Planned) -> None:
    settings = edge.edge_of(lowering)
    if settings is None or settings.remote_write is None or not lowering.system.models:
        return
    where = ("environments", lowering.system.environment.name, "kubernetes", "edge", "remoteWrite")
    name = edge.agent_name(lowering.system)
    for suffix, kind in (("serviceaccount", SERVICE_ACCOUNT), ("role", "Role")):
        out.add(names.logical(name, suffix), where, kind, name)
    out.add(names.logical(name, "rolebinding"), where, "RoleBinding", name)
    reader = edge.node_reader_name(lowering)
    out.add(names.logical(name, "clusterrole"), where, "ClusterRole", reader)
    out.add(names.logical(name, "clusterrolebinding"), where, "ClusterRoleBinding", reader)
    out.add(names.logical(name, "prometheusagent"), where, "PrometheusAgent", name)


def _secret(lowering: Lowering, secret: ir.Secret, out: Planned) -> bool:
    """Plan the objects of a used secret; whether the secret gets a resource of its own."""
    if secret.scheme == "k8s":
        namespace, _, rest = secret.ref.removeprefix("k8s://").partition("/")
        if namespace == lowering.namespace:  # else refused (secrets.check_namespace)
            out.add("", secret.origin, "Secret", rest.partition("#")[0])
        return False
    if secret.scheme == "env":
        out.add(names.logical(secret.name, "secret"), secret.origin, "Secret", secret.name)
    else:
        logical = names.logical(secret.name, "externalsecret")
        out.add(logical, secret.origin, "ExternalSecret", secret.name)
        out.add("", secret.origin, "Secret", secret.name)
    return True


def _model(lowering: Lowering, model: ir.Model, shape: _Shape, out: Planned) -> None:
    serving = model.serving
    strategy = serving.rollout.strategy
    if strategy == "shadow":
        return  # refused by checks.check_spec
    m, origin = model.name, model.origin
    out.add(names.model_component(m), origin)
    if model.inputs:
        out.add(
            names.logical(m, "configmap"),
            ("models", m, "inputs"),
            "ConfigMap",
            names.data_sources_config(m),
        )
    out.add(names.logical(m, "serviceaccount"), origin, SERVICE_ACCOUNT, m)
    progressive = strategy != "rolling"
    slas = rollouts.gating_slas(lowering.system, model) if progressive else []
    if slas:
        out.add(
            names.logical(m, "analysistemplate"),
            slas[0].origin,
            "AnalysisTemplate",
            names.analysis_template(m),
        )
    kind = "Rollout" if progressive else "DaemonSet" if shape.daemon_set else "Deployment"
    where = ("models", m, "serving", "rollout" if progressive else "replicas")
    out.add(names.logical(m, kind.lower()), where, kind, m)
    _service_objects(lowering, model, kind, shape, out)
    if shape.default_deny:
        _policy(out, m, "networkpolicy", origin, m)
        if model.training is not None:
            _policy(out, m, "training-networkpolicy", ("models", m, "training"), names.training(m))
    if model.training is not None:
        _training(model, model.training, shape, out)
    if model.batch is not None:
        _job(m, "batch", ("models", m, "batch"), shape, out)
    if model.drift is not None and model.drift.job is not None:
        _job(m, "drift", ("models", m, "monitoring", "drift", "job"), shape, out)


def _service_objects(
    lowering: Lowering, model: ir.Model, workload: str, shape: _Shape, out: Planned
) -> None:
    m, serving = model.name, model.serving
    out.add(names.logical(m, "service"), ("models", m, "serving", "port"), "Service", m)
    if serving.rollout.strategy == "blueGreen":
        out.add(
            names.logical(m, "preview-service"),
            ("models", m, "serving", "rollout"),
            "Service",
            names.preview_service(m),
        )
    if serving.autoscaling_metric is not None:
        out.add(
            names.logical(m, "hpa"),
            ("models", m, "serving", "autoscaling"),
            "HorizontalPodAutoscaler",
            m,
        )
        if serving.autoscaling_metric in ("rps", "concurrency"):
            out.add(
                names.logical(m, "autoscaling-rules"),
                ("models", m, "serving", "autoscaling"),
                "PrometheusRule",
                names.logical(m, "autoscaling"),
            )
    if serving.replicas_min >= 2 and workload != "DaemonSet":
        out.add(
            names.logical(m, "pdb"), ("models", m, "serving", "replicas"), "PodDisruptionBudget", m
        )
    metrics = ("models", m, "serving", "metricsPath")
    if shape.pod_monitors:
        out.add(names.logical(m, "podmonitor"), metrics, "PodMonitor", m)
    else:
        out.add(names.logical(m, "servicemonitor"), metrics, "ServiceMonitor", m)
    if serving.exposure == "public" and serving.ingress is not None:
        from mlplane.targets.kubernetes.checks import public_allowed

        if public_allowed(lowering.system, model):
            out.add(names.logical(m, "ingress"), ("models", m, "serving", "ingress"), "Ingress", m)


def _training(model: ir.Model, training: ir.Training, shape: _Shape, out: Planned) -> None:
    m = model.name
    where: SpecPath = ("models", m, "training")
    if training.engine != "kubeflow":
        out.add(
            names.logical(names.training(m), "serviceaccount"),
            model.origin,
            SERVICE_ACCOUNT,
            names.training(m),
        )
        out.add(names.logical(m, "cronjob"), where, "CronJob", names.training(m))
        return
    tensorboard = training.tensorboard
    logs = (training.logs or "").partition("://")[0]
    if tensorboard and logs not in TENSORBOARD_SCHEMES:
        return  # refused at training.logs
    out.add(names.logical(m, "pipeline"), where, "Pipeline", names.training(m))
    out.add(names.logical(m, "pipelineversion"), where)  # named after a digest
    out.add(
        names.logical(m, "recurring-run"), where, "ConfigMap", names.logical(m, "recurring-run")
    )
    if shape.default_deny:
        engine = (*where, "engine")
        _policy(out, m, "kubeflow-networkpolicy", engine, names.logical(m, "kubeflow-pipelines"))
    if tensorboard:
        board = (*where, "tensorboard")
        out.add(names.logical(m, "tensorboard"), board, "Tensorboard", tensorboard_name(m))
        if shape.default_deny:
            _policy(out, m, "tensorboard-networkpolicy", board, tensorboard_name(m))


def _job(m: str, what: str, where: SpecPath, shape: _Shape, out: Planned) -> None:
    """A batch or drift job: its service account, CronJob and (default deny) NetworkPolicy."""
    job = f"{m}-{what}"
    out.add(names.logical(job, "serviceaccount"), where, SERVICE_ACCOUNT, job)
    out.add(names.logical(m, f"{what}-cronjob"), where, "CronJob", job)
    if shape.default_deny:
        _policy(out, m, f"{what}-networkpolicy", where, job)


def _alerting(lowering: Lowering, sources: set[str], out: Planned) -> None:
    """The receivers' Secrets (in the monitoring namespace, or shared with the models') and
    the AlertmanagerConfig; none of them claims a name (``alerting.lower_alerting``)."""
    system = lowering.system
    if not system.alerting.receivers:
        return
    namespace = alerting.secrets_namespace(lowering)
    prefix = "" if namespace == lowering.namespace else alerting.LOGICAL_PREFIX
    for name in alerting.receiver_secrets(system):
        secret = system.security.secrets.get(name)
        if secret is None or secret.scheme == "k8s" or (not prefix and name in sources):
            continue
        suffix = "secret" if secret.scheme == "env" else "externalsecret"
        out.add(names.logical(name, f"{prefix}{suffix}"), secret.origin)
    if alerting.settings_of(system).alertmanager != alerting.FILE_MODE:
        out.add(
            names.logical(system.name, "alertmanagerconfig"),
            ("alerting",),
            "AlertmanagerConfig",
            system.name,
        )
