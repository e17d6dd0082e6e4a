"""The loop of one task, and the only place that sequences model -> edits -> patch -> gate ->
proof. The pure policy (`cascade.core.ladder`) decides every step; this loop carries it out,
appends every attempt to the proof log before the next step, and seals the run whatever happens.
A run has up to two stages on the same loop: when nothing named by the issue fails at the base
commit, the reproduce stage climbs its own ladder for a test that does (`core/reproduce.py`);
then the fix stage climbs for a patch that the gate passes and a proving test proves."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from cascade.config import BudgetConfig, PolicyConfig, RungConfig
from cascade.core.attempt import AnswerJudge, Held, Reviewer, Spares
from cascade.core.baseline_store import BaselineStore
from cascade.core.budget import Price, Purse, estimate_cost, with_purse
from cascade.core.context import Context, TokenCounter, build_context, tracked_files
from cascade.core.draft import Draft
from cascade.core.events import Event
from cascade.core.feedback import carried, tried
from cascade.core.gate import Baselines, Gate, target_failures
from cascade.core.history import learned_stats
from cascade.core.ladder import Plan, Step, Stop, Tried, decision, next_step, start_index
from cascade.core.opening import open_with_baseline, sandbox_label
from cascade.core.policy import PolicyRaiser, choose_workflow, said
from cascade.core.prices import rung_price
from cascade.core.prompt import build_messages, render
from cascade.core.proving import NOTHING_PROVES, combined, excluded_models, proving_tests
from cascade.core.reproduce import ReproduceStage, reproduction_note
from cascade.core.routing import TaskFacts, task_facts
from cascade.core.samples import draw
from cascade.core.taskgroups import task_group
from cascade.core.workflows import Workflow, default_workflow
from cascade.errors import CascadeError, ModelError, UsageError, fault_kind
from cascade.proof.log import ProofLog
from cascade.proof.outcome import sealed_outcome
from cascade.proof.run_folder import RunFolder
from cascade.protocols import Model, Sandbox, SandboxOpener
from cascade.records import (
    Attempt,
    AttemptStatus,
    Completion,
    CompletionParams,
    Message,
    Patch,
    ProvingTest,
    Role,
    RunOutcome,
    Task,
    WorkflowChoice,
)

log = logging.getLogger(__name__)

Answer = tuple[Completion, int, bool]  # (the answer, its sample number, its cost recorded yet)


@dataclass
class Engine:
    ladder: Sequence[RungConfig]
    models: Mapping[str, Model]  # rung name -> model
    gate: Gate
    open_sandbox: SandboxOpener
    counter: Callable[[RungConfig], TokenCounter]
    feedback_chars: int = 4000
    on_event: Callable[[Event], None] = lambda _event: None
    sleep: Callable[[float], Any] = field(default=anyio.sleep)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    # `[[workflows]]`, built, in matching order; a task none matches runs as the default
    # workflow: this engine's own ladder, gate, budget and reproduce stage.
    workflows: tuple[Workflow, ...] = ()
    prices: Callable[[RungConfig], Price] = rung_price  # price and context window of a rung
    purse: Purse | None = None  # money shared by the tasks of a batch
    runs_dir: Path | None = None  # past runs for learned skip (default: beside this run)
    start_at: str | None = None  # `--start-at`: a human override of the start rung
    reproduce: ReproduceStage | None = None  # the test-first stage (None: never)
    baseline_store: BaselineStore | None = None  # baselines kept across runs

    def __post_init__(self) -> None:
        # Checked when the run's engine is built, so a bad --start-at is a usage error before
        # the issue is read or a proof log exists.
        start_index(self.ladder, self.start_at)

    async def run(self, task: Task, proof: ProofLog) -> RunOutcome:
        """Climb the ladder for `task`, appending every attempt to `proof`; sealed whatever
        happens (an infrastructure error is an outcome, not an exception)."""
        return await _Run(self, task, proof, self.start_at).go()

    def for_workflow(self, flow: Workflow) -> Engine:
        """This engine with the workflow's ladder, gate, budget and reproduce stage (a bad
        `--start-at` for its ladder is a UsageError here)."""
        return replace(
            self, ladder=flow.ladder, gate=flow.gate, budget=flow.budget, reproduce=flow.reproduce
        )


class _Run:
    """The state of one run; it lives as long as `Engine.run`."""

    def __init__(self, engine: Engine, task: Task, proof: ProofLog, start_at: str | None) -> None:
        self.e, self.task, self.proof, self.start_at = engine, task, proof, start_at
        self.attempts: list[Attempt] = []
        self.history: list[Tried] = []
        self.contexts: dict[int, Context] = {}
        self.diffs: dict[str, str] = {}  # patch sha256 -> diff, for carry_patch
        self.pending: list[Answer] = []  # answers of the current round not gated yet
        self.drawn: Draft | None = None  # the round they were drawn in
        self.notes: list[str] = []  # infrastructure retries before the first attempt
        self.patch: Patch | None = None
        self.started = time.monotonic()
        self.sandbox_label = ""
        self.sandbox: Sandbox | None = None  # the untouched one: baselines, context
        self.baselines: Baselines = {}
        self.failures: Mapping[str, str] = {}
        self.paths: list[str] = []
        self.facts = TaskFacts()
        self.role: Role = "fix"
        self.stage_start = 0  # index into `attempts` where the current stage began
        self.base_sha256 = ""  # the task's named tests at the base commit, as a blob
        self.proving: tuple[ProvingTest, ...] = ()
        self.winner: tuple[Patch, Task] | None = None  # the accepted reproduction, the task with it
        self.spares = Spares(engine.open_sandbox, Path(task.repo), task.base_commit)
        e = engine  # the default workflow, until `_choose` says which one is the task's
        self.flow = default_workflow(e.gate, tuple(e.ladder), e.budget, e.reproduce)
        self.choice: WorkflowChoice | None = None  # said on the run's first attempt
        self.raiser = PolicyRaiser(engine.workflows, self.flow)

    async def go(self) -> RunOutcome:
        stop, usage = Stop("error", ""), False
        try:
            await self._choose()
            sandbox = await self._open()
            try:
                stop = await self._stages(sandbox)
            finally:
                with anyio.CancelScope(shield=True):
                    await self.spares.close()
                    await sandbox.close()
        except CascadeError as exc:  # a UsageError (a gate's tool as configured) exits 2
            stop, usage = Stop("error", str(exc)), isinstance(exc, UsageError)
        duration = time.monotonic() - self.started
        outcome = sealed_outcome(
            RunFolder(self.proof.run_dir), self.task.issue.id, self.task.base_commit,
            stop.status, stop.reason, self.attempts, self.patch, duration_s=duration,
            usage_error=usage, workflow=self.flow.name,
        )  # fmt: skip
        ladder = [r.name for r in self.e.ladder]
        self.proof.seal(outcome, self.attempts, self.patch, self.task.issue.title, ladder)
        self.e.on_event(Event("done", stop.status, outcome=outcome))
        return outcome

    async def _choose(self) -> None:
        """The task's workflow, from what the issue says and names, before any sandbox or model:
        the rest of the run uses its ladder, gate, budget and reproduce stage."""
        flow, self.choice = await choose_workflow(
            self.e.workflows, self.flow, self.task, self.start_at
        )
        self.raiser = PolicyRaiser(self.e.workflows, flow, default=self.flow)
        if flow is not self.flow:
            self.flow, self.e = flow, self.e.for_workflow(flow)
        self.e.on_event(Event("workflow", said(self.choice)))

    async def _open(self) -> Sandbox:
        e = self.e
        sandbox, self.baselines = await open_with_baseline(
            self.task, open_sandbox=e.open_sandbox, gate=e.gate, policy=e.policy, sleep=e.sleep,
            on_event=e.on_event, notes=self.notes, store=e.baseline_store,
        )  # fmt: skip
        return sandbox

    async def _stages(self, sandbox: Sandbox) -> Stop:
        """The reproduce stage when the task needs a proving test, then the fix stage."""
        for note in self.task.issue.notes:  # what the source set aside (an untrusted block)
            self.notes.append(note)
            self.e.on_event(Event("baseline", note))
        self.sandbox_label = sandbox_label(sandbox)
        self.failures = target_failures(self.baselines, self.task.issue.tests)
        self.paths = await tracked_files(sandbox)
        self.facts = task_facts(self.task, self.failures, self.paths)
        self.sandbox = sandbox
        raised = self.raiser.raise_run(self.facts.paths, "the target tests' tracebacks touch")
        if raised:
            self.flow = self.raiser.raised_flow(self.flow)
            self.e = self.e.for_workflow(self.flow)
            self.baselines = await self.e.gate.baseline(sandbox, self.task)
            self.notes.append(raised)
            self.e.on_event(Event("baseline", raised))
        await self._prove(sandbox)
        stage = self.e.reproduce
        if stage is not None and stage.wanted(self.proving, self.e.gate.can_prove):
            self._begin("reproduce", stage.announce(self.proving))
            stop = await self._climb(sandbox, stage.ladder)
            if stop.status in ("error", "budget_exhausted"):
                return stop
            if self.winner is not None:
                await self._accept(sandbox)
            self._begin("fix", reproduction_note(self.task, stop, self.proving))
        elif not self.proving:
            self._begin("fix", "nothing can prove a fix: " + NOTHING_PROVES.split(": ", 1)[1])
        return await self._climb(sandbox, tuple(self.e.ladder))

    def _begin(self, role: Role, note: str) -> None:
        self.role, self.stage_start, self.history = role, len(self.attempts), []
        if note:
            self.notes.append(note)
            self.e.on_event(Event("baseline", note))

    async def _prove(self, sandbox: Sandbox) -> None:
        """The task's named tests at the base commit, and which of them prove a fix."""
        base = await self.e.gate.base_outcomes(sandbox, self.task)
        self.base_sha256 = self.proof.put_blob(json.dumps(base, sort_keys=True, indent=1))
        self.proving = proving_tests(self.task, base)

    async def _accept(self, sandbox: Sandbox) -> None:
        """The accepted reproduction joins the task: the gate's baselines are asked for again (an
        evaluator whose baseline depends on it says so by its key; the built-ins' do not, they
        judge new tests as targets) and the base outcomes are taken again with it in place."""
        assert self.winner is not None
        self.task = self.winner[1]
        self.baselines = await self.e.gate.baseline(sandbox, self.task)
        await self._prove(sandbox)

    async def _climb(self, sandbox: Sandbox, ladder: tuple[RungConfig, ...]) -> Stop:
        prices = {r.name: self.e.prices(r) for r in ladder}
        fix = self.role == "fix"
        skips = {}
        if fix:
            runs_dir = self.e.runs_dir or self.proof.run_dir.parent
            skips = await learned_stats(
                self.e.policy.learned_skip, runs_dir, self.proof.run_id, self.task.issue.labels
            )
        independent = self.e.reproduce is not None and self.e.reproduce.independent
        plan = Plan(
            ladder, self.e.policy, with_purse(self.e.budget, self.e.purse),
            self.flow.lane if fix else None, self.start_at if fix else None,
            {n: p.max_input_tokens for n, p in prices.items()}, skips,
            spent_before=sum(a.cost_usd for a in self.attempts[: self.stage_start]),
            exclude_models=excluded_models(self.proving, independent) if fix else frozenset(),
        )  # fmt: skip
        while True:
            prompts = {r.name: await self._prompt(sandbox, r) for r in ladder}
            estimates = {
                r.name: estimate_cost(prices[r.name], prompts[r.name][1], r.max_tokens)
                for r in ladder
            }
            committed = self.e.purse.committed if self.e.purse else None
            step = next_step(plan, self.facts, self.history, estimates, committed)
            if isinstance(step, Stop):
                # Answers paid for but never recorded (a round's later samples) are not lost.
                self.pending = [answer for answer in self.pending if not answer[2]]
                if self.pending and self.drawn is not None:
                    self._cancel(self.drawn, f"not gated: the run stopped ({step.reason})")
                return step
            await self._step(step, *prompts[step.rung.name], prices[step.rung.name].local)

    async def _step(self, step: Step, messages: list[Message], tokens: int, local: bool) -> None:
        """Carry out one step: wait if asked, draw the rung's samples (or reuse the answers an
        infrastructure fault interrupted), then gate them one by one."""
        rung = step.rung
        said = decision(step, self.facts, tokens, self.notes, local=local)
        if not self.attempts and self.choice is not None:
            said = said.model_copy(update={"workflow": self.choice})
        base = Draft(
            rung=rung.name, model=rung.model, attempt=step.attempt, retry=step.retry,
            reason=step.reason, prompt_sha256=self.proof.put_blob(render(messages)),
            context_files=tuple(f.path for f in self.contexts[rung.context_tokens].files),
            decision=said,
            role=self.role, baseline_sha256=self.base_sha256 if self.role == "fix" else "",
            base_commit=self.task.base_commit, gate_sha256=self._judging_gate().digest,
        )  # fmt: skip
        self.notes = []  # said once, on the first attempt after them
        what = f"#{len(self.attempts) + 1} {rung.name} ({rung.model}) attempt {step.attempt}"
        self.e.on_event(Event("attempt", what + (f" retry {step.retry}" if step.retry else "")))
        if step.kind != "infra_retry":
            if step.wait_s:
                await self.e.sleep(step.wait_s)
            base.began = time.monotonic()
            async with task_group() as group:  # the answer's sandbox opens while it is drawn
                group.start_soon(self.spares.prefetch)
                self.pending, stopped = await self._draw(rung, step, messages, base)
                self.drawn = base
            if stopped:
                self._cancel(base, "not gated: a provider fault stops the run")
        while self.pending:
            completion, sample, charged = self.pending[0]
            draft = base.for_sample(sample).answered(completion, charged, self.proof.put_blob)
            judged = await self._judge()(completion.text, draft, len(self.attempts) + 1)
            status, patch = judged.status, judged.patch
            if patch is not None:
                self.diffs[patch.sha256] = patch.diff
            self.pending[0] = (completion, sample, True)
            won = status in ("verified", "accepted")
            if won:  # the round is decided: the winner is recorded last
                self.pending.pop(0)
                self._cancel(base, f"not gated: sample {sample} of this round {status} first")
            self._record(status, draft)
            if won and patch is not None and judged.reproduced is not None:
                self.winner = (patch, judged.reproduced)
            elif won and patch is not None:
                repro = self.winner[0] if self.winner else None
                self.patch = combined(repro, patch) if repro else patch
            if status == "infra_error":
                return  # the policy decides: gate the same answers again, or stop
            if not won:
                self.pending.pop(0)

    def _cancel(self, base: Draft, why: str) -> None:
        """Record the answers of a decided round that were never gated."""
        for completion, sample, charged in self.pending:
            draft = base.for_sample(sample, timed=False)
            draft.error = why
            self._record("cancelled", draft.answered(completion, charged, self.proof.put_blob))
        self.pending = []

    async def _draw(
        self, rung: RungConfig, step: Step, messages: list[Message], base: Draft
    ) -> tuple[list[Answer], bool]:
        """The rung's samples; faults are recorded at once. Returns the answers, and whether a
        fault stops the run."""
        params = CompletionParams(
            temperature=rung.temperature, max_tokens=rung.max_tokens, timeout=rung.timeout,
            task_id=self.task.issue.id, attempt=step.attempt, role=self.role,
        )  # fmt: skip
        stage = self.e.reproduce
        models = stage.models if self.role == "reproduce" and stage else self.e.models
        model, purse = models[rung.name], self.e.purse
        results = await draw(
            model, messages, params, rung.samples, purse=purse, estimate=step.estimate
        )
        faults = [(i, r) for i, r in enumerate(results, 1) if isinstance(r, ModelError)]
        for i, fault in faults:
            wait = f" [Retry-After {fault.retry_after:g}s]" if fault.retry_after else ""
            draft = base.for_sample(i, timed=False)
            draft.error = f"{fault}{wait}"
            self._record("provider_error", draft, fault)
        answers = [(r, i, False) for i, r in enumerate(results, 1) if isinstance(r, Completion)]
        return answers, any(f.action == "stop" for _, f in faults)

    def _judging_gate(self) -> Gate:
        stage = self.e.reproduce
        return stage.gate if self.role == "reproduce" and stage else self.e.gate

    def _judge(self) -> AnswerJudge:
        return AnswerJudge(
            self.task, self.role, self.e.gate, self.baselines, self.proving, self.spares.take,
            self.proof.put_blob, self.e.feedback_chars, self.e.reproduce,
            policy=self._policy_for, reproduced=self.stage_start > 0,
            reviewer=Reviewer(self.e.models, tuple(self.e.ladder), self.e.purse),
        )  # fmt: skip

    async def _policy_for(self, paths: Sequence[str]) -> Held:
        """What a fix patch touching `paths` is held to (the run's gate and policy, or raised by
        a stricter workflow's, whose baselines are taken on the untouched sandbox)."""
        assert self.sandbox is not None
        own = Held(self.e.gate, self.baselines, self.raiser.judging, self.proving, self.base_sha256)
        return await self.raiser.hold(paths, own, self.sandbox, self.task, self.proof.put_blob)

    def _record(
        self, status: AttemptStatus, draft: Draft, fault: ModelError | None = None
    ) -> Attempt:
        """Append one attempt to the proof (before anything else happens) and the history."""
        record = draft.record(
            self.proof.run_id, self.task.issue.id, len(self.attempts) + 1, status,
            self.sandbox_label, fault_kind(fault) if fault else None,
        )  # fmt: skip
        self.proof.append(record)
        self.attempts.append(record)
        self.history.append(tried(record, fault))
        self.e.on_event(Event("attempt_done", status, attempt=record))
        return record

    async def _prompt(self, sandbox: Sandbox, rung: RungConfig) -> tuple[list[Message], int]:
        """The messages `rung` would get now, and their token count for the estimate."""
        budget = rung.context_tokens
        if budget not in self.contexts:
            self.contexts[budget] = await build_context(
                sandbox, self.task, self.failures, budget=budget, count=self.e.counter(rung),
                paths=self.paths,
            )  # fmt: skip
        policy = self.e.policy
        diffs = self.diffs if policy.carry_patch else None
        stage = self.attempts[self.stage_start :]
        feedback = carried(stage, policy.carry_feedback, self.e.feedback_chars, diffs)
        messages = build_messages(
            self.task, self.contexts[budget], self.failures, feedback, self.role
        )
        count = self.e.counter(rung)
        return messages, sum(count(m.content) + 4 for m in messages)  # +4: role and framing
