"""Ray Train jobs end to end on a tiny world: RQ-VAE semantic IDs, then TIGER with a worker
killed mid-training (it must resume from the checkpoint), then the five-axis evaluation."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steerrec.run_folder import RUN_SCHEMA_VERSION, read_run_info

pytestmark = pytest.mark.ray

TIGER = dict(num_layers=1, num_decoder_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, max_history=8, dropout=0.0)


def _write_bench(data, bench, pairs: int = 6) -> None:
    """The five axes from the world's sequences and truth (no embedder): every axis reuses the
    sequence rows; sentiment pairs say "Avoid/Find <statement>" about the target."""
    from steerrec.benchmark.axes import AXES, axis_file, axis_schema

    seq = pq.read_table(data / "sequences.parquet").to_pylist()
    truth = {(r["user_id"], r["t"]): r["preferences"] for r in pq.read_table(data / "truth.parquet").to_pylist()}
    for split in ("train", "valid", "test"):
        rows = [r for r in seq if r["split"] == split]
        for axis in AXES:
            out = []
            for i, r in enumerate(rows):
                prefs = truth.get((r["user_id"], r["t"] - 1)) or ["anything"]
                base = {"user_id": r["user_id"], "t": r["t"], "history": r["history"], "target": r["target"]}
                if axis == "consolidation":
                    out.append(base | {"preferences": prefs})
                elif axis == "sentiment" and i < pairs:
                    for polarity, word in (("neg", "Avoid"), ("pos", "Find")):
                        out.append(
                            base
                            | {"history": [], "preference": f"{word} {prefs[0]}", "polarity": polarity, "pair_id": i}
                        )
                elif axis != "sentiment":
                    out.append(base | {"preference": prefs[0]})
            path = bench / axis_file(axis, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(out, schema=axis_schema(axis)), path)
    (bench / "manifest.json").write_text('{"counts": {}}')


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from steerrec.data.prepare import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("tiny_world")
    prepare(PrepareConfig(format="world", out=str(root / "data"), world={"n_users": 120, "n_items": 80}))
    _write_bench(root / "data", root / "bench")
    items = pq.read_table(root / "data" / "items.parquet").column("item_id").to_pylist()
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, 16))
    vectors = (centers[np.arange(len(items)) % 8] + 0.3 * rng.normal(size=(len(items), 16))).astype(np.float32)
    from steerrec.embed import vectors_to_arrow

    pq.write_table(pa.table({"item_id": items, "embedding": vectors_to_arrow(vectors)}), root / "emb.parquet")
    return root


def _ids_job(world, name: str, use_ray: bool, **job):
    from steerrec.ids.rqvae import RQVAEConfig
    from steerrec.train.semantic_ids import SemanticIdJobConfig, train_semantic_ids

    out = world / name
    rqvae = RQVAEConfig(
        hidden_dims=[16], latent_dim=8, n_levels=2, codebook_size=4, epochs=3, batch_size=64, kmeans_iters=5
    )
    cfg = SemanticIdJobConfig(
        data=str(world / "data"),
        out=str(out),
        embeddings=str(world / "emb.parquet"),
        use_ray=use_ray,
        rqvae=rqvae,
        progress=False,
        **job,
    )
    return out, train_semantic_ids(cfg)


@pytest.fixture(scope="module")
def semantic_ids(world):
    """The IDs the TIGER test reads, from the job's local path (the Ray path is the slow test)."""
    return _ids_job(world, "ids_local", use_ray=False)


@pytest.mark.slow
def test_semantic_ids_job_on_ray_resumes_after_a_worker_dies(world, ray_session, tmp_path):
    from steerrec.data.schema import SEMANTIC_IDS, validate
    from steerrec.train.loop import RayScaling

    marker = tmp_path / "failed-once"
    scaling = RayScaling(num_workers=1, cpus_per_worker=1, max_failures=1)
    failure = {"fail_at_epoch": 2, "fail_marker": str(marker), "checkpoint_every": 1}
    out, quality = _ids_job(world, "ids_ray", True, scaling=scaling, **failure)
    assert marker.is_file()  # the worker did die at the start of epoch 2
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # ... and the restarted one began after epoch 1
    assert [r["start_epoch"] for r in rows] == [1, 2, 2]
    assert {"reseeded_1", "valid_loss", "valid_collisions"} <= set(rows[1])
    table = validate(pq.read_table(out / "semantic_ids.parquet"), SEMANTIC_IDS, "semantic_ids")
    items = pq.read_table(world / "data" / "items.parquet").column("item_id").to_pylist()
    assert table.column("item_id").to_pylist() == items
    codes = np.array(table.column("codes").to_pylist())
    assert codes.shape == (80, 3) and len({tuple(c) for c in codes}) == 80
    assert codes[:, :2].max() < 4
    assert quality["unique_ids"] and quality["n_items"] == 80
    assert (out / "rqvae" / "rqvae.safetensors").is_file()
    info = read_run_info(out, kinds=("semantic_ids",))
    assert info.inputs["data"]["manifest_sha256"] and info.details["rqvae"]["input_dim"] == 16
    assert info.details["best_epoch"] == min(rows, key=lambda r: r["valid_loss"])["epoch"]


def test_tiger_resumes_after_a_worker_dies_then_evaluates(world, semantic_ids, ray_session, tmp_path):
    from steerrec.evaluation.report import EvalConfig, evaluate_runs, format_table
    from steerrec.run_folder import load_recommender
    from steerrec.train.loop import LoopConfig, RayScaling
    from steerrec.train.recommender import RecommenderJobConfig, train_recommender

    marker = tmp_path / "failed-once"
    cfg = RecommenderJobConfig(
        model="tiger",
        model_config=TIGER,
        data=str(world / "data"),
        benchmark=str(world / "bench"),
        semantic_ids=str(semantic_ids[0] / "semantic_ids.parquet"),
        out=str(tmp_path / "run"),
        beam_size=10,
        max_valid=24,
        scaling=RayScaling(num_workers=1, cpus_per_worker=1, max_failures=1),
        loop=LoopConfig(
            epochs=3, batch_size=64, lr=3e-3, patience=0, progress=False, fail_at_epoch=2, fail_marker=str(marker)
        ),
    )
    summary = train_recommender(cfg)
    assert marker.is_file()  # the worker did die at the start of epoch 2
    assert summary["start_epoch"] == 2  # ... and the restarted worker began after the epoch-1 checkpoint
    assert [row["epoch"] for row in summary["history"]] == [1, 2, 3]
    assert summary["history"][0]["start_epoch"] == 1 and summary["history"][2]["start_epoch"] == 2
    run = tmp_path / "run"
    for name in (
        "config.yaml",
        "model.safetensors",
        "semantic_ids.parquet",
        "items.parquet",
        "job.yaml",
        "metrics.json",
        "run.json",
    ):
        assert (run / name).is_file(), name
    loaded = load_recommender(run)
    assert loaded.model_name == "tiger" and loaded.info.details["best_epoch"] == summary["best_epoch"]
    assert loaded.info.schema_version == RUN_SCHEMA_VERSION and loaded.info.inputs["benchmark"]["manifest_sha256"]
    assert loaded.item_ids == pq.read_table(world / "data" / "items.parquet").column("item_id").to_pylist()

    results = evaluate_runs(EvalConfig(runs=[str(run)], beam_size=10, max_examples=24))
    assert set(results["summary"]) == {"recommendation", "fine", "coarse", "sentiment", "consolidation"}
    assert set(results["summary"]["sentiment"]) == {"m@5", "m@10"}
    recall = results["summary"]["recommendation"]["recall@10"]["mean"]
    assert 0.0 <= recall <= 1.0
    assert (run / "results.json").is_file() and (run / "results.png").stat().st_size > 1000
    assert "recommendation" in format_table(results)
