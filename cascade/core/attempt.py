"""One answer, judged: parsed into edits, applied in a sandbox of its own (opened for it and
closed after, so nothing an earlier attempt left behind — a moved HEAD, a git filter, a process —
can reach it), gated, and classified: a rejected or unproven fix, a verified one with what proves
it, or an accepted reproduction read back before its sandbox goes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from cascade.config import RungConfig
from cascade.core.budget import Purse
from cascade.core.draft import Draft
from cascade.core.edits import FORMAT_HELP, parse_edits
from cascade.core.gate import Baselines, Gate, summarize
from cascade.core.proving import NOTHING_PROVES, proven
from cascade.core.reproduce import ReproduceStage, accepted_reproduction
from cascade.core.review import review_patch
from cascade.core.workflows import Judging
from cascade.errors import CascadeError, EditError
from cascade.protocols import Model, Sandbox, SandboxOpener
from cascade.records import (
    AppliedPolicy,
    AttemptStatus,
    Edit,
    Patch,
    ProvingTest,
    Role,
    Task,
    Usage,
    Verdict,
)
from cascade.workspace.carry import Carried, put_changes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    """What a fix patch is held to: the gate (raised by a stricter workflow or not), its
    baselines, the policy, and the tests that can prove it, with the blob of the base outcomes
    they were read from."""

    gate: Gate
    baselines: Baselines
    judging: Judging
    proving: tuple[ProvingTest, ...]
    baseline_sha256: str


PolicyFor = Callable[[Sequence[str]], Awaitable[Held]]  # a fix patch's files -> what holds it


@dataclass(frozen=True)
class Reviewer:
    """The models a `review = "model"` policy may ask (the run's rungs), and the batch's purse
    that pays for the review with the attempt."""

    models: Mapping[str, Model]
    ladder: tuple[RungConfig, ...]
    purse: Purse | None = None


@dataclass
class Spares:
    """Fresh sandboxes at the base commit for the answers to come. One can be opened while the
    model is still answering (`prefetch`), so an attempt does not wait for its sandbox; one an
    answer never touched (it had no edits) serves the next. Closed with the run."""

    open_sandbox: SandboxOpener
    repo: Path
    commit: str
    spare: Sandbox | None = field(default=None)
    # One opening at a time: a prefetch in flight is what `take` gets, never a second sandbox.
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def prefetch(self) -> None:
        async with self._lock:
            if self.spare is not None:
                return
            try:
                with anyio.CancelScope(shield=True):  # a sandbox opened is never lost to a cancel
                    self.spare = await self.open_sandbox(self.repo, self.commit)
            except CascadeError as exc:  # opened again when needed, where a failure is recorded
                log.info("could not open a sandbox ahead of time: %s", exc)

    async def take(self) -> Sandbox:
        async with self._lock:
            box, self.spare = self.spare, None
        return box if box is not None else await self.open_sandbox(self.repo, self.commit)

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            async with self._lock:
                box, self.spare = self.spare, None
            if box is not None:
                await box.close()


@dataclass(frozen=True)
class Judged:
    status: AttemptStatus
    patch: Patch | None = None
    reproduced: Task | None = None  # an accepted reproduction: the task with it


@dataclass(frozen=True)
class AnswerJudge:
    """What judging an answer needs of the run at this point of it."""

    task: Task
    role: Role
    gate: Gate
    baselines: Baselines
    proving: tuple[ProvingTest, ...]
    take_sandbox: Callable[[], Awaitable[Sandbox]]  # a fresh one, at the base commit
    put_blob: Callable[[str], str]
    feedback_chars: int
    reproduce: ReproduceStage | None = None
    policy: PolicyFor | None = None  # None: this gate and baselines, and no workflow policy
    reproduced: bool = False  # the run's reproduce stage ran (whatever it found)
    reviewer: Reviewer | None = None  # for a policy of review = "model"

    async def __call__(
        self, text: str, draft: Draft, seq: int, carried: Carried | None = None
    ) -> Judged:
        """Fills in `draft` (the record-to-be number `seq`) and says how the answer fared. An
        agent's answer is its workspace's changes (`carried`), not edits in its text."""
        edits: list[Edit] = []
        try:
            if carried is None:
                edits = parse_edits(text)
            if carried is None and not edits:
                raise EditError(f"Your answer contained no edits.\n\n{FORMAT_HELP}")
        except EditError as exc:
            draft.feedback = exc.feedback
            return Judged("edit_error")
        try:
            box = await self.take_sandbox()
        except CascadeError as exc:
            draft.error = f"a fresh sandbox could not be opened: {exc}"
            return Judged("infra_error")
        try:
            return await self._in(box, edits, draft, seq, carried)
        finally:
            with anyio.CancelScope(shield=True):
                await box.close()

    async def _in(
        self, sandbox: Sandbox, edits: list[Edit], draft: Draft, seq: int, carried: Carried | None
    ) -> Judged:
        try:
            if carried is not None:
                patch = await put_changes(sandbox, carried)
            else:
                patch = await sandbox.apply(edits)
        except EditError as exc:
            draft.feedback = exc.feedback
            return Judged("edit_error")
        except CascadeError as exc:
            draft.error = f"applying the edits failed: {exc}"
            return Judged("infra_error")
        if not patch.diff.strip():
            draft.feedback = "Your edits changed nothing: the files already read that way."
            return Judged("empty_patch")
        noop = sorted({e.path for e in edits} - set(patch.files))
        if noop:  # a block that "applied" but changed nothing: the model misread the file
            draft.feedback = (
                f"apply_noop: your edits to {', '.join(noop)} changed nothing (the replacement "
                "equals what is there). None of your edits were kept; send them all again."
            )
            return Judged("edit_error")
        draft.patch_sha256 = self.put_blob(patch.diff)
        stage = self.reproduce if self.role == "reproduce" else None
        judge = stage.gate if stage else self.gate
        baselines = stage.baselines(self.baselines) if stage else self.baselines
        judging: Judging | None = None
        proving = self.proving
        if stage is None and self.policy is not None:
            try:
                # The patch ships with the run's reproduction test: its files count too.
                shipped = self.task.reproduction.files if self.task.reproduction else {}
                held = await self.policy(
                    (*patch.files, *(f for f in shipped if f not in patch.files))
                )
            except CascadeError as exc:
                draft.error = f"the stricter workflow's gate could not take its baseline: {exc}"
                return Judged("infra_error")
            judge, baselines, judging, proving = (
                held.gate,
                held.baselines,
                held.judging,
                held.proving,
            )
            draft.gate_sha256, draft.baseline_sha256 = judge.digest, held.baseline_sha256
            draft.policy = _applied(judging)
        try:
            verdicts = await judge.run(sandbox, self.task, patch, baselines)
        except CascadeError as exc:
            draft.error = f"the gate could not run: {exc}"
            return Judged("infra_error")
        stored = tuple(self._store(v) for v in verdicts)
        draft.verdicts = stored
        if not (stored and all(v.passed for v in stored)):
            draft.feedback = summarize(stored, self.feedback_chars)
            return Judged("rejected", patch)
        if stage is not None:  # read back now: the files live only in this sandbox
            try:
                task = await accepted_reproduction(
                    sandbox, self.task, patch, stored[-1], rung=draft.rung, model=draft.model,
                    seq=seq,
                )  # fmt: skip
            except CascadeError as exc:
                draft.error = f"the accepted reproduction could not be read back: {exc}"
                return Judged("infra_error")
            return Judged("accepted", patch, task)
        draft.proving = proven(proving, stored)
        if not draft.proving:
            draft.feedback = NOTHING_PROVES
            return Judged("unproven", patch)
        short = _proof_short(judging, draft.proving, draft.model, self.reproduced)
        if short:
            draft.feedback = short
            return Judged("unproven", patch)
        if judging is not None and judging.review == "model":
            return await self._reviewed(judging, patch, draft, seq)
        return Judged("verified", patch)

    async def _reviewed(self, judging: Judging, patch: Patch, draft: Draft, seq: int) -> Judged:
        """A model's review of a patch that passed every check and is proven, as one more
        blocking verdict; its cost is the attempt's. A provider fault is the machine's, not the
        patch's: the same answer is judged again (an infrastructure retry)."""
        reviewer = self.reviewer
        rungs = {r.name: r for r in reviewer.ladder} if reviewer else {}
        rung = rungs.get(judging.review_rung)
        if reviewer is None or rung is None:
            draft.error = f"the review rung {judging.review_rung!r} is not among this run's rungs"
            return Judged("infra_error")
        try:
            result = await review_patch(
                reviewer.models[rung.name], rung, self.task, patch, draft.proving,
                attempt=seq,
            )  # fmt: skip
        except CascadeError as exc:
            draft.error = f"the review on {rung.name!r} failed: {exc}"
            return Judged("infra_error")
        paid = result.completion
        draft.cost_usd += paid.cost_usd
        draft.usage = Usage(
            prompt_tokens=draft.usage.prompt_tokens + paid.usage.prompt_tokens,
            completion_tokens=draft.usage.completion_tokens + paid.usage.completion_tokens,
        )
        if reviewer.purse is not None:
            reviewer.purse.settle(reviewer.purse.reserve(0.0), [paid.cost_usd])
        draft.verdicts = (*draft.verdicts, self._store(result.verdict))
        if not result.verdict.passed:
            draft.feedback = summarize(draft.verdicts, self.feedback_chars)
            return Judged("rejected", patch)
        return Judged("verified", patch)

    def _store(self, verdict: Verdict) -> Verdict:
        """Artifacts go to blobs; the record keeps their digests."""
        digests = {name: self.put_blob(text) for name, text in verdict.artifacts.items()}
        return verdict.model_copy(update={"artifacts": digests})


def _applied(judging: Judging) -> AppliedPolicy:
    return AppliedPolicy(
        workflow=judging.workflow, raised_by=judging.raised_by, why=judging.why,
        review=judging.review, apply=judging.apply, reviewers=judging.reviewers,
    )  # fmt: skip


def _proof_short(
    judging: Judging | None, proving: Sequence[ProvingTest], model: str, reproduced: bool
) -> str:
    """Why the proof falls short of what a raised workflow asks, or "": a test written first
    (when the run's own workflow never asked for one), or a test its fixer did not write."""
    if judging is None:
        return ""
    if judging.reproduce == "always" and not reproduced and judging.raised_by:
        return (
            f"unproven under workflow {judging.raised_by[-1]!r}: it asks for a test written "
            "before the fix (reproduce = always), and this run's workflow wrote none. "
            "Run the task under that workflow (a label it matches) to have one written."
        )
    own = [p for p in proving if p.source == "reproduction" and p.model == model]
    if judging.independent and proving and len(own) == len(proving):
        return (
            "unproven: the only test that proves this fix was written by the same model "
            "(independent = true)"
        )
    return ""
