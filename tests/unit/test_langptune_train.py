"""The LangPTune alternation end to end on a tiny dataset folder (tiny random policy,
MiniLM embedder): the run folder, the baselines, and resumption per outer iteration."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("peft")

from tests.tiny_data import tiny_langptune

from steerrec.config import from_dict
from steerrec.data import schema
from steerrec.data.sequences import build_sequences
from steerrec.langptune.embedder import Catalog
from steerrec.langptune.evaluate import (
    hit_ranks,
    most_popular_ranking,
    paired_difference,
    random_ranking,
    ranking_table,
)
from steerrec.langptune.runs import train_and_evaluate
from steerrec.langptune.sessions import Session
from steerrec.langptune.train import LangPTune, LangPTuneConfig
from steerrec.langptune.truth_hits import names

NAMES = ["Rose Soap", "Lavender Candle", "Cedar Shampoo", "Mint Toothpaste", "Citrus Lotion", "Pine Body Wash"]
NAMES += ["Oat Scrub", "Cocoa Lip Balm"]  # 8 items: each user has train sessions at t = 5, 6


def _folder(root, truth: bool = False) -> str:
    rng = np.random.default_rng(0)
    items = [{f.name: None for f in schema.ITEMS} | {"item_id": f"i{k}", "title": n} for k, n in enumerate(NAMES)]
    rows = [
        {
            "user_id": f"u{u}",
            "item_id": f"i{item}",
            "timestamp": 10 * pos,
            "rating": 4.0,
            "review_text": "fine",
            "review_summary": None,
        }
        for u in range(4)
        for pos, item in enumerate(rng.permutation(len(NAMES)))
    ]
    inter = pa.Table.from_pylist(rows, schema.INTERACTIONS)
    root.mkdir()
    pq.write_table(pa.Table.from_pylist(items, schema.ITEMS), root / schema.ITEMS_FILE)
    pq.write_table(inter, root / schema.INTERACTIONS_FILE)
    pq.write_table(build_sequences(inter), root / schema.SEQUENCES_FILE)
    if truth:  # every review says "fine": a like of "fine" is visible in every session
        rows = [{"user_id": f"u{u}", "t": t, "preferences": ["Find fine"]} for u in range(4) for t in range(1, 9)]
        rows = [r | {"attributes": ["x.quality=fine"], "sentiments": ["like"]} for r in rows]
        pq.write_table(pa.Table.from_pylist(rows, schema.TRUTH), root / schema.TRUTH_FILE)
    return str(root)


def _cfg(data, out, **extra) -> LangPTuneConfig:
    return from_dict(LangPTuneConfig, tiny_langptune(data, out, **extra))


@pytest.fixture
def ending_policy(monkeypatch):
    """The tiny random policy with EOS's score raised after 2 tokens, so that its profiles
    end inside the budget (all-cut profiles share one reward: RLSO would have nothing to learn)."""
    build = LangPTune._policy

    def policy(self):
        model, tok = build(self)
        model.generation_config.exponential_decay_length_penalty = (2, 2.0)
        return model, tok

    monkeypatch.setattr(LangPTune, "_policy", policy)


def test_baselines_by_hand():
    got = ranking_table(np.array([[3, 1], [2, 0]]), np.array([1, 5]), k=2)
    assert got["ndcg@2"] == pytest.approx(1 / np.log2(3) / 2) and got["mrr@2"] == pytest.approx(0.25)
    assert got["recall@2"] == 0.5 and got["precision@2"] == 0.25
    assert got["ndcg@2_se"] == pytest.approx(1 / np.log2(3) / 2)
    catalog = Catalog(list("abcde"), list("abcde"))
    train = [Session("u", 3, "train", ("a", "b"), "c"), Session("v", 3, "train", ("b", "c"), "d")]
    assert most_popular_ranking(train, catalog, 2, 5).tolist() == [[1, 2, 0, 3, 4]] * 2
    rand = random_ranking(3, 5, 4, seed=1)
    assert rand.shape == (3, 4) and all(len(set(row)) == 4 for row in rand.tolist())


def test_run_folder_and_resume_lose_nothing(tmp_path, ending_policy):
    data = _folder(tmp_path / "data", truth=True)
    whole = train_and_evaluate(_cfg(data, tmp_path / "whole", outer_iterations=2), eval_sessions=2, k=3)
    assert set(whole) == {"variant", "metrics", "baselines", "seconds", "truth"} and whole["metrics"]["sessions"] == 2.0
    assert whole["truth"]["like_sessions"] == 2.0 and whole["truth"]["dislike_sessions"] == 0.0
    profiles = [q["query"] for q in json.loads((tmp_path / "whole" / "queries.json").read_text())]
    assert whole["truth"]["like_share"] == sum(names(p, "fine") for p in profiles) / 2
    assert set(whole["baselines"]) == {"random", "most_pop"}
    folder = tmp_path / "whole"
    for name in ("config.yaml", "run.json", "metrics.json", "results.json", "queries.json"):
        assert (folder / name).is_file(), name
    rows = json.loads((folder / "metrics.json").read_text())["iterations"]
    assert [r["iteration"] for r in rows] == [0, 1]
    assert rows[0]["embedder"]["train_examples"] == 2 and rows[0]["policy"]["rollout_cut_share"] < 1.0
    assert rows[0]["policy"]["train_loss"] > 0  # the policy learned something to carry over
    assert json.loads((folder / "run.json").read_text())["kind"] == "langptune"

    # the same run, stopped after iteration 0, then rerun with K = 2: iteration 0 is kept as
    # it was and iteration 1 starts from its weights, so the result equals the whole run's
    cut = tmp_path / "cut"
    train_and_evaluate(_cfg(data, cut, outer_iterations=1), eval_sessions=2, k=3)
    first = (cut / "iter_00" / "done.json").read_bytes()
    resumed = train_and_evaluate(_cfg(data, cut, outer_iterations=2), eval_sessions=2, k=3)
    assert (cut / "iter_00" / "done.json").read_bytes() == first
    for name in ("adapter.safetensors", "embedder.safetensors"):
        assert (cut / "iter_01" / name).read_bytes() == (folder / "iter_01" / name).read_bytes(), name
    assert resumed["metrics"] == whole["metrics"]


def test_emb_variants_rank_history_text(tmp_path):
    data = _folder(tmp_path / "data")
    out = train_and_evaluate(_cfg(data, tmp_path / "emb0", variant="emb_0"), eval_sessions=2, k=3)
    queries = json.loads((tmp_path / "emb0" / "queries.json").read_text())
    assert all(q["query"].startswith("Title: ") for q in queries) and out["variant"] == "emb_0"
    assert "truth" not in out and out["seconds"]["evaluate"] > 0  # history texts: no profile to check
    assert not (tmp_path / "emb0" / "iter_00").exists()  # nothing to train
    with pytest.raises(ValueError, match="variant must be one of"):
        _cfg(data, tmp_path / "x", variant="bert4rec")


def test_sweep_trial_sets_the_length_and_reports_the_table(tmp_path):
    from types import SimpleNamespace

    from steerrec.config import to_dict
    from steerrec.langptune.sweep import trial, trial_config

    data = _folder(tmp_path / "data", truth=True)
    base = to_dict(_cfg(data, tmp_path / "unused", variant="langptune_0"))
    config = {"base": base, "runs": str(tmp_path / "runs"), "eval_sessions": 2, "policy.rollout.profile_length": 64}
    cfg = trial_config(config, "t0")
    assert cfg.policy.rollout.profile_length == 64 and cfg.out == str(tmp_path / "runs" / "t0")
    reports: list[dict] = []
    trial(config, reports.append, lambda: SimpleNamespace(get_trial_name=lambda: "t0"))
    (row,) = reports
    assert row["profile_length"] == 64 and row["test_sessions"] == 2.0
    assert {"test_ndcg@20", "random_ndcg@20", "most_pop_ndcg@20"} <= set(row)
    assert row["truth_like_sessions"] == 2.0 and 0.0 <= row["truth_like_share"] <= 1.0  # the profiles' check
    assert (tmp_path / "runs" / "t0" / "results.json").is_file()


def test_overriding_one_loop_key_keeps_the_phase_defaults():
    from steerrec.config import load

    cfg = load(LangPTuneConfig, None, ["policy_loop.lr=0.1", "embedder_loop.epochs=2"], {"data": "d", "out": "o"})
    assert cfg.policy_loop.lr == 0.1 and cfg.policy_loop.trainable_only and cfg.policy_loop.monitor == ""
    assert cfg.embedder_loop.epochs == 2 and cfg.embedder_loop.monitor == "" and cfg.embedder_loop.lr == 1e-5


def test_greedy_test_profiles_are_shared_through_the_cache(tmp_path, monkeypatch):
    import torch

    from steerrec.langptune import policy_task
    from steerrec.langptune.evaluate import profiles_key

    data, cache = _folder(tmp_path / "data"), str(tmp_path / "cache")
    first = train_and_evaluate(_cfg(data, tmp_path / "a", variant="langptune_0", profile_cache=cache), eval_sessions=2)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1

    def no_generation(*args, **kwargs):
        raise AssertionError("the second run must read the cached profiles")

    monkeypatch.setattr(policy_task, "greedy_profiles", no_generation)
    second = train_and_evaluate(_cfg(data, tmp_path / "b", variant="langptune_0", profile_cache=cache), eval_sessions=2)
    assert second["metrics"] == first["metrics"]
    assert (tmp_path / "a" / "queries.json").read_text() == (tmp_path / "b" / "queries.json").read_text()

    # a longer evaluation generates only the sessions not yet cached, a chunk per cache write
    from steerrec.langptune import evaluate as evaluate_module

    asked: list[int] = []

    def count_generation(policy, tokenizer, sessions, messages, length):
        asked.append(len(sessions))
        return [f"profile of {s.user_id} at {s.t}" for s in sessions]

    monkeypatch.setattr(policy_task, "greedy_profiles", count_generation)
    monkeypatch.setattr(evaluate_module, "PROFILE_CHUNK", 1)
    train_and_evaluate(_cfg(data, tmp_path / "e", variant="langptune_0", profile_cache=cache), eval_sessions=4)
    assert asked == [1, 1]  # sessions 3 and 4, each written as soon as it was generated
    rows = json.loads((tmp_path / "e" / "queries.json").read_text())
    before = [q["query"] for q in json.loads((tmp_path / "a" / "queries.json").read_text())]
    assert [q["query"] for q in rows[:2]] == before  # read from the cache
    assert [q["query"] for q in rows[2:]] == [f"profile of {q['user_id']} at {q['t']}" for q in rows[2:]]
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1

    # a pretrained load leaves the global RNG in no fixed state (here: a varying number of
    # draws after the build); one seed must still give one initial adapter
    from steerrec.alignment import model as model_module

    build, draws = model_module.build_tiny, iter([3, 7])

    def build_then_draw(*args, **kwargs):
        built = build(*args, **kwargs)
        torch.rand(next(draws))
        return built

    monkeypatch.setattr(model_module, "build_tiny", build_then_draw)
    run = LangPTune(_cfg(data, tmp_path / "c", variant="langptune_0"))
    msgs = [run.messages(s) for s in run.splits["test"][:2]]
    before = profiles_key(run.policy, msgs, 16, {})
    assert profiles_key(LangPTune(_cfg(data, tmp_path / "d", variant="langptune_cl")).policy, msgs, 16, {}) == before
    assert profiles_key(run.policy, msgs, 32, {}) != before  # the length is in the key
    lora = next(p for n, p in run.policy.named_parameters() if "lora_B" in n)
    lora.data += 1.0
    assert profiles_key(run.policy, msgs, 16, {}) != before  # so are the adapter's weights


def test_hit_ranks_and_paired_difference_by_hand():
    assert hit_ranks(np.array([[3, 1], [2, 0]]), np.array([1, 5])).tolist() == [2, 0]
    got = paired_difference([0, 1, 0.5], [1, 1, 0])
    assert got["mean"] == pytest.approx(1 / 6) and got["se"] == pytest.approx(np.sqrt(7 / 36))
    assert (got["better"], got["worse"], got["level"], got["sessions"]) == (1, 1, 1, 3)
    assert paired_difference([0.5], [0.0])["se"] == 0.0
    with pytest.raises(ValueError, match="one length"):
        paired_difference([0, 1], [1])


def test_per_session_rows_and_the_paired_comparison(tmp_path):
    from benchmarks.langptune_compare import compare, format_table

    data = _folder(tmp_path / "data")
    runs = {v: tmp_path / v for v in ("emb_0", "emb_cl")}
    outs = {v: train_and_evaluate(_cfg(data, run, variant=v), eval_sessions=3, k=3) for v, run in runs.items()}
    rows = json.loads((runs["emb_0"] / "queries.json").read_text())
    assert np.mean([r["ndcg@3"] for r in rows]) == pytest.approx(outs["emb_0"]["metrics"]["ndcg@3"])
    assert all(0 <= r["rank"] <= 3 and (r["rank"] > 0) == (r["ndcg@3"] > 0) for r in rows)

    table = compare([runs["emb_0"], runs["emb_cl"]], k=3)
    assert [t["variant"] for t in table] == ["emb_0", "emb_cl"] and "vs" not in table[0]
    diff = table[1]["vs"]
    assert diff["mean"] == pytest.approx(outs["emb_cl"]["metrics"]["ndcg@3"] - outs["emb_0"]["metrics"]["ndcg@3"])
    assert diff["better"] + diff["worse"] + diff["level"] == 3 and "(reference)" in format_table(table, k=3)

    short = train_and_evaluate(_cfg(data, tmp_path / "short", variant="emb_0"), eval_sessions=2, k=3)
    assert short["metrics"]["sessions"] == 2.0
    with pytest.raises(ValueError, match=r"short/queries.json: sessions differ .* at row 2"):
        compare([runs["emb_0"], tmp_path / "short"], k=3)
    old = [{k: v for k, v in r.items() if k != "ndcg@3"} for r in rows]  # a folder from before the field
    (runs["emb_0"] / "queries.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"emb_0/queries.json: row 0 has no 'ndcg@3'"):
        compare([runs["emb_0"], runs["emb_cl"]], k=3)
