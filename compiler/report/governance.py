"""What a change does to governance: the facts a data-protection officer or model-risk reviewer
must see in a plan, computed from the base and head system models of one environment.

* ``personal-data-consumer-added``: a model reads PII or PHI (directly or through lineage) that
  it did not read before, or a new model reads it;
* ``residency-crossing-added``: a lineage edge crosses a residency border that did not (data
  derived or read across jurisdictions);
* ``explainability-dropped``: a model that required explanations no longer does (a removed
  model drops nothing: it no longer decides anything);
* ``drift-monitor-dropped``: a model that was monitored for drift no longer is;
* ``waiver-added`` / ``waiver-extended``: a waiver appears, or its expiry moves later.

Pure and ordered (kind, then subject). The plan's ML summary is the intended reader (not wired
into the plan yet); the lineage edges added and removed are returned too, for a Mermaid diff of
the lineage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlplane.compiler.core import ir
from mlplane.compiler.report.lineage import lineage
from mlplane.compiler.report.model import LineageEdge

PERSONAL = frozenset({"pii", "phi"})
Kind = Literal[
    "personal-data-consumer-added",
    "residency-crossing-added",
    "explainability-dropped",
    "drift-monitor-dropped",
    "waiver-added",
    "waiver-extended",
]


@dataclass(frozen=True, slots=True)
class GovernanceChange:
    kind: Kind
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class GovernanceDiff:
    changes: tuple[GovernanceChange, ...]
    edges_added: tuple[LineageEdge, ...]
    edges_removed: tuple[LineageEdge, ...]


def governance_diff(base: ir.System | None, head: ir.System) -> GovernanceDiff:
    """The governance changes from ``base`` (None: nothing deployed yet) to ``head``."""
    changes = [
        *_personal_readers(base, head),
        *_crossings(base, head),
        *_dropped(base, head),
        *_waivers(base, head),
    ]
    before = set(lineage(base).edges) if base is not None else set()
    after = set(lineage(head).edges)
    order = _edge_key
    return GovernanceDiff(
        tuple(sorted(changes, key=lambda c: (c.kind, c.subject, c.text))),
        tuple(sorted(after - before, key=order)),
        tuple(sorted(before - after, key=order)),
    )


def _edge_key(edge: LineageEdge) -> tuple[str, str, str]:
    return (edge.source, edge.target, edge.kind)


def _personal(system: ir.System, model: ir.Model) -> set[str]:
    names = (*model.inputs, *model.upstream)
    return {
        n
        for n in names
        if n in system.data_sources and system.data_sources[n].classification in PERSONAL
    }


def _personal_readers(base: ir.System | None, head: ir.System) -> list[GovernanceChange]:
    found = []
    for model in head.models.values():
        now = _personal(head, model)
        old = base.models.get(model.name) if base is not None else None
        before = _personal(base, old) if base is not None and old is not None else set()
        for name in sorted(now - before):
            level = head.data_sources[name].classification
            found.append(
                GovernanceChange(
                    "personal-data-consumer-added",
                    f"models.{model.name}",
                    f"model {model.name!r} now reads {level} data source {name!r}",
                )
            )
    return found


def _crossings(base: ir.System | None, head: ir.System) -> list[GovernanceChange]:
    before = {e for e in lineage(base).edges if e.cross_border} if base is not None else set()
    names = {n.id: n for n in lineage(head).nodes}
    found = []
    for edge in lineage(head).edges:
        if edge.cross_border and edge not in before:
            source, target = names[edge.source], names[edge.target]
            found.append(
                GovernanceChange(
                    "residency-crossing-added",
                    f"{edge.source} -> {edge.target}",
                    f"{source.kind} {source.name!r} ({source.residency}) {edge.kind} "
                    f"{target.kind} {target.name!r} ({target.residency}): data crosses a "
                    "residency border",
                )
            )
    return found


def _dropped(base: ir.System | None, head: ir.System) -> list[GovernanceChange]:
    if base is None:
        return []
    found = []
    for model in head.models.values():
        old = base.models.get(model.name)
        if old is None:
            continue
        subject = f"models.{model.name}"
        if old.explainability_required and not model.explainability_required:
            text = f"model {model.name!r} no longer requires explanations"
            found.append(GovernanceChange("explainability-dropped", subject, text))
        if old.drift is not None and model.drift is None:
            text = f"model {model.name!r} is no longer monitored for drift"
            found.append(GovernanceChange("drift-monitor-dropped", subject, text))
    return found


def _waivers(base: ir.System | None, head: ir.System) -> list[GovernanceChange]:
    before = {(w.policy, w.target): w for w in base.waivers} if base is not None else {}
    found = []
    for waiver in head.waivers:
        subject = f"{waiver.policy} on {waiver.target}"
        old = before.get((waiver.policy, waiver.target))
        if old is None:
            text = f"waiver added until {waiver.expires} by {waiver.owner}"
            found.append(GovernanceChange("waiver-added", subject, text))
        elif waiver.expires > old.expires:
            text = f"waiver extended from {old.expires} to {waiver.expires} by {waiver.owner}"
            found.append(GovernanceChange("waiver-extended", subject, text))
    return found
