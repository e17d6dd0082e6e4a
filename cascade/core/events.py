"""What a run reports while it runs, for a display: the workflow chosen, the sandbox opening, the
baseline, each attempt starting and ending, the sealed outcome. The proof log, not these, is the
record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cascade.records import Attempt, RunOutcome

EventKind = Literal["workflow", "open", "baseline", "attempt", "agent", "attempt_done", "done"]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    message: str
    attempt: Attempt | None = None
    outcome: RunOutcome | None = None
