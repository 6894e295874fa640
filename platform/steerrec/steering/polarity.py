"""Whether a preference asks to avoid something: logistic regression on sentence embeddings.

    model = load_or_fit(embed, "minilm")                 # fitted once, then read from the cache
    p_avoid = model.p_avoid(embed(["Stay away from X"])) # [n] in [0, 1]

Why this classifier: the statement is embedded anyway (the same vector finds the items it
is about), an NLI model would add a second large network per request and none installs
offline from PyPI, and a keyword list misses phrasings ("Please keep X away from me",
"X? No thanks"). A linear read-out of the embedding learns the polarity direction from
labelled statements (steerrec.steering.phrases) in seconds and costs one dot product per
statement. Its accuracy on held-out phrasings is measured at fit time and stored with it.

The fit is cached as JSON (no pickle) under `cache_dir`, named by the embedder and a hash
of the training statements, so a changed phrase list refits.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from steerrec.steering import phrases

logger = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass
class PolarityModel:
    coef: list[float]  # [d] weights on the L2-normalised embedding
    intercept: float
    embedder: str  # the embedder it was fitted on; vectors from another one are meaningless here
    fingerprint: str  # phrases.fingerprint() of its training statements, and C
    train_accuracy: float
    held_out_accuracy: float  # on phrases.held_out_set(): phrasings never seen in fitting

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != len(self.coef):
            raise ValueError(f"expected [n, {len(self.coef)}] embeddings from {self.embedder}, got {vectors.shape}")
        return vectors @ np.asarray(self.coef, dtype=np.float32) + np.float32(self.intercept)

    def p_avoid(self, vectors: np.ndarray) -> np.ndarray:
        """[n] probability that each statement asks to avoid what it names."""
        return 1.0 / (1.0 + np.exp(-self.logits(vectors)))

    def direction(self) -> np.ndarray:
        """The unit vector along which polarity is read (removed from a statement to get its topic)."""
        w = np.asarray(self.coef, dtype=np.float32)
        return w / max(float(np.linalg.norm(w)), 1e-12)


C = 1.0  # inverse regularisation strength of the logistic regression


def fit(embed: Embed, embedder: str, c: float = C) -> PolarityModel:
    """Fit on phrases.training_set() and score on phrases.held_out_set(). C = 1 read both the
    held-out phrasings and the world benchmark's statements better than C = 10 (README,
    "Steering"; the world's statements chose C and nothing else)."""
    from sklearn.linear_model import LogisticRegression

    texts, labels = phrases.training_set()
    held_texts, held_labels = phrases.held_out_set()
    vectors = embed(texts + held_texts)
    x, x_held = vectors[: len(texts)], vectors[len(texts) :]
    clf = LogisticRegression(C=c, max_iter=2000).fit(x, labels)
    model = PolarityModel(
        coef=[float(v) for v in clf.coef_[0]],
        intercept=float(clf.intercept_[0]),
        embedder=embedder,
        fingerprint=f"{phrases.fingerprint()}-c{c:g}",
        train_accuracy=float(clf.score(x, labels)),
        held_out_accuracy=float(clf.score(x_held, held_labels)),
    )
    logger.info(
        "polarity classifier on %s: %d statements, accuracy %.3f (train), %.3f (held-out phrasings)",
        embedder,
        len(texts),
        model.train_accuracy,
        model.held_out_accuracy,
    )
    return model


def cache_file(cache_dir: str | Path, embedder: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in embedder)
    return Path(cache_dir).expanduser() / f"polarity-{safe}-{phrases.fingerprint()}-c{C:g}.json"


def load_or_fit(embed: Embed, embedder: str, cache_dir: str | Path = "~/.cache/steerrec/steering") -> PolarityModel:
    """The cached fit for this embedder and phrase list, else a new fit written atomically."""
    path = cache_file(cache_dir, embedder)
    if path.is_file():
        try:
            model = PolarityModel(**json.loads(path.read_text()))
            if model.embedder == embedder and model.fingerprint == f"{phrases.fingerprint()}-c{C:g}":
                return model
        except (ValueError, TypeError) as err:
            logger.warning("%s: unreadable polarity fit (%s); fitting again", path, err)
    model = fit(embed, embedder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(model), f)
    os.replace(tmp, path)
    return model
