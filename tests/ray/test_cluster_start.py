"""Entry points with a stale Ray current-cluster file in place (a killed `make demo`, a
stopped head): a job starts its own Ray instead of hanging on the dead head, and the
demo's serving loop stops on SIGTERM as on Ctrl-C.

Each test runs a subprocess with RAY_TMPDIR set to a private folder whose
ray/ray_current_cluster names a dead port, so the machine's real file (other clusters
may run here) is never touched. Without steerrec.cluster.init_ray a bare `ray.init()`
(also the one inside Ray Train and Data) waits for good in Node._init_gcs_client there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CPP_ABORT = ("*** SIGTERM received", "Stack trace", "Aborted", "core dumped", "Fatal Python error")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stale_ray_tmpdir():
    """RAY_TMPDIR with a ray_current_cluster naming a dead head (short path: Ray's sockets live there)."""
    folder = Path(tempfile.mkdtemp(prefix="sr", dir="/tmp"))
    (folder / "ray").mkdir()
    (folder / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{_free_port()}")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _env(tmpdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, "RAY_TMPDIR": str(tmpdir), "RAY_USAGE_STATS_ENABLED": "0"}


def test_a_job_starts_its_own_ray_despite_a_stale_cluster_file(stale_ray_tmpdir, tmp_path):
    """build_benchmark with --embed-on ray starts Ray, then fails on the missing data: it got past Ray."""
    data = tmp_path / "missing"
    cmd = [sys.executable, str(REPO / "jobs" / "build_benchmark.py"), "--data", str(data), "--embed-on", "ray"]
    cmd += ["--preferences", str(data / "truth.parquet"), "--out", str(tmp_path / "bench")]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(stale_ray_tmpdir), timeout=180)
    seconds = time.perf_counter() - start
    assert done.returncode == 2, done.stderr[-3000:]
    assert "starting a local Ray" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {data}/") and "not found" in last, last
    assert (stale_ray_tmpdir / "ray" / "ray_current_cluster").exists()  # left as it was, not ours
    print(f"job with a stale cluster file: {seconds:.1f} s")


def test_demo_serving_stops_on_sigterm_without_a_cpp_trace(stale_ray_tmpdir):
    """jobs/demo.py's serving loop under steerrec.cli: SIGTERM -> Serve and Ray shut down, exit 143."""
    port = _free_port()
    stale = (stale_ray_tmpdir / "ray" / "ray_current_cluster").read_text()
    script = textwrap.dedent(
        f"""
        import argparse, importlib.util
        from ray import serve
        from steerrec.cli import main
        from steerrec.cluster import init_ray

        spec = importlib.util.spec_from_file_location("demo", {str(REPO / "jobs" / "demo.py")!r})
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)

        @serve.deployment
        class Hello:
            def __call__(self, request):
                return "hello"

        def run(args):
            init_ray(num_cpus=2, include_dashboard=False)
            demo.serve_forever(Hello.bind(), {port}, "hello")

        main(run, argparse.ArgumentParser())
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(stale_ray_tmpdir),
    )  # fmt: skip
    try:
        for line in proc.stdout:  # wait for "Serving hello at ..."
            if line.startswith("Serving hello"):
                break
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        start = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert status == 143, err[-3000:]
    assert err.strip().splitlines()[-1] == "terminated (SIGTERM)", err[-3000:]
    assert not [marker for marker in CPP_ABORT if marker in err], err[-3000:]
    # `ray start` writes the current-cluster file; a Ray the job starts itself leaves it alone
    assert (stale_ray_tmpdir / "ray" / "ray_current_cluster").read_text() == stale
    print(f"stopped {time.perf_counter() - start:.1f} s after SIGTERM")
