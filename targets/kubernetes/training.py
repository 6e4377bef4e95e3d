"""Scheduled training: a CronJob with the same hardened pod as serving.

The schedule is read in UTC (``timeZone: Etc/UTC``), not in the controller's local time zone,
so the spec means the same thing on every cluster. Runs never overlap (``Forbid``), are killed
at the spec's timeout, retried once, and cleaned up a day after they finish. Scratch space and
(for GPU jobs) ``/dev/shm`` are sized to the job (``storage.job_storage``).
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import ir
from mlplane.targets.kubernetes import names, pods, storage
from mlplane.targets.kubernetes.context import Lowering

TIME_ZONE = "Etc/UTC"
STARTING_DEADLINE_SECONDS = 3600
JOB_TTL_SECONDS = 86400
HISTORY = 3


def training_quantities(
    lowering: Lowering, model: ir.Model, training: ir.Training
) -> pods.Quantities:
    """The CPU and memory of the model's training, on either engine (``pods.quantities``)."""
    origin = lowering.origin(("models", model.name, "training", "resources"))
    what = f"the training of model {model.name!r}"
    return pods.quantities(lowering, training.resources, pods.TRAINING_DEFAULTS, origin, what)


def training_template(
    lowering: Lowering, model: ir.Model, training: ir.Training, inputs: pods.PodInputs
) -> dict[str, Any]:
    chosen = training_quantities(lowering, model, training)
    requirements = pods.resource_requirements(chosen, training.resources.gpu)
    main = pods.container("trainer", training.image, requirements, inputs)
    spec = pods.pod_spec(names.training(model.name), main, inputs, training.resources.gpu)
    memory = storage.memory_of(training.resources, pods.TRAINING_DEFAULTS)
    storage.apply(spec, storage.job_storage(training.resources, memory))
    spec["restartPolicy"] = "Never"
    return pods.pod_template(names.workload_labels(lowering.system, model, names.TRAINING), spec)


def cron_job(
    lowering: Lowering, model: ir.Model, training: ir.Training, inputs: pods.PodInputs
) -> dict[str, Any]:
    labels = names.workload_labels(lowering.system, model, names.TRAINING)
    job = {
        "activeDeadlineSeconds": int(training.timeout_seconds),
        "backoffLimit": 1,
        "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
        "template": training_template(lowering, model, training, inputs),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": lowering.metadata(names.training(model.name), labels),
        "spec": {
            "schedule": training.schedule,
            "timeZone": TIME_ZONE,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": HISTORY,
            "failedJobsHistoryLimit": HISTORY,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": job},
        },
    }
