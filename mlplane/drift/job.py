"""One run of the drift job: read both samples, score every feature, publish the scores."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlplane.drift import export, read, scores
from mlplane.drift.errors import DriftError


@dataclass(frozen=True, slots=True)
class Job:
    namespace: str
    model: str
    method: str
    features: tuple[str, ...]
    reference: str
    current: str
    fmt: str
    limits: read.Limits
    bins: int = scores.DEFAULT_BINS
    timestamp_column: str | None = None
    window_seconds: float | None = None
    """With ``timestamp_column``: the current sample is the rows of the last window."""


@dataclass(frozen=True, slots=True)
class Outcome:
    scores: dict[str, float]
    problems: dict[str, str]
    """Features without a score, with the reason."""


def window_of(job: Job, now: datetime) -> read.Window | None:
    if job.timestamp_column is None or job.window_seconds is None:
        return None
    return read.Window(job.timestamp_column, now - timedelta(seconds=job.window_seconds))


def compute(job: Job, now: datetime | None = None) -> Outcome:
    """Every feature's score; a feature that cannot be scored is a problem, not a crash.
    :class:`DriftError` when a sample cannot be read at all."""
    columns = list(job.features)
    reference = read.read_sample(job.reference, job.fmt, columns, job.limits)
    window = window_of(job, now or datetime.now(UTC))
    current = read.read_sample(job.current, job.fmt, columns, job.limits, window)
    found: dict[str, float] = {}
    problems: dict[str, str] = {}
    for feature in job.features:
        try:
            found[feature] = scores.score(
                job.method, reference.column(feature), current.column(feature), job.bins
            )
        except DriftError as error:
            problems[feature] = str(error)
    return Outcome(found, problems)


def report(outcome: Outcome) -> None:
    for feature, problem in sorted(outcome.problems.items()):
        print(f"mlplane.drift: feature {feature!r}: no score: {problem}", file=sys.stderr)
    for feature, value in sorted(outcome.scores.items()):
        print(f"mlplane.drift: feature {feature!r}: {value:.6g}", file=sys.stderr)


def publish(job: Job, outcome: Outcome, pushgateway: str | None, textfile: str | None) -> str:
    """Push or write the scores; returns the exposition text (every label on every sample)."""
    if pushgateway is not None:
        export.push(pushgateway, job.namespace, job.model, outcome.scores)
    if textfile is not None:
        export.write_textfile(textfile, job.namespace, job.model, outcome.scores)
    return export.exposition(job.namespace, job.model, outcome.scores)
