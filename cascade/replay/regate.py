"""Re-gate at zero model cost: every patch an earlier run recorded (the blob its attempt names by
`patch_sha256`) is applied again at the run's base commit and judged by the current gate, with
no model called. The result says which verdicts the new gate would change."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from cascade.core.gate import Baselines, Gate
from cascade.core.reproduce import accepted_reproduction
from cascade.core.review import EVALUATOR as REVIEW
from cascade.errors import CascadeError, EditError, InfraError
from cascade.proof.run_folder import RunFolder
from cascade.protocols import Sandbox, SandboxOpener
from cascade.records import Attempt, Edit, Issue, Patch, RunOutcome, Task

log = logging.getLogger(__name__)

_DIFF_PATH = re.compile(r"^diff --git a/(\S+) b/", re.MULTILINE)


@dataclass(frozen=True)
class RegateTask:
    """One earlier run to re-gate: its issue, outcome and attempt records."""

    issue: Issue
    outcome: RunOutcome
    attempts: tuple[Attempt, ...]
    run_dir: Path


@dataclass(frozen=True)
class Regated:
    task: str
    run_id: str
    seq: int
    rung: str
    before: str  # "accepted" | "rejected"
    after: str  # "accepted" | "rejected" | "error"
    failed_before: tuple[str, ...] = ()
    failed_after: tuple[str, ...] = ()
    error: str = ""
    gate_then: str = ""  # the digest of the gate that judged it (empty: recorded before digests)
    gate_now: str = ""  # the digest of the gate that judged it now

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass
class RegateResult:
    gate: list[str]
    patches: list[Regated] = field(default_factory=list)
    gate_sha256: str = ""  # the digest of the gate that judged them now
    skipped: list[str] = field(default_factory=list)  # why a task or patch was not re-gated

    def to_json(self) -> dict[str, Any]:
        changed = [p for p in self.patches if p.changed]
        return {
            "gate": self.gate,
            "patches": len(self.patches),
            "changed": len(changed),
            "newly_accepted": sum(1 for p in changed if p.after == "accepted"),
            "newly_rejected": sum(1 for p in changed if p.before == "accepted"),
            "errors": sum(1 for p in self.patches if p.after == "error"),
            "gate_sha256": self.gate_sha256,
            # Judged then by a gate configured otherwise: a verdict may change with it.
            "gate_differs": sum(
                1 for p in self.patches if p.gate_then not in ("", p.gate_now or self.gate_sha256)
            ),
            "gate_unrecorded": sum(1 for p in self.patches if not p.gate_then),
            "changes": [p.__dict__ for p in changed],
            "all": [p.__dict__ for p in self.patches],
            "skipped": self.skipped,
        }


async def regate(
    tasks: Sequence[RegateTask],
    gate: Gate,
    opener_for: Callable[[str], SandboxOpener],  # run id -> a sandbox opener labelled with it
    repo: Path,
    *,
    concurrency: int = 1,
    gate_for: Callable[[Attempt], Gate] | None = None,
) -> RegateResult:
    """`gate_for`: the gate for each recorded attempt (its workflow's, raised as it was);
    default `gate` for every one."""
    result = RegateResult(gate=gate.names, gate_sha256=gate.digest)
    pick = gate_for or (lambda _attempt: gate)
    limiter = anyio.CapacityLimiter(max(concurrency, 1))

    async def one(item: RegateTask) -> None:
        async with limiter:
            try:
                result.patches.extend(await _one(item, pick, opener_for, repo))
            except CascadeError as exc:  # one task's broken sandbox does not stop the others
                result.skipped.append(f"{item.issue.id}: {exc}")
            except Exception as exc:
                log.exception("re-gating %s failed", item.issue.id)
                result.skipped.append(f"{item.issue.id}: {type(exc).__name__}: {exc}")

    async with anyio.create_task_group() as group:
        for item in tasks:
            if not any(a.patch_sha256 for a in item.attempts):
                result.skipped.append(f"{item.issue.id}: no recorded patch")
                continue
            group.start_soon(one, item)
    result.patches.sort(key=lambda p: (p.task, p.seq))
    return result


async def _one(
    item: RegateTask,
    gate_for: Callable[[Attempt], Gate],
    opener_for: Callable[[str], SandboxOpener],
    repo: Path,
) -> list[Regated]:
    """The run's judged fixes, each applied and gated in a fresh sandbox of its own (as the
    engine judged it): one patch's code cannot change how the next is judged. The baselines are
    taken once, in a base sandbox no patch enters."""
    # The commit the attempts were judged against, as the hash chain records it (outcome.json is
    # not chained); records from before they carried it fall back to the outcome.
    chained = next((a.base_commit for a in item.attempts if a.base_commit), "")
    task = Task(issue=item.issue, repo=str(repo), base_commit=chained or item.outcome.base_commit)
    opener = opener_for(f"regate-{item.outcome.run_id}")
    judged_fixes = [a for a in item.attempts if a.patch_sha256 and _gated_fix(a)]
    gates = {a.seq: gate_for(a) for a in judged_fixes}
    baselines: dict[str, Baselines] = {}
    base = await opener(repo, task.base_commit)
    try:
        task = await _with_reproduction(base, task, item)
        for gate in gates.values():
            if gate.digest not in baselines:
                baselines[gate.digest] = await gate.baseline(base, task)
    finally:
        with anyio.CancelScope(shield=True):
            await base.close()
    out: list[Regated] = []
    for attempt in judged_fixes:
        gate = gates[attempt.seq]
        blob = RunFolder(item.run_dir).blob(attempt.patch_sha256)
        # A model review is not re-run (no model is called): the gate's own verdicts compare.
        failed_before = tuple(
            v.evaluator for v in attempt.verdicts if not v.passed and v.evaluator != REVIEW
        )
        before = "rejected" if failed_before else "accepted"

        def judged(after: str, failed: tuple[str, ...] = (), error: str = "") -> Regated:
            return Regated(
                item.issue.id, item.outcome.run_id, attempt.seq, attempt.rung,  # noqa: B023
                before, after, failed_before, failed, error, attempt.gate_sha256,  # noqa: B023
                gate.digest,  # noqa: B023
            )  # fmt: skip

        box = await opener(repo, task.base_commit)
        try:
            patch = await _apply(box, blob)
            verdicts = await gate.run(box, task, patch, baselines[gate.digest])
        except (OSError, EditError) as exc:
            out.append(judged("error", error=f"cannot re-apply: {exc}"))
            continue
        finally:
            with anyio.CancelScope(shield=True):
                await box.close()
        passed = bool(verdicts) and all(v.passed for v in verdicts)
        failed = tuple(v.evaluator for v in verdicts if not v.passed)
        out.append(judged("accepted" if passed else "rejected", failed))
    return out


GATED = ("verified", "unproven", "rejected")  # the gate passed, passed, failed


def _gated_fix(attempt: Attempt) -> bool:
    """Only fixes the gate judged: an infra_error attempt has a patch but no verdict."""
    return attempt.role == "fix" and attempt.status in GATED


async def _apply(sandbox: Sandbox, blob: Path) -> Patch:
    """A recorded patch applied again; its canonical patch."""
    diff = blob.read_bytes().decode("utf-8")  # not read_text: CRLF lines must stay CRLF
    files = _DIFF_PATH.findall(diff)
    if not files:
        raise EditError("the recorded patch names no file")
    return await sandbox.apply([Edit(path=files[0], kind="udiff", diff=diff)])


async def _with_reproduction(sandbox: Sandbox, task: Task, item: RegateTask) -> Task:
    """The task as its fixes were judged: with the run's accepted reproduction test, if the
    reproduce stage wrote one (applied, read back, then the workspace reset)."""
    won = next((a for a in item.attempts if (a.role, a.status) == ("reproduce", "accepted")), None)
    if won is None or not won.patch_sha256 or not won.verdicts:
        return task
    try:
        patch = await _apply(sandbox, RunFolder(item.run_dir).blob(won.patch_sha256))
        return await accepted_reproduction(
            sandbox, task, patch, won.verdicts[-1], rung=won.rung, model=won.model, seq=won.seq
        )
    except (OSError, EditError) as exc:
        what = f"run {item.outcome.run_id}: its reproduction cannot be re-applied"
        raise InfraError(f"{what}: {exc}") from exc
    finally:
        await sandbox.reset()


def render_regate(result: RegateResult) -> str:
    data = result.to_json()
    lines = [
        "# Re-gate",
        "",
        f"Gate now: {', '.join(result.gate)}. {data['patches']} recorded patch(es) re-judged, "
        f"no model called: {data['changed']} verdict(s) change ({data['newly_accepted']} newly "
        f"accepted, {data['newly_rejected']} newly rejected); {data['errors']} could not be "
        "re-applied.",
        "",
    ]
    if data["changed"]:
        lines += [
            "| task | run | # | rung | before | after | failing now |",
            "|---|---|---:|---|---|---|---|",
        ]
        for p in result.patches:
            if p.changed:
                lines.append(
                    f"| {p.task} | {p.run_id} | {p.seq} | {p.rung} | {p.before} | {p.after} "
                    f"| {', '.join(p.failed_after) or p.error or '—'} |"
                )
        lines.append("")
    lines += [f"- skipped {s}" for s in result.skipped]
    if data["patches"]:
        lines.append(f"- {gate_note(data)}")
    return "\n".join(lines) + "\n"


def gate_note(data: dict[str, Any]) -> str:
    """Whether the gate that judged the patches now is configured as the one that judged them
    then (the digest each attempt record carries): a verdict may change with the gate's
    configuration (its evaluators, their settings), not only with what the gate runs on."""
    now = str(data["gate_sha256"])[:12]
    differs, unrecorded, total = data["gate_differs"], data["gate_unrecorded"], data["patches"]
    if differs:
        return (
            f"the gate is configured otherwise than when {differs} of the {total} patch(es) were "
            f"judged (gate sha256 {now}… now): a changed verdict may come from the new "
            "configuration, not the patch; re-gate with the run's configuration to check the "
            "record itself"
        )
    if unrecorded == total:
        return (
            "the records predate gate digests: whether the gate was configured the same is unknown"
        )
    return f"the gate is configured as when the patches were judged (gate sha256 {now}…)"
