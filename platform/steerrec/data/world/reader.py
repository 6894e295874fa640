"""The world as a Reader (steerrec.data.readers.base), so the shared ingest treats it
like any public format; `truth` is the table prepare writes as truth.parquet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property

import pyarrow as pa

from steerrec.data.readers.base import Location, Row
from steerrec.data.world.generator import World, WorldConfig, generate


class WorldReader:
    """Records of the world generated from `cfg` (generated once, on first use)."""

    format = "world"
    synthetic_timestamps = False
    implicit_feedback = False
    needs_input = False

    def __init__(self, cfg: WorldConfig | None = None):
        self.cfg = cfg if cfg is not None else WorldConfig()

    @cached_property
    def world(self) -> World:
        return generate(self.cfg)

    @property
    def truth(self) -> pa.Table:
        """schema.TRUTH rows for every (user_id, t)."""
        return self.world.truth

    @property
    def source(self) -> str:
        return f"<world seed={self.cfg.seed}>"

    def files(self) -> list[str]:
        return []

    def interactions(self) -> Iterator[Row]:
        yield from self._rows(self.world.interactions)

    def items(self) -> Iterator[Row]:
        for location, record in self._rows(self.world.items):
            record["extra"] = json.loads(record["extra"]) if record["extra"] else {}
            yield location, record

    def _rows(self, table: pa.Table) -> Iterator[Row]:
        source = self.source
        for number, record in enumerate(table.to_pylist(), start=1):
            yield Location(source, number), record
