"""LangPTune sessions (langptune-profiles Sec. 4.1) from a prepared dataset folder.

A session is the 4 interactions right before a target position t plus the target (the
"upcoming" item), all five items distinct; sessions whose window repeats an item are
dropped, as the paper's are. Rows come from sequences.parquet, so the split is the data
model's leave-last-out (CONTRACTS.md), not the paper's random 84/8/8 over sessions.
Each history item carries the user's rating and review (interactions.parquet), which the
policy reads (paper Appendix B: "Review from the user: (rating: r) ...").

The policy prompt is the paper's Appendix B instruction with "movies and TV shows"
generalised to "items"; reviews are untrusted data and are cut to a word budget.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from steerrec.data import schema

logger = logging.getLogger(__name__)

INSTRUCTION = (
    "The user has rated (out of 5.0) and reviewed following items arranged chronologically "
    "from the oldest (top) to the newest (bottom). Please provide a high-level summary of the "
    "user preference in detail."
)


@dataclass
class SessionConfig:
    history_len: int = 4  # |h| in the paper; |f| = 1
    splits: tuple[str, ...] = ("train", "valid", "test")
    max_per_user: int = 0  # per split, the user's latest sessions only; 0 keeps all
    max_review_words: int = 100  # each review is cut to this many words in the prompt
    max_item_chars: int = 300  # rendered item text in the prompt (and the embedder's item text)

    def __post_init__(self) -> None:
        self.splits = tuple(self.splits)
        if self.history_len < 1:
            raise ValueError(f"sessions.history_len must be >= 1, got {self.history_len}")
        unknown = [s for s in self.splits if s not in schema.SPLITS]
        if unknown or not self.splits:
            raise ValueError(f"sessions.splits must be a non-empty subset of {schema.SPLITS}, got {self.splits}")
        for name in ("max_per_user", "max_review_words", "max_item_chars"):
            if getattr(self, name) < 0:
                raise ValueError(f"sessions.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Session:
    user_id: str
    t: int  # the target's 1-based position
    split: str
    history: tuple[str, ...]  # item ids, oldest first
    target: str
    ratings: tuple[float | None, ...] = ()  # per history item
    reviews: tuple[str, ...] = ()  # per history item ("" when none)

    @property
    def key(self) -> tuple[str, int]:
        return (self.user_id, self.t)


def sessions_from_sequences(sequences: pa.Table, cfg: SessionConfig) -> list[Session]:
    """Sessions (no reviews) from schema.SEQUENCES rows, in the table's order per split."""
    rows = schema.validate(sequences, schema.SEQUENCES, "sequences").to_pylist()
    out: list[Session] = []
    dropped = 0
    for r in rows:
        if r["split"] not in cfg.splits or len(r["history"] or []) < cfg.history_len:
            continue
        window = tuple(r["history"][-cfg.history_len :])
        if len(set(window) | {r["target"]}) != cfg.history_len + 1:
            dropped += 1
            continue
        out.append(Session(r["user_id"], int(r["t"]), r["split"], window, r["target"]))
    if dropped:
        logger.info("dropped %d sessions whose %d + 1 items are not distinct", dropped, cfg.history_len)
    return _latest_per_user(out, cfg.max_per_user)


def _latest_per_user(sessions: list[Session], limit: int) -> list[Session]:
    if not limit:
        return sessions
    by_key: dict[tuple[str, str], list[Session]] = {}
    for s in sessions:
        by_key.setdefault((s.split, s.user_id), []).append(s)
    keep = {s.key + (s.split,) for group in by_key.values() for s in sorted(group, key=lambda x: x.t)[-limit:]}
    return [s for s in sessions if s.key + (s.split,) in keep]


def attach_reviews(sessions: Sequence[Session], interactions: pa.Table) -> list[Session]:
    """Sessions with each history item's rating and review, read by position from
    interactions sorted by user then time (as interactions.parquet is)."""
    table = schema.validate(interactions, schema.INTERACTIONS, "interactions")
    users = table.column("user_id").to_pylist()
    items, ratings = table.column("item_id").to_pylist(), table.column("rating").to_pylist()
    texts = table.column("review_text").to_pylist()
    first: dict[str, int] = {}
    for row, user in enumerate(users):
        first.setdefault(user, row)
    out = []
    for s in sessions:
        if s.user_id not in first:
            raise ValueError(f"interactions: user {s.user_id!r} of a session has no interactions")
        start = first[s.user_id] + s.t - 1 - len(s.history)  # row of the oldest history item
        rows = range(start, start + len(s.history))
        found = tuple(items[i] if 0 <= i < len(items) and users[i] == s.user_id else None for i in rows)
        if found != s.history:
            raise ValueError(
                f"interactions: user {s.user_id!r} positions {s.t - len(s.history)}..{s.t - 1} hold {found}, "
                f"but sequences.parquet says {s.history} (is interactions.parquet sorted by user, then time?)"
            )
        reviews = tuple(texts[i] if isinstance(texts[i], str) else "" for i in rows)
        out.append(_with(s, tuple(_rating(ratings[i]) for i in rows), reviews))
    return out


def _with(s: Session, ratings: tuple[float | None, ...], reviews: tuple[str, ...]) -> Session:
    return Session(s.user_id, s.t, s.split, s.history, s.target, ratings, reviews)


def _rating(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def load_sessions(data: str, cfg: SessionConfig) -> tuple[list[Session], pa.Table]:
    """(sessions with reviews, items table) of a dataset folder (jobs/prepare_data.py)."""
    from steerrec.data.io import read_table

    sequences = read_table(f"{data}/{schema.SEQUENCES_FILE}")
    sessions = attach_reviews(sessions_from_sequences(sequences, cfg), read_table(f"{data}/{schema.INTERACTIONS_FILE}"))
    items = schema.validate(read_table(f"{data}/{schema.ITEMS_FILE}"), schema.ITEMS, f"{data}/{schema.ITEMS_FILE}")
    logger.info("%d sessions from %s (%s)", len(sessions), data, ", ".join(cfg.splits))
    return sessions, items


def profile_messages(session: Session, item_text: dict[str, str], cfg: SessionConfig) -> list[dict[str, str]]:
    """The policy's chat messages for one session: the instruction, then each history item
    with the user's rating and review (Appendix B's session description)."""
    blocks = []
    for k, item in enumerate(session.history):
        text = item_text.get(item, item)[: cfg.max_item_chars]
        rating = session.ratings[k] if k < len(session.ratings) else None
        review = _cut_words(session.reviews[k] if k < len(session.reviews) else "", cfg.max_review_words)
        shown = "unrated" if rating is None else f"rating: {rating:.1f}"
        blocks.append(f"{text}\nReview from the user: ({shown}) {review}".rstrip())
    return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": "\n\n".join(blocks)}]


def history_text(session: Session, item_text: dict[str, str]) -> str:
    """EMB-0/EMB-CL's query (no profile): the history items' texts, oldest first, one per line."""
    return "\n".join(item_text.get(item, item) for item in session.history)


def _cut_words(text: str, budget: int) -> str:
    words = (text or "").split()
    return " ".join(words) if len(words) <= budget else " ".join(words[:budget]) + " [...]"
