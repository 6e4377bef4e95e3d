"""Policy-as-code: rules over the system model, severity tuning and reviewed, expiring waivers.

Rules live in policy packs (``policies/`` is the built-in one), found through the
``mlplane.policies`` entry points (``compiler.core.plugins.policy_packs``); this module never imports
``policies/`` by name. A rule is a small typed function ``(system) -> findings`` registered with
an id, a severity, its rationale and remediation, and the scanner checks it mirrors.

Semantics, in the order the engine applies them to one environment's system model:

1. Rules run in a fixed order: pack name, then rule id (so output never depends on import order).
2. ``policies.rules.<id>.severity`` tunes a rule: ``error``/``warning``/``info``, or ``off``. A
   ``mandatory`` rule cannot be turned off or lowered (``policy-mandatory`` at that line): the
   only way around it is a waiver, which is reviewed, owned and expires. An unknown id there is
   ``ref-undefined`` with a suggestion. ``policies.rules.<id>.params`` sets the parameters a
   rule declares (``RulePack.rule_with_params``: a pydantic model of the spec's kind, strict,
   closed, camelCase, every field with a default): its thresholds that are a policy decision,
   such as the longest retention of PHI. They are checked against that model here, not by the
   spec's schema pass, because the set of rules is the installed packs' (the exported JSON
   Schema still describes each built-in rule's parameters: ``compiler/build/schema_files.py``);
   an unknown parameter is ``unknown-field`` with a suggestion, a wrong type ``wrong-type``, a
   value out of its range ``out-of-range``, each at its line. A rule whose parameters are wrong
   does not run (its findings would judge against thresholds nobody chose).
3. Waivers (``waivers:``) match findings by policy id and target, a spec path in which ``*``
   stands for one path segment and which covers everything below it. A waived finding is not a
   problem any more, but stays visible: it goes to ``CompileResult.waived`` as an ``info``
   diagnostic "waived until DATE by OWNER (reason)", which every ``validate`` format prints.
   A waiver past its date is an error at its ``expires`` line and waives nothing (a waiver is
   valid through the day it names); one that matches nothing in any evaluated environment is a
   warning at its own line; one for an unknown policy is ``ref-undefined`` with a suggestion.
   Expiry needs today's date, which is a parameter: the library never reads the clock, and when
   no date is given (``today=None``) expiry is not evaluated and every waiver counts as valid.

Findings become diagnostics whose code is the rule id (each rule id is registered as a code, so
SARIF describes it), located at ``system.locate(finding.path)``, with the remediation and the
mirrored checks as the hint. Organisation policies in Rego (``compiler.policy.rego``) produce
findings that go through the same tuning and waivers.

Graph rules (``RulePack.graph_rule``) read what a target lowered, not the spec: a
``(graph, system) -> findings`` function over one environment's ``ResourceGraph`` (the AWS
rules mirror Checkov's checks on the resources Checkov cannot read in a Pulumi program). A
finding on a resource carries the spec path and location of the resource's ``origin``
(:func:`resource_finding`), so tuning, waivers (``target: dataSources.training-data``) and
locations work exactly as for system rules. They run whenever a graph is lowered with policies
(``PolicyRun.check_graph``: ``mlplane build``, ``apply``, which builds, and ``plan``, on the
head's graph, whether lowered or read from the plan cache: ``compiler/plan/run.py``), not in
``validate``, which lowers nothing; a waiver for a graph rule is therefore not reported
unmatched by a run that checked no graph.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from typing import Any, NotRequired, TypedDict, TypeVar, Unpack

from pydantic import BaseModel, ValidationError

from mlplane.compiler.core import codes, ir, plugins
from mlplane.compiler.core.diagnostics import (
    Diagnostic,
    Diagnostics,
    Location,
    Related,
    Severity,
    SpecPath,
    format_path,
    register_code,
)
from mlplane.compiler.core.graph import Resource, ResourceGraph
from mlplane.compiler.frontend.schema_pass import describe_error, fields_at
from mlplane.schema import formats
from mlplane.schema.types import POLICY_ID

"""``domain.rule-name``: the form waivers and ``policies.rules`` accept (schema ``PolicyId``)."""
MIRROR_ID = re.compile(r"^(CKV2?_[A-Z0-9]+_\d+|AVD-[A-Z0-9]+-\d{4})$")
"""A Checkov check id (``CKV_K8S_43``, ``CKV2_AWS_6``) or a Trivy/AVD id (``AVD-KSV-0011``)."""
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}
SUBJECT_KINDS = ("dataSources", "models", "slas", "secrets", "access", "allows", "environment")
"""What a rule can judge: data sources, models, SLAs, secrets (``security.secrets.<name>``),
access rules (``security.access[i]``), network allows (``security.network.allow[i]``), or the
environment as a whole (its settings and the system-wide ``security`` section)."""


@dataclass(frozen=True, slots=True)
class RelatedPath:
    """Another spec place that takes part in a finding (the data source a model reads ...)."""

    path: SpecPath
    message: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation: what is wrong and where (a spec path of the effective spec)."""

    message: str
    path: SpecPath
    related: tuple[RelatedPath, ...] = ()
    rule: str = ""
    """Filled in by the engine with the id of the rule that yielded the finding."""
    location: Location | None = None
    """Where to report it when the rule knows better than ``system.locate(path)`` (the origin
    of a generated resource)."""


Check = Callable[[ir.System], Iterable[Finding]]
GraphCheck = Callable[[ResourceGraph, ir.System], Iterable[Finding]]
"""A graph rule: the resource graph of one environment (and its system) -> findings."""
P = TypeVar("P", bound=BaseModel)
ParamCheck = Callable[[ir.System, P], Iterable[Finding]]
"""A rule with parameters: the system and the rule's parameters (its model) -> findings."""


def resource_finding(resource: Resource, message: str) -> Finding:
    """A finding on a generated resource, at the spec element that produced it."""
    origin = resource.origin
    return Finding(message, origin.path, location=origin.location)


def _no_findings(system: ir.System) -> Iterable[Finding]:
    """The system check of a graph rule: it finds nothing in the system model alone."""
    del system
    return ()


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: Severity
    rationale: str
    remediation: str
    check: Check
    mirrors: tuple[str, ...] = ()
    mandatory: bool = False
    example: str = ""
    """A spec excerpt that violates the rule (for the generated documentation)."""
    fix: str = ""
    """The same excerpt, fixed."""
    graph_check: GraphCheck | None = None
    """Set for a graph rule, which runs on each lowered resource graph (``check`` finds
    nothing)."""
    params: type[BaseModel] | None = None
    """The parameters the rule takes (``policies.rules.<id>.params``), with their defaults."""
    param_check: Callable[[ir.System, Any], Iterable[Finding]] | None = None
    """Set for a rule with parameters: ``check`` runs it with the defaults."""
    subjects: tuple[str, ...] = ()
    """The kinds of spec element the rule judges (:data:`SUBJECT_KINDS`), where its findings
    point: the rows of the controls matrix (``mlplane report``). Empty: the kind its id's
    domain names (``models.*``: models, ``data.*``: data sources, ``slas.*``: SLAs), else the
    environment."""

    @property
    def reads_graph(self) -> bool:
        return self.graph_check is not None

    def findings(self, system: ir.System, params: BaseModel | None = None) -> Iterable[Finding]:
        """The rule's findings on ``system``, with ``params`` (the defaults when None)."""
        if self.param_check is not None and params is not None:
            return self.param_check(system, params)
        return self.check(system)

    def hint(self) -> str:
        mirrors = f" (mirrors {', '.join(self.mirrors)})" if self.mirrors else ""
        return self.remediation + mirrors


class RuleMeta(TypedDict):
    """What every rule declares besides its id and its check (the keywords of
    :meth:`RulePack.rule`, :meth:`RulePack.rule_with_params` and :meth:`RulePack.graph_rule`)."""

    title: str
    severity: Severity
    rationale: str
    remediation: str
    mirrors: NotRequired[Sequence[str]]
    mandatory: NotRequired[bool]
    example: NotRequired[str]
    fix: NotRequired[str]
    subjects: NotRequired[Sequence[str]]


def _rule(id: str, meta: RuleMeta, check: Check, **kinds: Any) -> Rule:
    """The :class:`Rule` of one registration; ``kinds`` sets its graph check or parameters."""
    return Rule(
        id,
        meta["title"],
        meta["severity"],
        meta["rationale"],
        meta["remediation"],
        check,
        tuple(meta.get("mirrors", ())),
        meta.get("mandatory", False),
        meta.get("example", ""),
        meta.get("fix", ""),
        subjects=tuple(meta.get("subjects", ())),
        **kinds,
    )


class RulePack:
    """A named registry of rules; satisfies ``compiler.core.plugins.PolicyPack``.

    Domain modules register with ``@pack.rule(...)``; the pack checks each rule's metadata at
    registration, so that a typo in an id or a mirrored check fails at import, not in a report.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._rules: dict[str, Rule] = {}

    def rule(self, id: str, **meta: Unpack[RuleMeta]) -> Callable[[Check], Check]:
        def register(check: Check) -> Check:
            self.add(_rule(id, meta, check))
            return check

        return register

    def rule_with_params(
        self, id: str, *, params: type[P], **meta: Unpack[RuleMeta]
    ) -> Callable[[ParamCheck[P]], ParamCheck[P]]:
        """Like :meth:`rule`, for a check that takes the rule's parameters: ``params`` is a
        pydantic model whose fields all have defaults (the built-in thresholds)."""

        def register(check: ParamCheck[P]) -> ParamCheck[P]:
            defaults = params()

            def with_defaults(system: ir.System) -> Iterable[Finding]:
                return check(system, defaults)

            self.add(_rule(id, meta, with_defaults, params=params, param_check=check))
            return check

        return register

    def graph_rule(self, id: str, **meta: Unpack[RuleMeta]) -> Callable[[GraphCheck], GraphCheck]:
        """Like :meth:`rule`, for a check of the resource graph (see the module docstring)."""

        def register(check: GraphCheck) -> GraphCheck:
            self.add(_rule(id, meta, _no_findings, graph_check=check))
            return check

        return register

    def add(self, rule: Rule) -> None:
        _validate(rule)
        if rule.id in self._rules:
            raise ValueError(f"policy rule {rule.id!r} is registered twice in pack {self.name!r}")
        self._rules[rule.id] = rule

    def rules(self) -> tuple[Rule, ...]:
        return tuple(sorted(self._rules.values(), key=lambda rule: rule.id))


def _validate(rule: Rule) -> None:
    if not POLICY_ID.match(rule.id) or len(rule.id) > 80:
        raise ValueError(f"policy rule id {rule.id!r} is not of the form domain.rule-name")
    bad = [m for m in rule.mirrors if not MIRROR_ID.match(m)]
    if bad:
        raise ValueError(f"policy rule {rule.id!r} mirrors unknown check ids {bad}")
    if not rule.title or rule.title.endswith(".") or not rule.rationale or not rule.remediation:
        raise ValueError(f"policy rule {rule.id!r} needs a title (no final '.'), rationale, remedy")
    if rule.mandatory and rule.severity is not Severity.ERROR:
        raise ValueError(f"mandatory policy rule {rule.id!r} must be an error")
    unknown = [kind for kind in rule.subjects if kind not in SUBJECT_KINDS]
    if unknown:
        raise ValueError(f"policy rule {rule.id!r} judges unknown subject kinds {unknown}")


@cache
def installed_rules() -> tuple[Rule, ...]:
    """Every rule of every installed pack, in evaluation order; registers their codes once."""
    found: dict[str, Rule] = {}
    for name, pack in sorted(plugins.policy_packs().items()):
        for rule in sorted(pack.rules(), key=lambda r: str(getattr(r, "id", ""))):
            if not isinstance(rule, Rule) or rule.id in found:
                raise plugins.PluginError(f"policy pack {name!r}: {rule!r} is not a new Rule")
            found[rule.id] = rule
            register_code(rule.id, rule.title, rule.severity)
            codes.register_help(rule.id, rule.rationale, rule.hint())
    return tuple(found.values())


def rule_by_id(rule_id: str) -> Rule | None:
    return next((rule for rule in installed_rules() if rule.id == rule_id), None)


# --- evaluating one environment ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Raised:
    """A finding with the properties of the rule that raised it (built-in or Rego)."""

    finding: Finding
    severity: Severity
    hint: str | None
    location: Location | None = None
    """Where to report a finding whose path is not in the spec (a Rego result)."""


class ExternalFindings:
    """Findings from outside the Python packs (organisation policies in Rego)."""

    def known_ids(self, system: ir.System) -> frozenset[str]:
        return frozenset()

    def findings(self, system: ir.System, diagnostics: Diagnostics) -> Iterable[Raised]:
        return ()


@dataclass(frozen=True, slots=True)
class _Waiver:
    waiver: ir.Waiver
    pattern: re.Pattern[str]

    def covers(self, finding: Finding) -> bool:
        return finding.rule == self.waiver.policy and bool(
            self.pattern.match(format_path(finding.path))
        )


def target_pattern(target: str) -> re.Pattern[str]:
    """A waiver target as a regex over formatted spec paths: ``*`` is one segment (a name or an
    index), and a target covers the paths below it (``models.scorer`` covers its image)."""
    body = re.escape(target).replace(r"\*", r"[^.\[\]]*")
    return re.compile(rf"^{body}(?:$|[.\[])")


@dataclass
class PolicyRun:
    """Evaluates every environment of one compile and remembers which waivers were used."""

    today: date | None = None
    external: ExternalFindings = field(default_factory=ExternalFindings)
    rules: tuple[Rule, ...] = field(default_factory=installed_rules)
    _used: set[Location] = field(default_factory=set)
    _unused: dict[Location, ir.Waiver] = field(default_factory=dict)
    _graphs_checked: bool = False

    def check(self, system: ir.System, diagnostics: Diagnostics, waived: Diagnostics) -> None:
        known = {rule.id for rule in self.rules} | self.external.known_ids(system)
        severities = _tune(system, self.rules, known, diagnostics)
        params = rule_params(system, self.rules, known, diagnostics)
        waivers = self._waivers(system, known, diagnostics)
        for raised in self._raise(system, severities, params, diagnostics):
            self._report(system, raised, waivers, diagnostics, waived)

    def check_graph(
        self, system: ir.System, graph: ResourceGraph, diagnostics: Diagnostics, waived: Diagnostics
    ) -> None:
        """Run the graph rules on ``graph``, lowered from ``system``; tuning and waivers as in
        :meth:`check`, whose diagnostics about them (unknown ids, expiry) are not repeated."""
        self._graphs_checked = True
        known = {rule.id for rule in self.rules} | self.external.known_ids(system)
        severities = _tune(system, self.rules, known, Diagnostics())
        waivers = self._waivers(system, known, Diagnostics())
        for rule in self.rules:
            severity = severities.get(rule.id, rule.severity)
            if rule.graph_check is None or severity is None:
                continue
            for finding in rule.graph_check(graph, system):
                raised = Raised(replace(finding, rule=rule.id), severity, rule.hint())
                self._report(system, raised, waivers, diagnostics, waived)

    @property
    def used_waivers(self) -> frozenset[Location]:
        """Where the waivers that covered a finding so far are written."""
        return frozenset(self._used)

    def graph_checked_elsewhere(self, used: Iterable[Location]) -> None:
        """Record a :meth:`check_graph` run on a copy of this run (a build's worker process)
        and the waivers it used, so that :meth:`finish` judges them as if run here."""
        self._graphs_checked = True
        self._used.update(used)

    def finish(self, diagnostics: Diagnostics) -> None:
        """Warn about waivers that matched nothing in any environment evaluated (a waiver for
        a graph rule only when a graph was checked)."""
        graph_rules = {rule.id for rule in self.rules if rule.reads_graph}
        for location, waiver in sorted(self._unused.items()):
            if location in self._used:
                continue
            if waiver.policy in graph_rules and not self._graphs_checked:
                continue
            diagnostics.warning(
                codes.WAIVER_UNMATCHED,
                f"waiver for {waiver.policy!r} on {waiver.target!r} matches no finding",
                location,
                waiver.origin.path,
                "the finding is fixed (or the rule is off): remove the waiver, or correct its "
                "target",
            )

    def _raise(
        self,
        system: ir.System,
        severities: Mapping[str, Severity | None],
        params: Mapping[str, BaseModel | None],
        found: Diagnostics,
    ) -> Iterable[Raised]:
        for rule in self.rules:
            severity = severities.get(rule.id, rule.severity)
            if severity is None or rule.reads_graph:
                continue
            if rule.id in params and params[rule.id] is None:
                continue  # its parameters are wrong (reported)
            for finding in rule.findings(system, params.get(rule.id)):
                yield Raised(replace(finding, rule=rule.id), severity, rule.hint())
        for raised in self.external.findings(system, found):
            tuned = severities.get(raised.finding.rule, raised.severity)
            if tuned is not None:
                yield replace(raised, severity=tuned)

    def _waivers(
        self, system: ir.System, known: set[str], diagnostics: Diagnostics
    ) -> list[_Waiver]:
        active: list[_Waiver] = []
        for waiver in system.waivers:
            if waiver.policy not in known:
                path = (*waiver.origin.path, "policy")
                _undefined(system, "waiver names policy", waiver.policy, known, path, diagnostics)
                continue
            if self.today is not None and date.fromisoformat(waiver.expires) < self.today:
                _expired(system, waiver, self.today, diagnostics)
                continue
            self._unused.setdefault(waiver.origin.location, waiver)
            active.append(_Waiver(waiver, target_pattern(waiver.target)))
        return active

    def _report(
        self,
        system: ir.System,
        raised: Raised,
        waivers: list[_Waiver],
        diagnostics: Diagnostics,
        waived: Diagnostics,
    ) -> None:
        finding = raised.finding
        cover = next((w.waiver for w in waivers if w.covers(finding)), None)
        if cover is None:
            diagnostics.add(to_diagnostic(system, raised))
            return
        self._used.add(cover.origin.location)
        message = f"{finding.message}; {waived_note(cover)}"
        noted = Raised(replace(finding, message=message), Severity.INFO, None, raised.location)
        waived.add(to_diagnostic(system, noted))


def waived_note(waiver: ir.Waiver) -> str:
    """``waived until DATE by OWNER (reason)``, the reason cut to a line's worth."""
    reason = " ".join(waiver.reason.split())
    reason = reason if len(reason) <= 120 else reason[:119].rstrip() + "…"
    ticket = f"; ticket {waiver.ticket}" if waiver.ticket else ""
    return f"waived until {waiver.expires} by {waiver.owner} ({reason}){ticket}"


def to_diagnostic(system: ir.System, raised: Raised) -> Diagnostic:
    """The finding located in the spec, its related places with it (those that exist)."""
    finding = raised.finding
    related = tuple(
        Related(location, item.message)
        for item in finding.related
        if (location := system.locate(item.path)) is not None
    )
    located = system.locate(finding.path) if finding.path else None
    location = finding.location or located or raised.location
    path = format_path(finding.path)
    return Diagnostic(
        finding.rule, raised.severity, finding.message, location, path, raised.hint, related
    )


def _tune(
    system: ir.System, rules: Sequence[Rule], known: set[str], diagnostics: Diagnostics
) -> dict[str, Severity | None]:
    """The severity of each rule in this environment (None: off), from ``policies.rules``."""
    by_id = {rule.id: rule for rule in rules}
    tuned: dict[str, Severity | None] = {}
    for rule_id, setting in system.policies.severities.items():
        path: SpecPath = ("policies", "rules", rule_id)
        wanted = None if setting == "off" else Severity(setting)
        if rule_id not in known:
            _undefined(system, "policy rule", rule_id, known, path, diagnostics)
        elif _allowed(system, by_id.get(rule_id), wanted, path, diagnostics):
            tuned[rule_id] = wanted
    return tuned


def rule_params(
    system: ir.System, rules: Sequence[Rule], known: set[str], diagnostics: Diagnostics
) -> dict[str, BaseModel | None]:
    """The parameters ``policies.rules.<id>.params`` gives each rule, checked against the rule's
    model (None for a rule whose parameters are wrong, reported at their lines). An
    organisation policy in Rego declares no model: it reads its parameters as written from its
    input (``input.policies.params``), so they are not checked here."""
    by_id = {rule.id: rule for rule in rules}
    checked: dict[str, BaseModel | None] = {}
    for rule_id, given in system.policies.params.items():
        path: SpecPath = ("policies", "rules", rule_id, "params")
        rule = by_id.get(rule_id)
        if rule_id not in known:
            if rule_id not in system.policies.severities:  # else reported by _tune
                _undefined(system, "policy rule", rule_id, known, path[:-1], diagnostics)
        elif rule is None:
            continue  # an organisation policy (Rego): it reads them as written (rego.py)
        elif rule.params is None:
            diagnostics.error(
                codes.UNKNOWN_FIELD,
                f"policy rule {rule_id!r} takes no parameters",
                system.locate(path),
                path,
                f"remove params (mlplane policies explain {rule_id})",
            )
        else:
            checked[rule_id] = _checked_params(system, rule, rule.params, given, path, diagnostics)
    return checked


def _checked_params(
    system: ir.System,
    rule: Rule,
    model: type[BaseModel],
    given: Mapping[str, Any],
    path: SpecPath,
    diagnostics: Diagnostics,
) -> BaseModel | None:
    try:
        return model.model_validate(dict(given))
    except ValidationError as error:
        for item in error.errors(include_url=False):
            where: SpecPath = (*path, *(part for part in item["loc"] if part != "[key]"))
            if item["type"] == "extra_forbidden":
                name = str(where[-1])
                choices = sorted(fields_at(where[len(path) : -1], model))
                suggestion = formats.closest(name, choices)
                message = f"unknown parameter {name!r} of policy rule {rule.id!r}" + (
                    f" (did you mean {suggestion!r}?)" if suggestion else ""
                )
                hint = f"parameters here: {', '.join(choices)}" if choices else None
                code = codes.UNKNOWN_FIELD
            else:
                code, message, hint = describe_error(item, where)
            diagnostics.error(code, message, system.locate(where), where, hint)
        return None


def param_rows(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """(name, kind, default, description) of each parameter of ``model``, nested models
    flattened to dotted names (``maxRetention.phi``): for ``policies explain`` and the docs."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.get("$defs", {})
    rows: list[tuple[str, str, str, str]] = []

    def walk(node: Mapping[str, Any], prefix: str, default: Any) -> None:
        for name, field_schema in node.get("properties", {}).items():
            ref = field_schema.get("$ref") or next(
                (s["$ref"] for s in field_schema.get("allOf", ()) if "$ref" in s), None
            )
            value = field_schema.get("default", (default or {}).get(name))
            if ref is not None:
                walk(definitions[ref.rsplit("/", 1)[-1]], f"{prefix}{name}.", value)
                continue
            described = " ".join(str(field_schema.get("description", "")).split())
            rows.append((prefix + name, _kind(field_schema), _shown(value), described))

    walk(schema, "", None)
    return rows


def _kind(schema: Mapping[str, Any]) -> str:
    if schema.get("pattern") == formats.DURATION_PATTERN:
        kind = "duration"
    else:
        kind = {"integer": "whole number", "number": "number", "boolean": "true or false"}.get(
            str(schema.get("type")), str(schema.get("type", "value"))
        )
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"{kind}, {low:g} to {high:g}"
    if low is not None:
        return f"{kind}, at least {low:g}"
    return kind


def _shown(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _allowed(
    system: ir.System,
    rule: Rule | None,
    wanted: Severity | None,
    path: SpecPath,
    diagnostics: Diagnostics,
) -> bool:
    """Whether ``wanted`` may replace the rule's severity: a mandatory rule only goes up."""
    if rule is None or not rule.mandatory or not _lowers(wanted, rule.severity):
        return True
    shown = wanted.value if wanted is not None else "off"
    diagnostics.error(
        codes.POLICY_MANDATORY,
        f"policy rule {rule.id!r} is mandatory: it cannot be set to {shown!r}",
        system.locate((*path, "severity")),
        path,
        "a mandatory rule can only be waived, with a reason, an owner and an expiry date "
        "(waivers:)",
    )
    return False


def _lowers(wanted: Severity | None, default: Severity) -> bool:
    return wanted is None or _RANK[wanted] < _RANK[default]


def _undefined(
    system: ir.System,
    what: str,
    name: str,
    known: set[str],
    path: SpecPath,
    diagnostics: Diagnostics,
) -> None:
    suggestion = formats.closest(name, sorted(known))
    hint = f"did you mean {suggestion!r}?" if suggestion else "list the rules: mlplane policies"
    diagnostics.error(
        codes.REF_UNDEFINED,
        f"{what} {name!r}, which is not defined",
        system.locate(path),
        path,
        hint,
    )


def _expired(system: ir.System, waiver: ir.Waiver, today: date, diagnostics: Diagnostics) -> None:
    path = (*waiver.origin.path, "expires")
    diagnostics.error(
        codes.WAIVER_EXPIRED,
        f"waiver for {waiver.policy!r} on {waiver.target!r} expired on {waiver.expires} "
        f"(today is {today.isoformat()}); the finding it waived is reported again",
        system.locate(path),
        path,
        f"fix the finding, or renew the waiver with a new review (owner {waiver.owner})",
    )


# --- listing and documenting the rules ------------------------------------------------------------


def rules_table(rules: Sequence[Rule]) -> str:
    """``mlplane policies``: one line per rule."""
    width = max((len(rule.id) for rule in rules), default=0)
    lines = []
    for rule in rules:
        flag = "mandatory" if rule.mandatory else ""
        mirrors = f"  [{', '.join(rule.mirrors)}]" if rule.mirrors else ""
        lines.append(f"{rule.id:<{width}}  {rule.severity:<7}  {flag:<9}  {rule.title}{mirrors}")
    return "\n".join(lines) + "\n"


def explain_rule(rule: Rule) -> str:
    """``mlplane policies explain ID``: everything a reviewer needs about one rule."""
    parts = [
        f"{rule.id}: {rule.title}",
        f"severity: {rule.severity}"
        + (" (mandatory: can be waived, not disabled)" if rule.mandatory else ""),
        f"mirrors: {', '.join(rule.mirrors) or 'none'}",
        *(["reads: the resource graph (run by build, apply and plan)"] if rule.reads_graph else []),
        "",
        "Why:",
        _indent(rule.rationale, wrap=True),
        "",
        "How to fix:",
        _indent(rule.remediation, wrap=True),
    ]
    if rule.params is not None:
        parts += ["", f"Parameters (policies: {{rules: {{{rule.id}: {{params: {{...}}}}}}}}):"]
        for name, kind, default, description in param_rows(rule.params):
            parts += [f"  {name} ({kind}; default {default})"]
            parts += [_indent(description, wrap=True, depth=4)] if description else []
    if rule.example:
        parts += ["", "Violation:", _indent(rule.example), "", "Fixed:", _indent(rule.fix)]
    return "\n".join(parts) + "\n"


def _indent(text: str, wrap: bool = False, depth: int = 2) -> str:
    if wrap:
        pad = " " * depth
        return textwrap.fill(text, width=96, initial_indent=pad, subsequent_indent=pad)
    return "\n".join(f"  {line}" if line else "" for line in text.strip("\n").split("\n"))
