"""IDGenRec's phases on Ray Train (two DDP workers) on a tiny world, the second round's
recommender continuing the first's optimizer through the object store, then a rerun that
resumes every phase from Ray's storage without training, and the run folder through the evaluator."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ray


def test_idgenrec_trains_on_ray_train_and_resumes(ray_session, tmp_path):
    from steerrec.benchmark.build import BenchmarkConfig, build_benchmark
    from steerrec.data.prepare import PrepareConfig, prepare
    from steerrec.evaluation.report import EvalConfig, evaluate_run
    from steerrec.ids.textual import DiverseIdConfig
    from steerrec.models.idgenrec import IDGenRecConfig
    from steerrec.models.seq2seq import T5StackConfig
    from steerrec.run_folder import read_run_info
    from steerrec.train.idgenrec import IDGenRecTrainConfig
    from steerrec.train.idgenrec_job import IDGenRecJobConfig, run_idgenrec
    from steerrec.train.loop import LoopConfig, RayScaling

    data, bench = tmp_path / "data", tmp_path / "bench"
    prepare(PrepareConfig(format="world", out=str(data), world={"n_users": 30, "n_items": 30}))
    build_benchmark(BenchmarkConfig(data=str(data), no_preferences=True, out=str(bench)))
    tiny = T5StackConfig(num_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, dropout=0.0)
    train = IDGenRecTrainConfig(
        model=IDGenRecConfig(generator=tiny, recommender=tiny, max_text_tokens=32, max_prompt_tokens=96),
        ids=DiverseIdConfig(windows=[[1, 4], [4, 8]]), tokenizer_vocab=200, rounds=2, pretrain_epochs=0,
        rec_epochs=1, strategy="alternate_rec_first", beam_size=10, loop=LoopConfig(batch_size=16, progress=False),
    )  # fmt: skip
    out = tmp_path / "run"
    cfg = IDGenRecJobConfig(str(data), str(bench), str(out), train, use_ray=True, scaling=RayScaling(num_workers=2))
    summary = run_idgenrec(cfg)
    one, two = (summary["phases"][t]["history"] for t in ("round1_rec", "round2_rec"))
    assert [r["epoch"] for r in one + two] == [1, 1] and one[0]["step"] > 0 and two[0]["step"] == 2 * one[0]["step"]
    assert all(0 <= r["valid_ndcg@10"] <= r["valid_recall@10"] <= 1 for r in one + two)
    for phase in ("round1_rec", "round1_id", "round2_rec"):  # no pre-training: a Ray Train run costs ~30 s
        assert (out / "phases" / "ray" / phase).is_dir() and (out / "phases" / phase / "best.safetensors").is_file()
    assert read_run_info(out, kinds=("recommender",)).details["model"] == "idgenrec"

    again = run_idgenrec(cfg)  # every phase resumes from its last checkpoint: nothing left to train
    assert again["phases"]["round2_rec"]["start_epoch"] == 2 and again["ids"] == summary["ids"]

    scores = evaluate_run(str(out), EvalConfig(runs=[str(out)], beam_size=10, plot=False))
    assert list(scores) == ["recommendation"] and 0 <= scores["recommendation"]["recall@10"] <= 1
