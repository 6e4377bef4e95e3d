"""The small formats inside spec strings: each accepted form and each rejected one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mlplane.schema import formats, promql_shape


@pytest.mark.parametrize(
    ("text", "millis"),
    [("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("30d", 2_592_000_000), ("2w", 1_209_600_000),
     ("1h30m", 5_400_000), ("100ms", 100), ("1d12h", 129_600_000)],
)  # fmt: skip
def test_durations_accepted(text: str, millis: int) -> None:
    assert formats.parse_duration(text) == millis


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5",
        "5 minutes",
        "5min",
        "m5",
        "1.5h",
        "-5m",
        "0s",
        "12:30",
        "30m1h",
        "1y",
        "99999w",
        "5M",
    ],
)
def test_durations_rejected(text: str) -> None:
    assert formats.parse_duration(text) is None


@pytest.mark.parametrize(
    ("text", "cores"),
    [("1", Decimal(1)), ("500m", Decimal("0.5")), ("2.5", Decimal("2.5")), ("256", Decimal(256))],
)
def test_cpu_accepted(text: str, cores: Decimal) -> None:
    assert formats.parse_cpu(text) == cores


@pytest.mark.parametrize("text", ["two", "0", "0m", "1.2345", "257", "-1", "1 ", "1e3", "500 m"])
def test_cpu_rejected(text: str) -> None:
    assert formats.parse_cpu(text) is None


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512Mi", 512 * 2**20),
        ("2Gi", 2 * 2**30),
        ("1G", 10**9),
        ("1024", 1024),
        ("1.5Gi", 3 * 2**29),
    ],
)
def test_memory_accepted(text: str, size: int) -> None:
    assert formats.parse_memory(text) == size


@pytest.mark.parametrize("text", ["2GB", "2 Gi", "Gi", "-1Mi", "5Ti", "1e9", "2gi"])
def test_memory_rejected(text: str) -> None:
    assert formats.parse_memory(text) is None


def test_memory_suggestion() -> None:
    assert formats.memory_suggestion("2GB") == "2Gi"
    assert formats.memory_suggestion("512mb") == "512Mi"
    assert formats.memory_suggestion("lots") is None


@pytest.mark.parametrize(
    "text",
    ["0 3 * * 0", "*/15 * * * *", "0 0 1 JAN-MAR MON-FRI", "5,10 1-5/2 * * 7", "@daily", "@hourly"],
)
def test_cron_accepted(text: str) -> None:
    assert formats.cron_problem(text) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("61 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day of week"),
        ("* * *", "expected 5 fields"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("TZ=UTC 0 3 * * *", "time zones"),
        ("@reboot", "expected 5 fields"),
    ],
)
def test_cron_rejected(text: str, fragment: str) -> None:
    problem = formats.cron_problem(text)
    assert problem is not None and fragment in problem


def test_image_parsing() -> None:
    digest = "sha256:" + "a" * 64
    assert formats.parse_image(f"ghcr.io/acme/scorer@{digest}") == {
        "registry": "ghcr.io",
        "repository": "acme/scorer",
        "tag": None,
        "digest": digest,
    }
    assert formats.parse_image("acme/scorer:1.2")["registry"] is None  # type: ignore[index]
    assert formats.parse_image("localhost:5000/x:y")["registry"] == "localhost:5000"  # type: ignore[index]
    for bad in (
        "GHCR.io/Acme/X",
        "ghcr.io/acme/x@sha256:abc",
        "ghcr.io/acme/x:",
        "x y",
        "-x",
        "a" * 600,
    ):
        assert formats.parse_image(bad) is None, bad


def test_uri_rules_never_echo_credentials() -> None:
    assert formats.uri_problem("s3://bucket/prefix/", "data") is None
    assert formats.uri_problem("kafka://events.internal:9093/topic", "data") is None
    problem = formats.uri_problem("postgresql://admin:hunter2@db/x", "data")
    assert problem is not None and "hunter2" not in problem and problem.startswith("credentials")
    assert "not supported" in (formats.uri_problem("ftp://x/y", "data") or "")
    assert "no host" in (formats.uri_problem("s3:///x", "data") or "")
    assert formats.uri_problem("file://../../etc/passwd", "artifact") is not None
    assert formats.uri_problem("s3://bucket with space/x", "data") is not None


@pytest.mark.parametrize(
    "ref",
    [
        "env:FEAST_TOKEN",
        "aws-sm://risk/pagerduty#routing-key",
        "vault://risk/feast/token",
        "vault://kv/team#key",
        "k8s://risk/feast-token#token",
        "gcp-sm://my-project/secret-name",
        "azure-kv://myvault/secret-name",
    ],
)
def test_secret_refs_accepted(ref: str) -> None:
    assert formats.secret_ref_problem(ref) is None


@pytest.mark.parametrize(
    "ref", ["hunter2", "env:lower", "vault://a/../b", "k8s://ns/name", "vault:/x", "s3://x"]
)
def test_secret_refs_rejected(ref: str) -> None:
    assert formats.secret_ref_problem(ref) is not None


def test_promql_with_window_marker() -> None:
    good = 'sum(rate(http_requests_total{code=~"5.."}[{{window}}]))'
    assert promql_shape.check(good) is None
    assert formats.has_window_marker(good)
    unbalanced = promql_shape.check("sum(rate(x[5m])")
    assert unbalanced is not None
    template = promql_shape.check("x[{{ .Value }}]")
    assert template is not None and "only {{window}}" in template.message


def test_endpoints() -> None:
    for ok in (
        "models.scorer",
        "dataSources.a-b",
        "namespace:payments",
        "cidr:10.0.0.0/8",
        "internet",
        "cidr:::/0",
    ):
        assert formats.endpoint_problem(ok) is None, ok
    for bad in ("cidr:10.0.0.1/8", "models.Scorer", "pods.x", "cidr:300.0.0.0/8"):
        assert formats.endpoint_problem(bad) is not None, bad


def test_labels() -> None:
    assert formats.label_key_ok("app.kubernetes.io/part-of")
    assert formats.label_key_ok("team")
    assert not formats.label_key_ok("-bad")
    assert not formats.label_key_ok("Bad_Prefix/x")
    assert formats.LABEL_VALUE_RE.match("")
    assert not formats.LABEL_VALUE_RE.match('x"} or vector(1) #')


def test_every_aws_region_maps_to_a_residency_zone() -> None:
    assert set(formats.AWS_REGION_RESIDENCY.values()) <= set(formats.RESIDENCY_ZONES)
    assert formats.AWS_REGION_RESIDENCY["eu-west-2"] == "uk"  # London is not in the EU
    assert formats.AWS_REGION_RESIDENCY["eu-central-2"] == "ch"


def test_residency_literal_matches_the_zone_table() -> None:
    import typing

    from mlplane.schema.models import Residency

    assert set(typing.get_args(Residency)) == set(formats.RESIDENCY_ZONES)


def test_dns_suggestions() -> None:
    assert formats.dns_suggestion("Fraud_Model", 40) == "fraud-model"
    assert formats.dns_suggestion("fraud-model", 40) is None
    assert formats.dns_suggestion("___", 40) is None


def test_quote_makes_control_characters_visible() -> None:
    assert formats.quote("a\x1bb") == '"a\\u001bb"'
    assert formats.quote("x" * 200).endswith('\\u2026"')
