"""The drift job of a model (``monitoring.drift.job``): a CronJob running ``python -m mlplane.drift``.

Each run reads the job's ``reference`` sample and the last window of its ``current`` data
source (two of the model's inputs, objectStores on s3:// or gs://), scores every monitored
feature with the drift method and pushes ``mlplane_model_drift_score{namespace, model,
feature}`` to the Pushgateway, which the SLO rules read (``targets/monitoring/sli.py``).

It runs on the window's schedule: once per window (:func:`schedule_of`; 1h hourly, 1d daily,
7d weekly) unless ``job.schedule`` says otherwise, in UTC, never overlapping, stopped at the
job's timeout. The pod is the hardened pod of every workload (``pods.py``: Pod Security
``restricted``, a read-only root file system, no service account token, requests equal to
limits, a sized ``/tmp``), with its own service account (``<model>-drift``). It gets the
model's data access and nothing more: two of the model's inputs (the resolver checks it), no
secret (it reads object stores, whose clients take their credentials from the pod's
environment: an IAM role or workload identity bound to its service account), and under default
deny a NetworkPolicy that admits nothing in and lets it out only to the hosts of its two data
sources and to the Pushgateway.

The image is the spec's (``job.image``): mlplane publishes none; any image with
``mlplane[drift]`` installed runs the job. The images policy pins it by digest in production.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.targets.kubernetes import codes, mesh, names, network, pods, serving, storage
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.training import (
    HISTORY,
    JOB_TTL_SECONDS,
    STARTING_DEADLINE_SECONDS,
    TIME_ZONE,
)

COMPONENT = "drift"
"""The ``app.kubernetes.io/component`` of the drift job's pods."""
DEFAULTS = pods.Quantities(cpu="500m", memory="1Gi")
"""Requests and limits of a drift job whose spec gives none."""
READABLE_SCHEMES = ("s3", "gs")
"""What the job reads from inside a pod (a file:// path names no volume of the pod)."""
COMMAND = ("python", "-m", "mlplane.drift")
HTTP_PORTS = {"http": 80, "https": 443}

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86400, 7 * 86400


def job_name(model: str) -> str:
    return f"{model}-drift"


def _job_path(model: ir.Model, *rest: str) -> SpecPath:
    return ("models", model.name, "monitoring", "drift", "job", *rest)


def schedule_of(window_seconds: float) -> str | None:
    """A cron schedule that runs once per window, or None when cron cannot repeat it (a
    window that does not divide an hour, a day or a week evenly, or is shorter than a minute)."""
    seconds = int(window_seconds)
    if seconds != window_seconds or seconds < MINUTE or seconds % MINUTE:
        return None
    minutes = seconds // MINUTE
    if seconds < HOUR:
        return f"*/{minutes} * * * *" if HOUR % seconds == 0 else None
    if seconds < DAY:
        hours = seconds // HOUR
        if seconds % HOUR or DAY % seconds:
            return None
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if seconds == DAY:
        return "0 0 * * *"
    if seconds == WEEK:
        return "0 0 * * 0"
    return None


def job_schedule(model: ir.Model, job: ir.DriftJob) -> str | None:
    if job.schedule is not None:
        return job.schedule
    assert model.drift is not None
    return schedule_of(model.drift.window_seconds)


# --- checks --------------------------------------------------------------------------------------


def check_drift(lowering: Lowering, model: ir.Model) -> None:
    """A drift job reads objectStores on s3:// or gs:// and runs on a cron schedule."""
    drift = model.drift
    if drift is None or drift.job is None:
        return
    job = drift.job
    for field, name in (("reference", job.reference), ("current", job.current)):
        source = lowering.system.data_sources.get(name)
        if source is None:
            continue  # reported by the resolver
        scheme = urlsplit(source.uri).scheme
        if source.type != "objectStore" or scheme not in READABLE_SCHEMES:
            path = _job_path(model, field)
            lowering.diagnostics.error(
                codes.DRIFT_JOB,
                f"the drift job of model {model.name!r} cannot read data source {name!r} "
                f"({source.type} at a {scheme}:// URI): it reads Parquet or CSV files of an "
                "objectStore on " + " or ".join(f"{s}://" for s in READABLE_SCHEMES),
                lowering.location(path),
                path,
                hint="write the samples the job compares to an objectStore data source (such "
                "as the model's captured inputs) and name it here",
            )
    if job.schedule is None and schedule_of(drift.window_seconds) is None:
        path = ("models", model.name, "monitoring", "drift", "window")
        lowering.diagnostics.error(
            codes.DRIFT_JOB,
            f"the drift window of model {model.name!r} has no cron schedule that runs the "
            "drift job once per window (cron repeats windows that divide an hour or a day, a "
            "day and a week)",
            lowering.location(path),
            path,
            hint="set monitoring.drift.job.schedule, such as '0 6 * * *'",
        )


# --- objects -------------------------------------------------------------------------------------


def arguments(lowering: Lowering, model: ir.Model, drift: ir.Drift, job: ir.DriftJob) -> list[str]:
    """The job's command line: no shell, every value one argument."""
    sources = lowering.system.data_sources
    found = ["--namespace", lowering.namespace, "--model", model.name, "--method", drift.method]
    for feature in drift.features:
        found += ["--feature", feature]
    found += ["--reference", sources[job.reference].uri, "--current", sources[job.current].uri]
    found += ["--format", job.format, "--max-rows", str(job.max_rows)]
    if job.timestamp_column is not None:
        window = str(int(drift.window_seconds))
        found += ["--timestamp-column", job.timestamp_column, "--window-seconds", window]
    return [*found, "--pushgateway", job.pushgateway]


def job_quantities(lowering: Lowering, model: ir.Model, job: ir.DriftJob) -> pods.Quantities:
    """The CPU and memory of the model's drift job (``pods.quantities``)."""
    origin = lowering.origin(_job_path(model, "resources"))
    what = f"the drift job of model {model.name!r}"
    return pods.quantities(lowering, job.resources, DEFAULTS, origin, what)


def pod_template(
    lowering: Lowering, model: ir.Model, drift: ir.Drift, job: ir.DriftJob, inputs: pods.PodInputs
) -> dict[str, Any]:
    chosen = job_quantities(lowering, model, job)
    main = pods.container("drift", job.image, pods.resource_requirements(chosen, 0), inputs)
    main["command"] = list(COMMAND)
    main["args"] = arguments(lowering, model, drift, job)
    spec = pods.pod_spec(job_name(model.name), main, inputs, 0)
    memory = storage.memory_of(job.resources, DEFAULTS)
    storage.apply(spec, storage.job_storage(job.resources, memory))
    spec["restartPolicy"] = "Never"
    template = pods.pod_template(names.workload_labels(lowering.system, model, COMPONENT), spec)
    annotations = mesh.job_pod_annotations(lowering)
    if annotations:
        template["metadata"]["annotations"] = annotations
    return template


def cron_job(
    lowering: Lowering, model: ir.Model, drift: ir.Drift, job: ir.DriftJob, inputs: pods.PodInputs
) -> dict[str, Any]:
    labels = names.workload_labels(lowering.system, model, COMPONENT)
    run = {
        "activeDeadlineSeconds": int(job.timeout_seconds),
        "backoffLimit": 1,
        "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
        "template": pod_template(lowering, model, drift, job, inputs),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": lowering.metadata(job_name(model.name), labels),
        "spec": {
            "schedule": job_schedule(model, job),
            "timeZone": TIME_ZONE,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": HISTORY,
            "failedJobsHistoryLimit": HISTORY,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": run},
        },
    }


# --- network -------------------------------------------------------------------------------------


def pushgateway_rule(lowering: Lowering, model: ir.Model, job: ir.DriftJob) -> network.Rule:
    """Egress to the Pushgateway's host on its port; to every address (said at its line) when
    the policies cannot select its host."""
    parts = urlsplit(job.pushgateway)
    port = parts.port or HTTP_PORTS[parts.scheme]
    target = dataclasses.replace(network.uri_target(job.pushgateway), port=port)
    peers = network.host_peers(lowering, target, "egress")
    if peers is None:
        path = _job_path(model, "pushgateway")
        lowering.diagnostics.warning(
            codes.EGRESS_OPEN,
            f"egress to the Pushgateway (host {target.host!r}) is open to every address on port "
            f"{port} for the drift job of model {model.name!r}: a NetworkPolicy selects peers by "
            "address or label, never by DNS name",
            lowering.location(path),
            path,
            hint="name it as an in-cluster Service (NAME.NAMESPACE.svc) or say where its host is "
            f"under environments.{lowering.system.environment.name}.kubernetes.hosts",
        )
    return network.rule("egress", peers or [], (port,))


def egress_rules(lowering: Lowering, model: ir.Model, job: ir.DriftJob) -> list[network.Rule]:
    """The hosts of the two data sources, and the Pushgateway: nothing else."""
    rules: list[network.Rule] = []
    for field, name in (("reference", job.reference), ("current", job.current)):
        uri = lowering.system.data_sources[name].uri
        origin = lowering.origin(_job_path(model, field))
        found = network.uri_rule(lowering, uri, (), origin, f"data source {name!r}")
        if found is not None:
            rules.append(found)
    rules.append(pushgateway_rule(lowering, model, job))
    return network.unique(rules)


def network_policy(lowering: Lowering, model: ir.Model, job: ir.DriftJob) -> dict[str, Any]:
    labels = names.workload_labels(lowering.system, model, COMPONENT)
    selector = names.selector(model.name, COMPONENT)
    body = network.policy(lowering, job_name(model.name), labels, selector, ["Ingress", "Egress"])
    body["spec"]["egress"] = egress_rules(lowering, model, job)
    return body


# --- lowering ------------------------------------------------------------------------------------


def lower_drift(lowering: Lowering, model: ir.Model, parent: str) -> None:
    """The drift job's service account, CronJob and (under default deny) NetworkPolicy."""
    drift = model.drift
    if drift is None or drift.job is None:
        return
    job = drift.job
    origin = lowering.origin(_job_path(model))
    labels = names.workload_labels(lowering.system, model, COMPONENT)
    account = names.logical(job_name(model.name), "serviceaccount")
    lowering.add(
        account, serving.service_account(lowering, job_name(model.name), labels), origin, parent
    )
    body = cron_job(lowering, model, drift, job, pods.PodInputs())
    lowering.add(names.logical(model.name, "drift-cronjob"), body, origin, parent, (account,))
    if lowering.system.security.default_deny:
        policy = network_policy(lowering, model, job)
        lowering.add(names.logical(model.name, "drift-networkpolicy"), policy, origin, parent)
