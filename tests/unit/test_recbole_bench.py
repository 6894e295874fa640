"""benchmarks/recbole_sasrec.py: the atomic file RecBole reads, its config and the table."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmarks import recbole_sasrec as rb


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "office" / "data"
    folder.mkdir(parents=True)
    rows = {"user_id": ["b", "a", "a", "b", "a"], "item_id": ["9", "3", "1", "8", "2"], "timestamp": [2, 3, 1, 1, 2]}
    pq.write_table(pa.table(rows), folder / "interactions.parquet")
    return folder


def test_inter_file_is_sorted_by_user_then_time(data, tmp_path):
    path, n = rb.write_atomic_inter(data, tmp_path / "work", "office")
    lines = path.read_text().splitlines()
    assert n == 5
    assert lines[0] == "user_id:token\titem_id:token\ttimestamp:float"
    assert [line.split("\t")[:2] for line in lines[1:]] == [["a", "1"], ["a", "2"], ["a", "3"], ["b", "8"], ["b", "9"]]


def test_config_is_leave_one_out_full_ranking(tmp_path):
    cfg = rb.recbole_config(tmp_path, "office", max_len=20, stopping_step=10, epochs=300, seed=0)
    assert cfg["eval_args"] == {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"}
    assert cfg["MAX_ITEM_LIST_LENGTH"] == 20 and cfg["stopping_step"] == 10
    assert cfg["train_neg_sample_args"] is None and cfg["loss_type"] == "CE"


def test_table_gives_our_ratio():
    theirs = {"recall@5": 0.05, "ndcg@5": 0.03, "recall@10": 0.1, "ndcg@10": 0.04}
    ours = {"recall@5": 0.05, "ndcg@5": 0.03, "recall@10": 0.097, "ndcg@10": 0.042}
    text = rb.table(theirs, ours)
    assert "| recall@10 | 0.1000 | 0.0970 | 0.970 |" in text
    assert "| ndcg@10 | 0.0400 | 0.0420 | 1.050 |" in text


def test_missing_input_is_one_line(tmp_path, capsys):
    assert rb.main(["--data", str(tmp_path / "nowhere"), "--work", str(tmp_path / "w")]) == 2
    assert "interactions.parquet: no such file" in capsys.readouterr().err
