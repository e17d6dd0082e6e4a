"""Which ladder should this backlog run? Projected from recorded outcomes only (`replay --shadow
all`: every rung alone on every task, each a real run with its proof): every ordered ladder of up
to `max_rungs` recorded rungs, its solve rate (with a Wilson 95% interval), cost, cost per
verified patch, mean attempts and escalation rate; the Pareto frontier of cost against solve
rate; the cheapest ladder that keeps `floor` of the best single rung's solve rate; and what it
saves against always-the-strongest. A ladder's cost on a task is the sum of what its rungs cost
alone, in order, until one verified. A projection needing an outcome the data lacks is
unevaluable, never estimated. No model is called here."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cascade.core.budget import BATCH_CAP
from cascade.report.data import ReportData, TaskResult
from cascade.report.headline import wilson_interval

MAX_LADDERS = 20000  # permutations evaluated at most (10 rungs, 4 deep is 5,860)
ASSUMPTIONS = (
    "A projection assumes a rung's outcome on a task does not depend on the rungs before it: "
    "in a real cascade its prompt also carries their failures' feedback.",
    "Each rung's cost alone includes the stages a cascade runs once per task (writing a "
    "reproduction test first): a projected multi-rung cost counts them once per rung tried.",
    "With [reproduce] independent = true, a rung alone may not fix an issue whose proving test "
    "it wrote, so it can end unproven where a ladder of two rungs would not.",
)


@dataclass(frozen=True)
class Cell:
    """One rung alone on one task: what its run (in a shadow batch) ended with."""

    verified: bool
    cost_usd: float
    attempts: int
    run_dir: str
    status: str


@dataclass(frozen=True)
class Grid:
    """Per task and per recorded rung, the outcome of that rung alone (or why there is none)."""

    tasks: tuple[str, ...]
    rungs: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]  # (rung, task)
    gaps: Mapping[tuple[str, str], str]  # (rung, task) -> why there is no outcome
    sources: Mapping[str, str]  # rung -> the shadow folder its outcomes come from
    configs: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # rung -> its config
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Projection:
    rungs: tuple[str, ...]
    n: int
    solved: int
    cost_usd: float
    attempts: int
    escalated: int
    missing: tuple[tuple[str, str], ...] = ()  # (rung, task) outcomes it needed and lacks

    @property
    def evaluable(self) -> bool:
        return not self.missing

    @property
    def solve_rate(self) -> float:
        return self.solved / self.n if self.n else 0.0


def build_grid(data: ReportData) -> Grid:
    """The grid from a batch's single-rung shadows, over the batch's own tasks. A rung recorded
    twice (a `--shadow strongest` folder and a TOML shadow of the same rung) takes the first
    folder by name; a run whose proof does not verify is a gap, not an outcome."""
    tasks = tuple(t.task_id for t in data.tasks)
    order = {name: i for i, name in enumerate(data.ladder)}
    singles: dict[str, tuple[str, ReportData]] = {}
    notes: list[str] = []
    for folder, shadow in sorted(data.shadows.items()):
        if len(shadow.ladder) != 1:
            continue
        rung = shadow.ladder[0]
        if rung not in singles:
            singles[rung] = (folder, shadow)
        elif singles[rung][1].models.get(rung) != shadow.models.get(rung):
            notes.append(
                f"shadow {folder} runs a rung named {rung!r} with another model "
                f"({shadow.models.get(rung)}) than shadow {singles[rung][0]}: left out; give "
                "its rung a name of its own"
            )
    rungs = tuple(sorted(singles, key=lambda r: (order.get(r, len(order)), r)))
    cells: dict[tuple[str, str], Cell] = {}
    gaps: dict[tuple[str, str], str] = {}
    for rung in rungs:
        folder, shadow = singles[rung]
        by_id = {t.task_id: t for t in shadow.tasks}
        for task_id in tasks:
            result = by_id.get(task_id)
            why = _gap(result, shadow, task_id)
            if why:
                gaps[(rung, task_id)] = why
            else:
                assert result is not None
                cells[(rung, task_id)] = _cell(result)
    return Grid(
        tasks=tasks,
        rungs=rungs,
        cells=cells,
        gaps=gaps,
        sources={r: singles[r][1].sources[0] if singles[r][1].sources else "" for r in rungs},
        configs={r: singles[r][1].rung_configs.get(r, {}) for r in rungs},
        notes=tuple(notes),
    )


def _gap(result: TaskResult | None, shadow: ReportData, task_id: str) -> str:
    if result is None:
        stopped = " (the shadow batch was stopped by its budget)" if shadow.budget_notes else ""
        return "not run" + stopped if task_id not in shadow.planned else "not finished" + stopped
    if result.outcome.status == "error":
        return "infrastructure error (replay with --retry-errors)"
    if result.outcome.status == "budget_exhausted" and BATCH_CAP in result.outcome.stop_reason:
        # The shadow's own batch purse ran out: what the rung would have done is unknown. (A
        # task's or rung's cap is the rung's outcome under the config: the ladder stops too.)
        return "stopped by the batch's budget before this rung finished (a cap, not its answer)"
    if result.proof is not None and not result.proof.ok:
        return f"its proof does not verify: {result.proof.status}"
    return ""


def _cell(result: TaskResult) -> Cell:
    o = result.outcome
    return Cell(o.status == "verified", o.cost_usd, len(result.attempts), result.run_dir, o.status)


def project(grid: Grid, rungs: Sequence[str], tasks: Sequence[str] | None = None) -> Projection:
    """The ladder `rungs` on `tasks` (default: all): each task climbs until a rung verifies it."""
    chosen = grid.tasks if tasks is None else tuple(tasks)
    solved = attempts = escalated = 0
    cost = 0.0
    missing: list[tuple[str, str]] = []
    for task_id in chosen:
        for depth, rung in enumerate(rungs):
            cell = grid.cells.get((rung, task_id))
            if cell is None:
                missing.append((rung, task_id))
                break
            cost += cell.cost_usd
            attempts += cell.attempts
            escalated += depth == 1
            if cell.verified:
                solved += 1
                break
    return Projection(tuple(rungs), len(chosen), solved, cost, attempts, escalated, tuple(missing))


def candidates(rungs: Sequence[str], max_rungs: int) -> list[tuple[str, ...]]:
    """Every ordered ladder of 1 to `max_rungs` distinct rungs, shortest first."""
    out: list[tuple[str, ...]] = []
    for size in range(1, min(max_rungs, len(rungs)) + 1):
        out += itertools.permutations(rungs, size)
    return out


def frontier(projections: Sequence[Projection]) -> list[Projection]:
    """The evaluable ladders no other beats on both cost and solve rate, cheapest first (of
    equal ones, the shortest, then the first listed)."""
    ranked = sorted(
        (p for p in projections if p.evaluable),
        key=lambda p: (round(p.cost_usd, 10), -p.solved, len(p.rungs)),
    )
    best: list[Projection] = []
    for p in ranked:
        if not best or p.solved > best[-1].solved:
            best.append(p)
    return best


def count_ladders(rungs: int, max_rungs: int) -> int:
    """How many ladders `candidates` would make, without making them."""
    return sum(math.perm(rungs, size) for size in range(1, min(max_rungs, rungs) + 1))


def best_single(projections: Sequence[Projection]) -> Projection | None:
    """The evaluable one-rung ladder that solves the most (of equal ones, the cheapest)."""
    singles = [p for p in projections if p.evaluable and len(p.rungs) == 1]
    return min(singles, key=lambda p: (-p.solved, p.cost_usd), default=None)


def unknown_floor(projections: Sequence[Projection]) -> str:
    """Why the best single rung's solve rate is not known ("" when it is): a rung missing
    outcomes that could, with them, solve more than the best complete one."""
    best = best_single(projections)
    if best is None:
        return "no rung has an outcome on every task"
    for p in projections:
        if len(p.rungs) == 1 and not p.evaluable and p.solved + len(p.missing) > best.solved:
            return (
                f"{p.rungs[0]} lacks {len(p.missing)} outcome(s) (e.g. {p.missing[0][1]}); with "
                f"them it might solve more than {best.rungs[0]}'s {best.solved}, so the floor "
                "is not known"
            )
    return ""


def cheapest_at_floor(
    projections: Sequence[Projection], floor: float
) -> tuple[Projection | None, float]:
    """The cheapest evaluable ladder whose solve rate is at least `floor` times the best single
    rung's, and that target rate (check `unknown_floor` first). None when it verifies nothing."""
    single = best_single(projections)
    if single is None:
        return None, 0.0
    target = floor * single.solve_rate
    meeting = [p for p in projections if p.evaluable and p.solve_rate >= target - 1e-12]
    pick = min(
        meeting,
        key=lambda p: (round(p.cost_usd, 10), -p.solved, len(p.rungs), p.attempts),
        default=None,
    )
    return (pick if pick is not None and pick.solved else None), target


def summary(p: Projection) -> dict[str, Any]:
    interval = wilson_interval(p.solved, p.n)
    row: dict[str, Any] = {
        "ladder": list(p.rungs),
        "tasks": p.n,
        "evaluable": p.evaluable,
    }
    if not p.evaluable:
        row["missing"] = [{"rung": r, "task": t} for r, t in p.missing]
        return row
    return {
        **row,
        "verified": p.solved,
        "solve_rate": round(p.solve_rate, 4),
        "ci95": list(interval) if interval else None,
        "cost_usd": round(p.cost_usd, 8),
        "per_verified_usd": round(p.cost_usd / p.solved, 8) if p.solved else None,
        "mean_attempts": round(p.attempts / p.n, 3) if p.n else None,
        "escalation_rate": round(p.escalated / p.n, 4) if p.n else None,
    }
