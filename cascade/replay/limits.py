"""Concurrency limits for a batch: model calls and sandboxes each draw from their own
`CapacityLimiter`, so a batch can run many tasks while capping provider load and machine load
separately. Both wrap the real adapters and satisfy the same protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from anyio import CapacityLimiter, Lock

from cascade.core.search import Searcher
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
    """Each model behind the limiter; a search rung's (`repair/mutate`) calls no provider and is
    kept as it is: a wrapper would hide its search, and its sandboxes are limited already."""
    return {
        name: model if isinstance(model, Searcher) else LimitedModel(model, limiter)
        for name, model in models.items()
    }


class SandboxSlot:
    """One task's claim on the sandbox limiter: taken when its first sandbox is opened, given
    back by `release` once the run is over. A task opens several (its base sandbox, again when a
    baseline fails and is retried, and a fresh one per answer, one of them ahead of time) but
    holds one slot: the limit counts tasks at work in sandboxes. A failed open gives the slot
    back only when nothing of the task is open or opening. The sandbox object itself is not
    wrapped, so the proof names the real backend."""

    def __init__(self, limiter: CapacityLimiter) -> None:
        self.limiter = limiter
        self._held = False  # a borrower holds at most one token
        self._taking = Lock()  # two opens at once must not both ask for the token
        self._opening = 0  # opens in progress
        self._opened = False  # an open has succeeded (its sandbox may still be open)

    def opener(self, inner: SandboxOpener) -> SandboxOpener:
        async def open_sandbox(repo: Path, commit: str) -> Sandbox:
            async with self._taking:
                if not self._held:
                    await self.limiter.acquire_on_behalf_of(self)
                    self._held = True
                self._opening += 1
            try:
                box = await inner(repo, commit)
            except BaseException:
                self._opening -= 1
                if not self._opened and not self._opening:
                    self.release()
                raise
            self._opening -= 1
            self._opened = True
            return box

        return open_sandbox

    def release(self) -> None:
        if self._held:
            self._held = False
            self.limiter.release_on_behalf_of(self)
