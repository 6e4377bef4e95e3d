"""Model rules: accountability for personal data, supply chain, resources and availability."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Severity, SpecPath
from mlplane.compiler.policy.engine import Finding, RelatedPath
from mlplane.policies.common import (
    PACK,
    availability_slas,
    first_written,
    personal_upstream,
    through,
    written,
)
from mlplane.schema.base import Spec

HIGH_AVAILABILITY = 99.9
"""Objectives from here on cannot absorb a single-replica restart or an all-at-once rollout."""
DOCKER_HUB = "docker.io"
CPU_MEMORY_CHECKS = (
    *("CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13"),
    *("AVD-KSV-0011", "AVD-KSV-0015", "AVD-KSV-0016", "AVD-KSV-0018"),
)
"""CPU requests, CPU limits, memory requests, memory limits (Checkov, then Trivy)."""


def _images(model: ir.Model) -> Iterator[tuple[ir.ImageRef, SpecPath, str]]:
    yield model.image, ("models", model.name, "image"), "serving image"
    if model.training is not None:
        yield model.training.image, ("models", model.name, "training", "image"), "training image"
    if model.drift is not None and model.drift.job is not None:
        path = ("models", model.name, "monitoring", "drift", "job", "image")
        yield model.drift.job.image, path, "drift job image"
    if model.batch is not None and model.batch.image != model.image:
        yield model.batch.image, ("models", model.name, "batch", "image"), "batch image"


def _personal_reason(system: ir.System, model: ir.Model) -> str | None:
    personal = personal_upstream(system, model)
    if not personal:
        return None
    first = personal[0]
    return f"reads {first.classification} data ({through(system, model, first.name)})"


@PACK.rule(
    "models.explainability-required",
    title="Models that read PII or PHI declare explainability",
    severity=Severity.ERROR,
    rationale="People subject to automated decisions based on their personal data have a "
    "right to meaningful information about the logic involved (GDPR art. 13-15 and 22). A "
    "model that reads PII or PHI, directly or through lineage, must produce explanations "
    "(explainability.required: true with a method), so that a decision can be explained when "
    "someone asks.",
    remediation="set explainability: {required: true, method: shap} (or lime, "
    "integrated-gradients, anchors, counterfactual)",
    example="models:\n  scorer: {..., inputs: [customer-features]}",
    fix="models:\n  scorer:\n    inputs: [customer-features]\n"
    "    explainability: {required: true, method: shap}",
)
def explainability_required(system: ir.System) -> Iterator[Finding]:
    for model in system.models.values():
        reason = _personal_reason(system, model)
        if reason is not None and not model.explainability_required:
            path = first_written(
                system, ("models", model.name, "explainability"), ("models", model.name)
            )
            yield Finding(f"model {model.name!r} {reason} but does not require explanations", path)


@PACK.rule(
    "models.drift-monitored",
    title="Models that read PII or PHI are monitored for drift",
    severity=Severity.ERROR,
    rationale="A model that decides about people degrades silently when the population "
    "shifts, and the harm falls on individuals (unfair or wrong decisions) before anyone sees "
    "an error rate. Drift monitoring on the input features is the early warning; the AI Act "
    "requires post-market monitoring of high-risk systems.",
    remediation="add monitoring: {drift: {method: psi, threshold: 0.2, features: [...]}}",
    example="models:\n  scorer: {..., inputs: [customer-features]}",
    fix="models:\n  scorer:\n    inputs: [customer-features]\n    monitoring:\n"
    "      drift: {method: psi, threshold: 0.2, features: [age_band, income]}",
)
def drift_monitored(system: ir.System) -> Iterator[Finding]:
    for model in system.models.values():
        reason = _personal_reason(system, model)
        if reason is not None and model.drift is None:
            path = first_written(
                system, ("models", model.name, "monitoring"), ("models", model.name)
            )
            yield Finding(f"model {model.name!r} {reason} but has no drift monitoring", path)


def _digest_required(system: ir.System) -> str | None:
    if system.environment.production:
        return f"production environment {system.environment.name!r}"
    if system.security.require_digest:
        return "security.images.requireDigest"
    return None


@PACK.rule(
    "models.image-digest",
    title="Images are pinned by digest in production (and wherever requireDigest is set)",
    severity=Severity.ERROR,
    mandatory=True,
    mirrors=("CKV_K8S_43",),
    rationale="A tag is a movable pointer: whoever can push to the registry can change what "
    "runs in production without a change to the spec, and a rollback cannot restore the old "
    "bytes. A digest names exactly the image that was reviewed and scanned. Training and drift "
    "job images count too: they read the same data (and training produces the artefact that "
    "is served).",
    remediation="pin the image as registry/repository@sha256:<digest> (serving, training, "
    "drift job)",
    example="models:\n  scorer: {image: 'ghcr.io/acme/scorer:4.2.0', ...}",
    fix="models:\n  scorer: {image: 'ghcr.io/acme/scorer@sha256:<64 hex>', ...}",
)
def image_digest(system: ir.System) -> Iterator[Finding]:
    why = _digest_required(system)
    if why is None:
        return
    for model in system.models.values():
        for image, path, what in _images(model):
            if image.digest is None:
                yield Finding(
                    f"the {what} of model {model.name!r} is not pinned by digest, as {why} requires",
                    path,
                )


def _full_name(image: ir.ImageRef) -> str:
    registry = image.registry or DOCKER_HUB
    repository = image.repository
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return f"{registry}/{repository}"


def _allowed(image: ir.ImageRef, prefixes: tuple[str, ...]) -> bool:
    name = _full_name(image)
    return any(name == prefix or name.startswith(prefix.rstrip("/") + "/") for prefix in prefixes)


@PACK.rule(
    "models.image-registry",
    subjects=("models", "environment"),
    title="Images come from allowed registries; production environments have an allow-list",
    severity=Severity.ERROR,
    mirrors=("AVD-KSV-0125",),
    rationale="Registries are part of the supply chain: an image from an unreviewed registry "
    "(a typo-squatted name, a personal account) runs with the model's data access. "
    "security.images.allowedRegistries names the registries whose images are built and "
    "scanned by the organisation; production environments must have one.",
    remediation="use an image from security.images.allowedRegistries, or add its registry "
    "there after review",
    example="security:\n  images: {allowedRegistries: [ghcr.io/acme]}\n"
    "models:\n  scorer: {image: 'docker.io/someone/scorer@sha256:<64 hex>', ...}",
    fix="models:\n  scorer: {image: 'ghcr.io/acme/scorer@sha256:<64 hex>', ...}",
)
def image_registry(system: ir.System) -> Iterator[Finding]:
    prefixes = system.security.allowed_registries
    if not prefixes:
        if system.environment.production and system.models:
            yield Finding(
                f"production environment {system.environment.name!r} has no registry "
                "allow-list (security.images.allowedRegistries)",
                first_written(system, ("security", "images"), ("security",), ("metadata",)),
            )
        return
    for model in system.models.values():
        for image, path, what in _images(model):
            if not _allowed(image, prefixes):
                yield Finding(
                    f"the {what} of model {model.name!r} comes from {_full_name(image)!r}, "
                    f"outside the allowed registries ({', '.join(prefixes)})",
                    path,
                )


@PACK.rule(
    "models.image-tag-fixed",
    title="Images without a digest name a fixed tag, never latest",
    severity=Severity.ERROR,
    mirrors=("CKV_K8S_14", "AVD-KSV-0013"),
    rationale="An image without a tag is :latest, and :latest changes under a running "
    "deployment: two replicas of one model can run different code, and nobody can say which "
    "version produced a prediction.",
    remediation="name a version tag (scorer:4.2.0) or, better, a digest (scorer@sha256:...)",
    example="models:\n  scorer: {image: 'ghcr.io/acme/scorer:latest', ...}",
    fix="models:\n  scorer: {image: 'ghcr.io/acme/scorer:4.2.0', ...}",
)
def image_tag_fixed(system: ir.System) -> Iterator[Finding]:
    for model in system.models.values():
        for image, path, what in _images(model):
            if image.digest is None and image.tag in (None, "latest"):
                tag = image.tag or "no tag (latest)"
                yield Finding(f"the {what} of model {model.name!r} uses {tag}", path)


def _resources_problem(resources: ir.Resources) -> str | None:
    missing = [name for name in ("cpu", "memory") if getattr(resources, name) is None]
    return f"sets no {' and no '.join(missing)}" if missing else None


@PACK.rule(
    "models.resources-set",
    title="Serving, training and batch scoring declare CPU and memory (requests and limits)",
    severity=Severity.ERROR,
    mirrors=CPU_MEMORY_CHECKS,
    rationale="Without requests the scheduler packs pods blindly and a busy neighbour starves "
    "the model; without limits one leaking replica takes the node down with everything on it. "
    "mlplane turns resources into both requests and limits.",
    remediation="set serving.resources (and training.resources, batch.resources) to "
    "{cpu: ..., memory: ...}",
    example="models:\n  scorer:\n    serving: {replicas: {min: 2, max: 4}}",
    fix="models:\n  scorer:\n    serving:\n      replicas: {min: 2, max: 4}\n"
    "      resources: {cpu: 500m, memory: 1Gi}",
)
def resources_set(system: ir.System) -> Iterator[Finding]:
    for model in system.models.values():
        parts = [("serving", model.serving.resources)]
        if model.training is not None:
            parts.append(("training", model.training.resources))
        if model.batch is not None:
            parts.append(("batch", model.batch.resources))
        for part, resources in parts:
            problem = _resources_problem(resources)
            if problem is not None:
                path = first_written(
                    system, ("models", model.name, part, "resources"), ("models", model.name, part),
                    ("models", model.name),
                )  # fmt: skip
                yield Finding(f"the {part} of model {model.name!r} {problem}", path)


Objective = Annotated[float, Field(ge=90, le=100)]


class HaReplicasParams(Spec):
    """The parameters of models.ha-replicas."""

    objective: Objective = HIGH_AVAILABILITY
    """The availability objective (percent) from which a production model needs replicas."""
    min_replicas: Annotated[int, Field(ge=2, le=100)] = 2
    """The fewest replicas (serving.replicas.min) such a model may run."""


class SafeRolloutParams(Spec):
    """The parameters of models.safe-rollout."""

    objective: Objective = HIGH_AVAILABILITY
    """The availability objective (percent) from which a production model must roll out by
    canary or blue-green."""


def _highly_available(
    system: ir.System, model: ir.Model, objective: float = HIGH_AVAILABILITY
) -> ir.Sla | None:
    if not system.environment.production:
        return None
    slas = [s for s in availability_slas(system, model.name) if s.objective >= objective]
    return max(slas, key=lambda sla: sla.objective, default=None)


def _sla_note(sla: ir.Sla) -> RelatedPath:
    return RelatedPath(("slas", sla.name, "objective"), f"objective {sla.objective:g}% here")


@PACK.rule_with_params(
    "models.ha-replicas",
    params=HaReplicasParams,
    title="Models under an availability objective of 99.9% or more run at least 2 replicas",
    severity=Severity.ERROR,
    rationale="With one replica every node drain, eviction or crash is an outage: a single "
    "10-minute restart uses a quarter of a 99.9% monthly error budget (43 minutes). Two "
    "replicas (with the pod disruption budget mlplane generates) turn those into degradations.",
    remediation="set serving.replicas.min to 2 or more in production",
    example="models:\n  scorer:\n    serving: {replicas: {min: 1, max: 4}}\n"
    "slas:\n  scorer-availability: {model: scorer, objective: 99.9, indicator: availability}",
    fix="models:\n  scorer:\n    serving: {replicas: {min: 2, max: 4}}",
)
def ha_replicas(system: ir.System, params: HaReplicasParams) -> Iterator[Finding]:
    for model in system.models.values():
        sla = _highly_available(system, model, params.objective)
        if sla is not None and model.serving.replicas_min < params.min_replicas:
            path = ("models", model.name, "serving", "replicas", "min")
            yield Finding(
                f"model {model.name!r} runs {model.serving.replicas_min} replica(s) in "
                f"{system.environment.name!r} under a {sla.objective:g}% availability objective",
                path,
                (_sla_note(sla),),
            )


@PACK.rule_with_params(
    "models.safe-rollout",
    params=SafeRolloutParams,
    title="Models under an availability objective of 99.9% or more roll out by canary or "
    "blue-green",
    severity=Severity.ERROR,
    rationale="A rolling update sends every user to the new version as fast as pods become "
    "ready; a bad model (not a crashing one: a wrong one) reaches all traffic before any alert "
    "fires. Canary steps or a blue-green preview expose a fraction of traffic first and roll "
    "back automatically.",
    remediation="set serving.rollout to {strategy: canary, steps: [10, 50], pause: 10m} or "
    "{strategy: blueGreen, pause: 15m}",
    example="models:\n  scorer:\n    serving: {rollout: {strategy: rolling}}",
    fix="models:\n  scorer:\n    serving: {rollout: {strategy: canary, steps: [10, 50], "
    "pause: 10m}}",
)
def safe_rollout(system: ir.System, params: SafeRolloutParams) -> Iterator[Finding]:
    for model in system.models.values():
        sla = _highly_available(system, model, params.objective)
        if sla is not None and model.serving.rollout.strategy == "rolling":
            path = first_written(
                system, ("models", model.name, "serving", "rollout", "strategy"),
                ("models", model.name, "serving", "rollout"), ("models", model.name, "serving"),
                ("models", model.name),
            )  # fmt: skip
            yield Finding(
                f"model {model.name!r} rolls out all at once (rolling) in "
                f"{system.environment.name!r} under a {sla.objective:g}% availability objective",
                path,
                (_sla_note(sla),),
            )


@PACK.rule(
    "models.gpu-quota",
    title="GPU models set an explicit replica maximum",
    severity=Severity.ERROR,
    rationale="GPUs are the scarcest and most expensive resource of a cluster: a GPU model "
    "that scales without an explicit ceiling can claim every GPU node (and the cloud bill) "
    "during a traffic spike or a retry storm, starving other models. The maximum is the "
    "model's GPU quota, agreed in review.",
    remediation="set serving.replicas.max (replicas x gpu is the model's GPU quota)",
    example="models:\n  ranker:\n    serving: {replicas: {min: 2}, resources: {cpu: '4', "
    "memory: 16Gi, gpu: 1}}",
    fix="models:\n  ranker:\n    serving: {replicas: {min: 2, max: 6}, resources: {cpu: '4', "
    "memory: 16Gi, gpu: 1}}",
)
def gpu_quota(system: ir.System) -> Iterator[Finding]:
    for model in system.models.values():
        gpus = model.serving.resources.gpu
        replicas: SpecPath = ("models", model.name, "serving", "replicas")
        if gpus > 0 and not written(system, (*replicas, "max")):
            yield Finding(
                f"model {model.name!r} uses {gpus} GPU(s) per replica but sets no replicas.max",
                first_written(
                    system, replicas, ("models", model.name, "serving", "resources", "gpu")
                ),
            )
