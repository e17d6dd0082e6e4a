"""A rung that searches instead of asking a provider (`repair/mutate`): it is given the task, its
visible proving tests, the run's fault localisation and sandboxes at the base commit, and comes
back with one candidate answer — ordinary edits, gated and proven like any model's — or with
none, and in both cases with what it tried (a blob in the attempt's record). Hidden tests are
never given to it: it could only overfit them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cascade.core.localise import Localisation
from cascade.protocols import Sandbox
from cascade.records import Completion, Task


@dataclass(frozen=True)
class SearchJob:
    run_id: str  # a search resumed by the rung's next attempt skips what it has returned
    task: Task
    tests: tuple[str, ...]  # the visible proving tests: each fails at the base commit
    localisation: Localisation
    open_sandbox: Callable[[], Awaitable[Sandbox]]  # a fresh sandbox at the base commit


@dataclass(frozen=True)
class Found:
    completion: Completion | None  # None: no candidate passed; the rung climbs
    tried: str  # JSON: every candidate tried, for the proof
    why: str = ""  # with no completion: what the search did, in a line


@runtime_checkable
class Searcher(Protocol):
    """A search rung's model. `Model.complete` is still there (a reviewer or a stray call gets a
    fault that climbs), but a run calls `search`."""

    async def search(self, job: SearchJob) -> Found: ...


def cannot_search(tests: tuple[str, ...], loc: Localisation | None, why_none: str) -> str:
    """Why a search rung cannot run on this task ("" when it can): it needs a visible proving
    test, and the localisation that test gives."""
    if not tests:
        return "a search rung needs a visible proving test that fails at the base commit; none"
    if loc is None:
        return f"a search rung needs the fault localisation, which this run has not: {why_none}"
    if not loc.statements:
        return "the fault localisation found no suspicious statement to change"
    return ""
