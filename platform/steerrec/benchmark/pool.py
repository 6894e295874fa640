"""Preferences as the benchmark uses them: P_u^(t) by key, and the pool P of all statements.

    pool = PreferencePool.from_table(read_preferences("world/truth.parquet"))
    pool.ids("u0001", 3)     # indices into pool.texts of P_u^(3), in statement order
    pool.texts               # every distinct statement once (the pool P of Eq. 4)

Statements are deduplicated, so each is embedded once; `texts` is in first-seen order
after sorting the keys by (user_id, t), which makes every index deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steerrec.data.schema import SchemaError

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass
class PreferencePool:
    texts: list[str]  # distinct statements
    users: list[str]  # key of row r: (users[r], ts[r]), sorted by user then t
    ts: np.ndarray  # [R] int
    offsets: np.ndarray  # [R + 1]: row r's statements are flat[offsets[r]:offsets[r + 1]]
    flat: np.ndarray  # indices into texts
    rows: dict[tuple[str, int], int]  # (user_id, t) -> row

    @classmethod
    def from_table(cls, table: pa.Table, source: str = "preferences") -> PreferencePool:
        """From a table with user_id, t, preferences (list of strings); one row per key."""
        table = table.select(["user_id", "t", "preferences"]).sort_by([("user_id", "ascending"), ("t", "ascending")])
        users = table.column("user_id").to_pylist()
        ts = table.column("t").to_numpy().astype(np.int64)
        rows: dict[tuple[str, int], int] = {}
        for r, key in enumerate(zip(users, ts.tolist())):
            if key in rows:
                raise SchemaError(f"{source}: key (user_id={key[0]!r}, t={key[1]}) appears twice")
            rows[key] = r
        lists = pc.fill_null(table.column("preferences"), pa.scalar([], pa.list_(pa.string()))).combine_chunks()
        values = lists.flatten()
        if values.null_count:
            raise SchemaError(f"{source}: column 'preferences' holds {values.null_count} null statement(s)")
        unique = pc.unique(values)
        flat = pc.index_in(values, value_set=unique).to_numpy().astype(np.int64)
        offsets = lists.offsets.to_numpy().astype(np.int64)
        offsets = offsets - offsets[0]
        return cls(unique.to_pylist(), users, ts, offsets, flat, rows)

    def __len__(self) -> int:
        return len(self.texts)

    def ids(self, user_id: str, t: int) -> np.ndarray:
        """Indices into `texts` of P_u^(t); empty when the key is absent."""
        r = self.rows.get((user_id, int(t)))
        if r is None:
            return _EMPTY
        return self.flat[self.offsets[r] : self.offsets[r + 1]]

    def statements(self, user_id: str, t: int) -> list[str]:
        """P_u^(t) as text (empty when the key is absent)."""
        return [self.texts[i] for i in self.ids(user_id, t)]
