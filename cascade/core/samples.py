"""Draws a rung's `samples` answers to one prompt concurrently. A provider fault of one sample
is its result, not an exception, so the others still answer; the batch's purse reserves the
step's estimate before the calls and settles with what they cost."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cascade.core.budget import Purse
from cascade.core.taskgroups import task_group
from cascade.errors import ModelError
from cascade.protocols import Model
from cascade.records import Completion, CompletionParams, Message

Result = Completion | ModelError


async def draw(
    model: Model,
    messages: Sequence[Message],
    params: CompletionParams,
    count: int,
    *,
    purse: Purse | None = None,
    estimate: float = 0.0,
    held: float | None = None,
) -> list[Result]:
    """`count` answers (or faults), in sample order. `held`: what the caller has already
    reserved in the purse for these calls (else the estimate is reserved here)."""
    results: list[Result | None] = [None] * count

    async def one(i: int) -> None:
        try:
            own = params.model_copy(update={"sample": i + 1}) if count > 1 else params
            results[i] = await model.complete(messages, own)
        except ModelError as exc:
            results[i] = exc

    reserved = held if held is not None else purse.reserve(estimate) if purse else 0.0
    try:
        async with task_group() as group:
            for i in range(count):
                group.start_soon(one, i)
    finally:
        if purse:
            purse.settle(reserved, [r.cost_usd for r in results if isinstance(r, Completion)])
    return [r for r in results if r is not None]


async def draw_round(
    model: Model,
    messages: Sequence[Message],
    params: CompletionParams,
    count: int,
    on_fault: Callable[[int, ModelError], None],
    *,
    purse: Purse | None = None,
    estimate: float = 0.0,
    held: float | None = None,
) -> tuple[list[tuple[Completion, int]], bool]:
    """`draw`, with each sample's fault handed to `on_fault` (sample number, fault) at once: the
    answers with their sample numbers, and whether a fault stops the run."""
    results = await draw(model, messages, params, count, purse=purse, estimate=estimate, held=held)
    stop = False
    for i, result in enumerate(results, 1):
        if isinstance(result, ModelError):
            on_fault(i, result)
            stop = stop or result.action == "stop"
    return [(r, i) for i, r in enumerate(results, 1) if isinstance(r, Completion)], stop
