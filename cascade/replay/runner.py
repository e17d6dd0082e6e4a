"""Batch replay: each issue of a backlog run as `cascade fix` runs one (`IssueRunner`), N at a time,
each into its own proof run inside a batch folder whose ledger makes the batch resumable. One
task's failure becomes that task's error record; its siblings go on."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import anyio

from cascade.core.budget import Purse
from cascade.core.engine import Engine
from cascade.core.events import Event
from cascade.proof.outcome import error_outcome
from cascade.proof.run_folder import RunFolder
from cascade.records import Issue, RunOutcome
from cascade.replay.batch import LEDGER_FILE, RUNS_DIR, BatchDir
from cascade.replay.ledger import LedgerState, read_ledger
from cascade.replay.limits import SandboxSlot, limited_models
from cascade.wiring.run_issue import IssueRunner, describe

log = logging.getLogger(__name__)

OnCost = Callable[[float], None]  # an attempt's cost, as it is paid
OnNode = Callable[[str], None]  # the cluster node a task runs on, once known
BatchEventKind = Literal["task_start", "task_node", "task_done", "budget_stop"]


@dataclass(frozen=True)
class BatchPlan:
    issues: Sequence[Issue]  # this shard's issues, in backlog order
    repo: Path
    concurrency: int = 1  # tasks in flight
    model_concurrency: int | None = None  # model calls in flight (default: concurrency)
    sandbox_concurrency: int | None = None  # sandboxes open (default: concurrency)
    max_cost_usd: float | None = None  # no new task starts once this much is spent
    # Spent by the command's other batch folders (a batch and its shadows share the cap).
    spent_elsewhere: float = 0.0
    retry_errors: bool = False  # run again the tasks whose run ended in an infrastructure error


@dataclass
class Tally:
    """The batch so far, for a progress display; tasks finished by earlier sessions count."""

    total: int
    done: int = 0
    verified: int = 0
    unverified: int = 0  # exhausted, or stopped by a budget
    errors: int = 0
    spent_usd: float = 0.0
    running: int = 0
    done_here: int = 0  # finished in this session (for the ETA)
    started: float = field(default_factory=time.monotonic)

    def count(self, outcome: RunOutcome) -> None:
        self.done += 1
        if outcome.status == "verified":
            self.verified += 1
        elif outcome.status == "error":
            self.errors += 1
        else:
            self.unverified += 1

    def eta_s(self) -> float | None:
        """Seconds left at this session's pace; None until a task has finished."""
        if not self.done_here:
            return None
        remaining = self.total - self.done
        elapsed = time.monotonic() - self.started
        return elapsed / self.done_here * remaining if remaining > 0 else 0.0


@dataclass(frozen=True)
class BatchEvent:
    kind: BatchEventKind
    message: str
    tally: Tally  # a snapshot
    task: str = ""
    outcome: RunOutcome | None = None
    node: str = ""  # the cluster node that runs the task ("" in this process)


@dataclass(frozen=True)
class BatchResult:
    tally: Tally
    not_started: int = 0  # left by --max-cost-usd
    budget_stopped: bool = False


class Executor(Protocol):
    """Where a batch's tasks run: this process (`LocalExecutor`) or the nodes of a cluster
    (`cascade.replay.cluster`). The batch runner keeps the ledger; an executor runs one task
    into the run folder `run_id` of the batch and returns its sealed outcome, calling
    `on_cost` with each attempt's cost as it is paid and `on_node` once it knows where the task
    runs."""

    async def run_task(
        self,
        issue: Issue,
        run_id: str,
        on_cost: OnCost,
        on_node: OnNode,
    ) -> RunOutcome: ...


class LocalExecutor:
    """Tasks run in this process: one purse, and model calls and sandboxes behind the plan's
    limiters."""

    def __init__(self, runner: IssueRunner, plan: BatchPlan, spent_before: float) -> None:
        self.runner = runner  # its base commit and runs folder are the batch's
        n = plan.concurrency
        self._model_limiter = anyio.CapacityLimiter(plan.model_concurrency or n)
        self._sandbox_limiter = anyio.CapacityLimiter(plan.sandbox_concurrency or n)
        # One purse for the whole batch, so `[budget] batch_max_cost_usd` caps all its tasks
        # together; what earlier sessions spent counts against it too.
        self._purse = Purse(runner.parts.loaded.config.budget.batch_max_cost_usd)
        self._purse.spent = spent_before

    async def run_task(
        self,
        issue: Issue,
        run_id: str,
        on_cost: OnCost,
        on_node: OnNode,
    ) -> RunOutcome:
        def on_event(event: Event) -> None:
            if event.kind == "attempt_done" and event.attempt is not None:
                on_cost(event.attempt.cost_usd)

        slot = SandboxSlot(self._sandbox_limiter)
        purse = self._purse

        def limited(engine: Engine) -> Engine:
            stage = engine.reproduce
            if stage is not None:
                models = limited_models(stage.models, self._model_limiter)
                stage = dataclasses.replace(stage, models=models)
            return dataclasses.replace(
                engine,
                models=limited_models(engine.models, self._model_limiter),
                open_sandbox=slot.opener(engine.open_sandbox),
                purse=purse,
                reproduce=stage,
            )

        try:
            run = self.runner.new_run(run_id=run_id, on_event=on_event, adapt=limited)
            return await run(issue)
        finally:
            slot.release()


class BatchRunner:
    """Runs the plan's unfinished tasks. Use one runner per `run`."""

    def __init__(
        self,
        runner: IssueRunner,
        batch: BatchDir,
        plan: BatchPlan,
        on_event: Callable[[BatchEvent], None] = lambda _event: None,
        executor: Callable[[float], Executor] | None = None,
    ) -> None:
        self.runner = runner  # its base commit and runs folder are the batch's
        self.batch = batch
        self.plan = plan
        self.on_event = on_event
        self.tally = Tally(total=len(plan.issues))
        self._pending: deque[Issue] = deque()
        self._stopped = False
        # Given what earlier sessions spent, the executor (default: this process).
        self._executor = executor or (lambda spent: LocalExecutor(runner, plan, spent))

    async def run(self) -> BatchResult:
        state = self.batch.state
        self.tally.spent_usd = spent_before = _spent_before(self.batch)
        executor = self._executor(spent_before)
        for issue in self.plan.issues:
            done = state.task(issue.id).done
            if done is not None and done.outcome is not None:
                if not (self.plan.retry_errors and done.outcome.status == "error"):
                    self.tally.count(done.outcome)
                    continue
                self.batch.retry(issue.id, done.run_id)
            self._pending.append(issue)
        self.batch.plan([i.id for i in self.plan.issues])
        workers = min(max(self.plan.concurrency, 1), len(self._pending))
        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(self._worker, executor)
        left = len(self._pending)
        if self._stopped and self.plan.max_cost_usd is not None:
            spent = self.tally.spent_usd + self.plan.spent_elsewhere
            self.batch.budget_stop(spent, left, self.plan.max_cost_usd)
            self._emit("budget_stop", f"budget spent: {left} task(s) not started")
        return BatchResult(_snapshot(self.tally), left, self._stopped)

    def _next(self) -> Issue | None:
        limit = self.plan.max_cost_usd
        spent = self.tally.spent_usd + self.plan.spent_elsewhere
        if self._pending and limit is not None and spent >= limit:
            self._stopped = True
        if self._stopped or not self._pending:
            return None
        return self._pending.popleft()

    async def _worker(self, executor: Executor) -> None:
        while (issue := self._next()) is not None:
            await self._one(issue, executor)

    async def _one(self, issue: Issue, executor: Executor) -> None:
        run_id = self.batch.start(issue)
        self.tally.running += 1
        self._emit("task_start", f"{issue.id}: started", task=issue.id)
        live = 0.0  # attempt costs seen so far, counted toward the budget as they happen
        where = ""

        def on_cost(cost: float) -> None:
            nonlocal live
            live += cost
            self.tally.spent_usd += cost

        def on_node(node: str) -> None:
            nonlocal where
            where = node
            self._emit("task_node", f"{issue.id}: running on {node}", task=issue.id, node=node)

        started = time.monotonic()
        try:
            outcome = await executor.run_task(issue, run_id, on_cost, on_node)
        except Exception as exc:  # one task's bug or broken run is that task's error record
            _warn(issue.id, exc)
            outcome = self._failed(issue, run_id, exc, time.monotonic() - started)
        self.tally.spent_usd += outcome.cost_usd - live  # the sealed outcome is the account
        self.batch.done(issue.id, outcome, issue.labels, node=where)
        self.tally.running -= 1
        self.tally.done_here += 1
        self.tally.count(outcome)
        self._emit(
            "task_done", f"{issue.id}: {outcome.status}", task=issue.id, outcome=outcome, node=where
        )

    def _failed(self, issue: Issue, run_id: str, exc: Exception, duration: float) -> RunOutcome:
        run = RunFolder(self.batch.runs_dir / run_id)
        commit = self.batch.header.base_commit
        return error_outcome(run, issue.id, commit, describe(exc), duration_s=duration)

    def _emit(
        self,
        kind: BatchEventKind,
        message: str,
        task: str = "",
        outcome: RunOutcome | None = None,
        node: str = "",
    ) -> None:
        self.on_event(BatchEvent(kind, message, _snapshot(self.tally), task, outcome, node))


def _warn(task_id: str, exc: Exception) -> None:
    # The traceback only at debug level: the task's error record already names the exception.
    log.warning("task %s failed: %r", task_id, exc, exc_info=log.isEnabledFor(logging.DEBUG))


def _snapshot(tally: Tally) -> Tally:
    return dataclasses.replace(tally)


def _spent_before(batch: BatchDir) -> float:
    """What earlier sessions spent: finished tasks, and the complete attempts of aborted runs."""
    return spent_in(batch.state, batch.runs_dir)


def folder_spent(folder: Path) -> float:
    """What a batch folder's ledger says was spent (0 for a folder not begun)."""
    if not (folder / LEDGER_FILE).is_file():
        return 0.0
    return spent_in(read_ledger(folder / LEDGER_FILE), folder / RUNS_DIR)


def spent_in(state: LedgerState, runs_dir: Path) -> float:
    """What a batch folder's ledger says was spent (its finished tasks and aborted runs)."""
    total = 0.0
    for task in state.tasks.values():
        if task.done is not None and task.done.outcome is not None:
            total += task.done.outcome.cost_usd
        total += sum(RunFolder(runs_dir / run_id).spent_usd() for run_id in task.aborted)
    return total
