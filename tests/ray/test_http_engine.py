"""The http engine against a real local OpenAI-compatible endpoint, through ray.data.llm."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from steerrec.llm import EngineConfig, HttpSection, build_engine, make_sampling_params

pytestmark = pytest.mark.ray

SECRET = "sk-local-test-5d41402abc4b2a76"
SCHEMA = {"type": "object", "properties": {"preferences": {"type": "array", "items": {"type": "string"}}}}


class ChatHandler(BaseHTTPRequestHandler):
    """/v1/chat/completions echoing the last user message; demands the bearer key."""

    requests: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions" or self.headers.get("Authorization") != f"Bearer {SECRET}":
            return self._send(401, {"error": {"message": "bad key or path"}})
        ChatHandler.requests.append(body)
        words = sum(len(m["content"].split()) for m in body["messages"])
        reply = json.dumps({"preferences": [body["messages"][-1]["content"].upper()]})
        self._send(
            200,
            {
                "id": "cmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": words, "completion_tokens": 3, "total_tokens": words + 3},
            },
        )

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatHandler)  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ChatHandler.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    server.shutdown()
    server.server_close()


def test_http_engine_round_trip(ray_session, chat_server, monkeypatch, caplog):
    monkeypatch.setenv("STEERREC_TEST_API_KEY", SECRET)
    cfg = EngineConfig(
        engine="http",
        model="local-echo",
        http=HttpSection(url=chat_server, api_key_env="STEERREC_TEST_API_KEY", qps=50, max_retries=1, batch_size=2),
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
    assert all(r["num_generated_tokens"] == 3 for r in out)
    assert out[0]["sampling_params"]["max_tokens"] == 16 and out[0]["messages"][1]["content"] == texts[0]
    # the key was sent (else 401) yet never logged
    assert SECRET not in caplog.text and "STEERREC_TEST_API_KEY" in caplog.text
    sent = sorted(ChatHandler.requests, key=lambda b: b["seed"])
    assert [b["seed"] for b in sent] == [0, 1, 2, 3]
    assert sent[0]["model"] == "local-echo" and sent[0]["max_tokens"] == 16 and sent[0]["top_p"] == 0.8
    assert sent[0]["response_format"]["json_schema"]["schema"] == SCHEMA
