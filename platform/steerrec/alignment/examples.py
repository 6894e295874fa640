"""The examples one run trains on: loaded from a dataset folder, shuffled per epoch, sharded, candidates picked."""

from __future__ import annotations

import logging
import zlib

import numpy as np

from steerrec.alignment.data import Example, build_examples

logger = logging.getLogger(__name__)


def load_examples(cfg) -> dict[str, list[Example]]:
    """Examples per split from cfg.data (interactions and items), users cut to cfg.users."""
    from steerrec.data import io, schema

    inter = io.read_table(
        f"{cfg.data}/{schema.INTERACTIONS_FILE}", ["user_id", "item_id", "timestamp", "rating"]
    ).to_pandas()
    items = io.read_table(f"{cfg.data}/{schema.ITEMS_FILE}", ["item_id", "title"]).to_pandas()
    if cfg.users:
        keep = sorted(inter["user_id"].unique())[: cfg.users]
        inter = inter[inter["user_id"].isin(set(keep))]
    splits: dict[str, list[Example]] = {"train": [], "valid": [], "test": []}
    for ex in build_examples(inter, items, cfg.examples):
        splits[ex.split].append(ex)
    logger.info("examples: %s", {k: len(v) for k, v in splits.items()})
    return splits


def corpus(splits: dict[str, list[Example]]) -> list[str]:
    """Texts to train a tiny model's tokenizer on: every prompt and candidate title."""
    texts = [e.prompt() for e in splits["train"]]
    return texts + sorted({" " + c for exs in splits.values() for e in exs for c in e.candidates})


def epoch_examples(train: list[Example], cfg, epoch: int) -> list[Example]:
    """This epoch's shuffled training examples (at most cfg.max_train), the same on every rank."""
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train))
    if cfg.max_train:
        order = order[: cfg.max_train]
    return [train[i] for i in order]


def shard(examples: list[Example], rank: int, world_size: int) -> list[Example]:
    """This rank's share: every world_size-th example from `rank`."""
    return examples[rank::world_size]


def pick_candidates(ex: Example, n_negatives: int, seed: int) -> list[int]:
    """[preferred] + n_negatives other candidates drawn at random (fixed per example)."""
    rng = np.random.default_rng([seed, ex.t, zlib.crc32(ex.user_id.encode())])
    others = [k for k in range(len(ex.candidates)) if k != ex.preferred]
    return [ex.preferred] + [others[k] for k in rng.choice(len(others), size=n_negatives, replace=False)]
