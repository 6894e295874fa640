"""IDGenRec's batches: prompts with the current textual IDs, soft-ID slots, generator targets.

    data = IDGenRecData(item_ids, texts, titles, Split(histories, targets), Split(...))
    batch = rec_batch(tokenizer, data.train, ids, rows, templates_for(len(rows), seed), max_prompt_tokens)

Examples are item rows (catalog order): a history list and a target row. IDs are token
tuples in item order (steerrec.ids.textual); the target is the next item's ID + </s>.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from steerrec.models.idgenrec_text import EOS_ID, PAD_ID, TEMPLATES, encode_prompt

TokenId = tuple[int, ...]


@dataclass
class Split:
    histories: list[list[int]]  # item rows, oldest first
    targets: np.ndarray  # [N] item rows

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if len(self.histories) != len(self.targets):
            raise ValueError(f"{len(self.histories)} histories but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class IDGenRecData:
    """The catalog's text and the examples; `texts[i]` is what the generator reads for item i
    (an empty text is replaced by the item's id string, counted in `empty_text`)."""

    item_ids: list[str]
    texts: list[str]
    titles: list[str]
    train: Split
    valid: Split

    def __post_init__(self) -> None:
        if not (len(self.item_ids) == len(self.texts) == len(self.titles)):
            raise ValueError(f"item_ids, texts, titles differ in length: {len(self.item_ids)}, {len(self.texts)}")
        self.empty_text = sum(not (t or "").strip() for t in self.texts)
        self.texts = [t if (t or "").strip() else i for t, i in zip(self.texts, self.item_ids)]
        self.titles = [t if (t or "").strip() else i for t, i in zip(self.titles, self.item_ids)]
        n = len(self.item_ids)
        for name, split in (("train", self.train), ("valid", self.valid)):
            rows = [r for h in split.histories for r in h] + split.targets.tolist()
            bad = next((r for r in rows if not 0 <= r < n), None)
            if bad is not None:
                raise ValueError(f"{name}: item row {bad} outside the catalog of {n} items")


def padded(rows: Sequence[Sequence[int]], value: int = PAD_ID) -> torch.Tensor:
    """[len(rows), longest] right-padded long tensor."""
    width = max(1, max((len(r) for r in rows), default=1))
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
    return out


def templates_for(n: int, seed: int, fixed: int | None = None) -> np.ndarray:
    """A template per example: drawn uniformly (Sec. 2.1), or `fixed` for evaluation."""
    if fixed is not None:
        return np.full(n, fixed, dtype=np.int64)
    return np.random.default_rng(seed).integers(0, len(TEMPLATES), n)


def rec_batch(
    tokenizer: Any,
    split: Split,
    ids: Sequence[TokenId],
    rows: np.ndarray,
    templates: np.ndarray,
    max_prompt_tokens: int,
    text_tokens: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Prompts of examples `rows` (input_ids, mask [B, S]), labels [B, T] (target ID + </s>,
    -100 padding) and `item` [B]. With `text_tokens` (the ID-generator phase) it adds the
    soft-ID slots and the history items' text and current IDs (IDGenRec.soft_loss)."""
    prompts, slot_items, slot_tokens, used = [], [], [], {}
    for r, template in zip(rows, templates):
        history = split.histories[r]
        tokens, item_slot, token_slot = encode_prompt(
            tokenizer, int(template), [ids[h] for h in history], max_prompt_tokens
        )
        prompts.append(tokens)
        # history index -> batch item index (the distinct history items of the batch)
        slot_items.append([used.setdefault(history[s], len(used)) if s >= 0 else -1 for s in item_slot])
        slot_tokens.append(token_slot)
    input_ids = padded(prompts)
    labels = padded([[*ids[split.targets[r]], EOS_ID] for r in rows], -100)
    batch = {"input_ids": input_ids, "mask": input_ids != PAD_ID, "labels": labels}
    batch["item"] = torch.as_tensor(split.targets[rows])
    if text_tokens is not None:
        items = list(used)  # item rows in batch-index order
        batch["slot_item"] = padded(slot_items, -1)
        batch["slot_token"] = padded(slot_tokens, -1)
        text = padded([text_tokens[i] for i in items])
        batch["item_text"], batch["item_mask"] = text, text != PAD_ID
        batch["item_labels"] = padded([ids[i] for i in items], -100)
    return batch


def title_batch(
    text_tokens: Sequence[Sequence[int]], title_tokens: Sequence[Sequence[int]], rows: np.ndarray
) -> dict[str, Any]:
    """Generator pre-training on item text: input the text, target the title's first tokens + </s>."""
    text = padded([text_tokens[i] for i in rows])
    labels = padded([[*title_tokens[i], EOS_ID] for i in rows], -100)
    return {"input_ids": text, "mask": text != PAD_ID, "labels": labels}


def batch_rows(
    n: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    lengths: np.ndarray | None = None,
    buckets: int = 0,
):
    """This rank's example rows, batch by batch (every rank gets as many batches); with
    `lengths` and `buckets` > 1, batches of examples of similar length (train.batch_order)."""
    from steerrec.train.batch_order import batch_indices

    encoded = {"n": n} if lengths is None else {"n": n, "length": lengths}
    return batch_indices(encoded, batch_size, shuffle, seed, rank, world_size, buckets)


def example_lengths(split: Split, ids: Sequence[TokenId]) -> np.ndarray:
    """Each example's history length in ID tokens: the part of its prompt that varies (the
    separators between IDs and the cut at max_prompt_tokens left out: a sort key, not a size)."""
    sizes = np.fromiter((len(t) for t in ids), dtype=np.int64, count=len(ids))
    return np.fromiter((int(sizes[h].sum()) for h in split.histories), dtype=np.int64, count=len(split))


def encode_prompts(
    tokenizer: Any, max_prompt_tokens: int, histories: Sequence[Sequence[int]], codes: np.ndarray
) -> dict[str, Any]:
    """Evaluation prompts (the first template, as validation uses) of `histories` (item rows)
    with the items' IDs from `codes` [n_items, L] (-1 after each ID's end): {"prompt": token
    lists, "length": their lengths}, for steerrec.train.batches.make_batch."""
    if tokenizer is None:
        raise ValueError("idgenrec: encoding prompts needs the run's tokenizer (tokenizer.json)")
    ids = [tuple(int(t) for t in row if t >= 0) for row in codes]
    prompts = [encode_prompt(tokenizer, 0, [ids[h] for h in history], max_prompt_tokens)[0] for history in histories]
    return {"prompt": prompts, "length": np.fromiter(map(len, prompts), dtype=np.int64, count=len(prompts))}
