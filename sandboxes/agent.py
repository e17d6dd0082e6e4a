"""The host's side of the container's command server (sandboxes/agent_main.py): requests written
to pid 1's stdin over one attach connection, responses read from its stdout by one reader
thread and handed to whichever worker thread is waiting for them. Blocking by design: the
sandbox calls it from `anyio.to_thread`, as it calls the docker SDK.

When the connection breaks, a waiting call raises `AgentGone` (its request may have run), and
every later one `AgentUnavailable` (nothing was sent), as does a request the agent refuses to
serve; the sandbox then goes back to `docker exec` for the rest of its life: slower, never
wrong."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from cascade.workspace import tree_walk

log = logging.getLogger(__name__)

ATTACH = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
STDERR = 2  # the stream number of pid 1's stderr in the attach stream
FILE_WAIT = 120.0  # seconds a read, write or snapshot may take before the agent is given up


class AgentGone(Exception):
    """The connection broke while a request was out: it may have run, so it is not re-run."""


class AgentUnavailable(Exception):
    """Nothing was run: the agent is gone, or refused to serve. Use `docker exec` instead."""


class AgentError(Exception):
    """The agent answered that it could not serve the request (its words are the message)."""


@cache
def _agent_source() -> str:
    return Path(__file__).with_name("agent_main.py").read_text(encoding="utf-8")


def command(ttl: float, workdir: str) -> list[str]:
    """The container's command: the agent as pid 1, given the tamper walk's source."""
    return ["python3", "-I", "-c", _agent_source(), str(ttl), workdir, tree_walk.source()]


class AgentClient:
    def __init__(self, sock: Any) -> None:
        self._sock = getattr(sock, "_sock", sock)  # a SocketIO wraps the socket itself
        self._keep = sock  # the attach response dies with its socket object: hold it
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: dict[int, _Slot] = {}
        self._gone = False
        self._stderr = bytearray()
        self._reader = threading.Thread(target=self._read_loop, name="sandbox-agent", daemon=True)
        self._reader.start()

    @classmethod
    def attach(cls, container: Any) -> AgentClient | None:
        """A client on the container's pid 1, or None when it cannot attach that way (an
        engine reached over ssh, say)."""
        sock = container.attach_socket(params=dict(ATTACH))
        raw = getattr(sock, "_sock", sock)
        if not (hasattr(raw, "sendall") and hasattr(raw, "recv")):
            return None
        return cls(sock)

    @property
    def alive(self) -> bool:
        return not self._gone

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None,
        out: bytearray,
        err: bytearray,
        wait: float | None = None,
    ) -> int:
        """Run argv in the workspace; its output is added to `out`/`err` (as `docker exec`'s
        would be); its exit code is returned. No answer within `wait` seconds: AgentGone."""
        request = {"op": "run", "argv": list(argv), "env": dict(env or {})}
        reply = self._call(request, wait)
        out.extend(base64.b64decode(reply["out"]))
        err.extend(base64.b64decode(reply["err"]))
        return int(reply["code"])

    def read(self, path: str) -> bytes | None:
        data = self._call({"op": "read", "path": path}, FILE_WAIT)["data"]
        return None if data is None else base64.b64decode(data)

    def write(self, files: Mapping[str, bytes | None]) -> None:
        encoded = [
            [p, None if d is None else base64.b64encode(d).decode()] for p, d in files.items()
        ]
        self._call({"op": "write", "files": encoded}, FILE_WAIT)

    def tree_state(self, skip: Sequence[str]) -> dict[str, str]:
        """The workspace snapshot of the gate's tamper check (cascade/workspace/tree_walk.py)."""
        tree = self._call({"op": "snapshot", "skip": list(skip)}, FILE_WAIT)["tree"]
        return {str(k): str(v) for k, v in tree.items()}

    def close(self) -> None:
        """Shut the connection down; the reader thread, woken out of recv, closes the socket
        itself (closed here, its file descriptor could be reused by another socket before the
        reader's next recv, which would then read that socket's data)."""
        self._fail("closed")
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    # -- plumbing -----------------------------------------------------------------------------

    def _call(self, request: dict[str, Any], wait: float | None = None) -> dict[str, Any]:
        rid = next(self._ids)
        slot = _Slot()
        with self._lock:
            if self._gone:
                raise AgentUnavailable("the sandbox agent is gone")
            self._waiting[rid] = slot
        data = json.dumps({"id": rid, **request}).encode() + b"\n"
        try:
            with self._write_lock:
                self._sock.sendall(data)
        except OSError as exc:
            self._fail(f"write failed: {exc}")
        if not slot.done.wait(wait):
            self._fail(f"no answer in {wait:g} s")  # wedged: nothing more is asked of it
        if slot.reply is None:
            raise AgentGone(slot.why)
        if "unavailable" in slot.reply:
            self._fail(f"it refused to serve: {slot.reply['unavailable']}")
            raise AgentUnavailable(str(slot.reply["unavailable"]))
        if "error" in slot.reply:
            raise AgentError(str(slot.reply["error"]))
        return slot.reply

    def _read_loop(self) -> None:
        try:
            self._read_frames()
        finally:
            with contextlib.suppress(OSError):
                self._sock.close()

    def _read_frames(self) -> None:
        buf = b""
        line = bytearray()
        try:
            while True:
                chunk = self._sock.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 8:
                    stream, size = struct.unpack(">BxxxL", buf[:8])
                    if len(buf) < 8 + size:
                        break
                    payload, buf = buf[8 : 8 + size], buf[8 + size :]
                    if stream == STDERR:
                        self._stderr = (self._stderr + payload)[-4000:]
                        continue
                    line += payload
                    if b"\n" in payload:  # a response is one line, often many frames long
                        *complete, rest = bytes(line).split(b"\n")
                        line = bytearray(rest)
                        for message in complete:
                            self._deliver(message)
        except OSError as exc:
            self._fail(f"read failed: {exc}")
            return
        self._fail("the agent closed its output")

    def _deliver(self, message: bytes) -> None:
        try:
            reply = json.loads(message)
            rid = int(reply["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("sandbox agent sent something unreadable: %r", message[:200])
            return
        with self._lock:
            slot = self._waiting.pop(rid, None)
        if slot is not None:  # else: its caller gave up (a host-side timeout)
            slot.reply = reply
            slot.done.set()

    def _fail(self, why: str) -> None:
        detail = self._stderr.decode(errors="replace").strip()
        why = f"{why}: {detail[-300:]}" if detail else why
        with self._lock:
            self._gone = True
            waiting, self._waiting = self._waiting, {}
        for slot in waiting.values():
            slot.why = why
            slot.done.set()


class _Slot:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: dict[str, Any] | None = None
        self.why = ""
