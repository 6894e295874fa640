"""The pipeline on a simulated multi-node Ray cluster (a head and two worker nodes on this
machine): data-parallel training across nodes, work fanned out over both nodes, and a node
lost mid-job.

DDP equivalence: 2 workers x batch B must follow 1 worker x batch 2B. The batches match
row for row (rank r takes every 2nd row of the epoch's order, so the two ranks' k-th batches
together are the single worker's k-th batch), dropout is 0, both start from the same seed,
and the losses are means over examples, so DDP's average of the two ranks' gradients is the
2B batch's gradient up to float32 summation order (gloo sums the two halves, the single
worker sums all 2B at once). Tolerance: 1e-5 relative on each epoch's loss and 1e-5 absolute
on every weight at the end, a hundred times float32's epsilon: room for reassociation carried
through a few dozen AdamW steps, far below what a dropped batch or an unaveraged gradient
changes after a step at lr 1e-3 (README "Scaling out" has the differences measured).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pyarrow as pa
import pytest
import requests
from _workloads import (
    TIGER,
    Load,
    chat_server,
    committed_checkpoints,
    kill_when,
    load_weights,
    per_node,
    record,
    review_data,
    settled_per_node,
    tiny_world,
)
from tests.tiny_data import movielens_like

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
    return worst


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
    worst = _close_runs(one, two, tmp_path / "one" / "model.safetensors", tmp_path / "two" / "model.safetensors")
    record(
        "TIGER DDP 2 x 16 vs 1 x 32", largest_weight_difference=worst, losses=[r["train_loss"] for r in two["history"]]
    )
    assert one["history"][-1]["train_loss"] < one["history"][0]["train_loss"]  # it did learn


def test_alignment_ddp_loses_a_node_resumes_on_the_other_and_still_follows_one_worker(multinode, tmp_path):
    """RecPO (a mean over examples; SFT's loss is a mean over tokens, which DDP weights per rank)
    on 2 workers over two nodes; node_b is killed as soon as Train has committed a checkpoint, the
    run restarts both workers on node_a from its last checkpoint and ends where the single
    worker with twice the batch does."""
    pytest.importorskip("peft")
    from steerrec.alignment.data import AlignmentDataConfig
    from steerrec.alignment.losses import LossConfig
    from steerrec.alignment.model import ModelConfig
    from steerrec.alignment.train import AlignConfig, align, fit_align, read_metrics, train_sft

    base = AlignConfig(
        data=movielens_like(tmp_path / "data", n_users=8, n_items=40, length=10),
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
    recpo = dataclasses.replace(
        base, sft_run=str(tmp_path / "sft"), loss=LossConfig(name="recpo"), epochs=4, max_train=4 * 8
    )
    one = dataclasses.replace(recpo, out=str(tmp_path / "one"))  # 4 steps of 8 an epoch
    align(one)
    two = dataclasses.replace(
        recpo, out=str(tmp_path / "two"), batch_size=4, num_workers=2, placement_strategy="SPREAD"
    )
    _, before = per_node(multinode, "actor", "RayTrainWorker")
    kill = kill_when(multinode, "node_b", lambda: committed_checkpoints(tmp_path / "ray" / "recpo-ddp") > 0)
    try:
        result = fit_align(two, str(tmp_path / "ray"), name="recpo-ddp")
        kill["thread"].join()
        workers, _ = per_node(multinode, "actor", "RayTrainWorker", before)
    finally:
        multinode.add("node_c", 2)  # a replacement, as the autoscaler would bring: later tests see two nodes
    assert kill["killed_after_s"] is not None and result.error is None
    # one worker on each node, then both on the surviving node
    assert workers == {"node_a": 3, "node_b": 1}, workers
    assert result.metrics["start_epoch"] >= 2, "the restarted workers trained from scratch, not from a checkpoint"
    h1, h2 = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["epoch"] for r in h2] == [1, 2, 3, 4] and h2[-1]["start_epoch"] == result.metrics["start_epoch"]
    assert [r["steps"] for r in h1] == [r["steps"] for r in h2] == [4, 4, 4, 4]
    worst = _close_runs(
        {"history": h1},
        {"history": h2},
        tmp_path / "one" / "adapter_model.safetensors",
        tmp_path / "two" / "adapter_model.safetensors",
    )
    record(
        "RecPO DDP 2 x 4 vs 1 x 8, node lost after a checkpoint",
        largest_weight_difference=worst,
        resumed_from_epoch=result.metrics["start_epoch"] - 1,
        killed_after_s=kill["killed_after_s"],
    )


def _preferences(out) -> list[dict]:
    from steerrec.preferences.approximate import read_preferences

    rows = read_preferences(str(out)).to_pylist()
    return sorted(
        ({k: r[k] for k in ("user_id", "t", "preferences")} for r in rows), key=lambda r: (r["user_id"], r["t"])
    )


def test_preference_job_fans_out_then_loses_a_node_and_writes_every_key_once(multinode, tmp_path):
    """The real job (steerrec.preferences.approximate) with the http engine against a loopback
    endpoint whose reply depends on the prompt alone: on both nodes, with one node killed once
    the first shards are written, then on one node; the same rows every time."""
    from steerrec.llm.base import EngineConfig, HttpSection
    from steerrec.preferences.approximate import ApproximationConfig, approximate
    from steerrec.preferences.generate import GenerationConfig

    data = review_data(tmp_path / "data", n_users=12, n_items=9)
    keys = 12 * 8
    with chat_server(delay=0.1) as endpoint:
        http = HttpSection(url=endpoint.url, concurrency=2, batch_size=4)
        engine = EngineConfig(engine="http", model="fake", http=http)
        cfg = lambda out: ApproximationConfig(
            data=data, out=str(tmp_path / out), engine=engine, generation=GenerationConfig(shard_rows=8)
        )
        _, seen = per_node(multinode, "task")
        started = time.monotonic()
        both = approximate(cfg("both"))
        both_s = time.monotonic() - started
        fanned, seen = per_node(multinode, "task", "Map", seen)
        first, second = sorted(multinode.nodes)
        assert fanned[first] > 0 and fanned[second] > 0 and "head" not in fanned, fanned  # Ray Data's map tasks

        shards, at_kill = tmp_path / "lost" / "shards", []
        kill = kill_when(
            multinode, second, lambda: at_kill.append(len(list(shards.glob("part-*")))) or at_kill[-1] >= 2
        )
        try:
            lost = approximate(cfg("lost"))
            kill["thread"].join()
            during, seen = per_node(multinode, "task", "Map", seen)
            started = time.monotonic()
            one = approximate(cfg("one"))
            one_s = time.monotonic() - started
            alone, seen = per_node(multinode, "task", "Map", seen)
        finally:
            multinode.add("node_d", 2)
    record(
        "preference job, 96 keys, endpoint 0.1 s per request",
        tasks_per_node={"two nodes": fanned, "node lost": during, "one node": alone},
        keys_per_s={"two nodes": round(keys / both_s, 2), "one node": round(keys / one_s, 2)},
        killed_after_s=kill["killed_after_s"],
        requests_sent=len(endpoint.requests),
    )
    assert kill["killed_after_s"] is not None and during[second] > 0, during  # it was working when it died
    assert at_kill[-1] * 8 < keys, "the node was killed after the job had written every key"
    assert set(alone) == {first}, alone  # the one-node run
    rows = _preferences(tmp_path / "both")
    assert len(rows) == keys and len({(r["user_id"], r["t"]) for r in rows}) == keys  # none lost, none twice
    assert _preferences(tmp_path / "lost") == rows == _preferences(tmp_path / "one")
    assert both["written"] == lost["written"] == one["written"] == keys and lost["failed"] == 0


def test_embedding_stage_fans_out_over_both_nodes_with_the_same_vectors(multinode):
    """embed_dataset's actor pool (one MiniLM per actor) puts an actor on each node; the vectors
    equal embed_texts' in this process (batches differ, so up to padding reassociation)."""
    import ray.data

    from steerrec.embed import EmbedderConfig, arrow_to_vectors, embed_dataset, embed_texts

    texts = [f"item {i}: a {('red', 'blue', 'green')[i % 3]} widget for {i % 7} people" for i in range(96)]
    cfg = EmbedderConfig(model="minilm", concurrency=2, batch_size=8, num_threads=1)
    _, seen = per_node(multinode, "task")
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=12)
    out = pa.concat_tables(ray.get(embed_dataset(ds, "text", cfg).to_arrow_refs())).sort_by("id")
    fanned, _ = settled_per_node(multinode, "task", "(EmbedActor)).submit", seen, at_least=12)  # a task per block
    record("embedding, 96 texts, 2 MiniLM actors", tasks_per_node=fanned)
    assert set(fanned) == set(multinode.nodes) and min(fanned.values()) > 0, fanned
    assert out.column("id").to_pylist() == list(range(96))
    np.testing.assert_allclose(arrow_to_vectors(out.column("embedding")), embed_texts(texts, cfg), atol=1e-5)


def test_serve_two_replicas_on_two_nodes_lose_one_under_load(multinode, tmp_path):
    """Two replicas, one per node, behind the head's proxy; 4 loopback clients post back to
    back while one replica's node is killed. Requests may fail while the proxy's router still
    sends to the dead replica; once it knows, every request succeeds on the other replica."""
    from ray import serve
    from steerrec.local_cluster import free_port
    from steerrec.serving import app
    from steerrec.serving.tiny_run import build_run

    port = free_port()
    # HeadOnly: one proxy, on the head (every node's proxy would want the same port on one machine)
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    try:
        deployment = app.SteerrecApp.options(num_replicas=2, max_replicas_per_node=1, ray_actor_options={"num_cpus": 1})
        serve.run(deployment.bind(run_dir=str(build_run(tmp_path / "run"))), name="steerrec", route_prefix="/")
        replicas, _ = per_node(multinode, "actor", "ServeReplica")
        assert set(replicas) == set(multinode.nodes), replicas  # one replica on each worker node
        victim = sorted(multinode.nodes)[-1]
        body = {"history": ["i0001", "i0002"], "preferences": ["Avoid bulky headsets"], "k": 5}
        for _ in range(8):  # warm both replicas (first inference, the statement's first reading): failover is measured
            requests.post(f"http://127.0.0.1:{port}/v1/recommend", json=body, timeout=60)
        with Load(f"http://127.0.0.1:{port}/v1/recommend", body, clients=4) as load:
            time.sleep(3)
            killed_at = time.monotonic()
            multinode.kill(victim)
            time.sleep(12)
        figures = load.failover(killed_at)
        record("serve failover, 4 clients, 2 replicas -> 1", **figures)
        assert figures["failed_before_kill"] == 0 and figures["before_kill"] > 10, figures
        assert figures["recovery_s"] < 10 and figures["ok_after_recovery"] > 10, figures
        status = [requests.post(load.url, json=body, timeout=10).status_code for _ in range(20)]
        assert status == [200] * 20
    finally:
        serve.shutdown()
