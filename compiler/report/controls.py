"""The controls matrix: every policy rule against every subject it judges, and the waivers.

A rule declares the kinds of spec element it judges (``Rule.subjects``: data sources, models,
SLAs, secrets, access rules, network allows, the environment); without a declaration its id's
domain decides (``models.*`` judges models, ``data.*`` data sources, ``slas.*`` SLAs, anything
else the environment). Each rule gets one row per subject of those kinds:

* **fail** when the policy engine reported a finding whose spec path lies on or below the
  subject's path (``models.scorer.image`` is about ``models.scorer``; the most specific subject
  wins; a path below no subject is about the environment);
* **waived** when every finding on it was covered by a valid waiver (the waiver is shown);
* **off** when ``policies.rules.<id>.severity: off`` turns the rule off here;
* **not-evaluated** for a graph rule when no resource graph was lowered;
* **pass** otherwise: the rule ran and found nothing about the subject, which includes a rule
  whose condition the subject does not meet (a public data source under a PII rule).

A finding on a subject outside the rule's declared kinds still gets its own row, so no finding
is ever hidden. Organisation policies in Rego declare no subjects: they appear with the
subjects they found something about. Each (rule, subject) pair appears exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import PurePath
from typing import Literal

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, Location, SpecPath, format_path
from mlplane.compiler.policy.engine import Rule, target_pattern
from mlplane.compiler.report.model import (
    Control,
    ControlsSummary,
    FindingNote,
    Place,
    RuleEntry,
    Status,
    Subject,
    WaiverEntry,
)

Due = Literal["expired", "30d", "90d", "later", "undated"]

_DOMAIN_KINDS = {"models": "models", "data": "dataSources", "slas": "slas"}
SOON, LATER = 30, 90
"""The waiver calendar's horizons in days: what expires within 30 days, within 90 days."""


def place(location: Location | None) -> Place | None:
    """Where a spec element is written: the file's base name (never a directory of the machine
    that made the report, which must read the same from any working directory), line, column."""
    if location is None:
        return None
    return Place(_base_name(location.file), location.line, location.column)


@cache
def _base_name(file: str) -> str:
    return PurePath(file).name


def rule_kinds(rule: Rule) -> tuple[str, ...]:
    """The subject kinds a rule judges (its declaration, else its domain's kind)."""
    if rule.subjects:
        return rule.subjects
    return (_DOMAIN_KINDS.get(rule.id.partition(".")[0], "environment"),)


def subjects(system: ir.System) -> dict[str, list[Subject]]:
    """Every subject of each kind, in a stable order (names sorted, list entries by index)."""
    env = system.environment.name
    found: dict[str, list[Subject]] = {
        "dataSources": [_named("dataSources", n, ("dataSources", n)) for n in system.data_sources],
        "models": [_named("models", n, ("models", n)) for n in system.models],
        "slas": [_named("slas", n, ("slas", n)) for n in system.slas],
        "secrets": [
            _named("secrets", n, ("security", "secrets", n)) for n in system.security.secrets
        ],
        "access": [
            Subject("access", f"{rule.principal} -> {', '.join(rule.resources)}", format_path(p))
            for index, rule in enumerate(system.security.access)
            if (p := ("security", "access", index))
        ],
        "allows": [
            Subject("allows", f"{allow.source} -> {allow.destination}", format_path(q))
            for index, allow in enumerate(system.security.allow)
            if (q := ("security", "network", "allow", index))
        ],
        "environment": [_named("environment", env, ("environments", env))],
    }
    return found


def _named(kind: str, name: str, path: SpecPath) -> Subject:
    return Subject(kind, name, format_path(path))


@dataclass(frozen=True, slots=True)
class _Index:
    """Subjects by formatted path, to find the most specific one above a finding's path."""

    by_path: Mapping[str, Subject]
    environment: Subject

    def subject_of(self, path: str) -> Subject:
        for prefix in reversed(_prefixes(path)):
            found = self.by_path.get(prefix)
            if found is not None:
                return found
        return self.environment


def _prefixes(path: str) -> list[str]:
    """Each ancestor of a formatted spec path and the path itself, shortest first:
    ``models.a.image`` -> ``models``, ``models.a``, ``models.a.image``. Segments are ``name``,
    ``.name``, ``[index]`` and ``["quoted name"]`` (with ``\\`` and ``\"`` escaped), as
    ``format_path`` writes them, so a name holding dots or brackets stays one segment."""
    cuts: list[int] = []
    index, size = 0, len(path)
    while index < size:
        if path.startswith('["', index):
            index += 2
            while index < size and path[index] != '"':
                index += 2 if path[index] == "\\" else 1
            index += 2  # the closing quote and bracket
        elif path[index] == "[":
            index = path.find("]", index) + 1 or size
        else:
            index += 1 if path[index] == "." else 0
            while index < size and path[index] not in ".[":
                index += 1
        cuts.append(min(index, size))
    return [path[:cut] for cut in cuts]


def controls(
    system: ir.System,
    rules: Sequence[Rule],
    found: Iterable[Diagnostic],
    waived: Iterable[Diagnostic],
    waivers: Sequence[WaiverEntry],
    graph_evaluated: bool,
) -> tuple[tuple[RuleEntry, ...], tuple[Control, ...]]:
    """The rules in force and the matrix rows, rules by id, then subjects by kind and path."""
    every = subjects(system)
    index = _Index({s.path: s for kind in every.values() for s in kind}, every["environment"][0])
    by_rule: dict[str, dict[str, tuple[Subject, list[FindingNote], list[WaiverEntry]]]] = {}
    known = {rule.id for rule in rules}
    for diagnostic, is_waived in [*((d, False) for d in found), *((d, True) for d in waived)]:
        if "." not in diagnostic.code:
            continue  # not a policy finding (a policy configuration problem)
        subject = index.subject_of(diagnostic.path)
        slot = by_rule.setdefault(diagnostic.code, {}).setdefault(subject.path, (subject, [], []))
        if is_waived:
            cover = _cover(diagnostic, waivers)
            if cover is not None and cover not in slot[2]:
                slot[2].append(cover)
            slot[1].append(FindingNote(diagnostic.message, "waived", place(diagnostic.location)))
        else:
            note = FindingNote(
                diagnostic.message, diagnostic.severity.value, place(diagnostic.location)
            )
            slot[1].append(note)
    entries: list[RuleEntry] = []
    rows: list[Control] = []
    for rule in rules:
        severity = _severity(system, rule)
        entries.append(_entry(rule, severity, "builtin"))
        noted = by_rule.get(rule.id, {})
        listed = [s for kind in rule_kinds(rule) for s in every[kind]]
        if noted:  # findings on subjects outside the rule's kinds get their own rows
            paths = {x.path for x in listed}
            listed += [s for s, _, _ in noted.values() if s.path not in paths]
        for subject in listed:
            rows.append(_row(rule, severity, subject, noted.get(subject.path), graph_evaluated))
    for rule_id in sorted(set(by_rule) - known):
        entries.append(RuleEntry(rule_id, "organisation policy (Rego)", "error", "error",
                                 False, (), False, "rego"))  # fmt: skip
        for subject, notes, covers in by_rule[rule_id].values():
            rows.append(_judged(rule_id, "error", subject, notes, covers))
    entries.sort(key=lambda e: e.id)
    rows.sort(key=lambda r: (r.rule, _KIND_ORDER[r.subject.kind], r.subject.path))
    return tuple(entries), tuple(rows)


_KIND_ORDER = {
    kind: i
    for i, kind in enumerate(
        ("environment", "dataSources", "models", "slas", "secrets", "access", "allows")
    )
}


def _severity(system: ir.System, rule: Rule) -> str:
    return system.policies.severities.get(rule.id, rule.severity.value)


def _entry(rule: Rule, severity: str, source: str) -> RuleEntry:
    return RuleEntry(
        rule.id,
        rule.title,
        severity,
        rule.severity.value,
        rule.mandatory,
        rule.mirrors,
        rule.reads_graph,
        "builtin" if source == "builtin" else "rego",
    )


def _row(
    rule: Rule,
    severity: str,
    subject: Subject,
    noted: tuple[Subject, list[FindingNote], list[WaiverEntry]] | None,
    graph_evaluated: bool,
) -> Control:
    if severity == "off":
        return Control(rule.id, subject, "off", severity, (), None)
    if rule.reads_graph and not graph_evaluated:
        return Control(rule.id, subject, "not-evaluated", severity, (), None)
    if noted is None:
        return Control(rule.id, subject, "pass", severity, (), None)
    return _judged(rule.id, severity, subject, noted[1], noted[2])


def _judged(
    rule_id: str,
    severity: str,
    subject: Subject,
    notes: list[FindingNote],
    covers: list[WaiverEntry],
) -> Control:
    failing = any(note.severity != "waived" for note in notes)
    status: Status = "fail" if failing else "waived"
    ordered = tuple(sorted(notes, key=_note_key))
    waiver = covers[0] if covers and not failing else None
    return Control(rule_id, subject, status, severity, ordered, waiver)


def _note_key(note: FindingNote) -> tuple[str, int, int, str]:
    where = note.place
    return (
        (where.file, where.line, where.column, note.message) if where else ("", 0, 0, note.message)
    )


def _cover(diagnostic: Diagnostic, waivers: Sequence[WaiverEntry]) -> WaiverEntry | None:
    """The first valid waiver (in spec order) that covers a waived finding, as the engine picks."""
    for waiver in waivers:
        if waiver.due == "expired" or waiver.policy != diagnostic.code:
            continue
        if target_pattern(waiver.target).match(diagnostic.path):
            return waiver
    return None


def waiver_entries(
    system: ir.System, waived: Sequence[Diagnostic], today: date | None
) -> tuple[WaiverEntry, ...]:
    """Every waiver of the environment with its days left and calendar bucket, in spec order."""
    entries = []
    for waiver in system.waivers:
        expires = date.fromisoformat(waiver.expires)
        left = (expires - today).days if today is not None else None
        pattern = target_pattern(waiver.target)
        used = (left is None or left >= 0) and any(
            d.code == waiver.policy and pattern.match(d.path) for d in waived
        )
        entries.append(
            WaiverEntry(
                waiver.policy,
                waiver.target,
                waiver.owner,
                waiver.reason,
                waiver.ticket,
                waiver.expires,
                left,
                _due(left),
                used,
                place(waiver.origin.location),
            )
        )
    return tuple(entries)


def _due(left: int | None) -> Due:
    if left is None:
        return "undated"
    if left < 0:
        return "expired"
    return "30d" if left <= SOON else "90d" if left <= LATER else "later"


def summary(rows: Iterable[Control]) -> ControlsSummary:
    counts = {"pass": 0, "fail": 0, "waived": 0, "off": 0, "not-evaluated": 0}
    for row in rows:
        counts[row.status] += 1
    return ControlsSummary(
        counts["pass"], counts["fail"], counts["waived"], counts["off"], counts["not-evaluated"]
    )
