"""Helpers the readers share: open by magic bytes, numbered lines, safe parsing, typed fields.

A reader's per-row builder calls :func:`get_id`, :func:`get_float`, ... which raise
:class:`RowError` carrying a :class:`BadRow`; :func:`records` turns that into a yielded
``(Location, BadRow)`` so that one bad row never stops the file.
"""

from __future__ import annotations

import ast
import contextlib
import gzip
import html
import json
import math
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from steerrec.data.readers.base import BadRow, DataError, Location, Record, Row

GZIP_MAGIC = b"\x1f\x8b"


class RowError(Exception):
    """Raised inside a row builder; :func:`records` yields its `bad` instead of a record."""

    def __init__(self, reason: str, field: str | None = None, detail: str = ""):
        super().__init__(f"{reason} {field or ''} {detail}")
        self.bad = BadRow(reason, field, detail)


def open_text(path: str | Path, encoding: str = "utf-8") -> IO[str]:
    """Open `path` for text reading, gunzipping when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
        if magic == GZIP_MAGIC:
            return gzip.open(path, "rt", encoding=encoding, newline="\n")
        return open(path, encoding=encoding, newline="\n")
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror or exc}", Location(str(path), 0)) from exc


def numbered_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[Location, str]]:
    """Non-blank lines of `path` with their 1-based Location, one at a time.

    A truncated or corrupt gzip stream, or bytes that are not `encoding`, raise
    DataError naming the file and the line being read.
    """
    number = 0
    with open_text(path, encoding) as handle:
        while True:
            try:
                line = handle.readline()
            except (EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
                raise DataError(f"unreadable ({type(exc).__name__}: {exc})", Location(str(path), number + 1)) from exc
            if not line:
                return
            number += 1
            if line.strip():
                yield Location(str(path), number), line.rstrip("\r\n")


def parse_json(text: str) -> dict[str, Any] | BadRow:
    """One JSON object, or BadRow(malformed_json / not_an_object)."""
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return BadRow("malformed_json", detail=str(exc)[:200])
    return value if isinstance(value, dict) else BadRow("not_an_object", detail=type(value).__name__)


def parse_literal(text: str) -> dict[str, Any] | BadRow:
    """One Python-literal dict via ast.literal_eval (never eval), falling back to JSON.

    The UCSD Amazon 2014 metadata and Steam files are Python literals; re-serialized
    copies of them are strict JSON (``true``/``null``), which literal_eval rejects.
    Anything else, a function call included, is a BadRow(malformed_literal).
    """
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        fallback = parse_json(text)
        if isinstance(fallback, dict):
            return fallback
        return BadRow("malformed_literal", detail=f"{type(exc).__name__}: {str(exc)[:200]}")
    return value if isinstance(value, dict) else BadRow("not_an_object", detail=type(value).__name__)


def delimited(separator: str, names: list[str]) -> Callable[[str], dict[str, Any] | BadRow]:
    """A parser of `separator`-joined lines into a dict keyed by `names` (exact field count)."""

    def parse(text: str) -> dict[str, Any] | BadRow:
        parts = text.split(separator)
        if len(parts) != len(names):
            detail = f"expected {len(names)} fields joined by {separator!r}, found {len(parts)}"
            return BadRow("wrong_field_count", detail=detail)
        return dict(zip(names, parts))

    return parse


def records(
    path: str | Path,
    parse: Callable[[str], dict[str, Any] | BadRow],
    build: Callable[[dict[str, Any]], Record],
    encoding: str = "utf-8",
) -> Iterator[Row]:
    """Each line of `path` parsed by `parse` and turned into a record by `build`."""
    for location, line in numbered_lines(path, encoding):
        obj = parse(line)
        if isinstance(obj, BadRow):
            yield location, obj
            continue
        try:
            yield location, build(obj)
        except RowError as exc:
            yield location, exc.bad


# ---- typed fields ---------------------------------------------------------------------
def _missing(obj: dict[str, Any], name: str) -> bool:
    return name not in obj or obj[name] is None


def get_id(obj: dict[str, Any], name: str) -> str:
    """A required identifier as a non-empty string (integers are accepted and converted)."""
    if _missing(obj, name):
        raise RowError("missing_field", name)
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RowError("wrong_type", name, f"expected a string id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise RowError("missing_field", name, "empty")
    return text


def to_float(value: Any, name: str) -> float:
    """A finite number, or a string holding one; anything else is wrong_type."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None or not math.isfinite(number):
        raise RowError("wrong_type", name, f"expected a number, got {str(value)[:50]!r}")
    return number


def get_float(obj: dict[str, Any], name: str, required: bool = True) -> float | None:
    """A number (required: missing_field when absent; optional: None when absent)."""
    if _missing(obj, name):
        if required:
            raise RowError("missing_field", name)
        return None
    return to_float(obj[name], name)


def get_int(obj: dict[str, Any], name: str) -> int:
    """A required whole number (int, integral float, or digit string)."""
    if _missing(obj, name):
        raise RowError("missing_field", name)
    number = to_float(obj[name], name)
    if not number.is_integer():
        raise RowError("wrong_type", name, f"expected a whole number, got {obj[name]!r}")
    return int(number)


def get_text(obj: dict[str, Any], name: str) -> str | None:
    """Optional text: None when absent; numbers are converted; other types are wrong_type."""
    if _missing(obj, name):
        return None
    value = obj[name]
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RowError("wrong_type", name, f"expected text, got {type(value).__name__}")


def get_list(obj: dict[str, Any], name: str) -> list[Any]:
    """Optional list: [] when absent; a lone string becomes a one-element list."""
    if _missing(obj, name):
        return []
    value = obj[name]
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, (list, tuple)):
        return list(value)
    raise RowError("wrong_type", name, f"expected a list, got {type(value).__name__}")


# ---- cleaning -------------------------------------------------------------------------
# a tag, an unclosed one at the end, or the tail of one cut at the start (` Magazines" />`)
_TAG = re.compile(r"</?[A-Za-z!][^<>]*(?:>|$)|^[^<>\"]*\"\s*/?>")
_SPACE = re.compile(r"\s+")
_MONEY = re.compile(r"^\$?\s*([0-9][0-9,]*(?:\.[0-9]+)?)$")


def clean_text(text: str | None) -> str:
    """Text without HTML tags (cut ones included) or entities, with spaces collapsed."""
    if not text:
        return ""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def parse_price(value: Any) -> float | None:
    """A price from a number or a string like "$1,299.99"; None for "", ranges and junk."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _MONEY.match(value.strip())
        if match:
            return float(match.group(1).replace(",", ""))
    return None


def unique(values: Iterable[Any]) -> list[str]:
    """Non-empty strings of `values`, stripped, first occurrence kept, order kept."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and value.strip():
            seen.setdefault(value.strip(), None)
    return list(seen)


def jsonable(extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` without empty values, with tuples/sets made lists so json.dumps accepts it."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if value in (None, "", [], {}):
            continue
        out[str(key)] = list(value) if isinstance(value, (tuple, set)) else value
    return out


# ---- one-document JSON files ------------------------------------------------------------
