"""Unique textual item IDs: IDGenRec's diverse ID generation (Algorithm 1, Sec. 2.3).

An ID generator proposes k candidate IDs for an item under a diversity penalty and a length
window (`generate`); the first candidate not yet taken becomes the item's ID. When all k
are taken, the penalty rises by 0.1 up to 1.0, then the window widens from [1, 10) to
[10, 20) tokens with the penalty back at 0.1 (Sec. 3.2). Items are processed one by one in
catalog order, so every ID is checked against all earlier ones. Candidates depend on the
item, the penalty and the window only, not on the IDs taken, so they are generated in
batches without changing the result: the first attempt for a block of items at once, a
later attempt for an item together with the block's later items that are sure to need it
(every candidate of their previous attempt is taken already).

If every attempt fails, the item's `fallback` ID is used (IDGenRec has no such step: its
loop would not end); the report counts those items, and items whose text was empty.

    ids, report = assign_unique_ids(n_items, generate, DiverseIdConfig(), fallback)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

TokenId = tuple[int, ...]
# generate(items, diversity_penalty, min_len, max_len) -> for each item, its candidates in order
Generate = Callable[[Sequence[int], float, int, int], list[list[TokenId]]]


def _windows() -> list[list[int]]:
    return [[1, 10], [10, 20]]


@dataclass
class DiverseIdConfig:
    n_groups: int = 5  # k: the diverse beam search's groups, one candidate ID each
    group_size: int = 1  # beams per group
    penalty_start: float = 0.1
    penalty_step: float = 0.1
    penalty_max: float = 1.0  # the last penalty tried in a window
    windows: list[list[int]] = field(default_factory=_windows)  # [min, max) ID lengths in tokens, in order
    batch_size: int = 64  # items whose first attempt is generated together

    def __post_init__(self) -> None:
        if self.n_groups < 1 or self.group_size < 1 or self.batch_size < 1:
            raise ValueError(
                f"ids.n_groups, ids.group_size and ids.batch_size must be >= 1, got "
                f"{self.n_groups}, {self.group_size}, {self.batch_size}"
            )
        if not 0 <= self.penalty_start <= self.penalty_max or self.penalty_step <= 0:
            raise ValueError(
                f"ids: need 0 <= penalty_start <= penalty_max and penalty_step > 0, got "
                f"{self.penalty_start}, {self.penalty_max}, {self.penalty_step}"
            )
        if not self.windows:
            raise ValueError("ids.windows must name at least one [min, max) length window")
        for window in self.windows:
            if len(window) != 2 or not 1 <= window[0] < window[1]:
                raise ValueError(f"ids.windows: each window is [min, max) with 1 <= min < max, got {window}")

    def penalties(self) -> list[float]:
        """The penalties tried in each window, e.g. 0.1, 0.2, ..., 1.0."""
        out, k = [], 0
        while (value := round(self.penalty_start + k * self.penalty_step, 6)) <= self.penalty_max + 1e-9:
            out.append(value)
            k += 1
        return out

    def attempts(self) -> list[tuple[float, int, int]]:
        """(penalty, min_len, max_len) of each attempt, in Algorithm 1's order."""
        return [(p, lo, hi) for lo, hi in self.windows for p in self.penalties()]


@dataclass
class IdReport:
    """How the IDs were found; shares are of all items."""

    n_items: int
    attempts: list[int]  # per item: 1-based attempt that found its ID (0 = fallback)
    windows: list[int]  # per item: index of the length window that found it (-1 = fallback)
    lengths: list[int]  # per item: ID length in tokens
    empty_text: int = 0  # items whose text was empty (their id string stood in)

    def summary(self) -> dict[str, Any]:
        n = max(self.n_items, 1)
        return {
            "n_items": self.n_items,
            "unique": 1.0,  # assign_unique_ids raises otherwise
            "second_try_share": sum(a != 1 for a in self.attempts) / n,
            "longer_id_share": sum(w != 0 for w in self.windows) / n,
            "fallback_items": sum(a == 0 for a in self.attempts),
            "empty_text_items": self.empty_text,
            "mean_length": sum(self.lengths) / n,
            "max_attempt": max(self.attempts, default=0),
        }


def assign_unique_ids(
    n_items: int,
    generate: Generate,
    cfg: DiverseIdConfig,
    fallback: Callable[[int], TokenId],
    key: Callable[[TokenId], Any] | None = None,
    empty_text: int = 0,
) -> tuple[list[TokenId], IdReport]:
    """One unique ID per item (Algorithm 1): (IDs in item order, report).

    `key` maps an ID to what must be unique (default: the token tuple; pass the decoded
    text to keep the IDs distinct as people read them too). Raises ValueError when an
    item's fallback ID is taken as well, naming the item.
    """
    key = key or (lambda ids: ids)
    attempts = cfg.attempts()
    windows = [w for w, _ in enumerate(cfg.windows) for _ in cfg.penalties()]
    taken: set[Any] = set()
    ids: list[TokenId] = []
    report = IdReport(n_items, [], [], [], empty_text)
    free = lambda candidates: next((c for c in candidates if c and key(tuple(c)) not in taken), None)
    for start in range(0, n_items, cfg.batch_size):
        block = list(range(start, min(start + cfg.batch_size, n_items)))
        tried = {item: [c] for item, c in zip(block, generate(block, *attempts[0]))}  # item -> attempts' candidates
        for pos, item in enumerate(block):
            found, attempt = None, 0
            for attempt, setting in enumerate(attempts, start=1):
                if len(tried[item]) < attempt:
                    # this attempt for the item and for the later items of the block that are sure
                    # to need it too: every candidate of their previous attempt is taken already
                    sure = [j for j in block[pos + 1 :] if len(tried[j]) == attempt - 1 and free(tried[j][-1]) is None]
                    for j, c in zip([item, *sure], generate([item, *sure], *setting)):
                        tried[j].append(c)
                found = free(tried[item][attempt - 1])
                if found is not None:
                    break
            if found is None:
                found, attempt = tuple(fallback(item)), 0
                if key(found) in taken:
                    raise ValueError(
                        f"item {item}: no unique ID in {len(attempts)} attempts, and its fallback is taken"
                    )
                logger.warning("item %d: no unique ID in %d attempts; using its fallback ID", item, len(attempts))
            taken.add(key(tuple(found)))
            ids.append(tuple(found))
            report.attempts.append(attempt)
            report.windows.append(windows[attempt - 1] if attempt else -1)
            report.lengths.append(len(found))
    logger.info("textual IDs: %s", report.summary())
    return ids, report
