"""Bounded reads of a sample: Parquet or CSV files under a local path, s3:// or gs:// prefix.

pyarrow's own file systems do the I/O (``pyarrow.fs``: credentials from the environment, as
its S3 and GCS clients read them: an IAM role for service accounts, workload identity, the
standard variables); nothing is run in a shell. Every read is bounded: at most
``max_files`` files under a prefix, only the columns asked for, and at most ``max_rows`` rows
(the first ones, in file-name order, when a sample is larger: the job says so on stderr).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pyarrow.fs as pafs  # type: ignore[import-untyped]

from mlplane.drift.errors import DriftError, shown

SCHEMES = ("file", "s3", "gs")
"""What the job reads: a local path (``file://`` or a plain path), Amazon S3, Google Cloud
Storage."""
FORMATS = ("parquet", "csv")
SUFFIXES = {"parquet": (".parquet", ".parq"), "csv": (".csv", ".csv.gz")}
BATCH_ROWS = 65_536
LISTED_COLUMNS = 20


@dataclass(frozen=True, slots=True)
class Limits:
    max_rows: int
    max_files: int


@dataclass(frozen=True, slots=True)
class Window:
    """Keep the rows whose ``column`` (a timestamp) is at or after ``since``."""

    column: str
    since: datetime


def file_system(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system and path of ``uri`` (a plain path is a local one)."""
    scheme = urlsplit(uri).scheme
    if scheme == "":
        return pafs.LocalFileSystem(), str(PurePosixPath(uri))
    if scheme not in SCHEMES:
        raise DriftError(
            f"{shown(uri)}: scheme {scheme!r} is not read by the drift job; use a local path, "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, str(path)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise DriftError(f"{shown(uri)}: cannot open: {error}") from None


def data_files(uri: str, fmt: str, max_files: int) -> tuple[pafs.FileSystem, list[str]]:
    """The sample's files: ``uri`` itself, or the files of the format under it, in name order
    (names starting with ``.`` or ``_``, such as ``_SUCCESS``, are not data)."""
    fs, path = file_system(uri)
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise DriftError(f"{shown(uri)}: not found")
        if info.type == pafs.FileType.File:
            return fs, [path]
        listed = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    except (pa.ArrowException, OSError) as error:
        raise DriftError(f"{shown(uri)}: cannot list: {error}") from None
    files = sorted(
        entry.path
        for entry in listed
        if entry.type == pafs.FileType.File
        and entry.base_name.lower().endswith(SUFFIXES[fmt])
        and not entry.base_name.startswith((".", "_"))
    )
    if not files:
        raise DriftError(f"{shown(uri)}: no {fmt} files ({', '.join(SUFFIXES[fmt])}) under it")
    if len(files) > max_files:
        raise DriftError(
            f"{shown(uri)}: {len(files)} {fmt} files, more than the limit of {max_files}; "
            "point the data source at a narrower prefix"
        )
    return fs, files


def _check_columns(uri: str, schema: pa.Schema, wanted: list[str]) -> None:
    missing = [name for name in wanted if schema.get_field_index(name) < 0]
    if missing:
        names = schema.names[:LISTED_COLUMNS]
        more = ", ..." if len(schema.names) > LISTED_COLUMNS else ""
        raise DriftError(
            f"{shown(uri)}: no column {', '.join(repr(n) for n in missing)} "
            f"(columns: {', '.join(names)}{more})"
        )


def _window_filter(uri: str, schema: pa.Schema, window: Window) -> ds.Expression:
    kind = schema.field(window.column).type
    if not pa.types.is_timestamp(kind):
        raise DriftError(
            f"{shown(uri)}: the timestamp column {window.column!r} holds {kind}, not timestamps"
        )
    since = window.since if kind.tz is not None else window.since.replace(tzinfo=None)
    return ds.field(window.column) >= pa.scalar(since, type=kind)


def read_sample(
    uri: str, fmt: str, columns: list[str], limits: Limits, window: Window | None = None
) -> pa.Table:
    """The ``columns`` of the sample at ``uri``: at most ``limits.max_rows`` rows, only those
    inside ``window`` when given."""
    if fmt not in FORMATS:
        raise DriftError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    fs, files = data_files(uri, fmt, limits.max_files)
    try:
        dataset = ds.dataset(files, filesystem=fs, format=fmt)
        wanted = [*columns, *([window.column] if window else [])]
        _check_columns(uri, dataset.schema, wanted)
        where = _window_filter(uri, dataset.schema, window) if window else None
        scanner = dataset.scanner(columns=columns, filter=where, batch_size=BATCH_ROWS)
        batches: list[pa.RecordBatch] = []
        rows = 0
        for batch in scanner.to_batches():
            if rows + batch.num_rows > limits.max_rows:
                batches.append(batch.slice(0, limits.max_rows - rows))
                rows = limits.max_rows
                print(
                    f"mlplane.drift: {shown(uri)}: kept the first {rows} rows (maxRows)",
                    file=sys.stderr,
                )
                break
            batches.append(batch)
            rows += batch.num_rows
            if rows == limits.max_rows:
                break
        return pa.Table.from_batches(batches, schema=scanner.projected_schema)
    except (pa.ArrowException, OSError) as error:
        raise DriftError(f"{shown(uri)}: cannot read: {error}") from None
