"""Test metrics of LangPTune and its baselines (langptune-profiles Sec. 4.2, Tables 1-2):
NDCG, MRR, Recall and Precision at k (20) of each session's upcoming item over the whole
catalog (one relevant item: Precision@k = Recall@k / k).

Queries by variant: a greedy profile of the policy (LangPTune, -0, -CL, -RLSO) or the
session's history as text (EMB-0, EMB-CL), ranked by cosine similarity to the items'
embeddings. Random ranks items uniformly; MostPop by how often an item appears in the
training sessions (history and upcoming items), ties by catalog row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from steerrec.langptune.embedder import Catalog, embed_frozen
from steerrec.langptune.reward import top_k_by_cosine
from steerrec.langptune.sessions import Session, history_text
from steerrec.metrics import mrr_at_k, ndcg_at_k, recall_at_k

if TYPE_CHECKING:
    from steerrec.langptune.train import LangPTune


def ranking_table(ranked: np.ndarray, targets: np.ndarray, k: int = 20) -> dict[str, float]:
    """ndcg/mrr/recall/precision@k of rankings [N, >= k] (k capped at the catalog size).

    By hand: ranked [[3, 1], [2, 0]], targets [1, 5], k 2 -> ndcg (1/log2 3)/2, mrr 1/4,
    recall 1/2, precision 1/4.
    """
    width = min(k, ranked.shape[1])
    recall = recall_at_k(ranked, targets, width)
    return {
        f"ndcg@{k}": ndcg_at_k(ranked, targets, width),
        f"mrr@{k}": mrr_at_k(ranked, targets, width),
        f"recall@{k}": recall,
        f"precision@{k}": recall / k,
        "sessions": float(len(targets)),
    }


def random_ranking(n_rows: int, n_items: int, k: int, seed: int = 0) -> np.ndarray:
    """[n_rows, min(k, n_items)] item rows drawn without replacement per row."""
    rng = np.random.default_rng(seed)
    width = min(k, n_items)
    return np.stack([rng.permutation(n_items)[:width] for _ in range(n_rows)]) if n_rows else np.zeros((0, width))


def most_popular_ranking(train: Sequence[Session], catalog: Catalog, n_rows: int, k: int) -> np.ndarray:
    """The same top-k for every row: items by count in the training sessions.

    By hand: sessions (a, b | c) and (b, c | d) over catalog [a, b, c, d, e] -> counts
    b 2, c 2, a 1, d 1, e 0 -> [1, 2, 0, 3, 4].
    """
    counts = Counter(item for s in train for item in (*s.history, s.target))
    order = sorted(range(len(catalog.item_ids)), key=lambda r: (-counts.get(catalog.item_ids[r], 0), r))
    return np.tile(np.array(order[:k], dtype=np.int64), (n_rows, 1))


def evaluate_run(run: LangPTune, split: str = "test", max_sessions: int = 0, k: int = 20) -> dict[str, Any]:
    """The variant's table row and Random / MostPop on the same sessions, plus the queries
    (greedy profiles or history texts) that were ranked: {"metrics", "baselines", "queries"}."""
    sessions = run.splits.get(split, [])[: max_sessions or None]
    if not sessions:
        raise ValueError(f"no {split} sessions to evaluate (sessions.splits must include {split!r})")
    if run.cfg.query == "profile":
        from steerrec.langptune.policy_task import greedy_profiles

        length = run.cfg.policy.rollout.profile_length
        queries = greedy_profiles(run.policy, run.tokenizer, sessions, run.messages, length)
    else:
        queries = [history_text(s, run.catalog.text_of) for s in sessions]
    batch = run.cfg.embedder_phase.embedder.batch_size
    items = embed_frozen(run.embedder, run.catalog.texts, batch)
    targets = run.catalog.rows([s.target for s in sessions])
    ranked = top_k_by_cosine(embed_frozen(run.embedder, queries, batch), items, k)
    n, n_items = len(sessions), len(run.catalog.item_ids)
    return {
        "metrics": ranking_table(ranked, targets, k),
        "baselines": {
            "random": ranking_table(random_ranking(n, n_items, k, run.cfg.seed), targets, k),
            "most_pop": ranking_table(most_popular_ranking(run.splits.get("train", []), run.catalog, n, k), targets, k),
        },
        "queries": [{"user_id": s.user_id, "t": s.t, "query": q} for s, q in zip(sessions, queries)],
    }
