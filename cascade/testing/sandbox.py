"""DirectorySandbox: the `Sandbox` protocol over a git checkout folder on the host, for tests
that need some sandbox holding a repository but not Docker. It records every command it ran."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cascade.errors import SandboxError
from cascade.records import Edit, ExecResult, Patch
from cascade.workspace.apply import apply_edits
from cascade.workspace.checkout import reset_workspace
from sandboxes.local_sandbox import run_process


class DirectorySandbox:
    """Works in `workdir` itself: no copy and no isolation. Commands run as this user with the
    host's environment, edits land in the folder, and `reset` runs `git reset --hard` and
    `git clean -fdx` there, deleting untracked (and ignored) files. For tests and trusted
    experiments on a throwaway checkout only; it is deliberately not a registered backend.

    `workdir` should be a git checkout whose HEAD is the base commit (`make_repo` builds one);
    nothing checks that up front, so a folder outside git fails where git is first needed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.calls: list[tuple[str, ...]] = []  # every argv `exec` ran, in order
        self._closed = False

    async def exec(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        if self._closed:
            raise SandboxError("sandbox is closed")
        self.calls.append(tuple(argv))
        # The same runner as LocalSandbox: its own session, the group killed on a timeout, which
        # comes back as data (exit 124, timed_out) as the real sandboxes report it.
        merged = {**os.environ, **(env or {})}
        return await run_process(argv, cwd=self.workdir, env=merged, timeout=timeout)

    async def read_file(self, path: str) -> bytes | None:
        try:
            return self._inside(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    async def write_files(self, files: Mapping[str, bytes | None]) -> None:
        for path, data in files.items():
            target = self._inside(path)
            if data is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    async def apply(self, edits: Sequence[Edit]) -> Patch:
        return await apply_edits(self, edits)

    async def reset(self) -> None:
        await reset_workspace(self)

    async def close(self) -> None:
        """Stops further commands; the folder is the caller's and stays as it is."""
        self._closed = True

    def _inside(self, path: str) -> Path:
        # The same refusal as the real sandboxes, so a test sees the errors they would raise.
        target = (self.workdir / path).resolve()
        if not target.is_relative_to(self.workdir.resolve()):
            raise SandboxError(f"path escapes the workspace: {path}")
        return target
