"""The run of one task, in stages on one climb (`cascade.core.climb`): the workflow chosen, the
base sandbox opened and what the prompt needs of the base commit found first (the gate's
baselines taken in the background meanwhile), then, when nothing named by the issue fails at the
base commit, the reproduce stage climbs its own ladder for a test that does
(`core/reproduce.py`), then the fix stage climbs for a patch that the gate passes and a proving
test proves. The run is sealed whatever happens."""

from __future__ import annotations

import json
import logging
import time

import anyio
from anyio.abc import TaskGroup

from cascade.core import preload
from cascade.core.climb import Climbing
from cascade.core.context import tracked_files
from cascade.core.events import Event
from cascade.core.gate import Baselines, target_failures
from cascade.core.ladder import Stop
from cascade.core.localised import said as localisation_said
from cascade.core.opening import Underway, open_at_base, sandbox_label
from cascade.core.policy import PolicyRaiser, choose_workflow, said
from cascade.core.proving import NOTHING_PROVES, proving_tests
from cascade.core.reproduce import reproduction_note
from cascade.core.routing import task_facts
from cascade.core.taskgroups import task_group
from cascade.errors import CascadeError, UsageError
from cascade.proof.outcome import sealed_outcome
from cascade.proof.run_folder import RunFolder
from cascade.protocols import Sandbox
from cascade.records import Role, RunOutcome

log = logging.getLogger(__name__)


class Run(Climbing):
    """One task's run: its stages, and its proof sealed whatever happens."""

    async def go(self) -> RunOutcome:
        stop, usage = Stop("error", ""), False
        preload.start()  # litellm loads while the sandbox opens and the baseline runs
        try:
            await self._choose()
            try:
                async with task_group() as group:  # the named tests' sandbox opens meanwhile
                    group.start_soon(self.spares.prefetch)
                    self.sandbox = await self._open()
                stop = await self._stages()
            finally:
                with anyio.CancelScope(shield=True):
                    await self.spares.close()
                    if self.sandbox is not None:
                        await self._untouched().close()
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
        return await open_at_base(
            self.task, open_sandbox=e.open_sandbox, gate=e.gate, policy=e.policy, sleep=e.sleep,
            on_event=e.on_event, notes=self.notes, store=e.baseline_store,
        )  # fmt: skip

    def _underway(self) -> Underway:
        e = self.e
        return Underway.of(e.gate, self._untouched(), self.task, e, self.notes)

    async def _stages(self) -> Stop:
        """The gate's baselines are taken in the background while the rest runs; a run that
        stops before judging anything still says that they could not be taken."""
        async with task_group() as group:
            try:
                stop = await self._staged(group)
            finally:
                group.cancel_scope.cancel()  # a baseline still underway is not needed any more
        if stop.status != "error" and self.underway and self.underway.error is not None:
            raise self.underway.error
        return stop

    async def _staged(self, group: TaskGroup) -> Stop:
        """What the prompt needs first (how the named tests fail at base, the files), then the
        reproduce stage when the task needs a proving test, then the fix stage."""
        for note in self.task.issue.notes:  # what the source set aside (an untrusted block)
            self.notes.append(note)
            self.e.on_event(Event("baseline", note))
        sandbox = self._untouched()
        self.sandbox_label = sandbox_label(sandbox)
        traces = await self._prove_apart()
        self.paths = await tracked_files(sandbox)
        self.underway = self._underway()
        if traces is None and self.task.issue.tests:  # told from the whole suite's run
            await self.underway.take()
            traces = await self.underway.wait()
        self.failures = target_failures(traces or {}, self.task.issue.tests)
        self.facts = task_facts(self.task, self.failures, self.paths)
        raised = self.raiser.raise_run(self.facts.paths, "the target tests' tracebacks touch")
        if raised:
            self.flow = self.raiser.raised_flow(self.flow)
            self.e = self.e.for_workflow(self.flow)
            self.underway = self._underway()  # what both gates run is taken once
            self.notes.append(raised)
            self.e.on_event(Event("baseline", raised))
        if not self.underway.started:
            group.start_soon(self.underway.take)
        group.start_soon(self.spares.prefetch)  # the first answer's sandbox
        if not self.e.overlap_baseline:
            await self._settle()
        stage = self.e.reproduce
        if stage is not None and stage.wanted(self.proving, self.e.gate.can_prove):
            self._begin("reproduce", stage.announce(self.proving))
            stop = await self._climb(stage.ladder)
            if stop.status in ("error", "budget_exhausted"):
                return stop
            if self.winner is not None:
                await self._accept()
            self._begin("fix", reproduction_note(self.task, stop, self.proving))
        elif not self.proving:
            self._begin("fix", "nothing can prove a fix: " + NOTHING_PROVES.split(": ", 1)[1])
        await self._localise()
        return await self._climb(tuple(self.e.ladder))

    def _begin(self, role: Role, note: str) -> None:
        self.role, self.stage_start, self.history = role, len(self.attempts), []
        if note:
            self._say(note)

    def _say(self, note: str) -> None:
        """A note for the next attempt's record, shown as the run goes."""
        self.notes.append(note)
        self.e.on_event(Event("baseline", note))

    async def _localise(self) -> None:
        """Fault localisation, once the visible proving tests are known, in a sandbox of its own
        (the gate's baselines go on meanwhile); a measurement that fails leaves the run without
        one, said, and a search rung is then passed over."""
        how, tests = self.e.localising, self._visible()
        if how is not None and not how.show and not any(r.is_repair for r in self.e.ladder):
            how = None  # nothing would read it: no rung searches, no prompt shows it
        if how is None or not tests:
            none = "no visible proving test fails at the base commit"
            self.unlocalised = "[localise] enabled = false" if how is None else none
            return
        box: Sandbox | None = None
        try:
            box = await self.spares.take()
            loc, origin = await how.run(box, self.task, tests, self.e.baseline_store)
        except CascadeError as exc:
            self.unlocalised = f"it could not be measured: {exc}"
            self._say(f"no localisation: {exc}")
            return
        finally:
            if box is not None:
                with anyio.CancelScope(shield=True):
                    await box.close()
        self.localisation, self.localisation_sha256 = loc, self.proof.put_blob(loc.to_json())
        self.contexts.clear()  # the fix stage's prompts lead with it
        self._say(localisation_said(loc, origin))

    async def _prove_apart(self) -> Baselines | None:
        """`_prove` in a sandbox of its own (opened beside the base one), so the untouched one is
        still untouched when its baselines are taken: files the named tests write are found as
        the suite's own, not as a patch's."""
        probe = await self.spares.take()
        try:
            return await self._prove(probe)
        finally:
            with anyio.CancelScope(shield=True):
                await probe.close()

    async def _prove(self, sandbox: Sandbox) -> Baselines | None:
        """The task's named tests at the base commit, and which of them prove a fix; what the
        prompt may be told of the targets from that run (None: ask the whole baseline)."""
        base, traces = await self.e.gate.base_failures(sandbox, self.task)
        self.base_sha256 = self.proof.put_blob(json.dumps(base, sort_keys=True, indent=1))
        self.proving = proving_tests(self.task, base)
        return traces

    async def _accept(self) -> None:
        """The accepted reproduction joins the task: the gate's baselines are asked for again (an
        evaluator whose baseline depends on it says so by its key; the built-ins' do not, they
        judge new tests as targets) and the base outcomes are taken again with it in place."""
        assert self.winner is not None
        self.task, sandbox = self.winner[1], self._untouched()
        self.baselines = await self.e.gate.baseline(sandbox, self.task)
        await self._prove(sandbox)
