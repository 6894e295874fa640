"""The approximation pipeline: parse, retry with new seeds, failures table, resume after a kill."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steerrec.data import schema
from steerrec.preferences.approximate import build_requests, read_preferences
from steerrec.preferences.generate import GenerationConfig, generate
from steerrec.preferences.prompts import PREFERENCES_SCHEMA, PromptConfig
from steerrec.preferences.validate import parse_statements

HERE = Path(__file__).parent
USERS = ["u1", "u2", "u3", "u_bad"]


def _dataset(root: Path, n_items: int = 5) -> str:
    items = [
        {
            "item_id": f"i{k}",
            "title": f"Widget{k} deluxe",
            "brand": "Acme",
            "categories": ["tools"],
            "price": 9.5,
            "description": "A widget.",
            "extra": "{}",
        }
        for k in range(n_items)
    ]
    inter = [
        {
            "user_id": u,
            "item_id": f"i{k}",
            "timestamp": 100 + k,
            "rating": 4.0,
            "review_text": f"Review {k} by {u}",
            "review_summary": "fine",
        }
        for u in USERS
        for k in range(n_items)
    ]
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(items, schema=schema.ITEMS), root / schema.ITEMS_FILE)
    pq.write_table(pa.Table.from_pylist(inter, schema=schema.INTERACTIONS), root / schema.INTERACTIONS_FILE)
    return str(root)


def _to_row(key, values):
    return {**key, "preferences": values, "engine": "fake", "model": "fake", "variant": "default"}


def _run(data, out, delay=0.0, max_retries=3):
    from _fake_llm import processor  # tests/ray is on sys.path: pytest's rootdir-less import, or PYTHONPATH

    return generate(
        build_requests(data, PromptConfig()),
        ["user_id", "t"],
        processor(delay),
        parse_statements,
        _to_row,
        out,
        schema.PREFERENCES,
        schema.PREFERENCE_FAILURES,
        GenerationConfig(max_retries=max_retries, shard_rows=2),
        PREFERENCES_SCHEMA,
    )


def test_requests_cover_positions_before_the_last(tmp_path):
    requests = build_requests(_dataset(tmp_path / "data"), PromptConfig(), limit_users=2)
    assert [(r["user_id"], r["t"]) for r in requests] == [(u, t) for u in ("u1", "u2") for t in range(1, 5)]
    assert "Widget0 deluxe" in requests[0]["messages"][1]["content"]  # P^(1) sees item 1 only
    assert "Widget1" not in requests[0]["messages"][1]["content"]


def test_retries_then_failures_table(ray_session, tmp_path):
    data, out = _dataset(tmp_path / "data"), str(tmp_path / "prefs")
    stats = _run(data, out)
    prefs = read_preferences(out).to_pandas()
    assert sorted(set(prefs.user_id)) == ["u1", "u2", "u3"]
    assert len(prefs) == 12 and not prefs.duplicated(["user_id", "t"]).any()
    failures = pq.read_table(Path(out) / "failures.parquet").to_pandas()
    assert sorted(failures.t) == [1, 2, 3, 4] and set(failures.user_id) == {"u_bad"}
    assert failures.reason.str.startswith("invalid_json").all() and (failures.attempts == 4).all()
    assert stats["written"] == 12 and stats["failed"] == 4 and stats["attempts"] > 16  # some retried
    again = _run(data, out)  # a rerun skips what is written and retries only the failures
    assert again["skipped_done"] == 12 and again["written"] == 0


def test_resume_after_kill_gives_one_row_per_key(tmp_path):
    data, out = _dataset(tmp_path / "data", n_items=12), str(tmp_path / "prefs")
    script = (
        'import ray; ray.init(address="local", num_cpus=2, include_dashboard=False);'
        "from test_preference_pipeline import _run; _run(%r, %r, delay=%s, max_retries=%d)"
    )
    # the child imports this module and _fake_llm from tests/ray
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": path}
    slow = subprocess.Popen([sys.executable, "-c", script % (data, out, 0.5, 3)], env=env)
    shards = Path(out) / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and not (shards.exists() and len(list(shards.glob("part-*.parquet"))) >= 2):
        time.sleep(0.2)
    slow.kill()
    slow.wait()
    partial = read_preferences(out).num_rows
    assert 0 < partial < 33, "the kill must land midway"
    done = subprocess.run([sys.executable, "-c", script % (data, out, 0.0, 3)], env=env, timeout=300)
    assert done.returncode == 0
    prefs = read_preferences(out).to_pandas()
    assert len(prefs) == 33 and not prefs.duplicated(["user_id", "t"]).any()  # 3 good users x 11


def test_read_preferences_accepts_one_file_and_names_missing_columns(tmp_path):
    good = pa.table({"user_id": ["u"], "t": [1], "preferences": [["Look for x"]]})
    pq.write_table(good, tmp_path / "truth.parquet")
    assert read_preferences(str(tmp_path / "truth.parquet")).num_rows == 1
    pq.write_table(pa.table({"user_id": ["u"], "t": [1]}), tmp_path / "bad.parquet")
    with pytest.raises(schema.SchemaError, match=r"bad.parquet: missing column\(s\) \['preferences'\]"):
        read_preferences(str(tmp_path / "bad.parquet"))
