"""A real HTTP server on 127.0.0.1 speaking the OpenAI and Anthropic chat protocols.

Each test scripts the replies (:class:`Reply`): a body text (optionally cut by the token limit,
with separate reasoning text), an HTTP error status, or a delay longer than the client's
timeout. Requests are recorded so tests can check what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Reply:
    """One scripted answer: ``text`` as the assistant's content, or an error ``status``.

    ``truncated`` reports the reply as cut by the token limit (OpenAI ``finish_reason "length"``,
    Anthropic ``stop_reason "max_tokens"``); ``reasoning`` is sent as separate reasoning text
    (OpenAI-compatible ``reasoning_content``, an Anthropic ``thinking`` block).
    """

    text: str = ""
    status: int = 200
    delay_s: float = 0.0
    truncated: bool = False
    reasoning: str | None = None


class ChatServer:
    """Serves scripted replies in order (the last one repeats) and records every request."""

    Reply = Reply  # so tests reach the script type through the fixture

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def next_reply(self, path: str, body: dict) -> Reply:
        with self._lock:
            self.requests.append({"path": path, "body": body})
            index = min(len(self.requests), len(self.script)) - 1
            return self.script[index] if self.script else Reply(status=500)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = server.next_reply(self.path, body)
                time.sleep(reply.delay_s)
                if self.path.endswith("/chat/completions"):
                    payload = _openai_body(reply, body)
                elif self.path.endswith("/messages"):
                    payload = _anthropic_body(reply, body)
                else:
                    reply, payload = Reply(status=404), {"error": {"message": "no such route"}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        return Handler


def _openai_body(reply: Reply, request: dict) -> dict:
    if reply.status != 200:
        return {"error": {"message": f"scripted {reply.status}", "type": "server_error"}}
    message = {"role": "assistant", "content": reply.text}
    if reply.reasoning is not None:
        message["reasoning_content"] = reply.reasoning
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": request.get("model", "test-model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "length" if reply.truncated else "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _anthropic_body(reply: Reply, request: dict) -> dict:
    if reply.status != 200:
        return {"type": "error", "error": {"type": "api_error", "message": "scripted error"}}
    thinking = []
    if reply.reasoning is not None:
        thinking = [{"type": "thinking", "thinking": reply.reasoning, "signature": "sig"}]
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "test-model"),
        "content": thinking + [{"type": "text", "text": reply.text}],
        "stop_reason": "max_tokens" if reply.truncated else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }


@pytest.fixture
def chat_server(monkeypatch: pytest.MonkeyPatch):
    """A started :class:`ChatServer`; proxies are disabled so requests stay on localhost."""
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(variable, raising=False)
    server = ChatServer().start()
    yield server
    server.stop()
