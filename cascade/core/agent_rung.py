"""An agent rung's attempt inside the climb: the loop (`cascade.core.agent`) run in a sandbox of
its own, each call first checked against the rung's, the task's and the batch's caps (the
batch's purse holds each call's estimate, as for a single answer), and the workspace it leaves
carried into a fresh sandbox as a patch. The patch comes back as an ordinary answer (a fenced
diff) with every turn's usage and cost, so the climb judges it exactly as a single answer: in
another fresh sandbox, by the gate, with the same proof requirement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

from cascade.config import BudgetConfig, RungConfig
from cascade.core.agent import AgentJob, Trajectory, Turn, run_agent
from cascade.core.agent_text import fenced_diff, system_prompt
from cascade.core.budget import Money, Price, Purse, estimate_cost, over_rung, over_task
from cascade.core.draft import Draft
from cascade.errors import CascadeError, EditError
from cascade.protocols import Model, Sandbox
from cascade.records import AttemptStatus, Completion, CompletionParams, Message
from cascade.workspace.carry import carried_patch

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
class AgentOutcome:
    """The attempt's answer (None: nothing to judge, and `status`/`words` say why)."""

    trajectory: Trajectory
    completion: Completion | None
    status: AttemptStatus = "empty_patch"  # with no completion: or provider_error, edit_error
    words: str = ""  # the feedback (or error) of an attempt with no completion


async def agent_attempt(
    model: Model,
    rung: RungConfig,
    messages: Sequence[Message],
    params: CompletionParams,
    *,
    take: Callable[[], Awaitable[Sandbox]],
    meter: RungMeter,
    on_turn: Callable[[Turn], None] = lambda _turn: None,
) -> AgentOutcome:
    """Run the loop in a fresh sandbox and carry its changes into another. A sandbox that cannot
    be opened raises (the machine's fault); one the agent's commands broke is the answer's."""
    tools = rung.tools
    prompt = [Message(role="system", content=system_prompt(tools.max_steps, tools.command_timeout))]
    prompt += [m for m in messages if m.role != "system"]
    box = await take()
    try:
        done = await run_agent(AgentJob(model, prompt, params, tools, box, meter, on_turn))
        if done.fault is not None:
            return AgentOutcome(done, None, "provider_error", str(done.fault))
        fresh = await take()
        try:
            patch = await carried_patch(box, fresh)
        except EditError as exc:
            return AgentOutcome(done, None, "edit_error", exc.feedback)
        except CascadeError as exc:
            words = f"the agent's workspace could not be read back ({done.why}): {exc}"
            return AgentOutcome(done, None, "empty_patch", words)
        finally:
            with anyio.CancelScope(shield=True):
                await fresh.close()
    finally:
        with anyio.CancelScope(shield=True):
            await box.close()
    if not patch.diff.strip():
        words = f"The agent's workspace has no changes ({done.why})."
        return AgentOutcome(done, None, "empty_patch", words)
    return AgentOutcome(done, done.completion(fenced_diff(patch.diff)))


def described(draft: Draft, done: Trajectory, put_blob: Callable[[str], str]) -> None:
    """The agent's side of the record: mode, steps, how it ended, its last commands, and the
    whole trajectory as a blob."""
    draft.mode = "agent"
    draft.steps = done.steps
    draft.ended = done.ended
    draft.last_commands = tuple(
        c if len(c) <= COMMAND_CHARS else c[: COMMAND_CHARS - 1] + "…" for c in done.last_commands()
    )
    draft.trajectory_sha256 = put_blob(done.to_json())
