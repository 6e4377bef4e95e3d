"""The ``text`` plan: what a person reads in a terminal, like ``terraform plan`` but ML first.

Order: where the two sides come from, warnings, the ML summary (what changes in the spec's
words, each line with its spec location), the governance section
(``compiler/plan/governance.py``: personal data, residency, explainability, drift monitoring,
waivers, lineage edges), the risk flags, then the resources one by one with their changed
properties, and Terraform's closing line (``Plan: 1 to create, ...``). Symbols
are Terraform's: ``+`` create, ``~`` update, ``-/+`` replace, ``-`` delete.

A changed value too long for a line is cut around the part that changed, on both sides alike
(:func:`changed_texts`): ``"…ghcr.io/acme/model:1.4.2@sha256:…" → "…ghcr.io/acme/model:1.5.0@sha256:…"``,
never at the same prefix on both sides, which would hide the change.

Every string that comes from the spec passes through ``make_safe`` (a pull request's spec must
not be able to send escape sequences to a reviewer's terminal). Colour only when asked (a TTY).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlplane.compiler.plan.governance import MAX_LISTED, edge_counts, edge_text, listed_edges
from mlplane.compiler.plan.model import (
    KNOWN_AFTER_APPLY,
    Governance,
    Plan,
    PropertyChange,
    ResourceChange,
    Side,
    SpecChange,
    SpecRef,
    because_notes,
)
from mlplane.compiler.render import dispatch as renderers
from mlplane.compiler.render.common import make_safe

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
SPEC_SYMBOLS = {"added": "+", "changed": "~", "removed": "-"}
_COLORS = {"+": "32", "~": "33", "-/+": "35", "-": "31", "!": "1;31", "warn": "33"}
MAX_VALUE = 80
CONTEXT = 16
"""Unchanged characters kept on each side of the part of a long value that changed."""
MAX_PROPERTIES = 25
MAX_WARNINGS = 20
RISK_MARK = "⚠"


def render_text(plan: Plan, color: bool = False) -> str:
    paint = _painter(color)
    if not plan.ok:
        return _failed(plan, color)
    lines = [_title(plan), f"  head: {_side(plan.head)}", f"  base: {_side(plan.base)}", ""]
    lines += [paint("warn", f"warning: {make_safe(w)}") for w in plan.warnings]
    lines += _base_problems(plan.base)
    lines += _head_warnings(plan, paint)
    if not plan.has_changes:
        return "\n".join([*lines, plan.summary_line()]) + "\n"
    if plan.spec_changes:
        lines += ["What changes:", *(_spec_line(c, paint) for c in plan.spec_changes), ""]
    if plan.governance is not None and plan.governance.changed:
        lines += _governance(plan.governance, paint)
    if plan.risks:
        lines.append(paint("!", f"Risk flags ({len(plan.risks)}):"))
        lines += [
            f"  {RISK_MARK} [{r.code}] {make_safe(r.message)}{_where(r.source)}" for r in plan.risks
        ]
        lines.append("")
    if plan.resources:
        lines.append("Resources:")
        for change in plan.resources:
            lines += _resource(change, paint)
        lines.append("")
    closing = plan.summary_line() + (f" {len(plan.risks)} risk flag(s)." if plan.risks else "")
    return "\n".join([*lines, closing]) + "\n"


Paint = Callable[[str, str], str]


def _painter(color: bool) -> Paint:
    def paint(kind: str, text: str) -> str:
        code = _COLORS.get(kind)
        return f"\x1b[{code}m{text}\x1b[0m" if color and code else text

    return paint


def _title(plan: Plan) -> str:
    target = f" (target {plan.target})" if plan.target else ""
    return f"mlplane plan: system {plan.system}, environment {make_safe(plan.environment)}{target}"


def _side(side: Side) -> str:
    commit = f" at {side.commit[:12]}" if side.commit else ""
    digest = f", spec sha256 {side.spec_sha256[:12]}" if side.spec_sha256 else ""
    state = {
        "compiled": f"{len(side.resources)} resources",
        "none": "nothing: a first deployment",
        "absent": "no spec there",
        "new-environment": "environment not defined there",
        "failed": "does not compile",
    }[side.status]
    return f"{make_safe(side.label)}{commit} ({state}{digest})"


def _base_problems(base: Side) -> list[str]:
    if base.status != "failed" or not base.diagnostics:
        return []
    shown = [f"  {make_safe(d.one_line())} (at the base)" for d in base.diagnostics[:10]]
    more = len(base.diagnostics) - len(shown)
    return ["base diagnostics:", *shown, *([f"  ... and {more} more"] if more > 0 else []), ""]


def _head_warnings(plan: Plan, paint: Paint) -> list[str]:
    heading, listed, others = plan.warning_listing()
    if not listed:
        return []
    lines = [paint("warn", f"{heading} ({len(listed)}):")]
    lines += [f"  {make_safe(d.one_line())}" for d in listed[:MAX_WARNINGS]]
    if len(listed) > MAX_WARNINGS:
        lines.append(f"  ... and {len(listed) - MAX_WARNINGS} more (--format json lists them)")
    if others:
        lines.append(
            f"  ({others} more warning(s) also at the base; `mlplane validate` shows them)"
        )
    return [*lines, ""]


def _where(ref: SpecRef) -> str:
    if ref.location is None:
        return ""
    prefix = "base " if ref.side == "base" else ""
    return f"  ({prefix}{make_safe(ref.location.file)}:{ref.location.line})"


def _governance(section: Governance, paint: Paint) -> list[str]:
    """The governance changes, each with its risk code, then the lineage edges that change."""
    lines = [paint("!", f"Governance ({len(section.changes)} change(s), {edge_counts(section)}):")]
    lines += [
        f"  {RISK_MARK} [{c.kind}] {make_safe(c.text)}{_where(c.source)}" for c in section.changes
    ]
    nodes = {node.id: node for node in section.nodes}
    edges = listed_edges(section)
    if edges:
        lines.append("  lineage:")
    for symbol, edge in edges[:MAX_LISTED]:
        lines.append("    " + paint(symbol, f"{symbol} {make_safe(edge_text(edge, nodes))}"))
    if len(edges) > MAX_LISTED:
        lines.append(f"    ... and {len(edges) - MAX_LISTED} more (--format json lists them)")
    return [*lines, ""]


def _spec_line(change: SpecChange, paint: Paint) -> str:
    symbol = SPEC_SYMBOLS[change.action]
    mark = f" {RISK_MARK}" if change.risks else ""
    return "  " + paint(symbol, f"{symbol} {make_safe(change.text)}{mark}") + _where(change.source)


def _resource(change: ResourceChange, paint: Paint) -> list[str]:
    symbol = SYMBOLS[change.action]
    head = f"{symbol} {change.type} {make_safe(change.name)}"
    notes = []
    if change.replace_reasons:
        notes.append("replace: " + ", ".join(make_safe(r) for r in change.replace_reasons))
    if change.protected:
        notes.append("protected")
    notes += [make_safe(note) for note in because_notes(change.because)]
    suffix = f" ({'; '.join(notes)})" if notes else ""
    lines = ["  " + paint(symbol, head) + suffix + _where(change.source)]
    for prop in change.changes[:MAX_PROPERTIES]:
        lines.append("      " + property_text(prop))
    hidden = len(change.changes) - MAX_PROPERTIES
    if hidden > 0:
        lines.append(f"      ... and {hidden} more properties")
    if change.ignored:
        lines.append(
            f"      (ignored by ignoreChanges: {', '.join(make_safe(p) for p in change.ignored)})"
        )
    return lines


def property_text(prop: PropertyChange) -> str:
    """``~ spec.replicas: 2 → 3``; ``+``/``-`` for added and removed properties."""
    path = make_safe(prop.path)
    forced = "  # forces replacement" if prop.forces_replacement else ""
    if prop.kind == "added":
        return f"+ {path}: {value_text(prop.new)}{forced}"
    if prop.kind == "removed":
        return f"- {path}: {value_text(prop.old)}{forced}"
    if prop.known_after_apply:
        return f"~ {path}: {value_text(prop.old)} → {KNOWN_AFTER_APPLY}{forced}"
    old, new = changed_texts(prop.old, prop.new)
    return f"~ {path}: {old} → {new}{forced}"


def changed_texts(old: Any, new: Any, limit: int = MAX_VALUE) -> tuple[str, str]:
    """Both sides of a change as :func:`value_text` shows them; when one is too long, each is
    cut to the part where the two differ, with :data:`CONTEXT` unchanged characters around it
    (``…`` marks what is left out), so that the change is what the reviewer sees."""
    before, after = value_text(old, limit), value_text(new, limit)
    if not (before.endswith("…") or after.endswith("…")) or _special(old) or _special(new):
        return before, after
    return elide_difference(_json_text(old), _json_text(new), limit)


def elide_difference(before: str, after: str, limit: int = MAX_VALUE) -> tuple[str, str]:
    """``before`` and ``after`` cut to what differs between them: their common prefix and
    suffix are dropped but for :data:`CONTEXT` characters next to the difference, and a
    difference longer than the room left is cut in its middle part."""
    prefix = 0
    shortest = min(len(before), len(after))
    while prefix < shortest and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < shortest - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1

    def cut(text: str) -> str:
        head, middle = text[:prefix], text[prefix : len(text) - suffix]
        tail = text[len(text) - suffix :]
        lead = head if len(head) <= CONTEXT + 1 else "…" + head[-CONTEXT:]
        trail = tail if len(tail) <= CONTEXT + 1 else tail[:CONTEXT] + "…"
        room = max(limit - len(lead) - len(trail), 2 * CONTEXT)
        if len(middle) > room:
            middle = middle[: room - 1] + "…"
        return lead + middle + trail

    return cut(before), cut(after)


def _special(value: Any) -> bool:
    """A secret or an output reference, which :func:`value_text` spells by name."""
    return isinstance(value, dict) and set(value) in ({"$secret"}, {"$ref", "$output"})


def _json_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    return make_safe(text)


def value_text(value: Any, limit: int = MAX_VALUE) -> str:
    """A JSON value on one line, secrets shown by name only, cut at ``limit`` characters."""
    if isinstance(value, dict) and set(value) == {"$secret"}:
        return f"(secret {make_safe(str(value['$secret']))})"
    if isinstance(value, dict) and set(value) == {"$ref", "$output"}:
        return make_safe(f"${{{value['$ref']}.{value['$output']}}}")  # Pulumi YAML's spelling
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    text = make_safe(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failed(plan: Plan, color: bool) -> str:
    options = renderers.RenderOptions(color=color)
    text = renderers.render("text", plan.problems, {}, options).rstrip("\n")
    return f"{text}\nno plan: {'the spec has errors' if plan.head.status != 'compiled' else 'the base cannot be read'}\n"
