"""A loopback OpenAI-compatible `/v1/chat/completions` endpoint whose reply is a function of
the request: what the http engine's tests and benchmarks talk to (no model, no network).

    with scripted_chat_endpoint(lambda body: '{"preferences": ["Avoid scents"]}', latency=0.1) as ep:
        EngineConfig(engine="http", model="m", http=HttpSection(url=ep.url))
        ...
        ep.requests       # every accepted request body, in arrival order

`api_key` set: a request without `Authorization: Bearer <api_key>`, or to another path, gets
401 with an OpenAI-style error body. The server binds port 0 (a free port) on 127.0.0.1 and
serves from a daemon thread until the `with` block ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/v1/chat/completions"


@dataclass
class ScriptedEndpoint:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    """A chat.completion response carrying `content`, with word-count usage."""
    words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    done = len(content.split())
    return {
        "id": "cmpl-scripted",
        "object": "chat.completion",
        "model": body.get("model", ""),
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": words, "completion_tokens": done, "total_tokens": words + done},
    }


def _handler(reply: Callable[[dict[str, Any]], str], api_key: str | None, latency: float, seen: list) -> type:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            authorized = api_key is None or self.headers.get("Authorization") == f"Bearer {api_key}"
            if self.path != PATH or not authorized:
                return self._send(401, {"error": {"message": "bad key or path"}})
            with lock:
                seen.append(body)
            time.sleep(latency)
            self._send(200, completion(body, reply(body)))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def scripted_chat_endpoint(
    reply: Callable[[dict[str, Any]], str], *, api_key: str | None = None, latency: float = 0.0
) -> Iterator[ScriptedEndpoint]:
    """Serve `reply(request body) -> assistant content` after `latency` seconds per request."""
    if latency < 0:
        raise ValueError(f"latency must be >= 0, got {latency}")
    endpoint = ScriptedEndpoint(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reply, api_key, latency, endpoint.requests))
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}{PATH}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
