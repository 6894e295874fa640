"""Item text rendering."""

from __future__ import annotations

import pyarrow as pa
import pytest

from steerrec.data.schema import ITEMS
from steerrec.data.text import ItemTextConfig, cut, render_item, render_items

ITEM = {
    "item_id": "B01",
    "title": "Rose  Soap",
    "brand": "Acme",
    "categories": ["Beauty", "Bath", ""],
    "price": 4.5,
    "description": "A gentle bar.",
    "extra": '{"color": "pink"}',
}


def test_render_item_fields_in_order():
    assert render_item(ITEM) == (
        "Title: Rose Soap | Brand: Acme | Categories: Beauty, Bath | Price: 4.50 | Description: A gentle bar."
    )


def test_empty_fields_are_skipped():
    item = {"item_id": "x", "title": "Soap", "brand": "", "categories": [], "price": float("nan"), "description": None}
    assert render_item(item) == "Title: Soap"
    assert render_item({"item_id": "x"}) == ""


def test_field_choice_and_order():
    assert render_item(ITEM, fields=("brand", "title")) == "Brand: Acme | Title: Rose Soap"


def test_cut_on_a_word_boundary():
    assert cut("one two three", 9) == "one two"
    assert cut("one two three", 7) == "one two"
    assert cut("one two three", 13) == "one two three"
    assert cut("abcdefghij", 4) == "abcd"  # one long word: hard cut
    text = render_item(ITEM, max_chars=40)
    assert len(text) <= 40 and text == "Title: Rose Soap | Brand: Acme"


def test_render_items_matches_render_item():
    table = pa.Table.from_pylist([ITEM, {"item_id": "B02", "title": "Comb"}], schema=ITEMS)
    config = ItemTextConfig(fields=("title", "price"), max_chars=100)
    assert render_items(table, config) == ["Title: Rose Soap | Price: 4.50", "Title: Comb"]
    assert render_items(table) == render_items(table)  # deterministic
    assert render_items(table)[0] == render_item(ITEM)


def test_config_checks():
    with pytest.raises(ValueError, match="unknown field"):
        ItemTextConfig(fields=("title", "colour"))
    with pytest.raises(ValueError, match="max_chars"):
        ItemTextConfig(max_chars=0)
    with pytest.raises(ValueError, match="lacks column"):
        render_items(pa.table({"item_id": ["a"], "title": ["t"]}), ItemTextConfig(fields=("title", "brand")))
