"""The shared ingest: reader records -> checked rows on disk -> items, sorted interactions.

Memory stays bounded by streaming: accepted interaction records are written in batches
to a staging Parquet file (with `seq`, their source order); the filtering steps read
only its key columns; the surviving rows are then sorted through on-disk buckets of
output positions and written row group by row group. Each loop hands the memory freed
by its batch back to the OS (steerrec.data.memory).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steerrec.data.memory import release_memory
from steerrec.data.readers.base import BadRow, DataError, Location, Row
from steerrec.data.schema import INTERACTIONS, ITEMS

logger = logging.getLogger(__name__)

STAGING = pa.schema(list(INTERACTIONS) + [pa.field("implicit", pa.float64()), pa.field("seq", pa.int64())])
KEY_COLUMNS = ["user_id", "item_id", "timestamp", "seq"]
_EXAMPLES = 5
# Rows held in memory at a time, chosen with benchmarks/prepare_memory.py (README, "Measured
# figures"): larger batches, buckets or sequence pieces raised the peak without a speed gain.
BATCH_ROWS = 10_000
MIN_BUCKET_ROWS = BATCH_ROWS
MAX_BUCKETS = 64  # open bucket files at once; buckets grow past MIN_BUCKET_ROWS to stay under


@dataclass
class SkipReport:
    """Rows read and rows skipped by reason, with the first few examples."""

    what: str  # "interactions" or "items"
    strict: bool = False
    rows_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, location: Location, bad: BadRow) -> None:
        if self.strict:
            raise DataError(f"{bad.reason}{': ' + bad.detail if bad.detail else ''} (strict mode)", location, bad.field)
        self.skipped[bad.reason] += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(bad.describe(location))

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def check(self, max_bad_fraction: float, source: str) -> None:
        """Raise DataError when more than `max_bad_fraction` of the rows read were bad."""
        bad = self.total_skipped
        if bad and bad > max_bad_fraction * self.rows_read:
            raise DataError(
                f"{source}: {bad} of {self.rows_read} {self.what} rows are bad "
                f"({bad / self.rows_read:.1%} > max_bad_fraction={max_bad_fraction}); "
                f"by reason {dict(self.skipped)}; first: {self.examples}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "skipped": dict(self.skipped), "examples": list(self.examples)}


# ---- type checks ------------------------------------------------------------------------
class _Bad(Exception):
    def __init__(self, reason: str, name: str, detail: str = ""):
        self.bad = BadRow(reason, name, detail)


def _id(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        raise _Bad("missing_field", name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad("wrong_type", name, f"expected a string id, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise _Bad("missing_field", name, "empty")
    return text


def _number(record: dict[str, Any], name: str, required: bool = False) -> float | None:
    value = record.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if required:
            raise _Bad("missing_field", name)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad("wrong_type", name, f"expected a number, got {type(value).__name__}")
    return float(value)


def _timestamp(record: dict[str, Any]) -> int:
    value = _number(record, "timestamp", required=True)
    if not float(value).is_integer() or abs(value) >= 2**62:
        raise _Bad("wrong_type", "timestamp", f"expected whole seconds, got {record['timestamp']!r}")
    return int(record["timestamp"])


def _text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise _Bad("wrong_type", name, f"expected text, got {type(value).__name__}")
    return value


def check_interaction(record: dict[str, Any], implicit: bool) -> dict[str, Any] | BadRow:
    """The record with checked types (schema.INTERACTIONS plus `implicit`), or a BadRow."""
    try:
        return {
            "user_id": _id(record, "user_id"),
            "item_id": _id(record, "item_id"),
            "timestamp": _timestamp(record),
            "rating": None if implicit else _number(record, "rating"),
            "review_text": _text(record, "review_text"),
            "review_summary": _text(record, "review_summary"),
            "implicit": _number(record, "implicit", required=True) if implicit else None,
        }
    except _Bad as exc:
        return exc.bad


def _categories(record: dict[str, Any]) -> list[str] | None:
    value = record.get("categories")
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _Bad("wrong_type", "categories", "expected a list of strings")
    return list(value)


def _extra(record: dict[str, Any]) -> str | None:
    value = record.get("extra")
    if value is None or isinstance(value, str):
        return value or None
    if not isinstance(value, dict):
        raise _Bad("wrong_type", "extra", f"expected a dict, got {type(value).__name__}")
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str) if value else None


def check_item(record: dict[str, Any]) -> dict[str, Any] | BadRow:
    """The item record with checked types (schema.ITEMS, extra as JSON text), or a BadRow."""
    try:
        return {
            "item_id": _id(record, "item_id"),
            "title": _text(record, "title"),
            "brand": _text(record, "brand"),
            "categories": _categories(record),
            "price": _number(record, "price"),
            "description": _text(record, "description"),
            "extra": _extra(record),
        }
    except _Bad as exc:
        return exc.bad


# ---- staging ----------------------------------------------------------------------------
def stage_interactions(
    rows: Iterator[Row], path: str | Path, implicit: bool, report: SkipReport, batch_rows: int = BATCH_ROWS
) -> int:
    """Write checked interaction records to the staging Parquet file `path` (schema STAGING)
    in batches; bad rows go to `report`. Returns the number of rows written."""
    names = STAGING.names
    written = 0
    with pq.ParquetWriter(str(path), STAGING, compression="zstd", write_statistics=False) as writer:
        batch: dict[str, list[Any]] = {name: [] for name in names}
        for location, record in rows:
            report.rows_read += 1
            checked = record if isinstance(record, BadRow) else check_interaction(record, implicit)
            if isinstance(checked, BadRow):
                report.skip(location, checked)
                continue
            checked["seq"] = written
            written += 1
            for name in names:
                batch[name].append(checked[name])
            if len(batch["seq"]) >= batch_rows:
                writer.write_table(pa.table(batch, schema=STAGING))
                batch = {name: [] for name in names}
                release_memory()
        if batch["seq"]:
            writer.write_table(pa.table(batch, schema=STAGING))
    return written


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or (isinstance(value, float) and math.isnan(value))


def collect_items(rows: Iterator[Row], keep: set[str], report: SkipReport) -> tuple[pa.Table, int]:
    """Items table (schema.ITEMS, sorted by item_id) for the item ids in `keep`.

    Records repeating an item_id are merged, the first non-empty value of each field
    winning. Kept ids without any record get a row of empty fields. Returns the table
    and the number of such items without metadata.
    """
    merged: dict[str, dict[str, Any]] = {}
    for location, record in rows:
        report.rows_read += 1
        checked = record if isinstance(record, BadRow) else check_item(record)
        if isinstance(checked, BadRow):
            report.skip(location, checked)
            continue
        if checked["item_id"] not in keep:
            continue
        known = merged.setdefault(checked["item_id"], checked)
        if known is not checked:
            for name, value in checked.items():
                if _is_empty(known[name]) and not _is_empty(value):
                    known[name] = value
    missing = keep.difference(merged)
    for item_id in missing:
        merged[item_id] = {"item_id": item_id}
    rows_out = [merged[item_id] for item_id in sorted(merged)]
    columns = {name: [row.get(name) for row in rows_out] for name in ITEMS.names}
    return pa.table(columns, schema=ITEMS), len(missing)


# ---- sorted output ----------------------------------------------------------------------
def write_in_order(
    staging: str | Path,
    position: np.ndarray,
    write: Callable[[pa.Table], None],
    tmp_dir: str | Path,
    ratings: np.ndarray | None = None,
    bucket_rows: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> None:
    """Stream the staging file and hand `write` its surviving rows in output order.

    `position[seq]` is the output row of staging row `seq` (-1: dropped). Rows are first
    spread over on-disk buckets of `bucket_rows` consecutive positions (default: enough
    for at most MAX_BUCKETS buckets, at least MIN_BUCKET_ROWS), then each bucket is
    sorted in memory, so memory holds about one bucket. `ratings[seq]`, when given,
    replaces the rating column (implicit feedback).
    """
    if bucket_rows is None:
        bucket_rows = max(MIN_BUCKET_ROWS, -(-int(position.max(initial=-1) + 1) // MAX_BUCKETS))
    for path in _spread(staging, position, ratings, bucket_rows, batch_rows, Path(tmp_dir)):
        with pa.OSFile(str(path)) as source:
            table = pa.ipc.open_stream(source).read_all()
        order = np.argsort(table.column("pos").to_numpy(), kind="stable")
        table = table.select(INTERACTIONS.names)
        for start in range(0, len(order), batch_rows):
            write(table.take(pa.array(order[start : start + batch_rows])).cast(INTERACTIONS))
        del table
        path.unlink()
        release_memory()


def _spread(
    staging: str | Path,
    position: np.ndarray,
    ratings: np.ndarray | None,
    bucket_rows: int,
    batch_rows: int,
    tmp_dir: Path,
) -> list[Path]:
    """Write the surviving staging rows, with their output position `pos`, to bucket files
    of `bucket_rows` consecutive positions; returns the files in position order.

    Buckets are Arrow IPC streams rather than Parquet: a Parquet writer keeps the metadata
    of every row group it wrote (one per batch and bucket) in memory until it closes.
    """
    schema = INTERACTIONS.append(pa.field("pos", pa.int64()))
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    files: dict[int, tuple[pa.NativeFile, pa.ipc.RecordBatchStreamWriter]] = {}
    try:
        with pq.ParquetFile(str(staging), pre_buffer=False) as source:
            columns = INTERACTIONS.names + ["seq"]
            for batch in source.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False):
                release_memory()
                seq = batch.column("seq").to_numpy()
                keep = position[seq] >= 0
                table = pa.Table.from_batches([batch]).filter(pa.array(keep))
                if ratings is not None:
                    rating = pa.array(ratings[seq[keep]])
                    table = table.set_column(table.schema.get_field_index("rating"), "rating", rating)
                pos = position[seq[keep]]
                table = table.select(INTERACTIONS.names).append_column("pos", pa.array(pos)).cast(schema)
                bucket = pos // bucket_rows
                for b in np.unique(bucket).tolist():
                    if b not in files:
                        sink = pa.OSFile(str(tmp_dir / f"bucket-{b:06d}.arrow"), "wb")
                        files[b] = (sink, pa.ipc.new_stream(sink, schema, options=options))
                    files[b][1].write_table(table.filter(pa.array(bucket == b)))
    finally:
        for sink, writer in files.values():
            writer.close()
            sink.close()
    return [tmp_dir / f"bucket-{b:06d}.arrow" for b in sorted(files)]
