"""Ctrl-C and SIGTERM during a batch: the first signal cancels the work, whose shielded cleanup
closes every sandbox it opened; then whatever this process still owns (a cut-short open, an
abandoned thread's container) is removed before it exits. Later signals do not cut that short:
a container left running would hold its memory and CPU until its ttl."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.abc

from cascade.core.taskgroups import task_group

log = logging.getLogger(__name__)
T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Leftovers:
    """What the sandbox backend can say about this process's sandboxes (Docker's labels)."""

    census: Callable[[], list[str]]  # the names of the containers still there
    collect: Callable[[], list[str]]  # remove them all; the names of the containers that went


class Interrupted(Exception):
    """The work was stopped by a signal; the message says what was cleaned up."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def run_interruptible(
    work: Callable[[], Awaitable[T]],
    note: Callable[[str], None],
    leftovers: Leftovers | None = None,
    advice: str = "",
) -> T:
    """`anyio.run(work)`, stopped cleanly by SIGINT or SIGTERM: then `Interrupted` is raised, once
    this process's sandboxes are gone, with a message that says so (and `advice`)."""
    try:
        return anyio.run(_interruptible, work, note, leftovers, advice)
    except KeyboardInterrupt:  # a Ctrl-C before the handler was in place: cancelled all the same
        gone = remaining = None
        if leftovers is not None:
            gone, remaining = leftovers.collect(), leftovers.census()
        raise Interrupted(signal.SIGINT, _said(signal.SIGINT, gone, remaining, advice)) from None


async def _interruptible(
    work: Callable[[], Awaitable[T]],
    note: Callable[[str], None],
    leftovers: Leftovers | None,
    advice: str,
) -> T:
    got: list[int] = []  # the signals received, in order
    counted: list[str] = []  # the containers open at the first one
    done: list[T] = []
    async with task_group() as group:
        scope = anyio.CancelScope()
        await group.start(_watch, scope, note, leftovers, got, counted)
        try:
            with scope:
                done.append(await work())
        except Exception:
            if not got:
                raise
            log.debug("the interrupted work ended in an error", exc_info=True)  # the stop's doing
        if got:  # the watcher stays, to answer more signals, until nothing is left
            stopped = remaining = None
            if leftovers is not None:
                with anyio.CancelScope(shield=True):
                    gone = await anyio.to_thread.run_sync(leftovers.collect)
                    remaining = await anyio.to_thread.run_sync(leftovers.census)
                stopped = counted + [name for name in gone if name not in counted]
            raise Interrupted(got[0], _said(got[0], stopped, remaining, advice))
        group.cancel_scope.cancel()  # the watcher
    return done[0]


def _said(signum: int, stopped: list[str] | None, remaining: list[str] | None, advice: str) -> str:
    """The last line: what stopped the work, what was removed, what was not (None: a backend
    that leaves nothing behind)."""
    text = f"interrupted by {signal.Signals(signum).name}: the tasks in flight were stopped"
    if stopped is not None:
        text += f", their {len(stopped)} sandbox container(s) stopped and removed"
    if remaining:
        shown = ", ".join(remaining[:5]) + (", …" if len(remaining) > 5 else "")
        text += f" except {shown} (remove them with `cascade sandbox gc`)"
    return f"{text}; {advice}" if advice else text


async def _watch(
    scope: anyio.CancelScope,
    note: Callable[[str], None],
    leftovers: Leftovers | None,
    got: list[int],
    counted: list[str],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    if threading.current_thread() is not threading.main_thread():
        task_status.started()  # signals reach the main thread only: nothing to watch here
        return
    with anyio.open_signal_receiver(*SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            got.append(signum)
            name = signal.Signals(signum).name
            if len(got) > 1:
                note(f"{name}: still removing the sandboxes of the tasks in flight")
                continue
            if leftovers is not None:  # what is open now: the count the last line gives
                counted[:] = await anyio.to_thread.run_sync(leftovers.census)
            note(f"{name}: stopping the tasks in flight and removing their sandboxes")
            scope.cancel()


def docker_leftovers() -> Leftovers:
    """This process's Docker sandboxes, by the owner label each carries."""
    from sandboxes.cleanup import collect_own, own_containers

    def collect() -> list[str]:
        return [d.removeprefix("container ") for d in collect_own() if d.startswith("container ")]

    return Leftovers(census=own_containers, collect=collect)
