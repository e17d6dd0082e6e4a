"""LocalSandbox: a throwaway one-commit git repo in a temp dir, commands run as this user.
Explicitly unsafe (no isolation from the host): for trusted repositories and models only."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream

from cascade.config import SandboxConfig
from cascade.errors import SandboxError
from cascade.records import Edit, ExecResult, Patch
from cascade.workspace.apply import apply_edits
from cascade.workspace.checkout import INIT_SCRIPT, archive, reset_workspace
from sandboxes.local_leftovers import PREFIX, mark_owner, sweep
from sandboxes.local_python import find_interpreter

log = logging.getLogger(__name__)

WARNING = "local sandbox: model-written code runs on this machine without isolation"
MAX_OUTPUT = 2_000_000  # bytes kept per stream; the rest is dropped with a marker
# Only these host variables pass through: API keys and tokens never reach sandboxed code.
PASS_ENV = ("PATH", "LANG", "LC_ALL", "TERM", "TZ", "SYSTEMROOT")


class LocalSandbox:
    def __init__(self, root: Path, workdir: Path) -> None:
        self._root = root
        self.workdir = workdir
        self._closed = False
        self._bin = root / "bin"  # `python` and `python3`: the project's interpreter
        self._python = Path(sys.executable)

    @classmethod
    async def open(
        cls, repo: Path, commit: str, config: SandboxConfig | None = None, *, run_id: str = ""
    ) -> LocalSandbox:
        """`run_id` is accepted for the registry's one calling convention: a local workspace has
        nothing to label. `python` in the workspace is the project's interpreter
        (sandboxes/local_python.py)."""
        log.warning(WARNING)
        python = find_interpreter(repo, config)
        tar_bytes = await anyio.to_thread.run_sync(archive, repo, commit)
        await anyio.to_thread.run_sync(_sweep_once)
        root = Path(tempfile.mkdtemp(prefix=PREFIX))
        box = cls(root, root / "work")
        box._python = python.path
        try:
            mark_owner(root)
            box.workdir.mkdir()
            (root / "home").mkdir()
            box._bin.mkdir()
            # A script, not a symlink: exec'd by its own path, a virtualenv's python stays in it.
            for name in ("python", "python3"):
                shim = box._bin / name
                shim.write_text(f'#!/bin/sh\nexec {shlex.quote(str(python.path))} "$@"\n')
                shim.chmod(0o755)
            await anyio.to_thread.run_sync(_extract, tar_bytes, box.workdir)
            result = await box.exec(["sh", "-c", INIT_SCRIPT], timeout=120)
            if result.exit_code != 0:
                raise SandboxError(f"could not initialise the workspace: {result.stderr.strip()}")
        except BaseException:
            await box.close()
            raise
        return box

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        # `python` is the project's interpreter; its own folder next, for its console scripts.
        folders = [str(self._bin), str(self._python.parent), env.get("PATH", "")]
        env["PATH"] = os.pathsep.join(folders)
        env.update(
            HOME=str(self._root / "home"),
            PYTHONDONTWRITEBYTECODE="1",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_TERMINAL_PROMPT="0",
        )
        env.update(extra or {})
        return env

    async def exec(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        if self._closed:
            raise SandboxError("sandbox is closed")
        return await run_process(argv, cwd=self.workdir, env=self._env(env), timeout=timeout)

    async def read_file(self, path: str) -> bytes | None:
        target = self._inside(path)
        try:
            return await anyio.Path(target).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    async def write_files(self, files: Mapping[str, bytes | None]) -> None:
        for path, data in files.items():
            target = anyio.Path(self._inside(path))
            if data is None:
                await target.unlink(missing_ok=True)
                continue
            await target.parent.mkdir(parents=True, exist_ok=True)
            await target.write_bytes(data)

    async def apply(self, edits: Sequence[Edit]) -> Patch:
        return await apply_edits(self, edits)

    async def reset(self) -> None:
        await reset_workspace(self)

    async def close(self) -> None:
        self._closed = True
        # `rm -rf`, not shutil.rmtree: a tree thousands of levels deep (test code can build one)
        # overflows rmtree's recursion; coreutils walks it without.
        argv = ["rm", "-rf", "--", str(self._root)]
        await anyio.to_thread.run_sync(
            lambda: subprocess.run(argv, check=False, capture_output=True)
        )

    def _inside(self, path: str) -> Path:
        target = (self.workdir / path).resolve()
        if not target.is_relative_to(self.workdir.resolve()):
            raise SandboxError(f"path escapes the workspace: {path}")
        return target


_SWEPT: list[bool] = []


def _sweep_once() -> None:
    """Once a process: remove the local sandboxes that killed processes left behind."""
    if not _SWEPT:
        _SWEPT.append(True)
        sweep()


def _extract(tar_bytes: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        tar.extractall(dest, filter="data")


async def run_process(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> ExecResult:
    """Run argv (never through a shell) in its own session; on timeout kill the whole group, and
    after a normal exit kill what it left in the background too."""
    started = time.monotonic()
    try:
        proc = await anyio.open_process(
            list(argv), cwd=cwd, env=dict(env), start_new_session=True, stdin=None
        )
    except OSError as exc:
        return ExecResult(
            argv=tuple(argv), exit_code=127, stdout="", stderr=str(exc), duration_s=0.0
        )
    out, err = bytearray(), bytearray()
    timed_out = False
    try:
        async with anyio.create_task_group() as tg:
            assert proc.stdout is not None and proc.stderr is not None
            tg.start_soon(_drain, proc.stdout, out)
            tg.start_soon(_drain, proc.stderr, err)
            try:
                with anyio.move_on_after(timeout) as scope:
                    await proc.wait()
                timed_out = scope.cancelled_caught
            finally:  # a cancelled run (a baseline no longer needed) leaves nothing running
                _kill_group(proc.pid)
                with anyio.CancelScope(shield=True):
                    await proc.wait()
    finally:
        with anyio.CancelScope(shield=True):
            await proc.aclose()
    code = proc.returncode if proc.returncode is not None else -9
    return ExecResult(
        argv=tuple(argv),
        exit_code=124 if timed_out else code,
        stdout=_text(out),
        stderr=_text(err) + (f"\n[killed after {timeout:g}s timeout]" if timed_out else ""),
        duration_s=round(time.monotonic() - started, 3),
        timed_out=timed_out,
    )


async def _drain(stream: ByteReceiveStream, buf: bytearray) -> None:
    async for chunk in stream:
        if len(buf) < MAX_OUTPUT:
            buf.extend(chunk[: MAX_OUTPUT - len(buf)])


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _text(buf: bytearray) -> str:
    text = buf.decode("utf-8", errors="replace")
    return text + "\n[output truncated]" if len(buf) >= MAX_OUTPUT else text
