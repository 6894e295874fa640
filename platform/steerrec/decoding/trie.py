"""Prefix trie over semantic IDs, laid out as tensors for batched constrained decoding.

An item's semantic ID is a tuple of L codes; level l has its own token range in the
decoder vocabulary, token = offsets[l] + code. The trie's nodes are numbered
breadth-first and, within a level, in lexicographic order of their prefixes (root = 0),
which gives two flat arrays that answer every lookup for a whole batch of beams:

- children of node n are the contiguous ids child_start[n] .. child_start[n] +
  child_count[n] - 1, so the children of M beams at depth d are one gather of
  [M, max_children[d]] ids: beam search scores only those, never a [M, V] mask;
- edge_key[i - 1] = parent(i) * V + token(i) is strictly increasing in i, so the child
  reached by a token is one `searchsorted`, O(M log n_nodes).

No lookup scans the codebook or the catalog; memory is O(n_items * L).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)


def level_offsets(codebook_sizes: Sequence[int], start: int = 0) -> list[int]:
    """Token offset of each level when levels take consecutive ranges from `start`.

    >>> level_offsets([256, 256, 256, 8], start=2)
    [2, 258, 514, 770]
    """
    offsets, next_free = [], start
    for size in codebook_sizes:
        offsets.append(next_free)
        next_free += int(size)
    return offsets


def _build_nodes(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes of the trie of lexicographically sorted, distinct token rows [n, L].

    Returns node_token and node_parent [n_nodes] (root first, then depth by depth in
    prefix order) and the leaf node of each row [n].
    """
    node_token, node_parent = [np.array([-1])], [np.array([-1])]
    row_node = np.zeros(len(ordered), dtype=np.int64)  # node of each row at the current depth
    next_id = 1
    for level in range(ordered.shape[1]):
        new = np.ones(len(ordered), dtype=bool)  # the row starts a new prefix at this depth
        new[1:] = np.any(ordered[1:, : level + 1] != ordered[:-1, : level + 1], axis=1)
        starts = np.flatnonzero(new)
        node_token.append(ordered[starts, level])
        node_parent.append(row_node[starts])
        row_node = next_id + np.cumsum(new) - 1
        next_id += len(starts)
    as_array = lambda parts: np.concatenate(parts).astype(np.int64)
    return as_array(node_token), as_array(node_parent), row_node


class PrefixTrie:
    """The catalog's semantic IDs as a token trie; build it with `from_codes`.

    Tensor methods take node ids [M] (int64, -1 for a dead beam) on `self.device`.
    """

    def __init__(
        self,
        node_token: torch.Tensor,  # [n_nodes] token on the edge into the node (-1 for the root)
        node_parent: torch.Tensor,  # [n_nodes] parent id (-1 for the root)
        node_item: torch.Tensor,  # [n_nodes] item index at depth L, else -1
        item_tokens: torch.Tensor,  # [n_items, L] each item's token sequence
        vocab_size: int,
    ) -> None:
        self.node_token = node_token
        self.node_parent = node_parent
        self.node_item = node_item
        self.item_tokens = item_tokens
        self.vocab_size = int(vocab_size)
        self.depth = int(item_tokens.shape[1])
        n_nodes = node_token.shape[0]
        parents = node_parent[1:]  # non-decreasing by construction
        self.child_count = torch.bincount(parents, minlength=n_nodes)  # [n_nodes]
        ids = torch.arange(n_nodes, device=parents.device)
        self.child_start = torch.searchsorted(parents, ids) + 1  # [n_nodes]; parents[i] is node i + 1's
        self.edge_key = parents * self.vocab_size + node_token[1:]  # [n_nodes - 1], increasing
        depth = torch.zeros(n_nodes, dtype=torch.long, device=parents.device)
        for _ in range(self.depth):  # BFS order: a parent's depth is final before its children's
            depth[1:] = depth[parents] + 1
        widest = torch.zeros(self.depth + 1, dtype=torch.long, device=parents.device)
        widest.scatter_reduce_(0, depth, self.child_count, reduce="amax")
        self.max_children = widest.tolist()  # [L + 1] most children of a node at each depth
        # BFS numbering: the nodes at depth d are ids level_start[d] .. level_start[d + 1] - 1
        self.level_start = torch.searchsorted(depth, torch.arange(self.depth + 2, device=depth.device)).tolist()

    @classmethod
    def from_codes(cls, codes: np.ndarray, offsets: Sequence[int], vocab_size: int | None = None) -> PrefixTrie:
        """Trie of `codes` [n_items, L] (item i = row i) with token = offsets[l] + code.

        `vocab_size` defaults to the largest token + 1. Raises ValueError on an empty
        catalog, negative codes, tokens outside the vocabulary, or two items sharing an ID.
        """
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
            raise ValueError(f"codes must be a non-empty [n_items, L] int array, got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
        if len(offsets) != codes.shape[1]:
            raise ValueError(f"offsets has {len(offsets)} entries, codes has L={codes.shape[1]} levels")
        if min(offsets) < 0:
            raise ValueError(f"offsets must be >= 0, got {list(offsets)}")
        bad = np.argwhere(codes < 0)
        if len(bad):
            row, level = bad[0]
            raise ValueError(f"codes row {row} level {level}: negative code {codes[row, level]}")
        tokens = codes.astype(np.int64) + np.asarray(offsets, dtype=np.int64)  # [n, L]
        vocab = int(tokens.max()) + 1 if vocab_size is None else int(vocab_size)
        bad = np.argwhere(tokens >= vocab)
        if len(bad):
            row, level = bad[0]
            raise ValueError(f"codes row {row} level {level}: token {tokens[row, level]} is outside vocab_size {vocab}")
        order = np.lexsort(tokens.T[::-1])  # items in lexicographic order of their tokens
        ordered = tokens[order]
        same = np.all(ordered[1:] == ordered[:-1], axis=1)
        if same.any():
            i = int(np.flatnonzero(same)[0])
            raise ValueError(
                f"codes rows {order[i]} and {order[i + 1]} share the semantic ID {ordered[i].tolist()}; "
                "IDs must be unique (add a collision level)"
            )
        node_token, node_parent, leaf = _build_nodes(ordered)
        node_item = np.full(len(node_token), -1, dtype=np.int64)
        node_item[leaf] = order
        logger.debug("trie of %d items, depth %d: %d nodes", len(order), tokens.shape[1], len(node_token))
        return cls(
            torch.from_numpy(node_token),
            torch.from_numpy(node_parent),
            torch.from_numpy(node_item),
            torch.from_numpy(tokens),
            vocab,
        )

    @classmethod
    def from_sequences(
        cls, sequences: Sequence[Sequence[int]], vocab_size: int, end_token: int, pad_token: int
    ) -> PrefixTrie:
        """Trie of variable-length token IDs (textual IDs): row i = sequences[i] + end + pads.

        Every ID gets `end_token` and is right-padded with `pad_token` to the longest ID + 1,
        so the trie keeps one depth: an ID that is a prefix of another ("red lip" and "red
        lip gloss") still ends at its own leaf, reached through its end token. After the end
        the only child is the pad; `constrained_beam_search(..., pad_token=pad)` scores those
        steps 0, so a beam's score stays its ID's log-prob (end token included).

        Raises ValueError on an empty ID or one that holds the end or pad token.
        """
        if not sequences:
            raise ValueError("sequences must name at least one ID, got none")
        width = max(len(s) for s in sequences) + 1
        rows = np.full((len(sequences), width), pad_token, dtype=np.int64)
        for i, seq in enumerate(sequences):
            seq = [int(t) for t in seq]
            if not seq or end_token in seq or pad_token in seq:
                raise ValueError(f"sequences[{i}] = {seq}: an ID must be non-empty, without end or pad tokens")
            rows[i, : len(seq) + 1] = [*seq, end_token]
        return cls.from_codes(rows, [0] * width, vocab_size)

    @property
    def n_items(self) -> int:
        return int(self.item_tokens.shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.node_token.shape[0])

    @property
    def device(self) -> torch.device:
        return self.node_token.device

    def to(self, device: torch.device | str) -> PrefixTrie:
        """This trie with its tensors on `device` (self when already there)."""
        if torch.device(device) == self.device:
            return self
        move = lambda t: t.to(device)
        return PrefixTrie(
            move(self.node_token),
            move(self.node_parent),
            move(self.node_item),
            move(self.item_tokens),
            self.vocab_size,
        )

    def root(self, n: int) -> torch.Tensor:
        """[n] root node ids."""
        return torch.zeros(n, dtype=torch.long, device=self.device)

    def children(self, nodes: torch.Tensor, depth: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Child node ids [M, C] of each node and a validity mask [M, C].

        C is the most children a node at `depth` has (all `nodes` must be at that depth,
        as the beams of one search step are), or at any depth when `depth` is None. Row m
        holds node m's children in token order, then padding (valid False; its id is a
        real node, so it can be indexed, but means nothing). A dead beam (-1) has none.
        """
        nodes = nodes.reshape(-1)
        width = max(self.max_children) if depth is None else self.max_children[depth]
        safe = nodes.clamp(min=0)
        within = torch.arange(max(width, 1), device=nodes.device)  # [C]
        counts = torch.where(nodes >= 0, self.child_count[safe], torch.zeros_like(safe))  # [M]
        valid = within[None, :] < counts[:, None]  # [M, C]
        ids = (self.child_start[safe][:, None] + within[None, :]).clamp(max=self.n_nodes - 1)
        return ids, valid

    def node_potential(self, item_bias: torch.Tensor) -> torch.Tensor:
        """[B, n_nodes]: for each node, the largest item_bias [B, n_items] in its subtree.

        -inf where every item below the node is banned. Beam search adds
        potential(child) - potential(parent) at each step, so a beam's score carries the
        best bias still reachable from its prefix and ends as log-prob + its item's bias.
        """
        if item_bias.ndim != 2 or item_bias.shape[1] != self.n_items:
            raise ValueError(f"item_bias must be [B, {self.n_items}], got shape {tuple(item_bias.shape)}")
        B = item_bias.shape[0]
        phi = torch.full((B, self.n_nodes), float("-inf"), dtype=item_bias.dtype, device=item_bias.device)
        leaves = torch.arange(self.level_start[self.depth], self.n_nodes, device=self.device)
        phi[:, leaves] = item_bias[:, self.node_item[leaves]]
        for depth in range(self.depth, 0, -1):
            nodes = slice(self.level_start[depth], self.level_start[depth + 1])
            parents = self.node_parent[nodes].expand(B, -1)
            phi.scatter_reduce_(1, parents, phi[:, nodes].clone(), reduce="amax")
        return phi

    def allowed_mask(self, nodes: torch.Tensor) -> torch.Tensor:
        """[M, V] bool: True where the token extends the beam's prefix to a catalog prefix."""
        ids, valid = self.children(nodes)
        mask = torch.zeros(ids.shape[0], self.vocab_size + 1, dtype=torch.bool, device=ids.device)
        tokens = torch.where(valid, self.node_token[ids], self.vocab_size)  # padding -> spare column
        mask.scatter_(1, tokens, True)
        return mask[:, : self.vocab_size]

    def advance(self, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """[M] child reached from each node by its token, -1 where there is none."""
        nodes, tokens = nodes.reshape(-1), tokens.reshape(-1)
        if self.edge_key.numel() == 0:
            return torch.full_like(nodes, -1)
        ok = (nodes >= 0) & (tokens >= 0) & (tokens < self.vocab_size)
        key = nodes * self.vocab_size + tokens  # [M]
        pos = torch.searchsorted(self.edge_key, key).clamp(max=self.edge_key.shape[0] - 1)
        ok &= self.edge_key[pos] == key
        return torch.where(ok, pos + 1, torch.full_like(pos, -1))

    def item_of(self, nodes: torch.Tensor) -> torch.Tensor:
        """[M] item index at each node (a complete ID), -1 elsewhere or for -1."""
        nodes = nodes.reshape(-1)
        items = self.node_item[nodes.clamp(min=0)]
        return torch.where(nodes >= 0, items, torch.full_like(items, -1))

    def items_of_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """[M] item index of each token sequence [M, L], -1 for a sequence that is no item."""
        if tokens.ndim != 2 or tokens.shape[1] != self.depth:
            raise ValueError(f"tokens must be [M, {self.depth}], got shape {tuple(tokens.shape)}")
        nodes = self.root(tokens.shape[0]).to(tokens.device)
        for level in range(self.depth):
            nodes = self.advance(nodes, tokens[:, level])
        return self.item_of(nodes)

    def lookup(self, prefix: Sequence[int]) -> int:
        """Node id of a token prefix, or -1 when no item starts with it."""
        node = torch.zeros(1, dtype=torch.long, device=self.device)
        for token in prefix:
            node = self.advance(node, torch.tensor([int(token)], device=self.device))
        return int(node.item())

    def allowed_next(self, prefix: Sequence[int]) -> list[int]:
        """Tokens that may follow `prefix` (empty at depth L or for a foreign prefix)."""
        node = self.lookup(prefix)
        if node < 0:
            return []
        start, count = int(self.child_start[node]), int(self.child_count[node])
        return self.node_token[start : start + count].tolist()
