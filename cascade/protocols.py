"""The extension points, as small Protocols. Implementations do not inherit from these;
mypy and the shared contract tests check that they conform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cascade.records import (
    Completion,
    CompletionParams,
    Edit,
    ExecResult,
    Issue,
    Message,
    Patch,
    Task,
    Verdict,
)


@runtime_checkable
class Model(Protocol):
    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        """One answer; provider faults raise a `ModelError` whose `action` guides the ladder."""
        ...


@runtime_checkable
class Sandbox(Protocol):
    """A workspace holding the repository at the task's base commit (as a fresh one-commit git
    repo, `.cascade/` left out). Paths are relative to the workspace root."""

    async def exec(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> ExecResult: ...

    async def read_file(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        ...

    async def write_files(self, files: Mapping[str, bytes | None]) -> None:
        """Write (or, for None, delete) files in the workspace, creating directories."""
        ...

    async def apply(self, edits: Sequence[Edit]) -> Patch:
        """Apply edits and return the canonical patch; raises EditError, leaving it clean."""
        ...

    async def reset(self) -> None:
        """Back to the base commit, untracked files gone."""
        ...

    async def close(self) -> None: ...


class SandboxOpener(Protocol):
    async def __call__(self, repo: Path, commit: str) -> Sandbox: ...


@runtime_checkable
class Evaluator(Protocol):
    name: str

    async def baseline(self, sandbox: Sandbox, task: Task) -> Mapping[str, Any]:
        """Pre-patch facts (JSON-able) that `evaluate` compares against."""
        ...

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict: ...


@runtime_checkable
class IssueSource(Protocol):
    def get(self, issue_id: str) -> Issue: ...

    def list(self, query: str = "") -> list[Issue]: ...
