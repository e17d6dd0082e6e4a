"""What a run learns from its attempts: the one-line `why` the ladder reasons with, and the
feedback a later prompt carries (`carry_feedback`, `carry_patch`). Pure functions of the attempt
records; the outcome a run is sealed with is built in `cascade.proof.outcome`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from cascade.core.ladder import Tried
from cascade.errors import ModelError
from cascade.proof.outcome import rank
from cascade.records import Attempt

FAILED = ("rejected", "edit_error", "empty_patch")  # what the next prompt learns from
PATCH_CHARS = 3000  # of the previous patch, when it is carried


def why(attempt: Attempt) -> str:
    """Why an attempt did not verify, in the words an escalation reason uses."""
    first = (attempt.error or attempt.feedback).strip().splitlines()
    detail = first[0][:200] if first else attempt.status
    if attempt.status == "rejected":
        failed = [v.evaluator for v in attempt.verdicts if not v.passed]
        return f"gate failure: {', '.join(failed) or 'no evaluator passed'} failed"
    if attempt.status == "edit_error":
        return f"parse failure: the answer could not be applied ({detail})"
    if attempt.status == "empty_patch":
        return "empty patch: the answer changed nothing"
    if attempt.status == "provider_error":
        return f"provider fault: {detail}"
    if attempt.status == "infra_error":
        return f"infrastructure fault: {detail}"
    if attempt.status == "cancelled":
        return "cancelled: not gated"
    if attempt.status == "unproven":
        return f"unproven: {detail}"
    return attempt.status


def tried(record: Attempt, fault: ModelError | None = None) -> Tried:
    """What the policy keeps of an attempt record (and of the fault that ended it)."""
    return Tried(
        rung=record.rung,
        status=record.status,
        why=why(record),
        action=fault.action if fault else None,
        attempt=record.attempt,
        retry=record.retry,
        fault=record.fault or "",
        retry_after=fault.retry_after if fault else None,
        cost_usd=record.cost_usd,
    )


def carried(
    attempts: Sequence[Attempt],
    mode: Literal["none", "last", "all"],
    limit: int,
    diffs: Mapping[str, str] | None = None,
) -> str:
    """The feedback for the next prompt: the last failed round's best attempt ("last"), a short
    line per failed attempt ending with the last one in full ("all"), or nothing; with `diffs`
    (patch sha256 -> diff) the previous patch too."""
    failed = [a for a in attempts if a.status in FAILED and a.feedback]
    if mode == "none" or not failed:
        return ""
    last_round = [a for a in failed if (a.rung, a.attempt) == (failed[-1].rung, failed[-1].attempt)]
    best = min(last_round, key=rank)
    text = best.feedback.strip()
    if mode == "all" and len(failed) > 1:
        earlier = [a for a in failed if a is not best]
        lines = [f"- attempt #{a.seq} ({a.rung}): {_first(a.feedback)}" for a in earlier]
        text = "Earlier attempts:\n" + "\n".join(lines) + f"\n\nThe latest (#{best.seq}):\n{text}"
    text = _trim(text, limit)
    diff = (diffs or {}).get(best.patch_sha256, "") if best.patch_sha256 else ""
    if diff:
        patch = _trim(diff.strip(), PATCH_CHARS)
        text += f"\n\nThe patch of that attempt (reverted since):\n```diff\n{patch}\n```"
    return text


def _first(text: str) -> str:
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    return line if len(line) <= 160 else line[:159] + "…"


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20].rstrip() + "\n[… trimmed]"
