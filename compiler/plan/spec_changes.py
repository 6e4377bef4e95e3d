"""The ML summary of a plan: what changed per data source, model and SLA, in the spec's words.

Computed from the two *system models* (not the graphs) so that a reviewer reads
``model scorer: replicas 2–8 → 4–20`` rather than four Kubernetes property paths, and each line
points at the spec line it comes from: the head's for additions and changes, the base's for
removals. Lines that a reviewer must not miss carry risk codes (``compiler/plan/risk.py``).
SLAs, security, policies, waivers, alerting and the environment are summarised in
``compiler/plan/spec_sections.py`` with the same helpers.

When there is no base (a first deployment, or a base that failed), every entry is listed as
added, so that the plan of a first deployment is a readable inventory of what it creates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Generic, Literal, TypeVar

from mlplane.compiler.core import ir, plugins
from mlplane.compiler.core.diagnostics import SpecPath, format_path
from mlplane.compiler.plan.model import Section, SideName, SpecChange, SpecRef

T = TypeVar("T")
CLASSIFICATION_ORDER = ("public", "internal", "confidential", "pii", "phi")
ENCRYPTION_ORDER = ("none", "managed", "kms")
ARROW = "→"


@dataclass(frozen=True)
class Field(Generic[T]):
    """One compared attribute: its label, its spec path below the entry, how it reads, and the
    risk code a change of it raises (``risk(old, new)``)."""

    label: str
    path: SpecPath
    show: Callable[[T], str]
    risk: Callable[[T, T], str | None] | None = None


@dataclass
class Summary:
    """Collects the lines; ``base`` is None when every entry counts as added."""

    head: ir.System
    base: ir.System | None
    alerts_head: Mapping[str, int] = field(default_factory=dict)
    alerts_base: Mapping[str, int] = field(default_factory=dict)
    lines: list[SpecChange] = field(default_factory=list)

    def ref(self, path: SpecPath, side: SideName = "head") -> SpecRef:
        system = self.head if side == "head" or self.base is None else self.base
        return SpecRef(format_path(path), system.locate(path), side)

    def add(
        self,
        section: Section,
        subject: str,
        action: Literal["added", "removed", "changed"],
        text: str,
        path: SpecPath,
        risks: Iterable[str | None] = (),
    ) -> None:
        side: SideName = "base" if action == "removed" else "head"
        codes = tuple(dict.fromkeys(code for code in risks if code))
        self.lines.append(SpecChange(section, subject, action, text, self.ref(path, side), codes))

    def fields(
        self, section: Section, noun: str, name: str, root: SpecPath, old: T, new: T,
        fields: Iterable[Field[T]], suffix: str = "",
    ) -> None:  # fmt: skip
        """One ``changed`` line per field whose text differs."""
        for spec in fields:
            before, after = spec.show(old), spec.show(new)
            if before != after:
                risk = spec.risk(old, new) if spec.risk else None
                text = f"{noun} {name}: {spec.label} {before} {ARROW} {after}{suffix}"
                self.add(section, name, "changed", text, (*root, *spec.path), (risk,))

    def entries(
        self,
        section: Section,
        old: Mapping[str, T] | None,
        new: Mapping[str, T],
        added: Callable[[str, T], None],
        removed: Callable[[str, T], None],
        changed: Callable[[str, T, T], None],
    ) -> None:
        """Dispatch each entry of a named section to ``added``/``removed``/``changed``."""
        before = old or {}
        for name in sorted(set(before) | set(new)):
            if name not in before:
                added(name, new[name])
            elif name not in new:
                removed(name, before[name])
            elif not same(before[name], new[name]):
                changed(name, before[name], new[name])


def same(old: object, new: object) -> bool:
    """Equal apart from where they were written: moving a spec line is not a change."""
    if type(old) is not type(new) or not is_dataclass(old):
        return old == new
    names = _COMPARED.get(type(old))
    if names is None:
        names = _COMPARED[type(old)] = tuple(f.name for f in fields(old) if f.name != "origin")
    return all(getattr(old, name) == getattr(new, name) for name in names)


_COMPARED: dict[type, tuple[str, ...]] = {}
"""Dataclass -> the names of the fields that :func:`same` compares (all but ``origin``)."""


# --- formatting ------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """``300`` -> ``5m``; the largest unit that divides exactly; None -> ``none``."""
    if seconds is None:
        return "none"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def image(ref: ir.ImageRef) -> str:
    """The image with a shortened digest: reviewers compare the first 12 hex digits."""
    text = ref.text
    if ref.digest and "@" in text:
        name, digest = text.split("@", 1)
        algorithm, _, hexits = digest.partition(":")
        return f"{name}@{algorithm}:{hexits[:12]}…" if len(hexits) > 12 else text
    return text


def listed(items: Iterable[str]) -> str:
    values = list(items)
    return ", ".join(values) if values else "none"


def percent(value: float) -> str:
    return f"{value:g}%"


def _downgrade(order: tuple[str, ...], code: str) -> Callable[[str | None, str | None], str | None]:
    def check(old: str | None, new: str | None) -> str | None:
        rank = {name: index for index, name in enumerate(order)}
        return code if rank.get(old or "none", 0) > rank.get(new or "none", 0) else None

    return check


# --- data sources ------------------------------------------------------------------------------

_SOURCE_FIELDS: tuple[Field[ir.DataSource], ...] = (
    Field("type", ("type",), lambda s: s.type),
    Field("uri", ("uri",), lambda s: s.uri),
    Field(
        "classification",
        ("classification",),
        lambda s: s.classification,
        lambda a, b: _downgrade(CLASSIFICATION_ORDER, "classification-downgraded")(
            a.classification, b.classification
        ),
    ),
    Field("residency", ("residency",), lambda s: s.residency or "none"),
    Field("retention", ("retention",), lambda s: duration(s.retention_seconds)),
    Field(
        "encryption",
        ("encryption",),
        lambda s: s.encryption or "none",
        lambda a, b: _downgrade(ENCRYPTION_ORDER, "encryption-relaxed")(a.encryption, b.encryption),
    ),
    Field("freshness", ("freshness",), lambda s: duration(s.freshness_seconds)),
    Field("derived from", ("derivedFrom",), lambda s: listed(s.derived_from)),
    Field("managed", ("managed",), lambda s: "yes" if s.managed else "no"),
    Field("owner", ("owner",), lambda s: s.owner),
)


def data_sources(summary: Summary) -> None:
    def added(name: str, source: ir.DataSource) -> None:
        where = f"{source.classification}" + (f", {source.residency}" if source.residency else "")
        where += ", managed" if source.managed else ""
        text = f"data source {name} ADDED ({source.type}, {where})"
        summary.add("dataSources", name, "added", text, ("dataSources", name))

    def removed(name: str, source: ir.DataSource) -> None:
        text = f"data source {name} REMOVED"
        path = ("dataSources", name)
        summary.add("dataSources", name, "removed", text, path, ("data-source-removed",))

    def changed(name: str, old: ir.DataSource, new: ir.DataSource) -> None:
        root = ("dataSources", name)
        summary.fields("dataSources", "data source", name, root, old, new, _SOURCE_FIELDS)

    base = summary.base.data_sources if summary.base else None
    summary.entries("dataSources", base, summary.head.data_sources, added, removed, changed)


# --- models --------------------------------------------------------------------------------------


def replicas(model: ir.Model) -> str:
    serving = model.serving
    return f"{serving.replicas_min}–{serving.replicas_max}"


def steps(plan: ir.Rollout) -> str:
    return "/".join(percent(step) for step in plan.steps) or "no steps"


def rollout(model: ir.Model) -> str:
    """``canary 10%/50%, pause 10m``; ``rolling``."""
    plan = model.serving.rollout
    text = f"{plan.strategy} {steps(plan)}" if plan.steps else plan.strategy
    return text + (f", pause {duration(plan.pause_seconds)}" if plan.pause_seconds else "")


def autoscaling(model: ir.Model) -> str:
    serving = model.serving
    if serving.autoscaling_metric is None:
        return "off"
    return f"{serving.autoscaling_metric} {serving.autoscaling_target}"


def resources(res: ir.Resources) -> str:
    parts = [f"cpu {res.cpu or 'default'}", f"memory {res.memory or 'default'}"]
    return ", ".join(parts + ([f"gpu {res.gpu}"] if res.gpu else []))


def drift(model: ir.Model) -> str:
    found = model.drift
    if found is None:
        return "off"
    return f"{found.method} > {found.threshold:g} on {listed(found.features)}"


def training(model: ir.Model) -> str:
    job = model.training
    if job is None:
        return "none"
    text = f"{job.schedule!r} {image(job.image)}, {resources(job.resources)}"
    where = [f"on {job.instance_type}"] if job.instance_type else []
    where += [f"to {job.output}"] if job.output else []
    return ", ".join([text, *where])


def batch(model: ir.Model) -> str:
    """``'0 2 * * *' daily -> scores, 4 shards, cpu 2, memory 4Gi``: when, what, how wide."""
    job = model.batch
    if job is None:
        return "none"
    flow = f"{listed(job.inputs)} {ARROW} {listed(job.outputs)}"
    text = f"{job.schedule!r} {flow}, {job.parallelism} shard(s), {resources(job.resources)}"
    where = [f"on {job.instance_type}"] if job.instance_type else []
    extra = [f"image {image(job.image)}"] if job.image != model.image else []
    return ", ".join([text, *where, *extra])


def explainability(model: ir.Model) -> str:
    if not model.explainability_required:
        return "off"
    return (
        f"required ({model.explainability_method})" if model.explainability_method else "required"
    )


def data_capture(model: ir.Model) -> str:
    """``20% to events``: the share of requests captured and the data source receiving them."""
    capture = model.serving.data_capture
    if capture is None:
        return "off"
    return f"{percent(capture.sampling_percentage)} to {capture.destination}"


def _exposure_risk(old: ir.Model, new: ir.Model) -> str | None:
    public = new.serving.exposure == "public" and old.serving.exposure != "public"
    return "exposure-public" if public else None


def _drift_risk(old: ir.Model, new: ir.Model) -> str | None:
    return "alert-removed" if old.drift is not None and new.drift is None else None


_MODEL_FIELDS: tuple[Field[ir.Model], ...] = (
    Field("framework", ("framework",), lambda m: m.framework),
    Field("version", ("version",), lambda m: m.version),
    Field("image", ("image",), lambda m: image(m.image)),
    Field("artifact", ("artifact",), lambda m: m.artifact or "none"),
    Field("runtime", ("runtime",), lambda m: m.runtime),
    Field("inputs", ("inputs",), lambda m: listed(m.inputs)),
    Field("secrets", ("secrets",), lambda m: listed(m.secrets)),
    Field("replicas", ("serving", "replicas"), replicas),
    Field("autoscaling", ("serving", "autoscaling"), autoscaling),
    Field("resources", ("serving", "resources"), lambda m: resources(m.serving.resources)),
    Field(
        "instance type", ("serving", "instanceType"), lambda m: m.serving.instance_type or "none"
    ),
    Field("data capture", ("serving", "dataCapture"), data_capture),
    Field("exposure", ("serving", "exposure"), lambda m: m.serving.exposure, _exposure_risk),
    Field("port", ("serving", "port"), lambda m: str(m.serving.port)),
    Field("health path", ("serving", "healthPath"), lambda m: m.serving.health_path),
    Field("explainability", ("explainability",), explainability),
    Field("drift monitoring", ("monitoring", "drift"), drift, _drift_risk),
    Field("training", ("training",), training),
    Field("batch scoring", ("batch",), batch),
    Field("owner", ("owner",), lambda m: m.owner),
)


def _model_fields(target: str) -> tuple[Field[ir.Model], ...]:
    """The compared model fields, with the risks the head's target adds to them
    (``Target.model_risks``: on AWS, an instance type change of an autoscaled endpoint)."""
    installed = plugins.targets().get(target)
    added = {r.path: r.risk for r in installed.model_risks} if installed else {}
    return tuple(_with_risk(f, added[f.path]) if f.path in added else f for f in _MODEL_FIELDS)


def _with_risk(
    found: Field[ir.Model], risk: Callable[[ir.Model, ir.Model], str | None]
) -> Field[ir.Model]:
    own = found.risk
    if own is None:
        return replace(found, risk=risk)
    return replace(found, risk=lambda old, new: own(old, new) or risk(old, new))


def models(summary: Summary) -> None:
    def added(name: str, model: ir.Model) -> None:
        serving = model.serving
        text = (
            f"model {name} ADDED: {model.framework} {model.version}, replicas {replicas(model)}, "
            f"{rollout(model)}, {serving.exposure}"
        )
        risk = "exposure-public" if serving.exposure == "public" else None
        summary.add("models", name, "added", text, ("models", name), (risk,))

    def removed(name: str, model: ir.Model) -> None:
        text = f"model {name} REMOVED (its serving endpoint and monitoring go with it)"
        summary.add("models", name, "removed", text, ("models", name))

    compared = _model_fields(summary.head.environment.target)

    def changed(name: str, old: ir.Model, new: ir.Model) -> None:
        root = ("models", name)
        summary.fields("models", "model", name, root, old, new, compared)
        _rollout_line(summary, name, old, new)

    base = summary.base.models if summary.base else None
    summary.entries("models", base, summary.head.models, added, removed, changed)


def _rollout_line(summary: Summary, name: str, old: ir.Model, new: ir.Model) -> None:
    """``model scorer: canary 10% → 50%`` when only the steps or pause changed."""
    before, after = old.serving.rollout, new.serving.rollout
    if before == after:
        return
    path = ("models", name, "serving", "rollout")
    if before.strategy != after.strategy:
        change = f"rollout {rollout(old)} {ARROW} {rollout(new)}"
    elif before.pause_seconds == after.pause_seconds:
        change = f"{after.strategy} {steps(before)} {ARROW} {steps(after)}"
    elif before.steps == after.steps:
        pauses = f"{duration(before.pause_seconds)} {ARROW} {duration(after.pause_seconds)}"
        change = f"{after.strategy} pause {pauses}"
    else:
        change = f"rollout {rollout(old)} {ARROW} {rollout(new)}"
    summary.add("models", name, "changed", f"model {name}: {change}", path)
