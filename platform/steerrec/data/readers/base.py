"""The contract every reader of a public format follows.

A reader turns the files of one public format into *records* in the data model's
column names (``steerrec.data.schema``); the shared ingest (``steerrec.data.ingest``)
does the rest the same way for every source: type checks, duplicate removal, item
merging, k-core filtering, implicit ratings, sequences, the manifest.

Readers stream: they yield one record at a time and never hold a whole file.

Each record comes with its :class:`Location` (file and 1-based line, or the key for
formats that are one JSON document) so that every error can name where it happened.
A row the reader cannot understand is yielded as a :class:`BadRow` (the ingest counts
it by reason and stops past the configured fraction); a file that cannot be read at
all (missing, truncated gzip) raises :class:`DataError`.

Interaction records carry: ``user_id``, ``item_id``, ``timestamp`` (int seconds; for
order-only sources an increasing synthetic value, with ``Reader.synthetic_timestamps``
set), ``rating`` (float or None), ``review_text``, ``review_summary`` (str or None),
and optionally ``implicit`` (a play count or hours; the ingest turns it into a 1..5
rating by per-item percentile when ``Reader.implicit_feedback`` is set).

Item records carry: ``item_id``, ``title``, ``brand``, ``categories`` (list of str),
``price`` (float or None), ``description`` (str), ``extra`` (dict of source-specific
fields; stored as JSON text).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from steerrec.errors import UserError


@dataclass(frozen=True)
class Location:
    file: str
    line: int | str  # 1-based line number, or a key inside a one-document JSON file

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class DataError(UserError, ValueError):
    """Input that cannot be used; the message names the file, the line and the field."""

    def __init__(self, message: str, location: Location | None = None, field: str | None = None):
        where = f"{location}: " if location is not None else ""
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}{what}{message}")
        self.location = location
        self.field = field


@dataclass(frozen=True)
class BadRow:
    """A row a reader could not turn into a record. `reason` is a short stable key
    (``malformed_json``, ``missing_field``, ``wrong_type``, ...) counted in the manifest."""

    reason: str
    field: str | None = None
    detail: str = ""

    def describe(self, location: Location) -> str:
        field = f" field {self.field!r}" if self.field else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{location}:{field} {self.reason}{detail}"


Record = dict[str, Any]
Row = tuple[Location, "Record | BadRow"]


class Reader(Protocol):
    """One public format. Construct it with the paths; iterate its records."""

    format: str
    synthetic_timestamps: bool  # True when the source has order but no time
    implicit_feedback: bool  # True when records carry `implicit` instead of `rating`

    def files(self) -> list[str]:
        """Every file this reader will read (for the manifest's sha256 list)."""

    def interactions(self) -> Iterator[Row]:
        """Interaction records in source order."""

    def items(self) -> Iterator[Row]:
        """Item records (may repeat an item_id; the ingest merges them)."""
