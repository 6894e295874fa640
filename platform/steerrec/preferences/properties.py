"""Item properties from reviews (mender-preference-discerning Appendix C.1): each item's
reviews condensed into at most 10 objective properties, with the same engines and
guarantees as preference approximation (schema-held replies, retries, resumable shards)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from steerrec.data import schema
from steerrec.data.io import read_table
from steerrec.llm.base import EngineConfig
from steerrec.preferences.generate import GenerationConfig, generate
from steerrec.preferences.prompts import PROPERTIES_SCHEMA, property_messages
from steerrec.preferences.shards import ShardWriter
from steerrec.preferences.validate import parse_statements

MAX_PROPERTIES = 10


@dataclass
class PropertiesConfig:
    data: str = ""
    out: str = ""
    limit_items: int | None = None  # the first N items by id
    max_reviews: int = 20  # reviews per item shown to the LLM (most recent first)
    max_review_tokens: int = 120
    engine: EngineConfig = field(default_factory=EngineConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ValueError(f"data and out are required, got data={self.data!r} out={self.out!r}")
        if self.max_reviews < 1:
            raise ValueError(f"max_reviews must be >= 1, got {self.max_reviews}")


def build_property_requests(cfg: PropertiesConfig) -> list[dict[str, Any]]:
    from steerrec.data.text import render_item

    items = read_table(f"{cfg.data}/{schema.ITEMS_FILE}").to_pylist()
    inter = read_table(f"{cfg.data}/{schema.INTERACTIONS_FILE}", ["item_id", "timestamp", "review_text"]).to_pandas()
    inter = inter[inter["review_text"].fillna("").str.strip() != ""].sort_values("timestamp", ascending=False)
    reviews = inter.groupby("item_id")["review_text"].apply(list).to_dict()
    items = sorted(items, key=lambda r: r["item_id"])
    if cfg.limit_items is not None:
        items = items[: cfg.limit_items]
    return [
        {
            "item_id": row["item_id"],
            "messages": property_messages(
                render_item(row), reviews[row["item_id"]], cfg.max_review_tokens, cfg.max_reviews
            ),
        }
        for row in items
        if row["item_id"] in reviews
    ]


def summarize_items(cfg: PropertiesConfig) -> dict[str, Any]:
    from steerrec.llm.base import build_engine

    engine, model = cfg.engine.engine, cfg.engine.model

    def to_row(key: dict, values: list[str]) -> dict:
        return {**key, "properties": values, "engine": engine, "model": model, "variant": "properties"}

    parse = functools.partial(parse_statements, key="properties", max_items=MAX_PROPERTIES, min_words=1)
    stats = generate(
        build_property_requests(cfg),
        ["item_id"],
        build_engine(cfg.engine),
        parse,
        to_row,
        cfg.out,
        schema.ITEM_PROPERTIES,
        schema.ITEM_PROPERTY_FAILURES,
        cfg.generation,
        PROPERTIES_SCHEMA,
    )
    stats.update(engine=engine, model=model, data=cfg.data)
    ShardWriter(cfg.out, schema.ITEM_PROPERTIES).write_json("manifest.json", stats)
    return stats
