"""Axes 2 and 3, fine- and coarse-grained steering (Mender Sec. 3.5, Eq. 3-4; App. D.2).

For each row (u, t) of sequences.parquet with target i_t:

- Eq. 3: i~ = the item most similar to i_t (fine), i^ = the least similar one (coarse),
  over all items but i_t itself;
- Eq. 4: p1 = the statement of the pool P (all users' preferences at every t) most
  similar to i~, p2 = the statement of P most similar to i^ (both an argmax). The
  builder leaves negative statements out of P by default ("No sci-fi board games" is
  close to a sci-fi game, and as its steering preference it would contradict the
  sentiment axis); `BenchmarkConfig.steer_with_negatives=true` keeps the paper's P;
- the new rows: fine  <p1, history of u^> -> i~,  coarse  <p2, history of u> -> i^.

Our reading of "two new sequences <p1, i_u^^(1..t-1)> and <p2, i_u^(1..t-1)> with
ground-truth items i~ and i^": the extracted text lost the tilde, but App. D.2 and Fig. 13
("exchanging the original preference with each user preference and associated new
ground truth item") make the new targets the retrieved items, not i_t; a fine row whose
target were i_t itself would not test steering. u^ is another user whose sequence has
i_t as a target at some position t^ with a different history; the fine row is keyed
(u^, t^) and carries that history, so at (user_id, t) sequences.parquet holds i_t in
both axes. u^ is picked by a seeded hash among the candidates; a row without one is
dropped from the fine axis (counted as `no_other_user`).

No (preference, item) pair is in two splits (App. D.2): splits choose in the order
test, valid, train; each row takes the best of its top-k candidate statements whose pair
with its new target no other split has taken. Rows of one split may share a pair (the
same item with different histories); a row whose k candidates are all taken elsewhere
is dropped (`no_free_preference`).
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from steerrec.benchmark.axes import COARSE, EXAMPLES, FINE
from steerrec.benchmark.matching import bottomk_cosine, topk_cosine
from steerrec.benchmark.pool import PreferencePool
from steerrec.benchmark.recommendation import split_tables

logger = logging.getLogger(__name__)

SPLIT_ORDER = ("test", "valid", "train")  # who chooses first when pairs compete


def extreme_items(item_emb: np.ndarray, rows: np.ndarray, most_similar: bool, block_size: int = 4096) -> np.ndarray:
    """Eq. 3: for each item row, the most (or least) similar other item; -1 when alone."""
    rows = np.asarray(rows, dtype=np.int64)
    find = topk_cosine if most_similar else bottomk_cosine
    _, idx = find(item_emb[rows], item_emb, 1, exclude=rows, block_size=block_size)
    return idx[:, 0]


def preference_candidates(
    item_emb: np.ndarray, rows: np.ndarray, pref_emb: np.ndarray, k: int, block_size: int = 4096
) -> np.ndarray:
    """Eq. 4 with runners-up: the k statements most similar to each item row [n, k], best first."""
    _, idx = topk_cosine(item_emb[np.asarray(rows, dtype=np.int64)], pref_emb, k, block_size=block_size)
    return idx


def assign_greedy(
    candidates: np.ndarray, items: np.ndarray, splits: Sequence[str], order: Sequence[str] = SPLIT_ORDER
) -> np.ndarray:
    """Row j's statement: the first of candidates[j] whose pair (statement, items[j]) no
    other split owns yet; rows are visited split by split in `order`, then in row order,
    and a split owns every pair it takes. -1 where all candidates are owned elsewhere."""
    splits = np.asarray(splits, dtype=object)
    owner: dict[tuple[int, int], str] = {}
    chosen = np.full(len(items), -1, dtype=np.int64)
    for split in order:
        for j in np.flatnonzero(splits == split):
            for c in candidates[j]:
                if c < 0:
                    break
                if owner.setdefault((int(c), int(items[j])), split) == split:
                    chosen[j] = c
                    break
    return chosen


def other_users(
    users: Sequence[str], ts: np.ndarray, histories: Sequence[Sequence[str]], targets: np.ndarray, seed: int
) -> np.ndarray:
    """For row j, a row of another user with the same target and a different history,
    picked by a hash of (seed, user, t) among such rows; -1 when there is none."""
    by_target: dict[int, list[int]] = defaultdict(list)
    for j, target in enumerate(targets.tolist()):
        by_target[target].append(j)
    out = np.full(len(targets), -1, dtype=np.int64)
    for j, target in enumerate(targets.tolist()):
        group = by_target[target]
        start = zlib.crc32(f"{seed}|{users[j]}|{int(ts[j])}".encode())
        for step in range(len(group)):
            other = group[(start + step) % len(group)]
            if users[other] != users[j] and list(histories[other]) != list(histories[j]):
                out[j] = other
                break
    return out


def steering_examples(
    axis: str,
    sequences: pa.Table,
    pool: PreferencePool,
    pref_emb: np.ndarray,
    item_emb: np.ndarray,
    item_ids: Sequence[str],
    item_row: dict[str, int],
    seed: int = 0,
    candidates: int = 16,
    allowed: np.ndarray | None = None,
) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """Axis FINE or COARSE rows (axes.EXAMPLES) per split, and counts for the manifest.
    `allowed`: the indices into pool.texts that may be paired (default: all)."""
    if axis not in (FINE, COARSE):
        raise ValueError(f"steering axis must be {FINE!r} or {COARSE!r}, got {axis!r}")
    users = sequences.column("user_id").to_pylist()
    ts = sequences.column("t").to_numpy().astype(np.int64)
    splits = np.asarray(sequences.column("split").to_pylist(), dtype=object)
    targets = np.array([item_row[i] for i in sequences.column("target").to_pylist()], dtype=np.int64)
    unique_targets, target_pos = np.unique(targets, return_inverse=True)
    new_target = extreme_items(item_emb, unique_targets, most_similar=axis == FINE)[target_pos]
    if axis == FINE:
        source = other_users(users, ts, sequences.column("history").to_pylist(), targets, seed)
    else:
        source = np.arange(len(targets), dtype=np.int64)
    keep = (source >= 0) & (new_target >= 0)
    wanted, wanted_pos = np.unique(new_target[keep], return_inverse=True)
    allowed = np.arange(len(pool)) if allowed is None else np.asarray(allowed, dtype=np.int64)
    cands = np.full((len(targets), max(1, min(candidates, len(allowed)))), -1, dtype=np.int64)
    if len(wanted) and len(allowed):
        found = preference_candidates(item_emb, wanted, pref_emb[allowed], candidates)  # [w, k]
        cands[keep] = np.where(found >= 0, allowed[np.maximum(found, 0)], -1)[wanted_pos]
    chosen = np.where(keep, assign_greedy(cands, new_target, np.where(keep, splits, "")), -1)
    done = np.flatnonzero(chosen >= 0)
    src = source[done]
    history = sequences.column("history").take(pa.array(src))
    table = pa.Table.from_arrays(
        [
            pa.array([users[s] for s in src], pa.string()),
            pa.array(ts[src], pa.int32()),
            history,
            pa.array([pool.texts[c] for c in chosen[done]], pa.string()),
            pa.array([item_ids[i] for i in new_target[done]], pa.string()),
        ],
        schema=EXAMPLES,
    )
    stats = {
        "rows": len(done),
        "no_other_user": int((source < 0).sum()),
        "no_free_preference": int((keep & (chosen < 0)).sum()),
        "mean_target_similarity": _mean_dot(item_emb, new_target[done], targets[done]),
    }
    logger.info("%s steering: %s", axis, stats)
    return split_tables(table, splits[done]), stats


def _mean_dot(emb: np.ndarray, a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) == 0:
        return None
    return float(np.einsum("ij,ij->i", emb[a], emb[b]).mean())
