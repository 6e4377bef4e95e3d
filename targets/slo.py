"""Error budgets and multi-window, multi-burn-rate thresholds (Google SRE Workbook, ch. 5).

Shared by the two back ends that alert on SLOs: the Prometheus rules (``targets/monitoring/``)
and the AWS target's CloudWatch alarms (``targets/aws/alarms.py``); it imports neither.

A *burn rate* is how fast the error budget is spent relative to the rate that would spend it
exactly over the SLO window: burn rate 1 ends the window with 0 % budget left. An alert pair
fires when the error ratio over a long window AND over a short window (1/12 of it, so the alert
stops soon after the problem does) both exceed ``factor × budget``.

The workbook's factors are fixed for a 30-day window: spending 2 % of the budget in 1 hour is a
burn rate of 0.02 × 720 h / 1 h = 14.4. For another SLO window ``W`` the same *budget fractions*
hold, so each factor is::

    factor = fraction × W / long_window          (floored at 1)

    pair            fraction  severity   30d      28d      7d
    1h  and 5m        2 %     page       14.4     13.44    3.36
    6h  and 30m       5 %     page        6        5.6     1.4
    1d  and 2h       10 %     ticket      3        2.8     1   (0.7 floored)
    3d  and 6h       10 %     ticket      1        1       1   (0.233 floored)

The floor at 1: a burn rate below 1 cannot exhaust the budget within the window, so alerting on
it is noise. A pair whose long window is longer than the SLO window itself is dropped (a 3-day
error ratio says nothing about a 1-day budget). Numbers are Decimals so that 1 − 99.95 % is
exactly 0.0005 and every threshold prints without binary-float noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Severity = Literal["page", "ticket"]

WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""The windows every SLA records an error ratio over."""

WINDOW_SECONDS: dict[str, int] = {
    "5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200,
}  # fmt: skip

RAW_WINDOWS: tuple[str, ...] = ("30m", "1h", "2h", "6h")
"""Windows computed with ``rate()`` over the raw series; 5m comes from the recorded 5m rates and
1d, 3d and the SLO window from ``sum_over_time`` of them (see ``rules.py``)."""

REFERENCE_WINDOW_SECONDS = 30 * 86400
_PRECISION = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class BurnPair:
    """One multi-window condition of the workbook."""

    severity: Severity
    long: str
    short: str
    budget_fraction: Decimal


PAIRS: tuple[BurnPair, ...] = (
    BurnPair("page", "1h", "5m", Decimal("0.02")),
    BurnPair("page", "6h", "30m", Decimal("0.05")),
    BurnPair("ticket", "1d", "2h", Decimal("0.10")),
    BurnPair("ticket", "3d", "6h", Decimal("0.10")),
)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A pair with its factor and error-ratio threshold for one SLA."""

    pair: BurnPair
    factor: Decimal
    ratio: Decimal
    """``factor × budget``: the error ratio both windows must exceed."""


def objective_ratio(objective_percent: float) -> Decimal:
    """99.95 (percent, as written in the spec) -> 0.9995."""
    return Decimal(repr(objective_percent)) / 100


def error_budget(objective_percent: float) -> Decimal:
    """The fraction of events (or of time) allowed to be bad: 99.9 % -> 0.001."""
    return 1 - objective_ratio(objective_percent)


def burn_factor(pair: BurnPair, window_seconds: float) -> Decimal:
    """The burn-rate factor of ``pair`` for an SLO window of ``window_seconds`` (see above)."""
    scaled = pair.budget_fraction * Decimal(repr(window_seconds)) / WINDOW_SECONDS[pair.long]
    return max(Decimal(1), scaled.quantize(_PRECISION)).normalize()


def thresholds(objective_percent: float, window_seconds: float) -> tuple[Threshold, ...]:
    """Every pair that applies to this SLA, with its factor and ratio threshold."""
    budget = error_budget(objective_percent)
    chosen = (p for p in PAIRS if WINDOW_SECONDS[p.long] <= window_seconds)
    return tuple(
        Threshold(p, factor, (factor * budget).normalize())
        for p in chosen
        for factor in (burn_factor(p, window_seconds),)
    )


def number(value: Decimal | float | int) -> str:
    """A number as PromQL and YAML text, without exponent or trailing zeros."""
    text = format(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def window_name(seconds: float) -> str:
    """A PromQL duration for ``seconds`` (30d, 7d, 36h, 90m, 45s)."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
