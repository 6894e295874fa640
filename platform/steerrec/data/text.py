"""Item text: the one rendering of an item that embedders and LLM prompts share.

    render_item({"title": "Rose Soap", "brand": "Acme", "price": 4.5})
    -> "Title: Rose Soap | Brand: Acme | Price: 4.50"

Fields are rendered in the configured order as ``Label: value`` joined by `` | ``;
empty fields (None, "", [], NaN) are skipped; lists are joined with ", "; prices have
two decimals. The result is cut to at most `max_chars` characters at a word boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from steerrec.data.schema import ITEMS

DEFAULT_FIELDS = ("title", "brand", "categories", "price", "description")
_SEPARATOR = " | "


@dataclass
class ItemTextConfig:
    fields: tuple[str, ...] = DEFAULT_FIELDS  # item columns, in the order they are rendered
    max_chars: int = 512  # the text is cut at a word boundary to at most this many characters

    def __post_init__(self) -> None:
        self.fields = tuple(self.fields)
        known = [name for name in ITEMS.names if name != "item_id"]
        unknown = [name for name in self.fields if name not in known]
        if unknown:
            raise ValueError(f"item_text.fields: unknown field(s) {unknown}; known: {known}")
        if self.max_chars < 1:
            raise ValueError(f"item_text.max_chars must be >= 1, got {self.max_chars}")


def _value_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if name == "price" and isinstance(value, (int, float)):
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v).strip() for v in value if v is not None and str(v).strip())
    return " ".join(str(value).split())


def cut(text: str, max_chars: int) -> str:
    """`text` if it fits, else its longest prefix of at most `max_chars` characters that
    ends at a word boundary (a hard cut when the first word alone is too long)."""
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]
    space = head.rfind(" ")
    if space <= 0:
        return text[:max_chars]
    return head[:space].rstrip(" |,")


def render_item(item: dict[str, Any], fields: Sequence[str] = DEFAULT_FIELDS, max_chars: int = 512) -> str:
    """One item as text (see the module docstring); "" when every field is empty."""
    parts = []
    for name in fields:
        text = _value_text(name, item.get(name))
        if text:
            parts.append(f"{name.capitalize()}: {text}")
    return cut(_SEPARATOR.join(parts), max_chars)


def render_items(items: pa.Table, config: ItemTextConfig | None = None) -> list[str]:
    """`render_item` for each row of an items table (schema.ITEMS), in row order."""
    config = config or ItemTextConfig()
    missing = [name for name in config.fields if name not in items.column_names]
    if missing:
        raise ValueError(f"items table lacks column(s) {missing} named in item_text.fields")
    columns = {name: items.column(name).to_pylist() for name in config.fields}
    rows = items.num_rows
    return [
        render_item({name: values[i] for name, values in columns.items()}, config.fields, config.max_chars)
        for i in range(rows)
    ]
