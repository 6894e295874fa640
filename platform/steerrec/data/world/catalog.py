"""The world's catalog: items with attribute values, rendered as store listings.

Items are spread evenly over the categories; each attribute value is drawn uniformly.
Titles, descriptions, brands and prices are rendered from the attributes through varied
templates (steerrec.data.world.vocab). Item ids are "W" plus a zero-padded number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from steerrec.data.schema import ITEMS
from steerrec.data.world.vocab import CATEGORIES, Category

_OUTROS = (
    "Backed by a 30-day satisfaction guarantee.",
    "Thoughtfully packaged with recycled materials.",
    "A favourite with our regular customers.",
    "",
)
_FEATURE_LEADS = ("Features: {}.", "What you get: {}.", "Highlights include {}.", "Key details: {}.")


@dataclass(frozen=True)
class Catalog:
    """Items by index 0..n-1: their category and attribute values, and their listings."""

    ids: list[str]  # item_id by item index
    category: np.ndarray  # [n_items] index into CATEGORIES
    values: np.ndarray  # [n_items, max_attrs] value index per attribute, -1 past the category's attributes
    members: list[np.ndarray]  # per category: the item indices in it
    table: pa.Table  # schema.ITEMS, sorted by item_id

    def keys_of(self, item: int) -> list[str]:
        """The item's attribute keys ("skincare.scent=fragrance-free")."""
        cat = CATEGORIES[int(self.category[item])]
        keys = cat.attribute_keys()
        return [keys[a][int(v)] for a, v in enumerate(self.values[item, : len(cat.attributes)])]


def item_ids(n: int) -> list[str]:
    width = max(5, len(str(n - 1)))
    return [f"W{i:0{width}d}" for i in range(n)]


def build_catalog(n_items: int, rng: np.random.Generator) -> Catalog:
    """`n_items` items spread evenly (in shuffled order) over CATEGORIES."""
    n_cat = len(CATEGORIES)
    category = rng.permutation(np.arange(n_items) % n_cat)
    max_attrs = max(len(c.attributes) for c in CATEGORIES)
    values = np.full((n_items, max_attrs), -1, dtype=np.int64)
    for c, cat in enumerate(CATEGORIES):
        rows = np.flatnonzero(category == c)
        for a, attr in enumerate(cat.attributes):
            values[rows, a] = rng.integers(0, len(attr.values), size=len(rows))
    ids = item_ids(n_items)
    records = [_listing(ids[i], CATEGORIES[int(category[i])], values[i], rng) for i in range(n_items)]
    for record in records:  # JSON text as the ingest stores it
        record["extra"] = json.dumps(record["extra"], sort_keys=True, ensure_ascii=False)
    columns = {name: [r[name] for r in records] for name in ITEMS.names}
    table = pa.table(columns, schema=ITEMS)
    members = [np.flatnonzero(category == c) for c in range(n_cat)]
    return Catalog(ids=ids, category=category, values=values, members=members, table=table)


def _listing(item_id: str, cat: Category, values: np.ndarray, rng: np.random.Generator) -> dict:
    """One item record (schema.ITEMS columns; `extra` as a dict) rendered from its values."""
    attrs = {a.name: a.values[int(v)] for a, v in zip(cat.attributes, values)}
    brand = cat.brands[int(rng.integers(len(cat.brands)))]
    line = cat.lines[int(rng.integers(len(cat.lines)))]
    noun = attrs[cat.noun_attribute] if cat.noun_attribute else cat.noun
    slots = {"brand": brand, "line": line, "noun": noun, **attrs}
    title = _pick(cat.titles, rng).format(**slots)
    features = [a.mention_of(attrs[a.name]) for a in cat.attributes]
    features = [features[i] for i in rng.permutation(len(features))]
    description = " ".join(
        part
        for part in (
            _pick(cat.intros, rng).format(**slots),
            _pick(_FEATURE_LEADS, rng).format(", ".join(features)),
            _pick(_OUTROS, rng),
        )
        if part
    )
    price = float(np.floor(cat.price * rng.lognormal(0.0, 0.35))) + 0.99
    return {
        "item_id": item_id,
        "title": title[0].upper() + title[1:],
        "brand": brand,
        "categories": list(cat.path),
        "price": price,
        "description": description,
        "extra": {"world_category": cat.name, "attributes": attrs},
    }


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]
