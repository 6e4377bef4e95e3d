"""Building the system model (``compiler.core.ir``) from a validated, reference-checked spec."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

from mlplane import __version__
from mlplane.compiler.core import ir, plugins
from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.compiler.core.ir import frozen_map
from mlplane.compiler.core.lineage import closure, find_cycles
from mlplane.compiler.frontend.document import Document
from mlplane.schema import formats
from mlplane.schema import models as spec
from mlplane.schema.ci import ROLE_KEY

PRODUCTION_NAMES = frozenset({"prod", "production"})
"""Label segments that make an environment production by default: ``prod``, ``prod-aws``,
``eu-production`` are; ``dev``, ``preprod``, ``product-demo`` are not."""


def is_production(name: str, environment: spec.Environment) -> bool:
    """The environment's ``production`` flag, or else whether one of the ``-``-separated
    segments of its name is ``prod`` or ``production``."""
    if environment.production is not None:
        return environment.production
    return any(segment in PRODUCTION_NAMES for segment in name.split("-"))


Written = TypeVar("Written")
Built = TypeVar("Built")


class Origins:
    """Where each element of the effective spec was written: all that building the model needs
    of the resolver (``compiler/frontend/resolve.py``), which extends it with the checks."""

    def __init__(self, document: Document) -> None:
        self.document = document

    def origin(self, path: SpecPath) -> ir.Origin:
        location = self.document.location(path)
        assert location is not None, path
        return ir.Origin(path, location)


def _taken_or_built(
    table: dict[str, tuple[Written, tuple[object, ...], Built]],
    name: str,
    written: Written,
    reads: tuple[object, ...],
    build: Callable[[], Built],
) -> Built:
    """The element ``table`` holds for ``name`` when it was built from the very spec object
    ``written`` with the same ``reads`` (see :class:`Shared`); else ``build()``, remembered."""
    known = table.get(name)
    if known is not None and known[0] is written and known[1] == reads:
        return known[2]
    built = build()
    table[name] = (written, reads, built)
    return built


def _seconds(value: str | None) -> float | None:
    return None if value is None else formats.duration_seconds(value)


class Shared:
    """The data sources, models and SLAs of the system models built so far in one compile, for
    the environments built after them to take instead of building equal ones again.

    An element is taken when everything its building reads is the same: the very spec object
    (the schema pass shares the spec objects of what an overlay left unchanged:
    ``schema_pass.validate_document``), the same origin and the same values read from the rest
    of the system (lineage, owners). Building is a function of these alone, so what is taken
    equals what would be built. One per compile, dropped with it: nothing outlives the specs it
    keys on."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[spec.DataSource, tuple[object, ...], ir.DataSource]] = {}
        self.models: dict[str, tuple[spec.Model, tuple[object, ...], ir.Model]] = {}
        self.slas: dict[str, tuple[spec.Sla, tuple[object, ...], ir.Sla]] = {}
        self._graph: list[tuple[str, tuple[str, ...]]] | None = None
        self._cycles: list[list[str]] | None = None
        self._closure: dict[str, tuple[str, ...]] | None = None

    def cycles(self, graph: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
        """``lineage.find_cycles(graph)``, remembered for the last graph (:meth:`_same`)."""
        if not self._same(graph) or self._cycles is None:
            self._cycles = find_cycles(graph)
        return self._cycles

    def closure(self, graph: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        """``lineage.closure(graph)``, remembered for the last graph (:meth:`_same`); shared,
        so not to be changed."""
        if not self._same(graph) or self._closure is None:
            self._closure = closure(graph)
        return self._closure

    def _same(self, graph: Mapping[str, tuple[str, ...]]) -> bool:
        """Whether ``graph`` has the nodes and edges, in the same order, of the last graph
        asked about (most environments derive their data sources alike); if not, it becomes
        the last graph and what was remembered of the other is dropped."""
        items = list(graph.items())
        if items == self._graph:
            return True
        self._graph, self._cycles, self._closure = items, None, None
        return False


def build_system(
    system: spec.MLSystem,
    environment: str,
    upstream: Mapping[str, tuple[str, ...]],
    resolver: Origins,
    shared: Shared | None = None,
) -> ir.System:
    """The system model of ``environment``; ``shared``: elements built for other environments
    of the same compile, taken when they are built from the same things (:class:`Shared`)."""
    shared = shared if shared is not None else Shared()
    owner = system.metadata.owner
    sources = frozen_map(
        (name, _shared_source(name, source, upstream, owner, resolver, shared))
        for name, source in system.data_sources.items()
    )
    document = resolver.document
    origins = {**document.values, **document.keys}
    return ir.System(
        name=system.metadata.name,
        owner=owner,
        description=system.metadata.description,
        labels=frozen_map(system.metadata.labels.items()),
        environment=_environment(system, environment, resolver),
        data_sources=sources,
        models=frozen_map(
            (name, _shared_model(name, model, upstream, owner, resolver, shared))
            for name, model in system.models.items()
        ),
        security=_security(system.security, resolver),
        slas=frozen_map(
            (name, _shared_sla(name, sla, system, resolver, shared))
            for name, sla in system.slas.items()
        ),
        alerting=_alerting(system.alerting, resolver),
        waivers=tuple(_waiver(index, w, resolver) for index, w in enumerate(system.waivers)),
        policies=ir.PolicySettings(
            severities=frozen_map(
                (rule, s.severity)
                for rule, s in system.policies.rules.items()
                if s.severity is not None
            ),
            rego=tuple(system.policies.rego),
            params=frozen_map(
                (rule, frozen_map(s.params.items()))
                for rule, s in system.policies.rules.items()
                if s.params is not None
            ),
        ),
        ci=_ci(system, resolver),
        origins=origins,
    )


def _environment(system: spec.MLSystem, name: str, resolver: Origins) -> ir.Environment:
    env = system.environments[name]
    implied = plugins.setting_residency(env)
    named = plugins.namespace(env)
    return ir.Environment(
        name=name,
        target=env.target,
        production=is_production(name, env),
        residency=env.residency or (implied.residency if implied else None),
        namespace=named or f"{system.metadata.name}-{name}",
        target_settings=plugins.target_settings(env),
        state=env.state,
        origin=resolver.origin(("environments", name)),
    )


def _shared_source(
    name: str,
    source: spec.DataSource,
    upstream: Mapping[str, tuple[str, ...]],
    owner: str,
    resolver: Origins,
    shared: Shared,
) -> ir.DataSource:
    origin = resolver.origin(("dataSources", name))
    reads = (upstream.get(name, ()), owner, origin)
    return _taken_or_built(
        shared.sources,
        name,
        source,
        reads,
        lambda: _data_source(name, source, upstream, owner, origin),
    )


def _data_source(
    name: str,
    source: spec.DataSource,
    upstream: Mapping[str, tuple[str, ...]],
    owner: str,
    origin: ir.Origin,
) -> ir.DataSource:
    return ir.DataSource(
        name=name,
        type=source.type,
        uri=source.uri,
        classification=source.classification,
        residency=source.residency,
        retention_seconds=_seconds(source.retention),
        encryption=source.encryption,
        freshness_seconds=_seconds(source.freshness),
        derived_from=tuple(source.derived_from),
        upstream=upstream.get(name, ()),
        owner=source.owner or owner,
        description=source.description,
        managed=source.managed,
        origin=origin,
    )


def _image(text: str) -> ir.ImageRef:
    parts = formats.parse_image(text)
    assert parts is not None and parts["repository"] is not None
    return ir.ImageRef(text, parts["registry"], parts["repository"], parts["tag"], parts["digest"])


def _evaluation(evaluation: spec.Evaluation | None) -> ir.Evaluation | None:
    if evaluation is None:
        return None
    return ir.Evaluation(
        image=_image(evaluation.image),
        command=tuple(evaluation.command),
        metric=evaluation.metric,
        threshold=evaluation.threshold,
        goal=evaluation.goal,
        promote=tuple(evaluation.promote),
    )


def _resources(resources: spec.Resources) -> ir.Resources:
    cpu = formats.parse_cpu(resources.cpu) if resources.cpu else None
    return ir.Resources(
        cpu_millis=int(cpu * 1000) if cpu is not None else None,
        memory_bytes=formats.parse_memory(resources.memory) if resources.memory else None,
        gpu=resources.gpu,
        cpu=resources.cpu,
        memory=resources.memory,
        shm_bytes=formats.parse_memory(resources.shm) if resources.shm else None,
        scratch_bytes=formats.parse_memory(resources.scratch) if resources.scratch else None,
    )


def _drift_job(job: spec.DriftJob | None) -> ir.DriftJob | None:
    if job is None:
        return None
    resources = spec.Resources(cpu=job.resources.cpu, memory=job.resources.memory)
    return ir.DriftJob(
        image=_image(job.image),
        reference=job.reference,
        current=job.current,
        format=job.format,
        timestamp_column=job.timestamp_column,
        schedule=job.schedule,
        pushgateway=job.pushgateway,
        max_rows=job.max_rows,
        resources=_resources(resources),
        timeout_seconds=formats.duration_seconds(job.timeout),
    )


def _serving(serving: spec.Serving) -> ir.Serving:
    replicas = serving.replicas
    autoscaling = serving.autoscaling
    return ir.Serving(
        replicas_min=replicas.min,
        replicas_max=replicas.max if replicas.max is not None else max(replicas.min, 1),
        autoscaling_metric=autoscaling.metric if autoscaling else None,
        autoscaling_target=autoscaling.target if autoscaling else None,
        resources=_resources(serving.resources),
        rollout=ir.Rollout(
            strategy=serving.rollout.strategy,
            steps=tuple(serving.rollout.steps),
            pause_seconds=_seconds(serving.rollout.pause),
        ),
        exposure=serving.exposure,
        port=serving.port,
        health_path=serving.health_path,
        metrics_path=serving.metrics_path,
        instance_type=serving.instance_type,
        data_capture=ir.DataCapture(
            serving.data_capture.destination, serving.data_capture.sampling_percentage
        )
        if serving.data_capture
        else None,
        ingress=_ingress(serving.ingress) if serving.ingress else None,
    )


def _ingress(ingress: spec.Ingress) -> ir.Ingress:
    tls = ingress.tls
    return ir.Ingress(
        host=ingress.host,
        path=ingress.path,
        class_name=ingress.class_name,
        tls=ir.IngressTls(tls.secret_name, tls.issuer, tls.cluster_issuer) if tls else None,
    )


def _shared_model(
    name: str,
    model: spec.Model,
    upstream: Mapping[str, tuple[str, ...]],
    owner: str,
    resolver: Origins,
    shared: Shared,
) -> ir.Model:
    origin = resolver.origin(("models", name))
    reads = (tuple(upstream.get(source, ()) for source in model.inputs), owner, origin)
    return _taken_or_built(
        shared.models, name, model, reads, lambda: _model(name, model, upstream, owner, origin)
    )


def _model(
    name: str,
    model: spec.Model,
    upstream: Mapping[str, tuple[str, ...]],
    owner: str,
    origin: ir.Origin,
) -> ir.Model:
    reads = set(model.inputs)
    for source in model.inputs:
        reads.update(upstream.get(source, ()))
    drift = model.monitoring.drift if model.monitoring else None
    training = model.training
    return ir.Model(
        name=name,
        framework=model.framework,
        version=model.version,
        image=_image(model.image),
        artifact=model.artifact,
        runtime=model.runtime,
        inputs=tuple(model.inputs),
        upstream=tuple(sorted(reads)),
        secrets=tuple(model.secrets),
        serving=_serving(model.serving),
        explainability_required=bool(model.explainability and model.explainability.required),
        explainability_method=model.explainability.method if model.explainability else None,
        drift=ir.Drift(
            drift.method,
            drift.threshold,
            tuple(drift.features),
            formats.duration_seconds(drift.window),
            _drift_job(drift.job),
        )
        if drift
        else None,
        training=ir.Training(
            schedule=training.schedule,
            image=_image(training.image),
            resources=_resources(training.resources),
            timeout_seconds=formats.duration_seconds(training.timeout),
            instance_type=training.instance_type,
            output=training.output,
            engine=training.engine,
            command=tuple(training.command or ()),
            evaluation=_evaluation(training.evaluation),
            tensorboard=training.tensorboard,
            logs=training.logs,
        )
        if training
        else None,
        owner=model.owner or owner,
        description=model.description,
        origin=origin,
        batch=_batch(model) if model.batch else None,
    )


def _batch(model: spec.Model) -> ir.Batch:
    batch = model.batch
    assert batch is not None
    return ir.Batch(
        schedule=batch.schedule,
        inputs=tuple(batch.inputs),
        outputs=tuple(batch.outputs),
        image=_image(batch.image or model.image),
        command=tuple(batch.command or ()),
        resources=_resources(batch.resources),
        parallelism=batch.parallelism,
        timeout_seconds=formats.duration_seconds(batch.timeout),
        retries=batch.retries,
        content_type=batch.content_type,
        split=batch.split,
        instance_type=batch.instance_type,
    )


def _security(security: spec.Security, resolver: Origins) -> ir.Security:
    allow = security.network.allow
    return ir.Security(
        encryption_at_rest=security.encryption.at_rest,
        encryption_in_transit=security.encryption.in_transit,
        default_deny=security.network.default_deny,
        allow=tuple(
            ir.NetworkAllow(
                a.from_, a.to, tuple(a.ports), resolver.origin(("security", "network", "allow", i))
            )
            for i, a in enumerate(allow)
        ),
        allowed_registries=tuple(security.images.allowed_registries),
        require_digest=security.images.require_digest,
        access=tuple(
            ir.AccessRule(
                r.principal,
                tuple(r.actions),
                tuple(r.resources),
                resolver.origin(("security", "access", i)),
            )
            for i, r in enumerate(security.access)
        ),
        secrets=frozen_map(
            (
                name,
                ir.Secret(
                    name,
                    secret.ref,
                    secret.ref.split(":", 1)[0],
                    resolver.origin(("security", "secrets", name)),
                ),
            )
            for name, secret in security.secrets.items()
        ),
    )


def _indicator(indicator: spec.Indicator) -> ir.Indicator:
    if indicator.latency is not None:
        return ir.Indicator(
            "latency",
            latency_threshold_seconds=formats.duration_seconds(indicator.latency.threshold),
        )
    if indicator.freshness is not None:
        return ir.Indicator(
            "freshness", max_age_seconds=formats.duration_seconds(indicator.freshness.max_age)
        )
    if indicator.drift is not None:
        return ir.Indicator("drift", drift_threshold=indicator.drift.threshold)
    if indicator.ratio is not None:
        return ir.Indicator(
            "ratio", ratio_errors=indicator.ratio.errors, ratio_total=indicator.ratio.total
        )
    return ir.Indicator("availability")


def _shared_sla(
    name: str, sla: spec.Sla, system: spec.MLSystem, resolver: Origins, shared: Shared
) -> ir.Sla:
    if sla.model is not None:
        kind, subject = "model", sla.model
        owner = sla.owner or system.models[sla.model].owner or system.metadata.owner
    elif sla.data_source is not None:
        kind, subject = "dataSource", sla.data_source
        owner = sla.owner or system.data_sources[sla.data_source].owner or system.metadata.owner
    else:
        kind, subject, owner = "none", None, sla.owner or system.metadata.owner
    origin = resolver.origin(("slas", name))
    reads = (owner, origin)
    return _taken_or_built(
        shared.slas, name, sla, reads, lambda: _sla(name, sla, kind, subject, owner, origin)
    )


def _sla(
    name: str,
    sla: spec.Sla,
    kind: str,
    subject: str | None,
    owner: str,
    origin: ir.Origin,
) -> ir.Sla:
    return ir.Sla(
        name=name,
        objective=sla.objective,
        window_seconds=formats.duration_seconds(sla.window),
        subject_kind=kind,  # type: ignore[arg-type]
        subject=subject,
        indicator=_indicator(sla.indicator),
        owner=owner,
        description=sla.description,
        origin=origin,
    )


def _alerting(alerting: spec.Alerting, resolver: Origins) -> ir.Alerting:
    receivers = frozen_map(
        (
            name,
            ir.Receiver(
                name=name,
                slack_channel=r.slack.channel if r.slack else None,
                slack_webhook_secret=r.slack.webhook_secret if r.slack else None,
                pagerduty_secret=r.pagerduty.routing_key_secret if r.pagerduty else None,
                email=tuple(r.email.to) if r.email else (),
                origin=resolver.origin(("alerting", "receivers", name)),
                slack_workspace_id=r.slack.chatbot.workspace_id
                if r.slack and r.slack.chatbot
                else None,
                slack_channel_id=r.slack.chatbot.channel_id
                if r.slack and r.slack.chatbot
                else None,
            ),
        )
        for name, r in alerting.receivers.items()
    )
    routes = tuple(
        ir.Route(
            route.owner, route.receiver, route.severity, resolver.origin(("alerting", "routes", i))
        )
        for i, route in enumerate(alerting.routes)
    )
    smtp = alerting.smtp
    return ir.Alerting(
        receivers,
        routes,
        alerting.default_receiver,
        smtp=ir.Smtp(
            smtp.smarthost,
            smtp.from_,
            smtp.auth_username,
            smtp.auth_password_secret,
            smtp.require_tls,
        )
        if smtp is not None
        else None,
        page_outside_production=alerting.page_outside_production,
    )


def _waiver(index: int, waiver: spec.Waiver, resolver: Origins) -> ir.Waiver:
    return ir.Waiver(
        policy=waiver.policy,
        target=waiver.target,
        reason=waiver.reason,
        owner=waiver.owner,
        expires=waiver.expires,
        ticket=waiver.ticket,
        origin=resolver.origin(("waivers", index)),
    )


def _ci(system: spec.MLSystem, resolver: Origins) -> ir.Ci:
    """The ``ci:`` section with its defaults resolved; environments in declared order."""
    ci = system.ci
    return ir.Ci(
        provider=ci.provider,
        default_branch=ci.default_branch,
        spec_path=ci.spec_path,
        python=ci.python,
        mlplane_version=ci.mlplane_version or __version__,
        mlplane_requirement=_mlplane_requirement(ci),
        runner=tuple(ci.runner or ()),
        environments=tuple(_ci_environment(system, name, resolver) for name in system.environments),
        drift_schedule=ci.drift.schedule,
        gitlab_image=ci.gitlab.image,
    )


def _mlplane_requirement(ci: spec.Ci) -> str:
    """The one pip requirement CI installs mlplane with (a release, or a pinned commit)."""
    if ci.install is not None:
        return f"mlplane @ git+{ci.install.git.url}@{ci.install.git.commit}"
    return f"mlplane=={ci.mlplane_version or __version__}"


def _ci_environment(system: spec.MLSystem, name: str, resolver: Origins) -> ir.CiEnvironment:
    env = system.environments[name]
    production = is_production(name, env)
    scheme = env.state.split(":", 1)[0] if env.state else None
    settings = system.ci.environments.get(name)
    role = settings.role if settings else None
    placed = plugins.cloud_account(env)
    region = (role.region if role else None) or (placed.region if placed else None)
    at = ("ci", "environments", name, ROLE_KEY)
    return ir.CiEnvironment(
        name=name,
        production=production,
        target=env.target,
        state_scheme=scheme,
        apply=_ci_apply_mode(system.ci, name, production, scheme),
        role=ir.CiRole(role.role_arn, region, resolver.origin(at)) if role and region else None,
    )


def _ci_apply_mode(
    ci: spec.Ci, name: str, production: bool, scheme: str | None
) -> Literal["auto", "manual"] | None:
    """Explicit lists win; by default remote-state environments are applied, production ones
    behind a manual gate (a local state file would start empty in every CI job)."""
    if ci.apply is not None:
        if name in ci.apply.auto:
            return "auto"
        return "manual" if name in ci.apply.manual else None
    if scheme in (None, "file"):
        return None
    return "manual" if production else "auto"
