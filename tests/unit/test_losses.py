"""Alignment losses: hand-worked values, reductions between them, guards, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from steerrec.alignment.losses import (
    LOSSES,
    adaptive_margin,
    dpo_loss,
    get_loss,
    preference_score,
    recpo_loss,
    sdpo_loss,
    sft_loss,
    simpo_loss,
)

T = torch.tensor


def _zeros(*shape):
    return torch.zeros(*shape, dtype=torch.float64)


def test_sft_by_hand():
    logps = T([[-1.0, -2.0, -9.0], [-3.0, float("-inf"), -7.0]])
    mask = T([[1, 1, 0], [1, 0, 0]])
    out = sft_loss(logps, mask)
    assert out.loss.item() == pytest.approx(2.0)  # (1 + 2 + 3) / 3 tokens
    assert out.per_example.tolist() == pytest.approx([1.5, 3.0])
    assert out.chosen_rewards is None and out.metrics() == {"loss": pytest.approx(2.0)}


def test_sft_rejects_empty_rows_and_bad_shapes():
    with pytest.raises(ValueError, match=r"no target token: \[1\]"):
        sft_loss(T([[-1.0], [-2.0]]), T([[1], [0]]))
    with pytest.raises(ValueError, match="both be \\[B, T\\]"):
        sft_loss(T([-1.0]), T([1]))


def test_dpo_by_hand():
    # r_w = -1 - (-1.5) = 0.5, r_l = -2 - (-1.5) = -0.5, beta 1 -> -log sigma(1)
    out = dpo_loss(T([-1.0]), T([-2.0]), T([-1.5]), T([-1.5]), beta=1.0)
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)
    assert out.loss.item() == pytest.approx(0.31326168751822286, rel=1e-6)
    assert out.chosen_rewards.tolist() == [0.5] and out.rejected_rewards.tolist() == [[-0.5]]
    m = out.metrics()
    assert m["rewards/margin"] == pytest.approx(1.0) and m["rewards/accuracy"] == 1.0


def test_dpo_beta_scales_and_batch_mean():
    # r_w - r_l = [1, -1], beta 0.5 -> [-log sigma(0.5), -log sigma(-0.5)]
    out = dpo_loss(T([0.0, 0.0]), T([[-1.0], [1.0]]), T([0.0, 0.0]), T([[0.0], [0.0]]), beta=0.5)
    per = [math.log1p(math.exp(-0.5)), math.log1p(math.exp(0.5))]
    assert out.per_example.tolist() == pytest.approx(per, rel=1e-6)
    assert out.loss.item() == pytest.approx(sum(per) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="K=2; use sdpo_loss"):
        dpo_loss(T([0.0]), T([[0.0, 0.0]]), T([0.0]), T([[0.0, 0.0]]), beta=1.0)


def test_sdpo_by_hand():
    # r_w = 0, r_k = [0, 0] -> -log sigma(-log 2) = log 3
    out = sdpo_loss(_zeros(1), _zeros(1, 2), _zeros(1), _zeros(1, 2), beta=1.0)
    assert out.loss.item() == pytest.approx(math.log(3.0), rel=1e-12)
    # r_w = 1, r_k = [0, 1], beta 2 -> z = log(e^-2 + e^0), loss = log(1 + e^-2 + 1)
    out = sdpo_loss(T([1.0]), T([[0.0, 1.0]]), T([0.0]), T([[0.0, 0.0]]), beta=2.0)
    assert out.loss.item() == pytest.approx(math.log(2 + math.exp(-2)), rel=1e-6)


def test_sdpo_with_one_negative_is_dpo():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(8, generator=g, dtype=torch.float64) * 5 for _ in range(4))
    d = dpo_loss(pc, pr, rc, rr, beta=0.7)
    s = sdpo_loss(pc, pr[:, None], rc, rr[:, None], beta=0.7)
    assert torch.equal(d.per_example, s.per_example)
    assert torch.equal(d.loss, s.loss)


def test_adaptive_margins_by_hand():
    s_w, s_k = T([4.0]), T([[2.0, 4.0]])
    assert adaptive_margin(s_w, s_k, "ratio").tolist() == [[2.0, 1.0]]
    assert adaptive_margin(s_w, s_k, "difference")[0].tolist() == pytest.approx([math.log(3), 0.0])
    assert adaptive_margin(s_w, s_k, "log_ratio")[0].tolist() == pytest.approx([math.log(2), 0.0])


@pytest.mark.parametrize(
    "form, expected",
    [
        ("ratio", math.log(1 + math.e**2 + math.e)),  # z = log(e^2 + e^1): 2.40760596444438
        ("difference", math.log(5.0)),  # z = log(e^log3 + e^0) = log 4
        ("log_ratio", math.log(4.0)),  # z = log(e^log2 + e^0) = log 3
    ],
)
def test_recpo_by_hand(form, expected):
    out = recpo_loss(
        _zeros(1),
        _zeros(1, 2),
        _zeros(1),
        _zeros(1, 2),
        T([4.0], dtype=torch.float64),
        T([[2.0, 4.0]], dtype=torch.float64),
        beta=1.0,
        lam=1.0,
        margin=form,
    )
    assert out.loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("form", ["ratio", "difference", "log_ratio"])
def test_recpo_with_lambda_zero_is_sdpo(form):
    g = torch.Generator().manual_seed(1)
    pc, rc = torch.randn(6, generator=g), torch.randn(6, generator=g)
    pr, rr = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    s_w = torch.full((6,), 5.0)
    s_k = torch.rand(6, 3, generator=g) * 4 + 0.5
    r = recpo_loss(pc, pr, rc, rr, s_w, s_k, beta=1.3, lam=0.0, margin=form)
    s = sdpo_loss(pc, pr, rc, rr, beta=1.3)
    assert torch.equal(r.per_example, s.per_example) and torch.equal(r.loss, s.loss)
    assert not torch.equal(recpo_loss(pc, pr, rc, rr, s_w, s_k, beta=1.3, lam=1.0, margin=form).loss, s.loss)


def test_recpo_margin_raises_the_loss_more_for_a_stronger_preference():
    args = (_zeros(1), _zeros(1, 1), _zeros(1), _zeros(1, 1))
    weak = recpo_loss(*args, T([4.0]), T([[3.0]]), beta=1.0, lam=1.0).loss
    strong = recpo_loss(*args, T([5.0]), T([[1.0]]), beta=1.0, lam=1.0).loss
    assert strong > weak


def test_score_guards_name_the_argument():
    args = (_zeros(2), _zeros(2, 2), _zeros(2), _zeros(2, 2))
    with pytest.raises(ValueError, match="score_rejected must be > 0"):
        recpo_loss(*args, T([1.0, 2.0]), T([[1.0, 0.0], [1.0, 1.0]]), beta=1.0, lam=1.0)
    with pytest.raises(ValueError, match="score_chosen must be > 0"):
        recpo_loss(*args, T([-1.0, 2.0]), T([[1.0, 1.0], [1.0, 1.0]]), beta=1.0, lam=1.0)
    with pytest.raises(ValueError, match="1 \\+ score_chosen - score_rejected > 0"):
        adaptive_margin(T([1.0]), T([[2.5]]), "difference")
    with pytest.raises(ValueError, match="unknown margin form 'linear'; known: ratio, difference, log_ratio"):
        adaptive_margin(T([1.0]), T([[1.0]]), "linear")
    with pytest.raises(ValueError, match="score_rejected has 1 items per example, policy_rejected 2"):
        recpo_loss(*args, T([1.0, 1.0]), T([1.0, 1.0]), beta=1.0, lam=1.0)


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="policy_chosen must be \\[B\\]"):
        sdpo_loss(_zeros(2, 1), _zeros(2, 3), _zeros(2), _zeros(2, 3), beta=1.0)
    with pytest.raises(ValueError, match="ref_rejected shape \\(2, 2\\) differs"):
        sdpo_loss(_zeros(2), _zeros(2, 3), _zeros(2), _zeros(2, 2), beta=1.0)
    with pytest.raises(ValueError, match="policy_rejected must be \\[B\\] or \\[B, K\\] with B=2"):
        sdpo_loss(_zeros(2), _zeros(3, 3), _zeros(2), _zeros(3, 3), beta=1.0)


def test_simpo_by_hand():
    # beta 2, gamma 0.5: 2 * (-1 - (-1.25)) - 0.5 = 0 -> -log sigma(0) = log 2
    out = simpo_loss(T([-1.0]), T([-1.25]), beta=2.0, gamma=0.5)
    assert out.loss.item() == pytest.approx(math.log(2.0), rel=1e-6)
    assert out.chosen_rewards.tolist() == [-2.0] and out.rejected_rewards.tolist() == [[-2.5]]
    # gamma 0: plain pairwise, beta 1, gap 1 -> -log sigma(1)
    out = simpo_loss(T([0.0]), T([[-1.0]]), beta=1.0, gamma=0.0)
    assert out.loss.item() == pytest.approx(0.31326168751822286, rel=1e-6)
    # K = 2, avg equal everywhere, gamma 0 -> log(1 + 2) as for S-DPO
    out = simpo_loss(_zeros(1), _zeros(1, 2), beta=1.0, gamma=0.0)
    assert out.loss.item() == pytest.approx(math.log(3.0), rel=1e-12)


def test_preference_score_by_hand():
    assert preference_score(4, 3) == pytest.approx(2.0)  # 4 / sqrt(1 + 3)
    assert preference_score(3.0, 10) == pytest.approx(3 / math.sqrt(11))
    assert preference_score(5, 0) == 5
    assert preference_score(2.0, 3, decay=1.0) == pytest.approx(0.5)
    np.testing.assert_allclose(preference_score(np.array([4.0, 1.0]), np.array([0, 8])), [4.0, 1 / 3])
    scored = preference_score(T([4.0, 1.0]), T([3.0, 0.0]))
    assert scored.tolist() == pytest.approx([2.0, 1.0])
    with pytest.raises(ValueError, match="rating must be > 0"):
        preference_score(T([4.0, 0.0]), T([0.0, 0.0]))
    with pytest.raises(ValueError, match="steps_ahead must be >= 0"):
        preference_score(4.0, -1)


def _preference_inputs(b: int = 4, k: int = 3):
    g = torch.Generator().manual_seed(2)
    pc = torch.randn(b, generator=g).requires_grad_()
    pr = torch.randn(b, k, generator=g).requires_grad_()
    return pc, pr, torch.randn(b, generator=g), torch.randn(b, k, generator=g)


@pytest.mark.parametrize("name", ["dpo", "sdpo", "recpo", "simpo"])
def test_gradients_flow_and_are_finite(name):
    pc, pr, rc, rr = _preference_inputs(k=1 if name == "dpo" else 3)
    if name == "dpo":
        out = dpo_loss(pc, pr, rc, rr, beta=1.0)
    elif name == "sdpo":
        out = sdpo_loss(pc, pr, rc, rr, beta=1.0)
    elif name == "recpo":
        out = recpo_loss(pc, pr, rc, rr, torch.full((4,), 5.0), torch.full((4, 3), 3.0), beta=1.0, lam=2.0)
    else:
        out = simpo_loss(pc, pr, beta=2.0, gamma=0.5)
    out.loss.backward()
    for grad in (pc.grad, pr.grad):
        assert grad is not None and torch.isfinite(grad).all() and (grad != 0).all()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()  # push chosen up, rejected down


def test_sft_gradient():
    logps = T([[-1.0, -2.0], [-3.0, -4.0]], requires_grad=True)
    sft_loss(logps, T([[1, 1], [1, 0]])).loss.backward()
    assert logps.grad.flatten().tolist() == pytest.approx([-1 / 3, -1 / 3, -1 / 3, 0.0])


def test_stable_for_large_reward_gaps():
    # beta 100, r_w - r_l = -50 -> logits -5000: loss 5000 exactly, gradient finite
    pc = T([-60.0], requires_grad=True)
    out = dpo_loss(pc, T([-10.0]), T([0.0]), T([0.0]), beta=100.0)
    assert out.loss.item() == pytest.approx(5000.0)
    out.loss.backward()
    assert pc.grad.item() == pytest.approx(-100.0)
    # and the winning side: loss underflows to ~0, not nan
    assert dpo_loss(T([60.0]), T([-10.0]), T([0.0]), T([0.0]), beta=100.0).loss.item() == pytest.approx(0.0)
    big = recpo_loss(
        T([-80.0]),
        T([[50.0, 60.0, -900.0]]),
        T([0.0]),
        T([[0.0, 0.0, 0.0]]),
        T([5.0]),
        T([[0.1, 0.2, 0.3]]),
        beta=50.0,
        lam=2.0,
    )
    # z = logsumexp(50 * [130, 140, -820] + 2 * [50, 25, 16.67]) ~ 7050; loss ~ z
    assert torch.isfinite(big.loss) and big.loss.item() == pytest.approx(7050.0, rel=1e-6)


def test_registry():
    assert set(LOSSES) == {"sft", "dpo", "sdpo", "simpo", "recpo", "rlso", "infonce"}
    assert get_loss("recpo") is recpo_loss
    with pytest.raises(KeyError, match="unknown loss 'ipo'; known: dpo, infonce, recpo, rlso, sdpo, sft, simpo"):
        get_loss("ipo")
