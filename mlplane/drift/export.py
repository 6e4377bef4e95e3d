"""The scores as Prometheus metrics: pushed to a Pushgateway, or a node-exporter textfile.

The gauge is ``mlplane_model_drift_score{namespace, model, feature}``, the contract the
generated SLO rules read (``targets/monitoring/sli.py``).

Pushgateway: one group per model, grouping key ``job="mlplane-drift"``, ``namespace`` and
``model``; the samples carry ``feature`` and the Pushgateway adds the grouping labels to each of
them. A push replaces the model's previous group (HTTP PUT), so a feature no longer monitored
disappears. Prometheus must scrape the Pushgateway with ``honor_labels: true``
(``honorLabels: true`` in a ServiceMonitor), or its own ``namespace`` and ``job`` target labels
would replace the pushed ones.

Textfile: every label is written on the samples; the file is written to a temporary name and
renamed (``prometheus_client.write_to_textfile``), so node-exporter never reads half a file.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import push_to_gateway, write_to_textfile

from mlplane.drift.errors import DriftError, shown

GAUGE = "mlplane_model_drift_score"
HELP = "Drift score of one input feature of a model against its reference sample (mlplane)."
JOB = "mlplane-drift"
PUSH_TIMEOUT_SECONDS = 30.0


def registry(scores: Mapping[str, float], identity: Mapping[str, str]) -> CollectorRegistry:
    """A registry holding the gauge: ``identity`` labels (namespace, model) on every sample,
    unless they travel in the Pushgateway's grouping key (then ``identity`` is empty)."""
    found = CollectorRegistry(auto_describe=True)
    gauge = Gauge(GAUGE, HELP, [*identity, "feature"], registry=found)
    for feature, value in sorted(scores.items()):
        gauge.labels(*identity.values(), feature).set(value)
    return found


def exposition(namespace: str, model: str, scores: Mapping[str, float]) -> str:
    """The text exposition format of the scores, every label on every sample."""
    found = registry(scores, {"namespace": namespace, "model": model})
    return generate_latest(found).decode("utf-8")


def write_textfile(path: str, namespace: str, model: str, scores: Mapping[str, float]) -> None:
    found = registry(scores, {"namespace": namespace, "model": model})
    try:
        write_to_textfile(path, found)
    except OSError as error:
        raise DriftError(f"{path}: cannot write the textfile: {error.strerror}") from None


def push(gateway: str, namespace: str, model: str, scores: Mapping[str, float]) -> None:
    found = registry(scores, {})
    try:
        push_to_gateway(
            gateway,
            job=JOB,
            registry=found,
            grouping_key={"namespace": namespace, "model": model},
            timeout=PUSH_TIMEOUT_SECONDS,
        )
    except OSError as error:
        raise DriftError(f"{shown(gateway)}: the push failed: {error}") from None
