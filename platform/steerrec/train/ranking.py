"""Rank items for encoded examples with any recommender, and score the rankings.

Generative models decode with trie-constrained beam search (every beam is an item);
SASRec scores every item. Rankings are item rows (catalog / vocab order), best first.
Training validates with it (steerrec.train.recommender) and steerrec.evaluation.report
evaluates finished runs with it, so it sits in train/, below evaluation/.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steerrec.metrics import m_at_k, ranking_metrics
from steerrec.train.batches import iter_batches

KS = (5, 10)


def build_trie(model: Any, codes: np.ndarray) -> Any:
    """The catalog's prefix trie in the model's token space (None for SASRec); a model with
    its own (IDGenRec: variable-length textual IDs, `codes` -1-padded) builds it itself."""
    from steerrec.decoding import PrefixTrie

    if hasattr(model, "item_trie"):
        return model.item_trie(codes)
    if not hasattr(model, "vocab"):
        return None
    return PrefixTrie.from_codes(codes, model.vocab.offsets, model.vocab.size)


def to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def rank_batch(model: Any, batch: dict[str, Any], trie: Any, beam_size: int, top_k: int) -> np.ndarray:
    """Item rows [B, top_k], best first (-1 where fewer items are reachable); a batch's
    `item_bias` [B, n_items] (steering) is added to the items' scores."""
    import torch

    device = next(model.parameters()).device
    batch = to_device(batch, device)
    bias = batch.pop("item_bias", None)  # [B, n_items] steering biases, -inf = leave out
    with torch.no_grad():
        if trie is None:
            scores = model.score_all(batch["history"])
            if bias is not None:
                scores = scores + bias.to(scores.dtype)
            return scores.topk(top_k, dim=1).indices.cpu().numpy()
        items, _ = model.recommend(batch, trie.to(device), beam_size, top_k, item_bias=bias)
    return items.cpu().numpy()


def rank_encoded(
    model: Any,
    encoded: dict[str, Any],
    trie: Any,
    beam_size: int,
    top_k: int = 10,
    batch_size: int = 64,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(rankings [n, top_k], the example index of each row) for this rank's share."""
    order = np.arange(encoded["n"])
    per_rank = len(order) // world_size if world_size > 1 else len(order)
    index = order[rank::world_size][:per_rank]
    parts = [
        rank_batch(model, batch, trie, beam_size, top_k)
        for batch in iter_batches(encoded, batch_size, rank=rank, world_size=world_size)
    ]
    ranked = np.concatenate(parts) if parts else np.zeros((0, top_k), dtype=np.int64)
    return ranked, index


def hit_sums(ranked: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Sums (not means) of recall@k and ndcg@k and the count, for combining across workers."""
    if len(targets) == 0:
        return {"count": 0.0} | {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    means = ranking_metrics(ranked, targets, ks)
    out = {f"{m}@{k}": means[f"{m}@{k}"] * len(targets) for k in ks for m in ("recall", "ndcg")}
    return out | {"count": float(len(targets))}


def axis_scores(ranked: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Recall@k and NDCG@k (means) of one axis."""
    means = ranking_metrics(ranked, targets, ks)
    return {f"{m}@{k}": means[f"{m}@{k}"] for k in ks for m in ("recall", "ndcg")}


def sentiment_scores(
    ranked: np.ndarray, targets: np.ndarray, negative: np.ndarray, pair_id: np.ndarray, ks: tuple[int, ...] = KS
) -> dict[str, float]:
    """m@k over (positive, negative) pairs; rows without a twin are left out."""
    pos = {int(p): i for i, p in enumerate(pair_id) if not negative[i]}
    neg = {int(p): i for i, p in enumerate(pair_id) if negative[i]}
    pairs = sorted(set(pos) & set(neg))
    if not pairs:
        raise ValueError("sentiment: no pair has both a positive and a negative row")
    ip, ineg = np.array([pos[p] for p in pairs]), np.array([neg[p] for p in pairs])
    if np.any(targets[ip] != targets[ineg]):
        raise ValueError("sentiment: a pair's positive and negative rows name different target items")
    return {f"m@{k}": m_at_k(ranked[ip], ranked[ineg], targets[ip], k) for k in ks}
