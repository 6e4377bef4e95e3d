"""Batch scoring rules: predictions are data derived from what was scored.

A batch output's ``upstream`` holds the batch's inputs and the model's own data (the resolver
derives it, ``compiler/frontend/resolve.py``), so every rule that follows lineage already
protects the output and its readers (retention, encryption, residency of the models that read
it). What lineage alone does not catch is an output declared *below* its sources: classified
lower, or resident elsewhere, which these rules refuse.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Severity, SpecPath
from mlplane.compiler.core.lineage import CLASSIFICATION_ORDER
from mlplane.compiler.policy.engine import Finding, RelatedPath
from mlplane.policies.common import PACK, env_path, first_written

_RANK = {name: index for index, name in enumerate(CLASSIFICATION_ORDER)}
UNBOUND = (None, "global")
"""Residencies that bind nothing: undeclared, or free to go anywhere."""


def batch_outputs(system: ir.System) -> Iterator[tuple[ir.Model, int, ir.DataSource]]:
    """Every (model, position in batch.outputs, output source) of the system."""
    for model in system.models.values():
        if model.batch is None:
            continue
        for index, name in enumerate(model.batch.outputs):
            source = system.data_sources.get(name)
            if source is not None:
                yield model, index, source


def _sources(system: ir.System, output: ir.DataSource) -> list[ir.DataSource]:
    return [system.data_sources[n] for n in output.upstream if n in system.data_sources]


def _written_by(model: ir.Model, index: int) -> RelatedPath:
    path: SpecPath = ("models", model.name, "batch", "outputs", index)
    return RelatedPath(path, f"the batch scoring of model {model.name!r} writes it here")


@PACK.rule(
    "data.batch-output-classified",
    subjects=("dataSources",),
    title="Batch predictions are classified at least as high as the data they come from",
    severity=Severity.ERROR,
    mandatory=True,
    rationale="A prediction is computed from the records it scores and from what the model "
    "learned: a fraud score per card holder is personal data because the transactions were. "
    "An output classified lower than its sources would let every rule keyed on classification "
    "(encryption, retention, exposure, who may read) treat derived PII as if it were not.",
    remediation="raise the output data source's classification to that of its highest source",
    example="dataSources:\n  scores: {type: objectStore, uri: 's3://acme-scores/', "
    "classification: internal}\nmodels:\n  scorer:\n    batch: {..., inputs: [transactions], "
    "outputs: [scores]}   # transactions is pii",
    fix="dataSources:\n  scores: {type: objectStore, uri: 's3://acme-scores/', "
    "classification: pii}",
)
def batch_output_classified(system: ir.System) -> Iterator[Finding]:
    for model, index, output in batch_outputs(system):
        level = _RANK.get(output.classification, 0)
        higher = [s for s in _sources(system, output) if _RANK.get(s.classification, 0) > level]
        if not higher:
            continue
        top = max(higher, key=lambda s: _RANK.get(s.classification, 0))
        yield Finding(
            f"batch output {output.name!r} of model {model.name!r} is classified "
            f"{output.classification}, but it is derived from {top.classification} data "
            f"({top.name!r})",
            ("dataSources", output.name, "classification"),
            (
                _written_by(model, index),
                *(
                    RelatedPath(
                        ("dataSources", s.name, "classification"),
                        f"{s.name!r} is classified {s.classification}",
                    )
                    for s in higher
                ),
            ),
        )


@PACK.rule(
    "data.batch-residency",
    subjects=("dataSources", "environment"),
    title="Batch scoring runs and writes where the data it scores must stay",
    severity=Severity.ERROR,
    mandatory=True,
    rationale="Residency follows data into every copy, and predictions are a copy of what "
    "they were computed from: scoring EU records in a US environment moves them there, and so "
    "does writing the scores to a store resident elsewhere (or one that declares no "
    "residency, whose home nothing checks).",
    remediation="declare the output's residency as that of its sources, and run the batch in "
    "an environment of that residency",
    example="dataSources:\n  events: {..., residency: eu}\n  scores: {..., residency: us}\n"
    "models:\n  scorer:\n    batch: {..., inputs: [events], outputs: [scores]}",
    fix="dataSources:\n  scores: {..., residency: eu}",
)
def batch_residency(system: ir.System) -> Iterator[Finding]:
    for model, index, output in batch_outputs(system):
        bound = [s for s in _sources(system, output) if s.residency not in UNBOUND]
        foreign = [s for s in bound if s.residency != output.residency]
        if foreign:
            yield _output_finding(system, model, index, output, foreign)
    yield from _runs_abroad(system)


def _output_finding(
    system: ir.System,
    model: ir.Model,
    index: int,
    output: ir.DataSource,
    foreign: list[ir.DataSource],
) -> Finding:
    first = foreign[0]
    where = f"is resident in {output.residency!r}" if output.residency else "declares none"
    root: SpecPath = ("dataSources", output.name)
    return Finding(
        f"batch output {output.name!r} of model {model.name!r} holds data resident in "
        f"{first.residency!r} ({first.name!r}) but {where}",
        first_written(system, (*root, "residency"), root),
        (_written_by(model, index), *_resident(foreign)),
    )


def _resident(sources: list[ir.DataSource]) -> tuple[RelatedPath, ...]:
    return tuple(
        RelatedPath(
            ("dataSources", s.name, "residency"), f"{s.name!r} is resident in {s.residency!r}"
        )
        for s in sources
    )


def _runs_abroad(system: ir.System) -> Iterator[Finding]:
    """Batch inputs bound to a residency other than the environment's, where the run reads
    them (the model's own inputs are data.residency-respected's)."""
    served = system.environment.residency
    if served in UNBOUND:
        return
    for model in system.models.values():
        if model.batch is None:
            continue
        sources = [system.data_sources[n] for n in model.batch.inputs if n in system.data_sources]
        foreign = [s for s in sources if s.residency not in UNBOUND and s.residency != served]
        if foreign:
            first = foreign[0]
            reads = RelatedPath(
                ("models", model.name, "batch", "inputs"), f"{model.name!r} scores it here"
            )
            where = first_written(
                system,
                env_path(system, "residency"),
                env_path(system, "aws", "region"),
                env_path(system),
            )
            yield Finding(
                f"the batch scoring of model {model.name!r} reads data resident in "
                f"{first.residency!r} ({first.name!r}) but environment "
                f"{system.environment.name!r} runs it in {served!r}",
                where,
                (reads, *_resident(foreign)),
            )
