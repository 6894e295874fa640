"""IDGenRec in the pipeline (model `idgenrec`, its own `idgenrec` section) and through the one
evaluator: a tiny world end to end, every axis scored, every ranked item a real item."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from steerrec.pipeline import load_pipeline, stages

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"


def test_idgenrec_is_a_pipeline_model_with_its_own_section(tmp_path):
    cfg = load_pipeline(TINY, [f"out={tmp_path}", "models=[tiger, idgenrec]", "seeds=[0, 2]", "train.use_ray=false"])
    assert "idgenrec" not in cfg.train_per_model
    job = cfg.idgenrec
    assert (job.data, job.benchmark) == (str(tmp_path / "data"), str(tmp_path / "benchmark"))
    assert job.use_ray is False and job.train.rounds == 1 and job.train.model.generator.d_model == 32
    plan = {s.name: s for s in stages(cfg)}
    assert "semantic_ids" in plan and plan["train idgenrec s2"].output == tmp_path / "runs" / "idgenrec-s2"
    only = load_pipeline(TINY, [f"out={tmp_path}", "models=[idgenrec]", "idgenrec.use_ray=false"])
    names = [s.name for s in stages(only)]
    assert names == ["prepare", "preferences (world truth)", "benchmark", "train idgenrec s0", "evaluate idgenrec"]
    assert load_pipeline(TINY, [f"out={tmp_path}", "models=[idgenrec]"]).idgenrec.use_ray is True  # train's default
    with pytest.raises(Exception, match=r"idgenrec\.out.*set by the pipeline"):
        load_pipeline(TINY, [f"out={tmp_path}", "idgenrec.out=/elsewhere"])
    with pytest.raises(Exception, match="idgenrec.rounds"):
        load_pipeline(TINY, [f"out={tmp_path}", "idgenrec.train.rounds=0"])


def test_a_tiny_idgenrec_run_is_trained_and_evaluated_on_every_axis(tmp_path):
    from steerrec.evaluation.report import EvalConfig, evaluate_run
    from steerrec.pipeline import run_pipeline
    from steerrec.run_folder import load_recommender
    from steerrec.steering import SteeringConfig
    from steerrec.train import batches as B
    from steerrec.train.ranking import build_trie, rank_encoded

    world = ["data.world.n_users=30", "data.world.n_items=30"]  # the benchmark embeds every review: keep it small
    cfg = load_pipeline(TINY, [f"out={tmp_path}", "models=[idgenrec]", "idgenrec.use_ray=false", *world])
    summary = run_pipeline(cfg)
    scores = summary["results"]["idgenrec"]
    assert set(scores) == {"recommendation", "fine", "coarse", "consolidation", "sentiment"}
    assert 0 <= scores["recommendation"]["ndcg@10"]["mean"] <= scores["recommendation"]["recall@10"]["mean"] <= 1
    assert -1 <= scores["sentiment"]["m@10"]["mean"] <= 1
    run_dir = tmp_path / "runs" / "idgenrec-s0"
    assert json.loads((tmp_path / "eval" / "idgenrec" / "results.json").read_text())["models"] == ["idgenrec"]

    run = load_recommender(run_dir)  # variable-length codes, -1 padded, tokenizer attached
    assert run.model_name == "idgenrec" and run.model.tokenizer is not None
    texts = pq.read_table(run_dir / "semantic_ids.parquet").column("text").to_pylist()
    assert [run.model.tokenizer.decode([t for t in row if t >= 0]) for row in run.codes.tolist()] == texts
    assert (run.codes[:, 0] >= 0).all() and len(set(texts)) == len(texts)
    catalog = B.Catalog(run.item_ids, [run.titles[i] or i for i in run.item_ids], run.codes)
    ex = B.axis_examples(B.read_axis(cfg.benchmark.out, "recommendation", "test"), "recommendation", catalog, "test")
    encoded = B.encode("idgenrec", run.model.config, ex, catalog, tokenizer=run.model.tokenizer)
    ranked, _ = rank_encoded(run.model, encoded, build_trie(run.model, run.codes), 10, 10)
    assert ranked.shape == (len(ex), 10) and (ranked >= 0).all() and (ranked < len(run.item_ids)).all()
    assert all(len(set(row)) == 10 for row in ranked.tolist())  # ten distinct real items: 0 invalid IDs

    steered = EvalConfig(runs=[str(run_dir)], axes=["fine"], beam_size=10, max_examples=16, plot=False)
    steered.steering = SteeringConfig(enabled=True)
    assert 0 <= evaluate_run(str(run_dir), steered)["fine"]["recall@10"] <= 1  # item_bias reaches the search
