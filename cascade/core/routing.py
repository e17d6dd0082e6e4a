"""Start-rung routing: the facts a task offers (labels, the paths it touches or is allowed, its
size), and where the task's workflow (`cascade.core.workflows`) puts it on the ladder: a start
rung and a ceiling. Pure functions, table-tested; `--start-at` overrides the workflow and says
so."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cascade.config import RungConfig
from cascade.errors import UsageError
from cascade.records import Alternative, Task

# `path/to/file.py:12` (pytest's short form) or `File "path/to/file.py", line 12`.
_TRACE_PATH = re.compile(r"([\w./-]+\.\w+)(?::\d+|\", line \d+)")


@dataclass(frozen=True)
class TaskFacts:
    labels: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # files in the target tests' tracebacks, and the scope's globs
    size: int = 0  # repository files in the target tests' tracebacks at baseline


@dataclass(frozen=True)
class Route:
    start: int  # ladder index of the first rung
    ceiling: int  # ladder index of the highest rung the task may reach
    because: str  # why the first rung: "the cheapest rung", "routing rule 'docs' (...)"
    source: str  # "default", "rule 'NAME'" or "--start-at"
    rejected: tuple[Alternative, ...] = ()  # rungs routing passed over, with why


def task_facts(task: Task, failures: Mapping[str, str], tracked: Sequence[str]) -> TaskFacts:
    """What routing may look at: labels, the repository files the target tests' failures point
    into (their count is the task's size), and the globs the issue's scope allows."""
    known = set(tracked)
    traced: list[str] = []
    for text in failures.values():
        for match in _TRACE_PATH.finditer(text):
            path = match.group(1).removeprefix("./")
            if path in known and path not in traced:
                traced.append(path)
    paths = tuple(traced) + tuple(p for p in task.issue.scope.allow if p not in traced)
    return TaskFacts(labels=task.issue.labels, paths=paths, size=len(traced))


@dataclass(frozen=True)
class Lane:
    """Where a workflow puts a task on the ladder: its start rung and ceiling (None: the
    cheapest rung, the top), and what of the task chose the workflow."""

    workflow: str
    start: str | None = None
    ceiling: str | None = None
    because: str = ""


def route(
    ladder: Sequence[RungConfig],
    lane: Lane | None = None,
    start_at: str | None = None,
) -> Route:
    """Where the task starts and how high it may climb: `--start-at`, else the workflow's lane,
    else the cheapest rung with no ceiling. `ladder` is the workflow's (a lane of `rungs` has
    only those)."""
    names = [r.name for r in ladder]
    top = len(ladder) - 1
    moves = lane is not None and (lane.start is not None or lane.ceiling is not None)
    ceiling = top if lane is None or lane.ceiling is None else names.index(lane.ceiling)
    if start_at is not None:
        start = start_index(ladder, start_at)
        why = "--start-at, a human override"
        if moves and lane is not None and lane.start is not None:
            why += f" (workflow {lane.workflow!r} would have started at {lane.start!r})"
        below = f"below {start_at!r}, where --start-at starts"
        return Route(start, max(ceiling, start), why, "--start-at", _passed(ladder, start, below))
    if not moves or lane is None:
        return Route(0, top, "the cheapest rung", "default")
    start = names.index(lane.start) if lane.start else 0
    start = min(start, ceiling)
    named = f"workflow {lane.workflow!r}"
    source = named
    why = f"{named} ({lane.because})" if lane.because else named
    if ceiling < top:
        why += f"; it never climbs above {names[ceiling]!r}"
    below = f"below {names[start]!r}, where {named} starts"
    rejected = _passed(ladder, start, below)
    above = f"above {names[ceiling]!r}, the ceiling of {named}"
    rejected += tuple(Alternative(rung=n, why=above) for n in names[ceiling + 1 :])
    return Route(start, ceiling, why, source, rejected)


def start_index(ladder: Sequence[RungConfig], start_at: str | None) -> int:
    """The index of the `--start-at` rung (0 without one); a UsageError naming the ladder."""
    if start_at is None:
        return 0
    names = [r.name for r in ladder]
    if start_at not in names:
        raise UsageError(
            f"--start-at {start_at!r}: no such rung (the ladder is {', '.join(names)})"
        )
    return names.index(start_at)


def _passed(ladder: Sequence[RungConfig], start: int, why: str) -> tuple[Alternative, ...]:
    return tuple(Alternative(rung=r.name, why=why) for r in ladder[:start])
