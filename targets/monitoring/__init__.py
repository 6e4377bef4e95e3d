"""Monitoring for every SLA of a system: Prometheus rules and their unit tests, a Grafana
dashboard and Alertmanager routing (see README.md). Pure functions: no I/O, deterministic text.

The entry points other packages call:

* :func:`monitoring_files` -> ``{"monitoring/rules.yaml": text, ...}`` for ``mlplane build``;
* :func:`prometheus_rule_spec` -> the ``spec`` of one PrometheusRule holding every group;
* :func:`prometheus_rule_specs` -> one such ``spec`` per SLA, for the Kubernetes target;
* :func:`monitoring_problems` -> located problems the build reports before emitting.
"""

from mlplane.targets.monitoring.checks import Problem, monitoring_problems
from mlplane.targets.monitoring.emit import (
    monitoring_files,
    prometheus_rule_spec,
    prometheus_rule_specs,
)

__all__ = [
    "Problem",
    "monitoring_files",
    "monitoring_problems",
    "prometheus_rule_spec",
    "prometheus_rule_specs",
]
