"""The container's command server (sandboxes/agent_main.py), run here as a plain subprocess on a
temporary workspace: the protocol, output handling, and the file operations' semantics. Its
life as pid 1 of a real container is tested in test_docker_sandbox.py."""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cascade.workspace.tree import SKIP_DIRS
from cascade.workspace.tree_walk import LARGE, tree_state
from sandboxes import agent_main
from sandboxes.agent import command


class Conn:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.ids = iter(range(1, 10_000))

    def send(self, **request: Any) -> int:
        rid = next(self.ids)
        self.send_raw(json.dumps({"id": rid, **request}).encode())
        return rid

    def send_raw(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the agent closed its output"
        return dict(json.loads(line))

    def call(self, **request: Any) -> dict[str, Any]:
        rid = self.send(**request)
        reply = self.reply()
        assert reply["id"] == rid
        return reply


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def agent(workdir: Path) -> Iterator[Conn]:
    # The exact source the container runs, as `python3 -I -c` runs it.
    argv = command(120, str(workdir))
    proc = subprocess.Popen(
        [sys.executable, *argv[1:]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield Conn(proc)
    finally:
        proc.kill()
        proc.wait()


def _text(data: str) -> str:
    return base64.b64decode(data).decode()


def test_run_returns_exit_code_and_both_streams(agent: Conn, workdir: Path) -> None:
    reply = agent.call(
        op="run", argv=["sh", "-c", 'pwd; echo "$GREETING" >&2; exit 3'], env={"GREETING": "hi"}
    )
    assert reply["code"] == 3
    assert _text(reply["out"]).strip() == str(workdir)
    assert _text(reply["err"]) == "hi\n"


def test_a_command_killed_by_a_signal_reports_128_plus_the_signal(agent: Conn) -> None:
    assert agent.call(op="run", argv=["sh", "-c", "kill -KILL $$"])["code"] == 137


def test_commands_run_side_by_side(agent: Conn) -> None:
    slow = agent.send(op="run", argv=["sh", "-c", "sleep 1; echo slow"])
    fast = agent.send(op="run", argv=["echo", "fast"])
    first, second = agent.reply(), agent.reply()
    assert (first["id"], second["id"]) == (fast, slow)
    assert _text(second["out"]) == "slow\n"


def test_output_is_capped(agent: Conn) -> None:
    script = f"import sys; sys.stdout.write('x' * {agent_main.MAX_OUTPUT + 5000})"
    reply = agent.call(op="run", argv=[sys.executable, "-c", script])
    assert reply["code"] == 0
    assert len(base64.b64decode(reply["out"])) == agent_main.MAX_OUTPUT


def test_a_leftover_holding_the_pipes_does_not_hold_the_answer(agent: Conn) -> None:
    # Without the sandbox's wrapper, the background sleep keeps stdout open for 30 s.
    rid = agent.send(op="run", argv=["sh", "-c", "sleep 30 & echo done"])
    assert agent.proc.stdout is not None
    ready, _, _ = select.select([agent.proc.stdout], [], [], 10)
    assert ready, "no answer while the leftover held the pipes"
    reply = agent.reply()
    assert reply["id"] == rid and _text(reply["out"]) == "done\n"


def test_a_bad_request_gets_an_error_and_the_agent_goes_on(agent: Conn) -> None:
    agent.send_raw(b"{not json")
    assert "error" in agent.reply()
    assert "unknown op" in agent.call(op="dance")["error"]
    missing = agent.call(op="run", argv=["/no/such/program"])
    assert "FileNotFoundError" in missing["error"]
    assert agent.call(op="run", argv=["true"])["code"] == 0


def test_read_gives_bytes_or_null(agent: Conn, workdir: Path) -> None:
    (workdir / "pkg").mkdir()
    (workdir / "pkg" / "a.bin").write_bytes(b"\x00\xffdata")
    assert base64.b64decode(agent.call(op="read", path="pkg/a.bin")["data"]) == b"\x00\xffdata"
    assert agent.call(op="read", path="missing.txt")["data"] is None
    assert agent.call(op="read", path="pkg")["data"] is None
    assert agent.call(op="read", path="pkg/a.bin/below")["data"] is None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_write_creates_overwrites_and_deletes(agent: Conn, workdir: Path) -> None:
    (workdir / "run.sh").write_text("#!/bin/sh\n")
    (workdir / "run.sh").chmod(0o755)
    (workdir / "gone.txt").write_text("x")
    files = [
        ["new/deep/file.txt", _b64(b"hello\n")],
        ["run.sh", _b64(b"#!/bin/sh\necho changed\n")],
        ["gone.txt", None],
        ["never-there.txt", None],
    ]
    assert "error" not in agent.call(op="write", files=files)
    assert (workdir / "new" / "deep" / "file.txt").read_bytes() == b"hello\n"
    assert (workdir / "run.sh").read_text() == "#!/bin/sh\necho changed\n"
    assert os.access(workdir / "run.sh", os.X_OK)  # an executable stays executable
    assert not os.access(workdir / "new" / "deep" / "file.txt", os.X_OK)
    assert not (workdir / "gone.txt").exists()


def test_write_replaces_a_link_instead_of_writing_through_it(
    agent: Conn, workdir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    (workdir / "link.txt").symlink_to(outside)
    assert "error" not in agent.call(op="write", files=[["link.txt", _b64(b"mine\n")]])
    assert outside.read_text() == "keep me\n"
    assert not (workdir / "link.txt").is_symlink()
    assert (workdir / "link.txt").read_text() == "mine\n"


def test_deleting_a_directory_is_refused(agent: Conn, workdir: Path) -> None:
    (workdir / "pkg").mkdir()
    assert "a directory" in agent.call(op="write", files=[["pkg", None]])["error"]
    assert (workdir / "pkg").is_dir()


def test_snapshot_is_the_tamper_walk(agent: Conn, workdir: Path) -> None:
    (workdir / "pkg").mkdir()
    (workdir / "pkg" / "a.py").write_text("A = 1\n")
    (workdir / "run.sh").write_text("#!/bin/sh\n")
    (workdir / "run.sh").chmod(0o755)
    (workdir / "link").symlink_to("pkg/a.py")
    (workdir / ".git").mkdir()
    (workdir / ".git" / "HEAD").write_text("ref\n")
    os.mkfifo(workdir / "pipe")  # hashed by mode, never opened (it would block)
    tree = agent.call(op="snapshot", skip=list(SKIP_DIRS))["tree"]
    assert tree == tree_state(str(workdir), frozenset(SKIP_DIRS))
    assert sorted(tree) == ["link", "pipe", "pkg/a.py", "run.sh"]
    (workdir / "run.sh").chmod(0o644)
    (workdir / "pkg" / "a.py").write_text("A = 2\n")
    again = agent.call(op="snapshot", skip=list(SKIP_DIRS))["tree"]
    assert {p for p in tree if tree[p] != again[p]} == {"run.sh", "pkg/a.py"}


def test_a_fifo_or_its_own_stdin_read_as_nothing_without_blocking(
    agent: Conn, workdir: Path
) -> None:
    os.mkfifo(workdir / "report.xml")  # as a test could plant where the gate reads its report
    (workdir / "stdin").symlink_to("/proc/self/fd/0")  # pid 1's own request pipe
    assert agent.call(op="read", path="report.xml")["data"] is None
    assert agent.call(op="read", path="stdin")["data"] is None
    assert agent.call(op="run", argv=["true"])["code"] == 0  # still serving


def test_sigint_does_not_stop_it(agent: Conn) -> None:
    assert agent.call(op="run", argv=["true"])["code"] == 0  # up and serving
    agent.proc.send_signal(signal.SIGINT)
    assert agent.call(op="run", argv=["true"])["code"] == 0


def test_when_it_cannot_serve_safely_it_runs_nothing(workdir: Path) -> None:
    said: list[dict[str, object]] = []
    refusing = agent_main.Agent(str(workdir), 60, refuse="prctl(PR_SET_DUMPABLE) failed")
    refusing.respond = said.append  # type: ignore[method-assign]
    refusing.handle(json.dumps({"id": 7, "op": "run", "argv": ["touch", "ran"]}).encode())
    assert said == [{"id": 7, "unavailable": "prctl(PR_SET_DUMPABLE) failed"}]
    assert not (workdir / "ran").exists()


def test_a_huge_file_is_known_by_its_stat_not_read(workdir: Path) -> None:
    huge = workdir / "sparse.bin"
    with huge.open("wb") as handle:
        handle.truncate(LARGE + 1)  # sparse: reading it would take a while, hashing longer
    before = tree_state(str(workdir), frozenset())
    with huge.open("r+b") as handle:
        handle.write(b"x")  # same size, new content
    after = tree_state(str(workdir), frozenset())
    assert before["sparse.bin"] != after["sparse.bin"]
