"""SFT then RecPO on a tiny model through the shared loop on Ray Train (DDP, checkpoints, resume,
a killed worker), and a tiny ASHA sweep."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("peft")

from tests.tiny_data import movielens_like

from steerrec.alignment.data import AlignmentDataConfig
from steerrec.alignment.losses import LossConfig
from steerrec.alignment.model import ModelConfig
from steerrec.alignment.train import AlignConfig, read_metrics, train_sft
from steerrec.run_folder import read_run_info

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp: Path, **kw) -> AlignConfig:
    base = dict(
        data=str(tmp / "data"),
        model=ModelConfig(hidden_size=32, intermediate_size=64, vocab_size=400),
        examples=AlignmentDataConfig(n_candidates=8, n_future=4),
        lr=1e-3,
        batch_size=8,
        max_valid=6,
        max_new_tokens=10,
        threads=1,
        progress=False,
    )
    return AlignConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("align")
    movielens_like(tmp / "data", length=12)
    return tmp


def _keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return list(f.keys())


@pytest.mark.slow
def test_sft_then_recpo_on_ray_train_with_resume(ray_session, workdir):
    from steerrec.alignment.train import fit_align, fit_sft

    sft = fit_sft(_cfg(workdir, out=str(workdir / "sft")), str(workdir / "ray"), name="sft")
    assert sft.error is None and sft.metrics["epoch"] == 1 and sft.checkpoint is not None
    assert (workdir / "sft" / "model.safetensors").is_file(), "a tiny SFT run keeps its merged weights"
    ckpt = Path(sft.checkpoint.path)
    assert {"model.safetensors", "optimizer.safetensors", "state.json", "tokenizer.json"} <= {
        p.name for p in ckpt.iterdir()
    }
    assert not list(ckpt.glob("*.pt")), "checkpoints are safetensors + JSON only"
    keys = _keys(ckpt / "model.safetensors")
    assert keys and all("lora_" in k for k in keys), "a LoRA checkpoint holds the adapter, not the base"

    cfg = _cfg(workdir, out=str(workdir / "recpo"), sft_run=str(workdir / "sft"), loss=LossConfig(name="recpo"))
    cfg.num_workers = 2  # DDP over the LossModule: policy + reference forwards in one forward
    first = fit_align(cfg, str(workdir / "ray"), name="recpo")
    assert first.error is None and first.metrics["epoch"] == 1
    assert {"train_loss", "rewards/margin", "examples_per_s", "valid_hr1"} <= set(first.metrics)
    assert (workdir / "recpo" / "adapter_model.safetensors").is_file()
    info = read_run_info(workdir / "recpo", kinds=("align",))
    assert info.details["loss"] == "recpo" and info.details["sft_run"] == str(workdir / "sft")
    assert info.details["loss_config"] == {"beta": 1.0, "lam": 2.0, "margin": "ratio"}

    cfg.epochs, cfg.num_workers = 2, 1  # resume: the same Train run name and storage train epoch 2 only
    second = fit_align(cfg, str(workdir / "ray"), name="recpo")
    assert second.error is None and second.metrics["epoch"] == 2 and second.metrics["start_epoch"] == 2
    assert [m["epoch"] for m in read_metrics(workdir / "recpo")] == [1, 2]


@pytest.mark.slow
def test_a_killed_sft_worker_resumes_from_its_last_checkpoint(ray_session, workdir, tmp_path):
    from steerrec.alignment.train import fit_sft

    marker = tmp_path / "failed-once"
    cfg = _cfg(workdir, out=str(tmp_path / "sft"), epochs=2, fail_at_epoch=2, fail_marker=str(marker))
    result = fit_sft(cfg, str(tmp_path / "ray"), name="sft-killed")
    assert marker.is_file(), "worker 0 was not killed"
    assert result.error is None and result.metrics["epoch"] == 2
    assert result.metrics["start_epoch"] == 2, "the restarted worker trained epoch 1 again"
    history = read_metrics(tmp_path / "sft")
    assert [m["epoch"] for m in history] == [1, 2] and [m["start_epoch"] for m in history] == [1, 2]
    assert read_run_info(tmp_path / "sft", kinds=("sft",)).details["epochs"] == 2


def test_tune_sweep_of_two_trials_with_asha(ray_session, workdir, tmp_path):
    sft = _cfg(workdir, out=str(tmp_path / "sft"), max_valid=0)
    train_sft(sft, lambda metrics: None)
    spec = importlib.util.spec_from_file_location("_sweep", REPO / "tune" / "_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    sys.modules["_sweep"] = sweep
    spec.loader.exec_module(sweep)
    from ray import tune

    cfg = _cfg(workdir, sft_run=str(tmp_path / "sft"), loss=LossConfig(name="recpo"), epochs=2, max_train=16)
    space = {"loss.recpo.lam": tune.grid_search([0.5, 2.0])}
    results = sweep.run_sweep(cfg, space, tmp_path / "sweeps", "margin", cpus_per_trial=1, max_concurrent=2)
    assert len(results) == 2 and not results.errors
    assert sorted(r.config["loss.recpo.lam"] for r in results) == [0.5, 2.0]
    assert all(0.0 <= r.metrics["valid_hr1"] <= 1.0 for r in results)
    assert all(r.checkpoint is not None for r in results)
    table = sweep.summarise(results, ["loss.recpo.lam"], tmp_path / "margin.png")
    assert "lam=0.5" in table and "lam=2.0" in table and (tmp_path / "margin.png").stat().st_size > 0
    again = sweep.run_sweep(cfg, space, tmp_path / "sweeps", "margin")  # restores; nothing left to run
    assert sorted(r.config["loss.recpo.lam"] for r in again) == [0.5, 2.0]
