"""A real local Ray head for end-to-end job tests: `ray start --head` on free ports,
jobs sent with `ray job submit --working-dir .`, the head stopped at the end."""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steerrec.local_cluster import free_port

# test modules here that write `from conftest import ...` get this module: re-export the root's
_spec = importlib.util.spec_from_file_location(
    "_steerrec_tests_conftest_smoke", Path(__file__).parents[1] / "conftest.py"
)
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
REPO, SHARED_DATASETS, dataset_dir = _root.REPO, _root.SHARED_DATASETS, _root.dataset_dir

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """(dashboard address, env) of a head started for this test session."""
    # every port this head opens is a free one: another Ray on this machine (the tests' own
    # `ray.init` session holds the default agent ports 52365 and 8080) would otherwise keep this
    # head's job agent from starting, and `ray job submit` answers "No available agent"
    ports = {
        name: free_port()
        for name in (
            "port",
            "dashboard-port",
            "ray-client-server-port",
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "metrics-export-port",
            "runtime-env-agent-port",
            "node-manager-port",
            "object-manager-port",
        )
    }
    gcs, dash = ports["port"], ports["dashboard-port"]
    # the job's `python` is found on the PATH the head was started with (MACHINE.md)
    # Ray 2.60 turns token authentication on for new clusters: give this head its own token
    token = tmp_path_factory.mktemp("ray-auth") / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
    }
    env.pop("RAY_ADDRESS", None)
    # --block keeps `ray start` in the foreground: stopping it stops this head and only this
    # head (a `ray stop` would kill every Ray process on the machine)
    start = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        *(f"--{k}={v}" for k, v in ports.items()),
        "--num-cpus=2",
        "--dashboard-host=127.0.0.1",
        "--disable-usage-stats",
    ]
    head = subprocess.Popen(
        start, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    address = f"http://127.0.0.1:{dash}"
    job_env = {**env, "RAY_API_SERVER_ADDRESS": address, "RAY_ADDRESS": f"127.0.0.1:{gcs}"}
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            ok = subprocess.run([str(BIN / "ray"), "job", "list"], env=job_env, capture_output=True, timeout=60)
            if ok.returncode == 0:
                break
            time.sleep(2)
        yield address, job_env
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` takes its processes down with it
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)


def submit(address: str, env: dict, args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    """`ray job submit --working-dir .` from the repo root; waits for the job to end."""
    cmd = [
        str(BIN / "ray"),
        "job",
        "submit",
        "--address",
        address,
        "--working-dir",
        ".",
        "--runtime-env-json",
        '{"excludes": [".git", ".venv", "outputs"]}',
        "--",
        "python",
        *args,
    ]
    for _ in range(30):  # the head's job agent comes up a little after the dashboard
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        if "No available agent" not in done.stderr + done.stdout:
            return done
        time.sleep(3)
    return done
