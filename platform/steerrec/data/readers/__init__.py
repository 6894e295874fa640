"""Readers of public formats, by name: ``get_reader("amazon2018", input, meta)``.

Each reader follows :class:`steerrec.data.readers.base.Reader`; the shared ingest does
dedup, merging and filtering. Reader modules import only the standard library.
"""

from __future__ import annotations

from steerrec.data.readers.amazon import Amazon2014Reader, Amazon2018Reader, Amazon2023Reader
from steerrec.data.readers.base import BadRow, DataError, Location, Reader
from steerrec.data.readers.lcrec import LCRecReader
from steerrec.data.readers.movielens import MovieLensReader
from steerrec.data.readers.steam import SteamReader

FORMATS: dict[str, type] = {
    "amazon2014": Amazon2014Reader,
    "amazon2018": Amazon2018Reader,
    "amazon2023": Amazon2023Reader,
    "lcrec": LCRecReader,
    "movielens": MovieLensReader,
    "steam": SteamReader,
    # "world": the synthetic world's reader registers itself here (steerrec.data.world);
    # a reader class with `needs_input = False` is built with input=None.
}


def get_reader(format: str, input: str | None, meta: str | None = None) -> Reader:
    """The reader of `format` over `input` (file or folder) and optional `meta` file."""
    cls = FORMATS.get(format)
    if cls is None:
        raise ValueError(f"unknown format {format!r}; known formats: {', '.join(sorted(FORMATS))}")
    if input is None and getattr(cls, "needs_input", True):
        raise ValueError(f"format {format!r} needs an input path (--input)")
    return cls(input, meta)


__all__ = ["FORMATS", "BadRow", "DataError", "Location", "Reader", "get_reader"]
