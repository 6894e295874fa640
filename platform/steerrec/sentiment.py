"""Which reviews are negative: `vader`, `rating` or `hf:NAME` (Mender App. D.1).

    negative = negative_reviews(texts, ratings, ClassifierConfig(name="vader"))  # bool [n]

- ``rating``: negative when rating <= `rating_threshold` (2); a missing rating is not.
- ``vader``: the vaderSentiment package; negative when the compound score is <=
  `vader_threshold` (-0.05, VADER's own cut-off).
- ``hf:NAME``: a transformers text-classification pipeline with model NAME (the paper
  uses siebert/sentiment-roberta-large-english, Hartmann et al. 2023); a review is
  negative when the top label starts with "neg" (NEGATIVE, negative) or is "1 star" /
  "2 stars". With Ray initialised it runs on Ray Data (an actor pool, `num_gpus` each),
  otherwise in this process. Needs the model weights; not tested here (none offline).

Text classifiers fall back to the rating for an empty review text.

A top-level module because benchmark/ (negative reviews) and preferences/ (statement
polarity in `recovery`) both classify sentiment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

CLASSIFIERS = ("vader", "rating", "hf:NAME")


@dataclass
class ClassifierConfig:
    name: str = "vader"  # vader | rating | hf:<model name or path>
    rating_threshold: float = 2.0  # rating <= this is negative
    vader_threshold: float = -0.05  # VADER compound <= this is negative
    batch_size: int = 64  # hf: texts per pipeline call
    num_gpus: float = 0.0  # hf on Ray: GPUs per actor
    concurrency: int = 1  # hf on Ray: actors

    def __post_init__(self) -> None:
        if self.name not in ("vader", "rating") and not (self.name.startswith("hf:") and len(self.name) > 3):
            raise ValueError(f"sentiment classifier must be one of {list(CLASSIFIERS)}, got {self.name!r}")
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError(f"batch_size and concurrency must be >= 1, got {self.batch_size}, {self.concurrency}")


def negative_reviews(texts: Sequence[str | None], ratings: np.ndarray, cfg: ClassifierConfig) -> np.ndarray:
    """bool [n]: whether each review (text, rating) is negative."""
    ratings = np.asarray(ratings, dtype=np.float64)
    by_rating = rating_negative(ratings, cfg.rating_threshold)
    if cfg.name == "rating":
        return by_rating
    has_text = np.array([bool(t and t.strip()) for t in texts], dtype=bool)
    out = by_rating.copy()
    rows = np.flatnonzero(has_text)
    written = [texts[i] for i in rows]
    if cfg.name == "vader":
        out[rows] = vader_negative(written, cfg.vader_threshold)
    else:
        out[rows] = hf_negative(written, cfg.name[3:], cfg)
    logger.info(
        "%s: %d of %d reviews negative (%d by rating, no text)",
        cfg.name,
        int(out.sum()),
        len(out),
        int((~has_text).sum()),
    )
    return out


def rating_negative(ratings: np.ndarray, threshold: float = 2.0) -> np.ndarray:
    """bool [n]: rating <= threshold (NaN, a missing rating, is not negative)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    return np.nan_to_num(ratings, nan=np.inf) <= threshold


def vader_negative(texts: Sequence[str], threshold: float = -0.05) -> np.ndarray:
    """bool [n]: VADER compound score <= threshold."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    scores = np.array([analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)
    return scores <= threshold


def is_negative_label(label: str) -> bool:
    """Whether a sentiment model's label means negative (NEGATIVE, negative, 1 star, 2 stars)."""
    text = label.strip().lower()
    return text.startswith("neg") or text in ("1 star", "2 stars")


class _HFClassifier:
    """A transformers pipeline as a Ray Data callable (or called directly)."""

    def __init__(self, model: str, batch_size: int, device: int | str | None = None) -> None:
        from transformers import pipeline

        self.batch_size = batch_size
        self.pipe = pipeline("text-classification", model=model, device=device, truncation=True)

    def labels(self, texts: list[str]) -> list[bool]:
        results = self.pipe(texts, batch_size=self.batch_size)
        return [is_negative_label(r["label"]) for r in results]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"row": batch["row"], "negative": np.array(self.labels([str(t) for t in batch["text"]]))}


def hf_negative(texts: Sequence[str], model: str, cfg: ClassifierConfig) -> np.ndarray:
    """bool [n] from a transformers sentiment model: on Ray Data when Ray is initialised."""
    import ray

    if not ray.is_initialized():
        return np.array(_HFClassifier(model, cfg.batch_size).labels(list(texts)), dtype=bool)
    import ray.data

    ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
    out = ds.map_batches(
        _HFClassifier,
        fn_constructor_kwargs={"model": model, "batch_size": cfg.batch_size, "device": 0 if cfg.num_gpus > 0 else None},
        batch_size=cfg.batch_size * 8,
        num_gpus=cfg.num_gpus,
        concurrency=cfg.concurrency,
    ).to_pandas()
    negative = np.zeros(len(texts), dtype=bool)
    negative[out["row"].to_numpy()] = out["negative"].to_numpy(dtype=bool)
    return negative
