"""Prefix trie lookups and beam search, checked against brute-force enumeration."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

from steerrec.decoding import (
    PrefixTrie,
    constrained_beam_search,
    filter_invalid,
    level_offsets,
    unconstrained_beam_search,
)

L, K = 3, 4  # levels, codes per level
OFFSETS = level_offsets([K] * L)  # [0, 4, 8]
V = L * K  # 12 tokens
START = V  # a start token outside the ID vocabulary, used only as input to the model


def _catalog(n_items: int = 12, seed: int = 0) -> np.ndarray:
    """n distinct semantic IDs drawn from the K**L possible ones; some share prefixes."""
    rng = np.random.default_rng(seed)
    all_ids = np.array(list(itertools.product(range(K), repeat=L)))
    return all_ids[rng.choice(len(all_ids), n_items, replace=False)]


class _TableModel:
    """A fixed random next-token scorer: logits[example, cur_len, last_token] -> [V].

    The state is each row's example index, so batching and beam reordering are visible.
    """

    def __init__(self, n_examples: int, seed: int = 0, start_len: int = 0, level_bias: float = 0.0) -> None:
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(n_examples, L + start_len, V + 1, V, generator=g, dtype=torch.float64) * 2
        for level in range(L):  # favour the token range of the level the step emits
            logits[:, start_len + level, :, OFFSETS[level] : OFFSETS[level] + K] += level_bias
        self.logp = torch.log_softmax(logits, dim=-1)
        self.calls = 0

    def step(self, tokens: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        cur = tokens.shape[1]
        last = tokens[:, -1] if cur else torch.full((tokens.shape[0],), START)
        return self.logp[state, cur, last], state

    def sequence_logp(self, example: int, seq: list[int], start: list[int]) -> float:
        toks = list(start)
        total = 0.0
        for tok in seq:
            last = toks[-1] if toks else START
            total += float(self.logp[example, len(toks), last, tok])
            toks.append(tok)
        return total


def _reorder(state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return state[index]


def _brute_force(
    model: _TableModel, example: int, codes: np.ndarray, start: tuple[int, ...] = ()
) -> list[tuple[int, float]]:
    """All items with their total log-prob, best first."""
    tokens = codes + np.array(OFFSETS)
    scored = [(i, model.sequence_logp(example, tokens[i].tolist(), list(start))) for i in range(len(codes))]
    return sorted(scored, key=lambda x: -x[1])


# ---------------------------------------------------------------- trie


def test_trie_lookups_by_hand():
    codes = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 0], [3, 0, 0]])
    trie = PrefixTrie.from_codes(codes, OFFSETS)
    assert trie.vocab_size == 12 and trie.n_items == 4 and trie.depth == 3
    # nodes: root, {0, 3}, {0-5, 0-6, 3-4}, four leaves
    assert trie.n_nodes == 1 + 2 + 3 + 4
    assert trie.allowed_next([]) == [0, 3]
    assert trie.allowed_next([0]) == [5, 6]
    assert trie.allowed_next([0, 5]) == [10, 11]
    assert trie.allowed_next([3, 4]) == [8]
    assert trie.allowed_next([1]) == [] and trie.lookup([1]) == -1
    assert trie.allowed_next([0, 5, 10]) == []  # a complete ID has no continuation
    seqs = torch.tensor([[0, 5, 11], [3, 4, 8], [0, 6, 8], [0, 5, 9], [3, 5, 8]])
    assert trie.items_of_tokens(seqs).tolist() == [1, 3, 2, -1, -1]


def test_trie_mask_and_advance_batched_with_dead_beams():
    codes = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 0], [3, 0, 0]])
    trie = PrefixTrie.from_codes(codes, OFFSETS)
    n0, n3 = trie.lookup([0]), trie.lookup([3])
    nodes = torch.tensor([0, n0, -1, n3])
    mask = trie.allowed_mask(nodes)
    assert mask.shape == (4, trie.vocab_size)
    assert [torch.nonzero(row).flatten().tolist() for row in mask] == [[0, 3], [5, 6], [], [4]]
    assert trie.max_children == [2, 2, 2, 0]  # root {0, 3}; [0] {5, 6}; [0, 5] {10, 11}; leaves
    ids, valid = trie.children(nodes)  # mixed depths: as wide as the widest node
    assert ids.shape == valid.shape == (4, 2)
    assert [trie.node_token[i[v]].tolist() for i, v in zip(ids, valid, strict=True)] == [[0, 3], [5, 6], [], [4]]
    assert trie.children(nodes[1:2], depth=1)[0][0].tolist() == [trie.lookup([0, 5]), trie.lookup([0, 6])]
    moved = trie.advance(nodes, torch.tensor([3, 6, 0, 5]))
    assert moved.tolist() == [n3, trie.lookup([0, 6]), -1, -1]
    assert trie.item_of(torch.tensor([trie.lookup([0, 6, 8]), n0, -1])).tolist() == [2, -1, -1]


def test_trie_rejects_bad_codes():
    with pytest.raises(ValueError, match=r"rows 1 and 3 share the semantic ID \[0, 5, 10\]"):
        PrefixTrie.from_codes(np.array([[3, 0, 0], [0, 1, 2], [1, 1, 1], [0, 1, 2]]), OFFSETS)
    with pytest.raises(ValueError, match="row 1 level 2: negative code -1"):
        PrefixTrie.from_codes(np.array([[0, 0, 0], [0, 0, -1]]), OFFSETS)
    with pytest.raises(ValueError, match="row 0 level 2: token 12 is outside vocab_size 12"):
        PrefixTrie.from_codes(np.array([[0, 0, 4]]), OFFSETS, vocab_size=12)
    with pytest.raises(ValueError, match="offsets has 2 entries"):
        PrefixTrie.from_codes(np.array([[0, 0, 0]]), [0, 4])
    with pytest.raises(ValueError, match=r"offsets must be >= 0, got \[-1, 4, 8\]"):
        PrefixTrie.from_codes(np.array([[0, 0, 0]]), [-1, 4, 8])
    with pytest.raises(ValueError, match="non-empty"):
        PrefixTrie.from_codes(np.zeros((0, 3), dtype=int), OFFSETS)


def test_trie_matches_python_dict_trie_on_random_catalog():
    codes = _catalog(40, seed=3)
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)
    tokens = codes + np.array(OFFSETS)
    expected: dict[tuple[int, ...], set[int]] = {}
    for row in tokens.tolist():
        for d in range(L):
            expected.setdefault(tuple(row[:d]), set()).add(row[d])
    for prefix, nxt in expected.items():
        assert trie.allowed_next(prefix) == sorted(nxt)
    assert trie.n_nodes == 1 + len({tuple(r[: d + 1]) for r in tokens.tolist() for d in range(L)})


# ---------------------------------------------------------------- constrained beam search


@pytest.mark.parametrize("start", [(), (START,)])
def test_full_beam_equals_brute_force(start):
    codes = _catalog(12)
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)
    model = _TableModel(1, seed=1, start_len=len(start))
    items, scores = constrained_beam_search(
        model.step,
        1,
        trie,
        beam_size=12,
        top_k=12,
        start_tokens=start,
        state=torch.tensor([0]),
        reorder=_reorder,
    )
    expected = _brute_force(model, 0, codes, start)
    assert items[0].tolist() == [i for i, _ in expected]
    np.testing.assert_allclose(scores[0].numpy(), [s for _, s in expected], rtol=1e-12)
    assert model.calls == L


def test_small_beam_returns_only_valid_items_with_their_scores():
    codes = _catalog(12)
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)
    model = _TableModel(1, seed=2)
    items, scores = constrained_beam_search(
        model.step, 1, trie, beam_size=2, top_k=2, state=torch.tensor([0]), reorder=_reorder
    )
    exact = dict(_brute_force(model, 0, codes))
    assert items.shape == (1, 2) and len(set(items[0].tolist())) == 2
    for item, score in zip(items[0].tolist(), scores[0].tolist(), strict=True):
        assert 0 <= item < 12
        assert score == pytest.approx(exact[item], rel=1e-12)
    assert scores[0, 0] >= scores[0, 1]


def test_batched_equals_per_example():
    codes = _catalog(12)
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)
    model = _TableModel(3, seed=4)
    items, scores = constrained_beam_search(
        model.step, 3, trie, beam_size=4, top_k=3, state=torch.arange(3), reorder=_reorder
    )
    for b in range(3):
        one_items, one_scores = constrained_beam_search(
            model.step, 1, trie, beam_size=4, top_k=3, state=torch.tensor([b]), reorder=_reorder
        )
        assert items[b].tolist() == one_items[0].tolist()
        assert torch.equal(scores[b], one_scores[0])
    assert len({tuple(row) for row in items.tolist()}) > 1  # the examples differ


def test_catalog_smaller_than_top_k_pads():
    codes = np.array([[0, 0, 0], [0, 0, 1], [2, 3, 1]])
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)
    model = _TableModel(1, seed=5)
    items, scores = constrained_beam_search(
        model.step, 1, trie, beam_size=5, top_k=5, state=torch.tensor([0]), reorder=_reorder
    )
    assert sorted(items[0, :3].tolist()) == [0, 1, 2]
    assert items[0, 3:].tolist() == [-1, -1]
    assert torch.isfinite(scores[0, :3]).all() and torch.isneginf(scores[0, 3:]).all()


def test_model_zero_probability_on_allowed_tokens_never_yields_an_item():
    codes = np.array([[0, 0, 0], [1, 0, 0]])
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)

    def step(tokens, state):
        logp = torch.full((tokens.shape[0], V), -2.0)
        if tokens.shape[1] == 0:
            logp[:, 1] = float("-inf")  # the model forbids item 1's first token
        return logp, state

    items, scores = constrained_beam_search(step, 1, trie, beam_size=3, top_k=2)
    assert items.tolist() == [[0, -1]]
    assert scores[0, 0].item() == pytest.approx(-6.0) and torch.isneginf(scores[0, 1])


def test_bad_arguments_raise():
    trie = PrefixTrie.from_codes(_catalog(5), OFFSETS, vocab_size=V)
    model = _TableModel(1)
    with pytest.raises(ValueError, match="top_k must be in 1..beam_size=2"):
        constrained_beam_search(model.step, 1, trie, beam_size=2, top_k=3, state=torch.tensor([0]))
    small = PrefixTrie.from_codes(np.array([[0, 0, 0]]), OFFSETS)  # vocabulary 9, the model's 12
    with pytest.raises(ValueError, match="vocabulary 12 differs from the trie's 9"):
        constrained_beam_search(model.step, 1, small, beam_size=2, top_k=1, state=torch.tensor([0]))


# ---------------------------------------------------------------- unconstrained + filter


def test_unconstrained_exhaustive_then_filter_equals_brute_force():
    codes = _catalog(12)
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)
    model = _TableModel(1, seed=6)
    tokens, scores = unconstrained_beam_search(
        model.step, 1, L, beam_size=V**L, state=torch.tensor([0]), reorder=_reorder
    )
    assert tokens.shape == (1, V**L, L)
    items, item_scores = filter_invalid(tokens, scores, trie, top_k=12)
    expected = _brute_force(model, 0, codes)
    assert items[0].tolist() == [i for i, _ in expected]
    np.testing.assert_allclose(item_scores[0].numpy(), [s for _, s in expected], rtol=1e-12)


def test_unconstrained_small_beam_filter_never_returns_invalid():
    codes = _catalog(12)
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)
    model = _TableModel(3, seed=7, level_bias=3.0)  # well-formed IDs, some not in the catalog
    tokens, scores = unconstrained_beam_search(model.step, 3, L, beam_size=6, state=torch.arange(3), reorder=_reorder)
    items, item_scores = filter_invalid(tokens, scores, trie, top_k=6)
    valid_tokens = {tuple(r) for r in (codes + np.array(OFFSETS)).tolist()}
    n_valid = sum(tuple(t) in valid_tokens for t in tokens.reshape(-1, L).tolist())
    assert 0 < n_valid < 18  # a free search finds some items and wanders off the catalog too
    assert (items >= 0).sum().item() == n_valid
    for b in range(3):
        row = items[b].tolist()
        real = [i for i in row if i >= 0]
        assert row == real + [-1] * (6 - len(real))  # valid first, then padding
        for i, s in zip(real, item_scores[b].tolist()[: len(real)], strict=True):
            assert s == pytest.approx(model.sequence_logp(b, (codes[i] + OFFSETS).tolist(), []), rel=1e-12)
        assert torch.isneginf(item_scores[b, len(real) :]).all()


def test_filter_invalid_by_hand():
    codes = np.array([[0, 1, 2], [3, 0, 0]])
    trie = PrefixTrie.from_codes(codes, OFFSETS, vocab_size=V)
    tokens = torch.tensor([[[0, 5, 10], [1, 5, 10], [3, 4, 8]]])  # item 0, invalid, item 1
    scores = torch.tensor([[-3.0, -1.0, -2.0]])
    items, kept = filter_invalid(tokens, scores, trie, top_k=3)
    assert items.tolist() == [[1, 0, -1]]
    assert kept[0, :2].tolist() == [-2.0, -3.0] and torch.isneginf(kept[0, 2])


def test_decoding_and_losses_import_no_ray():
    code = "import sys, steerrec.decoding, steerrec.alignment.losses; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_docstring_examples_hold():
    import doctest

    from steerrec.decoding import trie as trie_module

    result = doctest.testmod(trie_module)
    assert result.attempted >= 1 and result.failed == 0
