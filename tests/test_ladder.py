"""The ladder policy as a table: history in, next (rung, attempt) out. No I/O."""

from __future__ import annotations

import pytest

from cascade.config import RungConfig
from cascade.errors import UsageError
from cascade.ladder import Tried, next_step

LADDER = (
    RungConfig(name="local", model="ollama_chat/q", attempts=2),
    RungConfig(name="cheap", model="gpt-4o-mini", attempts=1),
    RungConfig(name="strong", model="gpt-4o", attempts=2),
)

R, V, E = "rejected", "verified", "edit_error"
P = "provider_error"


@pytest.mark.parametrize(
    ("history", "start_at", "expected"),
    [
        ([], None, ("local", 1)),
        ([], "strong", ("strong", 1)),
        ([Tried("local", R)], None, ("local", 2)),
        ([Tried("local", R), Tried("local", E)], None, ("cheap", 1)),
        ([Tried("local", R), Tried("local", R), Tried("cheap", R)], None, ("strong", 1)),
        ([Tried("strong", R)], "strong", ("strong", 2)),
        ([Tried("strong", R), Tried("strong", R)], "strong", None),
        ([Tried("local", R), Tried("local", V)], None, None),
        ([Tried("local", P, action="retry")], None, ("local", 2)),
        ([Tried("local", P, action="escalate")], None, ("cheap", 1)),
        ([Tried("local", P, action="stop")], None, None),
        ([Tried("cheap", P, action="escalate")], "cheap", ("strong", 1)),
    ],
)
def test_next_step(
    history: list[Tried], start_at: str | None, expected: tuple[str, int] | None
) -> None:
    step = next_step(LADDER, history, start_at)
    assert (None if step is None else (step.rung.name, step.attempt)) == expected


def test_reasons_say_why() -> None:
    first = next_step(LADDER, [])
    assert first is not None and "cheapest" in first.reason
    climb = next_step(LADDER, [Tried("local", R, "gate rejected (pytest)")] * 2)
    assert climb is not None
    assert climb.reason == "climb to 'cheap': 'local' 2 attempt(s) failed: gate rejected (pytest)"
    override = next_step(LADDER, [], "cheap")
    assert override is not None and "--start-at" in override.reason


def test_unknown_start_rung_lists_the_ladder() -> None:
    with pytest.raises(UsageError, match="local, cheap, strong"):
        next_step(LADDER, [], "huge")
