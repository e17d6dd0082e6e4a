"""A remote Docker engine is one DOCKER_HOST away (issue #21): every call the sandbox makes goes
through the docker SDK's environment. Here DOCKER_HOST names a forwarding proxy in front of the
real engine, which notes each request it passes on: a sandbox opened, run and closed shows up
there, request by request. And an address where nothing answers is named in the error."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from cascade.errors import SandboxError
from cascade.testing import git, make_repo
from sandboxes.cleanup import own_containers
from sandboxes.docker_api import connect
from sandboxes.docker_sandbox import DockerSandbox

CASCADE = str(Path(sys.executable).parent / "cascade")
DEFAULT_ENGINE = "/var/run/docker.sock"
# A request line anywhere in what a client sends (several per kept-alive connection); the API
# version prefix is dropped so that the tests do not depend on the engine's.
REQUEST = re.compile(rb"(GET|HEAD|POST|PUT|DELETE) (?:/v[0-9.]+)?(/\S*) HTTP/1\.[01]\r\n")


class EngineProxy:
    """A unix socket at `path` that forwards each connection byte for byte to the engine at
    `upstream` (a raw pump both ways, so hijacked attach and exec streams pass too) and keeps the
    request line of every request it forwards, as `METHOD /path?query`."""

    def __init__(self, path: Path, upstream: tuple[socket.AddressFamily, Any]) -> None:
        self.url = f"unix://{path}"
        self.requests: list[str] = []
        self._upstream = upstream
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(64)
        self._server.settimeout(0.2)  # polls `_stopping`: a blocked accept is not woken by close
        self._spawn(self._accept_loop)

    def __enter__(self) -> EngineProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        with self._lock:
            still_open = list(self._open)
        for sock in still_open:  # wakes the pumps out of recv; each closes its own sockets
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._server.close()

    def _spawn(self, target: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        family, address = self._upstream
        engine = socket.socket(family, socket.SOCK_STREAM)
        try:
            engine.connect(address)
        except OSError:
            client.close()
            engine.close()
            return
        with self._lock:
            self._open.update((client, engine))
        back = self._spawn(self._pump, engine, client, False)
        self._pump(client, engine, True)
        back.join()
        with self._lock:
            self._open.difference_update((client, engine))
        client.close()
        engine.close()

    def _pump(self, src: socket.socket, dst: socket.socket, note: bool) -> None:
        """Copy src to dst until src ends, then end dst's side too (half-close: the other
        direction may still be answering)."""
        pending = b""
        try:
            while chunk := src.recv(1 << 16):
                dst.sendall(chunk)
                if note:
                    pending = self._note(pending + chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _note(self, data: bytes) -> bytes:
        end = 0
        for match in REQUEST.finditer(data):
            with self._lock:
                self.requests.append(f"{match[1].decode()} {match[2].decode()}")
            end = match.end()
        return data[end:][-4096:]  # an unfinished request line waits for its next chunk


def _engine() -> tuple[socket.AddressFamily, Any]:
    """Where the engine the tests use listens (DOCKER_HOST as it was, else the default)."""
    host = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_ENGINE}"
    if host.startswith("unix://"):
        return socket.AF_UNIX, host.removeprefix("unix://")
    if host.startswith("tcp://") and not os.environ.get("DOCKER_TLS_VERIFY"):
        name, _, port = host.removeprefix("tcp://").rstrip("/").rpartition(":")
        return socket.AF_INET, (name, int(port))
    pytest.skip(f"the proxy forwards to a unix or plain tcp engine, not {host}")


def _repo(tmp_path: Path) -> tuple[Path, str]:
    repo = make_repo(tmp_path / "repo", {"hello.py": "print('hello')\n"})
    return repo, git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.docker
@pytest.mark.anyio
async def test_a_sandbox_goes_through_docker_host(
    docker_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, commit = _repo(tmp_path)
    direct = connect(timeout=30)  # the engine itself, not through the proxy: to look things up
    try:
        with EngineProxy(tmp_path / "proxy.sock", _engine()) as proxy:
            monkeypatch.setenv("DOCKER_HOST", proxy.url)
            box = await DockerSandbox.open(repo, commit)
            try:
                container = direct.containers.get(box.name).id
                result = await box.exec(["cat", "hello.py"], timeout=30)
                mine = own_containers()  # the cleanup of an interrupted run finds it there too
            finally:
                await box.close()
            seen = list(proxy.requests)
    finally:
        direct.close()
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "print('hello')\n"
    assert box.name in mine
    assert f"POST /containers/create?name={box.name}" in seen, seen
    assert f"POST /containers/{container}/start" in seen, seen
    archive = f"PUT /containers/{container}/archive"  # the workspace, as a tar through the API
    assert any(line.startswith(archive) for line in seen), seen
    commands = (f"POST /containers/{container}/attach", f"POST /containers/{container}/exec")
    assert any(line.startswith(commands) for line in seen), seen  # pid 1's server, or exec
    assert any(line.startswith(f"DELETE /containers/{container}") for line in seen), seen
    assert f"DELETE /volumes/{box.name}" in seen, seen  # the workspace volume, on close
    assert any(line.startswith("GET /containers/json") for line in seen), seen  # own_containers


@pytest.mark.anyio
async def test_no_engine_at_docker_host_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, commit = _repo(tmp_path)
    missing = tmp_path / "no-engine" / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{missing}")
    with pytest.raises(SandboxError) as raised:
        box = await DockerSandbox.open(repo, commit)
        await box.close()  # only reached when DOCKER_HOST was ignored: the test fails above
    assert f"no Docker engine is reachable at DOCKER_HOST=unix://{missing}" in str(raised.value)


def test_the_cli_names_docker_host_when_nothing_answers(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path)
    missing = tmp_path / "no-engine" / "docker.sock"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "DOCKER_HOST": f"unix://{missing}"}
    out = subprocess.run(
        [CASCADE, "sandbox", "run", "--repo", str(repo), "--", "true"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 3, out.stderr  # the sandbox's exit code, not a crash (1)
    assert f"DOCKER_HOST=unix://{missing}" in out.stderr
    assert "Traceback" not in out.stderr
