"""The semantic-ID job without Ray: its config checks, the RQ-VAE as a loop Task, the ids folder."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from steerrec.config import ConfigError, load
from steerrec.ids.rqvae import RQVAEConfig, load_rqvae
from steerrec.ids.semantic_ids import assign_codes
from steerrec.run_folder import read_run_info
from steerrec.train.loop import LocalSession, fit_local, run_loop
from steerrec.train.semantic_ids import RQVAETask, SemanticIdJobConfig, train_semantic_ids, with_input_dim

TINY = dict(input_dim=8, hidden_dims=[16], latent_dim=4, n_levels=2, codebook_size=8, epochs=3, batch_size=32)


def _embeddings(n: int = 96, dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(12, dim)) * 3
    return (centers[np.arange(n) % 12] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def test_unknown_or_bad_rqvae_key_fails_when_the_config_loads(tmp_path):
    with pytest.raises(ConfigError, match="codebok_size"):
        load(SemanticIdJobConfig, None, ["data=d", "out=o", "rqvae.codebok_size=16"])
    path = tmp_path / "ids.yaml"
    path.write_text("data: d\nout: o\nrqvae:\n  epochs: 3\n  latnt_dim: 4\n")
    with pytest.raises(ConfigError, match=f"{path}.*latnt_dim"):
        load(SemanticIdJobConfig, path)
    with pytest.raises((ConfigError, ValueError), match="rqvae.codebook_size must be > 0, got 0"):
        load(SemanticIdJobConfig, None, ["data=d", "out=o", "rqvae.codebook_size=0"])
    cfg = load(SemanticIdJobConfig, None, ["data=d", "out=o", "rqvae.codebook_size=16"])
    assert isinstance(cfg.rqvae, RQVAEConfig) and cfg.rqvae.codebook_size == 16
    assert with_input_dim(cfg, 384).rqvae.input_dim == 384 and cfg.rqvae.input_dim == 768
    loop = cfg.loop_config()
    assert (loop.epochs, loop.lr, loop.mode, loop.monitor) == (200, 1e-3, "min", "loss")
    assert (loop.patience, loop.grad_clip, loop.checkpoint_every) == (0, 0, 10)
    with pytest.raises(ValueError, match="loop.checkpoint_every must be >= 1, got 0"):
        load(SemanticIdJobConfig, None, ["data=d", "out=o", "checkpoint_every=0"])


def test_task_trains_every_parameter_and_resumes_after_its_checkpoint(tmp_path):
    x = _embeddings()
    cfg = RQVAEConfig(**TINY)
    job = SemanticIdJobConfig(data="d", out="o", rqvae=cfg, progress=False)
    task = RQVAETask(x, cfg)
    torch.manual_seed(cfg.seed)
    before = {k: v.clone() for k, v in task.build_model().named_parameters()}
    loop = job.loop_config()
    loop.epochs = 2
    summary, latest = fit_local(task, loop, tmp_path / "a")
    after = RQVAETask(x, cfg).build_model()
    from safetensors.torch import load_model

    load_model(after, str(latest / "model.safetensors"))
    for name, value in after.named_parameters():
        assert not torch.equal(value, before[name]), name
    rows = summary["history"]
    assert "reseeded_1" not in rows[0] and {"reseeded_1", "reseeded_2"} <= set(rows[1])
    assert all(0 <= r["valid_collisions"] <= 1 and r["valid_loss"] > 0 for r in rows)

    loop.epochs = 4
    resumed = run_loop(RQVAETask(x, cfg), loop, LocalSession(tmp_path / "b", resume_from=latest))
    assert resumed["start_epoch"] == 3 and [r["epoch"] for r in resumed["history"]] == [1, 2, 3, 4]
    assert "reseeded_1" in resumed["history"][2]  # re-seeded from eval-mode usage after the resume
    best = min(resumed["history"], key=lambda r: r["valid_loss"])
    assert resumed["best_epoch"] == best["epoch"] and resumed["best"] == best["valid_loss"]


def test_local_job_writes_the_ids_folder(tmp_path):
    x = _embeddings()
    ids = [f"i{n:03d}" for n in range(len(x))]
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"item_id": ids, "title": ids}), tmp_path / "data" / "items.parquet")
    (tmp_path / "data" / "manifest.json").write_text("{}")
    from steerrec.embed import vectors_to_arrow

    pq.write_table(pa.table({"item_id": ids[::-1], "embedding": vectors_to_arrow(x[::-1])}), tmp_path / "emb.parquet")
    rqvae = RQVAEConfig(**(TINY | {"input_dim": 768}))  # replaced by the embeddings' 8
    out = tmp_path / "ids"
    job = SemanticIdJobConfig(
        data=str(tmp_path / "data"),
        out=str(out),
        embeddings=str(tmp_path / "emb.parquet"),
        rqvae=rqvae,
        use_ray=False,
        progress=False,
    )
    quality = train_semantic_ids(job)
    assert quality["unique_ids"] and quality["n_items"] == len(x)
    table = pq.read_table(out / "semantic_ids.parquet")
    assert table.column("item_id").to_pylist() == ids
    model = load_rqvae(out / "rqvae")
    assert model.cfg.input_dim == 8
    np.testing.assert_array_equal(np.array(table.column("codes").to_pylist())[:, :2], assign_codes(model, x))
    assert len(json.loads((out / "metrics.json").read_text())) == 3
    assert json.loads((out / "quality.json").read_text()) == quality
    info = read_run_info(out, kinds=("semantic_ids",))
    assert info.details["rqvae"]["input_dim"] == 8 and info.details["embedder"] is None
    assert info.inputs["embeddings"]["sha256"] and info.details["best_epoch"] in (1, 2, 3)
