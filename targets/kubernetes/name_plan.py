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

from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Planned:
    """One resource of the lowering: its logical name and, when it takes a name in the
    environment's namespace, that object's kind and name."""

    logical: str
    origin: ir.Origin
    kind: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class NamePlan:
    claims: tuple[Claim, ...]
    """Object names taken in the namespace, in the lowering's order."""
    logical: tuple[Claim, ...]
    """Logical names of every resource (kind ``resource``), in the lowering's order."""


def plan(lowering: Lowering) -> NamePlan:
    planned = list(_system(lowering))
    claims = [Claim(p.kind, p.name, p.origin) for p in planned if p.kind and p.name]
    logical = [Claim("resource", p.logical, p.origin) for p in planned if p.logical]
    return NamePlan(tuple(claims), tuple(logical))


def _system(lowering: Lowering) -> Iterator[Planned]:
    system = lowering.system
    yield Planned(names.system_component(system), lowering.origin(("metadata",)))
    env_path = ("environments", system.environment.name, "kubernetes", "namespace")
    yield Planned(
        lowering.namespace_resource, lowering.origin(env_path), "Namespace", lowering.namespace
    )
    yield from _mesh(lowering)
    yield from _edge(lowering)
    if system.security.default_deny:
        origin = lowering.origin(("security", "network", "defaultDeny"))
        yield _policy(system.name, "default-deny-networkpolicy", origin, "mlplane-default-deny")
        yield _policy(system.name, "dns-egress-networkpolicy", origin, "mlplane-allow-dns")
        if ingress.issues_certificates(system):
            yield _policy(system.name, "acme-solver-networkpolicy", origin, ingress.SOLVER_POLICY)
    sources: set[str] = set()
    for secret in secrets.used_secrets(system):
        found = list(_secret(lowering, secret))
        sources.update(secret.name for p in found if p.logical)
        yield from found
    for _, model in sorted(system.models.items()):
        yield from _model(lowering, model)
    for name in sorted(system.slas):
        origin = lowering.origin(("slas", name))
        yield Planned(
            names.logical(name, "prometheusrule"), origin, "PrometheusRule", f"{name}-slo"
        )
    yield from _alerting(lowering, sources)


def _policy(owner: str, suffix: str, origin: ir.Origin, name: str) -> Planned:
    return Planned(names.logical(owner, suffix), origin, NETWORK_POLICY, name)


def _mesh(lowering: Lowering) -> Iterator[Planned]:
    chosen = mesh.mesh_of(lowering)
    if chosen not in (mesh.ISTIO, mesh.LINKERD):
        return
    system = lowering.system
    origin = lowering.origin(("environments", system.environment.name, "kubernetes", "mesh"))
    if chosen == mesh.ISTIO:
        logical = names.logical(system.name, "peerauthentication")
        yield Planned(logical, origin, "PeerAuthentication", "default")
    if system.security.default_deny:
        yield _policy(system.name, "mesh-egress-networkpolicy", origin, mesh.CONTROL_PLANE_POLICY)


def _edge(lowering: Lowering) -> Iterator[Planned]:
    settings = edge.edge_of(lowering)
    if settings is None or settings.remote_write is None or not lowering.system.models:
        return
    path = ("environments", lowering.system.environment.name, "kubernetes", "edge", "remoteWrite")
    origin = lowering.origin(path)
    name = edge.agent_name(lowering.system)
    for suffix, kind in (("serviceaccount", SERVICE_ACCOUNT), ("role", "Role")):
        yield Planned(names.logical(name, suffix), origin, kind, name)
    yield Planned(names.logical(name, "rolebinding"), origin, "RoleBinding", name)
    reader = edge.node_reader_name(lowering)
    yield Planned(names.logical(name, "clusterrole"), origin, "ClusterRole", reader)
    yield Planned(names.logical(name, "clusterrolebinding"), origin, "ClusterRoleBinding", reader)
    yield Planned(names.logical(name, "prometheusagent"), origin, "PrometheusAgent", name)


def _secret(lowering: Lowering, secret: ir.Secret) -> Iterator[Planned]:
    if secret.scheme == "k8s":
        namespace, _, rest = secret.ref.removeprefix("k8s://").partition("/")
        if namespace == lowering.namespace:  # else refused (secrets.check_namespace)
            yield Planned("", secret.origin, "Secret", rest.partition("#")[0])
    elif secret.scheme == "env":
        yield Planned(names.logical(secret.name, "secret"), secret.origin, "Secret", secret.name)
    else:
        logical = names.logical(secret.name, "externalsecret")
        yield Planned(logical, secret.origin, "ExternalSecret", secret.name)
        yield Planned("", secret.origin, "Secret", secret.name)


def _model(lowering: Lowering, model: ir.Model) -> Iterator[Planned]:
    if model.serving.rollout.strategy == "shadow":
        return  # refused by checks.check_spec
    m, serving = model.name, model.serving
    base: SpecPath = ("models", m)
    yield Planned(names.model_component(m), model.origin)
    if model.inputs:
        origin = lowering.origin((*base, "inputs"))
        yield Planned(
            names.logical(m, "configmap"), origin, "ConfigMap", names.data_sources_config(m)
        )
    yield Planned(names.logical(m, "serviceaccount"), model.origin, SERVICE_ACCOUNT, m)
    progressive = serving.rollout.strategy != "rolling"
    slas = rollouts.gating_slas(lowering.system, model) if progressive else []
    if slas:
        name = names.analysis_template(m)
        yield Planned(
            names.logical(m, "analysistemplate"), slas[0].origin, "AnalysisTemplate", name
        )
    kind = "Rollout" if progressive else "Deployment"
    if kind == "Deployment" and edge.edge_of(lowering) is not None:
        kind = "DaemonSet"
    path = (*base, "serving", "rollout" if progressive else "replicas")
    yield Planned(names.logical(m, kind.lower()), lowering.origin(path), kind, m)
    yield from _service_objects(lowering, model, kind)
    if lowering.system.security.default_deny:
        yield _policy(m, "networkpolicy", model.origin, m)
        if model.training is not None:
            origin = lowering.origin((*base, "training"))
            yield _policy(m, "training-networkpolicy", origin, names.training(m))
    yield from _training(lowering, model)
    yield from _job(lowering, model, "batch", (*base, "batch"), model.batch is not None)
    drift = model.drift is not None and model.drift.job is not None
    yield from _job(lowering, model, "drift", (*base, "monitoring", "drift", "job"), drift)


def _service_objects(lowering: Lowering, model: ir.Model, workload: str) -> Iterator[Planned]:
    m, serving = model.name, model.serving
    path: SpecPath = ("models", m, "serving")
    yield Planned(names.logical(m, "service"), lowering.origin((*path, "port")), "Service", m)
    if serving.rollout.strategy == "blueGreen":
        origin = lowering.origin((*path, "rollout"))
        name = names.preview_service(m)
        yield Planned(names.logical(m, "preview-service"), origin, "Service", name)
    if serving.autoscaling_metric is not None:
        origin = lowering.origin((*path, "autoscaling"))
        yield Planned(names.logical(m, "hpa"), origin, "HorizontalPodAutoscaler", m)
    if serving.replicas_min >= 2 and workload != "DaemonSet":
        origin = lowering.origin((*path, "replicas"))
        yield Planned(names.logical(m, "pdb"), origin, "PodDisruptionBudget", m)
    origin = lowering.origin((*path, "metricsPath"))
    if edge.agent_scrapes(lowering):
        yield Planned(names.logical(m, "podmonitor"), origin, "PodMonitor", m)
    else:
        yield Planned(names.logical(m, "servicemonitor"), origin, "ServiceMonitor", m)
    if serving.exposure == "public" and serving.ingress is not None:
        from mlplane.targets.kubernetes.checks import public_allowed

        if public_allowed(lowering.system, model):
            origin = lowering.origin((*path, "ingress"))
            yield Planned(names.logical(m, "ingress"), origin, "Ingress", m)


def _training(lowering: Lowering, model: ir.Model) -> Iterator[Planned]:
    training, m = model.training, model.name
    if training is None:
        return
    path: SpecPath = ("models", m, "training")
    origin = lowering.origin(path)
    if training.engine != "kubeflow":
        yield Planned(names.logical(names.training(m), "serviceaccount"), model.origin,
                      SERVICE_ACCOUNT, names.training(m))  # fmt: skip
        yield Planned(names.logical(m, "cronjob"), origin, "CronJob", names.training(m))
        return
    tensorboard = training.tensorboard
    logs = (training.logs or "").partition("://")[0]
    if tensorboard and logs not in TENSORBOARD_SCHEMES:
        return  # refused at training.logs
    yield Planned(names.logical(m, "pipeline"), origin, "Pipeline", names.training(m))
    yield Planned(names.logical(m, "pipelineversion"), origin)  # named after a digest
    yield Planned(names.logical(m, "recurring-run"), origin, "ConfigMap",
                  names.logical(m, "recurring-run"))  # fmt: skip
    if lowering.system.security.default_deny:
        engine = lowering.origin((*path, "engine"))
        yield _policy(m, "kubeflow-networkpolicy", engine, names.logical(m, "kubeflow-pipelines"))
    if tensorboard:
        board = lowering.origin((*path, "tensorboard"))
        yield Planned(names.logical(m, "tensorboard"), board, "Tensorboard", tensorboard_name(m))
        if lowering.system.security.default_deny:
            yield _policy(m, "tensorboard-networkpolicy", board, tensorboard_name(m))


def _job(
    lowering: Lowering, model: ir.Model, what: str, path: SpecPath, present: bool
) -> Iterator[Planned]:
    """A batch or drift job: its service account, CronJob and (default deny) NetworkPolicy."""
    if not present:
        return
    m, origin = model.name, lowering.origin(path)
    job = f"{m}-{what}"
    yield Planned(names.logical(job, "serviceaccount"), origin, SERVICE_ACCOUNT, job)
    yield Planned(names.logical(m, f"{what}-cronjob"), origin, "CronJob", job)
    if lowering.system.security.default_deny:
        yield _policy(m, f"{what}-networkpolicy", origin, job)


def _alerting(lowering: Lowering, sources: set[str]) -> Iterator[Planned]:
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
        yield Planned(names.logical(name, f"{prefix}{suffix}"), secret.origin)
    if alerting.settings_of(system).alertmanager != alerting.FILE_MODE:
        logical = names.logical(system.name, "alertmanagerconfig")
        origin = lowering.origin(("alerting",))
        yield Planned(logical, origin, "AlertmanagerConfig", system.name)
