"""The shared ingest end to end with small in-test readers, and on a real Amazon file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import steerrec.data.prepare as prepare_module
from conftest import dataset_dir
from steerrec.data import io
from steerrec.data.ingest import STAGING, write_in_order
from steerrec.data.prepare import PrepareConfig, prepare
from steerrec.data.readers.base import BadRow, DataError, Location
from steerrec.data.schema import INTERACTIONS, ITEMS, SEQUENCES


class ListReader:
    """A Reader over lists of records (BadRow allowed); `fail_after` raises mid-stream."""

    format = "test"
    synthetic_timestamps = False

    def __init__(self, interactions, items=(), implicit=False, fail_after=None):
        self.rows, self.item_rows = list(interactions), list(items)
        self.implicit_feedback = implicit
        self.fail_after = fail_after

    def files(self):
        return []

    def interactions(self):
        for line, record in enumerate(self.rows, start=1):
            if self.fail_after is not None and line > self.fail_after:
                raise DataError("unreadable (truncated gzip)", Location("reviews.json", line))
            yield Location("reviews.json", line), record

    def items(self):
        for line, record in enumerate(self.item_rows, start=1):
            yield Location("meta.json", line), record


def _grid(users=6, items=6, **extra):
    """Every user rates every item once: a full 6x6 grid survives a 5-core."""
    return [
        {
            "user_id": f"u{u}",
            "item_id": f"i{i}",
            "timestamp": 100 * u + i,
            "rating": 4.0,
            "review_text": "ok",
            "review_summary": None,
            **extra,
        }
        for u in range(users)
        for i in range(items)
    ]


@pytest.fixture
def use_reader(monkeypatch):
    def use(reader):
        monkeypatch.setattr(prepare_module, "make_reader", lambda cfg: reader)
        return reader

    return use


def _cfg(tmp_path, **kw):
    return PrepareConfig(format="amazon2018", input="reviews.json", out=str(tmp_path / "out"), **kw)


def test_folder_shapes_order_and_manifest(tmp_path, use_reader):
    rows = _grid()[::-1] + [{"user_id": "lonely", "item_id": "i0", "timestamp": 1, "rating": 1.0}]
    items = [
        {"item_id": "i0", "title": "Soap", "categories": ["Bath"], "extra": {"b": 1}},
        {"item_id": "i0", "title": "Other", "brand": "Acme"},  # merged: first non-empty wins
        {"item_id": "gone", "title": "never rated"},
    ]
    use_reader(ListReader(rows, items))
    summary = prepare(_cfg(tmp_path))
    out = tmp_path / "out"
    assert io.is_complete(out) and summary == io.read_manifest(out)
    inter = io.read_table(out / "interactions.parquet")
    assert inter.schema.equals(INTERACTIONS)
    frame = inter.to_pandas()
    assert len(frame) == 36 and "lonely" not in set(frame.user_id)  # k-core dropped the one-row user
    assert frame.equals(frame.sort_values(["user_id", "timestamp"]).reset_index(drop=True))
    items_out = io.read_table(out / "items.parquet")
    assert items_out.schema.equals(ITEMS)
    first = items_out.to_pylist()[0]
    assert first | {"extra": json.loads(first["extra"])} == {
        "item_id": "i0",
        "title": "Soap",
        "brand": "Acme",
        "categories": ["Bath"],
        "price": None,
        "description": None,
        "extra": {"b": 1},
    }
    assert items_out.column("item_id").to_pylist() == [f"i{i}" for i in range(6)]
    assert summary["items_without_metadata"] == 5
    assert io.read_table(out / "sequences.parquet").schema.equals(SEQUENCES)
    assert summary["counts"] == {
        "users": 6,
        "items": 6,
        "interactions": 36,
        "sequences": {"train": 18, "valid": 6, "test": 6},
    }  # t = 2..6
    assert summary["kcore_dropped"] == 1 and summary["rows_read"] == {"interactions": 37, "items": 3}


def test_duplicates_keep_the_first(tmp_path, use_reader):
    rows = _grid()
    rows.insert(3, dict(rows[0], rating=1.0, review_text="repeat"))  # same user, item, time
    rows.append(dict(rows[0], timestamp=99, rating=2.0))  # same user and item, other time: kept
    use_reader(ListReader(rows))
    summary = prepare(_cfg(tmp_path))
    frame = io.read_table(tmp_path / "out" / "interactions.parquet").to_pandas()
    u0i0 = frame[(frame.user_id == "u0") & (frame.item_id == "i0")]
    assert summary["duplicates_dropped"] == 1
    assert u0i0[["timestamp", "rating", "review_text"]].values.tolist() == [[0, 4.0, "ok"], [99, 2.0, "ok"]]


def test_bad_rows_counted_by_reason_and_fraction_enforced(tmp_path, use_reader):
    bad = [
        BadRow("malformed_json", detail="line cut"),
        {"user_id": "u1", "item_id": "i1", "timestamp": "soon"},
        {"user_id": "", "item_id": "i1", "timestamp": 5},
        {"user_id": 7, "item_id": "i1", "timestamp": 5.5},
        {"user_id": "u1", "item_id": "i1", "timestamp": 5, "rating": "high"},
    ]
    use_reader(ListReader(_grid() + bad))
    with pytest.raises(DataError, match=r"5 of 41 interactions rows are bad .*max_bad_fraction=0.01"):
        prepare(_cfg(tmp_path))
    assert not (tmp_path / "out").exists()
    summary = prepare(_cfg(tmp_path, max_bad_fraction=0.2))
    assert summary["rows_skipped"]["interactions"] == {"malformed_json": 1, "wrong_type": 3, "missing_field": 1}
    examples = summary["skipped_examples"]["interactions"]
    assert examples[0] == "reviews.json:37: malformed_json: line cut"
    assert examples[1].startswith("reviews.json:38: field 'timestamp' wrong_type")


def test_strict_mode_names_file_line_field(tmp_path, use_reader):
    rows = _grid()
    rows.insert(4, {"user_id": "u1", "item_id": "i1", "timestamp": 5, "rating": "high"})
    use_reader(ListReader(rows))
    with pytest.raises(DataError, match=r"^reviews.json:5: field 'rating': wrong_type"):
        prepare(_cfg(tmp_path, strict=True))


def test_implicit_feedback_becomes_percentile_ratings(tmp_path, use_reader):
    rows = _grid(users=5, items=5)
    for row in rows:  # item i's plays rise with the user: users 0..4 get ratings 1..5
        row.update(rating=None, implicit=float(int(row["user_id"][1:]) * 10 + 1))
    use_reader(ListReader(rows, implicit=True))
    summary = prepare(_cfg(tmp_path))
    frame = io.read_table(tmp_path / "out" / "interactions.parquet").to_pandas()
    assert summary["implicit_feedback"] is True
    assert (frame.rating == frame.user_id.str[1:].astype(int) + 1).all()


def test_empty_result_names_input_and_kcore(tmp_path, use_reader):
    use_reader(ListReader(_grid(users=3, items=3)))
    with pytest.raises(DataError, match=r"reviews.json: empty result after filtering \(kcore=5\)"):
        prepare(_cfg(tmp_path))


def test_failure_midway_keeps_the_earlier_folder(tmp_path, use_reader, monkeypatch):
    use_reader(ListReader(_grid()))
    prepare(_cfg(tmp_path))
    before = io.read_manifest(tmp_path / "out")
    use_reader(ListReader(_grid(), fail_after=20))  # the reader breaks mid-stream
    with pytest.raises(DataError, match="reviews.json:21"):
        prepare(_cfg(tmp_path))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    use_reader(ListReader(_grid()))
    monkeypatch.setattr(prepare_module, "iter_sequences", broken)  # fails while writing the folder
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(_cfg(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left behind
    assert io.is_complete(tmp_path / "out") and io.read_manifest(tmp_path / "out") == before


def test_uri_folder_writes_the_manifest_last(tmp_path, monkeypatch):
    sub = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())  # stands in for s3://
    monkeypatch.setattr(io, "resolve", lambda out: (sub, "bucket/data"))
    with io.dataset_folder("s3://bucket/data") as folder:
        folder.write_table("a.parquet", pa.table({"x": [1]}))
        folder.manifest = {"counts": {}}
    assert io.is_complete("s3://bucket/data")
    with pytest.raises(RuntimeError, match="stop"), io.dataset_folder("s3://bucket/data") as folder:
        folder.write_table("a.parquet", pa.table({"x": [2]}))
        raise RuntimeError("stop")
    assert not io.is_complete("s3://bucket/data")  # the old manifest went first
    with pytest.raises(RuntimeError, match="without a manifest"), io.dataset_folder(f"file://{tmp_path}/local"):
        pass
    assert not (tmp_path / "local").exists()


def test_write_in_order_across_buckets(tmp_path):
    rng = np.random.default_rng(1)
    n = 50
    staging = pa.table(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 5, n)],
            "item_id": [f"i{i}" for i in range(n)],
            "timestamp": rng.integers(0, 20, n),
            "rating": np.ones(n),
            "review_text": [None] * n,
            "review_summary": [None] * n,
            "implicit": [None] * n,
            "seq": np.arange(n),
        },
        schema=STAGING,
    )
    pq.write_table(staging, tmp_path / "staging.parquet", row_group_size=7)
    keep = rng.random(n) < 0.7
    frame = staging.to_pandas()[keep].sort_values(["user_id", "timestamp", "seq"])
    position = np.full(n, -1)
    position[frame.seq.to_numpy()] = np.arange(len(frame))
    parts: list[pa.Table] = []
    write_in_order(tmp_path / "staging.parquet", position, parts.append, tmp_path, bucket_rows=4, batch_rows=3)
    got = pa.concat_tables(parts)
    assert got.schema.equals(INTERACTIONS)
    assert got.column("item_id").to_pylist() == frame.item_id.tolist()
    assert not list(tmp_path.glob("bucket-*"))


def test_real_amazon_kcore_matches_pandas(tmp_path):
    path = dataset_dir("amazon2018_all_beauty_5core") / "All_Beauty_5.json.gz"
    summary = prepare(PrepareConfig(format="amazon2018", input=str(path), out=str(tmp_path / "beauty")))
    raw = pd.read_json(path, lines=True, compression="gzip", dtype={"reviewerID": str, "asin": str})
    assert len(raw) == 5269 and raw.duplicated(["reviewerID", "asin"]).sum() == 1177  # PROVENANCE.md
    frame = raw.drop_duplicates(["reviewerID", "asin", "unixReviewTime"])[["reviewerID", "asin", "unixReviewTime"]]
    while True:
        users = frame.groupby("reviewerID").asin.transform("size")
        items = frame.groupby("asin").reviewerID.transform("size")
        kept = frame[(users >= 5) & (items >= 5)]
        if len(kept) == len(frame):
            break
        frame = kept
    got = io.read_table(tmp_path / "beauty" / "interactions.parquet").to_pandas()
    assert sorted(map(tuple, got[["user_id", "item_id", "timestamp"]].values.tolist())) == sorted(
        map(tuple, frame.values.tolist())
    )
    assert summary["rows_read"]["interactions"] == 5269
    assert summary["duplicates_dropped"] == len(raw) - len(
        raw.drop_duplicates(["reviewerID", "asin", "unixReviewTime"])
    )
    assert summary["counts"]["users"] == frame.reviewerID.nunique()
    assert summary["files"][0]["sha256"] == "8e49737fefaec9290187c69bf92889452df8be0ab5e36c9476520d6639683279"


def test_world_folder_has_truth_for_every_row(tmp_path):
    cfg = PrepareConfig(format="world", out=str(tmp_path / "world"), world={"n_users": 20, "n_items": 50})
    summary = prepare(cfg)
    truth = io.read_table(tmp_path / "world" / "truth.parquet")
    inter = io.read_table(tmp_path / "world" / "interactions.parquet")
    assert summary["duplicates_dropped"] == summary["kcore_dropped"] == 0
    assert truth.num_rows == inter.num_rows == summary["counts"]["interactions"]
    assert summary["counts"]["users"] == 20
