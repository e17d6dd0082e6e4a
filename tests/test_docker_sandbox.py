"""DockerSandbox against a real engine and real containers: isolation (network, filesystem,
environment, limits), workspace semantics, and cleanup. Skipped loudly without an engine, except
in CI, where a missing engine fails the run."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cascade.config import SandboxConfig
from cascade.errors import SandboxError
from cascade.records import Edit
from sandboxes.docker_api import RESOURCE_EXCEEDED, RUN_LABEL, connect
from sandboxes.docker_sandbox import DockerSandbox

IMAGE = SandboxConfig().image


# Skipped loudly without an engine, and a failure in CI (the `docker_engine` fixture, conftest).
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_engine")]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "README.md").write_text("# demo\n")
    (root / ".gitignore").write_text("secret.env\n")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / ".cascade").mkdir()
    (root / ".cascade" / "hidden_test.py").write_text("HIDDEN = 1\n")
    _git(tmp_path, "init", "-q", str(root))
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (root / "secret.env").write_text("TOKEN=do-not-copy\n")  # ignored, untracked
    return root


@pytest.fixture
async def box(repo: Path) -> AsyncIterator[DockerSandbox]:
    sandbox = await DockerSandbox.open(repo, _git(repo, "rev-parse", "HEAD").strip())
    try:
        yield sandbox
    finally:
        await sandbox.close()


async def _open(repo: Path, **options: Any) -> DockerSandbox:
    return await DockerSandbox.open(repo, "HEAD", SandboxConfig(options=options))


PROCESSES = (
    "import os\n"
    "for p in sorted(os.listdir('/proc')):\n"
    "    if p.isdigit() and int(p) != os.getpid():\n"
    "        try: print(open(f'/proc/{p}/cmdline','rb').read().replace(b'\\0', b' ')[:80])\n"
    "        except OSError: pass\n"
)


@pytest.mark.anyio
async def test_exec_sees_the_repo_as_a_one_commit_git_repo(box: DockerSandbox) -> None:
    result = await box.exec(["sh", "-c", "cat pkg/calc.py && git log --oneline"], timeout=30)
    assert result.exit_code == 0, result.stderr
    assert "return a - b" in result.stdout
    assert result.stdout.count("cascade: base") == 1
    listing = (await box.exec(["ls", "-A"], timeout=30)).stdout.split()
    assert ".cascade" not in listing and "secret.env" not in listing
    assert box.image_id.startswith("sha256:")


@pytest.mark.anyio
async def test_runs_as_a_non_root_user(box: DockerSandbox) -> None:
    result = await box.exec(["id", "-u"], timeout=30)
    assert result.exit_code == 0
    assert int(result.stdout) != 0


@pytest.mark.anyio
async def test_no_network(box: DockerSandbox) -> None:
    connect = "import socket; socket.create_connection(('1.1.1.1', 80), 3)"
    dns = "import socket; socket.getaddrinfo('pypi.org', 443)"
    for code in (connect, dns):
        result = await box.exec(["python", "-c", code], timeout=30)
        assert result.exit_code != 0
        assert "Error" in result.stderr or "gaierror" in result.stderr
    pip = ["python", "-m", "pip", "install", "--retries", "0", "--timeout", "3", "six"]
    result = await box.exec(pip, timeout=120)
    assert result.exit_code != 0
    assert "Successfully installed" not in result.stdout


@pytest.mark.anyio
async def test_root_filesystem_is_read_only(box: DockerSandbox) -> None:
    for target in ("/etc/cascade-probe", "/opt/cascade-venv/probe", "/usr/probe"):
        result = await box.exec(["touch", target], timeout=30)
        assert result.exit_code != 0
        assert "Read-only file system" in result.stderr
    assert (await box.exec(["touch", "/tmp/ok", "ok-here"], timeout=30)).exit_code == 0


@pytest.mark.anyio
async def test_host_secrets_never_reach_the_sandbox(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canaries = {
        "CASCADE_CANARY_SECRET": "canary-" + uuid.uuid4().hex,
        "OPENAI_API_KEY": "sk-canary",
    }
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    sandbox = await _open(repo)
    try:
        env = await sandbox.exec(["env"], timeout=30)
        environs = await sandbox.exec(
            ["sh", "-c", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'; grep -rs canary . || true"],
            timeout=30,
        )
    finally:
        await sandbox.close()
    seen = env.stdout + env.stderr + environs.stdout + environs.stderr
    assert "PATH=" in env.stdout
    for name, value in canaries.items():
        assert value not in seen
        assert name not in seen


@pytest.mark.anyio
async def test_fork_bomb_is_stopped_by_the_pids_limit(repo: Path) -> None:
    sandbox = await _open(repo, pids_limit=64)
    try:
        bomb = "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n"
        result = await sandbox.exec(["python", "-c", bomb], timeout=8)
        assert result.exit_code != 0
        assert RESOURCE_EXCEEDED in result.stderr
        assert result.duration_s < 30
        after = await sandbox.exec(["python", "-c", PROCESSES], timeout=30)
        assert after.exit_code == 0
        assert "os.fork" not in after.stdout
    finally:
        await sandbox.close()


@pytest.mark.anyio
async def test_memory_bomb_is_reported_as_resource_exceeded(repo: Path) -> None:
    sandbox = await _open(repo, mem_limit="128m")
    try:
        bomb = "x = []\nwhile True:\n    x.append(bytearray(10**7))\n"
        result = await sandbox.exec(["python", "-c", bomb], timeout=60)
        assert result.exit_code == 137
        assert not result.timed_out
        assert f"[{RESOURCE_EXCEEDED}: memory" in result.stderr
        assert (await sandbox.exec(["true"], timeout=30)).exit_code == 0
        clean = await sandbox.exec(["sh", "-c", "exit 3"], timeout=30)
        assert RESOURCE_EXCEEDED not in clean.stderr
    finally:
        await sandbox.close()


@pytest.mark.anyio
async def test_timeout_kills_the_command_and_its_children(box: DockerSandbox) -> None:
    result = await box.exec(["sh", "-c", "sleep 1000 & setsid sleep 1001 & sleep 1002"], timeout=2)
    assert result.timed_out
    assert result.exit_code == 124
    assert result.duration_s < 15
    left = await box.exec(["python", "-c", PROCESSES], timeout=30)
    assert "sleep" not in left.stdout, left.stdout


@pytest.mark.anyio
async def test_background_children_end_with_their_command(box: DockerSandbox) -> None:
    result = await box.exec(["sh", "-c", "sleep 1000 & echo started"], timeout=30)
    assert result.exit_code == 0 and result.stdout == "started\n"
    assert result.duration_s < 10
    left = await box.exec(["python", "-c", PROCESSES], timeout=30)
    assert "sleep" not in left.stdout


@pytest.mark.anyio
async def test_files_read_write_delete(box: DockerSandbox) -> None:
    await box.write_files({"new/deep/file.txt": b"hello\n", "README.md": None})
    assert await box.read_file("new/deep/file.txt") == b"hello\n"
    assert await box.read_file("README.md") is None
    assert await box.read_file("missing.txt") is None
    assert await box.read_file("pkg") is None
    # the sandbox user owns what was written: it can change it
    result = await box.exec(["sh", "-c", "echo more >> new/deep/file.txt && rm -r new"], timeout=30)
    assert result.exit_code == 0, result.stderr
    with pytest.raises(SandboxError, match="escapes"):
        await box.read_file("../etc/passwd")


@pytest.mark.anyio
async def test_reset_restores_the_base_tree(box: DockerSandbox) -> None:
    await box.write_files({"pkg/calc.py": b"broken\n", "junk/new.py": b"x\n", "README.md": None})
    await box.exec(["sh", "-c", "mkdir -p build && touch build/out .hidden"], timeout=30)
    await box.reset()
    status = await box.exec(["git", "status", "--porcelain", "--ignored"], timeout=30)
    assert status.stdout == ""
    assert await box.read_file("pkg/calc.py") == b"def add(a, b):\n    return a - b\n"
    assert await box.read_file("README.md") == b"# demo\n"


@pytest.mark.anyio
async def test_apply_gives_the_canonical_patch(
    box: DockerSandbox, repo: Path, tmp_path: Path
) -> None:
    edit = Edit(
        path="pkg/calc.py",
        kind="search_replace",
        search="    return a - b\n",
        replace="    return a + b\n",
    )
    patch = await box.apply([edit])
    assert patch.files == ("pkg/calc.py",)
    assert "-    return a - b\n+    return a + b\n" in patch.diff
    assert patch.added == 1 and patch.removed == 1
    # the same change made with git on the host gives byte-identical text
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    (clone / "pkg" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    _git(clone, "add", "-A")
    host = _git(clone, "diff", "--cached", "--no-renames", "--full-index", "--binary", "HEAD")
    assert patch.diff == host


@pytest.mark.anyio
async def test_overwriting_keeps_the_executable_bit(box: DockerSandbox) -> None:
    await box.write_files({"run.sh": b"#!/bin/sh\necho changed\n", "new.sh": b"#!/bin/sh\n"})
    result = await box.exec(["sh", "-c", "./run.sh && git diff --summary HEAD"], timeout=30)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "changed\n"  # no "mode change" line


@pytest.mark.anyio
async def test_close_leaves_no_container_or_volume(repo: Path) -> None:
    run_id = "test-" + uuid.uuid4().hex[:8]
    sandbox = await DockerSandbox.open(repo, "HEAD", run_id=run_id)
    client = connect()
    try:
        label = {"label": f"{RUN_LABEL}={run_id}"}
        assert len(client.containers.list(all=True, filters=label)) == 1
        assert len(client.volumes.list(filters=label)) == 1
        await sandbox.close()
        assert client.containers.list(all=True, filters=label) == []
        assert client.volumes.list(filters=label) == []
        with pytest.raises(SandboxError, match="closed"):
            await sandbox.exec(["true"], timeout=5)
    finally:
        client.close()


@pytest.mark.anyio
async def test_gc_removes_orphans_and_keeps_live_sandboxes(box: DockerSandbox) -> None:
    from sandboxes.cleanup import collect_garbage
    from sandboxes.container_spec import container_spec
    from sandboxes.docker_api import (
        CREATED_LABEL,
        OWNER_LABEL,
        TTL_LABEL,
        DockerOptions,
    )

    client = connect()
    name = "cascade-orphan-" + uuid.uuid4().hex[:8]
    labels = {  # a run whose process died: pid 2**22 + 1 is above any pid_max
        RUN_LABEL: name,
        CREATED_LABEL: "1",
        TTL_LABEL: "999999999999",
        OWNER_LABEL: f"{socket.gethostname()}:{2**22 + 1}",
    }
    try:
        client.volumes.create(name=name, labels=labels)
        spec = container_spec(DockerOptions(), IMAGE, name, labels)
        client.containers.create(name=name, **spec).start()
        removed = collect_garbage(client)
        assert any(name in line and "gone" in line for line in removed), removed
        assert not any(box.name in line for line in removed)
        label = {"label": f"{RUN_LABEL}={name}"}
        assert client.containers.list(all=True, filters=label) == []
        assert client.volumes.list(filters=label) == []
        assert (await box.exec(["true"], timeout=30)).exit_code == 0
    finally:
        client.close()


def test_cli_run_uses_the_sandbox(repo: Path) -> None:
    from typer.testing import CliRunner

    from cascade.cli.sandbox import sandbox_app

    runner = CliRunner()
    result = runner.invoke(sandbox_app, ["run", "--repo", str(repo), "--", "id", "-u"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].strip() not in ("", "0")
    connect_code = "import socket; socket.create_connection(('1.1.1.1', 80), 3)"
    argv = ["run", "--repo", str(repo), "--", "python", "-c", connect_code]
    result = runner.invoke(sandbox_app, argv)
    assert result.exit_code == 1
    assert "Network is unreachable" in result.output


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["tmpfs", "disk"])
async def test_both_workspace_kinds_hold_the_repo(repo: Path, kind: str) -> None:
    box = await _open(repo, workspace=kind)
    try:
        mounts = await box.exec(["sh", "-c", "grep ' /workspace ' /proc/mounts"], timeout=30)
        listed = await box.exec(["git", "ls-files"], timeout=30)
        await box.write_files({"new.txt": b"x\n"})
    finally:
        await box.close()
    assert ("tmpfs" in mounts.stdout) == (kind == "tmpfs"), mounts.stdout
    assert "pkg/calc.py" in listed.stdout.split()


@pytest.mark.anyio
async def test_a_repo_too_big_for_the_memory_workspace_says_what_to_change(
    tmp_path: Path,
) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob.txt").write_text("0123456789abcdef\n" * 200_000)  # 3.4 MB
    _git(big, "init", "-q")
    _git(big, "add", "-A")
    _git(big, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "big")
    with pytest.raises(SandboxError, match='workspace_size, or set workspace = "disk"'):
        await _open(big, workspace_size="1m")


# The chain of parents of the command: through the agent it ends at the container's pid 1;
# through `docker exec` at a process whose parent is outside the namespace (0).
PARENTS = (
    "import os\n"
    "pid, chain = os.getpid(), []\n"
    "while pid > 0:\n"
    "    chain.append(pid)\n"
    "    pid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])\n"
    "print(chain[-1])\n"
)


@pytest.mark.anyio
async def test_commands_run_through_pid_1_which_the_sandbox_cannot_kill_or_read(
    box: DockerSandbox,
) -> None:
    assert (await box.exec(["python", "-c", PARENTS], timeout=30)).stdout == "1\n"
    await box.exec(["sh", "-c", "kill -KILL 1; kill -TERM 1; kill -INT 1"], timeout=30)
    peek = await box.exec(["sh", "-c", "cat /proc/1/environ"], timeout=30)
    assert peek.exit_code != 0 and "Permission denied" in peek.stderr  # not dumpable: no ptrace
    after = await box.exec(["python", "-c", PARENTS], timeout=30)
    assert after.exit_code == 0 and after.stdout == "1\n"


@pytest.mark.anyio
async def test_without_its_command_server_the_sandbox_still_works(box: DockerSandbox) -> None:
    assert box._agent is not None
    box._agent.close()  # as when the attach connection breaks
    result = await box.exec(["python", "-c", PARENTS], timeout=30)
    assert result.exit_code == 0 and result.stdout != "1\n"  # `docker exec` now
    await box.write_files({"pkg/new.py": b"X = 1\n", "README.md": None})
    assert await box.read_file("pkg/new.py") == b"X = 1\n"
    assert await box.read_file("README.md") is None
    timed = await box.exec(["sleep", "30"], timeout=1)
    assert timed.timed_out and timed.exit_code == 124


def test_gc_leaves_a_stopped_container_to_its_live_owner() -> None:
    """A `[sandbox] setup` build stops its container to commit it: a collection run by another
    cascade process at that moment must not remove it (the commit would fail). A stopped
    container whose owner is gone, or of another host, is still collected."""
    import os
    import time

    from sandboxes.cleanup import collect_garbage
    from sandboxes.docker_api import CREATED_LABEL, OWNER_LABEL, TTL_LABEL

    client = connect()
    names = {who: "cascade-stopped-" + uuid.uuid4().hex[:8] for who in ("mine", "elsewhere")}
    owners = {"mine": f"{socket.gethostname()}:{os.getpid()}", "elsewhere": "another-host:1"}
    try:
        for who, name in names.items():
            labels = {RUN_LABEL: name, CREATED_LABEL: str(int(time.time())),
                      TTL_LABEL: "3600", OWNER_LABEL: owners[who]}  # fmt: skip
            container = client.containers.create(IMAGE, ["true"], name=name, labels=labels)
            container.start()
            container.wait(timeout=30)
        removed = collect_garbage(client)
        assert any(names["elsewhere"] in line and "stopped" in line for line in removed), removed
        assert not any(names["mine"] in line for line in removed), removed
        assert client.containers.list(all=True, filters={"name": names["mine"]})
    finally:
        for name in names.values():
            for container in client.containers.list(all=True, filters={"name": name}):
                container.remove(force=True)
        client.close()
