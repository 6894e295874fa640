"""The recommender's text embedder, trainable: steerrec.embed's models (MiniLM offline, or
any sentence-transformers name), loaded as a fresh copy so that training never touches the
per-process cache that `steerrec.embed.load_model` shares with other callers.

`embed_grad` keeps the autograd graph (InfoNCE updates); `embed_frozen` is
steerrec.embed's batched, normalized encode (rankings, rewards).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from steerrec.embed import EmbedderConfig, encode, resolve_model


def load_trainable(cfg: EmbedderConfig) -> Any:
    """A new SentenceTransformer for `cfg` (not the shared cached one)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model(cfg.model, cfg.cache_dir), device=cfg.device)
    if cfg.max_seq_length is not None:
        model.max_seq_length = cfg.max_seq_length
    return model


def embed_grad(model: Any, texts: Sequence[str]) -> Any:
    """L2-normalized embeddings [N, D] (torch) of `texts`, differentiable."""
    import torch.nn.functional as F

    features = model.preprocess(list(texts))
    device = next(model.parameters()).device
    features = {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}
    return F.normalize(model(features)["sentence_embedding"], dim=1)


def embed_frozen(model: Any, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Normalized float32 embeddings [N, D] without gradients (steerrec.embed.encode); the
    model's train/eval mode is left as it was."""
    was_training = model.training
    try:
        return encode(model, texts, batch_size)
    finally:
        model.train(was_training)


class Catalog:
    """Every rankable item: ids in row order and the text the embedder reads (and the
    policy prompt shows), rendered once by steerrec.data.text."""

    def __init__(self, item_ids: Sequence[str], texts: Sequence[str]) -> None:
        if len(item_ids) != len(texts) or not item_ids:
            raise ValueError(f"a catalog needs one text per item and at least one item, got {len(item_ids)} ids")
        self.item_ids, self.texts = list(item_ids), list(texts)
        self.row = {item: k for k, item in enumerate(self.item_ids)}
        if len(self.row) != len(self.item_ids):
            raise ValueError("catalog item ids repeat")
        self.text_of = dict(zip(self.item_ids, self.texts))

    @classmethod
    def from_items(cls, items: Any, max_chars: int = 300) -> Catalog:
        """From an items table (schema.ITEMS); an item with no text is shown by its id."""
        from steerrec.data.text import ItemTextConfig, render_items

        ids = items.column("item_id").to_pylist()
        texts = render_items(items, ItemTextConfig(max_chars=max_chars))
        return cls(ids, [t or i for t, i in zip(texts, ids)])

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Item rows [N] of `item_ids`; KeyError naming the first unknown id."""
        missing = next((i for i in item_ids if i not in self.row), None)
        if missing is not None:
            raise KeyError(f"item {missing!r} is not in the catalog ({len(self.row)} items)")
        return np.array([self.row[i] for i in item_ids], dtype=np.int64)
