"""IDGenRec's job: dataset and benchmark folders in, a run folder out (one run.json schema)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steerrec.benchmark.axes import EXAMPLES, RECOMMENDATION, axis_file
from steerrec.config import ConfigError, load
from steerrec.data.schema import ITEMS
from steerrec.ids.textual import DiverseIdConfig
from steerrec.models.idgenrec import IDGenRec, IDGenRecConfig
from steerrec.models.idgenrec_text import load_tokenizer
from steerrec.models.seq2seq import T5StackConfig
from steerrec.run_folder import read_run_info
from steerrec.train.idgenrec import IDGenRecTrainConfig
from steerrec.train.idgenrec_job import IDGenRecJobConfig, run_idgenrec
from steerrec.train.loop import LoopConfig

WORDS = ["rose", "lip", "tea", "soap", "mint", "clay", "gold", "amber", "cream", "mask", "blush", "serum"]


def _folders(root):
    data, bench = root / "data", root / "bench"
    data.mkdir()
    n = len(WORDS)
    titles = [f"{w} {WORDS[(k + 3) % n]}" for k, w in enumerate(WORDS)]
    titles[5] = None  # no text at all: the item's id string stands in
    items = {"item_id": [f"it{k}" for k in range(n)], "title": titles, "brand": ["acme", "glow"] * (n // 2)}
    items |= {"categories": [["beauty"]] * n, "price": [float(k) for k in range(n)]}
    items |= {"description": [None] * n, "extra": [None] * n}
    items["brand"][5] = None
    items["categories"][5] = None
    items["price"][5] = None
    pq.write_table(pa.table(items, schema=ITEMS), data / "items.parquet")
    rng = np.random.default_rng(1)
    for split, rows in (("train", 30), ("valid", 6)):
        seqs = [rng.choice(n, 3, replace=False).tolist() for _ in range(rows)]
        table = {"user_id": [f"u{r}" for r in range(rows)], "t": [3] * rows}
        table |= {"history": [[f"it{i}" for i in s[:2]] for s in seqs], "preference": ["none"] * rows}
        table["target"] = [f"it{s[2]}" for s in seqs]
        path = bench / axis_file(RECOMMENDATION, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(table, schema=EXAMPLES), path)
    return str(data), str(bench)


def test_job_writes_a_run_folder_with_unique_textual_ids(tmp_path):
    data, bench = _folders(tmp_path)
    tiny = T5StackConfig(num_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, dropout=0.0)
    train = IDGenRecTrainConfig(
        model=IDGenRecConfig(generator=tiny, recommender=tiny, max_text_tokens=32, max_prompt_tokens=96),
        ids=DiverseIdConfig(windows=[[1, 4], [4, 8]]), tokenizer_vocab=200, rounds=1, pretrain_epochs=1,
        rec_epochs=1, loop=LoopConfig(batch_size=16, progress=False),
    )  # fmt: skip
    out = tmp_path / "run"
    summary = run_idgenrec(IDGenRecJobConfig(data=data, benchmark=bench, out=str(out), train=train, use_ray=False))
    info = read_run_info(out, kinds=("recommender",))
    assert info.details["model"] == "idgenrec" and info.details["ids"]["empty_text_items"] == 1
    assert info.inputs["benchmark"]["path"] == bench and info.details["rounds"] == 1
    ids = pq.read_table(out / "semantic_ids.parquet").to_pydict()
    assert ids["item_id"] == [f"it{k}" for k in range(12)]
    assert len(set(ids["text"])) == 12 and all(ids["text"]) and all(ids["codes"])
    tokenizer = load_tokenizer(str(out / "tokenizer.json"))
    assert [tokenizer.decode(c) for c in ids["codes"]] == ids["text"]
    model = IDGenRec.load(out)
    assert model.config.vocab_size == len(tokenizer)
    items = pq.read_table(out / "items.parquet").to_pydict()
    assert items["text"][5] == "it5"  # the empty listing read as its id string
    assert json.loads((out / "metrics.json").read_text())["ids"] == json.loads(json.dumps(summary["ids"]))
    again = load(IDGenRecJobConfig, out / "job.yaml")
    assert again.train.rounds == 1 and again.train.model.generator.d_model == 32


def test_job_config_needs_its_folders():
    with pytest.raises(ValueError, match="required"):
        IDGenRecJobConfig(data="d", benchmark="", out="o")
    with pytest.raises(ConfigError, match="unknown"):
        load(IDGenRecJobConfig, None, ["data=d", "benchmark=b", "out=o", "train.nope=1"])
