"""The alignment LM on a tiny random model: candidate scoring, the reference, LoRA training."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from steerrec.alignment import model as M  # noqa: E402
from steerrec.alignment.losses import LOSSES, get_loss  # noqa: E402

PROMPTS = [
    "History:\nToy Story (1995) | Rating: 5\nHeat (1995) | Rating: 2\n"
    "Candidates:\nJumanji (1995)\nCasino (1995)\nAnswer:",
    "History:\nBabe (1995) | Rating: 4\nCandidates:\nSabrina (1995)\nNixon (1995)\nHeat (1995)\nAnswer:",
]
TITLES = [["Jumanji (1995)", "Casino (1995)", "Heat (1995)"], ["Sabrina (1995)", "Nixon (1995)", "Babe (1995)"]]


@pytest.fixture(scope="module")
def tok():
    return M.build_tokenizer(PROMPTS * 3, vocab_size=300)


def _tiny(tok, arch="llama", seed=0):
    cfg = M.ModelConfig(arch=arch, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64)
    return cfg, M.build_tiny(cfg, tok, seed=seed).eval()


def _manual(model, prompt: list[int], cand: list[int]) -> float:
    """log p(cand | prompt) by one forward over the single sequence, summed by hand."""
    ids = torch.tensor([prompt + cand])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return sum(float(logp[len(prompt) - 1 + j, tok]) for j, tok in enumerate(cand))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("share_prompt", [True, False])
def test_candidate_logps_equal_per_candidate_forward(tok, arch, share_prompt):
    _, model = _tiny(tok, arch)
    prompts, cands = M.encode(tok, PROMPTS, TITLES)
    assert len({len(c) for row in cands for c in row}) > 1, "candidates must differ in length to test padding"
    with torch.no_grad():
        total, mean = M.candidate_logps(model, prompts, cands, share_prompt=share_prompt)
    assert total.shape == mean.shape == (2, 3)
    for b in range(2):
        for c in range(3):
            want = _manual(model, prompts[b], cands[b][c])
            assert float(total[b, c]) == pytest.approx(want, abs=1e-4)
            assert float(mean[b, c]) == pytest.approx(want / len(cands[b][c]), abs=1e-4)


def test_tokenizer_round_trips_titles(tok):
    for title in TITLES[0] + TITLES[1]:
        ids = tok(" " + title, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids).strip() == title


def _lora_params(peft_model):
    return {n: p for n, p in peft_model.named_parameters() if "lora_" in n}


def test_reference_after_merge_is_the_sft_model(tok):
    cfg, base = _tiny(tok)
    sft = M.add_lora(base, cfg)
    with torch.no_grad():  # an SFT adapter that does something
        for p in _lora_params(sft).values():
            p.normal_(0, 0.2)
    prompts, cands = M.encode(tok, PROMPTS, TITLES)
    with torch.no_grad():
        sft_scores, _ = M.candidate_logps(sft, prompts, cands)
    merged = M.merge_lora(sft)
    policy = M.add_lora(merged, cfg)
    with torch.no_grad():
        for _n, p in _lora_params(policy).items():
            p.normal_(0, 0.2)  # a trained alignment adapter: the policy moved away
        moved, _ = M.candidate_logps(policy, prompts, cands)
    with M.reference(policy) as ref:
        ref_scores, _ = M.candidate_logps(ref, prompts, cands)
    torch.testing.assert_close(ref_scores, sft_scores, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(moved, sft_scores, atol=1e-2)
    assert not any(p.requires_grad for n, p in policy.named_parameters() if "lora_" not in n)


def test_every_lora_parameter_changes_and_base_stays(tok):
    """B starts at zero, so A's first gradient is exactly zero: step 1 moves every B,
    step 2 every A. The base weights never move."""
    cfg, base = _tiny(tok)
    policy = M.add_lora(base, cfg).train()
    lora = _lora_params(policy)
    assert lora, "LoRA found no target modules"
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    prompts, cands = M.encode(tok, PROMPTS, TITLES)
    loss_fn = get_loss("recpo")
    for step in (1, 2):
        total, _ = M.candidate_logps(policy, prompts, cands)
        with M.reference(policy) as ref:
            ref_total, _ = M.candidate_logps(ref, prompts, cands)
        out = loss_fn(
            total[:, 0],
            total[:, 1:],
            ref_total[:, 0],
            ref_total[:, 1:],
            torch.tensor([4.0, 5.0]),
            torch.tensor([[3.0, 2.0], [3.0, 1.0]]),
            beta=1.0,
            lam=1.0,
        )
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if step == 1:
            unchanged = [n for n, p in lora.items() if "lora_B" in n and torch.equal(p, before[n])]
            assert not unchanged, f"B matrices unchanged after one step: {unchanged}"
    unchanged = [n for n, p in lora.items() if torch.equal(p, before[n])]
    assert not unchanged, f"LoRA parameters unchanged after two steps: {unchanged}"
    moved = [n for n, p in policy.named_parameters() if n not in lora and not torch.equal(p, before[n])]
    assert not moved, f"base weights moved: {moved}"


def test_loss_registry_wiring():
    """One registry: per loss the function, its config section and the inputs it reads."""
    from steerrec.alignment.losses import PREFERENCE_LOSSES, LossConfig, RecPOConfig, loss_spec

    assert set(LOSSES) == {"sft", "dpo", "sdpo", "simpo", "recpo", "rlso", "infonce"}
    assert set(PREFERENCE_LOSSES) == set(LOSSES) - {"sft", "rlso", "infonce"}  # LangPTune's are not loss.name's
    with pytest.raises(KeyError, match="known: dpo, infonce, recpo, rlso, sdpo, sft, simpo"):
        get_loss("ipo")
    assert get_loss("recpo") is loss_spec("recpo").fn and loss_spec("dpo").max_negatives == 1
    assert loss_spec("simpo").inputs == ("mean",) and not loss_spec("simpo").needs_reference
    s = torch.tensor([[-1.0, -2.0, -3.0]])
    r = torch.tensor([[-1.5, -1.5, -1.5]])
    scores = torch.tensor([[4.0, 2.0, 3.0]])

    def inputs(k):
        return {"policy": s[:, :k], "mean": s[:, :k] / 2, "reference": r[:, :k], "scores": scores[:, :k]}

    for name in PREFERENCE_LOSSES:
        out = LossConfig(name=name)(inputs(2 if name == "dpo" else 3))  # DPO takes one rejected item
        assert torch.isfinite(out.loss) and out.chosen_rewards.shape == (1,)
    # column 0 is the preferred item: DPO by hand, beta 1, r_w = -1 + 1.5, r_l = -2 + 1.5
    assert float(LossConfig(name="dpo")(inputs(2)).loss) == pytest.approx(0.3132616875)
    # RecPO with lam = 0 is S-DPO
    a = LossConfig(name="recpo", recpo=RecPOConfig(beta=1.0, lam=0.0))(inputs(3))
    b = LossConfig(name="sdpo")(inputs(3))
    assert float(a.loss) == pytest.approx(float(b.loss))
    # each loss reads its own section: SimPO's gamma moves SimPO only
    simpo = LossConfig(name="simpo")
    before = float(simpo(inputs(3)).loss)
    simpo.simpo.gamma = 2.0
    assert float(simpo(inputs(3)).loss) > before


def test_loss_configs_name_the_field_and_value():
    from steerrec.alignment.losses import DPOConfig, LossConfig, RecPOConfig, SimPOConfig

    with pytest.raises(ValueError, match=r"loss.name must be one of .* got 'sft'"):
        LossConfig(name="sft")
    with pytest.raises(ValueError, match="loss.dpo.beta must be > 0, got 0"):
        DPOConfig(beta=0)
    with pytest.raises(ValueError, match="loss.simpo.gamma must be >= 0, got -1"):
        SimPOConfig(gamma=-1)
    with pytest.raises(ValueError, match="loss.recpo.margin must be one of .* got 'sqrt'"):
        RecPOConfig(margin="sqrt")
    with pytest.raises(ValueError, match="loss.recpo.lam must be >= 0, got -0.5"):
        RecPOConfig(lam=-0.5)


def test_generate_titles_batched_equals_single(tok):
    _, model = _tiny(tok)
    both = M.generate_titles(model, tok, PROMPTS, max_new_tokens=6, batch_size=2)
    alone = [M.generate_titles(model, tok, [p], max_new_tokens=6)[0] for p in PROMPTS]
    assert both == alone and all(isinstance(t, str) for t in both)


def test_model_config_names_bad_fields():
    with pytest.raises(ValueError, match="model.source"):
        M.ModelConfig(source="onnx")
    with pytest.raises(ValueError, match="model.name is required"):
        M.ModelConfig(source="hf")
