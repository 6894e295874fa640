"""The http engine against a real local OpenAI-compatible endpoint, through ray.data.llm."""

from __future__ import annotations

import json
import logging

import pytest

from steerrec.llm import EngineConfig, HttpSection, build_engine, make_sampling_params
from steerrec.llm.scripted_endpoint import scripted_chat_endpoint

pytestmark = pytest.mark.ray

SECRET = "sk-local-test-5d41402abc4b2a76"
SCHEMA = {"type": "object", "properties": {"preferences": {"type": "array", "items": {"type": "string"}}}}


def echo_upper(body: dict) -> str:
    return json.dumps({"preferences": [body["messages"][-1]["content"].upper()]})


@pytest.fixture
def chat_server():
    with scripted_chat_endpoint(echo_upper, api_key=SECRET) as endpoint:
        yield endpoint


def test_http_engine_round_trip(ray_session, chat_server, monkeypatch, caplog):
    monkeypatch.setenv("STEERREC_TEST_API_KEY", SECRET)
    cfg = EngineConfig(
        engine="http",
        model="local-echo",
        http=HttpSection(url=chat_server.url, api_key_env="STEERREC_TEST_API_KEY", qps=50, max_retries=1, batch_size=2),
    )
    texts = ["likes slow science fiction", "prefers cheap thrillers", "wants cooking shows", "plays board games"]
    rows = [
        {
            "id": i,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": t}],
            "sampling_params": make_sampling_params(
                temperature=0.3, top_p=0.8, max_tokens=16, seed=i, json_schema=SCHEMA
            ),
        }
        for i, t in enumerate(texts)
    ]
    with caplog.at_level(logging.DEBUG):
        out = build_engine(cfg)(ray_session.data.from_items(rows)).take_all()
    out.sort(key=lambda r: r["id"])

    assert [json.loads(r["generated_text"]) for r in out] == [{"preferences": [t.upper()]} for t in texts]
    assert [r["num_input_tokens"] for r in out] == [2 + len(t.split()) for t in texts]
    assert all(r["num_generated_tokens"] == len(r["generated_text"].split()) for r in out)
    assert out[0]["sampling_params"]["max_tokens"] == 16 and out[0]["messages"][1]["content"] == texts[0]
    # the key was sent (else 401) yet never logged
    assert SECRET not in caplog.text and "STEERREC_TEST_API_KEY" in caplog.text
    sent = sorted(chat_server.requests, key=lambda b: b["seed"])
    assert [b["seed"] for b in sent] == [0, 1, 2, 3]
    assert sent[0]["model"] == "local-echo" and sent[0]["max_tokens"] == 16 and sent[0]["top_p"] == 0.8
    assert sent[0]["response_format"]["json_schema"]["schema"] == SCHEMA
