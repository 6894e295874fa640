"""LangPTune rollouts and the two phases on the one loop, with a tiny random policy (a
tokenizer the test trains, LoRA) and the offline MiniLM embedder."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from steerrec.alignment import model as M  # noqa: E402
from steerrec.alignment.loss_configs import RLSOConfig  # noqa: E402
from steerrec.embed import EmbedderConfig, embed_texts  # noqa: E402
from steerrec.langptune.config import EmbedderPhaseConfig, PolicyPhaseConfig  # noqa: E402
from steerrec.langptune.embedder import Catalog, embed_frozen  # noqa: E402
from steerrec.langptune.embedder_task import EmbedderTask  # noqa: E402
from steerrec.langptune.policy_task import PolicyTask  # noqa: E402
from steerrec.langptune.reward import RewardConfig  # noqa: E402
from steerrec.langptune.rollouts import (  # noqa: E402
    Profile,
    RolloutConfig,
    encode_profiles,
    ensure_chat_template,
    generate_in_process,
    profile_requests,
    read_profiles,
    reference_logps,
    sequence_logps,
)
from steerrec.langptune.sessions import Session, SessionConfig, profile_messages  # noqa: E402
from steerrec.train.loop import LoopConfig, fit_local  # noqa: E402

ITEMS = {
    "a": "Title: Rose Soap | Categories: Bath",
    "b": "Title: Lavender Candle | Categories: Home",
    "c": "Title: Cedar Shampoo | Categories: Hair",
    "d": "Title: Mint Toothpaste | Categories: Dental",
    "e": "Title: Citrus Lotion | Categories: Skin",
    "f": "Title: Pine Body Wash | Categories: Bath",
}
CATALOG = Catalog(list(ITEMS), list(ITEMS.values()))
SESSIONS = {
    "train": [
        Session("u1", 5, "train", ("a", "b", "c", "d"), "e", (5.0, 4.0, None, 1.0), ("lovely scent", "ok", "", "bad")),
        Session("u2", 6, "train", ("b", "c", "d", "e"), "f", (3.0, 3.0, 5.0, 2.0), ("", "", "fresh", "")),
        Session("u3", 5, "train", ("f", "e", "d", "c"), "a"),
    ],
    "valid": [Session("u1", 6, "valid", ("b", "c", "d", "e"), "a")],
}
MINILM = EmbedderConfig(model="minilm")


def _messages(s: Session) -> list[dict[str, str]]:
    return profile_messages(s, CATALOG.text_of, SessionConfig())


@pytest.fixture(scope="module")
def tok():
    texts = [m["content"] for ss in SESSIONS.values() for s in ss for m in _messages(s)]
    tok = M.build_tokenizer(texts * 3, vocab_size=300)
    ensure_chat_template(tok)
    return tok


def _policy(tok, seed=0):
    cfg = M.ModelConfig(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, lora_r=4)
    model = M.add_lora(M.build_tiny(cfg, tok, seed), cfg)
    # raise EOS's score after 4 tokens so that a random model's profiles end inside the budget
    model.generation_config.exponential_decay_length_penalty = (4, 1.6)
    return model


def test_requests_are_two_per_session_and_seeded_per_row():
    rows = profile_requests(SESSIONS["train"][:2], _messages, RolloutConfig(profile_length=16), iteration=3)
    assert [(r["user_id"], r["sample"]) for r in rows] == [("u1", 0), ("u1", 1), ("u2", 0), ("u2", 1)]
    assert {r["sampling_params"]["max_tokens"] for r in rows} == {16}
    seeds = [r["sampling_params"]["seed"] for r in rows]
    assert len(set(seeds)) == 4
    again = profile_requests(SESSIONS["train"][:2], _messages, RolloutConfig(profile_length=16), iteration=3)
    assert seeds == [r["sampling_params"]["seed"] for r in again]  # stable per session, sample and iteration
    later = profile_requests(SESSIONS["train"][:2], _messages, RolloutConfig(profile_length=16), iteration=4)
    assert seeds != [r["sampling_params"]["seed"] for r in later]


def test_a_profile_that_uses_its_whole_budget_is_cut():
    rows = profile_requests(SESSIONS["train"][:1], _messages, RolloutConfig(profile_length=8), 0)
    out = read_profiles(
        [rows[0] | {"generated_text": "x", "num_generated_tokens": 7}, rows[1] | {"num_generated_tokens": 8}]
    )
    assert [p.finished for p in out] == [True, False] and out[1].text == ""


def test_in_process_rollouts_and_log_probs(tok):
    policy = _policy(tok)
    rows = profile_requests(SESSIONS["train"][:2], _messages, RolloutConfig(profile_length=24), 0, seeded=False)
    profiles = read_profiles(generate_in_process(policy, tok, rows, seed=1))
    assert len(profiles) == 4 and all(p.finished for p in profiles)
    assert read_profiles(generate_in_process(policy, tok, rows, seed=1)) == profiles  # one seed per call
    prompts, comps = encode_profiles(tok, [r["messages"] for r in rows], profiles)
    assert all(c[-1] == tok.eos_token_id for c in comps)
    cut = encode_profiles(tok, [rows[0]["messages"]], [Profile("u1", 5, 0, "rose", False, 24)])[1][0]
    assert cut == tok("rose", add_special_tokens=False)["input_ids"]  # no EOS after a cut profile
    with torch.no_grad():
        got = sequence_logps(policy, prompts, comps, chunk=3)
        for n in range(4):  # one forward over the whole sequence, summed by hand
            ids = torch.tensor([prompts[n] + comps[n]])
            logp = torch.log_softmax(policy(input_ids=ids).logits[0].float(), -1)
            want = sum(float(logp[len(prompts[n]) - 1 + j, t]) for j, t in enumerate(comps[n]))
            assert float(got[n]) == pytest.approx(want, abs=1e-4)
        assert torch.allclose(reference_logps(policy, prompts, comps), got)  # fresh LoRA: B = 0
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)
        moved = sequence_logps(policy, prompts, comps)
        assert not torch.allclose(moved, got, atol=1e-3)
        assert torch.allclose(reference_logps(policy, prompts, comps), got, atol=1e-5)  # adapters off


def test_policy_phase_updates_every_lora_weight_through_the_loop(tok, tmp_path):
    vecs = embed_texts(CATALOG.texts, MINILM)
    cfg = PolicyPhaseConfig(
        rollout=RolloutConfig(profile_length=24),
        reward=RewardConfig(k=3, kl_coef=0.2),
        rlso=RLSOConfig(eta=1.0),
        sessions_per_iteration=3,
        minibatch=1,
        max_valid=1,
    )
    policy = _policy(tok)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    task = PolicyTask(cfg, SESSIONS, CATALOG, lambda t: embed_texts(t, MINILM), vecs, lambda: (policy, tok))
    loop = LoopConfig(epochs=2, lr=5e-2, weight_decay=0.0, monitor="ndcg@3", trainable_only=True, progress=False)
    summary, ckpt = fit_local(task, loop, tmp_path / "ckpt")
    row = summary["history"][-1]
    assert row["train_examples"] == 3 and row["steps"] == 3
    assert 0.0 <= row["rollout_ndcg"] <= 1.0 and row["rollout_cut_share"] < 1.0
    assert row["rollout_profiles_per_s"] > 0 and "valid_ndcg@3" in row
    lora = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n for n in lora)
    unchanged = [n for n in lora if torch.equal(before[n], dict(policy.named_parameters())[n])]
    assert not unchanged, f"LoRA weights that never moved: {unchanged}"
    base_moved = [n for n, p in policy.named_parameters() if n not in lora and not torch.equal(p, before[n])]
    assert not base_moved  # the reference (adapters off) is untouched
    from safetensors.torch import load_file

    assert {k.removeprefix("policy.") for k in load_file(str(ckpt / "model.safetensors"))} == lora


def test_embedder_phase_updates_the_embedder_through_the_loop(tmp_path):
    pairs = {
        "train": [("likes bath products and soap", "a"), ("home scents", "b"), ("hair care", "c"), ("bath", "f")],
        "valid": [("candles for the living room", "b")],
    }
    cfg = EmbedderPhaseConfig(embedder=MINILM, batch_size=2, max_valid=1, k=3)
    task = EmbedderTask(cfg, pairs, CATALOG)
    loop = LoopConfig(epochs=1, lr=1e-4, weight_decay=0.0, monitor="ndcg@3", progress=False)
    summary, ckpt = fit_local(task, loop, tmp_path / "emb")
    row = summary["history"][-1]
    assert row["steps"] == 2 and row["train_examples"] == 4 and 0.0 <= row["valid_ndcg@3"] <= 1.0
    before = embed_texts(["home scents"], MINILM)  # the shared cached embedder is not the one trained
    trained = EmbedderTask(cfg, pairs, CATALOG, init_weights=ckpt / "model.safetensors").build_model()
    after = embed_frozen(trained, ["home scents"])
    assert float(abs(after - before).max()) > 1e-5
    with pytest.raises(KeyError, match="'zz' is not in the catalog"):
        EmbedderTask(cfg, {"train": [("x", "a"), ("y", "zz")]}, CATALOG)
