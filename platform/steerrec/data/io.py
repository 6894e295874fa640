"""Dataset folders on a local disk or behind a pyarrow filesystem URI, written atomically.

Local paths (and ``file://``): everything goes into a sibling ``<out>.tmp-<uuid>``
folder, which is renamed into place once complete; an earlier complete folder at `out`
is replaced only then. Other URIs (``s3://``, ``gs://``): the data files are written
first and ``manifest.json`` last, so the manifest marks a complete folder; an earlier
manifest is removed before the first new file is written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from steerrec.data.schema import MANIFEST_FILE, SchemaError

logger = logging.getLogger(__name__)
_HASH_CHUNK = 1 << 20


def resolve(path_or_uri: str | Path) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path inside it for a local path or a URI."""
    text = str(path_or_uri)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), str(Path(text).absolute())


def read_table(path_or_uri: str | Path, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file (or folder of files) from a local path or a URI.

    A missing file raises FileNotFoundError with the path as its filename; an unreadable
    file or a missing column raises SchemaError naming the file.
    """
    fs, path = resolve(path_or_uri)
    try:
        return pq.read_table(path, columns=columns, filesystem=fs)
    except FileNotFoundError as exc:
        raise FileNotFoundError(errno.ENOENT, "not found", str(path_or_uri)) from exc
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"{path_or_uri}: {' '.join(str(exc).split())}") from exc


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The manifest.json of a dataset folder."""
    fs, path = resolve(out)
    try:
        with fs.open_input_stream(f"{path}/{MANIFEST_FILE}") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(errno.ENOENT, "not found", f"{out}/{MANIFEST_FILE}") from exc


def is_complete(out: str | Path) -> bool:
    """True when `out` holds a readable manifest.json (written last, so the folder is whole)."""
    try:
        manifest = read_manifest(out)
    except (FileNotFoundError, OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "counts" in manifest


def sha256(path_or_uri: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    fs, path = resolve(path_or_uri)
    digest = hashlib.sha256()
    with fs.open_input_stream(path, compression=None) as handle:  # raw bytes, never gunzipped
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class DatasetFolder:
    """Files being written into a dataset folder; the manifest is written by the context."""

    def __init__(self, fs: pafs.FileSystem, base: str):
        self.fs = fs
        self.base = base
        self.manifest: dict[str, Any] | None = None

    def path(self, name: str) -> str:
        return f"{self.base}/{name}"

    def parquet_writer(self, name: str, schema: pa.Schema) -> pq.ParquetWriter:
        return pq.ParquetWriter(self.path(name), schema, filesystem=self.fs, compression="zstd")

    def write_table(self, name: str, table: pa.Table) -> None:
        pq.write_table(table, self.path(name), filesystem=self.fs, compression="zstd")

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        with self.fs.open_output_stream(self.path(name), compression=None) as handle:
            handle.write(json.dumps(data, indent=2, sort_keys=False).encode("utf-8"))


@contextmanager
def dataset_folder(out: str | Path) -> Iterator[DatasetFolder]:
    """Write a dataset folder at `out`; set ``folder.manifest`` before the block ends.

    On an exception nothing complete-looking is left: the local temp folder is removed
    (an earlier folder at `out` stays as it was); on a URI no manifest is written.
    """
    fs, path = resolve(out)
    if isinstance(fs, pafs.LocalFileSystem):
        with _local_folder(Path(path)) as folder:
            yield folder
        return
    with suppress(FileNotFoundError):
        fs.delete_file(f"{path}/{MANIFEST_FILE}")
    fs.create_dir(path, recursive=True)
    folder = DatasetFolder(fs, path)
    yield folder
    _write_manifest(folder, str(out))


@contextmanager
def _local_folder(out: Path) -> Iterator[DatasetFolder]:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{uuid.uuid4().hex}")
    tmp.mkdir()
    try:
        folder = DatasetFolder(pafs.LocalFileSystem(), str(tmp))
        yield folder
        _write_manifest(folder, str(out))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f"{out.name}.old-{uuid.uuid4().hex}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("wrote %s", out)


def _write_manifest(folder: DatasetFolder, out: str) -> None:
    if folder.manifest is None:
        raise RuntimeError(f"{out}: the dataset folder was closed without a manifest")
    folder.write_json(MANIFEST_FILE, folder.manifest)
