"""Shows a batch's progress: a live bar on a terminal (done/total, verified, spent, ETA), plain
timestamped lines otherwise (CI logs). Reads batch events; the ledger, not this, is the record."""

from __future__ import annotations

import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from cascade.replay.runner import BatchEvent, Tally


def _eta(tally: Tally) -> str:
    eta = tally.eta_s()
    if eta is None:
        return "ETA …"
    minutes, seconds = divmod(round(eta), 60)
    return f"ETA {minutes}:{seconds:02d}"


def _status(tally: Tally) -> str:
    return (
        f"{tally.done}/{tally.total} done · {tally.verified} verified · "
        f"${tally.spent_usd:.4f} spent · {tally.running} running · {_eta(tally)}"
    )


class BatchProgress:
    def __init__(self, stream: TextIO, *, label: str = "replay") -> None:
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal
        self.label = label
        self.started = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, event: BatchEvent) -> None:
        tally = event.tally
        if self.live:
            self._update(tally)
            if event.kind == "task_done" and event.outcome is not None:
                self._bar_print(_done_line(event))
            elif event.kind in ("budget_stop", "task_node"):
                self._bar_print(event.message)
            return
        if event.kind == "task_done" and event.outcome is not None:
            self.note(f"{_done_line(event)}  [{_status(tally)}]")
        elif event.kind in ("budget_stop", "task_node"):  # a cluster's task: where it runs
            self.note(event.message)

    def note(self, message: str) -> None:
        if self._bar is not None:
            self._bar_print(message)
            return
        stamp = "" if self.live else f"[{time.monotonic() - self.started:6.1f}s] "
        self.console.print(f"{stamp}{message}", markup=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _update(self, tally: Tally) -> None:
        if self._bar is None:
            self._bar = Progress(
                TextColumn(f"{self.label}"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=tally.total, status="")
        assert self._task is not None
        self._bar.update(self._task, completed=tally.done, status=_status(tally))

    def _bar_print(self, message: str) -> None:
        assert self._bar is not None
        self._bar.console.print(message, markup=False)


def _done_line(event: BatchEvent) -> str:
    o = event.outcome
    assert o is not None
    mark = {"verified": "✓", "unproven": "~", "exhausted": "✗"}.get(o.status, "!")
    where = f" on {o.verified_rung}" if o.verified_rung else ""
    error = f" — {o.error.splitlines()[0][:160]}" if o.error else ""
    node = f" on node {event.node}" if event.node else ""
    return (
        f"{mark} {o.task_id}: {o.status}{where}, {o.attempts} attempt(s), "
        f"${o.cost_usd:.4f}, {o.duration_s:.1f}s{node}{error}"
    )
