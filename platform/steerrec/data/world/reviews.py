"""Reviews of the world: text that names what the user liked and disliked about an item.

Every liked value of the item gets a positive sentence and every disliked one a negative
sentence, each naming the value verbatim ("The fragrance-free formula is exactly what I
wanted.", "Sadly the over-ear design is something I can't stand."), between an opener
and a closer that follow the rating; an item that touches no preference gets a neutral
remark. The summary is a few words that follow the rating.
"""

from __future__ import annotations

import numpy as np

from steerrec.data.world.users import LIKE
from steerrec.data.world.vocab import lookup

_POSITIVE = (
    "The {m} is exactly what I wanted.",
    "I love the {m}.",
    "The {m} is the best part.",
    "Really glad I went for the {m}.",
    "The {m} works perfectly for me.",
    "Big plus: the {m}.",
    "I always look for the {m} and this one delivers.",
)
_NEGATIVE = (
    "Sadly the {m} is something I can't stand.",
    "I really dislike the {m}.",
    "The {m} was a dealbreaker for me.",
    "Not a fan of the {m} at all.",
    "The {m} ruined it for me.",
    "I should have noticed the {m} before ordering; never again.",
    "Big minus: the {m}, which I try to avoid.",
)
_NEUTRAL = (
    "It does what it says.",
    "Nothing special, nothing wrong.",
    "Hard to say much about it either way.",
    "Fine for the price, I suppose.",
)
_OPENERS = {
    5: ("Five stars from me.", "Couldn't be happier.", "", "Ordered this on a whim."),
    4: ("Pretty good overall.", "", "Ordered this last month."),
    3: ("Mixed feelings.", "", "It's okay."),
    2: ("Disappointed.", "", "Expected more."),
    1: ("Do not recommend.", "", "What a letdown."),
}
_CLOSERS = {
    5: ("Would buy again.", "Already ordered a second one.", ""),
    4: ("Would probably buy again.", ""),
    3: ("Might keep it, might not.", ""),
    2: ("Probably returning it.", ""),
    1: ("Returned it.", "Won't buy again.", ""),
}
_SUMMARIES = {
    5: ("Love it", "Exactly what I wanted", "Perfect", "Great {m}"),
    4: ("Very good", "Happy with it", "Nice {m}"),
    3: ("It's okay", "Mixed feelings", "Average"),
    2: ("Disappointing", "Not for me", "Not a fan of the {m}"),
    1: ("Hated it", "Returned it", "Can't stand the {m}"),
}


def render_review(mentions: list[tuple[str, str]], rating: float, rng: np.random.Generator) -> tuple[str, str]:
    """(review_text, review_summary) for an interaction with these mentions and rating."""
    stars = int(rating)
    sentences = []
    for key, sentiment in mentions:
        _, attr, value = lookup(key)
        templates = _POSITIVE if sentiment == LIKE else _NEGATIVE
        sentences.append(_pick(templates, rng).format(m=attr.mention_of(value)))
    sentences = [sentences[i] for i in rng.permutation(len(sentences))]
    if not sentences:
        sentences.append(_pick(_NEUTRAL, rng))
    parts = [_pick(_OPENERS[stars], rng), *sentences, _pick(_CLOSERS[stars], rng)]
    text = " ".join(p for p in parts if p)
    return text, _summary(mentions, stars, rng)


def _summary(mentions: list[tuple[str, str]], stars: int, rng: np.random.Generator) -> str:
    wanted = LIKE if stars >= 4 else "dislike"
    matching = [key for key, sentiment in mentions if sentiment == wanted]
    options = _SUMMARIES[stars]
    if not matching:
        options = tuple(o for o in options if "{m}" not in o)
    template = _pick(options, rng)
    if "{m}" not in template:
        return template
    _, attr, value = lookup(matching[int(rng.integers(len(matching)))])
    return template.format(m=attr.mention_of(value))


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]
