"""GroupLens MovieLens 100K and 1M (https://grouplens.org/datasets/movielens/).

`input` is the folder (or a file in it); the variant follows from the files present:
- ML-100K: `u.data` (tab-separated user, item, rating, timestamp), `u.item`
  (latin-1, `|`-separated id, title, release date, video release date, IMDb URL and one
  0/1 flag per genre of `u.genre`).
- ML-1M: `ratings.dat` (`UserID::MovieID::Rating::Timestamp`) and `movies.dat`
  (latin-1, `MovieID::Title::Genres` with genres joined by `|`).
`meta`, when given, replaces the item file (u.item or movies.dat). No review text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from steerrec.data.readers._io import (
    RowError,
    delimited,
    get_float,
    get_id,
    get_int,
    jsonable,
    numbered_lines,
    records,
)
from steerrec.data.readers.base import DataError, Location, Record, Row

ENCODING = "latin-1"
ML100K = {"ratings": "u.data", "items": "u.item", "genres": "u.genre"}
ML1M = {"ratings": "ratings.dat", "items": "movies.dat"}
_ML100K_ITEM_FIELDS = ["item_id", "title", "release_date", "video_release_date", "imdb_url"]
NO_GENRE = "unknown"  # ML-100K's flag for "genre not known"; not a category


class MovieLensReader:
    format = "movielens"
    synthetic_timestamps = False
    implicit_feedback = False

    def __init__(self, input: str, meta: str | None = None):
        folder = Path(input) if Path(input).is_dir() else Path(input).parent
        if (folder / ML100K["ratings"]).is_file():
            self.variant, names = "ml-100k", ML100K
        elif (folder / ML1M["ratings"]).is_file():
            self.variant, names = "ml-1m", ML1M
        else:
            expected = f"{ML100K['ratings']} (ML-100K) or {ML1M['ratings']} (ML-1M)"
            raise DataError(f"not a MovieLens folder: expected {expected}", Location(str(folder), 0))
        self.folder = folder
        self.ratings = folder / names["ratings"]
        self.item_file = Path(meta) if meta else folder / names["items"]

    def files(self) -> list[str]:
        paths = [self.ratings, self.item_file]
        return [str(p) for p in paths] + ([str(self.folder / ML100K["genres"])] if self.variant == "ml-100k" else [])

    def interactions(self) -> Iterator[Row]:
        separator = "\t" if self.variant == "ml-100k" else "::"
        parse = delimited(separator, ["user_id", "item_id", "rating", "timestamp"])
        return records(self.ratings, parse, _rating, ENCODING)

    def items(self) -> Iterator[Row]:
        if self.variant == "ml-1m":
            return records(self.item_file, delimited("::", ["item_id", "title", "genres"]), _movie_1m, ENCODING)
        genres = read_genres(self.folder / ML100K["genres"])
        parse = delimited("|", _ML100K_ITEM_FIELDS + genres)
        return records(self.item_file, parse, lambda obj: _movie_100k(obj, genres), ENCODING)


def read_genres(path: Path) -> list[str]:
    """Genre names of ML-100K's u.genre (`name|index` lines) in flag order."""
    by_index: dict[int, str] = {}
    for location, line in numbered_lines(path, ENCODING):
        name, _, index = line.rpartition("|")
        if not name or not index.strip().isdigit():
            raise DataError(f"expected 'name|index', got {line!r}", location)
        by_index[int(index)] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise DataError(f"genre indices are not 0..n-1: {sorted(by_index)}", Location(str(path), 0))
    return [by_index[i] for i in range(len(by_index))]


def _rating(obj: dict[str, Any]) -> Record:
    return {
        "user_id": get_id(obj, "user_id"),
        "item_id": get_id(obj, "item_id"),
        "timestamp": get_int(obj, "timestamp"),
        "rating": get_float(obj, "rating"),
        "review_text": None,
        "review_summary": None,
    }


def _movie(obj: dict[str, Any], categories: list[str], extra: dict[str, Any]) -> Record:
    return {
        "item_id": get_id(obj, "item_id"),
        "title": obj["title"].strip() or None,
        "brand": None,
        "categories": categories,
        "price": None,
        "description": "",
        "extra": jsonable(extra),
    }


def _movie_100k(obj: dict[str, Any], genres: list[str]) -> Record:
    categories = []
    for genre in genres:
        flag = obj[genre].strip()
        if flag not in ("0", "1"):
            raise RowError("wrong_type", genre, f"expected a 0/1 genre flag, got {flag!r}")
        if flag == "1" and genre != NO_GENRE:
            categories.append(genre)
    extra = {key: obj[key].strip() for key in _ML100K_ITEM_FIELDS[2:]}
    return _movie(obj, categories, extra)


def _movie_1m(obj: dict[str, Any]) -> Record:
    categories = [g.strip() for g in obj["genres"].split("|") if g.strip() and g.strip() != "(no genres listed)"]
    return _movie(obj, categories, {})
