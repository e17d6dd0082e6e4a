"""The run's first sandbox: opened at the base commit with the gate's baseline taken on it. A
start or harness failure (an InfraError) is retried, never the model's fault and never a tool
that cannot run as configured (a GateConfigError, raised at once)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from cascade.config import PolicyConfig
from cascade.core.baseline_store import COMPUTED_BY, BaselineStore
from cascade.core.events import Event
from cascade.core.gate import Gate
from cascade.errors import InfraError
from cascade.protocols import ImageSandbox, Sandbox, SandboxOpener
from cascade.records import Task

log = logging.getLogger(__name__)


async def open_with_baseline(
    task: Task,
    *,
    open_sandbox: SandboxOpener,
    gate: Gate,
    policy: PolicyConfig,
    sleep: Callable[[float], Any],
    on_event: Callable[[Event], None],
    notes: list[str],
    store: BaselineStore | None = None,
) -> tuple[Sandbox, dict[str, Mapping[str, Any]]]:
    """The sandbox and the gate's baselines; each retried fault is added to `notes`, and which
    baselines came from `store` (taken by an earlier run, on the same commit, configuration and
    image) too."""
    for n in range(policy.infra_retries + 1):
        on_event(Event("open", f"opening a sandbox at {task.base_commit[:12]}"))
        sandbox: Sandbox | None = None
        try:
            sandbox = await open_sandbox(Path(task.repo), task.base_commit)
            on_event(Event("baseline", f"baseline: {', '.join(gate.names)}"))
            baselines = await gate.baseline(sandbox, task, store)
            for note in _from_cache(baselines, store):
                notes.append(note)
                on_event(Event("baseline", note))
            return sandbox, baselines
        except BaseException as exc:  # a cancel or any error must not leak the sandbox
            if sandbox is not None:
                with anyio.CancelScope(shield=True):
                    await sandbox.close()
            if not isinstance(exc, InfraError):
                raise
            notes.append(f"infrastructure fault before any attempt: {exc}")
            if n == policy.infra_retries:
                raise InfraError(f"{exc} (tried {n + 1} time(s))") from exc
            log.warning("sandbox or baseline failed, retrying: %s", exc)
            await sleep(policy.backoff_s)
    raise AssertionError("unreachable")


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
