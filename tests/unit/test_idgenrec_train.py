"""IDGenRec on the one loop: pre-training, an alternate round, frozen halves, resumption, Table 5's ablations."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from safetensors.torch import load_file

from steerrec.ids.textual import DiverseIdConfig
from steerrec.models.idgenrec import IDGenRecConfig
from steerrec.models.seq2seq import T5StackConfig
from steerrec.train.idgenrec import IDGenRecTrainConfig, Phase, phase_plan, train_idgenrec
from steerrec.train.idgenrec_batches import IDGenRecData, Split
from steerrec.train.loop import BEST, LoopConfig, latest_checkpoint

NAMES = [
    ("rose", "soap", "acme"), ("red", "lip gloss", "glow"), ("blue", "shampoo", "acme"), ("green", "tea", "leaf"),
    ("rose", "lotion", "acme"), ("black", "mascara", "glow"), ("white", "cream", "leaf"), ("pink", "blush", "glow"),
    ("gold", "serum", "acme"), ("mint", "toothpaste", "leaf"), ("amber", "perfume", "glow"), ("clay", "mask", "leaf"),
]  # fmt: skip
TINY = T5StackConfig(num_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, dropout=0.0)


def _data() -> IDGenRecData:
    texts = [f"Title: {a} {b} | Brand: {c}" for a, b, c in NAMES]
    texts[11] = ""  # bad input: an item without text still gets an ID (from its id string)
    rng = np.random.default_rng(0)
    seqs = [rng.choice(12, 3, replace=False).tolist() for _ in range(40)]
    train = Split([s[:2] for s in seqs], [s[2] for s in seqs])
    valid = Split([s[1:] for s in seqs[:8]], [s[0] for s in seqs[:8]])
    return IDGenRecData([f"item{k}" for k in range(12)], texts, [f"{a} {b}" for a, b, _ in NAMES], train, valid)


def _cfg() -> IDGenRecTrainConfig:
    model = IDGenRecConfig(generator=TINY, recommender=TINY, max_text_tokens=32, max_prompt_tokens=96)
    return IDGenRecTrainConfig(
        model=model, ids=DiverseIdConfig(windows=[[1, 4], [4, 8]]), tokenizer_vocab=150, rounds=1,
        pretrain_epochs=1, rec_epochs=2, id_lr=1e-3, loop=LoopConfig(batch_size=16, progress=False),
    )  # fmt: skip


def _best(folder) -> dict:
    return load_file(str(latest_checkpoint(folder) / BEST))


def _same(a: dict, b: dict, part: str) -> bool:
    return all((a[k] == b[k]).all() for k in a if k.startswith(part))


def _changed(a: dict, b: dict, part: str) -> bool:
    return all(not (a[k] == b[k]).all() for k in a if k.startswith(part) and k.endswith("weight"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("idgenrec")
    summary, weights = train_idgenrec(_data(), _cfg(), out)
    return out, summary, weights


def test_ids_are_unique_and_reported(run):
    out, summary, _ = run
    for r in (0, 1):
        saved = json.loads((out / f"ids_{r}.json").read_text())
        texts = [row["text"] for row in saved["ids"]]
        tokens = [tuple(row["tokens"]) for row in saved["ids"]]
        assert len(set(texts)) == len(set(tokens)) == 12 and all(texts)
        report = saved["report"]
        assert report["unique"] == 1.0 and report["empty_text_items"] == 1 and report["n_items"] == 12
        assert 0 <= report["second_try_share"] <= 1 and 0 <= report["longer_id_share"] <= 1
        assert summary["ids"][r] == report and summary["examples"][r] == texts[:10]


def test_each_phase_trains_its_half_and_freezes_the_other(run):
    out, _, weights = run
    pre, gen, rec = _best(out / "pretrain"), _best(out / "round1_id"), _best(out / "round1_rec")
    assert _changed(pre, gen, "generator.") and _same(pre, gen, "recommender.")
    assert _same(gen, rec, "generator.") and _changed(gen, rec, "recommender.")
    assert weights == latest_checkpoint(out / "round1_rec") / BEST


def test_the_recommender_phase_validates_by_constrained_decoding(run):
    _, summary, _ = run
    rows = summary["phases"]["round1_rec"]["history"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(0 <= r["valid_ndcg@10"] <= r["valid_recall@10"] <= 1 for r in rows)
    assert "valid_loss" in summary["phases"]["round1_id"]["history"][0]


def test_a_rerun_resumes_every_finished_phase_without_training(run):
    out, summary, _ = run
    again, _ = train_idgenrec(_data(), _cfg(), out)
    assert again["phases"]["round1_rec"]["start_epoch"] == 3  # past the last epoch: nothing left
    assert again["ids"] == summary["ids"] and again["examples"] == summary["examples"]


def test_alternate_names_its_final_ids_and_recommender_phase(run):
    _, summary, _ = run
    assert summary["final"] == {"ids": 1, "rec": "round1_rec"}


def test_rec_only_trains_the_recommender_on_the_first_ids_for_all_rounds_epochs(tmp_path, run):
    out, first, _ = run
    cfg = replace(_cfg(), strategy="rec_only", rounds=2, rec_epochs=1)
    summary, weights = train_idgenrec(_data(), cfg, tmp_path)
    assert summary["final"] == {"ids": 0, "rec": "rec_only"} and list(summary["ids"]) == [0]
    assert set(summary["phases"]) == {"pretrain", "rec_only"}
    assert [r["epoch"] for r in summary["phases"]["rec_only"]["history"]] == [1, 2]  # rounds x rec_epochs
    assert summary["ids"][0] == first["ids"][0]  # the same pre-trained generator, the same round-0 IDs
    pre, rec = _best(tmp_path / "pretrain"), load_file(str(weights))
    assert _same(pre, rec, "generator.") and _changed(pre, rec, "recommender.")


def test_id_only_trains_the_generator_and_leaves_the_recommender_initial(tmp_path):
    summary, weights = train_idgenrec(_data(), replace(_cfg(), strategy="id_only"), tmp_path)
    assert summary["final"] == {"ids": 1, "rec": None} and set(summary["phases"]) == {"pretrain", "round1_id"}
    pre, last = _best(tmp_path / "pretrain"), load_file(str(weights))
    assert _changed(pre, last, "generator.") and _same(pre, last, "recommender.")
    assert (tmp_path / "ids_1.json").is_file()


def test_alternate_rec_first_trains_the_generator_between_recommender_phases(tmp_path):
    cfg = replace(_cfg(), strategy="alternate_rec_first", rounds=2, rec_epochs=1)
    summary, weights = train_idgenrec(_data(), cfg, tmp_path)
    assert summary["final"] == {"ids": 1, "rec": "round2_rec"} and list(summary["ids"]) == [0, 1]
    assert set(summary["phases"]) == {"pretrain", "round1_rec", "round1_id", "round2_rec"}
    rec1, gen1, rec2 = (_best(tmp_path / t) for t in ("round1_rec", "round1_id", "round2_rec"))
    assert _changed(rec1, gen1, "generator.") and _same(rec1, gen1, "recommender.")  # against the trained one
    assert _same(gen1, rec2, "generator.") and _changed(gen1, rec2, "recommender.")
    assert weights == latest_checkpoint(tmp_path / "round2_rec") / BEST


def test_phase_plans_of_the_four_strategies():
    cfg = replace(_cfg(), rounds=2, id_epochs=1, rec_epochs=3)
    plan = lambda strategy: phase_plan(replace(cfg, strategy=strategy))
    gen = lambda r: Phase("id", f"round{r}_id", 1, new_ids=r)
    rec = lambda r: Phase("rec", f"round{r}_rec", 3)
    assert plan("alternate") == ([gen(1), rec(1), gen(2), rec(2)], {"ids": 2, "rec": "round2_rec"})
    assert plan("alternate_rec_first") == ([rec(1), gen(1), rec(2)], {"ids": 1, "rec": "round2_rec"})
    assert plan("id_only") == ([gen(1), gen(2)], {"ids": 2, "rec": None})
    assert plan("rec_only") == ([Phase("rec", "rec_only", 6)], {"ids": 0, "rec": "rec_only"})


def test_rounds_continue_each_t5_s_optimizer_and_one_schedule(tmp_path):
    from steerrec.train.loop import OPTIM
    from steerrec.train.schedule import ScheduleConfig

    loop = LoopConfig(batch_size=16, progress=False, schedule=ScheduleConfig("linear"))
    cfg = replace(_cfg(), strategy="alternate_rec_first", rounds=2, rec_epochs=1, pretrain_epochs=0, loop=loop)
    summary, _ = train_idgenrec(_data(), cfg, tmp_path / "carried")
    one, two = (summary["phases"][t]["history"] for t in ("round1_rec", "round2_rec"))
    assert [r["step"] for r in one + two] == [3, 6]  # 40 examples / 16: 3 steps an epoch, one schedule of 6
    assert one[0]["lr"] == pytest.approx(1e-3 * 3 / 6) and two[0]["lr"] == pytest.approx(0.0)
    adam = load_file(str(latest_checkpoint(tmp_path / "carried" / "round2_rec") / OPTIM))
    assert {float(v) for k, v in adam.items() if k.endswith("/step")} == {6.0}  # AdamW's own count went on
    fresh, _ = train_idgenrec(_data(), replace(cfg, continue_optimizer=False), tmp_path / "fresh")
    assert [r["step"] for r in fresh["phases"]["round2_rec"]["history"]] == [3]
    assert fresh["phases"]["round2_rec"]["history"][0]["lr"] == pytest.approx(0.0)  # its own 3-step schedule


def test_id_max_batches_caps_the_generator_epoch_only(tmp_path):
    from steerrec.train.schedule import ScheduleConfig

    linear = ScheduleConfig("linear", warmup_steps=0, min_ratio=0.0)
    cfg = replace(_cfg(), pretrain_epochs=0, rec_epochs=1, id_max_batches=1)
    cfg = replace(cfg, loop=replace(cfg.loop, schedule=linear))
    summary, _ = train_idgenrec(_data(), cfg, tmp_path)
    gen, rec = summary["phases"]["round1_id"]["history"], summary["phases"]["round1_rec"]["history"]
    assert [r["steps"] for r in gen] == [1] and [r["steps"] for r in rec] == [3]  # of 3 batches each
    assert gen[-1]["lr"] == rec[-1]["lr"] == 0.0  # each schedule ends at its phase's last step


def test_length_buckets_batch_prompts_of_similar_length_and_train_every_example(tmp_path, monkeypatch):
    from steerrec.train.batch_order import padding_share
    from steerrec.train.idgenrec_batches import batch_rows, example_lengths

    ids = [(5,) * (1 + k % 4) for k in range(12)]  # IDs of 1 to 4 tokens
    histories = [list(range(k % 6)) for k in range(300)]  # 0 to 5 history items
    lengths = example_lengths(Split(histories, np.zeros(300, dtype=int)), ids)
    assert lengths[:3].tolist() == [0, 1, 3] and lengths[5] == 1 + 2 + 3 + 4 + 1
    plain = batch_rows(300, 16, True, 7)
    bucketed = batch_rows(300, 16, True, 7, lengths=lengths, buckets=8)
    assert len(bucketed) == len(plain) and sorted(np.concatenate(bucketed)) == list(range(300))
    assert padding_share(lengths, bucketed) < padding_share(lengths, plain) / 2
    import steerrec.train.idgenrec_batches as IB

    seen = []
    monkeypatch.setattr(IB, "batch_rows", lambda *a, **kw: seen.append((a, kw)) or batch_rows(*a, **kw))
    summary, _ = train_idgenrec(_data(), replace(_cfg(), length_buckets=4, rec_epochs=1), tmp_path)
    assert summary["phases"]["round1_rec"]["history"][0]["steps"] == 3  # 40 examples in batches of 16
    shuffled = [(a, kw) for a, kw in seen if a[2]]  # training batches (steps_per_epoch counts unshuffled)
    assert shuffled and all(a[-1] == 4 and a[-2] is not None for a, _ in shuffled)  # lengths, buckets


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="idgenrec.rounds"):
        IDGenRecTrainConfig(rounds=0)
    with pytest.raises(ValueError, match="idgenrec.strategy.*'both'"):
        IDGenRecTrainConfig(strategy="both")
