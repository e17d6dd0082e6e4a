"""The extension points, as small Protocols, and the optional capabilities an evaluator or a
sandbox may add to them, each its own Protocol. Implementations do not inherit from these; mypy
and the shared contract tests check that they conform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from cascade.config import IssuesConfig
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


# Optional capabilities. Each is its own small protocol, checked with `isinstance` where it is
# used. Such a check only sees that the members exist (a method member must also not be None),
# so a capability is shaped to make that the right test.


@runtime_checkable
class TreeWalkingSandbox(Protocol):
    """A sandbox that takes the gate's tamper-check snapshot itself, with the same rules as
    `cascade/workspace/tree_walk.py` (path -> digest of mode and content, `skip` directories
    left out). The Docker sandbox's pid 1 does, with no process to start. Without this, or when
    it answers None, the gate runs the walk as a script in the sandbox."""

    async def tree_state(self, skip: Sequence[str]) -> dict[str, str] | None: ...


@runtime_checkable
class ImageSandbox(Protocol):
    """A sandbox that runs a container image; its id (`sha256:...`) goes into every attempt
    record."""

    @property
    def image_id(self) -> str: ...


@runtime_checkable
class CodeFreeEvaluator(Protocol):
    """An evaluator that may declare it runs nothing in the sandbox (`runs_code = False`:
    diff_scope reads only the patch), so the gate does not snapshot its stage. Having the
    attribute is not the claim, its value is: the gate spares the check only when it is False,
    and an evaluator without it is taken to run code."""

    @property
    def runs_code(self) -> bool: ...


@runtime_checkable
class ScopedBaselineEvaluator(Protocol):
    """An evaluator that says what of the task its baseline depends on (`""`: nothing, so the
    baseline is shared by every task on the same commit). Without this, everything the issue
    says about tests is part of the gate's baseline cache key."""

    def baseline_key(self, task: Task) -> str: ...


@runtime_checkable
class ConfiguredEvaluator(Protocol):
    """An evaluator built from a pydantic config, which is part of its baseline cache key."""

    @property
    def config(self) -> BaseModel: ...


@runtime_checkable
class ConfigurableEvaluatorType(Protocol):
    """An evaluator class that names its config model: the registry validates
    `[gate.options.<name>]` against `config_model` and builds `cls(config)`. A class without
    one takes no options and is built as `cls()`."""

    @property
    def config_model(self) -> type[BaseModel]: ...

    def __call__(self, config: Any) -> Evaluator: ...


@runtime_checkable
class ConfigurableSourceType(Protocol):
    """An issue source class that builds itself from `[issues]` and the checkout (both built-ins
    do; `options` are what a caller knows, e.g. the GitHub repository). A class without it is
    built as `cls(config.issues)`."""

    def from_config(self, config: IssuesConfig, checkout: Path, **options: Any) -> IssueSource: ...


@runtime_checkable
class ProvingEvaluator(Protocol):
    """An evaluator that runs tests by name: it says how the task's target and hidden tests
    (and a reproduction's) come out at the base commit — node id -> "passed", "failed: ...",
    "error: ...", "skipped" or "missing" — so the engine knows which of them prove a fix. Its
    verdicts name the same tests' outcomes after the patch (`Verdict.tests`)."""

    async def base_outcomes(self, sandbox: Sandbox, task: Task) -> dict[str, str]: ...


@runtime_checkable
class TracingEvaluator(Protocol):
    """A `ProvingEvaluator` that also gives, from the same run of the named tests, what the
    prompt is told of the targets — `outcomes` (node id -> outcome) and `failures` (node id ->
    scrubbed text) of what ran, as a baseline has them; {} when none may be told. With it the
    first model call does not wait for the whole baseline."""

    async def base_failures(
        self, sandbox: Sandbox, task: Task
    ) -> tuple[dict[str, str], dict[str, Any]]: ...
