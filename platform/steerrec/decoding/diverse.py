"""Diverse beam search (Vijayakumar et al. 2018) with Hamming diversity, for textual IDs.

IDGenRec's ID generator (Sec. 2.3) decodes an item's ID with diverse beam search: the beams
are split into `n_groups` groups decoded one after another at each step, and a token that
earlier groups chose at this step for the same example costs `diversity_penalty` per time
it was chosen (Hamming diversity), so the groups spread over different IDs.

Why here and not `generate(num_beam_groups=...)`: transformers 5.x moved group beam search
out of the library to a Hub repository (`transformers-community/group-beam-search`, loaded
with trust_remote_code at run time), which cannot be fetched offline. This is the same
search, written against the `steerrec.decoding` step contract:

    step_fn(tokens: LongTensor [R, cur_len], state) -> (log_probs [R, V], new_state)

with rows example-major, then group, then beam (R = B * n_groups * group_size; the first call
already has all R rows: the caller's state is expanded with `reorder` before it). As in the
transformers implementation, the penalty enters a beam's running score.

Length window: an ID has n tokens before its end token, min_len <= n < max_len; the end
token is masked until min_len tokens exist and forced at n = max_len - 1. A finished beam
continues with `pad_token` at no cost, so it keeps its score and its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from steerrec.decoding.beam import Reorder, StepFn

NEG_INF = float("-inf")


def _constrain(
    logp: torch.Tensor, finished: torch.Tensor, step: int, min_len: int, max_len: int, end: int, pad: int, banned
) -> torch.Tensor:
    """[R, V] log-probs with the length window, banned tokens and finished beams applied."""
    logp = logp.clone()
    logp[:, banned] = NEG_INF
    if step < min_len:
        logp[:, end] = NEG_INF
    if step == max_len - 1:  # the last place: only the end token
        keep = logp[:, end].clone()
        logp.fill_(NEG_INF)
        logp[:, end] = keep
    logp[finished] = NEG_INF
    logp[finished, pad] = 0.0
    return logp


def diverse_beam_search(
    step_fn: StepFn,
    batch_size: int,
    n_groups: int,
    group_size: int,
    diversity_penalty: float,
    min_len: int,
    max_len: int,
    end_token: int,
    pad_token: int,
    *,
    banned_tokens: Sequence[int] = (),
    start_tokens: Sequence[int] = (),
    state: Any = None,
    reorder: Reorder | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns tokens [B, K, max_len - 1] (pad after each ID), scores [B, K], lengths [B, K].

    K = n_groups * group_size, group by group, each group's beams best first. `tokens[b, k,
    :lengths[b, k]]` is an ID without its end token. Scores are log-probs (end token
    included) minus the diversity penalties the beam paid; -inf marks a beam that found no
    ID in the window (a vocabulary too small for the groups).
    """
    if batch_size < 1 or n_groups < 1 or group_size < 1:
        raise ValueError(f"batch_size, n_groups, group_size must be >= 1, got {batch_size}, {n_groups}, {group_size}")
    if not 1 <= min_len < max_len:
        raise ValueError(f"need 1 <= min_len < max_len, got min_len={min_len}, max_len={max_len}")
    if diversity_penalty < 0:
        raise ValueError(f"diversity_penalty must be >= 0, got {diversity_penalty}")
    B, G, g = batch_size, n_groups, group_size
    K = G * g
    rows = torch.arange(B, device=device).repeat_interleave(K)  # [R] example of each row
    if reorder is not None:
        state = reorder(state, rows)
    start = torch.tensor(list(start_tokens), dtype=torch.long, device=device)
    tokens = start.expand(B * K, -1).clone()
    scores = torch.zeros(B, G, g, device=device)
    scores[:, :, 1:] = NEG_INF  # every beam of a group starts as the same empty prefix: expand one
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    banned = torch.tensor(sorted({int(t) for t in banned_tokens} | {pad_token}), dtype=torch.long)
    for step in range(max_len):
        logp, state = step_fn(tokens, state)  # [R, V]
        V = logp.shape[-1]
        if logp.shape != (B * K, V):
            raise ValueError(f"step_fn returned log_probs of shape {tuple(logp.shape)}, expected ({B * K}, V)")
        logp = _constrain(logp.float(), finished.to(logp.device), step, min_len, max_len, end_token, pad_token, banned)
        logp = logp.view(B, G, g, V)
        used = torch.zeros(B, V, device=logp.device)  # times each token was chosen this step by earlier groups
        new_scores = torch.empty(B, G, g, device=logp.device)
        src = torch.empty(B, G, g, dtype=torch.long, device=logp.device)
        chosen = torch.empty(B, G, g, dtype=torch.long, device=logp.device)
        for group in range(G):
            cand = scores[:, group, :, None].to(logp) + logp[:, group] - diversity_penalty * used[:, None, :]
            top, flat = cand.view(B, g * V).topk(g, dim=1)  # [B, g], best first
            new_scores[:, group], src[:, group], chosen[:, group] = top, flat // V, flat % V
            counted = (chosen[:, group] != pad_token) & torch.isfinite(top)
            used.scatter_add_(1, chosen[:, group], counted.to(used.dtype))
        base = (torch.arange(B * G, device=logp.device) * g).view(B, G, 1)
        index = (base + src).view(-1)  # [R] row each new beam continues
        scores, flat_chosen = new_scores, chosen.view(-1)
        tokens = torch.cat([tokens.to(logp.device)[index], flat_chosen[:, None]], dim=1)
        finished = finished.to(logp.device)[index] | (flat_chosen == end_token)
        if reorder is not None:
            state = reorder(state, index)
        if bool(finished.all()):
            break
    body = tokens[:, len(start_tokens) :]
    is_end = body == end_token
    lengths = torch.where(is_end.any(1), is_end.int().argmax(1), torch.full_like(body[:, 0], body.shape[1]))
    out = torch.full((B * K, max_len - 1), pad_token, dtype=torch.long, device=body.device)
    keep = torch.arange(max_len - 1, device=body.device)[None, :] < lengths[:, None]
    width = min(body.shape[1], max_len - 1)
    out[:, :width] = torch.where(keep[:, :width], body[:, :width], out[:, :width])
    return out.view(B, K, -1), scores.reshape(B, K), lengths.view(B, K)
