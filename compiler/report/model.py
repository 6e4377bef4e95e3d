"""The governance report of one environment, as frozen dataclasses (``mlplane report``).

Four parts, each computed from the resolved system model and the policy engine's results
(``compiler/report/build.py``): the data register (a record of processing: every data source,
where it lives, how long it is kept, who reads it and where it is processed), model cards
(what each model is, reads, explains, monitors and promises), the controls matrix (every
policy rule against every subject it judges, with waivers and a waiver calendar) and the
lineage graph (data sources, derived sources, models, endpoints, outputs and SLAs).

Everything is ordered deterministically (names sorted, rules by id) and holds only text,
numbers and booleans, so the renderers (``json_format``, ``markdown``, ``html``) need no
knowledge of the spec. Field names map to the JSON report's camelCase keys one to one
(``docs/report.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlplane.compiler.core.lineage import Lineage

REPORT_VERSION = "mlplane.dev/report/v1"
"""The version of the report's JSON form; its schema is ``docs/report.v1.schema.json``."""

Status = Literal["pass", "fail", "waived", "off", "not-evaluated"]
"""A rule on one subject: no finding, a finding, a finding a valid waiver covers, the rule is
turned off in this environment, or the rule reads the resource graph and none was lowered."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where something is written in the spec (``file:line:col``), or empty when generated."""

    file: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment setting as its target shows it (``region: eu-west-1``)."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Processing:
    """Where the environment processes data: its target, residency and target settings."""

    environment: str
    target: str
    production: bool
    residency: str | None
    namespace: str
    settings: tuple[Setting, ...]


@dataclass(frozen=True, slots=True)
class Grant:
    """An access rule of ``security.access`` that names a data source or model."""

    principal: str
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DataEntry:
    """One data source in the register."""

    name: str
    type: str
    uri: str
    owner: str
    description: str | None
    classification: str
    residency: str | None
    retention: str | None
    retention_seconds: float | None
    encryption: str | None
    freshness: str | None
    freshness_seconds: float | None
    managed: bool
    derived_from: tuple[str, ...]
    upstream: tuple[str, ...]
    """Every data source this one derives from, transitively."""
    derived: tuple[str, ...]
    """Every data source derived from this one, transitively."""
    readers: tuple[str, ...]
    """Every model that reads this source, directly or through derived sources."""
    writers: tuple[str, ...]
    """Every model that writes into this source (captured traffic, batch outputs)."""
    grants: tuple[Grant, ...]
    slas: tuple[str, ...]
    place: Place | None


@dataclass(frozen=True, slots=True)
class InputRef:
    """A data source a model reads, with its classification (``direct``: listed in inputs)."""

    name: str
    classification: str
    residency: str | None
    direct: bool


@dataclass(frozen=True, slots=True)
class SlaEntry:
    """An SLA of a model or data source: objective, window and the error budget it leaves."""

    name: str
    indicator: str
    objective: float
    window: str
    error_budget_percent: float
    error_budget: str
    """The budget as time over the window (``21m36s`` of 30 days at 99.95%)."""
    owner: str


@dataclass(frozen=True, slots=True)
class DriftEntry:
    method: str
    threshold: float
    features: tuple[str, ...]
    window: str


@dataclass(frozen=True, slots=True)
class RolloutEntry:
    strategy: str
    steps: tuple[int, ...]
    """Traffic percentages of the canary steps (empty for other strategies)."""
    pause: str | None
    gates: tuple[str, ...]
    """The SLAs whose objectives judge the new version during the rollout."""


@dataclass(frozen=True, slots=True)
class TrainingEntry:
    schedule: str
    image: str
    timeout: str
    runs_in: str
    """Where the job runs: the environment's target and namespace (and instance type)."""
    output: str | None


@dataclass(frozen=True, slots=True)
class ControlRef:
    """A rule's status on a model, as its card lists it."""

    rule: str
    status: Status


@dataclass(frozen=True, slots=True)
class ModelCard:
    name: str
    description: str | None
    owner: str
    framework: str
    version: str
    runtime: str
    image: str
    image_digest: str | None
    artifact: str | None
    inputs: tuple[InputRef, ...]
    """Direct inputs first (in declared order), then the sources they derive from (sorted)."""
    outputs: tuple[str, ...]
    exposure: str
    replicas: str
    explainability_required: bool
    explainability_method: str | None
    drift: DriftEntry | None
    rollout: RolloutEntry
    slas: tuple[SlaEntry, ...]
    training: TrainingEntry | None
    controls: tuple[ControlRef, ...]
    place: Place | None


@dataclass(frozen=True, slots=True)
class WaiverEntry:
    policy: str
    target: str
    owner: str
    reason: str
    ticket: str | None
    expires: str
    days_left: int | None
    """Days from the report's date to the expiry (None: no date given)."""
    due: Literal["expired", "30d", "90d", "later", "undated"]
    used: bool
    """Whether it covers a finding in this environment."""
    place: Place | None


@dataclass(frozen=True, slots=True)
class FindingNote:
    message: str
    severity: str
    place: Place | None


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    """One of ``compiler.policy.engine.SUBJECT_KINDS``."""
    name: str
    path: str
    """The spec path (``models.scorer``); the environment's is ``environments.<env>``."""


@dataclass(frozen=True, slots=True)
class Control:
    """One rule on one subject."""

    rule: str
    subject: Subject
    status: Status
    severity: str
    """The rule's severity in this environment (``off`` when turned off)."""
    findings: tuple[FindingNote, ...]
    waiver: WaiverEntry | None


@dataclass(frozen=True, slots=True)
class RuleEntry:
    id: str
    title: str
    severity: str
    default_severity: str
    mandatory: bool
    mirrors: tuple[str, ...]
    reads_graph: bool
    source: Literal["builtin", "rego"]
    """``builtin``: an installed policy pack; ``rego``: an organisation policy, which declares no
    subjects and therefore lists only the subjects it found something about."""


@dataclass(frozen=True, slots=True)
class ControlsSummary:
    passed: int
    failed: int
    waived: int
    off: int
    not_evaluated: int


@dataclass(frozen=True, slots=True)
class Report:
    version: str
    system: str
    owner: str
    description: str | None
    today: str | None
    processing: Processing
    data_register: tuple[DataEntry, ...]
    model_cards: tuple[ModelCard, ...]
    rules: tuple[RuleEntry, ...]
    controls: tuple[Control, ...]
    summary: ControlsSummary
    waivers: tuple[WaiverEntry, ...]
    lineage: Lineage
    graph_rules_evaluated: bool
