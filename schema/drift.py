"""The drift job of a model's drift monitoring (``models.<m>.monitoring.drift.job``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from mlplane.schema import formats
from mlplane.schema.base import Spec
from mlplane.schema.types import (
    Cpu,
    Cron,
    Duration,
    Feature,
    Image,
    Memory,
    Name,
    fail,
    service_url_parts,
)

PUSHGATEWAY_URL_LIMIT = 512


def _check_pushgateway(value: str) -> str:
    parts = service_url_parts(value, "the Pushgateway URL names only its host and port")
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or len(value) > PUSHGATEWAY_URL_LIMIT
        or any(ch.isspace() for ch in value)
    ):
        raise fail(
            "invalid-uri",
            f"invalid Pushgateway URL {formats.quote(value)}: write http(s)://HOST[:PORT], such "
            "as http://pushgateway.monitoring.svc:9091",
        )
    return value


PushgatewayUrl = Annotated[
    str,
    AfterValidator(_check_pushgateway),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": PUSHGATEWAY_URL_LIMIT,
            "pattern": r"^https?://[^/?#@\s]+/?$",
            "description": "A Pushgateway: http(s)://HOST[:PORT].",
        }
    ),
]


class DriftJobResources(Spec):
    cpu: Cpu | None = None
    memory: Memory | None = None


class DriftJob(Spec):
    """The job that computes the drift scores (``python -m mlplane.drift``): on the window's
    schedule, it reads ``reference`` and the last window of ``current``, scores each feature
    with the drift method and pushes ``mlplane_model_drift_score`` to ``pushgateway``. A
    CronJob on the kubernetes target; the aws target does not generate it (a warning)."""

    image: Image
    """An image with ``mlplane[drift]`` installed (mlplane publishes none); its ``python``
    runs the job. Pinned by digest where the images policy asks for it (production)."""
    reference: Name
    """The data source holding the reference sample (such as a training snapshot): one of the
    model's inputs, an objectStore on s3:// or gs://."""
    current: Name
    """The data source the model's recent inputs are written to: one of the model's inputs,
    an objectStore on s3:// or gs://."""
    format: Literal["parquet", "csv"] = "parquet"
    """The files' format under both data sources."""
    timestamp_column: Feature | None = None
    """A timestamp column of ``current``: the job keeps its rows of the last window. Without
    it, all of ``current`` is the recent sample."""
    schedule: Cron | None = None
    """When the job runs (UTC); default: once per window (1h: hourly, 1d: daily, 7d: weekly
    ...), for windows a cron schedule can repeat."""
    pushgateway: PushgatewayUrl
    """Where the scores are pushed; Prometheus scrapes it with honorLabels: true."""
    max_rows: Annotated[int, Field(ge=1000, le=50_000_000)] = 1_000_000
    """At most this many rows are read from each sample."""
    resources: DriftJobResources = DriftJobResources()
    timeout: Duration = "1h"

    @model_validator(mode="after")
    def _two_samples(self) -> DriftJob:
        if self.reference == self.current:
            raise fail(
                "contradiction",
                f"drift.job compares {self.reference!r} with itself: reference and current "
                "name two data sources",
                fields=("reference", "current"),
            )
        return self
