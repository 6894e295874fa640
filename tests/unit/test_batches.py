"""Benchmark rows -> model batches: catalog order, mixtures, per-model tensors, sharding."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from steerrec.benchmark.axes import AXES, axis_file, axis_schema
from steerrec.models.mender import MenderEmbConfig
from steerrec.models.sasrec import SASRecConfig
from steerrec.models.seq2seq import T5StackConfig
from steerrec.models.tiger import TigerConfig
from steerrec.models.vocab import N_SPECIAL
from steerrec.train import batch_order as O
from steerrec.train import batches as B

IDS = ["a", "b", "c", "d"]
CODES = [[0, 1], [1, 0], [1, 1], [0, 0]]
TITLES = {"a": "red soap", "b": "blue cream", "c": "green gel", "d": None}
ROWS = [  # user, t, history, preference(s), target
    ("u1", 3, ["a", "b"], "likes soap", "c"),
    ("u2", 2, ["d"], "wants cream", "b"),
    ("u3", 4, ["c", "a", "d"], "avoids gel", "a"),
]


@pytest.fixture()
def catalog() -> B.Catalog:
    ids = pa.table({"item_id": IDS, "codes": pa.array(CODES, pa.list_(pa.int32()))})
    items = pa.table({"item_id": ["d", "c", "b", "a", "z"], "title": [TITLES[i] for i in "dcba"] + ["zz"]})
    return B.Catalog.from_tables(ids, items)


@pytest.fixture()
def bench(tmp_path):
    for axis in AXES:
        rows = []
        for i, (user, t, hist, pref, target) in enumerate(ROWS):
            base = {"user_id": user, "t": t, "history": hist, "target": target}
            if axis == "consolidation":
                rows.append(base | {"preferences": [pref, "second"]})
            elif axis == "sentiment":
                rows += [
                    base | {"history": [], "preference": f"Avoid {pref}", "polarity": "neg", "pair_id": i},
                    base | {"history": [], "preference": f"Find {pref}", "polarity": "pos", "pair_id": i},
                ]
            else:
                rows.append(base | {"preference": f"{axis}: {pref}"})
        path = tmp_path / axis_file(axis, "train")
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=axis_schema(axis)), path)
    return str(tmp_path)


def test_catalog_follows_semantic_id_order_and_falls_back_to_the_id_for_missing_titles(catalog):
    assert catalog.item_ids == IDS and catalog.titles == ["red soap", "blue cream", "green gel", "d"]
    assert catalog.codes.tolist() == CODES
    with pytest.raises(ValueError, match="item 'x' has no semantic ID"):
        catalog.rows_of(["a", "x"], "f.parquet")


def test_catalog_names_the_row_of_an_item_missing_from_the_items_table():
    ids = pa.table({"item_id": ["a", "q"], "codes": pa.array([[0], [1]], pa.list_(pa.int32()))})
    with pytest.raises(ValueError, match="row 1: item 'q'"):
        B.Catalog.from_tables(ids, pa.table({"item_id": ["a"], "title": ["t"]}))


def test_mixtures_add_sentiment_negatives_and_steering_rows(bench, catalog):
    rec = B.training_examples(bench, "recommendation", catalog)
    assert len(rec) == 3 and not rec.negative.any()
    assert rec.target.tolist() == [2, 1, 0] and rec.history[2] == [2, 0, 3]
    pos_neg = B.training_examples(bench, "pos_neg", catalog)
    assert len(pos_neg) == 9 and pos_neg.negative.sum() == 3
    assert [p[0].split()[0] for p, n in zip(pos_neg.preferences, pos_neg.negative) if n] == ["Avoid"] * 3
    every = B.training_examples(bench, "all", catalog)
    assert len(every) == 15 and {p[0].split(":")[0] for p in every.preferences} >= {"fine", "coarse"}
    with pytest.raises(ValueError, match="unknown mixture 'bogus'"):
        B.training_examples(bench, "bogus", catalog)


def test_consolidation_rows_carry_every_preference(bench, catalog):
    ex = B.axis_examples(B.read_axis(bench, "consolidation", "train"), "consolidation", catalog, "c")
    assert ex.preferences[0] == ["likes soap", "second"]


def _rec(bench, catalog):
    return B.training_examples(bench, "recommendation", catalog)


def test_tiger_batch_holds_semantic_id_tokens(bench, catalog):
    cfg = TigerConfig(codebook_sizes=[2, 2], max_history=2)
    enc = B.encode("tiger", cfg, _rec(bench, catalog), catalog)
    batch = B.make_batch(enc, np.array([0, 2]))
    # level 0 tokens start at N_SPECIAL, level 1 at N_SPECIAL + 2
    tok = lambda codes: [N_SPECIAL + codes[0], N_SPECIAL + 2 + codes[1]]
    assert batch["target"].tolist() == [tok(CODES[2]), tok(CODES[0])]
    assert batch["history"][1].tolist() == tok(CODES[0]) + tok(CODES[3])  # the most recent 2 of c, a, d
    assert "negative" not in batch


def test_sasrec_batch_is_left_padded_ids_plus_one(bench, catalog):
    enc = B.encode("sasrec", SASRecConfig(n_items=4, max_len=3), _rec(bench, catalog), catalog)
    batch = B.make_batch(enc, np.arange(3))
    assert batch["history"].tolist() == [[0, 1, 2], [0, 0, 4], [3, 1, 4]]
    assert batch["target"].tolist() == [3, 2, 1]


def test_mender_tok_text_names_preference_and_recent_titles_first(bench, catalog):
    from steerrec.models.mender import MenderTokConfig

    cfg = MenderTokConfig(encoder="unused", codebook_sizes=[2, 2], max_history=2)
    enc = B.encode("mender_tok", cfg, _rec(bench, catalog), catalog)
    text = B.make_batch(enc, np.array([0]))["text"][0]
    assert "recommendation: likes soap" in text and text.index("blue cream") < text.index("red soap")


def test_mender_emb_batch_gathers_embeddings_with_masks(bench, catalog):
    ex = B.training_examples(bench, "neg", catalog)
    item_emb = np.arange(8, dtype=np.float32).reshape(4, 2)
    texts = B.TextTable.build([ex], lambda t: np.array([[len(s), 1.0] for s in t]), 2)
    tiny = T5StackConfig(num_layers=1, d_model=8, d_ff=8, num_heads=1, d_kv=8)
    cfg = MenderEmbConfig(
        embed_dim=2, max_history=2, max_preferences=2, codebook_sizes=[2, 2], encoder=tiny, decoder=tiny
    )
    enc = B.encode("mender_emb", cfg, ex, catalog, item_emb, texts)
    batch = B.make_batch(enc, np.array([1, 3]))  # u2 (history d) and the first negative (no history)
    assert batch["history_emb"].shape == (2, 1, 2) and batch["history_mask"].tolist() == [[True], [False]]
    assert batch["history_emb"][0, 0].tolist() == [6.0, 7.0]
    assert batch["preference_emb"][1, 0, 0].item() == len("Avoid likes soap")
    assert batch["negative"].tolist() == [False, True]
    with pytest.raises(ValueError, match="needs item embeddings"):
        B.encode("mender_emb", cfg, ex, catalog)


def test_shards_are_disjoint_and_equally_long():
    enc = {
        "model": "sasrec",
        "n": 7,
        "negative": np.zeros(7, bool),
        "target": np.arange(7),
        "history": np.zeros((7, 2), dtype=np.int64),
    }
    seen = [torch.cat([b["target"] for b in B.iter_batches(enc, 2, True, 3, r, 2)]).tolist() for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 3 and not set(seen[0]) & set(seen[1])


def test_bucketed_batches_keep_rows_and_count_and_cut_padding():
    rng = np.random.default_rng(0)
    length = rng.integers(1, 21, size=1000)
    encoded = {"n": 1000, "length": length}
    plain = O.batch_indices(encoded, 32, shuffle=True, seed=3)
    bucketed = O.batch_indices(encoded, 32, shuffle=True, seed=3, buckets=8)
    again = O.batch_indices(encoded, 32, shuffle=True, seed=3, buckets=8)
    assert len(bucketed) == len(plain)
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(1000))
    assert all((a == b).all() for a, b in zip(bucketed, again))  # seeded
    assert O.padding_share(length, bucketed) < 0.5 * O.padding_share(length, plain)
    # two ranks still get the same number of batches, disjoint rows
    r0 = O.batch_indices(encoded, 32, True, 3, rank=0, world_size=2, buckets=8)
    r1 = O.batch_indices(encoded, 32, True, 3, rank=1, world_size=2, buckets=8)
    assert len(r0) == len(r1) and not set(np.concatenate(r0)) & set(np.concatenate(r1))


def test_padding_share_by_hand():
    length = np.array([1, 3, 2, 2])
    # batches [1, 3] -> 2 of 6 slots padding; [2, 2] -> none: 2 / 10
    assert O.padding_share(length, [np.array([0, 1]), np.array([2, 3])]) == pytest.approx(0.2)
