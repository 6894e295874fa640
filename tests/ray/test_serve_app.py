"""The Serve app (steerrec.serving.app, which serve/app.py names) on the shared local Ray session:
HTTP routes, batching, API key, fuzzing, the web page.

The page test drives headless Chromium through playwright's Python package with the
system's chromium (Debian: `apt-get install -y chromium`); it skips when none is found.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import REPO
from steerrec.serving.tiny_run import build_run

pytestmark = pytest.mark.ray

KEY = "s3cret-key"
V1_GETS = ["/v1/items?query=red", "/v1/users", "/v1/users/u1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return build_run(tmp_path_factory.mktemp("serve_run"))


@pytest.fixture(scope="module")
def base_url(ray_session, run_dir):
    """Two apps on one free port: `/` without a key, `/keyed` whose replica has STEERREC_API_KEY set."""
    from ray.serve.api import RunTarget

    from ray import serve
    from steerrec.serving import app

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    small = {"num_cpus": 0}
    open_app = app.SteerrecApp.options(ray_actor_options=small).bind(
        run_dir=str(run_dir), batch_wait_timeout_s=0.02, cpus=[min(os.sched_getaffinity(0))]
    )  # a pinned replica
    keyed = app.SteerrecApp.options(
        name="SteerrecAppKeyed",
        ray_actor_options={**small, "runtime_env": {"env_vars": {app.API_KEY_ENV: KEY}}},
    ).bind(run_dir=str(run_dir))
    # both replicas start side by side (each imports torch and transformers: tens of seconds here)
    serve.run_many(
        [RunTarget(open_app, name="open", route_prefix="/"), RunTarget(keyed, name="keyed", route_prefix="/keyed")]
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def direct(run_dir):
    from steerrec.serving import Recommender

    return Recommender.from_run(run_dir)


def _post(url, body, **kw):
    return requests.post(url + "/v1/recommend", json=body, timeout=30, **kw)


def test_recommend_over_http_equals_the_plain_class(base_url, direct):
    from steerrec.serving import RecommendRequest

    bodies = [
        {"history": ["i0001", "i0002"], "preferences": ["Avoid bulky headsets"], "k": 5},
        {"user_id": "u3", "k": 8, "exclude_history": False},
        {"history": [], "preferences": ["prefer cheap things"], "k": 3},
    ]
    with ThreadPoolExecutor(len(bodies) * 3) as pool:  # concurrent calls share batches
        responses = list(pool.map(lambda b: _post(base_url, b), bodies * 3))
    expected = direct.recommend([RecommendRequest(**b) for b in bodies]) * 3
    for resp, want in zip(responses, expected):
        assert resp.status_code == 200, resp.text
        got = resp.json()
        assert got["model"] == "mender_tok" and got["latency_ms"] > 0
        assert [i["item_id"] for i in got["items"]] == [i.item_id for i in want.items]
        assert [i["score"] for i in got["items"]] == pytest.approx([i.score for i in want.items], abs=1e-4)
        assert all(set(i) == {"item_id", "title", "score", "id_text"} for i in got["items"])
        assert all(i["id_text"] is None for i in got["items"])  # textual IDs are IDGenRec's only
        assert got["steering"] == [r.model_dump() for r in want.steering]
    assert responses[0].json()["steering"][0]["reading"] == "avoid"


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ({"history": ["i0001", "nope"]}, 422, ["body", "history", 1]),
        ({"history": ["i0001"], "k": 0}, 422, ["body", "k"]),
        ({"history": ["i0001"], "preferences": ["x" * 301]}, 422, ["body", "preferences", 0]),
        ({"history": ["i0001"], "preferences": ["fine", "  "]}, 422, ["body", "preferences", 1]),
        ({"history": ["i0001"], "preferences": ["?!"]}, 422, ["body", "preferences", 0]),
        ({"history": "i0001"}, 422, ["body", "history"]),
        ({"user_id": "ghost"}, 404, ["body", "user_id"]),
    ],
)
def test_bad_input_is_4xx_naming_the_field(base_url, body, status, loc):
    resp = _post(base_url, body)
    assert resp.status_code == status, resp.text
    assert any(d["loc"] == loc for d in resp.json()["detail"]), resp.json()
    if loc[1] == "history" and loc[-1] == 1:
        assert "'nope'" in resp.json()["detail"][0]["msg"]


def test_other_routes(base_url):
    assert requests.get(base_url + "/healthz", timeout=10).json() == {
        "status": "ok",
        "model": "mender_tok",
        "n_items": 50,
    }
    items = requests.get(base_url + "/v1/items", params={"query": "red", "limit": 3}, timeout=10).json()["items"]
    assert 0 < len(items) <= 3 and all("red" in i["title"] for i in items)
    user = requests.get(base_url + "/v1/users/u1", timeout=10).json()
    assert user["user_id"] == "u1" and user["history"]
    assert requests.get(base_url + "/v1/users/ghost", timeout=10).status_code == 404
    assert "u1" in requests.get(base_url + "/v1/users", timeout=10).json()["users"]
    assert requests.get(base_url + "/v1/items", params={"limit": 0}, timeout=10).status_code == 422
    assert "/v1/recommend" in requests.get(base_url + "/openapi.json", timeout=10).json()["paths"]
    assert requests.get(base_url + "/docs", timeout=10).status_code == 200
    assert "steerrec" in requests.get(base_url + "/", timeout=10).text
    assert requests.get(base_url + "/static/app.js", timeout=10).status_code == 200


def test_api_key_required_when_set(base_url):
    keyed = base_url + "/keyed"
    body = {"history": ["i0001"], "k": 2}
    for headers in ({}, {"X-API-Key": "wrong"}):
        assert _post(keyed, body, headers=headers).status_code == 401
        assert _post(keyed, {"k": "bad"}, headers=headers).status_code == 401  # the key is checked first
        for path in V1_GETS:
            assert requests.get(keyed + path, headers=headers, timeout=10).status_code == 401, path
    assert _post(keyed, body, headers={"X-API-Key": KEY}).status_code == 200
    for path in V1_GETS:
        assert requests.get(keyed + path, headers={"X-API-Key": KEY}, timeout=10).status_code == 200, path
    assert requests.get(keyed + "/healthz", timeout=10).status_code == 200
    assert _post(base_url, body).status_code == 200  # the open app wants no key


def test_fuzzed_requests_never_get_a_5xx(base_url):
    """Valid and invalid requests generated from the OpenAPI schema by schemathesis (its
    pytest plugin's from_fixture fails on pytest 9, so hypothesis drives its strategies)."""
    schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (a dev dependency)")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    cases = st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))
    statuses = []

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def check(case):
        response = case.call(timeout=30)
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        case.validate_response(response, checks=[not_a_server_error])

    check()
    assert any(s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses), sorted(set(statuses))


def _chromium() -> str:
    for path in (os.environ.get("STEERREC_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if path and Path(path).is_file():
            return path
    pytest.skip("no chromium binary (install it: `apt-get install -y chromium`, or set STEERREC_CHROMIUM)")


def test_web_page_shows_steered_and_unsteered_lists(base_url):
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (a dev dependency)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base_url + "/")
        page.wait_for_selector("#user-select option[value=u1]", state="attached")
        page.select_option("#user-select", "u1")
        page.wait_for_selector("#history li")
        page.fill("#search", "red")
        page.locator("#search-results li button").first.click()
        n_history = page.locator("#history li").count()
        page.fill("#avoids", "bulky headsets")
        page.fill("#k", "7")
        page.click("#go")
        page.wait_for_selector("#unsteered li")
        steered = page.locator("#steered li").all_inner_texts()
        unsteered = page.locator("#unsteered li").all_inner_texts()
        assert page.inner_text("#error") == "" and not errors
        assert len(steered) == len(unsteered) == 7 and n_history >= 2
        assert "mender_tok" in page.inner_text("#steered-meta")
        [reading] = page.locator("#readings li").all_inner_texts()  # the one preference, as read
        assert reading.startswith('"Avoid bulky headsets": avoid (p_avoid') and "items left out" in reading
        browser.close()


def test_pin_process_pins_every_thread_and_names_bad_cores():
    """pin_process moves threads that already run, not only the calling one; a core the node lacks is a ValueError."""
    import threading

    from steerrec.serving import app

    before = os.sched_getaffinity(0)
    core = min(before)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        app.pin_process([core])
        assert os.sched_getaffinity(0) == {core} and os.sched_getaffinity(worker.native_id) == {core}
        with pytest.raises(ValueError, match=r"cpus: cannot pin to \[4096\]"):
            app.pin_process([4096])
    finally:
        app.pin_process(sorted(before))
        stop.set()
        worker.join()
    assert os.sched_getaffinity(0) == before


def test_serve_config_is_valid_and_builds(run_dir):
    """serve/config.yaml passes Serve's own schema, and its import path (serve.app, importable from
    the repository root as under `serve run`; pytest's pythonpath) and args build the packaged app."""
    import yaml
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(yaml.safe_load((REPO / "serve" / "config.yaml").read_text()))
    [spec] = config.applications
    module, _, attr = spec.import_path.partition(":")
    builder = getattr(importlib.import_module(module), attr)
    built = call_user_app_builder_with_args_if_necessary(builder, {**spec.args, "run_dir": str(run_dir)})
    assert [d.name for d in spec.deployments] == [built._bound_deployment.name]
    assert built._bound_deployment.func_or_class.__module__ == "steerrec.serving.app"  # replicas need no repo
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_batch_size"):
        call_user_app_builder_with_args_if_necessary(builder, {"run_dir": str(run_dir), "max_batch_size": 0})
