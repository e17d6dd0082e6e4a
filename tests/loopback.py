"""A loopback HTTP server speaking the OpenAI chat API, standing in for a provider we cannot
reach from tests: it answers each POST with the next scripted reply and keeps every request.
A reply is (status, body, headers) — body a JSON object, or raw bytes (b"" is an empty body) —
or one of the fault modes HANG (never answers), STALL (headers and half a body, then nothing),
DRIP (a whole good answer, status line first, one byte every `DRIP_INTERVAL_S`: every read is
quick, the answer never ends) and DRIP_BODY (the headers at once, then the body that way).
`dropped` is set when a client hangs up on a drip. GET paths answer from `gets` (an Ollama's
`/api/tags`, say). The `fake_openai` fixture (conftest) starts one per test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["hang", "stall", "drip", "drip_body"]
HANG: Mode = "hang"
STALL: Mode = "stall"
DRIP: Mode = "drip"
DRIP_BODY: Mode = "drip_body"
DRIP_INTERVAL_S = 0.5  # far below any read timeout the tests set
Reply = tuple[int, dict[str, Any] | bytes, dict[str, str]] | Mode


@dataclass
class FakeOpenAI:
    """Answers each POST with the next scripted reply; counts requests."""

    base: str = ""
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    gets: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> JSON body
    closing: threading.Event = field(default_factory=threading.Event)
    dropped: threading.Event = field(default_factory=threading.Event)  # a client left a drip

    @property
    def root(self) -> str:
        """The server without the OpenAI `/v1` prefix (where an Ollama answers)."""
        return self.base.removesuffix("/v1")

    def calls(self, model: str) -> int:
        """How many chat requests named `model` (the part after `openai/`)."""
        return sum(1 for r in self.requests if r.get("model") == model)


def chat_body(content: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "fake-model-0613",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def error_body(message: str, code: str = "", kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code or None}}


@contextmanager
def serve() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in fake.gets:
                self._send(404, b'{"error": "not found"}', {})
                return
            self._send(200, json.dumps(fake.gets[self.path]).encode(), {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            fake.requests.append({"path": self.path, **json.loads(self.rfile.read(length))})
            reply: Reply = fake.script.pop(0) if fake.script else (500, {}, {})
            if reply == HANG:
                fake.closing.wait(30)
                return
            if reply == STALL:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "400")
                self.end_headers()
                self.wfile.write(b'{"id": "chatcmpl-1", "choices": [')
                self.wfile.flush()
                fake.closing.wait(30)
                return
            if reply in (DRIP, DRIP_BODY):
                self._drip(reply == DRIP)
                return
            status, body, headers = reply
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self._send(status, data, headers)

        def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _drip(self, head_too: bool) -> None:
            body = json.dumps(chat_body("a good answer, if it ever ends")).encode()
            head = (
                f"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            try:
                if not head_too:
                    self.wfile.write(head)
                for byte in head + body if head_too else body:
                    if fake.closing.wait(DRIP_INTERVAL_S):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:  # the client hung up: what a deadline should make it do
                fake.dropped.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        fake.closing.set()  # release hung handlers before shutting down
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
