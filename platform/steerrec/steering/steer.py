"""Steering: preferences read as avoid or like, turned into per-item score biases.

    steerer = Steerer(item_texts, SteeringConfig())
    readings = steerer.read(["Avoid running shoes", "I love board games"])
    bias = steerer.item_bias([readings], exclude=[history_rows])  # [1, n_items]; -inf = leave out
    items, scores = model.recommend(batch, trie, beam, k, item_bias=torch.from_numpy(bias))

Each statement is embedded once (an LRU cache keeps recent ones). Its polarity is the
classifier's p_avoid (steerrec.steering.polarity); its topic is the embedding with the
polarity direction removed, and the items it names are those whose text has cosine >=
the threshold with the topic (`match: threshold`), or, with `match: otsu`, those above the
cut that best splits the catalog's cosines in two (Otsu's method; the threshold is then a
floor, so a vague statement such as "prefer cheap things" names nothing). An avoid
statement gives its items `-avoid_weight` (inf: they are left out); a like statement gives
its items `+like_weight`. The bias goes into
the trie-constrained beam search (steerrec.decoding), the one code path of every
generative model, with history exclusion as one more -inf.

Contradictions are defined: an item named by both a like and an avoid statement is left
out (-inf wins), and the response reports both readings.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from steerrec.embed import EmbedderConfig, embed_texts
from steerrec.steering.polarity import PolarityModel, load_or_fit

logger = logging.getLogger(__name__)

AVOID, LIKE = "avoid", "like"
MATCHES = ("threshold", "otsu")


@dataclass
class SteeringConfig:
    enabled: bool = True
    embedder: EmbedderConfig = field(default_factory=lambda: EmbedderConfig(model="minilm", max_seq_length=64))
    avoid_probability: float = 0.5  # p_avoid >= this reads a statement as avoid
    match: str = "otsu"  # threshold | otsu: how the items a statement names are found
    avoid_similarity: float = 0.15  # cosine(topic, item text) >= this: the item is what it avoids (otsu: a floor)
    like_similarity: float = 0.15  # ... and for a like statement
    # otsu: split the named items once more when their two halves stand this many standard
    # deviations apart (a distinctive attribute: "neon running shoes"); inf: never
    refine_separation: float = 2.0
    avoid_weight: float = math.inf  # subtracted from an avoided item's score; inf leaves it out
    like_weight: float = 4.0  # added to a liked item's log-prob (TIGER follows a like at ~4; Mender-Tok reads likes)
    project_polarity: bool = True  # remove the polarity direction from a statement before matching items
    cache_size: int = 4096  # statements whose readings are kept
    cache_dir: str = "~/.cache/steerrec/steering"  # the fitted polarity classifier

    def __post_init__(self) -> None:
        if isinstance(self.embedder, dict):
            self.embedder = EmbedderConfig(**self.embedder)
        if self.match not in MATCHES:
            raise ValueError(f"steering.match must be one of {MATCHES}, got {self.match!r}")
        if not 0.0 < self.avoid_probability < 1.0:
            raise ValueError(f"steering.avoid_probability must be in (0, 1), got {self.avoid_probability}")
        for name in ("avoid_similarity", "like_similarity"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"steering.{name} must be a cosine in [-1, 1], got {getattr(self, name)}")
        for name in ("avoid_weight", "like_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"steering.{name} must be >= 0 (inf allowed for avoid), got {getattr(self, name)}")
        if math.isinf(self.like_weight):
            raise ValueError("steering.like_weight must be finite")
        if self.cache_size < 0:
            raise ValueError(f"steering.cache_size must be >= 0, got {self.cache_size}")


@dataclass(frozen=True)
class Reading:
    """How one statement was read: its polarity and the catalog rows it names."""

    text: str
    polarity: str  # AVOID or LIKE
    p_avoid: float
    rows: tuple[int, ...]  # item rows whose text matches the statement's topic, best first

    @property
    def n_items(self) -> int:
        return len(self.rows)


class Steerer:
    """Reads statements against one catalog and turns readings into item biases."""

    def __init__(
        self,
        item_texts: Sequence[str],
        cfg: SteeringConfig | None = None,
        embed: Callable[[Sequence[str]], np.ndarray] | None = None,
        polarity: PolarityModel | None = None,
    ) -> None:
        self.cfg = cfg or SteeringConfig()
        self.embed = embed or (lambda texts: embed_texts(list(texts), self.cfg.embedder))
        self.items = np.asarray(self.embed(list(item_texts)), dtype=np.float32)  # [n_items, d]
        self.polarity = polarity or load_or_fit(self.embed, self.cfg.embedder.model, self.cfg.cache_dir)
        self._direction = self.polarity.direction()
        self._cache: OrderedDict[str, tuple[float, np.ndarray]] = OrderedDict()

    @property
    def n_items(self) -> int:
        return self.items.shape[0]

    def _vectors(self, texts: Sequence[str]) -> list[tuple[float, np.ndarray]]:
        """(p_avoid, item similarities [n_items]) per text, embedding only those not cached."""
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            vectors = np.asarray(self.embed(new), dtype=np.float32)
            p_avoid = self.polarity.p_avoid(vectors)
            if self.cfg.project_polarity:
                vectors = vectors - np.outer(vectors @ self._direction, self._direction)
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            sims = vectors @ self.items.T  # [len(new), n_items]
            for text, p, row in zip(new, p_avoid.tolist(), sims):
                self._cache[text] = (p, row)
        out = []
        for text in texts:
            out.append(self._cache[text])
            self._cache.move_to_end(text)
        while len(self._cache) > self.cfg.cache_size:
            self._cache.popitem(last=False)
        return out

    def read(self, statements: Sequence[str]) -> list[Reading]:
        """One Reading per statement, in order."""
        readings = []
        for text, (p, sims) in zip(statements, self._vectors(statements)):
            avoid = p >= self.cfg.avoid_probability
            threshold = self.cfg.avoid_similarity if avoid else self.cfg.like_similarity
            if self.cfg.match == "otsu":
                threshold = max(threshold, otsu_cut(sims))
            rows = np.flatnonzero(sims >= threshold)
            if self.cfg.match == "otsu" and len(rows) > 2:
                rows = _refine(rows, sims[rows], self.cfg.refine_separation)
            rows = rows[np.argsort(-sims[rows], kind="stable")]
            readings.append(Reading(text, AVOID if avoid else LIKE, float(p), tuple(rows.tolist())))
        return readings

    def item_bias(
        self, readings: Sequence[Sequence[Reading]], exclude: Sequence[Iterable[int]] | None = None
    ) -> np.ndarray | None:
        return item_bias(readings, exclude, self.n_items, self.cfg)


def _refine(rows: np.ndarray, sims: np.ndarray, separation: float) -> np.ndarray:
    """The upper part of `rows` when their cosines split in two clearly, else all of them."""
    cut = otsu_cut(sims)
    upper = sims > cut
    if upper.all() or not upper.any() or sims.std() == 0:
        return rows
    gap = (sims[upper].mean() - sims[~upper].mean()) / sims.std()
    return rows[upper] if gap >= separation else rows


def otsu_cut(values: np.ndarray) -> float:
    """The cut maximising the between-class variance of `values` split into <= cut and > cut
    (Otsu 1979, on the sorted values rather than a histogram); values above it form the upper class."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n < 2 or x[0] == x[-1]:
        return float(x[-1]) if n else 0.0
    k = np.arange(1, n)  # size of the lower class
    lower = np.cumsum(x)[:-1]
    mean_low, mean_high = lower / k, (x.sum() - lower) / (n - k)
    between = k * (n - k) * (mean_high - mean_low) ** 2
    between[x[1:] == x[:-1]] = -1.0  # cut only between distinct values
    i = int(np.argmax(between))
    return float((x[i] + x[i + 1]) / 2)


def item_bias(
    readings: Sequence[Sequence[Reading]],
    exclude: Sequence[Iterable[int]] | None,
    n_items: int,
    cfg: SteeringConfig,
) -> np.ndarray | None:
    """[B, n_items] float32 score biases, one row per example (None when all are zero):
    -avoid_weight on avoided items, +like_weight on liked ones, -inf on `exclude` rows."""
    exclude = exclude if exclude is not None else [()] * len(readings)
    if len(exclude) != len(readings):
        raise ValueError(f"{len(readings)} examples of readings but {len(exclude)} of exclusions")
    bias = np.zeros((len(readings), n_items), dtype=np.float32)
    for b, (example, banned) in enumerate(zip(readings, exclude)):
        for reading in example:
            if reading.polarity == LIKE and reading.rows and cfg.like_weight:
                rows = list(reading.rows)
                bias[b, rows] = np.maximum(bias[b, rows], cfg.like_weight)
        for reading in example:  # after the likes: an item both liked and avoided is avoided
            if reading.polarity == AVOID and reading.rows:
                bias[b, list(reading.rows)] = -cfg.avoid_weight
        banned = list(banned)
        if banned:
            bias[b, banned] = -np.inf
    return bias if bias.any() else None
