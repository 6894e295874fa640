"""Axis 5, history consolidation (Mender Sec. 3.5): every preference of P_u^(t-1) at once.

Each row of sequences.parquet (train, valid and test targets alike) becomes
<P_u^(t-1), history> -> i_t with all of its statements (one to five, as many as there
are) in `preferences`; a row whose key (u, t-1) has none is skipped.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from steerrec.benchmark.axes import CONSOLIDATION_EXAMPLES
from steerrec.benchmark.pool import PreferencePool
from steerrec.benchmark.recommendation import split_tables


def consolidation_examples(sequences: pa.Table, pool: PreferencePool) -> dict[str, pa.Table]:
    """Axis 5 rows (axes.CONSOLIDATION_EXAMPLES) per split, from sequences.parquet rows."""
    users = sequences.column("user_id").to_pylist()
    ts = sequences.column("t").to_numpy().astype(np.int64)
    statements = [pool.statements(u, t - 1) for u, t in zip(users, ts.tolist())]
    keep = np.array([bool(s) for s in statements], dtype=bool)
    kept = sequences.filter(pa.array(keep))
    table = pa.Table.from_arrays(
        [
            kept.column("user_id"),
            kept.column("t"),
            kept.column("history"),
            pa.array([s for s in statements if s], pa.list_(pa.string())),
            kept.column("target"),
        ],
        schema=CONSOLIDATION_EXAMPLES,
    )
    return split_tables(table, kept.column("split").to_pylist())
