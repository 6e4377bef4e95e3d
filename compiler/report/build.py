"""Build the governance report of one environment from its system model and policy results.

Pure: the caller (``compiler/report/run.py``) compiles the spec and evaluates the policies;
this module only reads. ``today`` is a parameter (the library never reads the clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache

from mlplane.compiler.core import ir, plugins
from mlplane.compiler.core.diagnostics import Diagnostic
from mlplane.compiler.core.lineage import lineage, model_outputs
from mlplane.compiler.policy.engine import Rule
from mlplane.compiler.report import controls as matrix
from mlplane.compiler.report.model import (
    REPORT_VERSION,
    Control,
    ControlRef,
    DataEntry,
    DriftEntry,
    Grant,
    InputRef,
    ModelCard,
    Processing,
    Report,
    RolloutEntry,
    Setting,
    SlaEntry,
    TrainingEntry,
)

GATED = frozenset({"availability", "latency"})
"""The SLA indicators that gate a canary or blue-green rollout (measured on the new version)."""


def build_report(
    system: ir.System,
    rules: Sequence[Rule],
    found: Sequence[Diagnostic],
    waived: Sequence[Diagnostic],
    *,
    today: date | None,
    graph_evaluated: bool,
) -> Report:
    """The report of ``system``: ``found`` are the policy findings that stand, ``waived`` those
    a valid waiver covers, as the policy engine reported them for this environment."""
    waivers = matrix.waiver_entries(system, waived, today)
    entries, rows = matrix.controls(system, rules, found, waived, waivers, graph_evaluated)
    return Report(
        version=REPORT_VERSION,
        system=system.name,
        owner=system.owner,
        description=system.description,
        today=today.isoformat() if today is not None else None,
        processing=processing(system),
        data_register=data_register(system),
        model_cards=model_cards(system, rows),
        rules=entries,
        controls=rows,
        summary=matrix.summary(rows),
        waivers=waivers,
        lineage=lineage(system),
        graph_rules_evaluated=graph_evaluated,
    )


def processing(system: ir.System) -> Processing:
    env = system.environment
    target = plugins.targets().get(env.target)
    fields = target.setting_fields if target is not None else ()
    settings = tuple(
        Setting(field.label, shown)
        for field in fields
        if (shown := field.show(env.target_settings)) not in ("", "-", "(none)")
        and shown != field.unremarkable
    )
    return Processing(env.name, env.target, env.production, env.residency, env.namespace, settings)


@cache
def duration(seconds: float | None) -> str | None:
    """``400d``, ``4h``, ``21m36s``: the largest units that divide, at most two (memoised: a
    large spec repeats a few retention, freshness and window values thousands of times)."""
    if seconds is None:
        return None
    left = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if left >= size and len(parts) < 2:
            parts.append(f"{left // size}{unit}")
            left %= size
        elif parts:
            break
    return "".join(parts) or "0s"


def data_register(system: ir.System) -> tuple[DataEntry, ...]:
    derived: dict[str, set[str]] = {name: set() for name in system.data_sources}
    for source in system.data_sources.values():
        for parent in source.upstream:
            derived.setdefault(parent, set()).add(source.name)
    readers: dict[str, set[str]] = {name: set() for name in system.data_sources}
    writers: dict[str, set[str]] = {name: set() for name in system.data_sources}
    for model in system.models.values():
        for name in (*model.inputs, *model.upstream):
            readers.setdefault(name, set()).add(model.name)
        for name in model_outputs(model):
            writers.setdefault(name, set()).add(model.name)
    grants = _grants(system, "dataSources")
    slas = _slas_by_subject(system, "dataSource")
    return tuple(
        DataEntry(
            name=s.name,
            type=s.type,
            uri=s.uri,
            owner=s.owner,
            description=s.description,
            classification=s.classification,
            residency=s.residency,
            retention=duration(s.retention_seconds),
            retention_seconds=s.retention_seconds,
            encryption=s.encryption,
            freshness=duration(s.freshness_seconds),
            freshness_seconds=s.freshness_seconds,
            managed=s.managed,
            derived_from=tuple(sorted(s.derived_from)),
            upstream=s.upstream,
            derived=tuple(sorted(derived[s.name])),
            readers=tuple(sorted(readers[s.name])),
            writers=tuple(sorted(writers[s.name])),
            grants=grants.get(s.name, ()),
            slas=tuple(sla.name for sla in slas.get(s.name, ())),
            place=matrix.place(s.origin.location),
        )
        for s in system.data_sources.values()
    )


def _grants(system: ir.System, kind: str) -> dict[str, tuple[Grant, ...]]:
    found: dict[str, list[Grant]] = {}
    for rule in system.security.access:
        for resource in rule.resources:
            section, _, name = resource.partition(".")
            if section == kind:
                found.setdefault(name, []).append(Grant(rule.principal, rule.actions))
    return {name: tuple(items) for name, items in found.items()}


def _slas_by_subject(system: ir.System, kind: str) -> dict[str, list[ir.Sla]]:
    found: dict[str, list[ir.Sla]] = {}
    for sla in system.slas.values():
        if sla.subject_kind == kind and sla.subject is not None:
            found.setdefault(sla.subject, []).append(sla)
    return found


def sla_entry(sla: ir.Sla) -> SlaEntry:
    budget = round(100.0 - sla.objective, 6)
    return SlaEntry(
        name=sla.name,
        indicator=sla.indicator.kind,
        objective=sla.objective,
        window=duration(sla.window_seconds) or "0s",
        error_budget_percent=budget,
        error_budget=duration(sla.window_seconds * budget / 100.0) or "0s",
        owner=sla.owner,
    )


def model_cards(system: ir.System, rows: Sequence[Control]) -> tuple[ModelCard, ...]:
    slas = _slas_by_subject(system, "model")
    by_model: dict[str, list[ControlRef]] = {}
    for row in rows:
        if row.subject.kind == "models":
            by_model.setdefault(row.subject.name, []).append(ControlRef(row.rule, row.status))
    return tuple(
        _card(system, model, slas.get(model.name, []), by_model.get(model.name, []))
        for model in system.models.values()
    )


def _card(
    system: ir.System, model: ir.Model, slas: list[ir.Sla], refs: list[ControlRef]
) -> ModelCard:
    serving = model.serving
    return ModelCard(
        name=model.name,
        description=model.description,
        owner=model.owner,
        framework=model.framework,
        version=model.version,
        runtime=model.runtime,
        image=model.image.text,
        image_digest=model.image.digest,
        artifact=model.artifact,
        inputs=_inputs(system.data_sources, model),
        outputs=model_outputs(model),
        exposure=serving.exposure,
        replicas=f"{serving.replicas_min}-{serving.replicas_max}",
        explainability_required=model.explainability_required,
        explainability_method=model.explainability_method,
        drift=_drift(model.drift),
        rollout=_rollout(serving.rollout, slas),
        slas=tuple(sla_entry(sla) for sla in slas),
        training=_training(system, model.training),
        controls=tuple(refs),
        place=matrix.place(model.origin.location),
    )


def _inputs(sources: Mapping[str, ir.DataSource], model: ir.Model) -> tuple[InputRef, ...]:
    direct = list(dict.fromkeys(model.inputs))
    seen = set(direct)
    names = direct + [name for name in model.upstream if name not in seen]
    return tuple(
        InputRef(name, sources[name].classification, sources[name].residency, name in direct)
        for name in names
        if name in sources
    )


def _drift(drift: ir.Drift | None) -> DriftEntry | None:
    if drift is None:
        return None
    window = duration(drift.window_seconds) or "0s"
    return DriftEntry(drift.method, drift.threshold, drift.features, window)


def _rollout(rollout: ir.Rollout, slas: list[ir.Sla]) -> RolloutEntry:
    progressive = rollout.strategy in ("canary", "blueGreen")
    gates = tuple(sla.name for sla in slas if progressive and sla.indicator.kind in GATED)
    steps = rollout.steps if rollout.strategy == "canary" else ()
    return RolloutEntry(rollout.strategy, steps, duration(rollout.pause_seconds), gates)


def _training(system: ir.System, training: ir.Training | None) -> TrainingEntry | None:
    if training is None:
        return None
    env = system.environment
    runs_in = f"{env.target}, namespace {env.namespace}" + (
        f", {training.instance_type}" if training.instance_type else ""
    )
    return TrainingEntry(
        schedule=training.schedule,
        image=training.image.text,
        timeout=duration(training.timeout_seconds) or "0s",
        runs_in=runs_in,
        output=training.output,
    )
