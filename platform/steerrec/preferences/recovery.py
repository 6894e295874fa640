"""Preference recovery: how many generated statements match a true like or dislike, and
how many true statements the generated ones recover.

A generated statement g and a true statement s of the same (user_id, t) *match* when
cos(g, s) >= `threshold` and they have the same polarity (like / dislike). Each statement
is compared with its best match on the other side (the highest cosine among the other
side's statements of the same key, the first on ties):

  - precision: share of generated statements whose best true statement matches;
  - recall: share of true statements whose best generated statement matches.

Both are pooled over statements (micro averages); `per_key` has the counts per key.
Embeddings and polarity come in as callables, so `preference_recovery` needs no model;
`recovery_with_models` plugs in the MiniLM embedder and `statement_negative`.

    result = recovery_with_models(generated_table, truth_table, threshold=0.7)
    result.precision, result.recall
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from steerrec.data.world.users import DISLIKE

if TYPE_CHECKING:
    import pandas as pd

Key = tuple[str, int]
Embed = Callable[[list[str]], np.ndarray]  # texts -> [n, dim] vectors
Negative = Callable[[list[str]], np.ndarray]  # texts -> bool [n], True for a dislike
POLARITIES = ("rule", "vader")
# A statement is a dislike when it starts with one of these (the world's "Avoid", "Exclude",
# "No" and common LLM phrasings) or contains one of the anywhere-words or an n't contraction.
_FIRST_WORDS = frozenset({"avoid", "exclude", "no", "never", "not", "dislike", "dislikes", "skip", "steer"})
_ANY_WORDS = frozenset(
    {
        "avoid",
        "avoids",
        "avoiding",
        "exclude",
        "excludes",
        "excluding",
        "dislike",
        "dislikes",
        "disliked",
        "hate",
        "hates",
        "not",
        "never",
    }
)


@dataclass(frozen=True)
class Recovery:
    """Pooled precision and recall at one threshold, with the statement counts behind them."""

    precision: float  # generated_matched / generated (nan when nothing was generated)
    recall: float  # true_recovered / true
    generated: int  # generated statements
    generated_matched: int
    true: int  # true statements
    true_recovered: int
    keys: int  # (user_id, t) keys evaluated
    threshold: float
    per_key: pd.DataFrame  # user_id, t, generated, generated_matched, true, true_recovered

    def summary(self) -> dict[str, Any]:
        """The figures without the per-key table (for JSON)."""
        return {
            k: getattr(self, k)
            for k in (
                "precision",
                "recall",
                "generated",
                "generated_matched",
                "true",
                "true_recovered",
                "keys",
                "threshold",
            )
        }


def statement_negative(texts: Sequence[str]) -> np.ndarray:
    """bool [n]: whether each preference statement expresses a dislike (word rule, see above)."""
    out = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        words = re.findall(r"[a-z']+", str(text).lower().replace("\u2019", "'"))
        out[i] = bool(words) and (words[0] in _FIRST_WORDS or any(w in _ANY_WORDS or w.endswith("n't") for w in words))
    return out


def preference_recovery(
    generated: Any,
    truth: Any,
    embed: Embed,
    negative: Negative,
    threshold: float = 0.7,
    keys: Sequence[Key] | None = None,
) -> Recovery:
    """Recovery of `truth` by `generated` (tables with user_id, t, preferences; a pyarrow
    Table or pandas DataFrame). A `sentiments` column in `truth` ("like"/"dislike", as in
    the world's truth.parquet) gives the true polarity; otherwise `negative` does.
    `keys` (default: every generated key) are evaluated; a key with no generated row
    counts as zero statements generated. Every evaluated key must be in `truth`."""
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a cosine in [-1, 1], got {threshold}")
    gen = _statements(generated, "generated")
    true = _statements(truth, "truth")
    true_neg = _true_polarity(truth, negative)
    keys = sorted(gen) if keys is None else [(str(u), int(t)) for u, t in keys]
    missing = [k for k in keys if k not in true]
    if missing:
        raise ValueError(f"truth: no row for {len(missing)} evaluated key(s), first (user_id, t) = {missing[0]}")
    texts = sorted({s for k in keys for s in gen.get(k, []) + true[k]})
    index = {s: i for i, s in enumerate(texts)}
    vectors = _normalized(np.asarray(embed(texts), dtype=np.float64), len(texts)) if texts else np.zeros((0, 1))
    polar = dict(zip(texts, np.asarray(negative(texts), dtype=bool))) if texts else {}
    rows = []
    for key in keys:
        g, s = gen.get(key, []), true[key]
        g_neg = np.array([polar[x] for x in g], dtype=bool)
        s_neg = true_neg.get(key, np.array([polar[x] for x in s], dtype=bool))
        sims = vectors[[index[x] for x in g]] @ vectors[[index[x] for x in s]].T  # [G, S]
        g_hit, s_hit = best_match_hits(sims, g_neg, s_neg, threshold)
        rows.append(
            {
                "user_id": key[0],
                "t": key[1],
                "generated": len(g),
                "generated_matched": int(g_hit.sum()),
                "true": len(s),
                "true_recovered": int(s_hit.sum()),
            }
        )
    return _pooled(rows, threshold)


def best_match_hits(
    sims: np.ndarray,
    g_negative: np.ndarray,
    s_negative: np.ndarray,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """bool [G], bool [S]: whether each row's (column's) best match in `sims` [G, S] reaches
    `threshold` with the same polarity."""
    n_g, n_s = sims.shape
    g_hit, s_hit = np.zeros(n_g, dtype=bool), np.zeros(n_s, dtype=bool)
    if n_g and n_s:
        best_s = sims.argmax(axis=1)  # [G]
        g_hit = (sims[np.arange(n_g), best_s] >= threshold) & (g_negative == s_negative[best_s])
        best_g = sims.argmax(axis=0)  # [S]
        s_hit = (sims[best_g, np.arange(n_s)] >= threshold) & (s_negative == g_negative[best_g])
    return g_hit, s_hit


def recovery_with_models(
    generated: Any,
    truth: Any,
    threshold: float = 0.7,
    keys: Sequence[Key] | None = None,
    embedder: str = "minilm",
    polarity: str = "rule",
) -> Recovery:
    """`preference_recovery` with sentence embeddings (`EmbedderConfig(model=embedder)`) and
    a polarity: "rule" (`statement_negative`) or "vader" (VADER compound <= -0.05)."""
    from steerrec.embed import EmbedderConfig, embed_texts

    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    cfg = EmbedderConfig(model=embedder)
    return preference_recovery(
        generated, truth, lambda texts: embed_texts(texts, cfg), _polarity(polarity), threshold, keys
    )


def _polarity(name: str) -> Negative:
    if name == "rule":
        return statement_negative
    from steerrec.sentiment import vader_negative

    return lambda texts: vader_negative(texts) if texts else np.zeros(0, dtype=bool)


def _frame(table: Any, what: str) -> pd.DataFrame:
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else table.to_pandas()
    missing = [c for c in ("user_id", "t", "preferences") if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; has {list(frame.columns)}")
    return frame


def _statements(table: Any, what: str) -> dict[Key, list[str]]:
    """(user_id, t) -> its statements; a repeated key or a non-text statement is an error."""
    out: dict[Key, list[str]] = {}
    for row, (user, t, prefs) in enumerate(zip(*(_frame(table, what)[c] for c in ("user_id", "t", "preferences")))):
        key = (str(user), int(t))
        if key in out:
            raise ValueError(f"{what}: row {row}: (user_id, t) = {key} appears twice")
        values = [] if prefs is None else list(prefs)
        bad = next((v for v in values if not isinstance(v, str)), None)
        if bad is not None:
            raise ValueError(f"{what}: row {row}: preferences holds {bad!r}, expected strings")
        out[key] = values
    return out


def _true_polarity(truth: Any, negative: Negative) -> dict[Key, np.ndarray]:
    """Polarity from the truth's own `sentiments` column, where it has one."""
    frame = _frame(truth, "truth")
    if "sentiments" not in frame.columns:
        return {}
    out = {}
    for row, (user, t, prefs, sents) in enumerate(zip(frame.user_id, frame.t, frame.preferences, frame.sentiments)):
        sents, n = [] if sents is None else list(sents), 0 if prefs is None else len(prefs)
        if len(sents) != n:
            raise ValueError(f"truth: row {row}: {len(sents)} sentiments for {n} preferences")
        out[(str(user), int(t))] = np.array([s == DISLIKE for s in sents], dtype=bool)
    return out


def _normalized(vectors: np.ndarray, n: int) -> np.ndarray:
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise ValueError(f"embed returned shape {vectors.shape} for {n} texts; expected [{n}, dim]")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _pooled(rows: list[dict], threshold: float) -> Recovery:
    import pandas as pd

    per_key = pd.DataFrame(rows, columns=["user_id", "t", "generated", "generated_matched", "true", "true_recovered"])
    sums = {c: int(per_key[c].sum()) for c in ("generated", "generated_matched", "true", "true_recovered")}
    return Recovery(
        precision=sums["generated_matched"] / sums["generated"] if sums["generated"] else float("nan"),
        recall=sums["true_recovered"] / sums["true"] if sums["true"] else float("nan"),
        keys=len(rows),
        threshold=threshold,
        per_key=per_key,
        **sums,
    )
