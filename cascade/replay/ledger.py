"""The batch ledger: an append-only JSONL of what a replay did (a task started, finished, was
aborted; the budget stopped the batch), fsynced line by line so a SIGKILL loses at most the line
being written. Torn lines are repaired, never hidden: the writer starts a fresh line after an
unterminated tail, and readers drop only what does not parse."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from cascade.errors import InfraError
from cascade.proof.run_folder import read_jsonl
from cascade.records import SCHEMA_VERSION, RunOutcome

LedgerEvent = Literal["plan", "start", "done", "aborted", "budget_stop", "retry"]


class LedgerLine(BaseModel):
    """One line of ledger.jsonl."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    event: LedgerEvent
    at: str = ""
    task: str = ""
    run_id: str = ""
    labels: tuple[str, ...] = ()
    outcome: RunOutcome | None = None  # done
    recovered: bool = False  # done: read back from a sealed run whose done line was lost
    node: str | None = None  # done: the cluster node that ran it (`--executor ray`)
    reason: str = ""  # aborted, budget_stop
    spent_usd: float = 0.0  # budget_stop
    not_started: int = 0  # budget_stop
    tasks: tuple[str, ...] = ()  # plan: the ids this session set out to finish


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JsonlWriter:
    """Appends one JSON object a line, each flushed and fsynced before `append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repaired = self._repair()

    def _repair(self) -> bool:
        """Terminate a torn last line, so the next record starts on a line of its own; the
        fragment stays in the file (readers skip it) — nothing written is ever deleted."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                if handle.tell() == 0:
                    return False
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) == b"\n":
                    return False
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise InfraError(f"cannot read {self.path}: {exc}") from exc
        self._write(b"\n")
        return True

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        self._write(line.encode("utf-8") + b"\n")

    def _write(self, data: bytes) -> None:
        try:
            # One write call per record: a kill leaves a prefix of it at worst, never a mix.
            with self.path.open("ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise InfraError(f"cannot append to {self.path}: {exc}") from exc


@dataclass
class TaskState:
    """What the ledger says of one task."""

    runs: list[str] = field(default_factory=list)  # run ids started, in order
    done: LedgerLine | None = None
    aborted: set[str] = field(default_factory=set)

    @property
    def open_runs(self) -> list[str]:
        """Runs started but neither finished nor marked aborted: a previous process died."""
        finished = {self.done.run_id} if self.done else set()
        return [r for r in self.runs if r not in self.aborted and r not in finished]


@dataclass
class LedgerState:
    tasks: dict[str, TaskState] = field(default_factory=dict)
    budget_stops: list[LedgerLine] = field(default_factory=list)
    plan: tuple[str, ...] = ()  # the latest session's plan
    finished: list[str] = field(default_factory=list)  # task ids in the order they finished
    bad_lines: int = 0
    torn_tail: bool = False

    def task(self, task_id: str) -> TaskState:
        return self.tasks.setdefault(task_id, TaskState())

    def add(self, line: LedgerLine) -> None:
        if line.event == "budget_stop":
            self.budget_stops.append(line)
            return
        if line.event == "plan":
            self.plan = line.tasks
            self.budget_stops.clear()  # a new session: an earlier stop no longer holds
            return
        state = self.task(line.task)
        if line.event == "start" and line.run_id not in state.runs:
            state.runs.append(line.run_id)
        elif line.event == "done" and state.done is None:
            state.done = line  # the first done wins; a task is never finished twice
            self.finished.append(line.task)
        elif line.event == "aborted":
            state.aborted.add(line.run_id)
        elif line.event == "retry" and state.done is not None:
            # `replay --retry-errors`: the errored run is superseded; it stays on record (and
            # in the spend) as an aborted run, and the task's next done line finishes it.
            state.aborted.add(state.done.run_id)
            state.done = None
            self.finished.remove(line.task)


def fold(lines: Iterable[LedgerLine]) -> LedgerState:
    state = LedgerState()
    for line in lines:
        state.add(line)
    return state


def read_ledger(path: Path) -> LedgerState:
    """The ledger's state; lines that are not ledger records count as bad lines."""
    read = read_jsonl(path)
    lines: list[LedgerLine] = []
    bad = read.bad_lines
    for record in read.records:
        try:
            lines.append(LedgerLine.model_validate(record))
        except ValidationError:
            bad += 1
    state = fold(lines)
    state.bad_lines, state.torn_tail = bad, read.torn_tail
    return state
