"""The report as Markdown (GitHub flavoured): the lineage as a Mermaid block GitHub draws,
then the data register, the model cards, the controls matrix and the waiver calendar as tables.
Every spec value goes through ``escape.markdown`` (tables, links, HTML, mentions and math stay
inert) or, in the Mermaid block, ``escape.mermaid``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mlplane.compiler.report.escape import markdown as md
from mlplane.compiler.report.model import (
    Control,
    DataEntry,
    ModelCard,
    Place,
    Report,
    WaiverEntry,
)
from mlplane.compiler.report.views import render_mermaid

STATUS = {
    "pass": "pass",
    "fail": "**FAIL**",
    "waived": "waived",
    "off": "off",
    "not-evaluated": "not evaluated",
}
DUE = {"expired": "**expired**", "30d": "within 30 days", "90d": "within 90 days"}


def render_markdown(report: Report) -> str:
    env = report.processing
    parts = [
        f"# Governance report: {md(report.system)}, environment {md(env.environment)}",
        "",
        *_summary(report),
        "",
        "## Lineage",
        "",
        "Data sources, derived sources, models, endpoints and written outputs, and the SLAs "
        "on them, from left to right; fill colour is the classification, thick red edges "
        "cross a residency border.",
        "",
        "```mermaid",
        render_mermaid(report.lineage).rstrip("\n"),
        "```",
        "",
        "## Data register",
        "",
        *_register(report.data_register, report),
        "",
        "## Model cards",
        "",
        *_cards(report.model_cards),
        "## Controls matrix",
        "",
        *_controls(report),
        "",
        "## Waivers",
        "",
        *_waivers(report.waivers, report.today),
    ]
    return "\n".join(parts).rstrip("\n") + "\n"


def _list(items: Iterable[str]) -> str:
    shown = [md(item) for item in items]
    return ", ".join(shown) if shown else "\u2013"


def _value(value: str | None) -> str:
    return md(value) if value else "\u2013"


def _where(place: Place | None) -> str:
    return md(f"{place.file}:{place.line}") if place else "\u2013"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _summary(report: Report) -> list[str]:
    env = report.processing
    s = report.summary
    settings = "; ".join(f"{md(x.label)}: {md(x.value)}" for x in env.settings)
    crossing = sum(1 for edge in report.lineage.edges if edge.cross_border)
    lines = [
        f"- **System:** {md(report.system)}, owned by {md(report.owner)}",
        *([f"- **Purpose:** {md(report.description)}"] if report.description else []),
        f"- **Environment:** {md(env.environment)} "
        f"({'production' if env.production else 'not production'}), target {md(env.target)}, "
        f"namespace {md(env.namespace)}, residency {_value(env.residency)}"
        + (f"; {settings}" if settings else ""),
        f"- **Report date:** {_value(report.today)} (waiver expiry is judged against it)",
        f"- **Controls:** {s.passed} pass, {s.failed} fail, {s.waived} waived, {s.off} off, "
        f"{s.not_evaluated} not evaluated"
        + ("" if report.graph_rules_evaluated else " (graph rules: run with --lower)"),
        f"- **Cross-border lineage edges:** {crossing}",
    ]
    return lines


def _register(entries: Sequence[DataEntry], report: Report) -> list[str]:
    env = report.processing
    processed = md(f"{env.environment} ({env.target}, {env.residency or 'residency undeclared'})")
    header = ["Data source", "Type", "Owner", "Classification", "Residency", "Retention",
              "Encryption", "Freshness", "Upstream", "Downstream", "Access", "Processed in",
              "Defined at"]  # fmt: skip
    rows = [
        [
            f"**{md(e.name)}**" + (" (managed)" if e.managed else ""),
            md(e.type),
            md(e.owner),
            md(e.classification),
            _value(e.residency),
            _value(e.retention),
            _value(e.encryption),
            _value(e.freshness),
            _list(e.upstream),
            _list([*e.derived, *(f"model {m}" for m in e.readers)]),
            _list(f"{g.principal}: {'/'.join(g.actions)}" for g in e.grants),
            processed,
            _where(e.place),
        ]
        for e in entries
    ]
    return _table(header, rows) if rows else ["No data sources."]


def _cards(cards: Sequence[ModelCard]) -> list[str]:
    if not cards:
        return ["No models.", ""]
    lines: list[str] = []
    for card in cards:
        lines += [f"### Model {md(card.name)}", ""]
        lines += _table(["Field", "Value"], _card_rows(card))
        lines.append("")
    return lines


def _card_rows(card: ModelCard) -> list[list[str]]:
    inputs = [
        f"{i.name} ({i.classification}{', ' + i.residency if i.residency else ''}"
        f"{'' if i.direct else ', upstream'})"
        for i in card.inputs
    ]
    drift = card.drift
    rollout = card.rollout
    steps = f", steps {'/'.join(str(s) + '%' for s in rollout.steps)}" if rollout.steps else ""
    pause = f", pause {rollout.pause}" if rollout.pause else ""
    gates = f"; gated by {', '.join(rollout.gates)}" if rollout.gates else "; no SLO gate"
    training = card.training
    rows = [
        ["Purpose", _value(card.description)],
        ["Owner", md(card.owner)],
        ["Framework", md(f"{card.framework} {card.version} (runtime {card.runtime})")],
        ["Image", md(card.image) + ("" if card.image_digest else " (not pinned by digest)")],
        ["Artifact", _value(card.artifact)],
        ["Inputs", _list(inputs)],
        ["Writes", _list(card.outputs)],
        ["Serving", md(f"{card.exposure}, {card.replicas} replicas")],
        [
            "Explainability",
            ("required, " + _value(card.explainability_method))
            if card.explainability_required
            else "not required",
        ],
        [
            "Drift monitoring",
            md(f"{drift.method} > {drift.threshold:g} over {drift.window} on ")
            + _list(drift.features)
            if drift
            else "none",
        ],
        ["Rollout", md(f"{rollout.strategy}{steps}{pause}{gates}")],
        [
            "SLAs",
            _list(
                f"{s.name}: {s.indicator} {s.objective:g}% over {s.window} "
                f"(error budget {s.error_budget_percent:g}%, {s.error_budget})"
                for s in card.slas
            ),
        ],
        [
            "Training",
            md(f"{training.schedule}, up to {training.timeout}, in {training.runs_in}")
            if training
            else "not trained here",
        ],
        [
            "Policies",
            _list(f"{c.rule}: {STATUS[c.status].strip('*').lower()}" for c in card.controls),
        ],
        ["Defined at", _where(card.place)],
    ]
    return rows


def _controls(report: Report) -> list[str]:
    titles = {rule.id: rule for rule in report.rules}
    rows = []
    for control in report.controls:
        rule = titles[control.rule]
        rows.append(
            [
                f"`{control.rule}`" if _plain(control.rule) else md(control.rule),
                md(f"{control.subject.kind} {control.subject.name}"),
                STATUS[control.status],
                md(control.severity) + (" (mandatory)" if rule.mandatory else ""),
                _detail(control),
                _list(rule.mirrors),
            ]
        )
    header = ["Rule", "Subject", "Status", "Severity", "Finding or waiver", "Mirrors"]
    return _table(header, rows) if rows else ["No policy rules."]


def _plain(text: str) -> bool:
    return all(c.isalnum() or c in ".-_" for c in text)


def _detail(control: Control) -> str:
    if control.waiver is not None:
        w = control.waiver
        ticket = f", ticket {w.ticket}" if w.ticket else ""
        return md(f"waived until {w.expires} by {w.owner}{ticket}: {w.reason}")
    return "<br>".join(
        md(f"{f.message}" + (f" ({f.place.file}:{f.place.line})" if f.place else ""))
        for f in control.findings
    )


def _waivers(waivers: Sequence[WaiverEntry], today: str | None) -> list[str]:
    if not waivers:
        return ["No waivers."]
    ordered = sorted(waivers, key=lambda w: (w.expires, w.policy, w.target))
    rows = [
        [
            md(w.expires),
            str(w.days_left) if w.days_left is not None else "\u2013",
            DUE.get(w.due, md(w.due)),
            md(w.policy),
            md(w.target),
            md(w.owner),
            _value(w.ticket),
            md(w.reason),
            "yes" if w.used else "no",
        ]
        for w in ordered
    ]
    head = [
        f"Waiver calendar relative to {md(today)}: what expires within 30 and 90 days."
        if today
        else "No report date was given: expiry is not judged.",
        "",
    ]
    header = ["Expires", "Days left", "Due", "Policy", "Target", "Owner", "Ticket", "Reason",
              "Covers a finding"]  # fmt: skip
    return head + _table(header, rows)
