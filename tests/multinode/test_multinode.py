"""The pipeline on a simulated multi-node Ray cluster (a head and two worker nodes on this
machine): data-parallel training across nodes, work fanned out over both nodes, and a node
lost mid-job.

DDP equivalence: 2 workers x batch B must follow 1 worker x batch 2B. The batches match
row for row (rank r takes every 2nd row of the epoch's order, so the two ranks' k-th batches
together are the single worker's k-th batch), dropout is 0, both start from the same seed,
and the losses are means over examples, so DDP's average of the two ranks' gradients is the
2B batch's gradient up to float32 summation order. Tolerance: 1e-5 relative on each epoch's
loss and 1e-5 absolute on every weight at the end: float32 reassociation noise is ~1e-7 per
sum, which AdamW's normalised steps carry forward but do not grow by two orders of magnitude
in a few steps; a real mismatch (a batch dropped, gradients not averaged) moves them by >1e-3.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _workloads import TIGER, load_weights, movielens_like, per_node, tiny_world

pytestmark = [pytest.mark.ray, pytest.mark.slow]
B = 16  # per-worker batch; the single worker takes 2B


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("mn_world"), n_train=8 * 2 * B)  # 8 steps an epoch


def _tiger(world, out, batch_size, use_ray, scaling=None, **loop):
    from steerrec.train.loop import LoopConfig, RayScaling
    from steerrec.train.recommender import RecommenderJobConfig

    return RecommenderJobConfig(
        model="tiger",
        model_config=TIGER,
        data=str(world / "data"),
        benchmark=str(world / "bench"),
        semantic_ids=str(world / "semantic_ids.parquet"),
        out=str(out),
        beam_size=10,
        max_valid=16,
        use_ray=use_ray,
        scaling=scaling or RayScaling(),
        loop=LoopConfig(
            **{"epochs": 3, "batch_size": batch_size, "lr": 3e-3, "patience": 0, "monitor": ""}
            | {"valid_every": 3, "progress": False, "seed": 0}
            | loop
        ),
    )


def _close_runs(one: dict, two: dict, one_dir, two_dir, rtol=1e-5, atol=1e-5) -> None:
    a, b = [r["train_loss"] for r in one["history"]], [r["train_loss"] for r in two["history"]]
    assert len(a) == len(b) and np.allclose(a, b, rtol=rtol, atol=0), (a, b)
    wa, wb = load_weights(one_dir), load_weights(two_dir)
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst < atol, f"largest weight difference {worst}"


def test_tiger_ddp_over_two_nodes_follows_one_worker_with_twice_the_batch(multinode, world, tmp_path):
    from steerrec.train.loop import RayScaling
    from steerrec.train.recommender import train_recommender

    one = train_recommender(_tiger(world, tmp_path / "one", 2 * B, use_ray=False))
    _, before = per_node(multinode, "actor", "RayTrainWorker")
    spread = RayScaling(num_workers=2, cpus_per_worker=1, max_failures=0, placement_strategy="SPREAD")
    two = train_recommender(_tiger(world, tmp_path / "two", B, use_ray=True, scaling=spread))
    workers, _ = per_node(multinode, "actor", "RayTrainWorker", before)
    assert workers == {"node_a": 1, "node_b": 1}, workers  # one DDP worker on each node
    assert [r["steps"] for r in two["history"]] == [r["steps"] for r in one["history"]] == [8, 8, 8]
    _close_runs(one, two, tmp_path / "one" / "model.safetensors", tmp_path / "two" / "model.safetensors")
    assert one["history"][-1]["train_loss"] < one["history"][0]["train_loss"]  # it did learn


def test_alignment_ddp_over_two_nodes_follows_one_worker_with_twice_the_batch(multinode, tmp_path):
    pytest.importorskip("peft")
    from steerrec.alignment.data import AlignmentDataConfig
    from steerrec.alignment.losses import LossConfig
    from steerrec.alignment.model import ModelConfig
    from steerrec.alignment.train import AlignConfig, align, fit_align, read_metrics, train_sft

    base = AlignConfig(
        data=movielens_like(tmp_path / "data"),
        model=ModelConfig(hidden_size=32, intermediate_size=64, vocab_size=400),
        examples=AlignmentDataConfig(n_candidates=8, n_future=4),
        lr=1e-3,
        batch_size=8,
        max_valid=0,
        max_new_tokens=10,
        threads=1,
        progress=False,
        out=str(tmp_path / "sft"),
    )
    train_sft(base)
    # RecPO's loss is a mean over examples (SFT's is a mean over tokens, which DDP weights per rank)
    recpo = dataclasses.replace(base, sft_run=str(tmp_path / "sft"), loss=LossConfig(name="recpo"), epochs=2)
    one = dataclasses.replace(recpo, out=str(tmp_path / "one"), max_train=4 * 8)  # 4 steps of 8
    align(one)
    two = dataclasses.replace(
        recpo, out=str(tmp_path / "two"), max_train=4 * 8, batch_size=4, num_workers=2, placement_strategy="SPREAD"
    )
    _, before = per_node(multinode, "actor", "RayTrainWorker")
    result = fit_align(two, str(tmp_path / "ray"), name="recpo-ddp")
    workers, _ = per_node(multinode, "actor", "RayTrainWorker", before)
    assert result.error is None and workers == {"node_a": 1, "node_b": 1}, workers
    h1, h2 = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["steps"] for r in h1] == [r["steps"] for r in h2] == [4, 4]
    _close_runs(
        {"history": h1},
        {"history": h2},
        tmp_path / "one" / "adapter_model.safetensors",
        tmp_path / "two" / "adapter_model.safetensors",
    )
