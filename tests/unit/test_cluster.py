"""init_ray's address handling without starting Ray: a dead RAY_ADDRESS fails in seconds
with one line naming it (the Ray-starting cases are in tests/ray/test_cluster_start.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steerrec.cluster import ClusterError, probe, resolve_address

REPO = Path(__file__).resolve().parents[2]


def dead_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_resolve_address_forms():
    assert resolve_address("127.0.0.1:6379") == "127.0.0.1:6379"
    assert resolve_address("ray://head:10001") == "head:10001"
    with pytest.raises(ClusterError, match="dashboard URL"):
        resolve_address("http://127.0.0.1:8265")
    with pytest.raises(ClusterError, match="expected host:port"):
        resolve_address("headnode")


def test_probe_of_a_dead_address_fails_fast_naming_it():
    port = dead_port()
    start = time.perf_counter()
    with pytest.raises(ClusterError, match=rf"RAY_ADDRESS=x: no Ray cluster answers at 127\.0\.0\.1:{port}"):
        probe(f"127.0.0.1:{port}", "RAY_ADDRESS=x")
    assert time.perf_counter() - start < 5


def test_probe_of_a_live_port_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe(f"127.0.0.1:{server.getsockname()[1]}", "test")


@pytest.mark.parametrize("job", ["train_semantic_ids", "pipeline"])
def test_a_job_with_a_dead_ray_address_fails_within_seconds_naming_it(job, tmp_path):
    address = f"127.0.0.1:{dead_port()}"
    args = {
        "train_semantic_ids": ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "ids")],
        "pipeline": ["--config", str(REPO / "configs" / "tiny.yaml"), f"out={tmp_path / 'run'}"],
    }[job]
    env = {**os.environ, "RAY_ADDRESS": address, "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(REPO / "jobs" / f"{job}.py"), *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert time.perf_counter() - start < 30  # the imports; the probe itself takes < 3 s
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: RAY_ADDRESS={address}: no Ray cluster answers at {address} (Connection refused); start it, "
        "point RAY_ADDRESS at a live head, or unset RAY_ADDRESS to run on a local Ray"
    ], done.stderr
    assert "Traceback" not in done.stderr


def test_ray_address_auto_with_a_stale_cluster_file_fails_fast(tmp_path, monkeypatch):
    """RAY_ADDRESS=auto follows Ray's current-cluster file; a dead head there fails the probe, no hang."""
    from steerrec.cluster import init_ray

    port = dead_port()
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # never the machine's real /tmp/ray
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    # as on a machine where no other Ray runs: with exactly one other head alive, Ray's "auto"
    # picks that head over the file (other tests' clusters may run here)
    monkeypatch.setattr("ray._private.services.find_gcs_addresses", lambda: frozenset())
    # as in a fresh process: in a full test run an earlier test's Ray may still be initialized here
    monkeypatch.setattr("ray.is_initialized", lambda: False)
    assert resolve_address("auto").endswith(f":{port}")
    start = time.perf_counter()
    with pytest.raises(ClusterError, match=rf"RAY_ADDRESS=auto: no Ray cluster answers at .*:{port}"):
        init_ray()
    assert time.perf_counter() - start < 5
