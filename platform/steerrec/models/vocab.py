"""Semantic-ID token vocabulary: (level, code) <-> token id, items and histories as tokens.

An item's semantic ID is L codes, one per level (3 RQ-VAE levels of 256 codes and a
4th collision code in the paper's setting, Mender App. A.1). Each level has its own
token range, so the same code at two levels is two tokens:

    pad=0, bos=1 (decoder start), eos=2, level 0 codes at 3..3+K0-1, level 1 after, ...
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD = 0
BOS = 1
EOS = 2
N_SPECIAL = 3


class SemanticIdVocab:
    """Token ids for L-level semantic IDs with per-level offsets after pad/bos/eos."""

    def __init__(self, codebook_sizes: Sequence[int]) -> None:
        sizes = list(codebook_sizes)
        if not sizes:
            raise ValueError("codebook_sizes must name at least one level, got []")
        for level, size in enumerate(sizes):
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
                raise ValueError(f"codebook_sizes[{level}] must be an int >= 1, got {size!r}")
        self.codebook_sizes = [int(s) for s in sizes]
        self.offsets = [N_SPECIAL + int(x) for x in np.cumsum([0] + self.codebook_sizes[:-1])]
        self.pad, self.bos, self.eos = PAD, BOS, EOS

    @property
    def n_levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def size(self) -> int:
        """Number of token ids (the decoder's output width)."""
        return N_SPECIAL + sum(self.codebook_sizes)

    def token(self, level: int, code: int) -> int:
        self._check_code(level, code)
        return self.offsets[level] + code

    def code(self, token: int) -> tuple[int, int]:
        """(level, code) of a code token; special tokens raise."""
        for level in reversed(range(self.n_levels)):
            if token >= self.offsets[level]:
                code = token - self.offsets[level]
                if code < self.codebook_sizes[level]:
                    return level, code
                break
        raise ValueError(f"token {token} is not a semantic-ID code token (vocab size {self.size})")

    def level_range(self, level: int) -> tuple[int, int]:
        """[start, stop) of the token ids of `level`."""
        start = self.offsets[level]
        return start, start + self.codebook_sizes[level]

    def encode_items(self, codes: np.ndarray) -> np.ndarray:
        """Codes [n, L] -> tokens [n, L]; a code outside its codebook raises naming row and level."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.n_levels:
            raise ValueError(f"codes must have shape [n, {self.n_levels}], got {list(codes.shape)}")
        sizes = np.asarray(self.codebook_sizes)
        bad = (codes < 0) | (codes >= sizes[None, :])
        if bad.any():
            row, level = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"codes row {row}, level {level}: code {int(codes[row, level])} outside "
                f"[0, {self.codebook_sizes[level]})"
            )
        return (codes + np.asarray(self.offsets)[None, :]).astype(np.int64)

    def decode_items(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens [n, L] -> codes [n, L]; the inverse of encode_items."""
        tokens = np.asarray(tokens, dtype=np.int64)
        codes = tokens - np.asarray(self.offsets)[None, :]
        sizes = np.asarray(self.codebook_sizes)
        bad = (codes < 0) | (codes >= sizes[None, :])
        if bad.any():
            row, level = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"tokens row {row}, level {level}: {int(tokens[row, level])} is not a level-{level} token")
        return codes

    def encode_history(
        self, histories: Sequence[Sequence[int]], item_tokens: np.ndarray, max_history: int
    ) -> np.ndarray:
        """Item-row histories -> tokens [B, max_history * L], L tokens per item, right-padded.

        Each history keeps its most recent `max_history` items (left truncation), oldest first.
        """
        if max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {max_history}")
        item_tokens = np.asarray(item_tokens, dtype=np.int64)
        n_levels = self.n_levels
        out = np.full((len(histories), max_history * n_levels), PAD, dtype=np.int64)
        for b, history in enumerate(histories):
            kept = list(history)[-max_history:]
            if kept:
                out[b, : len(kept) * n_levels] = item_tokens[np.asarray(kept, dtype=np.int64)].reshape(-1)
        return out

    def _check_code(self, level: int, code: int) -> None:
        if not 0 <= level < self.n_levels:
            raise ValueError(f"level {level} outside [0, {self.n_levels})")
        if not 0 <= code < self.codebook_sizes[level]:
            raise ValueError(f"level {level}: code {code} outside [0, {self.codebook_sizes[level]})")


def item_lookup(item_tokens: np.ndarray) -> dict[tuple[int, ...], int]:
    """Token tuple -> item row, for mapping generated IDs back to items; duplicates raise."""
    lookup: dict[tuple[int, ...], int] = {}
    for row, tokens in enumerate(np.asarray(item_tokens, dtype=np.int64).tolist()):
        key = tuple(tokens)
        if key in lookup:
            raise ValueError(f"item rows {lookup[key]} and {row} share the semantic ID {key}")
        lookup[key] = row
    return lookup


def item_tokens_to_index(tokens: np.ndarray, lookup: dict[tuple[int, ...], int]) -> np.ndarray:
    """Generated tokens [..., L] -> item rows [...]; -1 where the ID names no item."""
    tokens = np.asarray(tokens, dtype=np.int64)
    flat = tokens.reshape(-1, tokens.shape[-1]).tolist()
    rows = np.fromiter((lookup.get(tuple(t), -1) for t in flat), dtype=np.int64, count=len(flat))
    return rows.reshape(tokens.shape[:-1])
