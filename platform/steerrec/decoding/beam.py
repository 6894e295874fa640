"""Beam search over semantic IDs: trie-constrained, or free followed by a validity filter.

The model is reached through one callable and the caller owns its state:

    step_fn(tokens: LongTensor [R, cur_len], state) -> (log_probs [R, V], new_state)

R = batch_size at the first call (one beam per example) and batch_size * beam_size
after, rows example-major (row b * beam_size + j is beam j of example b). `tokens` holds
`start_tokens` (e.g. T5's decoder start token, possibly none) followed by the tokens
chosen so far. After each step the search calls `reorder(state, index)` with a LongTensor
index of the rows each new beam continues (an expansion at the first step), e.g.
`lambda s, i: s[i]` for a tensor state; with `reorder=None` the state is passed on as
returned. Scores are sums of the model's log-probs; masking does not renormalise.

With a trie, a step scores only each beam's children in the trie ([R, C], C = the widest
branching at that depth) instead of masking all V tokens: the top-k then runs over
n * C candidates rather than n * V, so constraining costs less than it saves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

from steerrec.decoding.trie import PrefixTrie

logger = logging.getLogger(__name__)

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]
Reorder = Callable[[Any, torch.Tensor], Any]


def _check(batch_size: int, beam_size: int, top_k: int | None = None) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if top_k is not None and not 1 <= top_k <= beam_size:
        raise ValueError(f"top_k must be in 1..beam_size={beam_size}, got {top_k}")


def _search(
    step_fn: StepFn,
    batch_size: int,
    depth: int,
    beam_size: int,
    trie: PrefixTrie | None,
    start_tokens: Sequence[int],
    state: Any,
    reorder: Reorder | None,
    device: torch.device | str | None,
    potential: torch.Tensor | None = None,
    pad_token: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run `depth` steps; returns tokens [B, n, depth], scores [B, n], trie nodes [B, n].

    `potential` [B, n_nodes] (trie.node_potential, with a trie only) is added as
    potential(child) - potential(parent) per step, so a finished beam scores log-prob +
    bias(item) - potential(root). A trie step onto `pad_token` scores 0 (the padding after a
    variable-length ID's end, `PrefixTrie.from_sequences`).

    n = min(beam_size, the widest the search can get: the vocabulary's, or the trie's). Beams with score -inf are dead
    (no valid continuation); their node is -1. Nodes are None without a trie.
    """
    B = batch_size
    start = torch.tensor(list(start_tokens), dtype=torch.long, device=device)
    tokens = start.expand(B, -1).clone()  # [R, len(start_tokens)]
    scores = torch.zeros(B, device=device)  # [R]
    nodes = torch.zeros(B, dtype=torch.long, device=device)  # [R] trie node of each beam
    n = 1  # beams per example
    for level in range(depth):
        logp, state = step_fn(tokens, state)  # [R, V]
        V = logp.shape[-1]
        if logp.shape != (B * n, V):
            raise ValueError(f"step_fn returned log_probs of shape {tuple(logp.shape)}, expected ({B * n}, V)")
        if logp.dtype in (torch.float16, torch.bfloat16):
            logp = logp.float()  # sums of many half-precision log-probs lose the order
        if trie is None:
            C, step_logp = V, logp  # every token is a candidate
        else:
            if trie.vocab_size != V:
                raise ValueError(f"step_fn vocabulary {V} differs from the trie's {trie.vocab_size}")
            trie = trie.to(logp.device)
            # score only each beam's children: [R, C] with C = the level's widest branching
            children, valid = trie.children(nodes.to(logp.device), level)
            C = children.shape[1]
            child_tokens = trie.node_token[children]
            step_logp = logp.gather(1, child_tokens)
            if pad_token is not None:  # after an ID's end: a free step, the ID's score is final
                step_logp = step_logp.masked_fill(child_tokens == pad_token, 0.0)
            step_logp = step_logp.masked_fill(~valid, float("-inf"))
            if potential is not None:
                step_logp = step_logp + _shaping(potential.to(logp.device), nodes.to(logp.device), children, n)
        cand = (scores.to(logp)[:, None] + step_logp).view(B, n * C)  # [B, n*C]
        width = min(beam_size, n * C)
        top, flat = cand.topk(width, dim=1)  # [B, width], sorted best first
        src = (torch.arange(B, device=logp.device)[:, None] * n + flat // C).view(-1)  # [B*width]
        scores = top.view(-1)
        if trie is None:
            chosen = (flat % V).view(-1)  # [B*width]
        else:
            picked = children.view(B, n * C).gather(1, flat).view(-1)  # [B*width] child node ids
            chosen = child_tokens.view(B, n * C).gather(1, flat).view(-1)
            nodes = torch.where(torch.isneginf(scores), torch.full_like(picked, -1), picked)
        tokens = torch.cat([tokens.to(logp.device)[src], chosen[:, None]], dim=1)
        if reorder is not None:
            state = reorder(state, src)
        n = width
    body = tokens[:, len(start_tokens) :]
    return body.view(B, n, depth), scores.view(B, n), (nodes.view(B, n) if trie is not None else None)


def _shaping(potential: torch.Tensor, nodes: torch.Tensor, children: torch.Tensor, n: int) -> torch.Tensor:
    """[R, C] potential(child) - potential(parent) for each beam's children (rows example-major,
    n beams per example); -inf where the child's subtree is banned, 0 for dead beams' rows."""
    example = torch.arange(nodes.shape[0], device=nodes.device) // n  # [R]
    child = potential[example[:, None], children]  # [R, C]
    parent = potential[example, nodes.clamp(min=0)]  # [R]; a live beam's parent is finite
    parent = torch.where(torch.isfinite(parent), parent, torch.zeros_like(parent))
    return child - parent[:, None]


def _pad(items: torch.Tensor, scores: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad [B, n] to [B, top_k] with item -1 and score -inf."""
    B, n = items.shape
    if n >= top_k:
        return items[:, :top_k], scores[:, :top_k]
    pad_items = torch.full((B, top_k - n), -1, dtype=items.dtype, device=items.device)
    pad_scores = torch.full((B, top_k - n), float("-inf"), dtype=scores.dtype, device=scores.device)
    return torch.cat([items, pad_items], 1), torch.cat([scores, pad_scores], 1)


def constrained_beam_search(
    step_fn: StepFn,
    batch_size: int,
    trie: PrefixTrie,
    beam_size: int,
    top_k: int,
    *,
    start_tokens: Sequence[int] = (),
    state: Any = None,
    reorder: Reorder | None = None,
    device: torch.device | str | None = None,
    item_bias: torch.Tensor | None = None,
    pad_token: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search whose every step is masked by the trie, so every beam is an item.

    Returns item indices [B, top_k] (long) and scores [B, top_k], best first; where
    fewer than top_k valid items survive (small catalog, or the model gives allowed tokens
    probability 0) the rest is item -1 with score -inf. With beam_size >= n_items the
    result is exactly the top_k items by total log-prob.

    `item_bias` [B, n_items] (float, -inf = banned) is added to each item's score: the
    result ranks items by log-prob + bias. It steers every step, not only the last:
    a prefix is scored with the best bias reachable below it (`PrefixTrie.node_potential`),
    so no beam is spent on a prefix whose items are all banned, and the beam fills with
    allowed items (history exclusion and "avoid" preferences are both biases of -inf).

    `pad_token`: for a trie of variable-length IDs (`PrefixTrie.from_sequences`), the pad
    after an ID's end token; steps onto it add 0, so a short ID is not charged the model's
    log-prob of padding and competes with longer ones on its own tokens' log-prob.
    """
    _check(batch_size, beam_size, top_k)
    potential = None
    if item_bias is not None:
        if item_bias.shape[0] != batch_size:
            raise ValueError(f"item_bias has {item_bias.shape[0]} rows, batch_size is {batch_size}")
        potential = trie.to(item_bias.device).node_potential(item_bias.float())
    _, scores, nodes = _search(
        step_fn, batch_size, trie.depth, beam_size, trie, start_tokens, state, reorder, device, potential, pad_token
    )
    if potential is not None:  # back from log-prob + bias - potential(root) to log-prob + bias
        root = potential[:, :1].to(scores.device)
        scores = scores + torch.where(torch.isfinite(root), root, torch.zeros_like(root))
    items = trie.to(nodes.device).item_of(nodes.view(-1)).view(nodes.shape)  # [B, n]
    dead = items < 0
    items = items.masked_fill(dead, -1)
    scores = scores.masked_fill(dead, float("-inf"))
    return _pad(items, scores, top_k)


def unconstrained_beam_search(
    step_fn: StepFn,
    batch_size: int,
    depth: int,
    beam_size: int,
    *,
    start_tokens: Sequence[int] = (),
    state: Any = None,
    reorder: Reorder | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain beam search of `depth` tokens: token sequences [B, n, depth] and scores [B, n].

    n = beam_size unless the vocabulary is too small to fill it. Pass the result to
    `filter_invalid` to keep the sequences that are catalog items (the mode of the
    Mender/TIGER papers' evaluation: decode freely, then drop invalid IDs).
    """
    _check(batch_size, beam_size)
    tokens, scores, _ = _search(step_fn, batch_size, depth, beam_size, None, start_tokens, state, reorder, device)
    return tokens, scores


def filter_invalid(
    tokens: torch.Tensor, scores: torch.Tensor, trie: PrefixTrie, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the beams whose tokens [B, n, L] are items, best first; pad to top_k.

    Returns item indices [B, top_k] and scores [B, top_k]; item -1 and score -inf where
    fewer than top_k beams were valid. A beam with score -inf is dropped as invalid.
    """
    if tokens.ndim != 3 or scores.shape != tokens.shape[:2]:
        raise ValueError(
            f"tokens must be [B, n, L] and scores [B, n], got {tuple(tokens.shape)} and {tuple(scores.shape)}"
        )
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    B, n, L = tokens.shape
    trie = trie.to(tokens.device)
    items = trie.items_of_tokens(tokens.reshape(B * n, L)).view(B, n)  # [B, n]
    valid = (items >= 0) & ~torch.isneginf(scores)
    kept = torch.where(valid, scores, torch.full_like(scores, float("-inf")))
    # stable sort keeps beam order among equal scores; invalid beams sink to the end
    order = torch.sort(kept, dim=1, descending=True, stable=True).indices
    items = torch.gather(torch.where(valid, items, torch.full_like(items, -1)), 1, order)
    kept = torch.gather(kept, 1, order)
    return _pad(items, kept, top_k)
