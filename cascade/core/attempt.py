"""One answer, judged: parsed into edits, applied in a sandbox of its own (opened for it and
closed after, so nothing an earlier attempt left behind — a moved HEAD, a git filter, a process —
can reach it), gated, and classified: a rejected or unproven fix, a verified one with what proves
it, or an accepted reproduction read back before its sandbox goes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from cascade.core.draft import Draft
from cascade.core.edits import FORMAT_HELP, parse_edits
from cascade.core.gate import Baselines, Gate, summarize
from cascade.core.proving import NOTHING_PROVES, proven
from cascade.core.reproduce import ReproduceStage, accepted_reproduction
from cascade.errors import CascadeError, EditError
from cascade.protocols import Sandbox, SandboxOpener
from cascade.records import AttemptStatus, Edit, Patch, ProvingTest, Role, Task, Verdict

log = logging.getLogger(__name__)


@dataclass
class Spares:
    """Fresh sandboxes at the base commit for the answers to come. One can be opened while the
    model is still answering (`prefetch`), so an attempt does not wait for its sandbox; one an
    answer never touched (it had no edits) serves the next. Closed with the run."""

    open_sandbox: SandboxOpener
    repo: Path
    commit: str
    spare: Sandbox | None = field(default=None)

    async def prefetch(self) -> None:
        if self.spare is not None:
            return
        try:
            with anyio.CancelScope(shield=True):  # a sandbox opened is never lost to a cancel
                self.spare = await self.open_sandbox(self.repo, self.commit)
        except CascadeError as exc:  # opened again when needed, where a failure is recorded
            log.info("could not open a sandbox ahead of time: %s", exc)

    async def take(self) -> Sandbox:
        box, self.spare = self.spare, None
        return box if box is not None else await self.open_sandbox(self.repo, self.commit)

    async def close(self) -> None:
        box, self.spare = self.spare, None
        if box is not None:
            with anyio.CancelScope(shield=True):
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

    async def __call__(self, text: str, draft: Draft, seq: int) -> Judged:
        """Fills in `draft` (the record-to-be number `seq`) and says how the answer fared."""
        try:
            edits = parse_edits(text)
            if not edits:
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
            return await self._in(box, edits, draft, seq)
        finally:
            with anyio.CancelScope(shield=True):
                await box.close()

    async def _in(self, sandbox: Sandbox, edits: list[Edit], draft: Draft, seq: int) -> Judged:
        try:
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
        draft.proving = proven(self.proving, stored)
        if not draft.proving:
            draft.feedback = NOTHING_PROVES
            return Judged("unproven", patch)
        return Judged("verified", patch)

    def _store(self, verdict: Verdict) -> Verdict:
        """Artifacts go to blobs; the record keeps their digests."""
        digests = {name: self.put_blob(text) for name, text in verdict.artifacts.items()}
        return verdict.model_copy(update={"artifacts": digests})
