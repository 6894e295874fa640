"""Test metrics of LangPTune and its baselines (langptune-profiles Sec. 4.2, Tables 1-2):
NDCG, MRR, Recall and Precision at k (20) of each session's upcoming item over the whole
catalog (one relevant item: Precision@k = Recall@k / k).

Queries by variant: a greedy profile of the policy (LangPTune, -0, -CL, -RLSO) or the
session's history as text (EMB-0, EMB-CL), ranked by cosine similarity to the items'
embeddings. Random ranks items uniformly; MostPop by how often an item appears in the
training sessions (history and upcoming items), ties by catalog row.
On a dataset with truth (the world), a profile variant's row also says how often its
profiles name the user's true likes and dislikes (steerrec.langptune.truth_hits).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from steerrec.langptune.embedder import Catalog, embed_frozen
from steerrec.langptune.reward import top_k_by_cosine
from steerrec.langptune.sessions import Session, history_text
from steerrec.langptune.truth_hits import load_truth, truth_hits
from steerrec.metrics import mrr_at_k, ndcg_rows, recall_at_k, standard_error
from steerrec.run_folder import write_json

if TYPE_CHECKING:
    from steerrec.langptune.train import LangPTune

logger = logging.getLogger(__name__)


def ranking_table(ranked: np.ndarray, targets: np.ndarray, k: int = 20) -> dict[str, float]:
    """ndcg/mrr/recall/precision@k of rankings [N, >= k] (k capped at the catalog size), and
    the standard error of the mean NDCG over the sessions (sample std / sqrt N; 0 below 2).

    By hand: ranked [[3, 1], [2, 0]], targets [1, 5], k 2 -> ndcg (1/log2 3)/2, mrr 1/4,
    recall 1/2, precision 1/4; per-session ndcg [1/log2 3, 0] -> se (1/log2 3)/2.
    """
    width = min(k, ranked.shape[1])
    recall = recall_at_k(ranked, targets, width)
    rows = ndcg_rows(ranked, targets, width)
    return {
        f"ndcg@{k}": float(rows.mean()),
        f"ndcg@{k}_se": standard_error(rows),
        f"mrr@{k}": mrr_at_k(ranked, targets, width),
        f"recall@{k}": recall,
        f"precision@{k}": recall / k,
        "sessions": float(len(targets)),
    }


def hit_ranks(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each row's target in `ranked` [N, k], 0 where it is not there.

    By hand: ranked [[3, 1], [2, 0]], targets [1, 5] -> [2, 0].
    """
    hits = np.asarray(ranked) == np.asarray(targets)[:, None]
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """b - a over the same sessions: the mean difference, its standard error (sample std of
    the per-session differences / sqrt N; 0 below 2 sessions) and the sessions where b is
    above / below / level with a. Pairing removes the sessions' own spread, so the error is
    smaller than the two rows' errors combined.

    By hand: a [0, 1, 0.5], b [1, 1, 0] -> differences [1, 0, -0.5]: mean 1/6, sample std
    sqrt(7/12), se sqrt(7/36) = 0.441; better 1, worse 1, level 1.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"paired_difference takes two non-empty rows of one length, got {x.shape} and {y.shape}")
    d = y - x
    return {
        "mean": float(d.mean()),
        "se": standard_error(d),
        "better": int((d > 0).sum()),
        "worse": int((d < 0).sum()),
        "level": int((d == 0).sum()),
        "sessions": int(d.size),
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


PROFILE_CHUNK = 8  # sessions profiled per cache write: a killed evaluation keeps what it wrote


def cached_greedy_profiles(run: LangPTune, sessions: Sequence[Session]) -> list[str]:
    """The policy's greedy profiles of `sessions`, read from / written to
    <cfg.profile_cache>/<key>.json when that folder is set. Greedy decoding is a function
    of the weights and the prompt, so runs whose policies are equal (LangPTune-0 and -CL
    both profile with the untrained policy) share one file: `profiles_key` hashes the
    model config, the profile length and the LoRA weights, and the file maps each prompt's
    hash to its profile. Missing profiles are generated PROFILE_CHUNK sessions at a time
    and the file rewritten (atomically) after each chunk, so a longer or interrupted
    evaluation reuses every profile already written."""
    from steerrec.langptune.policy_task import greedy_profiles

    length, folder = run.cfg.policy.rollout.profile_length, run.cfg.profile_cache
    if not folder:
        return greedy_profiles(run.policy, run.tokenizer, sessions, run.messages, length)
    path = Path(folder) / f"{profiles_key(run.policy, [], length, asdict(run.cfg.policy.model))}.json"
    store: dict[str, str] = json.loads(path.read_text())["profiles"] if path.is_file() else {}
    keys = [prompt_key(run.messages(s)) for s in sessions]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}  # each distinct prompt once
    missing = sorted(i for key, i in first.items() if key not in store)
    logger.info("greedy profiles of %d sessions: %d from %s", len(sessions), len(sessions) - len(missing), path)
    for start in range(0, len(missing), PROFILE_CHUNK):
        chunk = missing[start : start + PROFILE_CHUNK]
        texts = greedy_profiles(run.policy, run.tokenizer, [sessions[i] for i in chunk], run.messages, length)
        store |= {keys[i]: text for i, text in zip(chunk, texts)}
        write_json(path, {"profile_length": length, "profiles": store})
        logger.info("greedy profiles: %d of %d written", start + len(chunk), len(missing))
    return [store[key] for key in keys]


def prompt_key(messages: Any) -> str:
    """A 16-hex-digit SHA-256 of one profile prompt (its chat messages)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def profiles_key(policy: Any, messages: Sequence[Any], length: int, model: dict[str, Any]) -> str:
    """A 16-hex-digit SHA-256 of (model config, length, prompts) and the trainable weights."""
    digest = hashlib.sha256(json.dumps([model, length, list(messages)], sort_keys=True).encode())
    for name, param in sorted(policy.named_parameters()):
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def evaluate_run(run: LangPTune, split: str = "test", max_sessions: int = 0, k: int = 20) -> dict[str, Any]:
    """The variant's table row and Random / MostPop on the same sessions, plus the queries
    (greedy profiles or history texts) that were ranked, each with its session's NDCG@k and
    the target's rank (0: outside the top k): {"metrics", "baselines", "queries"},
    and "truth" (truth_hits of the profiles) for a profile variant on a dataset with truth."""
    sessions = run.splits.get(split, [])[: max_sessions or None]
    if not sessions:
        raise ValueError(f"no {split} sessions to evaluate (sessions.splits must include {split!r})")
    if run.cfg.query == "profile":
        queries = cached_greedy_profiles(run, sessions)
    else:
        queries = [history_text(s, run.catalog.text_of) for s in sessions]
    batch = run.cfg.embedder_phase.embedder.batch_size
    items = embed_frozen(run.embedder, run.catalog.texts, batch)
    targets = run.catalog.rows([s.target for s in sessions])
    ranked = top_k_by_cosine(embed_frozen(run.embedder, queries, batch), items, k)
    n, n_items = len(sessions), len(run.catalog.item_ids)
    truth = load_truth(run.cfg.data) if run.cfg.query == "profile" else None
    return {
        "metrics": ranking_table(ranked, targets, k),
        "baselines": {
            "random": ranking_table(random_ranking(n, n_items, k, run.cfg.seed), targets, k),
            "most_pop": ranking_table(most_popular_ranking(run.splits.get("train", []), run.catalog, n, k), targets, k),
        },
        "queries": [
            {"user_id": s.user_id, "t": s.t, "query": q, f"ndcg@{k}": float(g), "rank": int(r)}
            for s, q, g, r in zip(
                sessions, queries, ndcg_rows(ranked, targets, min(k, ranked.shape[1])), hit_ranks(ranked, targets)
            )
        ],
        **({"truth": truth_hits(queries, sessions, truth)} if truth is not None else {}),
    }
