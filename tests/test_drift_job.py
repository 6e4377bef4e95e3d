"""``python -m mlplane.drift``: known distributions give known scores, reads are bounded and
located, and the scores reach Prometheus with the labels the SLO rules read.

Reference values are published or worked by hand in the comments: scipy's documented
``ks_2samp`` example, and PSI, Jensen-Shannon and Cramér's V of small tables. The Pushgateway
is the real one (Debian's ``prometheus-pushgateway``), started on loopback by the test that
needs it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats

from mlplane.drift import __main__ as cli
from mlplane.drift import export, read, scores
from mlplane.drift.errors import DriftError
from mlplane.drift.job import Job, compute
from tests.judges import free_port, require_judge

LIMITS = read.Limits(max_rows=1_000_000, max_files=100)


def column(values: list[object] | np.ndarray) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values)])


def write(path: Path, **columns: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


# --- known scores ------------------------------------------------------------------------------


def test_ks_matches_scipys_documented_example() -> None:
    # scipy.stats.ks_2samp's documented example (scipy 0.13 to 1.1): with np.random.seed(12345678),
    # 200 draws of N(0, 1) against 300 draws of N(0.5, 1.5) give D = 0.20833333333333337.
    np.random.seed(12345678)
    first = stats.norm.rvs(size=200, loc=0.0, scale=1)
    second = stats.norm.rvs(size=300, loc=0.5, scale=1.5)
    found = scores.score("ks", column(first), column(second), scores.DEFAULT_BINS)
    assert found == pytest.approx(0.20833333333333337, abs=1e-12)


def test_ks_of_two_small_samples_by_hand() -> None:
    # Empirical CDFs of [1, 2, 3, 4] and [3, 4, 5, 6]: at x = 2 they are 0.5 and 0, the widest gap.
    assert scores.score("ks", column([1, 2, 3, 4]), column([3, 4, 5, 6]), 10) == 0.5


def test_psi_of_categories_by_hand() -> None:
    # Shares a/b/c: reference 0.5/0.3/0.2, current 0.3/0.3/0.4.
    # PSI = (0.3-0.5)·ln(0.3/0.5) + (0.3-0.3)·ln(1) + (0.4-0.2)·ln(0.4/0.2)
    #     = 0.1021651 + 0 + 0.1386294 = 0.2407946
    reference = column(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = column(["a"] * 30 + ["b"] * 30 + ["c"] * 40)
    assert scores.score("psi", reference, current, 10) == pytest.approx(0.2407946, abs=1e-7)


def test_psi_of_numbers_binned_at_the_reference_quartiles() -> None:
    # Reference 0..99 in 4 bins: cuts at its quartiles 24.75, 49.5, 74.25, 25 values per bin
    # (shares 0.25 each). Current: 10 × 0, 20 × 30, 30 × 60, 40 × 90: shares 0.1/0.2/0.3/0.4.
    # PSI = -0.15·ln(0.4) - 0.05·ln(0.8) + 0.05·ln(1.2) + 0.15·ln(1.6)
    #     = 0.1374436 + 0.0111572 + 0.0091161 + 0.0705006 = 0.2282174
    reference = column(list(range(100)))
    current = column([0] * 10 + [30] * 20 + [60] * 30 + [90] * 40)
    assert scores.score("psi", reference, current, 4) == pytest.approx(0.2282174, abs=1e-7)


def test_js_distance_by_hand() -> None:
    # Shares a/b: reference 0.5/0.5, current 1/0; their mean M = 0.75/0.25.
    # KL(ref‖M) = 0.5·log2(0.5/0.75) + 0.5·log2(0.5/0.25) = 0.2075187; KL(cur‖M) = log2(4/3)
    # = 0.4150375; JS divergence = their mean = 0.3112781; the distance is its root, 0.5579230.
    reference = column(["a"] * 50 + ["b"] * 50)
    current = column(["a"] * 100)
    assert scores.score("js", reference, current, 10) == pytest.approx(0.5579230, abs=1e-7)


def test_chi2_is_cramers_v_by_hand() -> None:
    # Table [[50, 50], [100, 0]] (n = 200): expected [[75, 25], [75, 25]],
    # chi2 = 2·(25²/75 + 25²/25) = 66.667; Cramér's V = sqrt(chi2 / (n·1)) = sqrt(1/3) = 0.5773503.
    reference = column(["a"] * 50 + ["b"] * 50)
    current = column(["a"] * 100)
    assert scores.score("chi2", reference, current, 10) == pytest.approx(0.5773503, abs=1e-7)


def test_identical_samples_score_zero_with_every_method() -> None:
    values = column([float(v % 17) for v in range(500)])
    for method in scores.METHODS:
        assert scores.score(method, values, values, 10) == pytest.approx(0.0, abs=1e-12), method


def test_nulls_and_non_finite_values_are_left_out() -> None:
    reference = column([1.0, 2.0, None, float("nan"), 3.0, 4.0])
    current = column([3.0, float("inf"), 4.0, 5.0, None, 6.0])
    assert scores.score("ks", reference, current, 10) == 0.5


@pytest.mark.parametrize("method", ["ks", "wasserstein"])
def test_methods_on_numbers_refuse_categories(method: str) -> None:
    with pytest.raises(DriftError, match="needs numbers"):
        scores.score(method, column(["a", "b"]), column(["a", "b"]), 10)


def test_an_empty_side_has_no_score() -> None:
    with pytest.raises(DriftError, match="current sample has no values"):
        scores.score("psi", column([1.0, 2.0]), column([None, None]), 10)


def test_an_identifier_is_not_a_category() -> None:
    many = column([f"id-{n}" for n in range(scores.MAX_CATEGORIES + 1)])
    with pytest.raises(DriftError, match="identifier"):
        scores.score("chi2", many, column(["id-1"]), 10)


# --- reading -----------------------------------------------------------------------------------


def job_of(tmp_path: Path, method: str = "psi", **changes: object) -> Job:
    values: dict[str, object] = {
        "namespace": "shop",
        "model": "checkout",
        "method": method,
        "features": ("amount", "country"),
        "reference": str(tmp_path / "reference"),
        "current": str(tmp_path / "current"),
        "fmt": "parquet",
        "limits": LIMITS,
    }
    values.update(changes)
    return Job(**values)  # type: ignore[arg-type]


def shifted_samples(tmp_path: Path) -> None:
    """A reference of amount 0..99 and countries 50/50; a current sample in two files whose
    amounts in the last hour are shifted, two days ago not; countries stay 50/50."""
    now = datetime.now(UTC)
    write(
        tmp_path / "reference" / "part-0.parquet",
        amount=list(range(100)),
        country=["de", "fr"] * 50,
    )
    write(
        tmp_path / "current" / "2024" / "old.parquet",
        amount=list(range(100)),
        country=["de", "fr"] * 50,
        ts=pa.array([now - timedelta(days=2)] * 100, pa.timestamp("us", tz="UTC")),
    )
    write(
        tmp_path / "current" / "2025" / "new.parquet",
        amount=[0] * 10 + [30] * 20 + [60] * 30 + [90] * 40,
        country=["fr", "de"] * 50,
        ts=pa.array([now - timedelta(minutes=5)] * 100, pa.timestamp("us", tz="UTC")),
    )
    (tmp_path / "current" / "_SUCCESS").write_text("", encoding="utf-8")


def test_the_timestamp_window_keeps_the_recent_rows(tmp_path: Path) -> None:
    shifted_samples(tmp_path)
    windowed = compute(job_of(tmp_path, timestamp_column="ts", window_seconds=3600, bins=4))
    # Only the shifted file is inside the last hour: the quartile PSI worked out above.
    assert windowed.scores["amount"] == pytest.approx(0.2282174, abs=1e-7)
    assert not windowed.problems
    everything = compute(job_of(tmp_path, bins=4))
    assert everything.scores["amount"] < windowed.scores["amount"]


def test_csv_samples_are_read_too(tmp_path: Path) -> None:
    (tmp_path / "reference").mkdir()
    (tmp_path / "current").mkdir()
    rows = "amount,country\n" + "".join(f"{n},de\n" for n in range(50))
    (tmp_path / "reference" / "a.csv").write_text(rows, encoding="utf-8")
    (tmp_path / "current" / "b.csv").write_text(rows, encoding="utf-8")
    outcome = compute(job_of(tmp_path, fmt="csv"))
    assert outcome.scores == {"amount": 0.0, "country": 0.0}


def test_reads_stop_at_max_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "big.parquet", amount=list(range(10_000)))
    table = read.read_sample(str(path), "parquet", ["amount"], read.Limits(1234, 10))
    assert table.num_rows == 1234
    assert "kept the first 1234 rows" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        ("missing", "not found"),
        ("empty", "no parquet files"),
        ("too-many", "more than the limit of 3"),
        ("not-parquet", "cannot read"),
        ("no-column", "no column 'amount' (columns: other)"),
        ("scheme", "scheme 'ftp' is not read by the drift job"),
    ],
)
def test_read_errors_name_the_source_and_the_cause(
    tmp_path: Path, layout: str, problem: str
) -> None:
    root = tmp_path / "sample"
    uri = str(root)
    if layout == "empty":
        root.mkdir()
    if layout == "too-many":
        for n in range(4):
            write(root / f"{n}.parquet", amount=[n])
    if layout == "not-parquet":
        root.mkdir()
        (root / "x.parquet").write_bytes(b"not parquet at all")
    if layout == "no-column":
        write(root / "0.parquet", other=[1])
    if layout == "scheme":
        uri = "ftp://user:hunter2@example.com/data"
    with pytest.raises(
        DriftError, match="^.*" + problem.replace("(", r"\(").replace(")", r"\)")
    ) as error:
        read.read_sample(uri, "parquet", ["amount"], read.Limits(100, 3))
    message = str(error.value)
    assert "hunter2" not in message
    assert message.startswith(("ftp://example.com/data", str(root)))


def test_a_window_needs_a_timestamp_column(tmp_path: Path) -> None:
    path = write(tmp_path / "s.parquet", amount=[1], ts=["yesterday"])
    window = read.Window("ts", datetime.now(UTC))
    with pytest.raises(DriftError, match="holds string, not timestamps"):
        read.read_sample(str(path), "parquet", ["amount"], LIMITS, window)


# --- the command line --------------------------------------------------------------------------


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplane.drift", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def common(tmp_path: Path) -> list[str]:
    return [
        "--namespace", "shop", "--model", "checkout", "--method", "psi",
        "--feature", "amount", "--feature", "country", "--bins", "4",
        "--reference", str(tmp_path / "reference"), "--current", str(tmp_path / "current"),
        "--timestamp-column", "ts", "--window-seconds", "3600",
    ]  # fmt: skip


def samples_of(text: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.slow
def test_the_textfile_carries_every_label(tmp_path: Path) -> None:
    shifted_samples(tmp_path)
    target = tmp_path / "textfile" / "drift.prom"
    target.parent.mkdir()
    done = run_cli(*common(tmp_path), "--textfile", str(target))
    assert done.returncode == 0, done.stderr
    found = samples_of(target.read_text(encoding="utf-8"))
    labels = (("feature", "amount"), ("model", "checkout"), ("namespace", "shop"))
    assert found[labels] == pytest.approx(0.2282174, abs=1e-7)
    assert set(found) == {labels, (("feature", "country"), *labels[1:])}
    assert [p.name for p in target.parent.iterdir()] == ["drift.prom"]  # no temporary left


@pytest.mark.slow
def test_usage_errors_exit_2_and_data_errors_exit_1(tmp_path: Path) -> None:
    assert run_cli("--namespace", "Shop!").returncode == 2
    shifted_samples(tmp_path)
    done = run_cli(*common(tmp_path)[:-4], "--feature", "missing", "--stdout")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"mlplane.drift: error: {tmp_path / 'reference'}: no column 'missing' "
        "(columns: amount, country)"
    ]
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_feature_without_a_score_exits_1_and_the_others_are_published(tmp_path: Path) -> None:
    shifted_samples(tmp_path)
    arguments = [a if a != "psi" else "ks" for a in common(tmp_path)]
    done = run_cli(*arguments, "--stdout")
    assert done.returncode == 1
    assert "feature 'country': no score: method 'ks' needs numbers" in done.stderr
    assert [dict(k)["feature"] for k in samples_of(done.stdout)] == ["amount"]


def test_the_parser_refuses_hostile_values() -> None:
    usage = cli.parser()
    for bad in (
        ["--feature", "a b"],
        ["--pushgateway", "file:///etc/passwd"],
        ["--max-rows", "0"],
        ["--window-seconds", "nan"],
    ):
        with pytest.raises(SystemExit):
            usage.parse_args(
                ["--namespace", "n", "--model", "m", "--method", "psi", "--feature", "f",
                 "--reference", "r", "--current", "c", "--stdout", *bad]
            )  # fmt: skip


# --- the real Pushgateway ----------------------------------------------------------------------


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    binary = require_judge("prometheus-pushgateway")
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        # In memory only: Debian's build persists to /var/lib/prometheus by default.
        [binary, f"--web.listen-address={address}", "--persistence.file="],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    url = f"http://{address}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        return str(answer.read().decode("utf-8"))


@pytest.mark.judge
def test_a_push_gives_the_pushgateway_the_rules_labels(tmp_path: Path, pushgateway: str) -> None:
    shifted_samples(tmp_path)
    done = run_cli(*common(tmp_path), "--pushgateway", pushgateway)
    assert done.returncode == 0, done.stderr
    found = {
        k: v
        for family in text_string_to_metric_families(scrape(pushgateway))
        if family.name == export.GAUGE
        for s in family.samples
        for k, v in [(tuple(sorted(s.labels.items())), s.value)]
    }
    identity = (("job", "mlplane-drift"), ("model", "checkout"), ("namespace", "shop"))
    amount = (("feature", "amount"), ("instance", ""), *identity)
    assert found[amount] == pytest.approx(0.2282174, abs=1e-7)
    assert len(found) == 2
    # A second model's push is its own group: the first model's scores stay.
    other = [a if a != "checkout" else "search" for a in common(tmp_path)]
    assert run_cli(*other, "--pushgateway", pushgateway).returncode == 0
    models = {
        dict(s.labels)["model"]
        for family in text_string_to_metric_families(scrape(pushgateway))
        if family.name == export.GAUGE
        for s in family.samples
    }
    assert models == {"checkout", "search"}


@pytest.mark.slow
def test_an_unreachable_pushgateway_is_a_located_error(tmp_path: Path) -> None:
    shifted_samples(tmp_path)
    gateway = f"http://127.0.0.1:{free_port()}"
    done = run_cli(*common(tmp_path), "--pushgateway", gateway)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"mlplane.drift: error: {gateway}: the push failed:")
    )
