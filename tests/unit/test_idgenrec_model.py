"""IDGenRec's two tiny random T5s: prompts, constrained recommendation, soft IDs, candidates."""

from __future__ import annotations

import pytest
import torch

from steerrec.decoding import PrefixTrie
from steerrec.models.idgenrec import IDGenRec, IDGenRecConfig
from steerrec.models.idgenrec_text import EOS_ID, PAD_ID, TEMPLATES, build_tokenizer, encode_prompt, text_tokens
from steerrec.models.seq2seq import T5StackConfig
from steerrec.train.idgenrec_batches import Split, padded, rec_batch

NAMES = [
    ("rose", "soap", "acme"), ("red", "lip gloss", "glow"), ("blue", "shampoo", "acme"), ("green", "tea", "leaf"),
    ("rose", "lotion", "acme"), ("black", "mascara", "glow"), ("white", "cream", "leaf"), ("pink", "blush", "glow"),
    ("gold", "serum", "acme"), ("mint", "toothpaste", "leaf"), ("amber", "perfume", "glow"), ("clay", "mask", "leaf"),
]  # fmt: skip
TEXTS = [f"Title: {a} {b} | Brand: {c}" for a, b, c in NAMES]
TINY = T5StackConfig(num_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, dropout=0.0)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(TEXTS, vocab_size=150)


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    cfg = IDGenRecConfig(vocab_size=len(tok), generator=TINY, recommender=TINY, max_text_tokens=32)
    return IDGenRec(cfg).eval()


@pytest.fixture(scope="module")
def ids(tok):
    """Hand-made IDs: the titles' tokens, plus an ID that is a prefix of another ("rose")."""
    titles = [tuple(tok.encode(f"{a} {b}", add_special_tokens=False)) for a, b, _ in NAMES]
    return [*titles, tuple(tok.encode("rose", add_special_tokens=False))]


def test_tokenizer_has_t5_special_ids_and_reads_back(tok):
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    tokens = tok.encode("Rose soap", add_special_tokens=False)
    assert tok.decode(tokens) == "rose soap" and 2 not in tokens


def test_the_same_texts_give_the_same_tokenizer(tok):
    # the unigram trainer's own vocabulary order changes from call to call (hash-map order)
    again = [build_tokenizer(TEXTS, vocab_size=150).backend_tokenizer.to_str() for _ in range(4)]
    assert set(again) == {tok.backend_tokenizer.to_str()}


def test_prompt_slots_point_at_each_ids_tokens_and_old_ids_go_first(tok, ids):
    history = [ids[0], ids[5], ids[12]]
    tokens, items, places = encode_prompt(tok, 3, history, 200)
    assert tokens[-1] == EOS_ID
    for h, id_tokens in enumerate(history):
        at = [p for p, i in enumerate(items) if i == h]
        assert [tokens[p] for p in at] == list(id_tokens) and [places[p] for p in at] == list(range(len(id_tokens)))
    full = len(tokens)
    short, short_items, _ = encode_prompt(tok, 3, history, full - 1)  # no room for all three
    assert 0 not in short_items and {1, 2} <= set(short_items) and len(short) <= full - 1
    assert len(TEMPLATES) == 10 and all(t.count("{history}") == 1 for t in TEMPLATES)


def _teacher_logp(model, batch, id_tokens):
    """log p(ID + </s> | prompt) of one ID for each row of the batch."""
    labels = torch.tensor([[*id_tokens, EOS_ID]] * batch["input_ids"].shape[0])
    logits = model.recommender.logits(model.recommender.encode(batch), labels)
    return torch.log_softmax(logits.double(), -1).gather(-1, labels[..., None]).squeeze(-1).sum(-1)


def test_recommend_equals_brute_force_and_never_names_a_non_item(tok, model, ids):
    assert ids[0][: len(ids[12])] == ids[12]  # "rose" is a prefix of "rose soap": both are leaves
    trie = PrefixTrie.from_sequences(ids, model.config.vocab_size, EOS_ID, PAD_ID)
    split = Split([[0, 1], [4], [12, 3, 7]], [2, 3, 5])
    batch = rec_batch(tok, split, ids, torch.arange(3).numpy(), torch.zeros(3, dtype=torch.long).numpy(), 128)
    items, scores = model.recommend(batch, trie, len(ids), len(ids))
    brute = torch.stack([_teacher_logp(model, batch, t) for t in ids], 1)  # [B, n_items]
    want_scores, want_items = brute.sort(1, descending=True)
    assert items.tolist() == want_items.tolist()
    assert torch.allclose(scores.double(), want_scores, atol=1e-4)
    small, small_scores = model.recommend(batch, trie, 3, 3)  # a narrow beam: still only items
    assert ((small >= 0) & (small < len(ids))).all() and torch.isfinite(small_scores).all()


def test_soft_ids_with_one_hot_generator_equal_the_hard_prompt(tok, model, ids, monkeypatch):
    split = Split([[0, 1], [12, 3, 7]], [2, 5])
    texts = text_tokens(tok, TEXTS + ["rose"], 32)
    rows, templates = torch.arange(2).numpy(), torch.tensor([0, 4]).numpy()
    batch = rec_batch(tok, split, ids, rows, templates, 128, texts)
    # a generator sure of each item's current ID: softmax = one-hot, soft embedding = hard
    one_hot = lambda state, labels: 1e4 * torch.nn.functional.one_hot(labels.clamp(min=0), model.config.vocab_size)
    monkeypatch.setattr(model.generator, "logits", one_hot)
    assert model.soft_loss(batch).item() == pytest.approx(model.recommender(batch).item(), rel=1e-5)


def test_soft_loss_trains_the_generator_only(tok, model, ids):
    split = Split([[0, 1], [12, 3, 7]], [2, 5])
    batch = rec_batch(tok, split, ids, torch.arange(2).numpy(), torch.zeros(2).long().numpy(), 128, text_tokens(
        tok, TEXTS + ["rose"], 32))  # fmt: skip
    model.recommender.requires_grad_(False)
    try:
        model.zero_grad()
        model.soft_loss(batch).backward()
        assert all(p.grad is None for p in model.recommender.parameters())
        assert model.generator.t5.lm_head.weight.grad.abs().sum() > 0
        assert model.generator.t5.encoder.block[0].layer[0].SelfAttention.q.weight.grad.abs().sum() > 0
    finally:
        model.recommender.requires_grad_(True)
        model.zero_grad()


def test_candidates_are_k_ids_in_the_window(tok, model):
    x = padded(text_tokens(tok, TEXTS[:3], 32))
    found = model.candidates({"input_ids": x, "mask": x != PAD_ID}, 5, 1, 0.5, 2, 5)
    assert [len(c) for c in found] == [5, 5, 5]
    assert all(2 <= len(c) < 5 and EOS_ID not in c and PAD_ID not in c and 2 not in c for cs in found for c in cs)


def test_save_and_load_round_trip(tmp_path, model):
    model.save(tmp_path)
    again = IDGenRec.load(tmp_path)
    assert again.config == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="idgenrec.recommender.d_model"):
        IDGenRecConfig(recommender=T5StackConfig(d_model=0))
    with pytest.raises(ValueError, match="max_text_tokens"):
        IDGenRecConfig(max_text_tokens=1)
