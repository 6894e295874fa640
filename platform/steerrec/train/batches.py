"""Benchmark rows -> model batches for TIGER, Mender-Tok, Mender-Emb and SASRec.

    catalog = Catalog.from_tables(semantic_ids, items)          # item rows = vocab order
    rows = training_examples(bench, "all", catalog)             # Mender Sec. 4.3 mixtures
    encoded = encode("tiger", tiger_cfg, rows, catalog)
    for batch in iter_batches(encoded, 64, shuffle=True, seed=epoch): loss = model(batch)

Examples are model-agnostic (item rows, preference strings, polarity); `encode` turns
them into the arrays one model reads, kept as indices into the catalog and into a table
of preference embeddings so that Mender-Emb batches are gathered per batch, not stored.
An item's row is its position in semantic_ids.parquet; SASRec's id for it is row + 1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from steerrec.benchmark.axes import (
    COARSE,
    CONSOLIDATION,
    FINE,
    NEGATIVE,
    NO_PREFERENCE,
    POSITIVE,
    RECOMMENDATION,
    SENTIMENT,
    axis_file,
    axis_schema,
)
from steerrec.data import io, schema
from steerrec.train.batch_order import batch_indices

logger = logging.getLogger(__name__)

# Training data mixtures (Mender Sec. 4.3): preference-based recommendation data, optionally
# augmented with sentiment pairs (negatives trained by down-weighted unlikelihood) and steering data.
MIXTURES: dict[str, tuple[str, ...]] = {
    "recommendation": (RECOMMENDATION,),
    "pos": (RECOMMENDATION, "sentiment_pos"),
    "neg": (RECOMMENDATION, "sentiment_neg"),
    "pos_neg": (RECOMMENDATION, "sentiment_pos", "sentiment_neg"),
    "fine": (RECOMMENDATION, FINE),
    "coarse": (RECOMMENDATION, COARSE),
    "fine_coarse": (RECOMMENDATION, FINE, COARSE),
    "all": (RECOMMENDATION, "sentiment_pos", "sentiment_neg", FINE, COARSE),
}
PREFERENCE_FREE = ("tiger", "sasrec", "idgenrec")  # models that read the history only


@dataclass
class Catalog:
    """Items in vocab order: ids, titles and semantic-ID codes [n, L]."""

    item_ids: list[str]
    titles: list[str]
    codes: np.ndarray

    def __post_init__(self) -> None:
        self.row = {item: i for i, item in enumerate(self.item_ids)}
        if len(self.row) != len(self.item_ids):
            raise ValueError("semantic_ids: an item_id appears twice")

    @classmethod
    def from_tables(cls, semantic_ids: pa.Table, items: pa.Table, source: str = "semantic_ids.parquet") -> Catalog:
        """Rows follow `semantic_ids`; titles come from `items` (item_id, title)."""
        semantic_ids = schema.validate(semantic_ids, schema.SEMANTIC_IDS, source)
        ids = semantic_ids.column("item_id").to_pylist()
        codes = semantic_ids.column("codes").to_pylist()
        widths = {len(c) for c in codes if c is not None}
        if None in codes or len(widths) != 1:
            raise schema.SchemaError(
                f"{source}: every row needs a codes list of one common length, got lengths {widths}"
            )
        title_of = dict(zip(items.column("item_id").to_pylist(), items.column("title").to_pylist()))
        missing = [i for i, item in enumerate(ids) if item not in title_of]
        if missing:
            raise schema.SchemaError(f"{source}: row {missing[0]}: item {ids[missing[0]]!r} is not in the items table")
        titles = [title_of[item] or item for item in ids]
        return cls(ids, titles, np.asarray(codes, dtype=np.int64))

    def rows_of(self, items: Sequence[str], source: str) -> np.ndarray:
        try:
            return np.fromiter((self.row[i] for i in items), dtype=np.int64, count=len(items))
        except KeyError as exc:
            raise schema.SchemaError(f"{source}: item {exc.args[0]!r} has no semantic ID") from None


@dataclass
class Examples:
    """Model-agnostic examples: histories as item rows, preferences as strings."""

    history: list[list[int]]
    preferences: list[list[str]]
    target: np.ndarray  # [N] item rows
    negative: np.ndarray  # [N] bool: the target must NOT be recommended
    pair_id: np.ndarray  # [N] sentiment pair (-1 elsewhere)

    def __len__(self) -> int:
        return len(self.target)

    def take(self, index: np.ndarray) -> Examples:
        return Examples(
            [self.history[i] for i in index],
            [self.preferences[i] for i in index],
            self.target[index],
            self.negative[index],
            self.pair_id[index],
        )

    @staticmethod
    def concat(parts: Sequence[Examples]) -> Examples:
        return Examples(
            [h for p in parts for h in p.history],
            [q for p in parts for q in p.preferences],
            np.concatenate([p.target for p in parts]),
            np.concatenate([p.negative for p in parts]),
            np.concatenate([p.pair_id for p in parts]),
        )


def read_axis(bench: str, axis: str, split: str) -> pa.Table:
    """One split of one axis of a benchmark folder, checked against its schema."""
    path = f"{bench}/{axis_file(axis, split)}"
    return schema.validate(io.read_table(path), axis_schema(axis), path)


def has_axis(bench: str, axis: str, split: str) -> bool:
    """Whether the benchmark folder has this split of this axis (one built without
    preferences has the recommendation axis only)."""
    fs, path = io.resolve(f"{bench}/{axis_file(axis, split)}")
    return fs.get_file_info(path).is_file


def axis_examples(table: pa.Table, axis: str, catalog: Catalog, source: str) -> Examples:
    """Rows of one axis table as Examples (negative = sentiment rows with polarity neg;
    a NO_PREFERENCE row has an empty list of preferences)."""
    n = table.num_rows
    histories = [catalog.rows_of(h or [], f"{source} history").tolist() for h in table.column("history").to_pylist()]
    if axis == CONSOLIDATION:
        prefs = [list(p or []) for p in table.column("preferences").to_pylist()]
    else:
        prefs = [[] if p == NO_PREFERENCE else [p] for p in table.column("preference").to_pylist()]
    negative, pair = np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
    if axis == SENTIMENT:
        polarity = table.column("polarity").to_pylist()
        bad = next((r for r, p in enumerate(polarity) if p not in (POSITIVE, NEGATIVE)), None)
        if bad is not None:
            raise schema.SchemaError(
                f"{source}: row {bad}: polarity {polarity[bad]!r} is not {POSITIVE!r} or {NEGATIVE!r}"
            )
        negative = np.array([p == NEGATIVE for p in polarity], dtype=bool)
        pair = table.column("pair_id").to_numpy().astype(np.int64)
    target = catalog.rows_of(table.column("target").to_pylist(), f"{source} target")
    return Examples(histories, prefs, target, negative, pair)


def training_examples(bench: str, mixture: str, catalog: Catalog, split: str = "train") -> Examples:
    """The examples of a training mixture (MIXTURES) from one split of a benchmark folder."""
    if mixture not in MIXTURES:
        raise ValueError(f"unknown mixture {mixture!r}; known: {sorted(MIXTURES)}")
    parts = []
    for source in MIXTURES[mixture]:
        axis = SENTIMENT if source.startswith("sentiment") else source
        ex = axis_examples(read_axis(bench, axis, split), axis, catalog, f"{bench}/{axis_file(axis, split)}")
        if source != axis:
            ex = ex.take(np.flatnonzero(ex.negative == (source == "sentiment_neg")))
        parts.append(ex)
        logger.info("mixture %s: %d %s examples from %s", mixture, len(ex), source, split)
    return Examples.concat(parts)


@dataclass
class TextTable:
    """Distinct preference strings and their embeddings [n, d] (Mender-Emb); n may be 0."""

    texts: list[str]
    vectors: np.ndarray

    @classmethod
    def build(cls, examples: Sequence[Examples], embed: Callable[[list[str]], np.ndarray], dim: int) -> TextTable:
        """`dim`: the embedder's width, the table's when no example has a preference."""
        texts = list(dict.fromkeys(p for ex in examples for prefs in ex.preferences for p in prefs))
        if not texts:
            return cls([], np.zeros((0, dim), dtype=np.float32))
        return cls(texts, np.asarray(embed(texts), dtype=np.float32).reshape(len(texts), -1))


def encode(
    model: str,
    cfg: Any,
    ex: Examples,
    catalog: Catalog,
    item_emb: np.ndarray | None = None,
    texts: TextTable | None = None,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Arrays one model's batches are sliced from (index [N] first; "item" = target rows); see
    `make_batch`. IDGenRec needs its `tokenizer` (its prompts hold the history's textual IDs)."""
    from steerrec.models.vocab import SemanticIdVocab

    out: dict[str, Any] = {"model": model, "negative": ex.negative, "n": len(ex), "item": ex.target}
    if model == "idgenrec":
        from steerrec.train.idgenrec_batches import encode_prompts

        return out | encode_prompts(tokenizer, cfg.max_prompt_tokens, ex.history, catalog.codes) | {"target": ex.target}
    width = cfg.max_len if model == "sasrec" else cfg.max_history
    out["length"] = np.fromiter((min(len(h), width) for h in ex.history), dtype=np.int64, count=len(ex))
    if model == "sasrec":
        out["history"] = _left_padded([[r + 1 for r in h] for h in ex.history], cfg.max_len)
        out["target"] = ex.target + 1
        return out
    vocab = SemanticIdVocab(cfg.codebook_sizes)
    item_tokens = vocab.encode_items(catalog.codes)
    out["target"] = item_tokens[ex.target]
    if model == "tiger":
        out["history"] = vocab.encode_history(ex.history, item_tokens, cfg.max_history)
    elif model == "mender_tok":
        from steerrec.models.mender import format_text

        out["text"] = [
            format_text(p, [catalog.titles[r] for r in h], cfg.max_history) for p, h in zip(ex.preferences, ex.history)
        ]
    elif model == "mender_emb":
        if item_emb is None or texts is None:
            raise ValueError("mender_emb needs item embeddings and a preference TextTable")
        index = {t: i for i, t in enumerate(texts.texts)}
        prefs = [[index[p] for p in ps][: cfg.max_preferences] for ps in ex.preferences]
        out["preference_rows"] = _right_padded(prefs, cfg.max_preferences)
        out["history_rows"] = _right_padded([h[-cfg.max_history :] for h in ex.history], cfg.max_history)
        out["item_emb"], out["text_emb"] = item_emb.astype(np.float32), texts.vectors
    else:
        raise ValueError(f"unknown model {model!r}; known: mender_emb, mender_tok, sasrec, tiger")
    return out


def make_batch(encoded: dict[str, Any], index: np.ndarray) -> dict[str, Any]:
    """The model batch of rows `index`: tensors (and `text` strings for Mender-Tok)."""
    import torch

    model = encoded["model"]
    batch: dict[str, Any] = {"target": torch.as_tensor(encoded["target"][index])}
    if encoded["negative"][index].any():
        batch["negative"] = torch.as_tensor(encoded["negative"][index])
    if encoded.get("item_bias") is not None:  # steering (evaluation only): [n, n_items], -inf = leave out
        batch["item_bias"] = torch.as_tensor(encoded["item_bias"][index])
    if model in ("tiger", "sasrec"):
        batch["history"] = torch.as_tensor(encoded["history"][index])
    elif model == "mender_tok":
        batch["text"] = [encoded["text"][i] for i in index]
    elif model == "idgenrec":
        from steerrec.train.idgenrec_batches import padded

        batch["input_ids"] = padded([encoded["prompt"][i] for i in index])
        batch["mask"] = batch["input_ids"] != 0  # PAD_ID
    else:
        for key, table in (("preference", encoded["text_emb"]), ("history", encoded["item_emb"])):
            rows = encoded[f"{key}_rows"][index]
            width = max(1, int((rows >= 0).sum(1).max()))
            rows = rows[:, :width]
            emb = table[np.maximum(rows, 0)] if len(table) else np.zeros((*rows.shape, table.shape[1]), np.float32)
            batch[f"{key}_emb"] = torch.as_tensor(emb)
            batch[f"{key}_mask"] = torch.as_tensor(rows >= 0)
    return batch


def iter_batches(
    encoded: dict[str, Any],
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    buckets: int = 0,
) -> Iterator[dict[str, Any]]:
    """Batches of this rank's shard; every rank gets the same number of batches.

    With `shuffle` and `buckets` > 1, batches are length-bucketed (`bucketed_order`).
    """
    for index in batch_indices(encoded, batch_size, shuffle, seed, rank, world_size, buckets):
        yield make_batch(encoded, index)


def _left_padded(rows: list[list[int]], width: int) -> np.ndarray:
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        kept = row[-width:]
        if kept:
            out[i, width - len(kept) :] = kept
    return out


def _right_padded(rows: list[list[int]], width: int) -> np.ndarray:
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row[:width])] = row[:width]
    return out
