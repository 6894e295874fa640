"""Resumable Parquet shards: each shard is written under a temporary name and moved into
place, so a reader only ever sees whole shards, and a rerun skips keys already written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from steerrec.data.io import resolve

SHARDS_DIR = "shards"
FAILURES_FILE = "failures.parquet"
MANIFEST = "manifest.json"


class ShardWriter:
    """Writes whole shards into `<out>/shards/` (local path or pyarrow URI)."""

    def __init__(self, out: str | Path, schema: pa.Schema):
        self.fs, self.base = resolve(out)
        self.schema = schema
        self.fs.create_dir(f"{self.base}/{SHARDS_DIR}", recursive=True)

    def write(self, rows: list[dict], prefix: str = "part") -> str | None:
        if not rows:
            return None
        table = pa.Table.from_pylist(rows, schema=self.schema)
        return self.write_table(table, f"{SHARDS_DIR}/{prefix}-{uuid.uuid4().hex}.parquet")

    def write_table(self, table: pa.Table, name: str) -> str:
        final = f"{self.base}/{name}"
        tmp = f"{self.base}/{Path(name).parent}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open_output_stream(tmp) as handle:
            pq.write_table(table, handle)
        self.fs.move(tmp, final)  # a rename on local disks: readers never see half a shard
        return final

    def write_json(self, name: str, data: dict) -> None:
        tmp = f"{self.base}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open_output_stream(tmp) as handle:
            handle.write(json.dumps(data, indent=2, sort_keys=True).encode())
        self.fs.move(tmp, f"{self.base}/{name}")


def read_shards(out: str | Path, columns: list[str] | None = None) -> pa.Table | None:
    """Every whole shard under `<out>/shards/` as one table (None when there is none)."""
    fs, base = resolve(out)
    from pyarrow.fs import FileSelector, FileType

    try:
        infos = fs.get_file_info(FileSelector(f"{base}/{SHARDS_DIR}", allow_not_found=True))
    except FileNotFoundError:
        return None
    paths = sorted(i.path for i in infos if i.type == FileType.File and Path(i.path).name.startswith("part-"))
    if not paths:
        return None
    return pa.concat_tables([pq.read_table(p, columns=columns, filesystem=fs) for p in paths])


def done_keys(out: str | Path, key_columns: Iterable[str]) -> set[tuple]:
    """Keys already written by an earlier (possibly killed) run."""
    key_columns = list(key_columns)
    table = read_shards(out, key_columns)
    if table is None:
        return set()
    return set(zip(*(table.column(c).to_pylist() for c in key_columns)))
