"""A run's state and the climb of one stage's ladder: the only place that sequences model ->
edits -> patch -> gate -> proof. The pure policy (`cascade.core.ladder`) decides every step;
this carries it out and appends every attempt to the proof log before the next step. The stages
around it (what is known of the base commit first, reproduce, fix) are `cascade.core.loop`."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.config import RungConfig
from cascade.core import preload
from cascade.core.agent import said
from cascade.core.agent_rung import AgentWork, RungMeter, agent_attempt
from cascade.core.attempt import AnswerJudge, Held, Reviewer, Spares
from cascade.core.budget import estimate_cost, with_purse
from cascade.core.context import Context, build_context
from cascade.core.draft import Draft
from cascade.core.events import Event
from cascade.core.feedback import carried, tried
from cascade.core.gate import Baselines, Gate
from cascade.core.history import learned_stats
from cascade.core.ladder import Plan, Step, Stop, Tried, decision, next_step
from cascade.core.localise import Localisation
from cascade.core.opening import Underway
from cascade.core.policy import PolicyRaiser
from cascade.core.prompt import build_messages, render
from cascade.core.proving import combined, excluded_models
from cascade.core.routing import TaskFacts
from cascade.core.samples import draw_round
from cascade.core.search import Searcher, SearchJob, cannot_search
from cascade.core.taskgroups import task_group
from cascade.core.workflows import default_workflow
from cascade.errors import CascadeError, ModelError, fault_kind
from cascade.proof.log import ProofLog
from cascade.protocols import Model, Sandbox
from cascade.records import (
    Attempt,
    AttemptStatus,
    Completion,
    CompletionParams,
    Message,
    Patch,
    ProvingTest,
    Role,
    Task,
    WorkflowChoice,
)

if TYPE_CHECKING:
    from cascade.core.engine import Engine

log = logging.getLogger(__name__)

# (the answer, its sample number, its cost recorded yet, an agent's workspace changes or None)
Answer = tuple[Completion, int, bool, AgentWork | None]


class Climbing:
    """The state of one run (it lives as long as `Engine.run`), and how it climbs a ladder."""

    def __init__(self, engine: Engine, task: Task, proof: ProofLog, start_at: str | None) -> None:
        self.e, self.task, self.proof, self.start_at = engine, task, proof, start_at
        self.attempts: list[Attempt] = []
        self.history: list[Tried] = []
        self.contexts: dict[int, Context] = {}
        self.diffs: dict[str, str] = {}  # patch sha256 -> diff, for carry_patch
        self.pending: list[Answer] = []  # answers of the current round not gated yet
        self.drawn: Draft | None = None  # the round they were drawn in
        self.held: float | None = None  # reserved in the batch's purse for the next draw
        self.notes: list[str] = []  # infrastructure retries before the first attempt
        self.patch: Patch | None = None
        self.started = time.monotonic()
        self.sandbox_label = ""
        self.sandbox: Sandbox | None = None  # the base one as opened (`_untouched`: as it is now)
        self.underway: Underway | None = None  # the gate's baselines, being taken
        self.baselines: Baselines | None = None  # and once taken
        self.failures: Mapping[str, str] = {}
        self.paths: list[str] = []
        self.facts = TaskFacts()
        self.role: Role = "fix"
        self.stage_start = 0  # index into `attempts` where the current stage began
        self.base_sha256 = ""  # the task's named tests at the base commit, as a blob
        self.proving: tuple[ProvingTest, ...] = ()
        self.localisation: Localisation | None = None  # once the proving tests are known
        self.localisation_sha256 = ""
        self.unlocalised = "the task's proving tests are not known yet"  # why there is none
        self.winner: tuple[Patch, Task] | None = None  # the accepted reproduction, the task with it
        self.spares = Spares(engine.open_sandbox, Path(task.repo), task.base_commit)
        e = engine  # the default workflow, until `_choose` says which one is the task's
        self.flow = default_workflow(e.gate, tuple(e.ladder), e.budget, e.reproduce)
        self.choice: WorkflowChoice | None = None  # said on the run's first attempt
        self.raiser = PolicyRaiser(engine.workflows, self.flow)

    def _untouched(self) -> Sandbox:
        """The base sandbox as it is now: the baseline may have moved to a fresh one."""
        sandbox = self.underway.sandbox if self.underway else self.sandbox
        assert sandbox is not None
        return sandbox

    async def _settle(self) -> None:
        """The gate's baselines, once taken (the first time an answer needs them)."""
        if self.baselines is None:
            assert self.underway is not None
            self.baselines = await self.underway.wait()

    async def _climb(self, ladder: tuple[RungConfig, ...]) -> Stop:
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
            unsearchable=self._unsearchable(),
        )  # fmt: skip
        await preload.ready()
        while True:
            prompts = {r.name: await self._prompt(r) for r in ladder}
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
            if not self._hold(step):
                continue  # another task took that money since: decide again with what is left
            try:
                await self._step(step, *prompts[step.rung.name], prices[step.rung.name].local)
            finally:
                if self.held is not None and self.e.purse is not None:  # held, never drawn
                    self.e.purse.settle(self.held, [])
                    self.held = None

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
            localised=tuple(s.label for s in self.contexts[rung.context_tokens].suspects),
            localisation_sha256=self.localisation_sha256 if self.role == "fix" else "",
            decision=said,
            role=self.role, baseline_sha256=self.base_sha256 if self.role == "fix" else "",
            base_commit=self.task.base_commit, gate_sha256=self._judging_gate().digest,
        )  # fmt: skip
        self.notes.clear()  # said once, on the first attempt after them (in place: the baseline
        # underway adds the faults it retries to this same list)
        for passed in step.rejected:  # said as the run goes, not only in the record
            self.e.on_event(Event("baseline", f"passed over {passed.rung!r}: {passed.why}"))
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
        if self.pending:
            await self._taken(base)
        while self.pending:
            completion, sample, charged, work = self.pending[0]
            draft = base.for_sample(sample).answered(completion, charged, self.proof.put_blob)
            if work is not None:
                work.marks.put(draft)
            carried = work.carried if work else None
            judged = await self._judge()(completion.text, draft, len(self.attempts) + 1, carried)
            status, patch = judged.status, judged.patch
            if patch is not None:
                self.diffs[patch.sha256] = patch.diff
            self.pending[0] = (completion, sample, True, work)
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

    async def _taken(self, base: Draft) -> None:
        """The gate's baselines, before an answer is judged (taken while it was drawn). When they
        cannot be taken the answers drawn are recorded, not gated, and the run stops."""
        try:
            await self._settle()
        except CascadeError as exc:
            self._noted(base)
            self._cancel(base, f"not gated: the baseline could not be taken: {exc}")
            raise
        self._noted(base)

    def _noted(self, base: Draft) -> None:
        """Faults the baseline retried while the answer was drawn: said on its record."""
        if self.notes:
            notes = (*base.decision.notes, *self.notes)
            base.decision = base.decision.model_copy(update={"notes": notes})
            self.notes.clear()

    def _cancel(self, base: Draft, why: str) -> None:
        """Record the answers of a decided round that were never gated."""
        for completion, sample, charged, work in self.pending:
            draft = base.for_sample(sample, timed=False)
            if work is not None:
                work.marks.put(draft)
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
        model = models[rung.name]
        if isinstance(model, Searcher):
            return await self._search(model, base), False
        if rung.mode == "agent" and self.role == "fix":  # a test written first: one answer
            return await self._agent(model, rung, params, messages, base)

        def fault(sample: int, fault: ModelError) -> None:
            wait = f" [Retry-After {fault.retry_after:g}s]" if fault.retry_after else ""
            draft = base.for_sample(sample, timed=False)
            draft.error = f"{fault}{wait}"
            self._record("provider_error", draft, fault)

        held, self.held = self.held, None
        answers, stop = await draw_round(
            model, messages, params, rung.samples, fault, purse=self.e.purse,
            estimate=step.estimate, held=held,
        )  # fmt: skip
        return [(answer, sample, False, None) for answer, sample in answers], stop

    async def _agent(
        self, model: Model, rung: RungConfig, params: CompletionParams,
        messages: list[Message], base: Draft,
    ) -> tuple[list[Answer], bool]:  # fmt: skip
        """An agent rung's attempt: its answer is the carried patch, or it is recorded here."""
        purse, held, self.held = self.e.purse, self.held, None
        if purse is not None and held is not None:  # each turn holds its own call's estimate
            purse.settle(held, [])
        stage = self.attempts[self.stage_start :]
        meter = RungMeter(
            rung, self.e.prices(rung), with_purse(self.e.budget, purse), purse,
            sum(a.cost_usd for a in self.attempts),
            sum(a.cost_usd for a in stage if a.rung == rung.name), self.e.counter(rung),
        )  # fmt: skip
        got = await agent_attempt(
            model, rung, messages, params, task=self.task, take=self.spares.take, meter=meter,
            put_blob=self.proof.put_blob,
            on_turn=lambda turn: self.e.on_event(Event("agent", said(turn))),
        )  # fmt: skip
        if got.completion is not None:
            return [(got.completion, 1, False, got.work)], False
        draft, fault = base.for_sample(1, timed=False), got.trajectory.fault
        self._record(got.status, got.unanswered(draft), fault)
        return [], fault is not None and fault.action == "stop"

    def _hold(self, step: Step) -> bool:
        """Reserve the step's estimate in the batch's purse before its calls, unless the purse
        refuses (a task elsewhere committed money since the check): then False, nothing held."""
        purse = self.e.purse
        if purse is None or step.kind == "infra_retry":  # an infra retry calls no model
            return True
        stage = self.e.reproduce
        models = stage.models if self.role == "reproduce" and stage else self.e.models
        if isinstance(models[step.rung.name], Searcher):
            return True
        if not purse.hold(step.estimate):
            return False
        self.held = step.estimate
        return True

    def _visible(self) -> tuple[str, ...]:
        """The proving tests a model may know of and localisation may run: not hidden ones."""
        return tuple(p.test for p in self.proving if p.source != "hidden")

    def _unsearchable(self) -> str:
        if self.role != "fix":
            return "a search rung writes fixes, not tests"
        return cannot_search(self._visible(), self.localisation, self.unlocalised)

    async def _search(self, model: Searcher, base: Draft) -> list[Answer]:
        """A search rung's one candidate (or none: recorded, and the ladder climbs)."""
        assert self.localisation is not None, "the plan passes over a search rung without one"
        job = SearchJob(
            self.proof.run_id, self.task, self._visible(), self.localisation, self.spares.take
        )
        try:
            found = await model.search(job)
        except CascadeError as exc:  # a sandbox that failed it: no candidate, said why
            draft = base.for_sample(1, timed=False)
            draft.error = f"the search could not run: {exc}"
            self._record("empty_patch", draft)
            return []
        base.candidates_sha256 = self.proof.put_blob(found.tried)
        if found.completion is None:
            draft = base.for_sample(1, timed=False)
            draft.error = found.why
            self._record("empty_patch", draft)
            return []
        return [(found.completion, 1, False, None)]

    def _judging_gate(self) -> Gate:
        stage = self.e.reproduce
        return stage.gate if self.role == "reproduce" and stage else self.e.gate

    def _judge(self) -> AnswerJudge:
        assert self.baselines is not None, "an answer is judged only once the baselines are in"
        return AnswerJudge(
            self.task, self.role, self.e.gate, self.baselines, self.proving, self.spares.take,
            self.proof.put_blob, self.e.feedback_chars, self.e.reproduce,
            policy=self._policy_for, reproduced=self.stage_start > 0,
            reviewer=Reviewer(self.e.models, tuple(self.e.ladder), self.e.purse),
        )  # fmt: skip

    async def _policy_for(self, paths: Sequence[str]) -> Held:
        """What a fix patch touching `paths` is held to (the run's gate and policy, or raised by
        a stricter workflow's, whose baselines are taken on the untouched sandbox)."""
        assert self.baselines is not None
        own = Held(self.e.gate, self.baselines, self.raiser.judging, self.proving, self.base_sha256)
        box = self._untouched()
        return await self.raiser.hold(paths, own, box, self.task, self.proof.put_blob)

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

    async def _prompt(self, rung: RungConfig) -> tuple[list[Message], int]:
        """The messages `rung` would get now, and their token count for the estimate."""
        budget = rung.context_tokens
        if budget not in self.contexts:
            self.contexts[budget] = await build_context(
                self._untouched(), self.task, self.failures, budget=budget,
                count=self.e.counter(rung), paths=self.paths,
                localisation=self.localisation if self.role == "fix" else None,
                show=self.e.localising.show if self.e.localising else 0,
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
