"""Streaming the key/value pairs of a file that is one JSON document (LC-Rec's X.inter.json)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from steerrec.data.readers._io import open_text
from steerrec.data.readers.base import DataError, Location

_JSON_CHUNK = 1 << 20  # characters read at a time by iter_json_object


def iter_json_object(path: str | Path) -> Iterator[tuple[str, Any]]:
    """The (key, value) pairs of a file holding one top-level JSON object, streamed.

    Memory stays at about one value plus a read chunk; a syntax error raises DataError
    with the file and line.
    """
    decoder = json.JSONDecoder()
    with open_text(path) as handle:
        stream = _JsonStream(str(path), handle, decoder)
        stream.expect("{")
        if stream.peek() == "}":
            return
        while True:
            key = stream.value()
            if not isinstance(key, str):
                stream.fail("expected a string key")
            stream.expect(":")
            yield key, stream.value()
            if stream.expect(",}") == "}":
                return


class _JsonStream:
    """A read-ahead buffer over a text handle with whitespace skipping and raw_decode."""

    def __init__(self, path: str, handle: IO[str], decoder: json.JSONDecoder):
        self.path, self.handle, self.decoder = path, handle, decoder
        self.buffer, self.pos, self.line, self.eof = "", 0, 1, False

    def _more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.handle.read(_JSON_CHUNK)
        except (EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
            self.fail(f"unreadable ({type(exc).__name__}: {exc})")
        if not chunk:
            self.eof = True
            return False
        self.line += self.buffer.count("\n", 0, self.pos)
        self.buffer = self.buffer[self.pos :] + chunk
        self.pos = 0
        return True

    def fail(self, message: str) -> NoReturn:
        line = self.line + self.buffer.count("\n", 0, self.pos)
        raise DataError(message, Location(self.path, line))

    def peek(self) -> str:
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos].isspace():
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._more():
                self.fail("unexpected end of file")

    def expect(self, chars: str) -> str:
        char = self.peek()
        if char not in chars:
            self.fail(f"expected one of {chars!r}, found {char!r}")
        self.pos += 1
        return char

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue
                self.pos = exc.pos
                self.fail(f"malformed JSON: {exc.msg}")
            if end == len(self.buffer) and self._more():
                continue  # a number cut at the chunk's end: decode again with more text
            self.pos = end
            return value
