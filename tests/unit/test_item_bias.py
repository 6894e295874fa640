"""Item biases in trie-constrained beam search (history exclusion and steering), against brute force."""

from __future__ import annotations

import numpy as np
import torch
from tests.unit.test_trie_beam import OFFSETS, V, _brute_force, _catalog, _reorder, _TableModel

from steerrec.decoding import PrefixTrie, constrained_beam_search


def _search(model, trie, n_examples, beam, top_k, bias):
    return constrained_beam_search(
        model.step, n_examples, trie, beam, top_k, state=torch.arange(n_examples), reorder=_reorder, item_bias=bias
    )


def test_node_potential_is_the_best_bias_below_each_node():
    codes = _catalog(12)
    trie = PrefixTrie.from_codes(codes, OFFSETS, V)
    bias = torch.randn(2, 12, dtype=torch.float64)
    bias[1, :6] = float("-inf")
    phi = trie.node_potential(bias)
    tokens = codes + np.array(OFFSETS)
    for node in range(trie.n_nodes):
        prefix = []
        walk = node
        while walk > 0:
            prefix.append(int(trie.node_token[walk]))
            walk = int(trie.node_parent[walk])
        prefix = prefix[::-1]
        below = [i for i in range(12) if tokens[i, : len(prefix)].tolist() == prefix]
        for b in range(2):
            assert phi[b, node].item() == max(bias[b, i].item() for i in below)


def test_full_beam_ranks_by_logp_plus_bias():
    codes = _catalog(12, seed=3)
    trie = PrefixTrie.from_codes(codes, OFFSETS, V)
    model = _TableModel(3, seed=1)
    g = torch.Generator().manual_seed(0)
    bias = torch.randn(3, 12, generator=g, dtype=torch.float64)
    bias[0, [1, 4, 7]] = float("-inf")
    bias[2] = 0.0
    items, scores = _search(model, trie, 3, 12, 12, bias)
    for b in range(3):
        expected = sorted(
            ((i, s + bias[b, i].item()) for i, s in _brute_force(model, b, codes) if np.isfinite(bias[b, i].item())),
            key=lambda x: -x[1],
        )
        got = [(i, s) for i, s in zip(items[b].tolist(), scores[b].tolist()) if i >= 0]
        assert [i for i, _ in got] == [i for i, _ in expected]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-5)


def test_banned_prefixes_take_no_beam_so_a_small_beam_still_fills():
    """Ban every item under the model's favourite first token: a beam of 2 still returns 2
    allowed items (with bans applied only at the last level it would return none)."""
    codes = _catalog(20, seed=5)
    trie = PrefixTrie.from_codes(codes, OFFSETS, V)
    model = _TableModel(1, seed=2)
    best_first = _brute_force(model, 0, codes)[0][0]
    banned = codes[:, 0] == codes[best_first, 0]
    bias = torch.zeros(1, 20, dtype=torch.float64)
    bias[0, torch.from_numpy(banned)] = float("-inf")
    items, scores = _search(model, trie, 1, 2, 2, bias)
    assert (items >= 0).all() and torch.isfinite(scores).all()
    assert not banned[items[0].numpy()].any()


def test_everything_banned_gives_no_items():
    codes = _catalog(8)
    trie = PrefixTrie.from_codes(codes, OFFSETS, V)
    bias = torch.full((1, 8), float("-inf"), dtype=torch.float64)
    items, scores = _search(_TableModel(1), trie, 1, 4, 4, bias)
    assert (items == -1).all() and torch.isneginf(scores).all()


def test_zero_bias_changes_nothing():
    codes = _catalog(12, seed=7)
    trie = PrefixTrie.from_codes(codes, OFFSETS, V)
    model = _TableModel(2, seed=4)
    plain = _search(model, trie, 2, 4, 4, None)
    zero = _search(model, trie, 2, 4, 4, torch.zeros(2, 12, dtype=torch.float64))
    assert torch.equal(plain[0], zero[0])
    torch.testing.assert_close(plain[1], zero[1].to(plain[1].dtype))


def test_rank_batch_adds_a_batch_item_bias_for_models_that_score_every_item():
    """SASRec ranks by score_all; the evaluator's steering bias rides in the batch and is added."""
    from steerrec.train.ranking import rank_batch

    class AllItems(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.arange(6, dtype=torch.float32))  # item 5 best, then 4, ...

        def score_all(self, history):
            return self.w.expand(history.shape[0], -1)

    bias = torch.zeros(2, 6)
    bias[0, [5, 4]] = float("-inf")  # avoided
    bias[1, 0] = 10.0  # liked
    batch = {"history": torch.zeros(2, 3, dtype=torch.long), "item_bias": bias}
    assert rank_batch(AllItems(), batch, None, 3, 3).tolist() == [[3, 2, 1], [0, 5, 4]]
    assert rank_batch(AllItems(), {"history": batch["history"]}, None, 3, 3).tolist() == [[5, 4, 3]] * 2
