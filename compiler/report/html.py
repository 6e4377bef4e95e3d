"""The report as one self-contained HTML file: inline CSS, the lineage as inline SVG, no
script at all and nothing fetched from the network (a Content-Security-Policy that allows
only inline styles says so to the browser too), readable on a phone (tables scroll inside
their own box, the picture scales) and on paper (print rules keep table headers and rows
together). Accessible: one ``h1``, ``h2`` per part, ``h3`` per model card, tables with
captions and ``th scope``, status written as words (never colour alone), and the picture
with a title and a description. Every spec value goes through ``escape.xml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from itertools import groupby

from mlplane.compiler.report.escape import xml
from mlplane.compiler.report.model import (
    Control,
    DataEntry,
    ModelCard,
    Place,
    Report,
    RuleEntry,
)
from mlplane.compiler.report.svg import description, render_svg

CSS = """
:root { color-scheme: light; --line: #cfd8dc; --muted: #546e7a; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #212121; background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .75rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
nav ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; padding: 0; list-style: none; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
caption { text-align: left; color: var(--muted); padding: .25rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
th { background: #eceff1; overflow-wrap: normal; }
table.card th[scope=row] { width: 12rem; }
th[scope=rowgroup] { background: #f5f7f8; font-weight: 400; }
th[scope=rowgroup] strong { font-family: ui-monospace, monospace; font-size: .95em; }
.fail { color: #b71c1c; font-weight: 700; }
.waived { color: #6a1b9a; }
.pass { color: #1b5e20; }
.off, .not-evaluated { color: var(--muted); }
figure { margin: 0; }
figcaption { color: var(--muted); }
.figure { overflow: auto; max-height: 80vh; border: 1px solid var(--line); }
.figure svg { display: block; max-width: 100%; height: auto; }
@media (max-width: 640px) {
  main { padding: .5rem; } body { font-size: 14px; }
  table.card th[scope=row] { width: 7rem; }
  .figure svg { max-width: none; }
}
@media print {
  body { font-size: 10pt; } main { max-width: none; padding: 0; }
  nav { display: none; }
  .scroll, .figure { overflow: visible; max-height: none; border: 0; }
  thead { display: table-header-group; } tr, .card-block { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
DASH = "\u2013"


def render_html(report: Report) -> str:
    env = report.processing
    title = f"Governance report: {report.system}, environment {env.environment}"
    lineage = report.lineage
    counts = [
        (label, sum(1 for n in lineage.nodes if n.kind == kind))
        for kind, label in (
            ("dataSource", "data sources"),
            ("model", "models"),
            ("endpoint", "endpoints"),
            ("sla", "SLAs"),
        )
    ]
    svg = render_svg(lineage, f"Lineage of {report.system} in {env.environment}",
                     description(lineage, counts))  # fmt: skip
    body = [
        f"<h1>{xml(title)}</h1>",
        '<nav aria-label="Parts of the report"><ul>'
        '<li><a href="#summary">Summary</a></li><li><a href="#lineage">Lineage</a></li>'
        '<li><a href="#register">Data register</a></li>'
        '<li><a href="#cards">Model cards</a></li>'
        '<li><a href="#controls">Controls matrix</a></li>'
        '<li><a href="#waivers">Waivers</a></li></ul></nav>',
        '<section id="summary"><h2>Summary</h2>',
        _summary(report),
        "</section>",
        '<section id="lineage"><h2>Lineage</h2><figure>',
        f'<div class="figure">{svg}</div>',
        "<figcaption>Data sources, derived sources, models, endpoints and written outputs, and "
        "the SLAs on them, from left to right; fill colour is the classification, dashed red "
        "edges cross a residency border. Hover a box or an edge for its full text.</figcaption>",
        "</figure></section>",
        '<section id="register"><h2>Data register</h2>',
        _register(report.data_register, report),
        "</section>",
        '<section id="cards"><h2>Model cards</h2>',
        *(_card(card) for card in report.model_cards),
        *(["<p>No models.</p>"] if not report.model_cards else []),
        "</section>",
        '<section id="controls"><h2>Controls matrix</h2>',
        _controls(report),
        "</section>",
        '<section id="waivers"><h2>Waivers</h2>',
        _waivers(report),
        "</section>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="mlplane report ({xml(report.version)})">\n'
        f"<title>{xml(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def _v(value: str | None) -> str:
    return xml(value) if value else DASH


def _list(items: Iterable[str]) -> str:
    shown = [xml(item) for item in items]
    return ", ".join(shown) if shown else DASH


def _where(place: Place | None) -> str:
    return xml(f"{place.file}:{place.line}") if place else DASH


def _table(caption: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f'<th scope="col">{xml(h)}</th>' for h in header)
    body = "".join(
        "\n<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows
    )  # a row per line: goldens and reviews diff by row
    return (
        f'<div class="scroll"><table><caption>{xml(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _summary(report: Report) -> str:
    env = report.processing
    s = report.summary
    crossing = sum(1 for edge in report.lineage.edges if edge.cross_border)
    settings = "; ".join(f"{x.label}: {x.value}" for x in env.settings)
    rows = [
        ("System", f"{xml(report.system)}, owned by {xml(report.owner)}"),
        ("Purpose", _v(report.description)),
        (
            "Environment",
            xml(
                f"{env.environment} ({'production' if env.production else 'not production'}), "
                f"target {env.target}, namespace {env.namespace}, residency "
                f"{env.residency or 'undeclared'}" + (f"; {settings}" if settings else "")
            ),
        ),
        ("Report date", _v(report.today) + " (waiver expiry is judged against it)"),
        (
            "Controls",
            f"{s.passed} pass, {s.failed} fail, {s.waived} waived, {s.off} off, "
            f"{s.not_evaluated} not evaluated"
            + ("" if report.graph_rules_evaluated else " (graph rules: run with --lower)"),
        ),
        ("Cross-border lineage edges", str(crossing)),
    ]
    body = "".join(f'<tr><th scope="row">{xml(k)}</th><td>{v}</td></tr>' for k, v in rows)
    return f'<div class="scroll"><table class="card"><tbody>{body}</tbody></table></div>'


def _register(entries: Sequence[DataEntry], report: Report) -> str:
    if not entries:
        return "<p>No data sources.</p>"
    env = report.processing
    processed = xml(f"{env.environment} ({env.target}, {env.residency or 'residency undeclared'})")
    header = ["Data source", "Type", "Owner", "Classification", "Residency", "Retention",
              "Encryption", "Freshness", "Upstream", "Downstream", "Access", "Processed in",
              "Defined at"]  # fmt: skip
    rows = [
        [
            f"<strong>{xml(e.name)}</strong>" + (" (managed)" if e.managed else ""),
            xml(e.type),
            xml(e.owner),
            xml(e.classification),
            _v(e.residency),
            _v(e.retention),
            _v(e.encryption),
            _v(e.freshness),
            _list(e.upstream),
            _list([*e.derived, *(f"model {m}" for m in e.readers)]),
            _list(f"{g.principal}: {'/'.join(g.actions)}" for g in e.grants),
            processed,
            _where(e.place),
        ]
        for e in entries
    ]
    caption = "Record of processing: every data source of the environment"
    return _table(caption, header, rows)


def _card(card: ModelCard) -> str:
    html_rows = _card_html_rows(card)
    body = "".join(f'<tr><th scope="row">{xml(k)}</th><td>{v}</td></tr>' for k, v in html_rows)
    return (
        f'<div class="card-block"><h3 id="model-{xml(card.name)}">Model {xml(card.name)}</h3>'
        f'<div class="scroll"><table class="card"><tbody>{body}</tbody></table></div></div>'
    )


STATUS_ORDER = ("fail", "waived", "pass", "off", "not-evaluated")
"""The order statuses are listed in on a model card: what needs attention first."""


def _card_policies(card: ModelCard) -> str:
    """The rules on a model grouped by status, each status written once:
    ``fail: a; pass: b, c, d``."""
    ids: dict[str, list[str]] = {}
    for control in card.controls:
        ids.setdefault(control.status, []).append(xml(control.rule))
    return "; ".join(
        f'<span class="{status}">{status}</span>: {", ".join(ids[status])}'
        for status in STATUS_ORDER
        if status in ids
    )


def _card_html_rows(card: ModelCard) -> list[tuple[str, str]]:
    inputs = [
        f"{i.name} ({i.classification}{', ' + i.residency if i.residency else ''}"
        f"{'' if i.direct else ', upstream'})"
        for i in card.inputs
    ]
    drift, rollout, training = card.drift, card.rollout, card.training
    steps = f", steps {'/'.join(str(s) + '%' for s in rollout.steps)}" if rollout.steps else ""
    pause = f", pause {rollout.pause}" if rollout.pause else ""
    gates = f"; gated by {', '.join(rollout.gates)}" if rollout.gates else "; no SLO gate"
    policies = _card_policies(card)
    return [
        ("Purpose", _v(card.description)),
        ("Owner", xml(card.owner)),
        ("Framework", xml(f"{card.framework} {card.version} (runtime {card.runtime})")),
        ("Image", xml(card.image) + ("" if card.image_digest else " (not pinned by digest)")),
        ("Artifact", _v(card.artifact)),
        ("Inputs", _list(inputs)),
        ("Writes", _list(card.outputs)),
        ("Serving", xml(f"{card.exposure}, {card.replicas} replicas")),
        (
            "Explainability",
            f"required, {_v(card.explainability_method)}"
            if card.explainability_required
            else "not required",
        ),
        (
            "Drift monitoring",
            xml(f"{drift.method} > {drift.threshold:g} over {drift.window} on ")
            + _list(drift.features)
            if drift
            else "none",
        ),
        ("Rollout", xml(f"{rollout.strategy}{steps}{pause}{gates}")),
        (
            "SLAs",
            _list(
                f"{s.name}: {s.indicator} {s.objective:g}% over {s.window} "
                f"(error budget {s.error_budget_percent:g}%, {s.error_budget})"
                for s in card.slas
            ),
        ),
        (
            "Training",
            xml(f"{training.schedule}, up to {training.timeout}, in {training.runs_in}")
            if training
            else "not trained here",
        ),
        ("Policies", policies or DASH),
        ("Defined at", _where(card.place)),
    ]


def _controls(report: Report) -> str:
    """The matrix as one table with a row group per rule: the rule's id, title, severity and
    mirrored checks head its group once, then one row per subject (subject, status, finding or
    waiver). Rows are written directly: on a large spec there are tens of thousands of them."""
    if not report.controls:
        return "<p>No policy rules.</p>"
    rules = {rule.id: rule for rule in report.rules}
    groups = [
        _rule_group(rules[rule_id], rows)
        for rule_id, rows in groupby(report.controls, key=lambda c: c.rule)
    ]
    caption = (
        "Every policy rule on every subject it judges, grouped by rule: the rule's title, its "
        "severity here and the checks it mirrors head each group"
    )
    head = "".join(f'<th scope="col">{h}</th>' for h in ("Subject", "Status", "Finding or waiver"))
    return (
        f'<div class="scroll"><table class="controls"><caption>{xml(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead>{''.join(groups)}</table></div>"
    )


def _rule_group(rule: RuleEntry, rows: Iterable[Control]) -> str:
    mandatory = " (mandatory)" if rule.mandatory else ""
    mirrors = f"; mirrors {_list(rule.mirrors)}" if rule.mirrors else ""
    head = (
        f'<tr><th scope="rowgroup" colspan="3"><strong>{xml(rule.id)}</strong> '
        f"{xml(rule.title)}; severity {xml(rule.severity)}{mandatory}{mirrors}</th></tr>"
    )
    body = "".join(
        f"\n<tr><td>{_subject(c.subject.kind, c.subject.name)}</td>"
        f'<td class="{c.status}">{c.status}</td><td>{_detail(c)}</td></tr>'
        for c in rows
    )  # a row per line: goldens and reviews diff by row
    return f"\n<tbody>{head}{body}</tbody>"


@cache
def _subject(kind: str, name: str) -> str:
    return xml(f"{kind} {name}")


def _detail(control: Control) -> str:
    if not control.findings and control.waiver is None:
        return ""
    if control.waiver is not None:
        w = control.waiver
        ticket = f", ticket {w.ticket}" if w.ticket else ""
        return xml(f"waived until {w.expires} by {w.owner}{ticket}: {w.reason}")
    return "<br>".join(
        xml(f.message + (f" ({f.place.file}:{f.place.line})" if f.place else ""))
        for f in control.findings
    )


def _waivers(report: Report) -> str:
    if not report.waivers:
        return "<p>No waivers.</p>"
    ordered = sorted(report.waivers, key=lambda w: (w.expires, w.policy, w.target))
    due = {"expired": "expired", "30d": "within 30 days", "90d": "within 90 days"}
    rows = [
        [
            xml(w.expires),
            str(w.days_left) if w.days_left is not None else DASH,
            f'<span class="{"fail" if w.due == "expired" else w.due}">'
            f"{xml(due.get(w.due, w.due))}</span>",
            xml(w.policy),
            xml(w.target),
            xml(w.owner),
            _v(w.ticket),
            xml(w.reason),
            "yes" if w.used else "no",
        ]
        for w in ordered
    ]
    caption = (
        f"Waiver calendar relative to {report.today}: what expires within 30 and 90 days"
        if report.today
        else "Waivers (no report date: expiry not judged)"
    )
    header = ["Expires", "Days left", "Due", "Policy", "Target", "Owner", "Ticket", "Reason",
              "Covers a finding"]  # fmt: skip
    return _table(caption, header, rows)
