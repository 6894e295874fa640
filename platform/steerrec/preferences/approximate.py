"""Preference approximation (mender-preference-discerning Sec. 3.2, Algorithm 1).

For every user u and position t < n_u, P_u^(t) is written from the items at positions
<= t (the most recent five, with their reviews); it helps predict position t + 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from steerrec.data import schema
from steerrec.data.io import read_table
from steerrec.llm.base import EngineConfig
from steerrec.preferences.generate import GenerationConfig, generate
from steerrec.preferences.prompts import PREFERENCES_SCHEMA, PromptConfig, preference_messages
from steerrec.preferences.shards import SHARDS_DIR, ShardWriter, read_shards
from steerrec.preferences.validate import parse_statements

logger = logging.getLogger(__name__)


@dataclass
class ApproximationConfig:
    data: str = ""  # a dataset folder (jobs/prepare_data.py)
    out: str = ""  # the preferences folder
    limit_users: int | None = None  # the first N users by id (CPU engines are slow)
    engine: EngineConfig = field(default_factory=EngineConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ValueError(f"data and out are required, got data={self.data!r} out={self.out!r}")
        if self.limit_users is not None and self.limit_users < 1:
            raise ValueError(f"limit_users must be >= 1, got {self.limit_users}")


def build_requests(data: str, prompt: PromptConfig, limit_users: int | None = None) -> list[dict[str, Any]]:
    """One request per (user_id, t), t = 1 .. n_u - 1, in user then position order."""
    from steerrec.data.text import render_item

    items = read_table(f"{data}/{schema.ITEMS_FILE}").to_pylist()
    text = {row["item_id"]: render_item(row, max_chars=prompt.max_item_chars) for row in items}
    inter = read_table(f"{data}/{schema.INTERACTIONS_FILE}").to_pandas()
    users = sorted(inter["user_id"].unique())
    if limit_users is not None:
        users = users[:limit_users]
    inter = inter[inter["user_id"].isin(set(users))]
    requests = []
    for user_id, group in inter.groupby("user_id", sort=True):
        rows = group.sort_values("timestamp", kind="stable").to_dict("records")
        entries = [
            {
                "item": text.get(r["item_id"], r["item_id"]),
                "rating": _num(r["rating"]),
                "review_summary": _str(r["review_summary"]),
                "review_text": _str(r["review_text"]),
            }
            for r in rows
        ]
        for t in range(1, len(rows)):
            messages = preference_messages(entries[max(0, t - prompt.max_items) : t], prompt)
            requests.append({"user_id": str(user_id), "t": t, "messages": messages})
    return requests


def approximate(cfg: ApproximationConfig) -> dict[str, Any]:
    """Generate P_u^(t) for every key not yet in `cfg.out`; returns the run's counts."""
    from steerrec.llm.base import build_engine

    requests = build_requests(cfg.data, cfg.prompt, cfg.limit_users)
    engine, model, variant = cfg.engine.engine, cfg.engine.model, cfg.prompt.granularity

    def to_row(key: dict, values: list[str]) -> dict:
        return {**key, "preferences": values, "engine": engine, "model": model, "variant": variant}

    stats = generate(
        requests,
        ["user_id", "t"],
        build_engine(cfg.engine),
        parse_statements,
        to_row,
        cfg.out,
        schema.PREFERENCES,
        schema.PREFERENCE_FAILURES,
        cfg.generation,
        PREFERENCES_SCHEMA,
    )
    written = read_shards(cfg.out, ["user_id", "t"])
    stats.update(
        engine=engine,
        model=model,
        variant=variant,
        data=cfg.data,
        keys_total=0 if written is None else written.num_rows,
    )
    ShardWriter(cfg.out, schema.PREFERENCES).write_json("manifest.json", stats)
    return stats


def read_preferences(path: str) -> pa.Table:
    """A preferences folder (shards) or one Parquet file with user_id, t, preferences
    (for example the world's truth.parquet), checked against the contract."""
    source = str(path)
    if Path(source).suffix == ".parquet" or source.endswith(".parquet"):
        table = read_table(source)
    else:
        table = read_shards(source)
        if table is None:
            raise FileNotFoundError(f"{source}: no preference shards under {SHARDS_DIR}/")
    needed = pa.schema([schema.PREFERENCES.field(n) for n in ("user_id", "t", "preferences")])
    return schema.validate(table, needed, source)


def _str(value: Any) -> str | None:
    """Text or None: pandas turns the nulls of a string column into NaN in some layouts."""
    return value if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    try:
        return None if value is None or value != value else float(value)
    except (TypeError, ValueError):
        return None
