"""Checks the Kubernetes target makes on the spec and on the names it generated.

The schema keeps spec names short and well-formed, but the target appends suffixes and
Kubernetes has per-kind limits (a CronJob name leaves 11 characters for the Job suffix, a
Service name is a DNS-1035 label), so each generated name is checked here and reported at the
spec line it came from, instead of failing at ``pulumi up`` or ``kubectl apply``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVar

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Related, SpecPath
from mlplane.schema.serving import Serving
from mlplane.targets.kubernetes import (
    alerting,
    batch,
    codes,
    drift,
    edge,
    ingress,
    kubeflow,
    mesh,
    name_plan,
    rollouts,
    secrets,
    servers,
    storage,
)
from mlplane.targets.kubernetes.context import Claim, Lowering
from mlplane.targets.kubernetes.kubeflow_check import check_endpoint as check_kubeflow_endpoint

NAME_LIMITS = {"CronJob": 52, "Namespace": 63, "Service": 63}
"""Limits below the DNS-subdomain default of 253 characters."""
DEFAULT_NAME_LIMIT = 253
LABEL_VALUE_LIMIT = 63
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
RESERVED_NAMESPACES = frozenset({"default", "kube-node-lease", "kube-public", "kube-system"})
T = TypeVar("T")


def check_spec(lowering: Lowering) -> None:
    """What this target cannot lower as written, reported before anything is built."""
    _check_namespace(lowering)
    check_other_targets_settings(lowering)
    ingress.check_ingresses(lowering)
    mesh.check_in_transit(lowering)
    storage.check_storage(lowering)
    edge.check_spec(lowering)
    for model in lowering.system.models.values():
        if model.serving.rollout.strategy == "shadow":
            path = ("models", model.name, "serving", "rollout", "strategy")
            lowering.diagnostics.error(
                codes.UNSUPPORTED,
                f"rollout strategy 'shadow' of model {model.name!r} is unsupported on the "
                "kubernetes target: mirroring live traffic needs a service mesh",
                lowering.location(path),
                path,
                hint="use strategy canary or blueGreen on this target",
            )
        _check_runtime(lowering, model)
        rollouts.check_gate_time(lowering, model)
        _check_public_allow(lowering, model)
        batch.check_batch(lowering, model)
        drift.check_drift(lowering, model)
        check_kubeflow_endpoint(lowering, model)
        kubeflow.check_training(lowering, model)
    _check_secrets(lowering)
    _check_planned(name_plan.planned(lowering))  # the names lowering would take (check_names)


def _check_secrets(lowering: Lowering) -> None:
    """``k8s://`` secrets outside the namespace that reads them (the models', or the one
    Alertmanager reads the receivers' Secrets in)."""
    for secret in secrets.used_secrets(lowering.system):
        if secret.scheme == "k8s":
            secrets.check_namespace(lowering, secret)
    alerting.check_receiver_secrets(lowering)


def public_allowed(system: ir.System, model: ir.Model) -> bool:
    """Whether a public model can be reached: without default deny, or with an allow from the
    internet to it."""
    return not system.security.default_deny or any(
        allow.source == "internet" and allow.destination == f"models.{model.name}"
        for allow in system.security.allow
    )


def _check_public_allow(lowering: Lowering, model: ir.Model) -> None:
    if model.serving.exposure != "public" or public_allowed(lowering.system, model):
        return
    path: SpecPath = ("models", model.name, "serving", "exposure")
    lowering.diagnostics.error(
        codes.PUBLIC_WITHOUT_ALLOW,
        f"model {model.name!r} is exposed publicly, but no network allow admits traffic "
        "from the internet, so the default-deny policy would block every request",
        lowering.location(path),
        path,
        hint=f"add {{from: internet, to: models.{model.name}, ports: [{model.serving.port}]}} "
        "to security.network.allow, or set exposure: internal",
    )


_DEFAULTS = {
    name: Serving.model_fields[attribute].default
    for name, attribute in (("healthPath", "health_path"), ("metricsPath", "metrics_path"))
}
"""The language's defaults of the paths a runtime may fix."""


def _check_runtime(lowering: Lowering, model: ir.Model) -> None:
    """A runtime is deployed as its server really runs, or refused at the ``runtime:`` line:
    the SLO rules, the rollout gates, the ServiceMonitor and the probes must read what the
    pods expose (``servers.py``)."""
    server = servers.server(model)
    runtime_path: SpecPath = ("models", model.name, "runtime")
    if not server.deployed:
        lowering.diagnostics.error(
            codes.UNSUPPORTED,
            f"runtime {model.runtime!r} of model {model.name!r} is not deployed by the "
            f"kubernetes target: {server.why_not_deployed}",
            lowering.location(runtime_path),
            runtime_path,
            hint="use runtime 'generic' (a server exporting http_requests_total and "
            "http_request_duration_seconds) or 'triton' on this target",
        )
        return
    fixed = (
        ("port", server.http_port, model.serving.port),
        ("healthPath", server.readiness_path, model.serving.health_path),
        ("metricsPath", server.metrics_path, model.serving.metrics_path),
    )
    for field, expected, given in fixed:
        path: SpecPath = ("models", model.name, "serving", field)
        if expected is None or given == expected:
            continue
        if field != "port" and (path not in lowering.system.origins or given == _DEFAULTS[field]):
            # not written, or written as the language's default (as `mlplane explain` prints
            # it): the runtime's own path is used, so the printed spec stays valid
            continue
        lowering.diagnostics.error(
            codes.UNSUPPORTED,
            f"serving.{field} of model {model.name!r} is {given!r}, but runtime "
            f"{model.runtime!r} serves it at {expected!r}",
            lowering.location(path if path in lowering.system.origins else runtime_path),
            path,
            hint=f"set serving.{field}: {expected}"
            if field == "port"
            else f"remove serving.{field}: the runtime's {expected} is used",
        )


def check_other_targets_settings(lowering: Lowering) -> None:
    """Settings that change what is deployed elsewhere but nothing here: said, not ignored."""
    system = lowering.system
    for model in system.models.values():
        if model.serving.data_capture is not None:
            capture: SpecPath = ("models", model.name, "serving", "dataCapture")
            lowering.diagnostics.warning(
                codes.NOT_LOWERED,
                f"data capture of model {model.name!r} is lowered only on the aws target "
                "(SageMaker data capture); no traffic is captured on kubernetes",
                lowering.location(capture),
                capture,
                "capture in the serving image, or set dataCapture only in the aws environment's "
                "overrides",
            )
    for source in system.data_sources.values():
        if source.managed:
            path = ("dataSources", source.name, "managed")
            lowering.diagnostics.warning(
                codes.NOT_LOWERED,
                f"data source {source.name!r} is managed, but the kubernetes target creates no "
                "storage: it is referenced as if managed were false",
                lowering.location(path),
                path,
                "set managed: true only in the overrides of the environment that creates it",
            )


def _check_namespace(lowering: Lowering) -> None:
    if lowering.namespace not in RESERVED_NAMESPACES:
        return
    env = lowering.system.environment.name
    path = ("environments", env, "kubernetes", "namespace")
    lowering.diagnostics.error(
        codes.RESERVED_NAMESPACE,
        f"environment {env!r} deploys into namespace {lowering.namespace!r}, which Kubernetes "
        "owns; models need a namespace of their own",
        lowering.location(path),
        path,
        hint="set environments.<env>.kubernetes.namespace to a dedicated namespace",
    )


def check_names(lowering: Lowering) -> None:
    """The names a lowering took (``check_spec`` checks the same names, planned without
    lowering: ``name_plan.py``), and the label values of the objects it built. A resource's
    logical name is made a claim only when another resource has it too: only names taken twice
    are reported."""
    repeated = _repeated([resource.name for resource in lowering.resources])
    logical = [
        Claim("resource", resource.name, resource.origin)
        for resource in lowering.resources
        if resource.name in repeated
    ]
    check_claims(lowering, lowering.claims, logical)
    _check_label_values(lowering)


def check_claims(lowering: Lowering, claims: Sequence[Claim], logical: Sequence[Claim]) -> None:
    """Object names over their kind's limit or invalid, and object or logical names taken
    twice; ``logical`` holds every resource's logical name (kind ``resource``), or at least
    every one taken twice. Only the claims of names taken twice go to the collision check,
    which reports nothing else: nearly every name is taken once."""
    for claim in claims:
        if _refused_name(claim.kind, claim.name):
            _check_length(lowering, claim)
    twice = _repeated([(claim.kind, claim.name) for claim in claims])
    repeated = _repeated([claim.name for claim in logical])
    if twice or repeated:
        _check_collisions(
            lowering,
            [claim for claim in claims if (claim.kind, claim.name) in twice],
            [claim for claim in logical if claim.name in repeated],
        )


def _check_planned(planned: name_plan.Planned) -> None:
    """:func:`check_claims` of the planned names (the same diagnostics in the same order), with
    the origins looked up only for the names it reports: nearly every name passes."""
    lowering, origin = planned.lowering, planned.origin
    for kind, name, where in planned.claims:
        if _refused_name(kind, name):
            _check_length(lowering, Claim(kind, name, origin(where)))
    claimed = [(kind, name) for kind, name, _ in planned.claims]
    logical = [name for name, _ in planned.logical]
    twice, repeated = _repeated(claimed), _repeated(logical)
    if twice or repeated:  # only the names taken twice are reported
        _check_collisions(
            lowering,
            [Claim(k, n, origin(w)) for k, n, w in planned.claims if (k, n) in twice],
            [Claim("resource", n, origin(w)) for n, w in planned.logical if n in repeated],
        )


def _repeated(items: list[T]) -> set[T]:
    """The items that occur more than once."""
    seen: set[T] = set(items)
    if len(seen) == len(items):
        return set()
    seen.clear()
    twice: set[T] = set()
    for item in items:
        (twice if item in seen else seen).add(item)
    return twice


def _refused_name(kind: str, name: str) -> bool:
    """Whether :func:`_check_length` reports the name: over its kind's limit, or a Service
    name that is not a DNS-1035 label."""
    too_long = len(name) > NAME_LIMITS.get(kind, DEFAULT_NAME_LIMIT)
    return too_long or (kind == "Service" and not DNS_1035_LABEL.match(name))


def _check_length(lowering: Lowering, claim: Claim) -> None:
    if not _refused_name(claim.kind, claim.name):
        return
    limit = NAME_LIMITS.get(claim.kind, DEFAULT_NAME_LIMIT)
    if len(claim.name) > limit:
        lowering.diagnostics.error(
            codes.NAME_TOO_LONG,
            f"the generated {claim.kind} name {claim.name!r} has {len(claim.name)} characters; "
            f"Kubernetes allows at most {limit}",
            claim.origin.location,
            claim.origin.path,
            hint=f"shorten the spec name it is made from by {len(claim.name) - limit} characters",
        )
    else:  # a Service name that is not a DNS-1035 label
        lowering.diagnostics.error(
            codes.NAME_INVALID,
            f"the generated Service name {claim.name!r} must start with a letter "
            "(Kubernetes Service names are DNS-1035 labels)",
            claim.origin.location,
            claim.origin.path,
            hint="rename the model so that its name starts with a letter",
        )


def _check_label_values(lowering: Lowering) -> None:
    """Label values over Kubernetes' limit. Not for the resources of units taken from an earlier
    lowering (``Lowering.taken``): a unit is stored only from a lowering without errors, so its
    resources passed this check, which reads nothing but the resource; their inputs then stay
    unread (``graph.Deferred``)."""
    taken = lowering.taken
    for resource in lowering.resources:
        if taken and id(resource) in taken:
            continue
        labels = resource.inputs.get("metadata", {}).get("labels", {})
        if not labels or max(map(len, labels.values())) <= LABEL_VALUE_LIMIT:
            continue  # nearly every object: nothing to report, nothing to sort
        for key, value in sorted(labels.items()):
            if len(value) > LABEL_VALUE_LIMIT:
                lowering.diagnostics.error(
                    codes.NAME_TOO_LONG,
                    f"the label {key} would be {value!r} ({len(value)} characters); Kubernetes "
                    f"label values have at most {LABEL_VALUE_LIMIT}",
                    resource.origin.location,
                    resource.origin.path,
                )


def _check_collisions(
    lowering: Lowering, claimed: Sequence[Claim], logical_names: Sequence[Claim]
) -> None:
    by_name: dict[tuple[str, str], list[Claim]] = defaultdict(list)
    for claim in claimed:
        by_name[(claim.kind, claim.name)].append(claim)
    for (kind, name), claims in sorted(item for item in by_name.items() if len(item[1]) > 1):
        first, *others = claims  # only names taken twice are sorted: most are taken once
        for other in others:
            lowering.diagnostics.error(
                codes.NAME_COLLISION,
                f"two objects would both be the {kind} {name!r} in namespace "
                f"{lowering.namespace!r}",
                other.origin.location,
                other.origin.path,
                hint="rename one of the spec elements they are made from",
                related=(Related(first.origin.location, f"the other {kind} {name!r}"),),
            )
    logical: dict[str, list[Claim]] = defaultdict(list)
    for named in logical_names:
        logical[named.name].append(named)
    for name, claims in sorted(item for item in logical.items() if len(item[1]) > 1):
        for other in claims[1:]:
            lowering.diagnostics.error(
                codes.NAME_COLLISION,
                f"two resources would both have the logical name {name!r}",
                other.origin.location,
                other.origin.path,
                related=(Related(claims[0].origin.location, f"the other resource {name!r}"),),
            )
