"""The world's ground truth: preference statements per (user, t), in the papers' style.

Definition. The truth at position t is what a reader of the user's most recent five
reviews (positions t-4..t) can infer: every preference those reviews mention, where a
like or dislike of one attribute ("skincare.scent") counts once, from its most recent
mention (so after a drift the newly revealed like replaces the old one). Statements are
ordered most recent first and cut to five. When those five reviews mention nothing, the
window reaches back to the most recent review that does (position 1 always does, see
steerrec.data.world.users), so every (user, t) has one to five statements.

Statements: a like reads "Look for fragrance-free skincare" (or "Prefer", "Find",
"Search for"); a dislike reads "Avoid over-ear headphones" (or "Exclude", "No"), the
words the benchmark detects negatives by. The verb is fixed per user and attribute value
(a CRC32 of both), so a statement reads the same at every t.
"""

from __future__ import annotations

import zlib

import pyarrow as pa

from steerrec.data.schema import TRUTH
from steerrec.data.world.users import LIKE
from steerrec.data.world.vocab import lookup

WINDOW = 5  # reviews an LLM sees (CONTRACTS.md: the most recent five)
MAX_STATEMENTS = 5
POSITIVE_VERBS = ("Look for", "Prefer", "Find", "Search for")
NEGATIVE_VERBS = ("Avoid", "Exclude", "No")


def statement(user_id: str, key: str, sentiment: str) -> str:
    """The preference statement for a like or dislike of the value `key`."""
    _, attr, value = lookup(key)
    verbs = POSITIVE_VERBS if sentiment == LIKE else NEGATIVE_VERBS
    verb = verbs[zlib.crc32(f"{user_id}|{key}".encode()) % len(verbs)]
    return f"{verb} {attr.statement_of(value)}"


def revealed(mentions: list[list[tuple[str, str]]], t: int) -> list[tuple[str, str]]:
    """(key, sentiment) pairs the truth holds at 1-based position t, most recent first."""
    start = max(0, t - WINDOW)
    while start > 0 and not any(mentions[p] for p in range(start, t)):
        start -= 1
    out: list[tuple[str, str]] = []
    slots: set[tuple[str, str]] = set()
    keys: set[str] = set()
    for p in range(t - 1, start - 1, -1):
        for key, sentiment in mentions[p]:
            slot = (key.split("=", 1)[0], sentiment)
            if slot in slots or key in keys:
                continue
            slots.add(slot)
            keys.add(key)
            out.append((key, sentiment))
            if len(out) == MAX_STATEMENTS:
                return out
    return out


def truth_table(user_ids: list[str], mentions: list[list[list[tuple[str, str]]]]) -> pa.Table:
    """schema.TRUTH rows for every (user, t); `mentions[u][p]` is what the review at
    0-based position p of user u reveals."""
    columns: dict[str, list] = {name: [] for name in TRUTH.names}
    for user_id, user_mentions in zip(user_ids, mentions):
        for t in range(1, len(user_mentions) + 1):
            pairs = revealed(user_mentions, t)
            if not pairs:
                raise RuntimeError(f"world truth: user {user_id} reveals nothing up to t={t}")
            columns["user_id"].append(user_id)
            columns["t"].append(t)
            columns["preferences"].append([statement(user_id, k, s) for k, s in pairs])
            columns["attributes"].append([k for k, _ in pairs])
            columns["sentiments"].append([s for _, s in pairs])
    return pa.table(columns, schema=TRUTH)
