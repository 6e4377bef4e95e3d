"""The ``markdown`` plan: the pull-request comment.

Layout: a hidden marker ``<!-- mlplane-plan:<system>:<env> -->`` (CI finds its own comment by it
and edits it in place instead of adding one per push), a title, the summary table, warnings,
risk flags, the governance section (its changes, and the lineage edges added and removed as a
Mermaid diff), the head's new warnings (collapsed), the ML summary, then each group of resource
changes in a collapsible ``<details>``.

Two rules make it safe to post a comment built from an untrusted fork's spec:
- spec-derived text is only ever shown inside code spans or fenced blocks whose backtick fence
  is longer than any run of backticks in the text, so it cannot open links, images, HTML or
  ``@mentions`` (GitHub does not link mentions inside code), and ``|`` is escaped in tables;
- the comment stays within :data:`BUDGET` characters, well below GitHub's 65,536 limit: blocks
  are added in order of importance and what does not fit is replaced by an explicit
  "truncated — full plan in the artifact" line with the number of lines left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mlplane.compiler.plan.governance import LEGEND, drawable, edge_counts, mermaid_diff
from mlplane.compiler.plan.model import (
    ACTIONS,
    Governance,
    Plan,
    ResourceChange,
    SpecChange,
    SpecRef,
    because_notes,
)
from mlplane.compiler.plan.text import MAX_PROPERTIES, property_text
from mlplane.compiler.render.common import make_safe

BUDGET = 60_000
"""Characters; GitHub rejects comments over 65,536, and CI adds a few lines of its own."""
RESERVE = 600
"""Kept free for the closing tags and the truncation line."""
TRUNCATED = "truncated — full plan in the artifact"
_TICKS = re.compile(r"`+")
_HEADINGS = {
    "create": "to create",
    "update": "to update",
    "replace": "to replace",
    "delete": "to delete",
}


def marker(plan: Plan) -> str:
    system = (
        plan.system if plan.system and re.fullmatch(r"[a-z0-9-]{1,63}", plan.system) else "unknown"
    )
    env = plan.environment if re.fullmatch(r"[A-Za-z0-9_.-]{1,63}", plan.environment) else "unknown"
    return f"<!-- mlplane-plan:{system}:{env} -->"


def code(text: str, table: bool = False) -> str:
    """``text`` as a code span that nothing inside can close (and ``|``-safe in tables)."""
    safe = make_safe(text.replace("\n", " "))
    longest = max((len(m) for m in _TICKS.findall(safe)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if safe.startswith("`") or safe.endswith("`") else ""
    body = safe.replace("|", "\\|") if table else safe
    return f"{fence}{pad}{body}{pad}{fence}"


@dataclass
class Budget:
    limit: int
    parts: list[str] = field(default_factory=list)
    size: int = 0
    left_out: int = 0

    def add(self, text: str, required: bool = False) -> bool:
        if not required and self.size + len(text) + 1 > self.limit - RESERVE:
            self.left_out += 1
            return False
        self.parts.append(text)
        self.size += len(text) + 1
        return True


def render_markdown(plan: Plan, budget: int = BUDGET) -> str:
    out = Budget(budget)
    out.add(marker(plan), required=True)
    out.add(_title(plan), required=True)
    if not plan.ok:
        _failed(plan, out)
        return "\n".join(out.parts) + "\n"
    out.add(_table(plan), required=True)
    for warning in plan.warnings:
        out.add(f"> ⚠ {code(warning)}", required=True)
    if plan.risks:
        _risks(plan, out)
    if plan.governance is not None and plan.governance.changed:
        _governance(plan.governance, out)
    _warnings(plan, out)
    if plan.spec_changes:
        out.add("\n#### What changes\n")
        for change in plan.spec_changes:
            out.add(_spec_line(change))
    for action in ACTIONS:
        group = [c for c in plan.resources if c.action == action]
        if group:
            _group(action, group, out)
    if out.left_out:
        out.add(
            f"\n_… {TRUNCATED} ({out.left_out} more lines not shown; `mlplane plan --format json`)._",
            required=True,
        )
    return "\n".join(out.parts) + "\n"


def _title(plan: Plan) -> str:
    system = code(plan.system or "unknown")
    head = "working tree" + (f" @ {plan.head.commit[:12]}" if plan.head.commit else "")
    base = plan.base.label + (f" @ {plan.base.commit[:12]}" if plan.base.commit else "")
    return f"### mlplane plan · {system} · {code(plan.environment)}\n\nbase {code(base)} → head {code(head)}\n"


def _table(plan: Plan) -> str:
    counts = plan.counts()
    headline = f"**{plan.summary_line()}**"
    rows = [
        headline,
        "",
        "| create | update | replace | delete | unchanged | spec changes | risk flags |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {counts['create']} | {counts['update']} | {counts['replace']} | {counts['delete']} "
        f"| {plan.unchanged} | {len(plan.spec_changes)} | {'⚠ ' if plan.risks else ''}{len(plan.risks)} |",
        "",
    ]
    return "\n".join(rows)


def _where(ref: SpecRef) -> str:
    if ref.location is None:
        return ""
    prefix = "base " if ref.side == "base" else ""
    return f" — {prefix}{code(f'{ref.location.file}:{ref.location.line}')}"


def _risks(plan: Plan, out: Budget) -> None:
    out.add(
        f"\n#### ⚠ Risk flags ({len(plan.risks)})\n\n| flag | what | where |\n|---|---|---|",
        required=True,
    )
    for risk in plan.risks:
        where = risk.source.location
        place = code(f"{where.file}:{where.line}", table=True) if where else ""
        out.add(f"| `{risk.code}` | {code(risk.message, table=True)} | {place} |")


def _governance(section: Governance, out: Budget) -> None:
    """The governance changes as a table, then the lineage edges that change as a Mermaid
    diff (GitHub draws it) when there are few enough to draw."""
    out.add(f"\n#### Governance ({len(section.changes)})\n", required=True)
    if section.changes:
        out.add("| change | what | where |\n|---|---|---|", required=True)
    for line in section.changes:
        where = line.source.location
        place = code(f"{where.file}:{where.line}", table=True) if where else ""
        kind = f"⚠ `{line.kind}`" + (f" (`{line.risk}`)" if line.risk != line.kind else "")
        out.add(f"| {kind} | {code(line.text, table=True)} | {place} |")
    counts = edge_counts(section)
    if not drawable(section):
        if section.edges:
            out.add(
                f"\n**Lineage:** {counts}: too many to draw here (`mlplane plan --format json` lists them)."
            )
        return
    diagram = mermaid_diff(section)
    fence = "`" * max(3, 1 + max((len(m) for m in _TICKS.findall(diagram)), default=0))
    out.add(f"\n**Lineage:** {counts} ({LEGEND}).\n\n{fence}mermaid\n{diagram}{fence}")


def _warnings(plan: Plan, out: Budget) -> None:
    """The head's new warnings in a collapsible section (closed: they inform, the risk flags
    decide), each with its spec location, after the risk flags."""
    heading, listed, others = plan.warning_listing()
    if not listed:
        return
    also = f", {others} more also at the base" if others else ""
    opening = f"\n<details><summary>⚠ {heading.lower()}: {len(listed)}{also}</summary>\n"
    if not out.add(opening):
        out.left_out += len(listed)
        return
    for diagnostic in listed:
        where = diagnostic.location
        place = f"{code(f'{where.file}:{where.line}:{where.column}')} " if where else ""
        out.add(f"- {place}{code(diagnostic.message)} {code(f'[{diagnostic.code}]')}")
    out.add("\n</details>", required=True)


def _spec_line(change: SpecChange) -> str:
    symbol = {"added": "+", "changed": "~", "removed": "-"}[change.action]
    mark = " ⚠" if change.risks else ""
    return f"- `{symbol}` {code(change.text)}{mark}{_where(change.source)}"


def _group(action: str, changes: list[ResourceChange], out: Budget) -> None:
    """One ``<details>`` per action; each resource is one fenced entry, added while it fits."""
    opening = f"\n<details><summary>{len(changes)} {_HEADINGS[action]}</summary>\n"
    if not out.add(opening):
        out.left_out += len(changes)
        return
    for change in changes:
        entry = _entry(change)
        fence = "`" * max(3, 1 + max((len(m) for m in _TICKS.findall(entry)), default=0))
        out.add(f"{fence}diff\n{entry}\n{fence}")
    out.add("\n</details>", required=True)


def _entry(change: ResourceChange) -> str:
    symbol = {"create": "+", "delete": "-"}.get(
        change.action, "!"
    )  # diff colours: green, red, orange
    reasons = f"  # replace: {', '.join(change.replace_reasons)}" if change.replace_reasons else ""
    reasons += "".join(f"  # {note}" for note in because_notes(change.because))
    where = (
        f"  # {change.source.location.file}:{change.source.location.line}"
        if change.source.location
        else ""
    )
    lines = [make_safe(f"{symbol} {change.type} {change.name}{reasons or where}")]
    for prop in change.changes[:MAX_PROPERTIES]:
        text = property_text(prop)
        lines.append(("! " if text.startswith("~") else "") + text.removeprefix("~ "))
    if len(change.changes) > MAX_PROPERTIES:
        lines.append(f"! ... and {len(change.changes) - MAX_PROPERTIES} more properties")
    return "\n".join(lines)


def _failed(plan: Plan, out: Budget) -> None:
    out.add(f"**No plan:** {len(plan.problems)} problem(s) stop it.\n", required=True)
    for problem in plan.problems[:50]:
        out.add(f"- {code(problem.one_line())}")
    if out.left_out or len(plan.problems) > 50:
        out.add(f"\n_… {TRUNCATED}._", required=True)
