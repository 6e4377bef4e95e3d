"""Scheduled batch scoring (``models.<name>.batch``): a CronJob of an Indexed Job.

Each run is one Job of ``parallelism`` shards: ``completionMode: Indexed`` with as many
completions as pods run at once, so every pod reads its shard number from
``JOB_COMPLETION_INDEX`` (set by Kubernetes) and the shard count from
``MLPLANE_BATCH_SHARDS``. A failed shard is retried ``retries`` times on its own
(``backoffLimitPerIndex``) while the others go on; a run is stopped at the spec's timeout. The
schedule is read in UTC, runs never overlap, and finished Jobs are cleaned up after a day, as
for training (``training.py``).

The pod is the hardened pod of every workload (``pods.py``): Pod Security ``restricted``, a
read-only root file system, no service account token, requests equal to limits, GPU
tolerations and node selector when it asks for GPUs, scratch and ``/dev/shm`` sized to the job
(``storage.job_storage``). It reaches its data with the model's secrets, mounted as files, and
sees every URI it reads or writes as an environment variable: ``MLPLANE_BATCH_INPUT_<NAME>``,
``MLPLANE_BATCH_OUTPUT_<NAME>``, with ``MLPLANE_BATCH_CONTENT_TYPE`` and
``MLPLANE_BATCH_SPLIT``. Under default deny its NetworkPolicy admits nothing in and lets it
out only to the model's own egress (its allows, its inputs, its artifact) and to the batch's
inputs and outputs.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.ir import Origin
from mlplane.targets.kubernetes import codes, mesh, names, network, pods, secrets, serving, storage
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.training import (
    HISTORY,
    JOB_TTL_SECONDS,
    STARTING_DEADLINE_SECONDS,
    TIME_ZONE,
)

COMPONENT = names.BATCH
"""The ``app.kubernetes.io/component`` of the scoring pods."""
DEFAULTS = pods.Quantities(cpu="1", memory="2Gi")
"""Requests and limits of a scoring pod whose spec gives none."""


def job_name(model: str) -> str:
    return f"{model}-batch"


def batch_env(lowering: Lowering, model: ir.Model, batch: ir.Batch) -> list[dict[str, Any]]:
    """What the scoring command reads: the model's identity and artifact, every URI it reads
    and writes, its shard count, the records' media type and how they are split."""
    sources = lowering.system.data_sources
    env = serving.config_env(model, None)
    for role, listed in (("input", batch.inputs), ("output", batch.outputs)):
        env += [
            {"name": names.env_var("mlplane-batch", role, name), "value": sources[name].uri}
            for name in listed
        ]
    env += [
        {"name": "MLPLANE_BATCH_SHARDS", "value": str(batch.parallelism)},
        {"name": "MLPLANE_BATCH_CONTENT_TYPE", "value": batch.content_type},
        {"name": "MLPLANE_BATCH_SPLIT", "value": batch.split},
    ]
    return env


def batch_quantities(lowering: Lowering, model: ir.Model, batch: ir.Batch) -> pods.Quantities:
    """The CPU and memory of the model's batch scoring (``pods.quantities``)."""
    origin = lowering.origin(("models", model.name, "batch", "resources"))
    what = f"the batch scoring of model {model.name!r}"
    return pods.quantities(lowering, batch.resources, DEFAULTS, origin, what)


def pod_template(
    lowering: Lowering, model: ir.Model, batch: ir.Batch, inputs: pods.PodInputs
) -> dict[str, Any]:
    chosen = batch_quantities(lowering, model, batch)
    requirements = pods.resource_requirements(chosen, batch.resources.gpu)
    main = pods.container("scorer", batch.image, requirements, inputs)
    if batch.command:
        main["command"] = list(batch.command)
    spec = pods.pod_spec(job_name(model.name), main, inputs, batch.resources.gpu)
    memory = storage.memory_of(batch.resources, DEFAULTS)
    storage.apply(spec, storage.job_storage(batch.resources, memory))
    spec["restartPolicy"] = "Never"
    template = pods.pod_template(names.workload_labels(lowering.system, model, COMPONENT), spec)
    annotations = mesh.job_pod_annotations(lowering)
    if annotations:
        template["metadata"]["annotations"] = annotations
    return template


def cron_job(
    lowering: Lowering, model: ir.Model, batch: ir.Batch, inputs: pods.PodInputs
) -> dict[str, Any]:
    labels = names.workload_labels(lowering.system, model, COMPONENT)
    job = {
        "completionMode": "Indexed",
        "completions": batch.parallelism,
        "parallelism": batch.parallelism,
        "backoffLimitPerIndex": batch.retries,
        "activeDeadlineSeconds": int(batch.timeout_seconds),
        "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
        "template": pod_template(lowering, model, batch, inputs),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": lowering.metadata(job_name(model.name), labels),
        "spec": {
            "schedule": batch.schedule,
            "timeZone": TIME_ZONE,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": HISTORY,
            "failedJobsHistoryLimit": HISTORY,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": job},
        },
    }


# --- network -------------------------------------------------------------------------------------


def egress_rules(lowering: Lowering, model: ir.Model, batch: ir.Batch) -> list[network.Rule]:
    """The model's own egress, and the hosts of the batch's inputs and outputs."""
    rules = network.egress_rules(lowering, model)
    sources = lowering.system.data_sources
    for field, listed in (("inputs", batch.inputs), ("outputs", batch.outputs)):
        origin = lowering.origin(("models", model.name, "batch", field))
        for name in listed:
            what = f"data source {name!r}"
            found = network.uri_rule(lowering, sources[name].uri, (), origin, what)
            if found is not None:
                rules.append(found)
    return network.unique(rules)


def network_policy(lowering: Lowering, model: ir.Model, batch: ir.Batch) -> dict[str, Any]:
    labels = names.workload_labels(lowering.system, model, COMPONENT)
    selector = names.selector(model.name, COMPONENT)
    body = network.policy(lowering, job_name(model.name), labels, selector, ["Ingress", "Egress"])
    body["spec"]["egress"] = egress_rules(lowering, model, batch)
    return body


def check_open_egress(lowering: Lowering) -> None:
    """Batch data sources no model reads as an input (``network.check_open_egress`` covers
    those) whose host the policies cannot select: reached at every address, said once each."""
    system = lowering.system
    read = {name for model in system.models.values() for name in model.inputs}
    writers: dict[str, set[str]] = {}
    for model in system.models.values():
        if model.batch is not None:
            for name in (*model.batch.inputs, *model.batch.outputs):
                writers.setdefault(name, set()).add(model.name)
    for name, models in sorted(writers.items()):
        target = network.uri_target(system.data_sources[name].uri)
        if name in read or target.local or target.port is None:
            continue
        if network.host_peers(lowering, target, "egress"):
            continue
        origin = lowering.origin(("dataSources", name, "uri"))
        _open_egress(lowering, origin, name, target, sorted(models))


def _open_egress(
    lowering: Lowering, origin: Origin, name: str, target: network.UriTarget, models: list[str]
) -> None:
    environment = lowering.system.environment.name
    pods_of = ", ".join(repr(m) for m in models)
    lowering.diagnostics.warning(
        codes.EGRESS_OPEN,
        f"egress to data source {name!r} (host {target.host!r}) is open to every address on "
        f"port {target.port} for the batch scoring pods of {pods_of}: a NetworkPolicy selects "
        "peers by address or label, never by DNS name",
        origin.location,
        origin.path,
        hint=f"say where {target.host!r} is under environments.{environment}.kubernetes.hosts "
        "(cidr:ADDRESS/PREFIX, namespace:NAME or internet), or name it by IP address or as an "
        "in-cluster Service (NAME.NAMESPACE.svc)",
    )


# --- lowering ------------------------------------------------------------------------------------


def check_batch(lowering: Lowering, model: ir.Model) -> None:
    batch = model.batch
    if batch is not None:
        storage.check_shm(lowering, model.name, "batch", batch.resources, DEFAULTS)


def lower_batch(
    lowering: Lowering,
    model: ir.Model,
    sources: dict[str, secrets.SecretSource],
    parent: str,
) -> None:
    """The scoring service account, CronJob and (under default deny) NetworkPolicy."""
    batch = model.batch
    if batch is None:
        return
    origin = lowering.origin(("models", model.name, "batch"))
    labels = names.workload_labels(lowering.system, model, COMPONENT)
    account = names.logical(job_name(model.name), "serviceaccount")
    body = serving.service_account(lowering, job_name(model.name), labels)
    lowering.add(account, body, origin, parent)
    inputs = pods.PodInputs(env=batch_env(lowering, model, batch))
    secret_needs = secrets.mount_secrets(model, sources, inputs)
    job = cron_job(lowering, model, batch, inputs)
    logical = names.logical(model.name, "batch-cronjob")
    lowering.add(logical, job, origin, parent, (account, *secret_needs))
    if lowering.system.security.default_deny:
        policy = network_policy(lowering, model, batch)
        lowering.add(names.logical(model.name, "batch-networkpolicy"), policy, origin, parent)
