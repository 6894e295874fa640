"""Build the preference-discerning benchmark folder: the five axes and a manifest.

    manifest = build_benchmark(BenchmarkConfig(data="data/world", preferences="data/world/truth.parquet",
                                               out="bench/world"))
    manifest = build_benchmark(BenchmarkConfig(data="data/lcrec", no_preferences=True, out="bench/lcrec"))

Reads a dataset folder (jobs/prepare_data.py) and preferences (a folder of shards or one
Parquet file), embeds item texts, preference statements and negative reviews once, and
writes `axes/<axis>/{train,valid,test}.parquet` and `manifest.json` atomically
(steerrec.data.io). Embedding runs on Ray Data when Ray is initialised (`use_ray=None`),
else in this process. With `no_preferences` (data without reviews) only the
recommendation axis is written, every sequences.parquet row with no statement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

import steerrec
from steerrec.benchmark.axes import (
    AXES,
    AXES_DIR,
    COARSE,
    CONSOLIDATION,
    FINE,
    RECOMMENDATION,
    SENTIMENT,
    axis_file,
)
from steerrec.benchmark.consolidation import consolidation_examples
from steerrec.benchmark.pool import PreferencePool
from steerrec.benchmark.recommendation import (
    history_only_examples,
    recommendation_examples,
)
from steerrec.benchmark.sentiment import (
    SentimentConfig,
    is_negative,
    match_pairs,
    positions,
    sentiment_examples,
)
from steerrec.benchmark.steering import steering_examples
from steerrec.data import io, schema
from steerrec.data.text import render_items
from steerrec.embed import (
    EMBEDDING_COLUMN,
    EmbedderConfig,
    arrow_to_vectors,
    embed_dataset,
    embed_texts,
)
from steerrec.preferences.approximate import read_preferences
from steerrec.sentiment import ClassifierConfig, negative_reviews

logger = logging.getLogger(__name__)


@dataclass
class BenchmarkConfig:
    data: str = ""  # dataset folder (items, interactions, sequences)
    preferences: str = ""  # preferences folder or one Parquet file (user_id, t, preferences)
    out: str = ""  # benchmark folder: local path or URI
    seed: int = 0  # picks u^ for fine steering and the sentiment split
    candidates: int = 16  # statements kept per item for the non-reuse assignment (Eq. 4)
    steer_with_negatives: bool = False  # pair fine/coarse items with negative statements too (paper's P)
    use_ray: bool | None = None  # embed on Ray Data; None: when Ray is initialised
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)  # model "minilm" by default
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    no_preferences: bool = False  # data without reviews: the recommendation axis only, no statements

    def __post_init__(self) -> None:
        if not (self.data and self.out):
            raise ValueError(f"data and out are required, got data={self.data!r} out={self.out!r}")
        if self.no_preferences == bool(self.preferences):
            raise ValueError(
                "give preferences or no_preferences=true (exactly one), got "
                f"preferences={self.preferences!r} no_preferences={self.no_preferences}"
            )
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")


@dataclass
class Inputs:
    sequences: pa.Table  # sorted by user_id, t
    items: pa.Table
    interactions: pa.Table  # sorted by user_id, then time
    pool: PreferencePool


def load_inputs(cfg: BenchmarkConfig) -> Inputs:
    """The dataset folder's tables, checked against schema.*, and the preferences."""

    def read(name: str, shape: pa.Schema) -> pa.Table:
        path = f"{cfg.data}/{name}"
        return schema.validate(io.read_table(path), shape, path)

    sequences = read(schema.SEQUENCES_FILE, schema.SEQUENCES).sort_by([("user_id", "ascending"), ("t", "ascending")])
    interactions = read(schema.INTERACTIONS_FILE, schema.INTERACTIONS)
    interactions = interactions.sort_by([("user_id", "ascending"), ("timestamp", "ascending")])  # stable
    pool = PreferencePool.from_table(read_preferences(cfg.preferences), cfg.preferences)
    if len(pool) == 0:
        raise schema.SchemaError(f"{cfg.preferences}: no preference statements")
    return Inputs(sequences, read(schema.ITEMS_FILE, schema.ITEMS), interactions, pool)


def build_benchmark(cfg: BenchmarkConfig) -> dict[str, Any]:
    """Write the benchmark folder `cfg.out`; returns its manifest."""
    if cfg.no_preferences:
        return build_history_only(cfg)
    data = load_inputs(cfg)
    item_ids = data.items.column("item_id").to_pylist()
    item_row = {item: i for i, item in enumerate(item_ids)}
    _check_targets(data.sequences, item_row, cfg.data)
    item_texts = [text or item for text, item in zip(render_items(data.items), item_ids)]
    reviews = _negative_reviews(data.interactions, item_texts, item_row, cfg.classifier)
    pref_emb, item_emb, review_emb = embed_all(
        [data.pool.texts, item_texts, reviews["texts"]], cfg.embedder, cfg.use_ray
    )
    tables: dict[str, dict[str, pa.Table]] = {
        RECOMMENDATION: recommendation_examples(data.sequences, data.pool, pref_emb, item_emb, item_row),
        CONSOLIDATION: consolidation_examples(data.sequences, data.pool),
    }
    steering, allowed = {}, None
    if not cfg.steer_with_negatives:
        allowed = np.array([not is_negative(p, cfg.sentiment.negation_words) for p in data.pool.texts])
        allowed = np.flatnonzero(allowed)
    for axis in (FINE, COARSE):
        tables[axis], steering[axis] = steering_examples(
            axis, data.sequences, data.pool, pref_emb, item_emb, item_ids, item_row, cfg.seed, cfg.candidates, allowed
        )
    pairs, pref_counts = match_pairs(
        data.pool,
        reviews["users"],
        reviews["positions"],
        reviews["items"],
        review_emb,
        pref_emb,
        cfg.sentiment.negation_words,
    )
    tables[SENTIMENT] = sentiment_examples(pairs, data.pool, cfg.sentiment, cfg.seed)
    with io.dataset_folder(cfg.out) as folder:
        for axis in AXES:
            folder.fs.create_dir(folder.path(f"{AXES_DIR}/{axis}"), recursive=True)
            for split, table in tables[axis].items():
                folder.write_table(axis_file(axis, split), table)
        folder.manifest = _manifest(cfg, data, tables, steering, pref_counts, reviews, pairs, pref_emb.shape[1])
    return folder.manifest


def build_history_only(cfg: BenchmarkConfig) -> dict[str, Any]:
    """Write a benchmark folder with the recommendation axis only, straight from
    sequences.parquet (no preferences, nothing embedded); returns its manifest."""
    from steerrec.config import to_dict

    path = f"{cfg.data}/{schema.SEQUENCES_FILE}"
    sequences = schema.validate(io.read_table(path), schema.SEQUENCES, path)
    sequences = sequences.sort_by([("user_id", "ascending"), ("t", "ascending")])
    items = io.read_table(f"{cfg.data}/{schema.ITEMS_FILE}", columns=["item_id"]).column("item_id").to_pylist()
    _check_targets(sequences, {item: i for i, item in enumerate(items)}, cfg.data)
    tables = history_only_examples(sequences)
    with io.dataset_folder(cfg.out) as folder:
        folder.fs.create_dir(folder.path(f"{AXES_DIR}/{RECOMMENDATION}"), recursive=True)
        for split, table in tables.items():
            folder.write_table(axis_file(RECOMMENDATION, split), table)
        folder.manifest = {
            "data": cfg.data,
            "preferences_source": None,
            "axes": [RECOMMENDATION],
            "counts": {RECOMMENDATION: {split: t.num_rows for split, t in tables.items()}},
            "config": to_dict(cfg),
            "steerrec_version": steerrec.__version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    return folder.manifest


def embed_all(groups: list[list[str]], cfg: EmbedderConfig, use_ray: bool | None = None) -> list[np.ndarray]:
    """Embeddings [len(g), dim] of each list of texts, every distinct text embedded once:
    on Ray Data when `use_ray` (None: when Ray is initialised), else in this process."""
    distinct = list(dict.fromkeys(text for group in groups for text in group))
    if use_ray is None:
        import ray

        use_ray = ray.is_initialized()
    logger.info(
        "embedding %d distinct texts with %s (%s)", len(distinct), cfg.model, "Ray Data" if use_ray else "local"
    )
    if use_ray:
        import ray.data

        table = pa.table({"row": pa.array(range(len(distinct)), pa.int64()), "text": distinct})
        block = cfg.batch_size * 16  # several blocks, so that every actor of the pool gets work
        ds = ray.data.from_arrow([table.slice(i, block) for i in range(0, table.num_rows, block)])
        out = embed_dataset(ds, "text", cfg, keep_columns=["row"]).to_arrow_refs()
        table = pa.concat_tables(ray.get(out)).sort_by("row")
        vectors = arrow_to_vectors(table.column(EMBEDDING_COLUMN))
    else:
        vectors = embed_texts(distinct, cfg)
    index = {text: i for i, text in enumerate(distinct)}
    return [vectors[np.array([index[t] for t in group], dtype=np.int64)] for group in groups]


def _check_targets(sequences: pa.Table, item_row: dict[str, int], data: str) -> None:
    for r, item in enumerate(sequences.column("target").to_pylist()):
        if item not in item_row:
            raise schema.SchemaError(
                f"{data}/{schema.SEQUENCES_FILE}: row {r}: target {item!r} is not in items.parquet"
            )


def _negative_reviews(
    interactions: pa.Table, item_texts: list[str], item_row: dict[str, int], classifier: ClassifierConfig
) -> dict[str, Any]:
    """The negatively reviewed interactions: user, position, item and the text to embed
    (the review, else its summary, else the item's text)."""
    users = interactions.column("user_id").to_pylist()
    texts = interactions.column("review_text").to_pylist()
    negative = negative_reviews(texts, interactions.column("rating").to_numpy(zero_copy_only=False), classifier)
    rows = np.flatnonzero(negative)
    items = interactions.column("item_id").to_pylist()
    summaries = interactions.column("review_summary").to_pylist()
    return {
        "total": len(users),
        "users": [users[j] for j in rows],
        "positions": positions(users)[rows],
        "items": [items[j] for j in rows],
        "texts": [_first_text(texts[j], summaries[j], item_texts[item_row[items[j]]]) for j in rows],
    }


def _first_text(*candidates: str | None) -> str:
    return next((c for c in candidates if c and c.strip()), "")


def _manifest(
    cfg: BenchmarkConfig,
    data: Inputs,
    tables: dict[str, dict[str, pa.Table]],
    steering: dict[str, Any],
    pref_counts: dict[str, int],
    reviews: dict[str, Any],
    pairs: list,
    dim: int,
) -> dict[str, Any]:
    from steerrec.config import to_dict

    counts = {axis: {split: t.num_rows for split, t in tables[axis].items()} for axis in AXES}
    return {
        "data": cfg.data,
        "preferences_source": cfg.preferences,
        "counts": counts,
        "preferences": {"keys": len(data.pool.users), "distinct": len(data.pool), **pref_counts},
        "reviews": {"total": reviews["total"], "negative": len(reviews["users"])},
        "sentiment": {"pairs": len(pairs), "pairs_per_split": {s: n // 2 for s, n in counts[SENTIMENT].items()}},
        "steering": steering,
        "embedder": cfg.embedder.model,
        "embedding_dim": int(dim),
        "classifier": cfg.classifier.name,
        "seed": cfg.seed,
        "config": to_dict(cfg),
        "steerrec_version": steerrec.__version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def summary_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) rows like the paper's Table 4, for a job to print (the axes it has)."""
    counts = manifest["counts"]

    def splits(axis: str, per: int = 1) -> str:
        return "/".join(f"{counts[axis][s] // per:,}" for s in schema.SPLITS)

    if "preferences" not in manifest:  # built without preferences
        return [("#preferences", "0")] + [(f"{axis} train/valid/test", splits(axis)) for axis in counts]
    prefs = manifest["preferences"]

    rows = [
        ("#preferences", f"{prefs['preferences']:,}"),
        ("#positive", f"{prefs['positive']:,}"),
        ("#negative", f"{prefs['negative']:,}"),
        ("negative unmatched", f"{prefs['unmatched']:,}"),
        ("pos/neg pairs train/valid/test", splits(SENTIMENT, 2)),
    ]
    rows += [(f"{axis} train/valid/test", splits(axis)) for axis in AXES if axis != SENTIMENT]
    for axis in (FINE, COARSE):
        similarity = manifest["steering"][axis]["mean_target_similarity"]
        rows.append((f"{axis} mean cos(target, i_t)", "-" if similarity is None else f"{similarity:.3f}"))
    return rows
