"""The loopback chat endpoint the http engine's tests and benchmarks talk to."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from steerrec.llm.scripted_endpoint import scripted_chat_endpoint


def post(url: str, body: dict, key: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_reply_usage_and_recorded_requests():
    body = {"model": "m", "messages": [{"role": "user", "content": "three short words"}]}
    with scripted_chat_endpoint(lambda b: b["messages"][-1]["content"].upper(), api_key="k") as ep:
        out = post(ep.url, body, key="k")
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(ep.url, body, key="wrong")
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as wrong_path:
            post(ep.url.replace("/chat/completions", "/completions"), body, key="k")
        assert wrong_path.value.code == 401
    assert out["choices"][0]["message"]["content"] == "THREE SHORT WORDS"
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert ep.requests == [body]  # refused requests are not recorded


def test_negative_latency_is_refused():
    with pytest.raises(ValueError, match="latency"), scripted_chat_endpoint(lambda b: "", latency=-1):
        pass
