"""The outcome a run is sealed with, derived from its attempt records: its status and why the
ladder stopped, cost, the verified rung, and — when nothing verified — the best unverified
candidate kept for a human. The engine seals with `sealed_outcome`; a run that ended in an
error the engine did not catch is sealed with `error_outcome` from what its folder holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cascade.proof.run_folder import RunFolder
from cascade.records import Attempt, Candidate, Patch, RunOutcome, RunStatus


def sealed_outcome(  # noqa: PLR0917 - one call site, every value is a field of the outcome
    run: RunFolder,
    task_id: str,
    base_commit: str,
    status: RunStatus,
    reason: str,
    attempts: Sequence[Attempt],
    patch: Patch | None,
    *,
    duration_s: float,
    usage_error: bool = False,
    workflow: str = "",
) -> RunOutcome:
    """The outcome of a run the engine finished: a verified one names what proves it and who
    wrote the fix; one that verified nothing names its best candidate. `usage_error`: the error
    that stopped it is the configuration's (exit 2)."""
    won = next((a for a in attempts if a.status == "verified"), None)
    proven = won if won is not None and status == "verified" else None
    return RunOutcome(
        run_id=run.run_id,
        task_id=task_id,
        status=status,
        run_dir=str(run.path),
        base_commit=base_commit,
        attempts=len(attempts),
        cost_usd=round(sum(a.cost_usd for a in attempts), 8),
        duration_s=round(duration_s, 3),
        patch_sha256=patch.sha256 if patch else "",
        verified_rung=won.rung if won else "",
        error=reason if status == "error" else "",
        stop_reason=reason,
        best_unverified=None if status == "verified" else best_unverified(attempts),
        proving=proven.proving if proven else (),
        fix_model=proven.model if proven else "",
        usage_error=usage_error and status == "error",
        workflow=workflow,
        route=attempts[0].decision.workflow if attempts and attempts[0].decision else None,
        **review_fields(proven),
    )


def review_fields(won: Attempt | None) -> dict[str, Any]:
    """What a verified attempt's policy asks after it: a person's review (and why, and whom),
    and how the patch may be delivered. Derived from the attempt record, so verify can too."""
    policy = won.policy if won is not None else None
    if policy is None:
        return {}
    why = ""
    if policy.review == "human":
        raised = f", raised by {'; '.join(policy.why)}" if policy.raised_by else ""
        why = f"workflow {policy.workflow!r} asks for a person's review{raised}"
    return {
        "needs_review": policy.review == "human",
        "review_why": why,
        "reviewers": list(policy.reviewers),
        "apply": policy.apply,
    }


def error_outcome(
    run: RunFolder, task_id: str, base_commit: str, error: str, *, duration_s: float
) -> RunOutcome:
    """An error outcome for a run cut short outside the engine's care: its cost is what the
    complete attempt records in its folder say."""
    attempts = run.attempts()
    route = attempts[0].decision.workflow if attempts and attempts[0].decision else None
    return RunOutcome(
        run_id=run.run_id,
        task_id=task_id,
        status="error",
        run_dir=str(run.path),
        base_commit=base_commit,
        attempts=len(attempts),
        cost_usd=round(sum(a.cost_usd for a in attempts), 8),
        duration_s=round(duration_s, 3),
        error=error,
        workflow=route.name if route else "",
        route=route,
    )


def best_unverified(attempts: Sequence[Attempt]) -> Candidate | None:
    """The gated fix that failed the fewest evaluators (then passed the most, then had the
    fewest findings; the latest wins a tie), or None when no patch was gated. An unproven fix
    passed them all."""
    gated = [
        a
        for a in attempts
        if a.status in ("rejected", "unproven") and a.patch_sha256 and a.role == "fix"
    ]
    if not gated:
        return None
    best = min(gated, key=rank)
    return Candidate(
        seq=best.seq,
        rung=best.rung,
        patch_sha256=best.patch_sha256,
        failed=tuple(v.evaluator for v in best.verdicts if not v.passed),
        passed=tuple(v.evaluator for v in best.verdicts if v.passed),
    )


def rank(attempt: Attempt) -> tuple[int, int, int, int]:
    """How close an attempt came (smaller is closer): evaluators failed, passed, findings, age."""
    failed = [v for v in attempt.verdicts if not v.passed]
    passed = len(attempt.verdicts) - len(failed)
    findings = sum(len(v.findings) for v in failed)
    return (len(failed) if attempt.verdicts else 99, -passed, findings, -attempt.seq)
