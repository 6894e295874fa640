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
    done = submit(address, env, ["jobs/prepare_data.py", "--format", "world", "--out", str(out),
                                 "world.n_users=120", "world.n_items=60"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in (done.stdout + done.stderr).lower()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["users"] == 120
    seq = pq.read_table(out / "sequences.parquet").to_pandas()
    assert set(seq.split) == {"train", "valid", "test"}
    assert (out / "truth.parquet").exists()
