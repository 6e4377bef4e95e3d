"""What the monitoring target cannot do for a spec, as located problems for the build to report.

The front end already rejects what no target could measure (a latency threshold that is not a
bucket boundary, a latency SLA on Triton: ``schema/runtimes.latency_threshold_problem``). What
remains here is specific to this emitter: SLAs it cannot alert on at all, alerts that can never
fire at the chosen objective, and teams whose alerts reach no receiver. Each problem carries the
origin of the spec element it is about, so the build can print ``file:line:col``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlplane.compiler.core import ir
from mlplane.schema import runtimes
from mlplane.targets import slo


@dataclass(frozen=True, slots=True)
class Problem:
    severity: Literal["error", "warning"]
    code: str
    message: str
    origin: ir.Origin


def _sla_problems(system: ir.System, sla: ir.Sla) -> list[Problem]:
    found: list[Problem] = []
    indicator = sla.indicator
    model = system.models.get(sla.subject or "")
    if indicator.kind == "latency" and model is not None:
        threshold = indicator.latency_threshold_seconds or 0
        problem = runtimes.latency_threshold_problem(model.runtime, threshold)
        if problem is not None:
            found.append(Problem("error", "indicator-mismatch", problem, sla.origin))
    chosen = slo.thresholds(sla.objective, sla.window_seconds)
    if not chosen:
        found.append(
            Problem(
                "warning",
                "monitoring-unsupported",
                f"SLA {sla.name!r} has a window shorter than 1h: it gets recording rules but no "
                "burn-rate alerts (the shortest alert window is 1h)",
                sla.origin,
            )
        )
    elif all(t.ratio >= 1 for t in chosen if t.pair.severity == "page"):
        found.append(
            Problem(
                "warning",
                "monitoring-unsupported",
                f"SLA {sla.name!r}: at objective {sla.objective}% no page can fire (the page "
                "thresholds are above 100 % errors); only tickets will",
                sla.origin,
            )
        )
    return found


def _routing_problems(system: ir.System) -> list[Problem]:
    alerting = system.alerting
    if alerting.default_receiver is not None:
        return []
    routed = {route.owner for route in alerting.routes}
    return [
        Problem(
            "warning",
            "monitoring-unrouted",
            f"alerts of team {sla.owner!r} (SLA {sla.name!r}) match no alerting route and there "
            "is no alerting.defaultReceiver: Alertmanager will drop them",
            sla.origin,
        )
        for _, sla in sorted(system.slas.items())
        if sla.owner not in routed
    ]


def monitoring_problems(system: ir.System) -> tuple[Problem, ...]:
    """Every problem of ``system`` for the monitoring emitter, in spec order of the SLAs."""
    found = [p for _, sla in sorted(system.slas.items()) for p in _sla_problems(system, sla)]
    return tuple(found + _routing_problems(system))
