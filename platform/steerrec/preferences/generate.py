"""The generation loop shared by preference approximation and item summaries.

Requests (key columns + `messages`) go through an engine processor on Ray Data; each
reply is parsed against the output contract; valid rows are written as whole shards as
they stream back; invalid rows are retried with a new seed up to `max_retries` times,
then written to the failures table with their reason. One bad row never stops the job,
and a rerun skips every key already written.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from steerrec.preferences.shards import FAILURES_FILE, ShardWriter, done_keys
from steerrec.preferences.validate import Parsed

logger = logging.getLogger(__name__)


@dataclass
class GenerationConfig:
    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 256
    max_retries: int = 2  # extra attempts, each with a new seed
    shard_rows: int = 256  # rows per shard (and per streamed batch)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"generation.max_retries must be >= 0, got {self.max_retries}")
        if self.shard_rows < 1:
            raise ValueError(f"generation.shard_rows must be >= 1, got {self.shard_rows}")


def row_seed(base: int, key: tuple, attempt: int) -> int:
    """A stable per-row seed: the same key and attempt always sample the same way."""
    return zlib.crc32(repr((base, key, attempt)).encode()) & 0x7FFFFFFF


def generate(
    requests: list[dict[str, Any]],
    key_columns: list[str],
    processor: Callable,
    parse: Callable[[str], Parsed],
    to_row: Callable[[dict, list[str]], dict],
    out: str,
    schema: pa.Schema,
    failure_schema: pa.Schema,
    cfg: GenerationConfig,
    json_schema: dict,
) -> dict[str, Any]:
    """Run every request not yet done; returns counts for the manifest."""
    import ray.data

    from steerrec.llm.base import make_sampling_params

    writer = ShardWriter(out, schema)
    done = done_keys(out, key_columns)
    pending = [r for r in requests if tuple(r[c] for c in key_columns) not in done]
    stats = {
        "requested": len(requests),
        "skipped_done": len(requests) - len(pending),
        "written": 0,
        "failed": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "attempts": 0,
    }
    logger.info("%d of %d keys already written; generating %d", stats["skipped_done"], len(requests), len(pending))
    failures: list[dict] = []
    start = time.perf_counter()
    first: tuple[float, int] | None = None  # (seconds, rows) when the first batch came back: engine start + ramp
    for attempt in range(cfg.max_retries + 1):
        if not pending:
            break
        rows = []
        for r in pending:
            key = tuple(r[c] for c in key_columns)
            params = make_sampling_params(
                cfg.temperature, cfg.top_p, cfg.max_tokens, row_seed(cfg.seed, key, attempt), json_schema
            )
            rows.append({**{c: r[c] for c in key_columns}, "messages": r["messages"], "sampling_params": params})
        ds = processor(ray.data.from_items(rows))
        retry, last = [], attempt == cfg.max_retries
        by_key = {tuple(r[c] for c in key_columns): r for r in pending}
        for batch in ds.iter_batches(batch_size=cfg.shard_rows, batch_format="pandas"):
            if first is None:
                first = (time.perf_counter() - start, len(batch))
            good = []
            for rec in batch.to_dict("records"):
                key = tuple(_plain(rec[c]) for c in key_columns)
                tin, tout = int(rec.get("num_input_tokens") or 0), int(rec.get("num_generated_tokens") or 0)
                stats["tokens_in"] += tin
                stats["tokens_out"] += tout
                stats["attempts"] += 1
                parsed = parse(rec.get("generated_text"))
                if parsed.ok:
                    good.append(
                        to_row({**dict(zip(key_columns, key)), "tokens_in": tin, "tokens_out": tout}, parsed.values)
                    )
                elif last:
                    failures.append(
                        {
                            **dict(zip(key_columns, key)),
                            "reason": parsed.reason,
                            "generated_text": rec.get("generated_text"),
                            "attempts": attempt + 1,
                        }
                    )
                else:
                    retry.append(by_key[key])
            writer.write(good)
            stats["written"] += len(good)
            logger.info("attempt %d: %d written so far, %d to retry", attempt, stats["written"], len(retry))
        pending = retry
    stats["failed"] = len(failures)
    stats["seconds"] = round(time.perf_counter() - start, 3)
    # the steady rate excludes these: (attempts - first_batch_rows) / (seconds - first_batch_seconds)
    stats["first_batch_seconds"], stats["first_batch_rows"] = (round(first[0], 3), first[1]) if first else (0.0, 0)
    failure_rows = [to_row(f, []) | {k: f[k] for k in ("reason", "generated_text", "attempts")} for f in failures]
    writer.write_table(pa.Table.from_pylist(failure_rows, schema=failure_schema), FAILURES_FILE)
    return stats


def _plain(value: Any) -> Any:
    """numpy scalars from pandas back to Python values, so keys compare equal."""
    return value.item() if hasattr(value, "item") else value
