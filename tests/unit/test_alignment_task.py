"""SFT then RecPO through the shared loop in this process (no Ray): run folders, LoRA-only
checkpoints, resumption from <out>/checkpoints, and the DDP-facing LossModule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from steerrec.alignment.config import AlignConfig  # noqa: E402
from steerrec.alignment.data import AlignmentDataConfig  # noqa: E402
from steerrec.alignment.losses import LossConfig  # noqa: E402
from steerrec.alignment.model import ModelConfig  # noqa: E402
from steerrec.alignment.train import align, read_metrics, train_sft  # noqa: E402
from steerrec.run_folder import read_run_info  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("align-data")
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{item}", 1000 + pos, float(rng.choice([1, 4, 5])))
        for u in range(6)
        for pos, item in enumerate(rng.choice(40, size=10, replace=False))
    ]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"]).to_parquet(root / "interactions.parquet")
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(40)], "title": [f"Film {k}" for k in range(40)]})
    items.to_parquet(root / "items.parquet")
    return str(root)


def _cfg(data, out, **kw) -> AlignConfig:
    base = dict(
        data=data,
        out=str(out),
        model=ModelConfig(hidden_size=16, intermediate_size=32, num_heads=2, vocab_size=300, lora_r=2),
        examples=AlignmentDataConfig(n_candidates=6, n_future=3, n_negatives=2),
        lr=1e-3,
        batch_size=4,
        max_valid=3,
        max_new_tokens=4,
        threads=1,
        progress=False,
    )
    return AlignConfig(**{**base, **kw})


def test_sft_then_recpo_locally_with_resume(data, tmp_path):
    from safetensors import safe_open

    rows: list[dict] = []
    sft = train_sft(_cfg(data, tmp_path / "sft"), rows.append)
    assert sft["epoch"] == 1 and rows[0]["train_examples"] > 0 and "valid_hr1" in rows[0]
    ckpt = tmp_path / "sft" / "checkpoints" / "checkpoint_0001"
    with safe_open(str(ckpt / "model.safetensors"), "pt") as f:
        names = f.keys()
    assert names and all("lora_" in k for k in names)
    assert (ckpt / "tokenizer.json").is_file() and read_run_info(tmp_path / "sft", kinds=("sft",))

    cfg = _cfg(data, tmp_path / "recpo", sft_run=str(tmp_path / "sft"), loss=LossConfig(name="recpo"))
    first = align(cfg)
    assert {"rewards/margin", "rewards/accuracy"} <= set(first["history"][0])
    cfg.epochs = 2
    second = align(cfg)  # resumes from <out>/checkpoints: epoch 2 only
    assert second["start_epoch"] == 2 and [m["epoch"] for m in read_metrics(tmp_path / "recpo")] == [1, 2]
    info = read_run_info(tmp_path / "recpo", kinds=("align",))
    assert info.details["loss"] == "recpo" and info.details["epochs"] == 2


def test_the_loss_module_runs_the_whole_loss_in_one_forward(data, tmp_path):
    """What DDP wraps: one forward gives the loss with the policy's and the reference's passes."""
    from steerrec.alignment.examples import load_examples
    from steerrec.alignment.task import AlignTask, LossModule

    train_sft(_cfg(data, tmp_path / "sft", max_valid=0))
    cfg = _cfg(data, tmp_path / "dpo", sft_run=str(tmp_path / "sft"), loss=LossConfig(name="dpo"))
    task = AlignTask(cfg, "align", load_examples(cfg))
    module = task.build_model()
    assert isinstance(module, LossModule)
    batch = task.train_batches(1, 0, 1)[0]
    loss, metrics = task.loss(module, batch)
    assert loss.requires_grad and metrics["examples"] == len(batch["examples"])
    assert metrics["rewards/margin"] == pytest.approx(0.0, abs=1e-6)  # a fresh LoRA is the reference
    loss.backward()
    grads = [p.grad for n, p in module.named_parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert not any(p.grad is not None for p in module.parameters() if not p.requires_grad)
