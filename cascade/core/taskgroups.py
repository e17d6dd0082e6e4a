"""anyio task groups whose failure comes out as the failing child's own exception, not wrapped in
an ExceptionGroup: the engine and the CLI handle errors by type (`except CascadeError`: an
attempt's infra error, a sealed run, exit 3), and a wrapped one would slip past all of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

from cascade.errors import CascadeError


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """When children fail, the first CascadeError among them is raised (else the first other
    Exception); a group of cancellations alone is re-raised as it is."""
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseExceptionGroup as failed:
        found = first_failure(failed)
        if found is None:
            raise
        raise found from None


def first_failure(group: BaseExceptionGroup[BaseException]) -> Exception | None:
    errors = [e for e in _leaves(group) if isinstance(e, Exception)]
    ours = [e for e in errors if isinstance(e, CascadeError)]
    return (ours or errors or [None])[0]


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
