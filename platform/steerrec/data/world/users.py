"""Users of the world: latent likes and dislikes over attribute values, and their choices.

A user is interested in one to three categories. Within each, every attribute is liked
(one value) with probability 0.5 and disliked (another value) with probability 0.35;
every interest has at least one like and every user at least one dislike. At each step

- with probability `drift` one like moves to another value (the old one turns neutral);
- the user picks a category of interest, then an unseen item in it: uniformly with
  probability `exploration`, else by softmax(2 * liked - 0.5 * disliked), so liked
  values dominate while disliked ones are found out after the purchase, as in stores;
- the rating is round(3.2 + 0.9 * liked - 1.4 * disliked + N(0, 0.7)) clipped to 1..5;
- the review will mention every liked and disliked value of the item (`mentions`).

If the first item touches no preference, the user adopts a like for one of its values,
so that every sequence reveals something from position 1 on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from steerrec.data.world.catalog import Catalog
from steerrec.data.world.vocab import CATEGORIES

LIKE, DISLIKE = "like", "dislike"
_P_LIKE, _P_DISLIKE = 0.5, 0.45
_W_LIKE, _W_DISLIKE = 2.0, 0.5
_START, _SPAN = 1_546_300_800, 2 * 365 * 86_400  # sequences start in 2019-2020
_MEAN_GAP = 9 * 86_400  # seconds between interactions, on average (plus at least 10 minutes)


@dataclass
class Event:
    """One interaction as the simulation saw it."""

    item: int
    timestamp: int
    rating: float
    mentions: list[tuple[str, str]]  # (attribute key, LIKE/DISLIKE) the review reveals


@dataclass
class User:
    index: int
    interests: np.ndarray  # category indices
    weights: np.ndarray  # how often each interest is chosen (sums to 1)
    like: np.ndarray  # [n_categories, max_attrs] liked value index, -1 for none
    dislike: np.ndarray  # same shape, disliked value index
    seen: np.ndarray  # [n_items] bool
    events: list[Event] = field(default_factory=list)
    drifts: int = 0

    def step(
        self, catalog: Catalog, rng: np.random.Generator, drift: float, exploration: float, forced: int | None = None
    ) -> Event:
        """Take the next interaction (item `forced` when given) and record it."""
        if self.events and rng.random() < drift:
            self._drift(rng)
        item = forced if forced is not None else self._choose(catalog, rng, exploration)
        mentions = self._mentions(catalog, item)
        if not self.events and not mentions:
            self._adopt(catalog, item, rng)
            mentions = self._mentions(catalog, item)
        liked = sum(1 for _, s in mentions if s == LIKE)
        disliked = len(mentions) - liked
        rating = float(np.clip(np.rint(3.2 + 0.9 * liked - 1.4 * disliked + rng.normal(0.0, 0.7)), 1, 5))
        if self.events:
            timestamp = self.events[-1].timestamp + 600 + int(rng.exponential(_MEAN_GAP))
        else:
            timestamp = _START + int(rng.integers(_SPAN))
        self.seen[item] = True
        event = Event(item=int(item), timestamp=timestamp, rating=rating, mentions=mentions)
        self.events.append(event)
        return event

    def _choose(self, catalog: Catalog, rng: np.random.Generator, exploration: float) -> int:
        c = int(rng.choice(self.interests, p=self.weights))
        pool = catalog.members[c][~self.seen[catalog.members[c]]]
        if len(pool) == 0:
            pool = np.concatenate([catalog.members[int(i)] for i in self.interests])
            pool = pool[~self.seen[pool]]
        if len(pool) == 0:
            pool = np.flatnonzero(~self.seen)
        if rng.random() < exploration:
            return int(pool[rng.integers(len(pool))])
        values = catalog.values[pool]  # [P, A]
        cats = catalog.category[pool]
        like, dislike = self.like[cats], self.dislike[cats]  # [P, A]
        liked = ((values == like) & (like >= 0)).sum(axis=1)
        disliked = ((values == dislike) & (dislike >= 0)).sum(axis=1)
        score = _W_LIKE * liked - _W_DISLIKE * disliked
        p = np.exp(score - score.max())
        return int(pool[rng.choice(len(pool), p=p / p.sum())])

    def _mentions(self, catalog: Catalog, item: int) -> list[tuple[str, str]]:
        c = int(catalog.category[item])
        keys = CATEGORIES[c].attribute_keys()
        out = []
        for a, v in enumerate(catalog.values[item, : len(keys)]):
            if self.like[c, a] == v:
                out.append((keys[a][int(v)], LIKE))
            elif self.dislike[c, a] == v:
                out.append((keys[a][int(v)], DISLIKE))
        return out

    def _adopt(self, catalog: Catalog, item: int, rng: np.random.Generator) -> None:
        c = int(catalog.category[item])
        a = int(rng.integers(len(CATEGORIES[c].attributes)))
        self.like[c, a] = catalog.values[item, a]
        if self.dislike[c, a] == self.like[c, a]:
            self.dislike[c, a] = -1

    def _drift(self, rng: np.random.Generator) -> None:
        cs, attrs = np.nonzero(self.like >= 0)
        if len(cs) == 0:
            return
        k = int(rng.integers(len(cs)))
        c, a = int(cs[k]), int(attrs[k])
        n_values = len(CATEGORIES[c].attributes[a].values)
        options = [v for v in range(n_values) if v not in (self.like[c, a], self.dislike[c, a])]
        if options:
            self.like[c, a] = options[int(rng.integers(len(options)))]
            self.drifts += 1


def make_user(index: int, n_items: int, rng: np.random.Generator) -> User:
    """A user with random interests and latent likes and dislikes."""
    n_cat = len(CATEGORIES)
    max_attrs = max(len(c.attributes) for c in CATEGORIES)
    n_interests = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
    interests = np.sort(rng.choice(n_cat, size=min(n_interests, n_cat), replace=False))
    weights = rng.dirichlet(np.full(len(interests), 2.0))
    like = np.full((n_cat, max_attrs), -1, dtype=np.int64)
    dislike = np.full((n_cat, max_attrs), -1, dtype=np.int64)
    for c in interests:
        attrs = CATEGORIES[c].attributes
        for a, attr in enumerate(attrs):
            n_values = len(attr.values)
            if rng.random() < _P_LIKE:
                like[c, a] = rng.integers(n_values)
            if rng.random() < _P_DISLIKE:
                dislike[c, a] = _other(n_values, like[c, a], rng)
        if not (like[c] >= 0).any():
            a = int(rng.integers(len(attrs)))
            like[c, a] = rng.integers(len(attrs[a].values))
            if dislike[c, a] == like[c, a]:
                dislike[c, a] = -1
    if not (dislike >= 0).any():
        c = int(rng.choice(interests))
        a = int(rng.integers(len(CATEGORIES[c].attributes)))
        dislike[c, a] = _other(len(CATEGORIES[c].attributes[a].values), like[c, a], rng)
    return User(index, interests, weights, like, dislike, np.zeros(n_items, dtype=bool))


def _other(n_values: int, avoid: int, rng: np.random.Generator) -> int:
    """A value index in 0..n_values-1 other than `avoid` (-1 avoids nothing)."""
    options = [v for v in range(n_values) if v != avoid]
    return int(options[int(rng.integers(len(options)))])
