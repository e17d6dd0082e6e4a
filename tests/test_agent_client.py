"""The host's side of the sandbox agent (sandboxes/agent.py) against a stand-in agent on a
socketpair: requests go out as JSON lines, answers come back in Docker's attach framing (8-byte
headers, split wherever the network likes), and a broken or refusing agent is told apart from
one that lost a request mid-run."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from sandboxes.agent import AgentClient, AgentGone, AgentUnavailable

Reply = Callable[[dict[str, object]], bytes | None]


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class FakeAgent:
    """Answers each request line with what `reply` returns (raw bytes to send, or None: hang
    up), sent one byte at a time so every header and payload is split across reads."""

    def __init__(self, sock: socket.socket, reply: Reply) -> None:
        self.sock, self.reply = sock, reply
        self.requests: list[dict[str, object]] = []
        threading.Thread(target=self._serve, name="fake-agent", daemon=True).start()

    def _serve(self) -> None:
        pending = b""
        with contextlib.suppress(OSError):
            self._loop(pending)

    def _loop(self, pending: bytes) -> None:
        while chunk := self.sock.recv(65536):
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                self.requests.append(request)
                out = self.reply(request)
                if out is None:
                    self.sock.close()
                    return
                for i in range(len(out)):
                    self.sock.sendall(out[i : i + 1])


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    host, agent = socket.socketpair()
    yield host, agent
    for s in (host, agent):
        # Shut down before closing: a thread blocked in recv then returns, instead of waking
        # later on whatever socket reuses the file descriptor.
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
    for thread in threading.enumerate():
        if thread.name == "fake-agent":
            thread.join(timeout=5)
    for s in (host, agent):
        s.close()


def answer(request: dict[str, object], **fields: object) -> bytes:
    body = json.dumps({"id": request["id"], **fields}).encode() + b"\n"
    half = len(body) // 2  # one answer in two frames, with agent stderr between them
    return frame(1, body[:half]) + frame(2, b"agent: noise\n") + frame(1, body[half:])


def test_an_answer_split_anywhere_is_put_back_together(pair: tuple[socket.socket, ...]) -> None:
    out = base64.b64encode(b"hello\n").decode()
    FakeAgent(pair[1], lambda r: answer(r, code=3, out=out, err=""))
    client = AgentClient(pair[0])
    got_out, got_err = bytearray(), bytearray()
    assert client.run(["echo", "hello"], {"A": "1"}, got_out, got_err, wait=10) == 3
    assert bytes(got_out) == b"hello\n" and client.alive


def test_a_refusing_agent_runs_nothing_and_is_not_asked_again(
    pair: tuple[socket.socket, ...],
) -> None:
    fake = FakeAgent(pair[1], lambda r: answer(r, unavailable="cannot be made non-dumpable"))
    client = AgentClient(pair[0])
    with pytest.raises(AgentUnavailable, match="non-dumpable"):
        client.run(["true"], None, bytearray(), bytearray(), wait=10)
    assert not client.alive
    with pytest.raises(AgentUnavailable):
        client.read("a.txt")
    assert len(fake.requests) == 1


def test_a_connection_lost_mid_request_is_gone_not_unavailable(
    pair: tuple[socket.socket, ...],
) -> None:
    FakeAgent(pair[1], lambda r: None)  # hangs up instead of answering
    client = AgentClient(pair[0])
    with pytest.raises(AgentGone):  # the command may have run: the caller must not re-run it
        client.run(["true"], None, bytearray(), bytearray(), wait=10)
    with pytest.raises(AgentUnavailable):
        client.run(["true"], None, bytearray(), bytearray(), wait=10)


def test_no_answer_in_time_gives_the_agent_up(pair: tuple[socket.socket, ...]) -> None:
    FakeAgent(pair[1], lambda r: b"")  # reads, never answers
    client = AgentClient(pair[0])
    with pytest.raises(AgentGone, match=r"no answer in 0\.2 s"):
        client.run(["sleep", "1"], None, bytearray(), bytearray(), wait=0.2)
    assert not client.alive
