"""The loop of one task, and the only place that sequences model -> edits -> patch -> gate ->
proof. Every attempt is appended to the proof log before the next step; the run is sealed
whatever happens (verified, exhausted, or an error)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio

from cascade.config import RungConfig
from cascade.context import Context, TokenCounter, build_context, tracked_files
from cascade.edits import FORMAT_HELP, parse_edits
from cascade.errors import CascadeError, EditError, ModelError
from cascade.gate import Baselines, Gate, summarize, target_failures
from cascade.ladder import Step, Tried, next_step, start_index
from cascade.prompt import build_messages, render
from cascade.proof import ProofLog
from cascade.protocols import Model, Sandbox, SandboxOpener
from cascade.records import (
    Attempt,
    AttemptStatus,
    CompletionParams,
    Patch,
    RunOutcome,
    RunStatus,
    Task,
    Verdict,
)

log = logging.getLogger(__name__)

RETRY_WAIT_CAP = 30.0  # seconds: a longer Retry-After is not waited for on this rung

EventKind = Literal["open", "baseline", "attempt", "attempt_done", "done"]


@dataclass(frozen=True)
class Event:
    """Progress for a display; the proof log, not this, is the record."""

    kind: EventKind
    message: str
    attempt: Attempt | None = None
    outcome: RunOutcome | None = None


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

    async def run(self, task: Task, proof: ProofLog, start_at: str | None = None) -> RunOutcome:
        start_index(self.ladder, start_at)  # a bad --start-at is a usage error before any work
        run = _Run(self, task, proof, start_at)
        return await run.go()


class _Run:
    """The state of one run; it lives as long as `Engine.run`."""

    def __init__(self, engine: Engine, task: Task, proof: ProofLog, start_at: str | None) -> None:
        self.e = engine
        self.task = task
        self.proof = proof
        self.start_at = start_at
        self.attempts: list[Attempt] = []
        self.history: list[Tried] = []
        self.contexts: dict[int, Context] = {}
        self.paths: list[str] = []
        self.started = time.monotonic()
        self.sandbox_label = ""
        self.baselines: Baselines = {}
        self.failures: Mapping[str, str] = {}

    async def go(self) -> RunOutcome:
        patch: Patch | None = None
        error = ""
        try:
            self.e.on_event(Event("open", f"opening a sandbox at {self.task.base_commit[:12]}"))
            sandbox = await self.e.open_sandbox(Path(self.task.repo), self.task.base_commit)
            try:
                self.sandbox_label = _label(sandbox)
                patch, error = await self._climb(sandbox)
            finally:
                with anyio.CancelScope(shield=True):
                    await sandbox.close()
        except CascadeError as exc:
            error = str(exc)
        status: RunStatus = "verified" if patch is not None else ("error" if error else "exhausted")
        cost = sum(a.cost_usd for a in self.attempts)
        outcome = RunOutcome(
            run_id=self.proof.run_id,
            task_id=self.task.issue.id,
            status=status,
            run_dir=str(self.proof.run_dir),
            base_commit=self.task.base_commit,
            attempts=len(self.attempts),
            cost_usd=round(cost, 8),
            duration_s=round(time.monotonic() - self.started, 3),
            patch_sha256=patch.sha256 if patch else "",
            verified_rung=self.attempts[-1].rung if patch else "",
            error=error,
        )
        ladder = [r.name for r in self.e.ladder]
        self.proof.seal(outcome, self.attempts, patch, self.task.issue.title, ladder)
        self.e.on_event(Event("done", status, outcome=outcome))
        return outcome

    async def _climb(self, sandbox: Sandbox) -> tuple[Patch | None, str]:
        """(the verified patch, "") or (None, why the run stopped with an error, or "")."""
        self.e.on_event(Event("baseline", f"baseline: {', '.join(self.e.gate.names)}"))
        self.baselines = await self.e.gate.baseline(sandbox, self.task)
        self.failures = target_failures(self.baselines, self.task.issue.tests)
        self.paths = await tracked_files(sandbox)
        feedback = ""
        while (step := next_step(self.e.ladder, self.history, self.start_at)) is not None:
            attempt, patch = await self._attempt(sandbox, step, feedback)
            if attempt.status == "verified":
                return patch, ""
            if attempt.status == "infra_error":
                return None, attempt.error
            if attempt.status == "provider_error" and self.history[-1].action == "stop":
                return None, attempt.error
            feedback = attempt.feedback
            if attempt.status in ("rejected", "empty_patch"):
                await sandbox.reset()
        return None, ""

    async def _attempt(
        self, sandbox: Sandbox, step: Step, feedback: str
    ) -> tuple[Attempt, Patch | None]:
        rung, number, failures = step.rung, step.attempt, self.failures
        seq = len(self.attempts) + 1
        began = time.monotonic()
        fields: dict[str, Any] = {
            "run_id": self.proof.run_id,
            "task_id": self.task.issue.id,
            "seq": seq,
            "rung": rung.name,
            "model": rung.model,
            "attempt": number,
            "reason": step.reason,
            "sandbox": self.sandbox_label,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.e.on_event(Event("attempt", f"#{seq} {rung.name} ({rung.model}) attempt {number}"))
        context = await self._context(sandbox, rung, failures)
        messages = build_messages(self.task, context, failures, feedback)
        fields["prompt_sha256"] = self.proof.put_blob(render(messages))
        fields["context_files"] = tuple(f.path for f in context.files)
        params = CompletionParams(
            temperature=rung.temperature,
            max_tokens=rung.max_tokens,
            timeout=rung.timeout,
            task_id=self.task.issue.id,
            attempt=number,
        )
        status: AttemptStatus
        action = None
        patch: Patch | None = None
        try:
            completion = await self.e.models[rung.name].complete(messages, params)
        except ModelError as exc:
            status, action = "provider_error", exc.action
            fields.update(error=str(exc), feedback="")
            if exc.action == "retry" and exc.retry_after:
                await self.e.sleep(min(exc.retry_after, RETRY_WAIT_CAP))
        else:
            fields.update(
                model_used=completion.model,
                usage=completion.usage,
                cost_usd=completion.cost_usd,
                latency_s=round(completion.latency_s, 3),
                response_sha256=self.proof.put_blob(completion.text),
            )
            status, patch = await self._gate(sandbox, completion.text, fields)
        fields["duration_s"] = round(time.monotonic() - began, 3)
        record = Attempt(status=status, **fields)
        self.proof.append(record)
        self.attempts.append(record)
        self.history.append(Tried(rung.name, status, _why(record), action))
        self.e.on_event(Event("attempt_done", status, attempt=record))
        return record, patch if status == "verified" else None

    async def _gate(
        self, sandbox: Sandbox, text: str, fields: dict[str, Any]
    ) -> tuple[AttemptStatus, Patch | None]:
        """Parse, apply and gate one answer; fills `fields` and returns the status."""
        try:
            edits = parse_edits(text)
            if not edits:
                raise EditError(f"Your answer contained no edits.\n\n{FORMAT_HELP}")
            patch = await sandbox.apply(edits)
        except EditError as exc:
            fields["feedback"] = exc.feedback
            return "edit_error", None
        except CascadeError as exc:
            fields["error"] = f"applying the edits failed: {exc}"
            return "infra_error", None
        if not patch.diff.strip():
            fields["feedback"] = "Your edits changed nothing: the files already read that way."
            return "empty_patch", None
        fields["patch_sha256"] = self.proof.put_blob(patch.diff)
        try:
            verdicts = await self.e.gate.run(sandbox, self.task, patch, self.baselines)
        except CascadeError as exc:
            fields["error"] = f"the gate could not run: {exc}"
            return "infra_error", None
        stored = tuple(self._store(v) for v in verdicts)
        fields["verdicts"] = stored
        passed = bool(stored) and all(v.passed for v in stored)
        if not passed:
            fields["feedback"] = summarize(stored, self.e.feedback_chars)
        return ("verified" if passed else "rejected"), patch

    def _store(self, verdict: Verdict) -> Verdict:
        """Artifacts go to blobs; the record keeps their digests."""
        digests = {name: self.proof.put_blob(text) for name, text in verdict.artifacts.items()}
        return verdict.model_copy(update={"artifacts": digests})

    async def _context(
        self, sandbox: Sandbox, rung: RungConfig, failures: Mapping[str, str]
    ) -> Context:
        budget = rung.context_tokens
        if budget not in self.contexts:
            self.contexts[budget] = await build_context(
                sandbox, self.task, failures, budget=budget, count=self.e.counter(rung),
                paths=self.paths,
            )  # fmt: skip
        return self.contexts[budget]


def _label(sandbox: Sandbox) -> str:
    image = getattr(sandbox, "image_id", "")
    kind = type(sandbox).__name__.removesuffix("Sandbox").lower() or "sandbox"
    return f"{kind} {image}".strip()


def _why(attempt: Attempt) -> str:
    if attempt.status == "rejected":
        failed = [v.evaluator for v in attempt.verdicts if not v.passed]
        return f"gate rejected ({', '.join(failed)})"
    if attempt.status == "edit_error":
        return "the answer could not be applied"
    if attempt.status == "empty_patch":
        return "the answer changed nothing"
    return attempt.error.splitlines()[0][:200] if attempt.error else attempt.status
