"""Variable-length IDs in the one trie and beam search; diverse (Hamming) group beam search."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from steerrec.decoding import PrefixTrie, constrained_beam_search, diverse_beam_search

PAD, END, V = 0, 1, 9
# "5" is a prefix of "5 6", itself a prefix of "5 6 7": three distinct items all the same
IDS = [(5,), (5, 6), (5, 6, 7), (6,), (7, 5), (8, 8, 8, 8), (6, 2)]


class _PrefixModel:
    """log-probs that depend on the example, the length and the last token (a fixed table)."""

    def __init__(self, n_examples: int, depth: int = 8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.logp = torch.log_softmax(torch.randn(n_examples, depth, V, V, generator=g, dtype=torch.float64) * 2, -1)

    def step(self, tokens: torch.Tensor, state: torch.Tensor):
        return self.logp[state, tokens.shape[1] - 1, tokens[:, -1]], state

    def seq_logp(self, example: int, seq: list[int]) -> float:
        toks, total = [PAD], 0.0
        for tok in seq:
            total += float(self.logp[example, len(toks) - 1, toks[-1], tok])
            toks.append(tok)
        return total


def test_from_sequences_keeps_prefix_ids_apart():
    trie = PrefixTrie.from_sequences(IDS, V, END, PAD)
    assert trie.depth == 5  # the longest ID and its end token
    assert sorted(trie.allowed_next([5])) == [END, 6]  # "5" may end here or go on
    assert sorted(trie.allowed_next([5, 6])) == [END, 7]
    assert trie.allowed_next([5, END]) == [PAD]
    rows = torch.tensor([[5, END, PAD, PAD, PAD], [5, 6, END, PAD, PAD], [5, 6, 7, END, PAD], [5, 6, PAD, PAD, PAD]])
    assert trie.items_of_tokens(rows).tolist() == [0, 1, 2, -1]


@pytest.mark.parametrize("bad", [[()], [(5, END)], [(5, PAD, 6)], []])
def test_from_sequences_rejects_empty_or_special_tokens(bad):
    with pytest.raises(ValueError):
        PrefixTrie.from_sequences(bad, V, END, PAD)


def test_from_sequences_rejects_duplicates():
    with pytest.raises(ValueError, match="share"):
        PrefixTrie.from_sequences([(5, 6), (5, 6)], V, END, PAD)


def test_full_beam_over_variable_ids_equals_brute_force():
    trie = PrefixTrie.from_sequences(IDS, V, END, PAD)
    model = _PrefixModel(3)
    state = torch.arange(3)
    items, scores = constrained_beam_search(
        model.step, 3, trie, len(IDS), len(IDS), start_tokens=(PAD,), state=state, reorder=lambda s, i: s[i],
        pad_token=PAD,
    )  # fmt: skip
    for b in range(3):
        want = sorted(((model.seq_logp(b, [*t, END]), i) for i, t in enumerate(IDS)), reverse=True)
        assert items[b].tolist() == [i for _, i in want]
        assert torch.allclose(scores[b], torch.tensor([s for s, _ in want], dtype=scores.dtype))


def test_without_a_free_pad_short_ids_pay_for_padding():
    trie = PrefixTrie.from_sequences(IDS, V, END, PAD)
    model = _PrefixModel(1)
    run = lambda pad: constrained_beam_search(
        model.step, 1, trie, len(IDS), len(IDS), start_tokens=(PAD,), state=torch.zeros(1, dtype=torch.long),
        reorder=lambda s, i: s[i], pad_token=pad,
    )  # fmt: skip
    items, free = run(PAD)
    items_charged, charged = run(None)
    short = items[0].tolist().index(0)  # item (5,): 3 pads after its end
    assert charged[0, items_charged[0].tolist().index(0)] < free[0, short] - 1e-6


def test_small_beam_yields_only_items():
    trie = PrefixTrie.from_sequences(IDS, V, END, PAD)
    model = _PrefixModel(4, seed=3)
    items, scores = constrained_beam_search(
        model.step, 4, trie, 2, 2, start_tokens=(PAD,), state=torch.arange(4), reorder=lambda s, i: s[i],
        pad_token=PAD,
    )  # fmt: skip
    assert ((items >= 0) & (items < len(IDS))).all() and torch.isfinite(scores).all()


# ---------------------------------------------------------------- diverse beam search

A, B, C = 2, 3, 4  # body tokens; PAD = 0, END = 1


def _fixed(probs: dict[int, float]):
    """A model whose next-token distribution never changes (tokens not named get ~0)."""
    row = torch.full((5,), 1e-12, dtype=torch.float64)
    for tok, p in probs.items():
        row[tok] = p
    logp = row.log()
    return lambda tokens, state: (logp.expand(tokens.shape[0], -1).clone(), state)


@pytest.mark.parametrize(("penalty", "second"), [(0.0, A), (0.1, A), (1.0, B)])
def test_hamming_penalty_by_hand(penalty, second):
    # one token then the end (window [1, 2)); group 1 pays `penalty` for group 0's token a:
    # a: log 0.5 - penalty vs b: log 0.3 -> a while penalty < log(0.5 / 0.3) = 0.51, else b;
    # at the second step both groups end, and group 1 pays for group 0's end token too
    step = _fixed({A: 0.5, B: 0.3, C: 0.15, END: 0.05})
    tokens, scores, lengths = diverse_beam_search(step, 1, 2, 1, penalty, 1, 2, END, PAD)
    assert tokens[0, :, 0].tolist() == [A, second] and lengths[0].tolist() == [1, 1]
    expected_second = math.log(0.5) - penalty if second == A else math.log(0.3)
    assert scores[0, 0].item() == pytest.approx(math.log(0.5) + math.log(0.05))
    assert scores[0, 1].item() == pytest.approx(expected_second + math.log(0.05) - penalty)


def test_one_group_with_a_wide_beam_finds_every_sequence_in_the_window():
    # window [1, 3): the IDs of 1 or 2 body tokens over {a, b, c}: 3 + 9 = 12 sequences
    g = torch.Generator().manual_seed(1)
    table = torch.log_softmax(torch.randn(3, 5, 5, generator=g, dtype=torch.float64) * 2, -1)
    step = lambda tokens, state: (table[tokens.shape[1] - 1, tokens[:, -1]], state)
    tokens, scores, lengths = diverse_beam_search(step, 1, 1, 12, 0.5, 1, 3, END, PAD, start_tokens=(PAD,))

    def logp(seq):
        toks = [PAD, *seq, END]
        return sum(float(table[i, toks[i], toks[i + 1]]) for i in range(len(toks) - 1))

    brute = sorted(((logp(s), s) for n in (1, 2) for s in itertools.product((A, B, C), repeat=n)), reverse=True)
    found = [tuple(t[:n]) for t, n in zip(tokens[0].tolist(), lengths[0].tolist())]
    assert found == [s for _, s in brute]
    assert torch.allclose(scores[0], torch.tensor([s for s, _ in brute], dtype=scores.dtype))


def test_length_window_and_banned_tokens_hold_on_a_random_model():
    g = torch.Generator().manual_seed(2)
    table = torch.log_softmax(torch.randn(2, 8, 12, 12, generator=g, dtype=torch.float64), -1)
    step = lambda tokens, state: (table[state, tokens.shape[1] - 1, tokens[:, -1]], state)
    expand = lambda s, i: s[i]
    tokens, scores, lengths = diverse_beam_search(
        step, 2, 5, 2, 0.3, 3, 6, END, PAD, banned_tokens=(2,), start_tokens=(PAD,), state=torch.arange(2),
        reorder=expand,
    )  # fmt: skip
    assert tokens.shape == (2, 10, 5) and torch.isfinite(scores).all()
    assert ((lengths >= 3) & (lengths < 6)).all()
    for row, n in zip(tokens.view(-1, 5).tolist(), lengths.view(-1).tolist()):
        assert all(t not in (PAD, END, 2) for t in row[:n]) and all(t == PAD for t in row[n:])
    with pytest.raises(ValueError, match="min_len"):
        diverse_beam_search(step, 1, 1, 1, 0.1, 4, 4, END, PAD)
