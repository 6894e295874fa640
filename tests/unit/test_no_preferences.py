"""Benchmarks without preferences (LC-Rec-like data): the recommendation axis straight from
sequences.parquet, models that read it, and evaluation that reports the axes present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from steerrec.benchmark.axes import (
    AXES,
    EXAMPLES,
    NO_PREFERENCE,
    RECOMMENDATION,
    axis_file,
)
from steerrec.benchmark.build import BenchmarkConfig, build_benchmark, summary_rows
from steerrec.data import schema
from steerrec.data.prepare import PrepareConfig, prepare
from steerrec.models.mender import MenderEmb, MenderEmbConfig
from steerrec.models.seq2seq import T5StackConfig
from steerrec.train import batches as B

CONFIG = str(Path(__file__).parents[2] / "configs" / "lcrec_scientific.yaml")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("nopref")
    data, bench = root / "data", root / "bench"
    prepare(PrepareConfig(format="world", out=str(data), world={"n_users": 30, "n_items": 30}))
    manifest = build_benchmark(BenchmarkConfig(data=str(data), no_preferences=True, out=str(bench)))
    return data, bench, manifest


def test_recommendation_axis_is_every_sequence_row_with_no_preference(folders):
    data, bench, manifest = folders
    sequences = pq.read_table(data / schema.SEQUENCES_FILE).to_pylist()
    assert sorted(p.name for p in (bench / "axes").iterdir()) == [RECOMMENDATION]
    for split in schema.SPLITS:
        table = pq.read_table(bench / axis_file(RECOMMENDATION, split))
        assert table.schema.equals(EXAMPLES)
        expected = sorted(
            (r["user_id"], r["t"], tuple(r["history"]), r["target"]) for r in sequences if r["split"] == split
        )
        got = sorted((r["user_id"], r["t"], tuple(r["history"]), r["target"]) for r in table.to_pylist())
        assert got == expected and len(got) > 0
        assert set(table.column("preference").to_pylist()) == {NO_PREFERENCE}
        assert manifest["counts"][RECOMMENDATION][split] == len(expected)
    assert manifest["axes"] == [RECOMMENDATION] and manifest["preferences_source"] is None
    assert dict(summary_rows(manifest))["#preferences"] == "0"
    assert json.loads((bench / "manifest.json").read_text())["counts"] == manifest["counts"]


def test_config_needs_exactly_one_of_preferences_and_no_preferences(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        BenchmarkConfig(data="d", out="o")
    with pytest.raises(ValueError, match="exactly one"):
        BenchmarkConfig(data="d", preferences="p.parquet", no_preferences=True, out="o")


def test_a_target_missing_from_items_is_named_with_file_and_row(folders, tmp_path):
    data, _, _ = folders
    bad = tmp_path / "data"
    bad.mkdir()
    sequences = pq.read_table(data / schema.SEQUENCES_FILE)
    targets = sequences.column("target").to_pylist()
    targets[3] = "no-such-item"
    sequences = sequences.set_column(sequences.schema.get_field_index("target"), "target", pa.array(targets))
    pq.write_table(sequences.sort_by([("user_id", "ascending"), ("t", "ascending")]), bad / schema.SEQUENCES_FILE)
    pq.write_table(pq.read_table(data / schema.ITEMS_FILE), bad / schema.ITEMS_FILE)
    with pytest.raises(ValueError, match=r"sequences.parquet: row \d+: target 'no-such-item'"):
        build_benchmark(BenchmarkConfig(data=str(bad), no_preferences=True, out=str(tmp_path / "b")))


def test_mender_emb_reads_history_only_when_rows_have_no_preference(folders):
    _, bench, _ = folders
    table = B.read_axis(str(bench), RECOMMENDATION, "train")
    items = sorted(
        {i for h in table.column("history").to_pylist() for i in h} | set(table.column("target").to_pylist())
    )
    codes = pa.array([[i % 3, i // 3 % 3, i // 9] for i in range(len(items))], pa.list_(pa.int32()))
    catalog = B.Catalog.from_tables(
        pa.table({"item_id": items, "codes": codes}), pa.table({"item_id": items, "title": items})
    )
    ex = B.axis_examples(table, RECOMMENDATION, catalog, "train")
    assert all(p == [] for p in ex.preferences)
    texts = B.TextTable.build([ex], lambda t: pytest.fail(f"nothing to embed, asked for {t}"), 4)
    assert texts.vectors.shape == (0, 4)
    tiny = T5StackConfig(num_layers=1, d_model=8, d_ff=8, num_heads=1, d_kv=8)
    cfg = MenderEmbConfig(
        embed_dim=4, max_history=20, max_preferences=2, codebook_sizes=[3, 3, 4], encoder=tiny, decoder=tiny
    )
    item_emb = np.random.default_rng(0).normal(size=(len(items), 4)).astype(np.float32)
    batch = B.make_batch(B.encode("mender_emb", cfg, ex, catalog, item_emb, texts), np.arange(4))
    assert batch["preference_emb"].shape == (4, 1, 4) and not batch["preference_mask"].any()
    assert batch["history_mask"].any(1).all()
    torch.manual_seed(0)
    assert torch.isfinite(MenderEmb(cfg)(batch, 0.1))


def test_evaluation_reports_the_recommendation_axis_only(folders, tmp_path):
    from steerrec.evaluation.report import EvalConfig, evaluate_runs, format_table
    from steerrec.train.loop import LoopConfig, ScheduleConfig
    from steerrec.train.recommender import RecommenderJobConfig, train_recommender

    data, bench, _ = folders
    run = tmp_path / "sasrec"
    train_recommender(
        RecommenderJobConfig(
            model="sasrec",
            data=str(data),
            benchmark=str(bench),
            out=str(run),
            use_ray=False,
            beam_size=10,
            model_config={"hidden": 8, "num_blocks": 1, "max_len": 20},
            length_buckets=4,  # the recipe's knobs: bucketed batches, a cosine schedule, sparse validation
            loop=LoopConfig(
                epochs=2, batch_size=32, valid_every=2, schedule=ScheduleConfig("cosine", 1), progress=False
            ),
        )
    )
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert "valid_loss" in history[0] and "valid_ndcg@10" in history[1]  # teacher-forced loss, then ranking
    assert history[1]["lr"] < history[0]["lr"]  # decayed
    results = evaluate_runs(EvalConfig(runs=[str(run)], axes=list(AXES), beam_size=10, plot=False))
    assert list(results["summary"]) == [RECOMMENDATION] and list(results["per_run"][0]) == [RECOMMENDATION]
    recall = results["summary"][RECOMMENDATION]["recall@10"]["mean"]
    assert 0.0 <= recall <= 1.0
    assert json.loads((run / "results.json").read_text())["summary"].keys() == {RECOMMENDATION}
    assert RECOMMENDATION in format_table(results) and "fine" not in format_table(results)
    with pytest.raises(ValueError, match="no test split of any of the axes"):
        evaluate_runs(EvalConfig(runs=[str(run)], axes=["fine", "coarse"], beam_size=10, plot=False))


def test_pipeline_with_no_preferences_builds_the_benchmark_without_them(tmp_path):
    from steerrec.pipeline import load_pipeline, stages

    cfg = load_pipeline(CONFIG, [f"out={tmp_path}"])
    names = [s.name for s in stages(cfg)]
    assert names[:4] == ["prepare", "preferences (none)", "benchmark", "semantic_ids"]
    assert [n for n in names if n.startswith("train")] == ["train sasrec s0", "train tiger s0", "train mender_emb s0"]
    with pytest.raises(ValueError, match="'truth', 'engine' or 'none'"):
        load_pipeline(CONFIG, [f"out={tmp_path}", "preferences.source=nope"])
