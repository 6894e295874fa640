"""Labelled statements that teach the polarity classifier what "avoid" sounds like.

Templates x topics: `TRAIN_*` templates fit the classifier, `HELD_OUT_*` templates (never
seen in fitting) measure how it does on phrasings it has not met, and the topics avoid
the built-in world's categories so that the world's probes are new to it as well. The
classifier learns from sentence embeddings, not from these words: a held-out phrasing
is read by what it means, so "Please keep X away from me" needs no keyword of its own.
"""

from __future__ import annotations

import hashlib

AVOID, LIKE = 1, 0

TRAIN_AVOID = (
    "Avoid {x}",
    "No {x}",
    "No {x} please",
    "I don't want {x}",
    "I don't want {x} anymore",
    "Stay away from {x}",
    "Please skip {x}",
    "Not interested in {x}",
    "Keep {x} out of my recommendations",
    "I'm tired of {x}",
    "Never show me {x}",
    "Exclude {x}",
    "I dislike {x}",
    "Nothing with {x}",
    "I hate {x}",
    "Don't recommend {x}",
    "Less {x} please",
    "I'm done with {x}",
    "Steer clear of {x}",
    "I can't stand {x}",
    "Remove {x} from my feed",
    "I'd rather not see {x}",
    "Avoids {x}",
    "Dislikes {x}",
    "Prefers to avoid {x}",
    "{x}? Not for me",
    "{x} are a dealbreaker",
    "Sick of {x}",
    "I've had it with {x}",
)
TRAIN_LIKE = (
    "Show me {x}",
    "I want {x}",
    "I love {x}",
    "Looking for {x}",
    "Find {x}",
    "More {x} please",
    "I'm into {x}",
    "Recommend {x}",
    "I like {x}",
    "Prefers {x}",
    "I'd like to see {x}",
    "Give me {x}",
    "I enjoy {x}",
    "Interested in {x}",
    "I need {x}",
    "Favors {x}",
    "Big fan of {x}",
    "I'm shopping for {x}",
    "Something with {x}",
    "{x} please",
    "Suggest {x}",
    "Enjoys {x}",
    "Likes {x}",
    "Values {x}",
    "Seeks {x}",
    "{x}? Yes please",
    "Keep the {x} coming",
    "Could you show me {x}?",
    "Do you have any {x}?",
    "Help me find {x}",
    "Any good {x}?",
    "Prefer {x}",
    "Look for {x}",
    "Search for {x}",
    "Wants {x}",
)
HELD_OUT_AVOID = (
    "Please keep {x} away from me",
    "{x}? No thanks",
    "I really don't want any {x}",
    "No more {x} for me",
    "Not a fan of {x}, skip them",
    "Anything but {x}",
)
HELD_OUT_LIKE = (
    "I'm after {x}",
    "Bring on the {x}",
    "Can you find me {x}",
    "I'm craving {x}",
    "Really keen on {x}",
    "Would love some {x}",
)
TOPICS = (
    "strong scents",
    "plastic packaging",
    "horror movies",
    "spicy food",
    "leather jackets",
    "bright colors",
    "heavy backpacks",
    "cheap electronics",
    "wool sweaters",
    "action figures",
    "romance novels",
    "loud speakers",
    "sugary snacks",
    "gel pens",
    "vintage furniture",
    "cat toys",
    "fantasy books",
    "hiking boots",
    "mechanical keyboards",
    "scented candles",
    "kitchen gadgets",
    "jazz records",
    "video games",
    "yoga mats",
    "camping gear",
    "gluten",
    "artificial sweeteners",
    "large print books",
    "glass bottles",
    "battery-powered toys",
    "slim-fit jeans",
    "dark chocolate",
    "organic tea",
    "wireless chargers",
    "metal jewelry",
    "subscription services",
    "reality TV",
    "paperback editions",
    "noisy appliances",
    "sci-fi series",
    "fragrance-free lotions",  # "-free", "no-", "non-", "low" inside a topic say nothing of polarity
    "sugar-free snacks",
    "no-frills gadgets",
    "non-toxic paints",
    "low-noise fans",
    "products without batteries",
    "hair care",
    "lawn care",
    "baby care products",
    "pet supplies",
    "shirts with a regular fit",  # modifiers that sound negative or final ("over", "matte", "free") in like and avoid
    "over-the-counter remedies",
    "matte lipstick",
    "fragrance-free soap",
    "jackets with a slim fit",
    "mugs with a glossy finish",
    "tents with a waterproof floor",
    "phones with a long battery life",
    "minimalist wallets",
    "household cleaners",
    "lamps with minimal glare",
)


def statements(avoid: tuple[str, ...], like: tuple[str, ...], topics: tuple[str, ...] = TOPICS):
    """(texts, labels) for every template x topic; label AVOID or LIKE."""
    texts, labels = [], []
    for templates, label in ((avoid, AVOID), (like, LIKE)):
        for template in templates:
            for topic in topics:
                text = template.format(x=topic)
                texts.append(text[0].upper() + text[1:])
                labels.append(label)
    return texts, labels


def training_set() -> tuple[list[str], list[int]]:
    return statements(TRAIN_AVOID, TRAIN_LIKE)


def held_out_set() -> tuple[list[str], list[int]]:
    return statements(HELD_OUT_AVOID, HELD_OUT_LIKE)


def fingerprint() -> str:
    """A short hash of the training statements (names a cached fit)."""
    texts, labels = training_set()
    blob = "\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
