"""RLSO (REBEL form) and InfoNCE: the docstrings' hand-worked values, shapes, the registry."""

from __future__ import annotations

import math

import pytest
import torch

from steerrec.alignment.loss_configs import InfoNCEConfig, RLSOConfig
from steerrec.alignment.losses import LOSSES, PREFERENCE_LOSSES, get_loss, loss_spec
from steerrec.alignment.rl_losses import infonce_loss, rlso_loss

T = torch.tensor


def test_rlso_by_hand():
    args = (T([-1.0]), T([-2.0]), T([-1.5]), T([-2.0]), T([1.0]), T([0.25]))
    assert float(rlso_loss(*args, eta=1.0).loss) == pytest.approx(0.0625)  # (0.5 - 0 - 0.75)^2
    assert float(rlso_loss(*args, eta=2.0).loss) == pytest.approx(1.0)  # (0.5 - 1.5)^2


def test_rlso_is_zero_when_the_log_ratio_gap_equals_eta_times_the_reward_gap():
    # p's log-ratio 0.3, p' 's -0.2: the gap 0.5 matches eta 0.5 x reward gap 1
    # row 2: equal rewards, p's log-ratio 1 and p' 's 0: (1 - 0 - 0)^2 = 1
    out = rlso_loss(T([0.3, 1.0]), T([-0.2, 0.0]), T([0.0, 0.0]), T([0.0, 0.0]), T([1.0, 0.5]), T([0.0, 0.5]), eta=0.5)
    assert out.per_example.tolist() == pytest.approx([0.0, 1.0])
    assert float(out.loss) == pytest.approx(0.5)


def test_rlso_gradient_moves_the_better_profile_up():
    policy = T([-1.0, -1.0], requires_grad=True)  # p, p'
    out = rlso_loss(policy[:1], policy[1:], T([-1.0]), T([-1.0]), T([1.0]), T([0.0]), eta=1.0)
    out.loss.backward()
    # d/dp (ratio_p - ratio_q - 1)^2 = 2 * (0 - 1) = -2: descent raises log pi(p), lowers log pi(p')
    assert policy.grad.tolist() == pytest.approx([-2.0, 2.0])


def test_rlso_shapes_are_checked():
    with pytest.raises(ValueError, match="share one shape"):
        rlso_loss(T([0.0, 1.0]), T([0.0]), T([0.0]), T([0.0]), T([0.0]), T([0.0]), eta=1.0)
    with pytest.raises(ValueError, match="policy_p must be"):
        rlso_loss(T([[0.0, 1.0]]), T([0.0]), T([0.0]), T([0.0]), T([0.0]), T([0.0]), eta=1.0)


def test_infonce_by_hand():
    q = T([[1.0, 0.0], [0.0, 1.0]])
    out = infonce_loss(q, T([[1.0, 0.0], [0.6, 0.8]]), temperature=0.1)  # logits [[10, 6], [0, 8]]
    want = (math.log1p(math.exp(-4)) + math.log1p(math.exp(-8))) / 2
    assert float(out.loss) == pytest.approx(want, rel=1e-5)  # float32
    assert want == pytest.approx(0.0092426671)
    tied = T([[1.0, 0.0], [1.0, 0.0]])
    assert float(infonce_loss(q, tied, 0.1).loss) == pytest.approx(math.log(2))
    assert float(infonce_loss(q, tied, 0.1, key_ids=T([7, 7])).loss) == pytest.approx(0.0, abs=1e-7)


def test_infonce_is_cosine_and_takes_in_batch_negatives():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    out = infonce_loss(3.0 * q, 0.5 * k, temperature=0.1)  # scale does not matter: cosine
    logits = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(k, dim=1).T / 0.1
    want = [float(torch.logsumexp(logits[i], 0) - logits[i, i]) for i in range(5)]
    assert out.per_example.tolist() == pytest.approx(want, abs=1e-5)
    with pytest.raises(ValueError, match="key_ids must be"):
        infonce_loss(q, k, 0.1, key_ids=T([1, 2]))


def test_registry_holds_rlso_and_infonce_apart_from_alignment():
    assert get_loss("rlso") is rlso_loss and get_loss("infonce") is infonce_loss
    assert "rlso" not in PREFERENCE_LOSSES and "infonce" not in PREFERENCE_LOSSES
    assert LOSSES["rlso"].config is RLSOConfig and LOSSES["infonce"].config is InfoNCEConfig
    # the registry's candidate layout: column 0 is p, column 1 is p'
    cand = {"policy": T([[-1.0, -2.0]]), "sampler": T([[-1.5, -2.0]]), "reward": T([[1.0, 0.25]])}
    assert float(loss_spec("rlso")(RLSOConfig(eta=1.0), cand).loss) == pytest.approx(0.0625)


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="rlso.eta must be > 0"):
        RLSOConfig(eta=0.0)
    with pytest.raises(ValueError, match="infonce.temperature must be > 0"):
        InfoNCEConfig(temperature=-1.0)
