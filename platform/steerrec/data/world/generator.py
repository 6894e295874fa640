"""Generate the world: catalog, users' sequences with ratings and reviews, and the truth.

    world = generate(WorldConfig(n_users=1000, n_items=400, seed=0))

Deterministic by seed (one numpy Generator drawn in a fixed order). Every user gets at
least `min_interactions` (>= 5) interactions and no item twice; items left with fewer
than five interactions are topped up by users who have not seen them (interested users
with the shortest sequences first), as one more step at the end of their sequences. So
the shared 5-core filtering keeps every row, and the truth's t stays valid.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steerrec.data.schema import INTERACTIONS
from steerrec.data.world.catalog import Catalog, build_catalog
from steerrec.data.world.reviews import render_review
from steerrec.data.world.truth import NEGATIVE_VERBS, truth_table
from steerrec.data.world.users import User, make_user
from steerrec.data.world.vocab import CATEGORIES

logger = logging.getLogger(__name__)

KCORE = 5  # the shared ingest's default k-core; the world keeps every row under it

MENTIONS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("t", pa.int32(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("attributes", pa.list_(pa.string())),
        pa.field("sentiments", pa.list_(pa.string())),
    ]
)


@dataclass
class WorldConfig:
    n_users: int = 1000
    n_items: int = 400
    mean_interactions: float = 10.0  # per user, before topping up items
    min_interactions: int = 5  # per user; at least 5 so that the 5-core keeps every row
    drift: float = 0.05  # per step, the chance that one of the user's likes moves to another value
    exploration: float = 0.15  # per step, the chance of a uniform pick among unseen items of interest
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_users < KCORE:
            raise ValueError(f"world.n_users must be >= {KCORE}, got {self.n_users}")
        if self.n_items < KCORE * len(CATEGORIES):
            raise ValueError(f"world.n_items must be >= {KCORE * len(CATEGORIES)}, got {self.n_items}")
        if not KCORE <= self.min_interactions <= self.n_items:
            raise ValueError(
                f"world.min_interactions must be in [{KCORE}, n_items={self.n_items}], got {self.min_interactions}"
            )
        if not self.min_interactions <= self.mean_interactions <= self.n_items:
            raise ValueError(
                f"world.mean_interactions must be in [min_interactions={self.min_interactions}, "
                f"n_items={self.n_items}], got {self.mean_interactions}"
            )
        for name in ("drift", "exploration"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"world.{name} must be in [0, 1], got {value}")


@dataclass(frozen=True)
class World:
    items: pa.Table  # schema.ITEMS, sorted by item_id; extra holds world_category and attributes
    interactions: pa.Table  # schema.INTERACTIONS, sorted by user then time
    truth: pa.Table  # schema.TRUTH, one row per (user_id, t)
    mentions: pa.Table  # MENTIONS: what each review reveals, one row per (user_id, t)
    drifts: int  # likes that moved during the sequences


def generate(cfg: WorldConfig) -> World:
    """The world for `cfg`."""
    rng = np.random.default_rng(cfg.seed)
    catalog = build_catalog(cfg.n_items, rng)
    users = [make_user(u, cfg.n_items, rng) for u in range(cfg.n_users)]
    extra = rng.poisson(cfg.mean_interactions - cfg.min_interactions, size=cfg.n_users)
    lengths = np.minimum(cfg.min_interactions + extra, cfg.n_items)
    for user, n in zip(users, lengths):
        for _ in range(n):
            user.step(catalog, rng, cfg.drift, cfg.exploration)
    topped = _top_up_items(users, catalog, cfg, rng)
    width = max(5, len(str(cfg.n_users - 1)))
    user_ids = [f"U{u.index:0{width}d}" for u in users]
    world = World(
        items=catalog.table,
        interactions=_interactions(users, user_ids, catalog, rng),
        truth=truth_table(user_ids, [[e.mentions for e in u.events] for u in users]),
        mentions=_mentions(users, user_ids, catalog),
        drifts=sum(u.drifts for u in users),
    )
    logger.info("world seed=%d: %d interactions (%d added to top up items)", cfg.seed, len(world.interactions), topped)
    return world


def _top_up_items(users: list[User], catalog: Catalog, cfg: WorldConfig, rng: np.random.Generator) -> int:
    """Give every item at least KCORE interactions; returns how many were added."""
    counts = np.zeros(cfg.n_items, dtype=np.int64)
    for user in users:
        counts += user.seen
    added = 0
    for item in np.flatnonzero(counts < KCORE):
        c = int(catalog.category[item])
        has = np.array([u.seen[item] for u in users])
        outside = np.array([c not in u.interests for u in users])
        length = np.array([len(u.events) for u in users])
        order = np.lexsort((rng.random(len(users)), length, outside, has))
        for u in order[: KCORE - counts[item]]:
            users[u].step(catalog, rng, cfg.drift, cfg.exploration, forced=int(item))
            added += 1
    return added


def _interactions(users: list[User], user_ids: list[str], catalog: Catalog, rng: np.random.Generator) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in INTERACTIONS.names}
    for user, user_id in zip(users, user_ids):
        for event in user.events:
            text, summary = render_review(event.mentions, event.rating, rng)
            columns["user_id"].append(user_id)
            columns["item_id"].append(catalog.ids[event.item])
            columns["timestamp"].append(event.timestamp)
            columns["rating"].append(event.rating)
            columns["review_text"].append(text)
            columns["review_summary"].append(summary)
    return pa.table(columns, schema=INTERACTIONS)


def _mentions(users: list[User], user_ids: list[str], catalog: Catalog) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in MENTIONS.names}
    for user, user_id in zip(users, user_ids):
        for t, event in enumerate(user.events, start=1):
            columns["user_id"].append(user_id)
            columns["t"].append(t)
            columns["item_id"].append(catalog.ids[event.item])
            columns["attributes"].append([k for k, _ in event.mentions])
            columns["sentiments"].append([s for _, s in event.mentions])
    return pa.table(columns, schema=MENTIONS)


def summary(world: World) -> dict:
    """Counts a demo can print: users, items, interactions, per category, ratings, truth."""
    items = world.items
    extra = items.column("extra").to_pylist()
    category_of = {i: json.loads(e)["world_category"] for i, e in zip(items.column("item_id").to_pylist(), extra)}
    per_item = Counter(world.interactions.column("item_id").to_pylist())
    per_category: dict[str, dict[str, int]] = {c.name: {"items": 0, "interactions": 0} for c in CATEGORIES}
    for item_id, name in category_of.items():
        per_category[name]["items"] += 1
        per_category[name]["interactions"] += per_item.get(item_id, 0)
    statements = pc.list_flatten(world.truth.column("preferences")).to_pylist()
    negative = sum(1 for s in statements if s.startswith(NEGATIVE_VERBS))
    ratings = world.interactions.column("rating").to_numpy()
    return {
        "users": pc.count_distinct(world.interactions.column("user_id")).as_py(),
        "items": items.num_rows,
        "interactions": world.interactions.num_rows,
        "per_category": per_category,
        "mean_rating": round(float(ratings.mean()), 3),
        "rating_counts": {int(r): int((ratings == r).sum()) for r in range(1, 6)},
        "truth_rows": world.truth.num_rows,
        "statements_per_row": round(len(statements) / max(world.truth.num_rows, 1), 3),
        "negative_share": round(negative / max(len(statements), 1), 3),
        "drifts": world.drifts,
    }
