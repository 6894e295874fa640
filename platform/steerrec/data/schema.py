"""The Parquet shapes that stages hand each other (CONTRACTS.md), fixed once here.

Later stages import these names instead of repeating column strings. Every table is
checked with :func:`validate` when it is read from another stage, so a wrong folder
fails with the file and the column named, not with a KeyError three stages later.
"""

from __future__ import annotations

import pyarrow as pa

from steerrec.errors import UserError

# ---- keys -------------------------------------------------------------------------
USER_ID = "user_id"
ITEM_ID = "item_id"
T = "t"  # 1-based position in the user's filtered, time-ordered sequence

# ---- dataset folder (jobs/prepare_data.py) -----------------------------------------
ITEMS_FILE = "items.parquet"
INTERACTIONS_FILE = "interactions.parquet"
SEQUENCES_FILE = "sequences.parquet"
MANIFEST_FILE = "manifest.json"
TRUTH_FILE = "truth.parquet"

ITEMS = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("brand", pa.string()),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("price", pa.float64()),
        pa.field("description", pa.string()),
        pa.field("extra", pa.string()),  # JSON text: source-specific fields
    ]
)

INTERACTIONS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),  # seconds since the epoch
        pa.field("rating", pa.float64()),
        pa.field("review_text", pa.string()),
        pa.field("review_summary", pa.string()),
    ]
)

SPLITS = ("train", "valid", "test")

SEQUENCES = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("t", pa.int32(), nullable=False),  # the target's position
        pa.field("history", pa.list_(pa.string())),  # most recent <= max_history before t
        pa.field("target", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ]
)

# World only: the truth behind every (user, t). `attributes[i]` and `sentiments[i]`
# explain `preferences[i]` ("skincare.scent=strong", "dislike").
TRUTH = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("t", pa.int32(), nullable=False),
        pa.field("preferences", pa.list_(pa.string())),
        pa.field("attributes", pa.list_(pa.string())),
        pa.field("sentiments", pa.list_(pa.string())),
    ]
)

# ---- preferences folder (jobs/approximate_preferences.py) --------------------------
PREFERENCES = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("t", pa.int32(), nullable=False),
        pa.field("preferences", pa.list_(pa.string())),
        pa.field("engine", pa.string()),
        pa.field("model", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("tokens_in", pa.int64()),
        pa.field("tokens_out", pa.int64()),
    ]
)

PREFERENCE_FAILURES = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("t", pa.int32(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("generated_text", pa.string()),
        pa.field("attempts", pa.int32()),
        pa.field("engine", pa.string()),
        pa.field("model", pa.string()),
        pa.field("variant", pa.string()),
    ]
)

# Item properties condensed from reviews (jobs/summarize_items.py, Appendix C.1).
ITEM_PROPERTIES = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("properties", pa.list_(pa.string())),
        pa.field("engine", pa.string()),
        pa.field("model", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("tokens_in", pa.int64()),
        pa.field("tokens_out", pa.int64()),
    ]
)

ITEM_PROPERTY_FAILURES = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("generated_text", pa.string()),
        pa.field("attempts", pa.int32()),
        pa.field("engine", pa.string()),
        pa.field("model", pa.string()),
        pa.field("variant", pa.string()),
    ]
)

# ---- run folder ---------------------------------------------------------------------
SEMANTIC_IDS_FILE = "semantic_ids.parquet"
# a run folder's other files (steerrec.run_folder documents them)
RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
JOB_FILE = "job.yaml"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.safetensors"
ITEM_EMBEDDINGS_FILE = "item_embeddings.parquet"
QUALITY_FILE = "quality.json"
RESULTS_FILE = "results.json"
PLOT_FILE = "results.png"
RAY_DIR = "ray"
SEMANTIC_IDS = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("codes", pa.list_(pa.int32())),
    ]
)


class SchemaError(UserError, ValueError):
    """A table read from another stage does not have the contracted shape."""


def validate(table: pa.Table, schema: pa.Schema, source: str, required_only: bool = False) -> pa.Table:
    """Check that `table` has every column of `schema` with a compatible type.

    Returns the table with columns cast to the contracted types and ordered as the
    schema lists them (extra columns are kept at the end). `source` names the file in
    the error message.
    """
    names = set(table.column_names)
    missing = [f.name for f in schema if f.name not in names]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {missing}; has {sorted(names)}")
    columns, fields = [], []
    for field in schema:
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"{source}: column {field.name!r} has type {column.type}, expected {field.type}"
                ) from exc
        if not field.nullable and column.null_count:
            raise SchemaError(f"{source}: column {field.name!r} has {column.null_count} null value(s)")
        columns.append(column)
        fields.append(field)
    for name in table.column_names:
        if name not in schema.names:
            columns.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
