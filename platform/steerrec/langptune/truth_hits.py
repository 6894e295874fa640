"""How often a profile names the user's true likes and dislikes (the world's truth.parquet).

Definition, per session (user u, target at 1-based position t, history t-4..t-1):
- The session's true preferences are the truth row of (u, t-1): the (attribute key,
  sentiment) pairs a reader of u's reviews up to the last history item can infer
  (steerrec.data.world.truth). A key "category.attribute=value" is named by its value
  phrase ("fragrance-free", "regular").
- Only preferences the policy could see count: those whose value phrase occurs in one of
  the session's history reviews (the truth window reaches one review further back than
  the 4 the prompt shows, and further when those mention nothing).
- A phrase occurs in a text when, after lower-casing and turning hyphens and runs of
  whitespace into single spaces, it appears between word boundaries ("sci-fi" matches
  "Sci fi", "gel" does not match "angel").
- `like_share` is the share of sessions with at least one visible true like whose profile
  names at least one of them; `dislike_share` the same for dislikes. Naming a phrase is
  counted whatever the profile says about it (a dislike named as a like still counts):
  this measures what the profile mentions, not its polarity. Sessions with no visible
  like (dislike) are left out of that share's denominator (`like_sessions`, `dislike_sessions`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from steerrec.langptune.sessions import Session

LIKE, DISLIKE = "like", "dislike"
Truth = Mapping[tuple[str, int], Sequence[tuple[str, str]]]  # (user_id, t) -> [(key, sentiment)]


def load_truth(data: str) -> dict[tuple[str, int], list[tuple[str, str]]] | None:
    """(user_id, t) -> [(attribute key, sentiment)] from <data>/truth.parquet; None when the
    dataset has no truth (every format but the world)."""
    from steerrec.data import schema
    from steerrec.data.io import read_table

    path = f"{data}/{schema.TRUTH_FILE}"
    if "://" not in data and not Path(path).is_file():
        return None
    rows = schema.validate(read_table(path), schema.TRUTH, path).to_pylist()
    return {(r["user_id"], int(r["t"])): list(zip(r["attributes"] or [], r["sentiments"] or [])) for r in rows}


def normalize(text: str) -> str:
    """Lower case, hyphens as spaces, single spaces: 'Sci-Fi  themes' -> 'sci fi themes'."""
    return " ".join(text.lower().replace("-", " ").split())


def names(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` between word boundaries, both normalized."""
    return re.search(rf"\b{re.escape(normalize(phrase))}\b", normalize(text)) is not None


def value_of(key: str) -> str:
    """The value phrase of a key: 'skincare.scent=fragrance-free' -> 'fragrance-free'."""
    if "=" not in key:
        raise ValueError(f"truth attribute key must read 'category.attribute=value', got {key!r}")
    return key.split("=", 1)[1]


def visible_truth(session: Session, truth: Truth) -> dict[str, list[str]]:
    """{'like': [value phrases], 'dislike': [...]}: the session's true preferences that its
    history reviews mention (see the module's definition)."""
    reviews = " \n ".join(session.reviews)
    out: dict[str, list[str]] = {LIKE: [], DISLIKE: []}
    for key, sentiment in truth.get((session.user_id, session.t - 1), ()):
        value = value_of(key)
        if sentiment in out and names(reviews, value):
            out[sentiment].append(value)
    return out


def truth_hits(profiles: Sequence[str], sessions: Sequence[Session], truth: Truth) -> dict[str, float]:
    """like_share / dislike_share of profiles naming a visible true like / dislike, with
    their denominators (module docstring). profiles[i] is the profile of sessions[i].

    By hand: session A's reviews like 'matte' and dislike 'gel', B's like 'wired' only;
    profiles 'Loves matte finishes' and 'Prefers wireless' -> like 1/2 (A names matte, B's
    'wireless' is not 'wired'), dislike 0/1 (A never says gel).
    """
    if len(profiles) != len(sessions):
        raise ValueError(f"truth_hits: {len(profiles)} profiles for {len(sessions)} sessions")
    counts = {LIKE: [0, 0], DISLIKE: [0, 0]}  # sentiment -> [sessions with one visible, named]
    for text, session in zip(profiles, sessions):
        for sentiment, values in visible_truth(session, truth).items():
            if values:
                counts[sentiment][0] += 1
                counts[sentiment][1] += any(names(text, v) for v in values)
    return {
        "like_share": counts[LIKE][1] / counts[LIKE][0] if counts[LIKE][0] else float("nan"),
        "dislike_share": counts[DISLIKE][1] / counts[DISLIKE][0] if counts[DISLIKE][0] else float("nan"),
        "like_sessions": float(counts[LIKE][0]),
        "dislike_sessions": float(counts[DISLIKE][0]),
    }
