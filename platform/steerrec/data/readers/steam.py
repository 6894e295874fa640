"""UCSD Steam data (https://cseweb.ucsd.edu/~jmcauley/datasets.html#steam_data).

All files are Python-literal lines. `input` is a folder holding any of them, or a
reviews file (a `steam_games*` file alone is read as the metadata); `meta` names the
games file when it lies elsewhere.

- `steam_games.json.gz`: id, title/app_name, developer/publisher (-> brand),
  genres + tags (-> categories), price (a number, or text such as "Free to Play" -> 0.0).
  A row without `id` takes the app number from its store `url`.
- `steam_reviews.json.gz` (Kang & McAuley, used by SASRec): username, user_id,
  product_id, hours, date 'YYYY-MM-DD', text. The user is `username` (as SASRec's
  preprocessing), else `user_id`; `implicit` = hours (None where the row has none).
- `australian_user_reviews.json.gz`: one line per user with a `reviews` list (item_id,
  posted "Posted November 5, 2011.", recommend, review). Thumbs up/down become rating
  5.0/1.0 (no hours there, so ``implicit_feedback`` is False for such a file); a post
  date without a year is a bad row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steerrec.data.readers._io import (
    RowError,
    get_float,
    get_id,
    get_list,
    get_text,
    jsonable,
    numbered_lines,
    parse_literal,
    records,
    to_float,
    unique,
)
from steerrec.data.readers.base import BadRow, DataError, Location, Record, Row

GAMES_FILES = ("steam_games.json.gz", "steam_games.json")
REVIEW_FILES = (
    "steam_reviews.json.gz",
    "steam_reviews.json",
    "australian_user_reviews.json.gz",
    "australian_user_reviews.json",
)
_APP_URL = re.compile(r"/app/(\d+)")
_DOLLARS = re.compile(r"\$\s*([0-9][0-9,]*(?:\.[0-9]+)?)")
_POSTED = re.compile(r"Posted\s+([A-Za-z]+)\s+(\d{1,2}),\s*(\d{4})")
_GAME_FIELDS = {"id", "title", "genres", "tags", "price", "description"}


class SteamReader:
    format = "steam"
    synthetic_timestamps = False

    def __init__(self, input: str, meta: str | None = None):
        path = Path(input)
        if path.is_dir():
            self.reviews = _first(path, REVIEW_FILES)
            self.games = Path(meta) if meta else _first(path, GAMES_FILES)
        elif meta is None and path.name.startswith("steam_games"):
            self.reviews, self.games = None, path
        else:
            self.reviews, self.games = path, Path(meta) if meta else None
        self.implicit_feedback = not (self.reviews is not None and _is_australian(self.reviews))

    def files(self) -> list[str]:
        return [str(p) for p in (self.reviews, self.games) if p is not None]

    def interactions(self) -> Iterator[Row]:
        if self.reviews is None:
            looked_for = ", ".join(REVIEW_FILES)
            raise DataError(f"no Steam review file (looked for {looked_for})", Location(str(self.games), 0))
        for location, line in numbered_lines(self.reviews):
            obj = parse_literal(line)
            if isinstance(obj, BadRow):
                yield location, obj
            elif "reviews" in obj:
                yield from _australian_user(location, obj)
            else:
                try:
                    yield location, _steam_review(obj)
                except RowError as exc:
                    yield location, exc.bad

    def items(self) -> Iterator[Row]:
        """Game records; none when there is no games file."""
        return iter(()) if self.games is None else records(self.games, parse_literal, _game)


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _is_australian(path: Path) -> bool:
    """Whether the first row is an australian_user_reviews row (a user with a list of reviews)."""
    for _, line in numbered_lines(path):
        first = parse_literal(line)
        return isinstance(first, dict) and "reviews" in first
    return False


def _steam_review(obj: dict[str, Any]) -> Record:
    user = "username" if get_text(obj, "username") else "user_id"
    return {
        "user_id": get_id(obj, user),
        "item_id": get_id(obj, "product_id"),
        "timestamp": _date(obj, "date", "%Y-%m-%d"),
        "rating": None,
        "review_text": get_text(obj, "text"),
        "review_summary": None,
        "implicit": get_float(obj, "hours", required=False),
    }


def _australian_user(location: Location, obj: dict[str, Any]) -> Iterator[Row]:
    try:
        user = get_id(obj, "user_id")
        reviews = get_list(obj, "reviews")
    except RowError as exc:
        yield location, exc.bad
        return
    for review in reviews:
        try:
            if not isinstance(review, dict):
                raise RowError("wrong_type", "reviews", f"expected a review object, got {type(review).__name__}")
            yield location, _australian_review(user, review)
        except RowError as exc:
            yield location, exc.bad


def _australian_review(user: str, review: dict[str, Any]) -> Record:
    posted = get_text(review, "posted") or ""
    match = _POSTED.search(posted)
    if match is None:
        raise RowError("bad_date", "posted", f"expected 'Posted Month D, YYYY', got {posted!r}")
    recommend = review.get("recommend")
    if not isinstance(recommend, bool):
        raise RowError("wrong_type", "recommend", f"expected True/False, got {recommend!r}")
    return {
        "user_id": user,
        "item_id": get_id(review, "item_id"),
        "timestamp": _date({"posted": " ".join(match.groups())}, "posted", "%B %d %Y"),
        "rating": 5.0 if recommend else 1.0,
        "review_text": get_text(review, "review"),
        "review_summary": None,
    }


def _date(obj: dict[str, Any], field: str, pattern: str) -> int:
    text = get_text(obj, field)
    if text is None:
        raise RowError("missing_field", field)
    try:
        when = datetime.strptime(text.strip(), pattern).replace(tzinfo=UTC)
    except ValueError as exc:
        raise RowError("bad_date", field, str(exc)) from exc
    return int(when.timestamp())


def _game(obj: dict[str, Any]) -> Record:
    app = _APP_URL.search(str(obj.get("url", "")))
    if "id" not in obj and app is not None:
        obj = {**obj, "id": app.group(1)}
    price = _price(obj.get("price"))
    extra = {key: value for key, value in obj.items() if key not in _GAME_FIELDS}
    if price is None or isinstance(obj.get("price"), str):
        extra["price"] = obj.get("price")
    return {
        "item_id": get_id(obj, "id"),
        "title": get_text(obj, "title") or get_text(obj, "app_name"),
        "brand": get_text(obj, "developer") or get_text(obj, "publisher"),
        "categories": unique(get_list(obj, "genres") + get_list(obj, "tags")),
        "price": price,
        "description": get_text(obj, "description") or "",
        "extra": jsonable(extra),
    }


def _price(value: Any) -> float | None:
    """A number; text naming it free -> 0.0; text holding "$449.00" -> 449.0; else None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if "free" in value.lower():
            return 0.0
        match = _DOLLARS.search(value)
        return float(match.group(1).replace(",", "")) if match else None
    return to_float(value, "price")
