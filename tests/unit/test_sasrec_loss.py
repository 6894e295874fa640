"""SASRec's loss option: the paper's BCE against one sampled negative beside the CE default."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from steerrec.config import load
from steerrec.models.sasrec import SASRec, SASRecConfig, bce_loss, sample_negatives
from steerrec.pipeline_config import load_pipeline
from steerrec.train.batches import Catalog
from steerrec.train.recommender import RecommenderJobConfig, model_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(loss: str, n_items: int = 3) -> SASRec:
    torch.manual_seed(0)
    cfg = SASRecConfig(n_items=n_items, hidden=8, num_blocks=1, num_heads=2, dropout=0.0, max_len=6, loss=loss)
    return SASRec(cfg)


def test_bce_loss_by_hand():
    # position 1: scores (0, 0) -> -log(1/2) - log(1/2) = 2 log 2
    # position 2: scores (2, -1) -> log(1 + e^-2) + log(1 + e^-1) = 0.126928 + 0.313262
    expected = (2 * math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    loss = bce_loss(torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0]))
    assert loss.shape == () and loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(0.913242, abs=1e-6)
    # a far better positive than negative costs almost nothing; the reverse costs ~ the gap
    assert bce_loss(torch.tensor([20.0]), torch.tensor([-20.0])).item() < 1e-8
    assert bce_loss(torch.tensor([-20.0]), torch.tensor([20.0])).item() == pytest.approx(40.0, abs=1e-6)


def test_sampled_negatives_are_never_the_target_and_cover_the_others():
    torch.manual_seed(0)
    target = torch.randint(1, 4, (6000,))
    negatives = sample_negatives(target, 3)
    assert negatives.shape == target.shape and negatives.dtype == torch.long
    assert not (negatives == target).any()
    assert int(negatives.min()) == 1 and int(negatives.max()) == 3
    for item in (1, 2, 3):  # uniform over the two others: each about half of its targets
        share = (negatives[target == item] == item % 3 + 1).float().mean().item()
        assert 0.45 < share < 0.55
    torch.manual_seed(0)
    again = sample_negatives(torch.randint(1, 4, (6000,)), 3)
    assert torch.equal(again, negatives)  # torch's RNG: the loop's seeding makes it reproducible


def test_bce_forward_is_the_helper_on_dot_product_scores_and_trains_item_emb():
    model = _model("bce").eval()  # eval: no dropout draws, so the RNG stream is the sampler's
    history = torch.tensor([[0, 0, 1, 2, 3, 1], [0, 3, 3, 2, 1, 2], [0, 0, 0, 0, 2, 1]] * 20)
    target = torch.tensor([[0, 0, 2, 3, 1, 2], [0, 3, 2, 1, 2, 3], [0, 0, 0, 0, 1, 3]] * 20)
    torch.manual_seed(7)
    loss = model({"history": history, "target": target})
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    grad = model.item_emb.weight.grad
    assert grad[1:].abs().sum() > 0 and grad[0].abs().sum() == 0  # padding row stays out
    with torch.no_grad():
        torch.manual_seed(7)
        states = model.hidden_states(history)[target > 0]
        positives = target[target > 0]
        negatives = sample_negatives(positives, 3)
        logits = model.logits(states)  # column k = item id k + 1, as score_all
        pos, neg = logits.gather(1, positives[:, None] - 1)[:, 0], logits.gather(1, negatives[:, None] - 1)[:, 0]
        torch.testing.assert_close(loss.detach(), bce_loss(pos, neg))
    # the last-position-only target ([B]) works too, and evaluation is the same as for ce
    assert torch.isfinite(model({"history": history, "target": target[:, -1]}))
    ce = _model("ce").eval()
    torch.testing.assert_close(ce.score_all(history), model.score_all(history))


def test_config_checks_the_loss_and_old_configs_default_to_ce(tmp_path):
    with pytest.raises(ValueError, match=r"sasrec\.loss must be one of \['ce', 'bce'\], got 'foo'"):
        SASRecConfig(n_items=3, loss="foo")
    with pytest.raises(ValueError, match=r"sasrec\.loss 'bce' needs n_items >= 2"):
        SASRecConfig(n_items=1, loss="bce")
    # a config.yaml written before the option (a trained run folder) loads as ce
    old = {"n_items": 3, "hidden": 8, "num_blocks": 1, "num_heads": 2, "dropout": 0.0, "max_len": 6}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    assert load(SASRecConfig, tmp_path / "old.yaml").loss == "ce"
    model = _model("ce")
    model.save(tmp_path / "run")
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(old))
    assert SASRec.load(tmp_path / "run").config.loss == "ce"
    _model("bce").save(tmp_path / "bce")
    assert SASRec.load(tmp_path / "bce").config.loss == "bce"


def test_the_option_reaches_the_model_from_the_pipeline_and_job_configs(tmp_path):
    cfg = load_pipeline(
        ROOT / "configs" / "lcrec_office.yaml", [f"out={tmp_path}", "train_per_model.sasrec.model_config.loss=bce"]
    )
    job = cfg.train_per_model["sasrec"]
    assert job.model_config["loss"] == "bce" and job.model_config["max_len"] == 20
    catalog = Catalog(["a", "b", "c"], ["A", "B", "C"], np.zeros((3, 0), dtype=np.int64))
    built = model_config(job, catalog, None)
    assert isinstance(built, SASRecConfig) and built.loss == "bce" and built.n_items == 3
    plain = RecommenderJobConfig(model="sasrec", data="d", benchmark="b", out="o")
    assert model_config(plain, catalog, None).loss == "ce"
    with pytest.raises(ValueError, match=r"sasrec\.loss must be one of"):
        model_config(RecommenderJobConfig(**{**vars(plain), "model_config": {"loss": "foo"}}), catalog, None)
