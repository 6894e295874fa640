"""Candidate-selection examples for aligning LLM recommenders (recpo-adaptive-margins Sec. 3-4).

From the data model (rated interactions with timestamps; implicit counts already turned
into 1..5 ratings by the ingest): each example is a prompt with the user's history as
"Title | Rating: r" lines (all items kept, low-rated ones too) and 20 candidate titles;
the model answers with one title.

- train: 10 of the user's future items (the target first, at most up to the position
  before the valid target, so nothing leaks) + random unseen items up to 20;
- valid/test: the target + 19 random unseen items.
- RecPO: each candidate gets s = rating / (1 + steps_ahead) ** decay (NOTES.md); unrated
  sampled negatives get rating 3 and steps_ahead 10; the preferred item is the highest
  score. A sequence is kept when the next item and the top future item are rated >= 4.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from steerrec.alignment.losses import UNRATED_RATING, UNRATED_STEPS_AHEAD, preference_score

# History / candidate prefixes; one template is sampled per example (paper Sec. 4.1).
TEMPLATES = (
    (
        "Given the user's recent history with ratings:",
        "recommend the item they will most likely enjoy next from the following candidates:",
    ),
    (
        "The user interacted with these items, in order, and rated them:",
        "choose the one candidate the user will pick next and rate highly:",
    ),
    (
        "Here is what the user consumed recently and how they rated it:",
        "which of these candidates should we recommend next? Candidates:",
    ),
    (
        "A user's viewing and rating history:",
        "recommend the next item they'll likely enjoy and rate generously from the candidates below:",
    ),
)
ANSWER_PREFIX = "Answer:"
UNSEEN_RATING = float(UNRATED_RATING)  # sampled negatives (NOTES.md)
UNSEEN_STEPS = UNRATED_STEPS_AHEAD


@dataclass
class AlignmentDataConfig:
    n_candidates: int = 20
    n_future: int = 10  # future items in a training candidate set (the target included)
    max_history: int = 10
    min_rating: float = 4.0  # next item and top future item must be rated at least this
    decay: float = 0.5
    n_negatives: int = 3  # dispreferred items per example for S-DPO / RecPO
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.n_future <= self.n_candidates:
            raise ValueError(f"alignment_data.n_future must be in 1..n_candidates, got {self.n_future}")
        if not 1 <= self.n_negatives < self.n_candidates:
            raise ValueError(f"alignment_data.n_negatives must be in 1..n_candidates-1, got {self.n_negatives}")
        if self.decay < 0:
            raise ValueError(f"alignment_data.decay must be >= 0, got {self.decay}")


@dataclass
class Example:
    user_id: str
    t: int  # the target's 1-based position
    split: str
    history: list[tuple[str, float | None]]  # (title, rating), oldest first
    candidates: list[str]  # titles, shuffled
    candidate_ids: list[str]
    ratings: list[float]  # per candidate (UNSEEN_RATING for sampled negatives)
    steps_ahead: list[int]  # per candidate (0 = the very next item)
    target: int  # index of the next item in `candidates`
    template: int = 0
    scores: list[float] = field(default_factory=list)

    @property
    def preferred(self) -> int:
        """RecPO's preferred candidate: the highest score (ties: the earliest step)."""
        return int(max(range(len(self.scores)), key=lambda i: (self.scores[i], -self.steps_ahead[i])))

    def prompt(self) -> str:
        head, tail = TEMPLATES[self.template % len(TEMPLATES)]
        lines = [f"{title} | Rating: {_fmt(r)}" if r is not None else title for title, r in self.history]
        return f"{head}\n" + "\n".join(lines) + f"\n{tail}\n" + "\n".join(self.candidates) + f"\n{ANSWER_PREFIX}"


def _fmt(rating: float) -> str:
    return str(int(rating)) if float(rating).is_integer() else f"{rating:g}"


def build_examples(interactions, items, cfg: AlignmentDataConfig) -> list[Example]:
    """Examples for every user in `interactions` (a DataFrame sorted by user, time)."""
    rng = np.random.default_rng(cfg.seed)
    titles = {row.item_id: (row.title or row.item_id) for row in items.itertuples()}
    catalog = np.array(sorted(titles))
    examples: list[Example] = []
    for user_id, group in interactions.groupby("user_id", sort=True):
        ids = group["item_id"].tolist()
        ratings = [None if np.isnan(r) else float(r) for r in group["rating"].astype(float)]
        n = len(ids)
        seen = set(ids)
        for t in range(2, n + 1):  # t is 1-based; position 1 has no history
            split = "test" if t == n else "valid" if t == n - 1 else "train"
            example = _one(user_id, t, split, ids, ratings, seen, catalog, titles, cfg, rng)
            if example is not None:
                examples.append(example)
    return examples


def _one(user_id, t, split, ids, ratings, seen, catalog, titles, cfg, rng) -> Example | None:
    i = t - 1  # 0-based index of the target
    last_future = len(ids) - 3 if split == "train" else i  # train never sees valid/test
    future = list(range(i, min(i + cfg.n_future, last_future + 1))) if split == "train" else [i]
    rated = [ratings[j] if ratings[j] is not None else UNSEEN_RATING for j in future]
    if rated[0] < cfg.min_rating or max(rated) < cfg.min_rating:
        return None
    n_random = cfg.n_candidates - len(future)
    negatives = _sample_unseen(catalog, seen, n_random, rng)
    if len(negatives) < n_random:
        return None  # the catalog is too small for a full candidate set
    cand_ids = [ids[j] for j in future] + list(negatives)
    cand_ratings = rated + [UNSEEN_RATING] * n_random
    steps = [j - i for j in future] + [UNSEEN_STEPS] * n_random
    order = rng.permutation(len(cand_ids))
    history = [(titles.get(ids[j], ids[j]), ratings[j]) for j in range(max(0, i - cfg.max_history), i)]
    ex = Example(
        user_id=str(user_id),
        t=t,
        split=split,
        history=history,
        candidates=[titles.get(cand_ids[k], cand_ids[k]) for k in order],
        candidate_ids=[cand_ids[k] for k in order],
        ratings=[cand_ratings[k] for k in order],
        steps_ahead=[steps[k] for k in order],
        target=int(np.where(order == 0)[0][0]),
        template=int(rng.integers(len(TEMPLATES))),
    )
    ex.scores = [float(preference_score(r, s, cfg.decay)) for r, s in zip(ex.ratings, ex.steps_ahead)]
    return ex


def _sample_unseen(catalog: np.ndarray, seen: set, n: int, rng: np.random.Generator) -> list[str]:
    if n <= 0:
        return []
    out: list[str] = []
    tries = 0
    while len(out) < n and tries < 20:
        draw = rng.choice(len(catalog), size=min(len(catalog), 2 * n), replace=False)
        out += [catalog[k] for k in draw if catalog[k] not in seen and catalog[k] not in out]
        tries += 1
    return out[:n]


def read_sdpo_json(path: str | Path, split: str = "test") -> list[Example]:
    """The S-DPO / LLaRA candidate format (`historyList` '::'-joined, `itemList`,
    `trueSelection`), e.g. ../shared/datasets/lastfm_sdpo_sample. No ratings: history
    lines carry titles only, every candidate gets rating 3 except the target (5)."""
    path = Path(path)
    rows = json.loads(path.read_text())
    examples = []
    for n, row in enumerate(rows):
        for key in ("historyList", "itemList", "trueSelection"):
            if key not in row:
                raise ValueError(f"{path}: row {n}: missing field {key!r}")
        cands = list(row["itemList"])
        if row["trueSelection"] not in cands:
            raise ValueError(f"{path}: row {n}: field 'trueSelection' is not among 'itemList'")
        target = cands.index(row["trueSelection"])
        history = [(h, None) for h in row["historyList"].split("::") if h]
        ratings = [5.0 if k == target else UNSEEN_RATING for k in range(len(cands))]
        steps = [0 if k == target else UNSEEN_STEPS for k in range(len(cands))]
        ex = Example(
            f"row{n}", len(history) + 1, split, history, cands, cands, ratings, steps, target, n % len(TEMPLATES)
        )
        ex.scores = [float(preference_score(r, s)) for r, s in zip(ratings, steps)]
        examples.append(ex)
    return examples
