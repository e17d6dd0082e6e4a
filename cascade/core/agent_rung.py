"""An agent rung's attempt inside the climb: the loop (`cascade.core.agent`) run in a sandbox of
its own, each call first checked against the rung's, the task's and the batch's caps (the
batch's purse holds each call's estimate, as for a single answer), and the files it changed
taken as bytes (`cascade.workspace.carry`). They come back as an ordinary answer with every
turn's usage and cost, and the climb judges them exactly as a single answer's edits: written
into a fresh sandbox, whose own diff is the patch the gate runs on, with the same proof
requirement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

from cascade.config import BudgetConfig, RungConfig
from cascade.core.agent import AgentJob, Meter, Trajectory, Turn, run_agent
from cascade.core.agent_text import system_prompt
from cascade.core.budget import Money, Price, Purse, estimate_cost, over_rung, over_task
from cascade.core.draft import Draft
from cascade.errors import CascadeError, EditError
from cascade.protocols import Model, Sandbox
from cascade.records import AttemptStatus, Completion, CompletionParams, Message, Task
from cascade.workspace.carry import Carried, take_changes
from cascade.workspace.tree import snapshot

COMMAND_CHARS = 200  # of each of the last commands kept on the record


@dataclass
class RungMeter:
    """Checks each turn's call as the policy checks a rung's first one, and holds its estimate
    in the batch's purse until it is paid."""

    rung: RungConfig
    price: Price
    budget: BudgetConfig
    purse: Purse | None
    spent_task: float  # the run's attempts so far
    spent_rung: float  # this stage's attempts on this rung so far
    count: Callable[[str], int]
    spent: float = 0.0  # by this attempt's turns
    held: float = 0.0

    def allow(self, messages: Sequence[Message]) -> str:
        tokens = sum(self.count(m.content) + 4 for m in messages)
        estimate = estimate_cost(self.price, tokens, self.rung.max_tokens)
        committed = self.purse.committed if self.purse else None
        money = Money(self.spent_task + self.spent, self.spent_rung + self.spent, committed)
        why = over_rung(self.rung, money, estimate)
        why = why or over_task(self.budget, self.rung.name, money, estimate)
        if why:
            return why
        if self.purse is not None:
            if not self.purse.hold(estimate):
                return (
                    f"budget: the batch's purse cannot hold the next call's ${estimate:.4f} "
                    f"(committed ${self.purse.committed:.4f} of ${self.purse.limit or 0:.4f})"
                )
            self.held = estimate
        return ""

    def paid(self, cost_usd: float) -> None:
        if self.purse is not None:
            self.purse.settle(self.held, [cost_usd])
        self.held = 0.0
        self.spent += cost_usd


@dataclass(frozen=True)
class Marks:
    """The agent's side of an attempt's record, set on every record of its answer (a re-gated
    one too): mode, steps, how the loop ended, the last commands and the trajectory's blob."""

    steps: int
    ended: str
    last_commands: tuple[str, ...]
    trajectory_sha256: str

    def put(self, draft: Draft) -> None:
        draft.mode, draft.steps, draft.ended = "agent", self.steps, self.ended
        draft.last_commands, draft.trajectory_sha256 = self.last_commands, self.trajectory_sha256


@dataclass(frozen=True)
class AgentWork:
    """What an agent's answer is judged by: its workspace's changes, and its record's marks."""

    carried: Carried
    marks: Marks


@dataclass(frozen=True)
class AgentOutcome:
    """The attempt's answer (None: nothing to judge, and `status`/`words` say why)."""

    trajectory: Trajectory
    marks: Marks
    completion: Completion | None = None
    work: AgentWork | None = None
    status: AttemptStatus = "empty_patch"  # with no completion: or provider_error, edit_error
    words: str = ""  # the feedback (or error) of an attempt with no completion

    def unanswered(self, draft: Draft) -> Draft:
        """The record of an attempt with nothing to judge: what its turns cost, and why."""
        done = self.trajectory
        self.marks.put(draft)
        draft.usage, draft.cost_usd, draft.model_used = done.usage, done.cost_usd, done.model
        draft.latency_s = round(done.latency_s, 3)
        if done.fault is not None:
            draft.error = self.words
        else:
            draft.feedback = self.words
        return draft


async def agent_attempt(
    model: Model,
    rung: RungConfig,
    messages: Sequence[Message],
    params: CompletionParams,
    *,
    task: Task,
    take: Callable[[], Awaitable[Sandbox]],
    meter: Meter,
    put_blob: Callable[[str], str],
    on_turn: Callable[[Turn], None] = lambda _turn: None,
) -> AgentOutcome:
    """Run the loop in a fresh sandbox (holding the run's reproduction test, as the prompt
    says) and take its changes against the snapshot made before the first command. A sandbox
    that cannot be opened raises (the machine's fault, nothing spent yet); once money is spent,
    a failure is recorded with it."""
    tools = rung.tools
    prompt = [Message(role="system", content=system_prompt(tools))]
    prompt += [m for m in messages if m.role != "system"]
    box = await take()
    try:
        if task.reproduction is not None:
            await box.write_files({p: c.encode() for p, c in task.reproduction.files.items()})
        before = await snapshot(box)
        done = await run_agent(AgentJob(model, prompt, params, tools, box, meter, on_turn))
        marks = _marks(done, put_blob)
        if done.fault is not None:
            return AgentOutcome(done, marks, status="provider_error", words=str(done.fault))
        try:
            carried = await take_changes(box, before)
        except EditError as exc:
            return AgentOutcome(done, marks, status="edit_error", words=exc.feedback)
        except CascadeError as exc:
            words = f"the agent's workspace could not be read back ({done.why}): {exc}"
            return AgentOutcome(done, marks, words=words)
    finally:
        with anyio.CancelScope(shield=True):
            await box.close()
    if not carried.files:
        words = f"The agent's workspace has no changes ({done.why})."
        return AgentOutcome(done, marks, words=words)
    text = f"The agent's workspace when its loop ended ({done.why}): {carried.summary()}.\n"
    return AgentOutcome(done, marks, done.completion(text), AgentWork(carried, marks))


def _marks(done: Trajectory, put_blob: Callable[[str], str]) -> Marks:
    last = tuple(
        c if len(c) <= COMMAND_CHARS else c[: COMMAND_CHARS - 1] + "…" for c in done.last_commands()
    )
    return Marks(done.steps, done.ended, last, put_blob(done.to_json()))
