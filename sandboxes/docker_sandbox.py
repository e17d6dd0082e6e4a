"""DockerSandbox: one hardened container per task (no network, read-only root, no capabilities,
non-root, limits), the workspace a labelled named volume, reused by every attempt of the task.
Same workspace semantics as LocalSandbox: a one-commit git repo of the base commit."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from docker.errors import DockerException, NotFound

from cascade.config import SandboxConfig
from cascade.errors import SandboxError
from cascade.records import Edit, ExecResult, Patch
from cascade.workspace.apply import apply_edits
from cascade.workspace.checkout import INIT_SCRIPT, reset_workspace
from sandboxes.agent import AgentClient, AgentError, AgentGone, AgentUnavailable
from sandboxes.container_spec import LIMIT_COUNTERS, SWEEP, USER, WRAPPER
from sandboxes.container_start import (
    Started,
    choose_image,
    environment,
    explain,
    put_archive,
    start,
    workspace_tar,
)
from sandboxes.docker_api import (
    RESOURCE_EXCEEDED,
    SANDBOX_UID,
    WORKDIR,
    DockerOptions,
)
from sandboxes.workspace_tar import files_tar, first_file, relative

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

MAX_OUTPUT = 2_000_000  # bytes kept per stream; the rest is dropped with a marker
HOST_GRACE = 10.0  # seconds the host waits past the in-container timeout before it steps in
# Prints, NUL-separated, those of its arguments that are existing executable files.
EXECUTABLES = (
    """for f; do if [ -f "$f" ] && [ -x "$f" ]; then printf '%s\\0' "$f"; fi; done; exit 0"""
)
# For the first `git add -A` only: write every blob into one pack, not one loose file per blob
# (2,000 files: 0.9 s -> 0.15 s here). Not kept in the repo's config: above the threshold,
# `git diff` would treat files as binary.
INIT_ENV = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.bigFileThreshold",
            "GIT_CONFIG_VALUE_0": "1"}  # fmt: skip


class DockerSandbox:
    def __init__(self, started: Started) -> None:
        self._client = started.client
        self._container = started.container
        self._volume = started.volume
        self._image_id = started.image_id
        self._agent = started.agent  # pid 1's command server, when attached
        self._limiter = anyio.CapacityLimiter(4)
        self._limit_counts: dict[str, int] = {}
        self._closed = False
        self._python = ""  # the full version of its Python, once known

    @property
    def image_id(self) -> str:
        """The id (`sha256:...`) of the image the container runs, for attempt records: the
        repository's environment image when `[sandbox] setup` is set, else the sandbox image."""
        return self._image_id

    @property
    def name(self) -> str:
        return str(self._container.name)

    @property
    def runtime(self) -> str:
        """The interpreter the sandbox runs (`python 3.11.2`), for attempt records."""
        return f"python {self._python}" if self._python else ""

    @classmethod
    def prepare(
        cls, repo: Path, commit: str, config: SandboxConfig, *, progress: Progress | None = None
    ) -> str:
        """Before any work (blocking): the image sandboxes of `repo` at `commit` will run, or a
        SandboxError saying why there is none (a Python not built, or not to be had). With
        `progress`, the `[sandbox] setup` environment is built now too, shown line by line (a
        batch builds it once, in view, before its tasks). Returns a line saying which Python."""
        chosen = choose_image(config, repo, commit)
        if config.setup and progress is not None:
            environment(config, chosen.image, repo, commit, shown=progress)
        return f"sandbox {chosen.image}: {chosen.why}"

    @classmethod
    async def open(
        cls,
        repo: Path,
        commit: str,
        config: SandboxConfig | None = None,
        *,
        run_id: str = "",
        progress: Progress | None = None,
    ) -> DockerSandbox:
        """A sandbox of `repo` at `commit`; `progress` is shown each line of `[sandbox] setup`
        when its environment has to be built first."""
        config = config or SandboxConfig()
        options = DockerOptions.from_config(config)
        limiter = anyio.CapacityLimiter(4)
        tar_bytes = await anyio.to_thread.run_sync(workspace_tar, repo, commit, limiter=limiter)
        chosen = await anyio.to_thread.run_sync(choose_image, config, repo, commit, limiter=limiter)
        image = chosen.image
        if config.setup:  # cancelled, the abandoned build still ends and removes its container
            shown = _on_loop(progress) if progress is not None else None
            build = partial(
                environment, config, image, repo, commit, tar_bytes=tar_bytes, shown=shown
            )
            image = await anyio.to_thread.run_sync(build, abandon_on_cancel=True, limiter=limiter)
        started = await anyio.to_thread.run_sync(
            start, image, options, run_id, tar_bytes, limiter=limiter
        )
        box = cls(started)
        box._python = chosen.python
        try:
            result = await box.exec(["sh", "-c", INIT_SCRIPT], timeout=120, env=INIT_ENV)
            if result.exit_code != 0:
                detail = (result.stderr or result.stdout).strip()
                raise SandboxError(f"could not initialise the workspace: {detail}")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await box.close()
            raise
        return box

    async def exec(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        if self._closed:
            raise SandboxError("sandbox is closed")
        wrapped = ["sh", "-c", WRAPPER, "sh", f"{timeout:.3f}", *argv]
        out, err = bytearray(), bytearray()
        started = time.monotonic()
        code: int | None = None
        try:
            with anyio.fail_after(timeout + HOST_GRACE):
                code = await anyio.to_thread.run_sync(
                    self._exec_blocking, wrapped, env, out, err, timeout + 2 * HOST_GRACE,
                    abandon_on_cancel=True, limiter=self._limiter,
                )  # fmt: skip
        except TimeoutError:
            pass  # the in-container timeout did not end it: the sweep below does
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._sweep()
            raise
        elapsed = time.monotonic() - started
        out, err = bytearray(out), bytearray(err)  # an abandoned thread may still be writing
        note = ""
        timed_out = code is None or (code == 137 and elapsed >= timeout)
        if timed_out:  # first: a leftover holding the old exec's pipes slows the next one
            await self._sweep()
        if code in (137, None):  # SIGKILL: a limit, the timeout, or both (a fork bomb hits both)
            note = await self._limit_note()
        if timed_out:
            note = "\n".join(filter(None, [note, f"[killed after {timeout:g}s timeout]"]))
        return ExecResult(
            argv=tuple(argv),
            exit_code=124 if timed_out or code is None else code,
            stdout=_text(out),
            stderr=_text(err) + (f"\n{note}" if note else ""),
            duration_s=round(elapsed, 3),
            timed_out=timed_out,
        )

    async def read_file(self, path: str) -> bytes | None:
        agent = self._agent
        if agent is not None and agent.alive:
            with contextlib.suppress(AgentUnavailable):  # nothing read: `docker cp` below
                return await self._call(self._agent_read, agent, relative(path))  # type: ignore[no-any-return]
        target = f"{WORKDIR}/{relative(path)}"
        data: bytes | None
        data, is_link = await self._call(self._get_file, target)
        if is_link:  # follow it as the sandbox user would
            code, raw = await self._call(self._run_raw, ["cat", "--", target])
            data = raw if code == 0 else None
        return data

    async def write_files(self, files: Mapping[str, bytes | None]) -> None:
        if self._closed:
            raise SandboxError("sandbox is closed")
        agent = self._agent
        if agent is not None and agent.alive:
            inside = {relative(p): d for p, d in files.items()}
            with contextlib.suppress(AgentUnavailable):  # nothing written: `docker cp` below
                await self._call(self._agent_write, agent, inside)
                return
        writes = {p: d for p, d in files.items() if d is not None}
        deletes = [f"{WORKDIR}/{relative(p)}" for p, d in files.items() if d is None]
        if writes:  # an overwritten file keeps its executable bit, as with LocalSandbox
            names = [relative(p) for p in writes]
            _code, raw = await self._call(self._run_raw, ["sh", "-c", EXECUTABLES, "sh", *names])
            executable = set(raw.decode(errors="replace").split("\0"))
            await self._call(self._put, files_tar(writes, SANDBOX_UID, executable))
        if deletes:
            code, _ = await self._call(self._run_raw, ["rm", "-f", "--", *deletes])
            if code != 0:
                raise SandboxError(f"could not delete {', '.join(deletes)} (exit {code})")

    async def tree_state(self, skip: Sequence[str]) -> dict[str, str] | None:
        """The tamper check's snapshot, walked by pid 1 (no process started); None without it."""
        agent = self._agent
        if agent is None or not agent.alive:
            return None
        try:
            return await self._call(agent.tree_state, skip)  # type: ignore[no-any-return]
        except AgentUnavailable:
            return None  # the gate walks the tree with a script instead
        except (AgentGone, AgentError) as exc:
            raise SandboxError(f"cannot snapshot the workspace: {exc}") from exc

    async def apply(self, edits: Sequence[Edit]) -> Patch:
        return await apply_edits(self, edits)

    async def reset(self) -> None:
        await reset_workspace(self)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._agent is not None:
            self._agent.close()
        await anyio.to_thread.run_sync(self._remove, limiter=self._limiter)

    # -- blocking helpers, always run in a worker thread -------------------------------------

    async def _call(self, func: Any, *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        except DockerException as exc:
            raise SandboxError(f"docker: {explain(exc)}") from exc

    def _exec_blocking(
        self,
        argv: list[str],
        env: Mapping[str, str] | None,
        out: bytearray,
        err: bytearray,
        wait: float = 600.0,
    ) -> int:
        """Through the agent when it is there (a fork in the container), else `docker exec`."""
        agent = self._agent
        if agent is not None and agent.alive:
            try:
                return agent.run(argv, env, out, err, wait)
            except AgentUnavailable:
                pass  # nothing ran: `docker exec` below
            except AgentGone as exc:  # mid-command: it may have run, so it is not run again
                raise SandboxError(f"lost the sandbox's command server: {exc}") from exc
            except AgentError as exc:
                raise SandboxError(f"could not run {argv[-1]!r} in the sandbox: {exc}") from exc
        return self._docker_exec(argv, env, out, err)

    def _docker_exec(
        self, argv: list[str], env: Mapping[str, str] | None, out: bytearray, err: bytearray
    ) -> int:
        api = self._client.api
        try:
            exec_id = api.exec_create(
                self._container.id, argv, user=USER, workdir=WORKDIR,
                environment=dict(env) if env else None,
            )["Id"]  # fmt: skip
            for chunk_out, chunk_err in api.exec_start(exec_id, stream=True, demux=True):
                _keep(out, chunk_out)
                _keep(err, chunk_err)
            return int(api.exec_inspect(exec_id)["ExitCode"])
        except DockerException as exc:
            raise SandboxError(f"docker exec failed: {explain(exc)}") from exc

    def _run_raw(self, argv: list[str]) -> tuple[int, bytes]:
        out, err = bytearray(), bytearray()
        code = self._exec_blocking(argv, None, out, err)
        return code, bytes(out)

    def _agent_read(self, agent: AgentClient, path: str) -> bytes | None:
        try:
            return agent.read(path)
        except (AgentGone, AgentError) as exc:
            raise SandboxError(f"could not read {path} in the sandbox: {exc}") from exc

    def _agent_write(self, agent: AgentClient, files: Mapping[str, bytes | None]) -> None:
        try:
            agent.write(files)
        except (AgentGone, AgentError) as exc:
            raise SandboxError(f"could not write {', '.join(files)} in the sandbox: {exc}") from exc

    def _get_file(self, target: str) -> tuple[bytes | None, bool]:
        try:
            stream, _stat = self._container.get_archive(target)
        except NotFound:
            return None, False
        return first_file(stream)

    def _put(self, data: bytes) -> None:
        put_archive(self._container, data)

    async def _sweep(self) -> None:
        try:
            with anyio.move_on_after(30):
                # Never through the agent: it may be the one stuck.
                await anyio.to_thread.run_sync(
                    self._docker_exec, SWEEP, None, bytearray(), bytearray(), limiter=self._limiter
                )
        except SandboxError as exc:
            log.warning("could not kill leftover processes in %s: %s", self.name, exc)

    async def _limit_note(self) -> str:
        """A note naming the limit hit since the last look (memory, processes), or ''."""
        try:
            _code, raw = await self._call(self._run_raw, ["sh", "-c", LIMIT_COUNTERS])
        except SandboxError:
            return ""
        counts: dict[str, int] = {}
        for line in raw.decode(errors="replace").splitlines():
            key, _, value = line.partition(" ")
            if key in ("oom_kill", "max") and value.strip().isdigit():
                counts[key] = counts.get(key, 0) + int(value)
        hit = [k for k, v in counts.items() if v > self._limit_counts.get(k, 0)]
        self._limit_counts.update(counts)
        if "oom_kill" in hit:
            return f"[{RESOURCE_EXCEEDED}: memory limit reached; the process was OOM-killed]"
        if "max" in hit:
            return f"[{RESOURCE_EXCEEDED}: process limit reached]"
        return ""

    def _remove(self) -> None:
        for what, remove in (("container", self._container), ("volume", self._volume)):
            try:
                remove.remove(force=True)
            except NotFound:
                pass
            except DockerException as exc:
                log.warning("could not remove %s %s: %s", what, remove.name, explain(exc))
        self._client.close()


def _on_loop(progress: Progress) -> Progress:
    """`progress` called on the event loop from a worker thread; a line that cannot get there
    (the run is gone, and an abandoned build goes on) is dropped."""

    def shown(line: str) -> None:
        with contextlib.suppress(Exception):
            anyio.from_thread.run_sync(progress, line)

    return shown


def _keep(buf: bytearray, chunk: bytes | None) -> None:
    if chunk and len(buf) < MAX_OUTPUT:
        buf.extend(chunk[: MAX_OUTPUT - len(buf)])


def _text(buf: bytearray) -> str:
    text = buf.decode("utf-8", errors="replace")
    return text + "\n[output truncated]" if len(buf) >= MAX_OUTPUT else text
