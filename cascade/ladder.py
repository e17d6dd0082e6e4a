"""The ladder policy: a pure function of (ladder, history, override) that names the next rung and
attempt, and says why. No I/O, so it is table-tested."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cascade.config import RungConfig
from cascade.errors import ModelAction, UsageError


@dataclass(frozen=True)
class Tried:
    """What the policy needs to know of one finished attempt."""

    rung: str
    status: str  # an AttemptStatus
    why: str = ""  # short: the failing evaluators, the edit error, the provider fault
    action: ModelAction | None = None  # for provider errors: what the fault asks for


@dataclass(frozen=True)
class Step:
    rung: RungConfig
    attempt: int  # 1-based within the rung
    reason: str


def start_index(ladder: Sequence[RungConfig], start_at: str | None) -> int:
    if start_at is None:
        return 0
    names = [r.name for r in ladder]
    if start_at not in names:
        raise UsageError(
            f"--start-at {start_at!r}: no such rung (the ladder is {', '.join(names)})"
        )
    return names.index(start_at)


def next_step(
    ladder: Sequence[RungConfig], history: Sequence[Tried], start_at: str | None = None
) -> Step | None:
    """The next attempt to make, or None when the run is over (verified, stopped, exhausted)."""
    first = start_index(ladder, start_at)
    if not history:
        rung = ladder[first]
        reason = (
            f"start at {rung.name!r}: --start-at override"
            if start_at
            else f"start at {rung.name!r}: the cheapest rung"
        )
        return Step(rung, 1, reason)
    last = history[-1]
    if last.status == "verified" or last.action == "stop":
        return None
    index = next(i for i, r in enumerate(ladder) if r.name == last.rung)
    rung = ladder[index]
    used = sum(1 for t in history if t.rung == rung.name)
    # A provider fault that asks to escalate ends the rung at once; anything else may retry.
    if last.action != "escalate" and used < rung.attempts:
        return Step(
            rung, used + 1, f"retry {rung.name!r} ({used}/{rung.attempts} used): {last.why}"
        )
    if index + 1 < len(ladder):
        upper = ladder[index + 1]
        spent = "provider fault" if last.action == "escalate" else f"{used} attempt(s) failed"
        return Step(upper, 1, f"climb to {upper.name!r}: {rung.name!r} {spent}: {last.why}")
    return None
