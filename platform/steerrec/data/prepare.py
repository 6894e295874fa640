"""Prepare a dataset folder from a public format (or the synthetic world).

    summary = prepare(PrepareConfig(format="amazon2018", input="All_Beauty_5.json.gz", out="data/beauty"))

Writes items.parquet, interactions.parquet, sequences.parquet, manifest.json (and the
world's truth.parquet) atomically (steerrec.data.io); returns the manifest.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import steerrec
from steerrec.data import filtering, io, schema
from steerrec.data.ingest import (
    BATCH_ROWS,
    KEY_COLUMNS,
    SkipReport,
    collect_items,
    stage_interactions,
    write_in_order,
)
from steerrec.data.memory import release_memory
from steerrec.data.readers.base import DataError, Reader
from steerrec.data.sequences import chunk_bounds, iter_sequences

logger = logging.getLogger(__name__)

SEQUENCE_CHUNK_ROWS = 50_000  # interactions decoded to strings at a time for the sequences
FORMATS = ("amazon2014", "amazon2018", "amazon2023", "lcrec", "movielens", "steam", "world")


@dataclass
class PrepareConfig:
    format: str = ""  # one of FORMATS
    input: str | None = None  # the interactions/reviews file (not needed for world)
    meta: str | None = None  # the item metadata file, when the format has one
    out: str = ""  # dataset folder: a local path or a pyarrow filesystem URI
    kcore: int = 5  # minimum interactions per user and per item; 0 or 1 disables
    max_history: int = 20  # most recent items kept in a sequence row's history
    seed: int = 0  # recorded in the manifest; the world's seed unless world.seed is set
    strict: bool = False  # the first bad row raises instead of being skipped
    max_bad_fraction: float = 0.01  # fail when more rows than this fraction are bad
    world: dict[str, Any] = field(default_factory=dict)  # WorldConfig fields (format=world)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.format != "world" and not self.input:
            raise ValueError(f"input is required for format {self.format!r}")
        if self.world and self.format != "world":
            raise ValueError(f"world options {sorted(self.world)} are only for format 'world'")
        if self.format == "world":
            self.world_config()  # checks the world's keys and values now, not when prepare() runs
        if not self.out:
            raise ValueError("out is required (a local folder or a URI)")
        if self.kcore < 0:
            raise ValueError(f"kcore must be >= 0, got {self.kcore}")
        if self.max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {self.max_history}")
        if not 0 <= self.max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")

    def world_config(self) -> Any:
        """The checked WorldConfig of `world`; its seed is `seed` unless world.seed is set."""
        from steerrec.config import from_dict
        from steerrec.data.world import WorldConfig

        options = dict(self.world)
        if "seed" in {f.name for f in dataclasses.fields(WorldConfig)}:
            options.setdefault("seed", self.seed)
        return from_dict(WorldConfig, options, "", "world")


def make_reader(cfg: PrepareConfig) -> Reader:
    """The reader for `cfg.format` (the world is imported only when asked for)."""
    if cfg.format == "world":
        from steerrec.data.world import WorldReader

        return WorldReader(cfg.world_config())
    from steerrec.data.readers import get_reader

    return get_reader(cfg.format, cfg.input, cfg.meta)


@dataclass
class Plan:
    """Which staging rows survive and where they go (arrays indexed by staging `seq`).

    The output rows' keys are kept as int32 codes into the sorted kept ids, not as
    strings, so that memory holds a few bytes per interaction; `keys` decodes a slice.
    """

    position: np.ndarray  # output row of each staging row, -1 when dropped
    ratings: np.ndarray | None  # implicit-feedback ratings, NaN when dropped
    users: np.ndarray  # user code of each output row (index into user_ids), in output order
    items: np.ndarray  # item code of each output row (index into item_ids)
    timestamps: np.ndarray  # timestamp of each output row
    user_ids: pa.Array  # the kept user ids, sorted
    item_ids: pa.Array  # the kept item ids, sorted
    duplicates: int
    kcore_dropped: int
    kcore_rounds: int

    @property
    def num_rows(self) -> int:
        return len(self.users)

    def keys(self, begin: int = 0, end: int | None = None) -> pa.Table:
        """user_id, item_id, timestamp of the output rows begin:end."""
        rows = slice(begin, end)
        return pa.table(
            {
                "user_id": self.user_ids.take(pa.array(self.users[rows])),
                "item_id": self.item_ids.take(pa.array(self.items[rows])),
                "timestamp": pa.array(self.timestamps[rows]),
            }
        )


def plan_rows(staging: Path, implicit: bool, kcore: int) -> Plan:
    """Duplicates, implicit ratings and k-core on the key columns of the staging file
    (ids read dictionary-encoded, so their strings are never all in memory)."""
    source = pq.ParquetFile(str(staging), read_dictionary=["user_id", "item_id"], pre_buffer=False)
    keys = source.read(columns=KEY_COLUMNS + (["implicit"] if implicit else []), use_threads=False)
    users, user_ids = filtering.encode(keys.column("user_id"))
    items, item_ids = filtering.encode(keys.column("item_id"))
    seq = keys.column("seq").to_numpy()
    timestamps = keys.column("timestamp").to_numpy()
    values = keys.column("implicit").to_numpy() if implicit else None
    del keys
    release_memory()
    n = len(seq)
    first = filtering.first_of_duplicates(users, items, timestamps, seq)
    ratings = None
    if values is not None:
        ratings = np.full(n, np.nan)
        ratings[seq[first]] = filtering.implicit_ratings(items[first], values[first])
    in_core, rounds = filtering.kcore(users[first], items[first], kcore, kcore)
    rows = np.flatnonzero(first)[in_core]
    rows = rows[np.lexsort((seq[rows], timestamps[rows], users[rows]))]
    position = np.full(n, -1, dtype=np.int64)
    position[seq[rows]] = np.arange(len(rows))
    duplicates = int(n - first.sum())
    out_users, user_ids = filtering.compact(users[rows], user_ids)
    out_items, item_ids = filtering.compact(items[rows], item_ids)
    return Plan(
        position=position,
        ratings=ratings,
        users=out_users,
        items=out_items,
        timestamps=timestamps[rows],
        user_ids=user_ids,
        item_ids=item_ids,
        duplicates=duplicates,
        kcore_dropped=int(n - duplicates - len(rows)),
        kcore_rounds=rounds,
    )


def prepare(cfg: PrepareConfig) -> dict[str, Any]:
    """Read, check, filter and write the dataset folder `cfg.out`; returns its manifest."""
    reader = make_reader(cfg)
    source = cfg.input or cfg.format
    inter_report = SkipReport("interactions", strict=cfg.strict)
    item_report = SkipReport("items", strict=cfg.strict)
    with tempfile.TemporaryDirectory(prefix="steerrec-prepare-") as tmp:
        staging = Path(tmp) / "staging.parquet"
        stage_interactions(reader.interactions(), staging, reader.implicit_feedback, inter_report)
        inter_report.check(cfg.max_bad_fraction, source)
        plan = plan_rows(staging, reader.implicit_feedback, cfg.kcore)
        release_memory()  # plan_rows' temporaries
        if plan.num_rows == 0:
            raise DataError(f"{source}: empty result after filtering (kcore={cfg.kcore}); {inter_report.to_dict()}")
        if cfg.format == "world":
            _check_world_kept(inter_report, plan)
        items, without_meta = collect_items(reader.items(), set(plan.item_ids.to_pylist()), item_report)
        item_report.check(cfg.max_bad_fraction, cfg.meta or source)
        with io.dataset_folder(cfg.out) as folder:
            with folder.parquet_writer(schema.INTERACTIONS_FILE, schema.INTERACTIONS) as writer:
                write_in_order(staging, plan.position, writer.write_table, tmp, plan.ratings)
            splits = _write_sequences(folder, plan, cfg.max_history)
            folder.write_table(schema.ITEMS_FILE, items)
            if cfg.format == "world":
                folder.write_table(schema.TRUTH_FILE, schema.validate(reader.truth, schema.TRUTH, "world truth"))
            folder.manifest = _manifest(cfg, reader, plan, items, without_meta, splits, inter_report, item_report)
    logger.info("prepared %s: %s", cfg.out, folder.manifest["counts"])
    return folder.manifest


def _check_world_kept(report: SkipReport, plan: Plan) -> None:
    dropped = report.total_skipped + plan.duplicates + plan.kcore_dropped
    if dropped:
        raise DataError(
            f"world: filtering dropped {dropped} row(s) (skipped {report.total_skipped}, duplicates "
            f"{plan.duplicates}, k-core {plan.kcore_dropped}); the truth's t would no longer match"
        )


def _write_sequences(folder: io.DatasetFolder, plan: Plan, max_history: int) -> dict[str, int]:
    """Sequence rows, built from the plan's keys a few users at a time."""
    splits = {name: 0 for name in schema.SPLITS}
    starts = np.r_[0, np.flatnonzero(np.diff(plan.users)) + 1, plan.num_rows]
    with folder.parquet_writer(schema.SEQUENCES_FILE, schema.SEQUENCES) as writer:
        for begin, end in chunk_bounds(starts, SEQUENCE_CHUNK_ROWS):
            for table in iter_sequences(plan.keys(begin, end), max_history, rows=BATCH_ROWS):
                for entry in pc.value_counts(table.column("split")).to_pylist():
                    splits[entry["values"]] += entry["counts"]
                writer.write_table(table)
            release_memory()
    return splits


def _manifest(
    cfg: PrepareConfig,
    reader: Reader,
    plan: Plan,
    items: pa.Table,
    without_meta: int,
    splits: dict[str, int],
    inter_report: SkipReport,
    item_report: SkipReport,
) -> dict[str, Any]:
    files = []
    for path in reader.files():
        files.append({"path": str(path), "bytes": Path(path).stat().st_size, "sha256": io.sha256(path)})
    return {
        "format": cfg.format,
        "files": files,
        "counts": {
            "users": len(plan.user_ids),
            "items": items.num_rows,
            "interactions": plan.num_rows,
            "sequences": splits,
        },
        "items_without_metadata": without_meta,
        "rows_read": {"interactions": inter_report.rows_read, "items": item_report.rows_read},
        "rows_skipped": {"interactions": dict(inter_report.skipped), "items": dict(item_report.skipped)},
        "skipped_examples": {"interactions": inter_report.examples, "items": item_report.examples},
        "duplicates_dropped": plan.duplicates,
        "kcore_dropped": plan.kcore_dropped,
        "synthetic_timestamps": bool(reader.synthetic_timestamps),
        "implicit_feedback": bool(reader.implicit_feedback),
        "filter": {"kcore": cfg.kcore, "kcore_rounds": plan.kcore_rounds, "duplicates": "same user, item, timestamp"},
        "split": {"scheme": "leave-last-out", "max_history": cfg.max_history},
        "seed": cfg.seed,
        "world": dict(cfg.world),
        "steerrec_version": steerrec.__version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
