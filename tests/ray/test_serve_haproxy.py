"""The app behind Serve's HAProxy ingress (steerrec.serving.ingress), in a Ray of its own.

The ingress is chosen by environment variables that Serve reads at import and in the
processes Ray starts, so the app runs in a child process, not in this test session's Ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO
from steerrec.serving.tiny_run import build_run

pytestmark = pytest.mark.ray

CHILD = textwrap.dedent("""
    import json, socket
    from steerrec.serving.ingress import use_haproxy_ingress
    use_haproxy_ingress()
    import ray, requests
    from ray import serve
    from steerrec.serving.app import SteerrecApp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        serve.start(http_options={{"host": "127.0.0.1", "port": port}})
        serve.run(SteerrecApp.options(ray_actor_options={{"num_cpus": 0}}).bind(run_dir={run!r}), name="h")
        url = f"http://127.0.0.1:{{port}}"
        health = requests.get(url + "/healthz", timeout=30)
        rec = requests.post(url + "/v1/recommend", timeout=30,
                            json={{"history": ["i0001", "i0002"], "preferences": ["Avoid bulky headsets"], "k": 5}})
        bad = requests.post(url + "/v1/recommend", json={{"history": ["i0001"], "k": 0}}, timeout=30)
        from ray.serve._private import constants
        print("RESULT " + json.dumps({{"haproxy": constants.RAY_SERVE_ENABLE_HA_PROXY,
                                      "health": health.status_code, "recommend": rec.status_code,
                                      "items": [i["item_id"] for i in rec.json()["items"]],
                                      "bad": bad.status_code, "bad_loc": bad.json()["detail"][0]["loc"]}}))
    finally:
        serve.shutdown()
        ray.shutdown()
""")


def test_app_answers_through_haproxy(tmp_path):
    from steerrec.serving import Recommender, RecommendRequest

    run = build_run(tmp_path / "run")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}
    for name in ("RAY_ADDRESS", "RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_THROUGHPUT_OPTIMIZED"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(run=str(run))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = json.loads(lines[-1][len("RESULT ") :])
    assert got["haproxy"] is True and got["health"] == 200 and got["recommend"] == 200
    assert got["bad"] == 422 and got["bad_loc"] == ["body", "k"]
    expected = Recommender.from_run(run).recommend(
        [RecommendRequest(history=["i0001", "i0002"], preferences=["Avoid bulky headsets"], k=5)]
    )[0]
    assert got["items"] == [i.item_id for i in expected.items]
