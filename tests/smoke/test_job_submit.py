"""Jobs run unchanged under `ray job submit --working-dir .` against a local head."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from conftest import submit

pytestmark = pytest.mark.slow


def test_prepare_data_job_submitted(ray_head, tmp_path):
    address, env = ray_head
    out = tmp_path / "world"  # absolute: the job runs in a copy of the working dir
    done = submit(
        address,
        env,
        ["jobs/prepare_data.py", "--format", "world", "--out", str(out), "world.n_users=120", "world.n_items=60"],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in (done.stdout + done.stderr).lower()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["users"] == 120
    seq = pq.read_table(out / "sequences.parquet").to_pandas()
    assert set(seq.split) == {"train", "valid", "test"}
    assert (out / "truth.parquet").exists()


def test_pipeline_job_submitted(ray_head, tmp_path):
    """The whole pipeline on a tiny world through `ray job submit`, then a rerun skips it all."""
    address, env = ray_head
    out = tmp_path / "pipeline"
    done = submit(address, env, ["jobs/pipeline.py", "--config", "configs/tiny.yaml", f"out={out}"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in (done.stdout + done.stderr).lower()
    summary = json.loads((out / "summary.json").read_text())
    assert [s["status"] for s in summary["stages"]].count("ran") >= 8
    for model in ("mender_emb", "tiger", "sasrec"):
        results = json.loads((out / "eval" / model / "results.json").read_text())
        assert {"recommendation", "fine", "coarse", "sentiment", "consolidation"} <= set(results["summary"])
        assert (out / "eval" / model / "results.png").stat().st_size > 0
    for axis in ("recommendation", "fine", "coarse", "sentiment", "consolidation"):
        assert (out / "benchmark" / "axes" / axis / "test.parquet").exists()
    again = submit(address, env, ["jobs/pipeline.py", "--config", "configs/tiny.yaml", f"out={out}"])
    assert again.returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {s["status"] for s in summary["stages"]} == {"skipped"}
