"""Axis 4, sentiment following (Mender Sec. 3.5; App. D.1).

A statement is negative when its first word (case-insensitive, whole word, trailing
punctuation ignored) is one of `negation_words` (Avoid, Exclude, No). Each negative
statement p- of P_u^(t) is matched to a negatively reviewed item among the user's
positions 1..t (P_u^(t) was written from those): the only one, else the one whose review
embedding is closest to p- (the first on ties); with none, p- stays unmatched. Its
positive twin p+ replaces the negation word with `positive_verb` ("Find"): "Avoid strong
scents" -> "Find strong scents", "No added sugar" -> "Find added sugar".

A (p-, item) pair is kept once, at its first (user_id, t) in key order. The paper's pairs
carry no history, so `history` is an empty list; `t` is the key the statement came from.
Each pair gives a "neg" row and a "pos" row sharing `pair_id`; pairs go to train/valid/
test by a seeded hash of the user id (both twins, and all of a user's pairs, together).
"""

from __future__ import annotations

import hashlib
import logging
import string
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from steerrec.benchmark.axes import NEGATIVE, POSITIVE, SENTIMENT_EXAMPLES
from steerrec.benchmark.pool import PreferencePool
from steerrec.benchmark.recommendation import split_tables

logger = logging.getLogger(__name__)

NEGATION_WORDS = ("Avoid", "Exclude", "No")
_PUNCTUATION = string.punctuation + "\u2019\u201c\u201d"


@dataclass
class SentimentConfig:
    negation_words: tuple[str, ...] = NEGATION_WORDS  # a statement starting with one is negative
    positive_verb: str = "Find"  # replaces the negation word in the positive twin
    valid_fraction: float = 0.15  # of users (paper Table 4: about 70/15/15)
    test_fraction: float = 0.15

    def __post_init__(self) -> None:
        self.negation_words = tuple(self.negation_words)
        if not self.negation_words or any(len(w.split()) != 1 for w in self.negation_words):
            raise ValueError(f"sentiment.negation_words must be single words, got {self.negation_words}")
        if not self.positive_verb.strip():
            raise ValueError("sentiment.positive_verb must not be empty")
        if self.valid_fraction < 0 or self.test_fraction < 0 or self.valid_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"sentiment fractions must be >= 0 and sum to < 1, got valid={self.valid_fraction} "
                f"test={self.test_fraction}"
            )


def first_word(text: str) -> str:
    """The first whitespace-separated word, without surrounding punctuation ("" if none)."""
    words = text.split(maxsplit=1)
    return words[0].strip(_PUNCTUATION) if words else ""


def is_negative(text: str, words: Sequence[str] = NEGATION_WORDS) -> bool:
    """Whether `text` begins with one of the negation `words` (case-insensitive, whole word)."""
    return first_word(text).lower() in {w.lower() for w in words}


def invert(text: str, words: Sequence[str] = NEGATION_WORDS, verb: str = "Find") -> str:
    """The positive twin of a negative statement: its negation word replaced by `verb`."""
    if not is_negative(text, words):
        raise ValueError(f"not a negative statement (first word not in {list(words)}): {text!r}")
    rest = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) == 2 else ""
    rest = rest.lstrip(":;,- ")
    return f"{verb} {rest}".strip()


def split_of(user_id: str, seed: int, valid_fraction: float, test_fraction: float) -> str:
    """train/valid/test for a user by a seeded hash (the same in every process)."""
    digest = hashlib.blake2b(f"{seed}|{user_id}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    if u < test_fraction:
        return "test"
    return "valid" if u < test_fraction + valid_fraction else "train"


def positions(users: Sequence[str]) -> np.ndarray:
    """1-based position of each row within its user (rows grouped by user, time-ordered)."""
    out = np.empty(len(users), dtype=np.int64)
    previous, count = None, 0
    for i, user in enumerate(users):
        count = count + 1 if user == previous else 1
        previous = user
        out[i] = count
    return out


def match_pairs(
    pool: PreferencePool,
    review_users: Sequence[str],
    review_positions: np.ndarray,
    review_items: Sequence[str],
    review_emb: np.ndarray,
    pref_emb: np.ndarray,
    words: Sequence[str] = NEGATION_WORDS,
) -> tuple[list[tuple[str, int, int, str]], dict[str, int]]:
    """(user_id, t, statement index, item_id) per distinct (negative statement, item), in key
    order, from the negatively reviewed interactions given (one row each), and counts."""
    negative = np.array([is_negative(p, words) for p in pool.texts], dtype=bool)
    by_user: dict[str, list[int]] = defaultdict(list)
    for j, user in enumerate(review_users):
        by_user[user].append(j)
    seen: set[tuple[int, str]] = set()
    pairs: list[tuple[str, int, int, str]] = []
    counts = {"preferences": len(pool.flat), "negative": int(negative[pool.flat].sum()), "unmatched": 0}
    for r, (user, t) in enumerate(zip(pool.users, pool.ts.tolist())):
        ids = pool.flat[pool.offsets[r] : pool.offsets[r + 1]]
        ids = ids[negative[ids]]
        if len(ids) == 0:
            continue
        window = [j for j in by_user.get(user, ()) if review_positions[j] <= t]
        if not window:
            counts["unmatched"] += len(ids)
            continue
        for p in ids.tolist():
            j = window[0] if len(window) == 1 else window[int(np.argmax(review_emb[window] @ pref_emb[p]))]
            if (p, review_items[j]) not in seen:
                seen.add((p, review_items[j]))
                pairs.append((user, t, p, review_items[j]))
    counts["positive"] = counts["preferences"] - counts["negative"]
    return pairs, counts


def sentiment_examples(
    pairs: list[tuple[str, int, int, str]], pool: PreferencePool, cfg: SentimentConfig, seed: int = 0
) -> dict[str, pa.Table]:
    """Axis 4 rows (axes.SENTIMENT_EXAMPLES) per split: a neg and a pos row per pair."""
    columns: dict[str, list[Any]] = {name: [] for name in SENTIMENT_EXAMPLES.names}
    splits = []
    for pair_id, (user, t, p, item) in enumerate(pairs):
        split = split_of(user, seed, cfg.valid_fraction, cfg.test_fraction)
        negative = pool.texts[p]
        twins = ((negative, NEGATIVE), (invert(negative, cfg.negation_words, cfg.positive_verb), POSITIVE))
        for statement, polarity in twins:
            for name, value in zip(SENTIMENT_EXAMPLES.names, (user, t, [], statement, item, polarity, pair_id)):
                columns[name].append(value)
            splits.append(split)
    return split_tables(pa.table(columns, schema=SENTIMENT_EXAMPLES), splits)
