"""LC-Rec / LETTER processed datasets: `X.inter.json` and `X.item.json`.

`X.inter.json` is one JSON object mapping a user index to the user's item indices in
order; `X.item.json` maps an item index to {title, description, brand, categories}.
There is no time and no rating: the timestamp is the 1-based position in the user's
list (``synthetic_timestamps``), the rating None. Locations are JSON pointers
("/<user>/<position>", "/<item>") since each file is one document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from steerrec.data.readers._io import RowError, clean_text, get_list, get_text, jsonable, unique
from steerrec.data.readers._jsondoc import iter_json_object
from steerrec.data.readers.base import BadRow, DataError, Location, Record, Row

INTER_SUFFIX = ".inter.json"
ITEM_SUFFIX = ".item.json"
_ITEM_FIELDS = {"title", "description", "brand", "categories"}


class LCRecReader:
    format = "lcrec"
    synthetic_timestamps = True
    implicit_feedback = False

    def __init__(self, input: str, meta: str | None = None):
        """`input`: the folder holding one X.inter.json, or that file; `meta`: the item
        file when it is not the X.item.json beside it."""
        self.inter = _find_inter(Path(input))
        stem = self.inter.name[: -len(INTER_SUFFIX)] if self.inter.name.endswith(INTER_SUFFIX) else None
        if meta is None and stem is None:
            raise DataError(f"expected a name ending in {INTER_SUFFIX!r} (or pass --meta)", Location(str(input), 0))
        self.item_file = Path(meta) if meta else self.inter.with_name(f"{stem}{ITEM_SUFFIX}")
        if not self.item_file.is_file():
            where = Location(str(self.item_file), 0)
            raise DataError("item file not found (LC-Rec keeps X.item.json beside X.inter.json)", where)

    def files(self) -> list[str]:
        return [str(self.inter), str(self.item_file)]

    def interactions(self) -> Iterator[Row]:
        path = str(self.inter)
        for user, sequence in iter_json_object(self.inter):
            if not user.strip():
                yield Location(path, f"/{user}"), BadRow("missing_field", "user_id", "empty user key")
            elif not isinstance(sequence, list):
                yield Location(path, f"/{user}"), BadRow("wrong_type", "item_id", "expected a list of item indices")
            else:
                yield from _sequence(path, user, sequence)

    def items(self) -> Iterator[Row]:
        path = str(self.item_file)
        for key, value in iter_json_object(self.item_file):
            location = Location(path, f"/{key}")
            if not isinstance(value, dict):
                yield location, BadRow("wrong_type", "item", f"expected an object, got {type(value).__name__}")
            elif not key.strip():
                yield location, BadRow("missing_field", "item_id", "empty item key")
            else:
                try:
                    yield location, _item(key.strip(), value)
                except RowError as exc:
                    yield location, exc.bad


def _find_inter(path: Path) -> Path:
    if not path.is_dir():
        return path
    found = sorted(path.glob(f"*{INTER_SUFFIX}"))
    if len(found) != 1:
        names = [p.name for p in found] or "none"
        raise DataError(f"expected exactly one *{INTER_SUFFIX} in the folder, found {names}", Location(str(path), 0))
    return found[0]


def _sequence(path: str, user: str, sequence: list[Any]) -> Iterator[Row]:
    """One user's items; the 1-based position is the timestamp (strictly increasing)."""
    for position, item in enumerate(sequence, start=1):
        location = Location(path, f"/{user}/{position - 1}")
        if isinstance(item, bool) or not isinstance(item, (int, str)) or not str(item).strip():
            yield location, BadRow("wrong_type", "item_id", f"expected an item index, got {item!r}"[:120])
            continue
        record = {"user_id": user.strip(), "item_id": str(item).strip(), "timestamp": position}
        yield location, {**record, "rating": None, "review_text": None, "review_summary": None}


def _item(item_id: str, obj: dict[str, Any]) -> Record:
    raw = obj.get("categories")
    categories = split_categories(raw) if isinstance(raw, str) else get_list(obj, "categories")
    return {
        "item_id": item_id,
        "title": clean_text(get_text(obj, "title")) or None,
        "brand": clean_text(get_text(obj, "brand")) or None,
        "categories": unique(clean_text(c) for c in categories if isinstance(c, str)),
        "price": None,
        "description": clean_text(get_text(obj, "description")),
        "extra": jsonable({k: v for k, v in obj.items() if k not in _ITEM_FIELDS}),
    }


def split_categories(text: str) -> list[str]:
    """Split LC-Rec's joined category path.

    Files join with "," (Scientific) or ", " (Office). Where a bare "," occurs it is the
    separator and ", " belongs to a name ("Test, Measure & Inspect"); otherwise ", "
    separates, so a name holding ", " is split there (the text cannot tell).
    """
    parts = re.split(r",(?=\S)", text) if re.search(r",\S", text) else text.split(", ")
    return [part.strip() for part in parts if part.strip()]
