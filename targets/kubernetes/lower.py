"""Lowering a system model to the Kubernetes resource graph of one environment.

The graph is a tree for ``pulumi preview``: a ``mlplane:index:System`` component holds the
namespace-level objects (Namespace, network defaults, secrets) and one ``mlplane:index:Model``
component per model, which holds that model's objects. Each step below is one small function;
``lower`` runs them in order, then checks the generated names, and returns no graph when it
reported an error, so a half-lowered system never reaches the emitters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.targets.kubernetes import (
    alerting,
    batch,
    checks,
    drift,
    edge,
    ingress,
    kubeflow,
    mesh,
    names,
    network,
    rollouts,
    secrets,
    serving,
    training,
)
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.pods import PodInputs
from mlplane.targets.kubernetes.reuse import Keys, Reuse, Unit
from mlplane.targets.monitoring.emit import sla_rule_spec

TARGET_NAME = "kubernetes"
POD_SECURITY_MODES = ("enforce", "audit", "warn")
BLUE_GREEN_CONTROLLER_FIELDS = ("spec.selector",)
"""Fields of a blue-green Service that the Argo Rollouts controller takes over after creation."""


def lower(
    system: ir.System, diagnostics: Diagnostics, reuse: Reuse | None = None
) -> ResourceGraph | None:
    """The resource graph of ``system``, or None when the spec cannot be lowered (see the
    diagnostics, each located at the spec line at fault). With ``reuse``, each model and each
    SLA's rule object is a unit (``reuse.py``): one whose key is in ``reuse.known`` is taken
    from there, and every unit is recorded in ``reuse.made``."""
    found = Diagnostics()
    lowering = Lowering(system, found)
    checks.check_spec(lowering)
    root = lower_system(lowering)
    sources = secrets.lower_secrets(lowering, root)
    keys = Keys(lowering) if reuse is not None else None
    for _, model in sorted(system.models.items()):
        step = _model_step(lowering, model, sources, root)
        _unit(lowering, reuse, keys.of_model(model) if keys else "", step)
    if system.security.default_deny:
        batch.check_open_egress(lowering)
    for _, sla in sorted(system.slas.items()):
        step = _sla_step(lowering, sla, root)
        _unit(lowering, reuse, keys.of_sla(sla) if keys else "", step)
    alerting.lower_alerting(lowering, sources, root)
    checks.check_names(lowering)
    diagnostics.extend(found)
    if found.has_errors:
        return None
    return ResourceGraph.build(system.environment.name, TARGET_NAME, lowering.resources)


def _model_step(
    lowering: Lowering, model: ir.Model, sources: dict[str, secrets.SecretSource], root: str
) -> Callable[[], None]:
    return lambda: lower_model(lowering, model, sources, root)


def _sla_step(lowering: Lowering, sla: ir.Sla, root: str) -> Callable[[], None]:
    return lambda: lower_slo_rule(lowering, sla, root)


def _unit(lowering: Lowering, reuse: Reuse | None, key: str, step: Callable[[], None]) -> None:
    """Run ``step`` (one unit), or take what it added from ``reuse`` when the key is known.

    The unit's diagnostics are collected apart, then added as ``step`` would have added them,
    so that a unit is what the step reports whatever came before it."""
    if reuse is None:
        step()
        return
    known = reuse.known.get(key)
    if isinstance(known, Unit):
        reuse.reused += 1
        lowering.resources.extend(known.resources)
        lowering.taken.update(map(id, known.resources))
        lowering.claims.extend(known.claims)
        lowering.diagnostics.extend(known.diagnostics)
        reuse.made[key] = known
        return
    resources, claims, shared = len(lowering.resources), len(lowering.claims), lowering.diagnostics
    lowering.diagnostics = Diagnostics()
    try:
        step()
        own = tuple(lowering.diagnostics.items)
    finally:
        lowering.diagnostics = shared
    shared.extend(own)
    made = Unit(tuple(lowering.resources[resources:]), tuple(lowering.claims[claims:]), own)
    reuse.made[key] = made


def lower_system(lowering: Lowering) -> str:
    """The system component, its Namespace and the namespace-wide network policies."""
    system = lowering.system
    root = names.system_component(system)
    origin = lowering.origin(("metadata",))
    lowering.add_component(root, names.SYSTEM_COMPONENT_TYPE, origin, None)
    env_path = ("environments", system.environment.name, "kubernetes", "namespace")
    lowering.add(lowering.namespace_resource, namespace(lowering), lowering.origin(env_path), root)
    mesh.lower_mesh(lowering, root)
    edge.lower_environment(lowering, root)
    if system.security.default_deny:
        network.lower_namespace_policies(lowering, root)
        ingress.lower_solver_policy(lowering, root)
        network.check_unenforced_allows(lowering)
        network.check_open_egress(lowering)
    return root


def lower_slo_rule(lowering: Lowering, sla: ir.Sla, root: str) -> None:
    """The SLO recording and alerting rules of ``sla`` as one PrometheusRule (Prometheus
    Operator): the group ``monitoring/rules.yaml`` holds for it, so the cluster's Prometheus loads
    what was planned (``monitoring.emit.sla_rule_spec``). One per SLA, so that no object grows
    with the system (see ``monitoring.emit.prometheus_rule_specs``) and a plan shows which SLA's
    rules change."""
    system, name = lowering.system, sla.name
    body = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": names.logical(name, "slo"),
            "namespace": lowering.namespace,
            "labels": alerting.monitoring_labels(
                system, {**names.system_labels(system), names.SLA_LABEL: name}
            ),
        },
        "spec": sla_rule_spec(system, sla),
    }
    origin = lowering.origin(("slas", name))
    lowering.add(names.logical(name, "prometheusrule"), body, origin, root)


def namespace(lowering: Lowering) -> dict[str, Any]:
    """The Namespace, labelled so that Pod Security admission enforces ``restricted``, and
    for the environment's mesh (``mesh.py``)."""
    labels = dict(names.system_labels(lowering.system))
    for mode in POD_SECURITY_MODES:
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    labels.update(mesh.namespace_labels(lowering))
    metadata: dict[str, Any] = {"name": lowering.namespace, "labels": labels}
    annotations = mesh.namespace_annotations(lowering)
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def lower_model(
    lowering: Lowering, model: ir.Model, sources: dict[str, secrets.SecretSource], root: str
) -> None:
    if not _lowered(model):
        return  # reported by checks.check_spec
    component = names.model_component(model.name)
    lowering.add_component(component, names.MODEL_COMPONENT_TYPE, model.origin, root)
    config = _add_config(lowering, model, component)
    needs = _add_service_account(lowering, model, model.name, names.SERVING, component)
    if config is not None:
        needs += (names.logical(model.name, "configmap"),)
    target = _add_workload(lowering, model, config, sources, component, needs)
    _add_service_objects(lowering, model, target, component)
    if lowering.system.security.default_deny:
        network.lower_model_policies(lowering, model, component)
    if model.training is not None:
        _add_training(lowering, model, model.training, config, sources, component, needs)
    batch.lower_batch(lowering, model, sources, component)
    drift.lower_drift(lowering, model, component)


def _lowered(model: ir.Model) -> bool:
    """Whether the lowering builds ``model``'s objects (not a shadow rollout's, refused)."""
    return model.serving.rollout.strategy != "shadow"


def check_network(lowering: Lowering) -> None:
    """The warnings the network policies of a lowering report, without building them: the
    egress left open to every address (a host no policy can select), a host without a known
    port, an allow no rule can express. ``mlplane validate`` reports them with what
    ``checks.check_spec`` refuses (the target's ``check``), so that it warns of what the build
    warns of. It asks the functions that make the rules of each policy, for the workloads the
    lowering makes policies for (under default deny); the rules themselves are dropped."""
    system = lowering.system
    if not system.security.default_deny:
        return
    network.check_unenforced_allows(lowering)
    network.check_open_egress(lowering)
    for _, model in sorted(system.models.items()):
        if not _lowered(model):
            continue
        network.egress_rules(lowering, model)
        network.ingress_rules(lowering, model)
        training = model.training
        if training is not None and training.engine == "kubeflow" and training.tensorboard:
            kubeflow.tensorboard_egress(lowering, model, training)
        if model.batch is not None:
            batch.egress_rules(lowering, model, model.batch)
        if model.drift is not None and model.drift.job is not None:
            drift.egress_rules(lowering, model, model.drift.job)
    batch.check_open_egress(lowering)


def check_resources(lowering: Lowering) -> None:
    """The notes of the workloads that give no CPU or memory (``pods.quantities``: the
    defaults are used), without building them, as :func:`check_network`: it asks the
    functions each workload's pod template takes its quantities from, for the workloads the
    lowering makes."""
    for _, model in sorted(lowering.system.models.items()):
        if not _lowered(model):
            continue
        serving.serving_quantities(lowering, model)
        if model.training is not None:
            training.training_quantities(lowering, model, model.training)
        if model.batch is not None:
            batch.batch_quantities(lowering, model, model.batch)
        if model.drift is not None and model.drift.job is not None:
            drift.job_quantities(lowering, model, model.drift.job)


def check_without_lowering(lowering: Lowering) -> None:
    """What ``mlplane validate`` reports of this target, which builds no graph: what the
    lowering refuses before it builds anything (``checks.check_spec``), what its network
    policies warn of (:func:`check_network`) and its notes of the workloads' default CPU and
    memory (:func:`check_resources`)."""
    checks.check_spec(lowering)
    check_network(lowering)
    check_resources(lowering)


def _add_config(lowering: Lowering, model: ir.Model, parent: str) -> dict[str, Any] | None:
    config = serving.data_sources_config(lowering, model)
    if config is not None:
        origin = lowering.origin(("models", model.name, "inputs"))
        lowering.add(names.logical(model.name, "configmap"), config, origin, parent)
    return config


def _add_service_account(
    lowering: Lowering, model: ir.Model, name: str, component: str, parent: str
) -> tuple[str, ...]:
    logical = names.logical(name, "serviceaccount")
    labels = names.workload_labels(lowering.system, model, component)
    body = serving.service_account(lowering, name, labels)
    lowering.add(logical, body, model.origin, parent)
    return (logical,)


def _pod_inputs(
    model: ir.Model, config: dict[str, Any] | None, sources: dict[str, secrets.SecretSource]
) -> tuple[PodInputs, tuple[str, ...]]:
    inputs = PodInputs(env=serving.config_env(model, config))
    needs = secrets.mount_secrets(model, sources, inputs)
    return inputs, needs


def _add_workload(
    lowering: Lowering,
    model: ir.Model,
    config: dict[str, Any] | None,
    sources: dict[str, secrets.SecretSource],
    parent: str,
    needs: tuple[str, ...],
) -> dict[str, Any]:
    inputs, secret_needs = _pod_inputs(model, config, sources)
    template = _add_analysis(lowering, model, parent)
    body = serving.workload(lowering, model, inputs, config, template)
    edge_settings = edge.edge_of(lowering)
    if edge_settings is not None and body["kind"] == "Deployment":
        body = edge.daemon_set(lowering, model, body, edge_settings)
    progressive = body["kind"] == "Rollout"
    path = ("models", model.name, "serving", "rollout" if progressive else "replicas")
    extra = (names.logical(model.name, "analysistemplate"),) if template else ()
    logical = names.logical(model.name, _WORKLOAD_SUFFIX[body["kind"]])
    lowering.add(logical, body, lowering.origin(path), parent, (*needs, *secret_needs, *extra))
    return body


_WORKLOAD_SUFFIX = {"Deployment": "deployment", "Rollout": "rollout", "DaemonSet": "daemonset"}


def _add_analysis(lowering: Lowering, model: ir.Model, parent: str) -> str | None:
    """The SLO gate of a progressive rollout, when the model has SLAs to gate on."""
    if model.serving.rollout.strategy not in ("canary", "blueGreen"):
        return None
    slas = rollouts.gating_slas(lowering.system, model)
    if not slas:
        return None
    body = rollouts.analysis_template(lowering, model, slas)
    lowering.add(names.logical(model.name, "analysistemplate"), body, slas[0].origin, parent)
    return str(body["metadata"]["name"])


def _add_service_objects(
    lowering: Lowering, model: ir.Model, target: dict[str, Any], parent: str
) -> None:
    """Service (and preview Service), autoscaler, disruption budget, scraping and ingress."""
    serving_path = ("models", model.name, "serving")
    workload = names.logical(model.name, _WORKLOAD_SUFFIX[target["kind"]])
    service_name = names.logical(model.name, "service")
    body = serving.service(lowering, model, model.name, names.SERVING)
    blue_green = model.serving.rollout.strategy == "blueGreen"
    # The Rollouts controller adds rollouts-pod-template-hash to a blue-green Service's selector
    # (an atomic map, so it becomes the selector's field manager): a re-apply must leave it be.
    owned = BLUE_GREEN_CONTROLLER_FIELDS if blue_green else ()
    origin = lowering.origin((*serving_path, "port"))
    lowering.add(service_name, body, origin, parent, ignore_changes=owned)
    if blue_green:
        preview = serving.service(lowering, model, names.preview_service(model.name), names.PREVIEW)
        origin = lowering.origin((*serving_path, "rollout"))
        logical = names.logical(model.name, "preview-service")
        lowering.add(logical, preview, origin, parent, ignore_changes=owned)
    if model.serving.autoscaling_metric is not None:
        hpa = serving.autoscaler(lowering, model, target)
        origin = lowering.origin((*serving_path, "autoscaling"))
        lowering.add(names.logical(model.name, "hpa"), hpa, origin, parent, (workload,))
        rule = serving.autoscaling_rule(lowering, model)
        if rule is not None:
            rule["metadata"]["labels"] = alerting.monitoring_labels(
                lowering.system, rule["metadata"]["labels"]
            )
            lowering.add(names.logical(model.name, "autoscaling-rules"), rule, origin, parent)
    if model.serving.replicas_min >= 2 and target["kind"] != "DaemonSet":
        pdb = serving.disruption_budget(lowering, model)
        origin = lowering.origin((*serving_path, "replicas"))
        lowering.add(names.logical(model.name, "pdb"), pdb, origin, parent)
    origin = lowering.origin((*serving_path, "metricsPath"))
    edge_settings = edge.edge_of(lowering)
    if edge_settings is not None and edge.agent_scrapes(lowering):  # buffers (edge.py)
        monitor = edge.pod_monitor(lowering, model, edge_settings)
        lowering.add(names.logical(model.name, "podmonitor"), monitor, origin, parent)
    else:
        monitor = serving.service_monitor(lowering, model)
        labels = monitor["metadata"]["labels"]
        monitor["metadata"]["labels"] = alerting.monitoring_labels(lowering.system, labels)
        logical = names.logical(model.name, "servicemonitor")
        lowering.add(logical, monitor, origin, parent, (service_name,))
    if model.serving.exposure == "public":
        _add_public_ingress(lowering, model, parent, service_name)


def _add_public_ingress(lowering: Lowering, model: ir.Model, parent: str, service: str) -> None:
    if not checks.public_allowed(lowering.system, model) or model.serving.ingress is None:
        return  # reported by checks.check_spec
    body = ingress.public_ingress(lowering, model, model.serving.ingress)
    origin = lowering.origin(("models", model.name, "serving", "ingress"))
    lowering.add(names.logical(model.name, "ingress"), body, origin, parent, (service,))


def _add_training(
    lowering: Lowering,
    model: ir.Model,
    spec: ir.Training,
    config: dict[str, Any] | None,
    sources: dict[str, secrets.SecretSource],
    parent: str,
    needs: tuple[str, ...],
) -> None:
    if spec.engine == "kubeflow":
        kubeflow.lower_training(lowering, model, spec, config, sources, parent)
        return
    account = names.training(model.name)
    own = _add_service_account(lowering, model, account, names.TRAINING, parent)
    shared = tuple(n for n in needs if n != names.logical(model.name, "serviceaccount"))
    inputs, secret_needs = _pod_inputs(model, config, sources)
    body = training.cron_job(lowering, model, spec, inputs)
    annotations = mesh.job_pod_annotations(lowering)
    if annotations:
        pod = body["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
        pod["annotations"] = {**pod.get("annotations", {}), **annotations}
    origin = lowering.origin(("models", model.name, "training"))
    logical = names.logical(model.name, "cronjob")
    lowering.add(logical, body, origin, parent, (*own, *shared, *secret_needs))
