"""Concurrent children whose failure must keep its type: the engine and the CLI handle errors by
type, and anyio would otherwise hand them an ExceptionGroup."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from cascade.core.samples import draw
from cascade.core.taskgroups import task_group
from cascade.errors import ConfigError, InfraError
from cascade.records import Completion, CompletionParams, Message


async def _fail(exc: Exception, delay: float = 0.0) -> None:
    await anyio.sleep(delay)
    raise exc


@pytest.mark.anyio
async def test_a_child_failure_comes_out_as_itself() -> None:
    with pytest.raises(InfraError, match="killed"):
        async with task_group() as group:
            group.start_soon(anyio.sleep, 5)
            group.start_soon(_fail, InfraError("killed"))


@pytest.mark.anyio
async def test_our_error_is_preferred_over_a_bug_failing_alongside() -> None:
    def both(group: anyio.abc.TaskGroup) -> None:
        group.start_soon(_fail, ValueError("bug"))
        group.start_soon(_fail, InfraError("dead container"))

    with pytest.raises(InfraError, match="dead container"):
        async with task_group() as group:
            both(group)
    with pytest.raises(ValueError, match="bug"):
        async with task_group() as group:
            group.start_soon(_fail, ValueError("bug"))


class _Unwritable:
    """A model whose recorder cannot write its cassette (ConfigError from inside complete)."""

    name = "rec"

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        raise ConfigError("cannot append to the record file /nope/x.jsonl")


@pytest.mark.anyio
async def test_samples_pass_a_harness_error_through_with_its_type() -> None:
    with pytest.raises(ConfigError, match="record file"):
        await draw(_Unwritable(), [], CompletionParams(), 3)
