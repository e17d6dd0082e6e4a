"""Concurrency limits for a batch: model calls and sandboxes each draw from their own
`CapacityLimiter`, so a batch can run many tasks while capping provider load and machine load
separately. Both wrap the real adapters and satisfy the same protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from anyio import CapacityLimiter

from cascade.protocols import Model, Sandbox, SandboxOpener
from cascade.records import Completion, CompletionParams, Message


class LimitedModel:
    """A `Model` that holds a limiter token for the length of each call."""

    def __init__(self, inner: Model, limiter: CapacityLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        async with self.limiter:
            return await self.inner.complete(messages, params)


def limited_models(models: Mapping[str, Model], limiter: CapacityLimiter) -> dict[str, Model]:
    return {name: LimitedModel(model, limiter) for name, model in models.items()}


class SandboxSlot:
    """One task's claim on the sandbox limiter: taken when its first sandbox is opened, given
    back by `release` once the run is over. A task opens several (its base sandbox, and a fresh
    one per answer, one of them ahead of time) but holds one slot: the limit counts tasks at
    work in sandboxes. The sandbox object itself is not wrapped, so the proof names the real
    backend."""

    def __init__(self, limiter: CapacityLimiter) -> None:
        self.limiter = limiter
        self._held = False  # a borrower holds at most one token

    def opener(self, inner: SandboxOpener) -> SandboxOpener:
        async def open_sandbox(repo: Path, commit: str) -> Sandbox:
            first = not self._held
            if first:
                await self.limiter.acquire_on_behalf_of(self)
                self._held = True
            try:
                return await inner(repo, commit)
            except BaseException:
                if first:
                    self.release()
                raise

        return open_sandbox

    def release(self) -> None:
        if self._held:
            self._held = False
            self.limiter.release_on_behalf_of(self)
