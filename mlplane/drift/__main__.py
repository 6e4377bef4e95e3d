"""``python -m mlplane.drift``: score a model's recent inputs against a reference sample.

Exit codes: 0 every feature scored and published; 1 a sample could not be read, a feature has
no score (the others are published) or publishing failed; 2 a usage error. Errors are one line
each on stderr, naming the source and the cause.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from mlplane.drift import read, scores
from mlplane.drift.errors import DriftError
from mlplane.drift.job import Job, compute, publish, report

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
FEATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
MAX_FEATURES = 256
MAX_ROWS = 50_000_000
MAX_FILES = 100_000


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not pattern.match(text):
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}")
        return text

    parse.__name__ = what
    return parse


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 10 * 365 * 86400:
        raise argparse.ArgumentTypeError(f"{text} seconds is not a window")
    return value


def _gateway(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.password:
        raise argparse.ArgumentTypeError("a Pushgateway URL is http(s)://HOST[:PORT]")
    return text


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(
        prog="python -m mlplane.drift",
        description="Score the drift of a model's recent inputs against a reference sample and "
        "publish mlplane_model_drift_score{namespace, model, feature}.",
    )
    add = found.add_argument
    add("--namespace", required=True, type=_matching(DNS_LABEL, "namespace"))
    add("--model", required=True, type=_matching(DNS_LABEL, "model name"))
    add("--method", required=True, choices=scores.METHODS)
    add("--feature", dest="features", action="append", required=True,
        type=_matching(FEATURE, "feature name"), help="a monitored feature (repeat)")  # fmt: skip
    add("--reference", required=True, help="the reference sample: a path, s3:// or gs:// URI")
    add("--current", required=True, help="the recent inputs: a path, s3:// or gs:// URI")
    add("--format", dest="fmt", choices=read.FORMATS, default="parquet")
    add("--timestamp-column", type=_matching(FEATURE, "column name"),
        help="keep the current rows of the last --window-seconds by this column")  # fmt: skip
    add("--window-seconds", type=_positive_seconds)
    add("--bins", type=_bounded(2, 100), default=scores.DEFAULT_BINS)
    add("--max-rows", type=_bounded(1, MAX_ROWS), default=1_000_000)
    add("--max-files", type=_bounded(1, MAX_FILES), default=10_000)
    out = found.add_mutually_exclusive_group(required=True)
    out.add_argument("--pushgateway", type=_gateway, help="push to this Pushgateway")
    out.add_argument("--textfile", help="write a node-exporter textfile (*.prom)")
    out.add_argument("--stdout", action="store_true", help="print the exposition text")
    return found


def job_of(arguments: argparse.Namespace, usage: argparse.ArgumentParser) -> Job:
    features = tuple(dict.fromkeys(arguments.features))
    if len(features) > MAX_FEATURES:
        usage.error(f"at most {MAX_FEATURES} features")
    if (arguments.timestamp_column is None) != (arguments.window_seconds is None):
        usage.error("--timestamp-column and --window-seconds go together")
    if arguments.textfile is not None and not arguments.textfile.endswith(".prom"):
        usage.error("node-exporter reads textfiles named *.prom")
    return Job(
        namespace=arguments.namespace,
        model=arguments.model,
        method=arguments.method,
        features=features,
        reference=arguments.reference,
        current=arguments.current,
        fmt=arguments.fmt,
        limits=read.Limits(arguments.max_rows, arguments.max_files),
        bins=arguments.bins,
        timestamp_column=arguments.timestamp_column,
        window_seconds=arguments.window_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    usage = parser()
    arguments = usage.parse_args(argv)
    job = job_of(arguments, usage)
    try:
        outcome = compute(job)
        report(outcome)
        text = publish(job, outcome, arguments.pushgateway, arguments.textfile)
    except DriftError as error:
        print(f"mlplane.drift: error: {error}", file=sys.stderr)
        return 1
    if arguments.stdout:
        sys.stdout.write(text)
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    sys.exit(main())
