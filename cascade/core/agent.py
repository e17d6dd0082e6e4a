"""An agent attempt: a loop in which the model reads the task, answers with one shell command a
turn, and reads the command's output back, in a sandbox of its own at the base commit, until it
submits, runs out of steps or wall time, or the next call could overspend (asked before every
call). What it leaves is not its answer: the workspace's changes are carried into a fresh
sandbox (`cascade.workspace.carry`) and become an ordinary patch, gated like any other.

Every turn is kept for the proof: the model's message, the command, its exit code and the output
the model was shown. Hidden tests are never in the workspace (the gate copies them in for its
own run only), so no command can read them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from cascade.core.agent_text import (
    Command,
    Malformed,
    Submit,
    observation,
    read_turn,
    refusal,
)
from cascade.errors import ModelError, SandboxError, fault_kind
from cascade.protocols import Model, Sandbox
from cascade.records import Completion, CompletionParams, Message, Usage
from cascade.workflow_config import ToolPolicy


class Meter(Protocol):
    """The money side of each turn: `allow` says why the next call may not be made ("" when it
    may, and then its estimate is held), `paid` settles what was held with what it cost."""

    def allow(self, messages: Sequence[Message]) -> str: ...

    def paid(self, cost_usd: float) -> None: ...


@dataclass
class Turn:
    step: int
    message: str  # the model's whole answer
    command: str | None = None  # None: a malformed turn, or `submit`
    exit_code: int | None = None  # None: not run (refused, malformed, submitted)
    timed_out: bool = False
    output: str = ""  # what the model was shown back
    refused: str = ""
    cost_usd: float = 0.0
    seconds: float = 0.0


def said(turn: Turn, width: int = 90) -> str:
    """One line for a display: the turn's command (its first line, cut) and how it went."""
    if turn.command is None:
        return f"step {turn.step}: submit" if not turn.output else f"step {turn.step}: no command"
    line = turn.command.splitlines()[0] if turn.command.strip() else ""
    line = line if len(line) <= width else line[: width - 1] + "…"
    how = (
        "refused" if turn.refused
        else "killed at its timeout" if turn.timed_out
        else f"exit {turn.exit_code}"
    )  # fmt: skip
    return f"step {turn.step}: {line}  ({how})"


@dataclass
class Trajectory:
    turns: list[Turn] = field(default_factory=list)
    ended: str = ""  # submitted | max_steps | wall_time | budget | provider_error | sandbox
    why: str = ""  # the words for `ended`
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    model: str = ""  # the model that last answered
    fault: ModelError | None = None

    @property
    def steps(self) -> int:
        return len(self.turns)

    def completion(self, text: str) -> Completion:
        """The attempt's answer: `text` (the carried patch) with every turn's usage and cost."""
        return Completion(
            text=text, usage=self.usage, cost_usd=self.cost_usd, latency_s=self.latency_s,
            model=self.model,
        )  # fmt: skip

    def to_json(self) -> str:
        turns = [asdict(turn) for turn in self.turns]
        return json.dumps(
            {"ended": self.ended, "why": self.why, "steps": self.steps, "turns": turns},
            ensure_ascii=False, indent=1,
        )  # fmt: skip

    def last_commands(self, count: int = 3) -> list[str]:
        return [t.command for t in self.turns if t.command is not None][-count:]


@dataclass(frozen=True)
class AgentJob:
    model: Model
    messages: Sequence[Message]  # the agent's system prompt, then the task as a single-shot gets it
    params: CompletionParams  # each turn's is this with its `step`
    tools: ToolPolicy
    sandbox: Sandbox  # the agent's own, at the base commit; closed by the caller
    meter: Meter
    on_turn: Callable[[Turn], None] = lambda _turn: None  # after each turn, for a display
    clock: Callable[[], float] = time.monotonic


async def run_agent(job: AgentJob) -> Trajectory:
    """The loop; never raises for what the model does (a provider fault ends it and is kept)."""
    tools, done = job.tools, Trajectory()
    history = list(job.messages)
    deadline = job.clock() + tools.wall_time
    for step in range(1, tools.max_steps + 1):
        if job.clock() >= deadline:
            return _end(done, "wall_time", f"the wall-time limit of {tools.wall_time:g} s")
        why = job.meter.allow(history)
        if why:
            return _end(done, "budget", f"stopped before turn {step}: {why}")
        began = job.clock()
        # No call outlives the loop's wall time (the rung's timeout bounds it as well).
        timeout = max(1.0, min(job.params.timeout, deadline - began))
        params = job.params.model_copy(update={"step": step, "timeout": timeout})
        try:
            answer = await job.model.complete(history, params)
        except ModelError as exc:
            job.meter.paid(0.0)
            if timeout < job.params.timeout and fault_kind(exc) == "timeout":  # our cut, not a
                return _end(done, "wall_time", f"the wall-time limit of {tools.wall_time:g} s")
            done.fault = exc
            return _end(done, "provider_error", f"turn {step}: {exc}")
        except BaseException:  # cancelled, or a failure after the call: the hold is let go
            job.meter.paid(0.0)
            raise
        job.meter.paid(answer.cost_usd)
        _add(done, answer)
        turn = Turn(step, answer.text, cost_usd=answer.cost_usd)
        done.turns.append(turn)
        history.append(Message(role="assistant", content=answer.text))
        said = read_turn(answer.text)
        if isinstance(said, Submit):
            turn.seconds = round(job.clock() - began, 3)
            job.on_turn(turn)
            return _end(done, "submitted", f"submitted at turn {step}")
        try:
            turn.output = await _act(job, said, turn, deadline)
        except SandboxError as exc:
            return _end(done, "sandbox", f"the sandbox stopped answering at turn {step}: {exc}")
        turn.seconds = round(job.clock() - began, 3)
        job.on_turn(turn)
        history.append(Message(role="user", content=turn.output))
    return _end(done, "max_steps", f"no submit within max_steps = {tools.max_steps}")


async def _act(job: AgentJob, said: Command | Malformed, turn: Turn, deadline: float) -> str:
    """Run the turn's command (unless it is malformed or refused): what the model reads back."""
    if isinstance(said, Malformed):
        return said.feedback
    turn.command = said.text
    turn.refused = refusal(said.text, job.tools.allow)
    if turn.refused:
        return turn.refused
    timeout = max(1.0, min(job.tools.command_timeout, deadline - job.clock()))
    # argv, never a host shell: the command is one argument of the sandbox's own bash, which
    # the sandbox kills at `timeout` with what it started.
    result = await job.sandbox.exec(["bash", "-c", said.text], timeout=timeout)
    turn.exit_code, turn.timed_out = result.exit_code, result.timed_out
    if result.timed_out:
        result = result.model_copy(update={"duration_s": timeout})
    return observation(result, job.tools.output_chars)


def _add(done: Trajectory, answer: Completion) -> None:
    done.usage = Usage(
        prompt_tokens=done.usage.prompt_tokens + answer.usage.prompt_tokens,
        completion_tokens=done.usage.completion_tokens + answer.usage.completion_tokens,
    )
    done.cost_usd += answer.cost_usd
    done.latency_s += answer.latency_s
    done.model = answer.model


def _end(done: Trajectory, ended: str, why: str) -> Trajectory:
    done.ended, done.why = ended, why
    return done
