"""The run's first sandbox, opened at the base commit, and the gate's baselines on it. Opening is
retried on a start failure (an InfraError). The baselines known already (this process's, or kept
by an earlier run: `Gate.cached`) are there at once; the rest are taken in the background
(`Underway`) while the prompt is built and the first model call is drawn, and the gate waits for
them only if the answer comes first. A tool that cannot run as configured (a GateConfigError) is
never retried."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from cascade.config import PolicyConfig
from cascade.core.baseline_store import COMPUTED_BY, BaselineStore
from cascade.core.events import Event
from cascade.core.gate import Baselines, Gate
from cascade.errors import CascadeError, InfraError
from cascade.protocols import ImageSandbox, Sandbox, SandboxOpener
from cascade.records import Task

log = logging.getLogger(__name__)


class RunSettings(Protocol):
    """What of the engine a run's base sandbox needs (`cascade.core.engine.Engine` has it)."""

    @property
    def open_sandbox(self) -> SandboxOpener: ...
    @property
    def policy(self) -> PolicyConfig: ...
    @property
    def sleep(self) -> Callable[[float], Any]: ...
    @property
    def on_event(self) -> Callable[[Event], None]: ...
    @property
    def baseline_store(self) -> BaselineStore | None: ...


async def open_at_base(
    task: Task,
    *,
    open_sandbox: SandboxOpener,
    gate: Gate,
    policy: PolicyConfig,
    sleep: Callable[[float], Any],
    on_event: Callable[[Event], None],
    notes: list[str],
    store: BaselineStore | None = None,
) -> Sandbox:
    """The untouched sandbox; each retried fault is added to `notes`, and which of the gate's
    baselines an earlier run took (on the same commit, configuration and image) too."""
    for n in range(policy.infra_retries + 1):
        on_event(Event("open", f"opening a sandbox at {task.base_commit[:12]}"))
        try:
            sandbox = await open_sandbox(Path(task.repo), task.base_commit)
        except InfraError as exc:
            notes.append(f"infrastructure fault before any attempt: {exc}")
            if n == policy.infra_retries:
                raise InfraError(f"{exc} (tried {n + 1} time(s))") from exc
            log.warning("the sandbox did not open, retrying: %s", exc)
            await sleep(policy.backoff_s)
            continue
        for note in _from_cache(gate.cached(sandbox, task, store), store):
            notes.append(note)
            on_event(Event("baseline", note))
        return sandbox
    raise AssertionError("unreachable")


@dataclass
class Underway:
    """The gate's baselines, taken on the untouched sandbox by `take` (started in the run's task
    group) while the run goes on; `wait` gives them, or raises what stopped them. A fault of the
    harness is retried in a fresh sandbox (`reopen`: a run cut short may have left files behind,
    which the next try would take for the tree as it is at base; `sandbox` is then the new one,
    the old one closed); the last fault, or a tool that cannot run as configured, is kept for
    whoever waits rather than raised into the task group, so a model call in flight ends and its
    answer is recorded before the run stops."""

    gate: Gate
    sandbox: Sandbox
    task: Task
    policy: PolicyConfig
    sleep: Callable[[float], Any]
    on_event: Callable[[Event], None]
    notes: list[str]
    store: BaselineStore | None = None
    reopen: Callable[[], Awaitable[Sandbox]] | None = None
    started: bool = False
    _done: anyio.Event = field(default_factory=anyio.Event)
    _taken: dict[str, Mapping[str, Any]] | None = None
    _error: CascadeError | None = None

    @classmethod
    def of(
        cls, gate: Gate, sandbox: Sandbox, task: Task, run: RunSettings, notes: list[str]
    ) -> Underway:
        """For `task`'s run: retried in fresh sandboxes of the run's opener, notes into `notes`."""

        async def reopen() -> Sandbox:
            return await run.open_sandbox(Path(task.repo), task.base_commit)

        return cls(
            gate, sandbox, task, run.policy, run.sleep, run.on_event, notes, run.baseline_store,
            reopen,
        )  # fmt: skip

    async def take(self) -> None:
        self.started, began = True, time.monotonic()
        known = self.gate.cached(self.sandbox, self.task, self.store)
        missing = [n for n in self.gate.names if n not in known]
        if missing:
            self.on_event(Event("baseline", f"baseline: {', '.join(missing)}"))
        try:
            self._taken = await self._retried()
            if missing:
                took = time.monotonic() - began
                self.on_event(Event("baseline", f"baseline taken ({took:.1f}s)"))
        except CascadeError as exc:
            self._error = exc
            self.on_event(Event("baseline", f"the baseline could not be taken: {exc}"))
        finally:
            self._done.set()

    async def wait(self) -> Baselines:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._taken is not None
        return self._taken

    @property
    def error(self) -> CascadeError | None:
        """What stopped the baselines, once `take` has ended (None: taken, or not yet)."""
        return self._error

    async def _retried(self) -> dict[str, Mapping[str, Any]]:
        retries = self.policy.infra_retries
        for n in range(retries + 1):
            try:
                return await self.gate.baseline(self.sandbox, self.task, self.store)
            except InfraError as exc:
                self.notes.append(f"infrastructure fault taking the baseline: {exc}")
                if n == retries:
                    raise InfraError(f"{exc} (tried {n + 1} time(s))") from exc
                log.warning("the baseline failed, retrying: %s", exc)
                await self.sleep(self.policy.backoff_s)
                await self._fresh()
        raise AssertionError("unreachable")

    async def _fresh(self) -> None:
        if self.reopen is None:
            return
        old, self.sandbox = self.sandbox, await self.reopen()
        with anyio.CancelScope(shield=True):
            await old.close()


def sandbox_label(sandbox: Sandbox) -> str:
    """How the record names the sandbox: its kind, image and Python."""
    image = sandbox.image_id if isinstance(sandbox, ImageSandbox) else ""
    kind = type(sandbox).__name__.removesuffix("Sandbox").lower() or "sandbox"
    return " ".join(filter(None, (kind, image, getattr(sandbox, "runtime", ""))))  # python 3.11.2


def _from_cache(
    baselines: Mapping[str, Mapping[str, Any]], store: BaselineStore | None
) -> list[str]:
    """A note naming the baselines an earlier run took, and which run."""
    if store is None:
        return []
    by: dict[str, list[str]] = {}
    for name, facts in baselines.items():
        taken = str(facts.get(COMPUTED_BY, ""))
        if taken and taken != store.run_id:
            by.setdefault(taken, []).append(name)
    return [
        f"baseline of {', '.join(names)} from the cache (taken by run {run}, same commit, "
        "configuration and sandbox image)"
        for run, names in by.items()
    ]
