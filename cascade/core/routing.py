"""Start-rung routing: the facts a task offers before any model sees it (labels, the paths it
touches or is allowed, its size) and the config's rules that map them to a start rung and a
ceiling. Pure functions, table-tested; `--start-at` overrides every rule and says so."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from cascade.config import RouteRule, RungConfig
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


def matches(rule: RouteRule, facts: TaskFacts) -> bool:
    """Every condition the rule gives must hold; a rule on paths never matches a task with none."""
    if rule.labels and not set(rule.labels) & set(facts.labels):
        return False
    if rule.paths and not (facts.paths and all(_inside(p, rule.paths) for p in facts.paths)):
        return False
    if rule.touches and not any(_inside(p, rule.touches) for p in facts.paths):
        return False
    if rule.min_size is not None and facts.size < rule.min_size:
        return False
    return rule.max_size is None or facts.size <= rule.max_size


def route(
    ladder: Sequence[RungConfig],
    rules: Sequence[RouteRule],
    facts: TaskFacts,
    start_at: str | None = None,
) -> Route:
    """Where the task starts and how high it may climb: `--start-at`, else the first matching
    rule, else the cheapest rung with no ceiling."""
    names = [r.name for r in ladder]
    top = len(ladder) - 1
    rule = next((r for r in rules if matches(r, facts)), None)
    if start_at is not None:
        start = start_index(ladder, start_at)
        why = "--start-at, a human override"
        if rule is not None:
            why += f" (routing rule {rule.label!r} would have applied)"
        ceiling = top if rule is None or rule.max_rung is None else names.index(rule.max_rung)
        below = f"below {start_at!r}, where --start-at starts"
        return Route(start, max(ceiling, start), why, "--start-at", _passed(ladder, start, below))
    if rule is None:
        return Route(0, top, "the cheapest rung", "default")
    start = names.index(rule.start_at) if rule.start_at else 0
    ceiling = names.index(rule.max_rung) if rule.max_rung else top
    start = min(start, ceiling)
    source = f"rule {rule.label!r}"
    why = f"routing rule {rule.label!r} ({_describe(rule, facts)})"
    if ceiling < top:
        why += f"; it never climbs above {names[ceiling]!r}"
    below = f"below {names[start]!r}, where routing rule {rule.label!r} starts"
    rejected = _passed(ladder, start, below)
    above = f"above {names[ceiling]!r}, the ceiling of routing rule {rule.label!r}"
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


def _inside(path: str, globs: Sequence[str]) -> bool:
    # fnmatch's `*` crosses `/`, so `docs/**` and `docs/*` both cover a whole tree.
    return any(fnmatchcase(path, g) for g in globs)


def _describe(rule: RouteRule, facts: TaskFacts) -> str:
    said = []
    if rule.labels:
        said.append(f"label {', '.join(sorted(set(rule.labels) & set(facts.labels)))}")
    if rule.paths:
        said.append(f"every path inside {', '.join(rule.paths)}")
    if rule.touches:
        said.append(f"touches {', '.join(rule.touches)}")
    if rule.min_size is not None or rule.max_size is not None:
        said.append(f"size {facts.size}")
    return "; ".join(said)
