"""The five evaluation axes of the preference-discerning benchmark: names and row shapes.

    DIR/axes/<axis>/{train,valid,test}.parquet   (CONTRACTS.md, "Benchmark folder")

Every axis writes `user_id`, `t`, `history`, `preference`, `target`; history
consolidation writes `preferences` (a list) instead of `preference`; sentiment following
adds `polarity` ("pos"/"neg") and `pair_id` (the same for a negative and its twin).
A benchmark built without preferences (datasets with no reviews, e.g. LC-Rec) has the
recommendation axis only, each row's `preference` NO_PREFERENCE.
"""

from __future__ import annotations

import pyarrow as pa

RECOMMENDATION = "recommendation"  # Eq. 2: one preference of P_u^(t-1), the closest to i_t
FINE = "fine"  # Eq. 3-4: steer towards the item most similar to i_t
COARSE = "coarse"  # Eq. 3-4: steer towards the item least similar to i_t
SENTIMENT = "sentiment"  # App. D.1: negative preferences and their inverted twins
CONSOLIDATION = "consolidation"  # all preferences of P_u^(t-1)
AXES = (RECOMMENDATION, FINE, COARSE, SENTIMENT, CONSOLIDATION)

AXES_DIR = "axes"
NO_PREFERENCE = ""  # the `preference` of a row with no statement: models read the history only
POSITIVE, NEGATIVE = "pos", "neg"

_KEYS = [
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("t", pa.int32(), nullable=False),
    pa.field("history", pa.list_(pa.string())),
]
EXAMPLES = pa.schema(
    _KEYS + [pa.field("preference", pa.string(), nullable=False), pa.field("target", pa.string(), nullable=False)]
)
CONSOLIDATION_EXAMPLES = pa.schema(
    _KEYS + [pa.field("preferences", pa.list_(pa.string())), pa.field("target", pa.string(), nullable=False)]
)
SENTIMENT_EXAMPLES = pa.schema(
    list(EXAMPLES)
    + [pa.field("polarity", pa.string(), nullable=False), pa.field("pair_id", pa.int64(), nullable=False)]
)


def axis_schema(axis: str) -> pa.Schema:
    """The row shape of `axis` (one of AXES)."""
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}; known: {list(AXES)}")
    if axis == CONSOLIDATION:
        return CONSOLIDATION_EXAMPLES
    if axis == SENTIMENT:
        return SENTIMENT_EXAMPLES
    return EXAMPLES


def axis_file(axis: str, split: str) -> str:
    """The path of one split of one axis inside a benchmark folder."""
    return f"{AXES_DIR}/{axis}/{split}.parquet"
