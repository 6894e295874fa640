"""Amazon review releases of the McAuley lab (UCSD): 2014, 2018 and 2023.

`input` is the reviews file, `meta` the optional metadata file (gzip or plain).

- 2014 (https://jmcauley.ucsd.edu/data/amazon/): reviews are JSON lines
  (reviewerID, asin, overall, unixReviewTime, reviewText, summary); metadata lines are
  Python literals (asin, title, brand, categories as a list of lists, price, description).
- 2018 (https://nijianmo.github.io/amazon/): reviews as 2014 plus style/vote/verified
  (dropped: interactions carry no extra); metadata JSON lines with a `category` list,
  price text such as "$12.99", a `description` list, and HTML left over from scraping.
- 2023 (https://amazon-reviews-2023.github.io/): reviews JSON lines with user_id,
  parent_asin (the item id, as the 2023 benchmarks use), rating, timestamp in
  milliseconds, text, title; metadata keyed by parent_asin with store, categories,
  price (number or null), description list, features and details.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

from steerrec.data.readers._io import (
    RowError,
    clean_text,
    get_float,
    get_id,
    get_int,
    get_list,
    get_text,
    jsonable,
    parse_json,
    parse_literal,
    parse_price,
    records,
    unique,
)
from steerrec.data.readers.base import Record, Row


class _AmazonReader(ABC):
    format = ""
    synthetic_timestamps = False
    implicit_feedback = False
    _parse_meta: Callable[[str], Any] = staticmethod(parse_json)

    def __init__(self, input: str, meta: str | None = None):
        self.input = str(input)
        self.meta = str(meta) if meta else None

    def files(self) -> list[str]:
        return [self.input] + ([self.meta] if self.meta else [])

    def interactions(self) -> Iterator[Row]:
        return records(self.input, parse_json, self._review)

    def items(self) -> Iterator[Row]:
        """Item records from `meta`; none when no metadata file was given."""
        if self.meta is None:
            return iter(())
        return records(self.meta, self._parse_meta, self._item)

    def _review(self, obj: dict[str, Any]) -> Record:
        return {
            "user_id": get_id(obj, "reviewerID"),
            "item_id": get_id(obj, "asin"),
            "timestamp": get_int(obj, "unixReviewTime"),
            "rating": get_float(obj, "overall"),
            "review_text": get_text(obj, "reviewText"),
            "review_summary": get_text(obj, "summary"),
        }

    @abstractmethod
    def _item(self, obj: dict[str, Any]) -> Record:
        """One metadata row as an item record."""


def _item_record(obj: dict[str, Any], id_key: str, used: set[str], **fields: Any) -> Record:
    """An item record: `fields` plus every key of `obj` not in `used` into extra.

    A price present in the source but not a number is kept in extra as it was.
    """
    extra = {key: value for key, value in obj.items() if key not in used}
    if fields["price"] is None and obj.get("price") not in (None, ""):
        extra["price"] = obj["price"]
    return {"item_id": get_id(obj, id_key), **fields, "extra": jsonable(extra)}


class Amazon2014Reader(_AmazonReader):
    format = "amazon2014"
    _parse_meta = staticmethod(parse_literal)

    def _item(self, obj: dict[str, Any]) -> Record:
        categories: list[Any] = []
        for entry in get_list(obj, "categories"):
            categories.extend(entry if isinstance(entry, (list, tuple)) else [entry])
        return _item_record(
            obj,
            "asin",
            {"asin", "title", "brand", "categories", "price", "description"},
            title=get_text(obj, "title"),
            brand=get_text(obj, "brand"),
            categories=unique(categories),
            price=parse_price(obj.get("price")),
            description=get_text(obj, "description") or "",
        )


class Amazon2018Reader(_AmazonReader):
    format = "amazon2018"

    def _item(self, obj: dict[str, Any]) -> Record:
        description = " ".join(clean_text(_text(part, "description")) for part in get_list(obj, "description"))
        return _item_record(
            obj,
            "asin",
            {"asin", "title", "brand", "category", "price", "description"},
            title=clean_text(get_text(obj, "title")) or None,
            brand=clean_text(get_text(obj, "brand")) or None,
            categories=unique(clean_text(_text(c, "category")) for c in get_list(obj, "category")),
            price=parse_price(obj.get("price")),
            description=description.strip(),
        )


class Amazon2023Reader(_AmazonReader):
    format = "amazon2023"

    def _review(self, obj: dict[str, Any]) -> Record:
        return {
            "user_id": get_id(obj, "user_id"),
            "item_id": get_id(obj, "parent_asin"),
            "timestamp": get_int(obj, "timestamp") // 1000,  # milliseconds in the 2023 files
            "rating": get_float(obj, "rating"),
            "review_text": get_text(obj, "text"),
            "review_summary": get_text(obj, "title"),
        }

    def _item(self, obj: dict[str, Any]) -> Record:
        description = " ".join(_text(part, "description").strip() for part in get_list(obj, "description"))
        return _item_record(
            obj,
            "parent_asin",
            {"parent_asin", "title", "store", "categories", "price", "description"},
            title=get_text(obj, "title"),
            brand=get_text(obj, "store"),
            categories=unique(_text(c, "categories") for c in get_list(obj, "categories")),
            price=parse_price(obj.get("price")),
            description=description.strip(),
        )


def _text(value: Any, field: str) -> str:
    """One element of a list of strings; anything else is a wrong_type row."""
    if not isinstance(value, str):
        raise RowError("wrong_type", field, f"expected a list of strings, found {type(value).__name__}")
    return value
