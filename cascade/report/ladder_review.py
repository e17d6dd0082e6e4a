"""The routing review of a batch (`cascade report DIR --ladders`), as one JSON-able dict: the
recorded rungs, every projected ladder, the frontier, the recommendation at the floor as a
ready `[[ladder]]` block, its saving against always-the-strongest, the replayed ladder beside
its own projection, and per label and per workflow where the data is large enough."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cascade.report.data import ReportData, TaskResult
from cascade.report.headline import wilson_interval
from cascade.report.ladders import (
    ASSUMPTIONS,
    MAX_LADDERS,
    Grid,
    Projection,
    best_single,
    build_grid,
    candidates,
    cheapest_at_floor,
    count_ladders,
    frontier,
    project,
    summary,
    unknown_floor,
)
from cascade.report.numbers import NO_LABEL, workflow_of
from cascade.workflow_config import DEFAULT_WORKFLOW

AGAIN = "replay the backlog with --shadow all"


def review_ladders(
    data: ReportData, *, floor: float, max_rungs: int, min_group: int
) -> dict[str, Any]:
    grid = build_grid(data)
    review: dict[str, Any] = {
        "floor": floor,
        "max_rungs": max_rungs,
        "assumptions": list(ASSUMPTIONS),
        "rungs": [_rung_row(grid, r) for r in grid.rungs],
        "tasks": len(grid.tasks),
        "strongest": data.ladder[-1] if data.ladder else None,
        "notes": list(grid.notes),
    }
    batch = list(data.ladder)
    absent = [r for r in batch if r not in grid.rungs]
    if not grid.rungs or not grid.tasks:
        return {**review, "available": False, "why": _why_none(grid, batch)}
    count = count_ladders(len(grid.rungs), max_rungs)
    if count > MAX_LADDERS:
        return {
            **review,
            "available": False,
            "why": f"{count} ladders of up to {max_rungs} of {len(grid.rungs)} rungs: "
            f"more than {MAX_LADDERS}; lower --max-rungs",
        }
    ladders = candidates(grid.rungs, max_rungs)
    overall = _choose(grid, ladders, floor, review["strongest"], None)
    return {
        **review,
        "available": True,
        "absent_rungs": absent,
        **overall,
        "ready_block": _block(grid, overall["recommended"]),
        "replayed": _replayed(data, grid),
        "groups": _groups(data, grid, ladders, floor, min_group, _rungs_of(overall)),
        "cells": _cells(grid),
    }


def _why_none(grid: Grid, batch: list[str]) -> str:
    if not grid.tasks:
        return "the batch has no finished task"
    return f"no rung of this batch ({' → '.join(batch)}) was run alone: {AGAIN}"


def _rung_row(grid: Grid, rung: str) -> dict[str, Any]:
    cells = [grid.cells[(rung, t)] for t in grid.tasks if (rung, t) in grid.cells]
    return {
        "rung": rung,
        "model": grid.configs.get(rung, {}).get("model"),
        "source": grid.sources.get(rung, ""),
        "outcomes": len(cells),
        "verified": sum(c.verified for c in cells),
        "cost_usd": round(sum(c.cost_usd for c in cells), 8),
        "gaps": [
            {"task": t, "why": grid.gaps[(rung, t)]} for t in grid.tasks if (rung, t) in grid.gaps
        ],
    }


def _choose(
    grid: Grid,
    ladders: Sequence[tuple[str, ...]],
    floor: float,
    strongest: str | None,
    tasks: Sequence[str] | None,
) -> dict[str, Any]:
    projections = [project(grid, ladder, tasks) for ladder in ladders]
    unknown = unknown_floor(projections)
    best, target = (None, 0.0) if unknown else cheapest_at_floor(projections, floor)
    top = next((p for p in projections if strongest is not None and p.rungs == (strongest,)), None)
    out: dict[str, Any] = {
        "ladders": [summary(p) for p in projections],
        "evaluable": sum(p.evaluable for p in projections),
        "unevaluable": sum(not p.evaluable for p in projections),
        "frontier": [summary(p) for p in frontier(projections)],
        "best_single": summary(single) if (single := best_single(projections)) else None,
        "target_solve_rate": round(target, 4),
        "recommended": summary(best) if best else None,
        "why_none": "" if best else (unknown or _why_no_pick(projections)),
        "always_strongest": summary(top) if top else None,
        "saving": _saving(best, top),
    }
    return out


def _why_no_pick(projections: Sequence[Projection]) -> str:
    if not any(p.evaluable for p in projections):
        return "no ladder is evaluable: each needs an outcome the batch lacks"
    return "no ladder verifies any task"


def _saving(best: Projection | None, top: Projection | None) -> dict[str, Any] | None:
    if best is None or top is None or not top.evaluable:
        return None
    usd = top.cost_usd - best.cost_usd
    return {
        "usd": round(usd, 8),
        "share": round(usd / top.cost_usd, 4) if top.cost_usd else None,
        "solve_rate_change": round(best.solve_rate - top.solve_rate, 4),
    }


def _replayed(data: ReportData, grid: Grid) -> dict[str, Any]:
    """The ladder the batch actually climbed, measured, beside its projection from the
    shadows: the check on the independence assumption."""
    tasks = data.tasks
    solved = sum(t.outcome.status == "verified" for t in tasks)
    cost = sum(t.outcome.cost_usd for t in tasks)
    interval = wilson_interval(solved, len(tasks))
    actual = {
        "ladder": list(data.ladder),
        "tasks": len(tasks),
        "verified": solved,
        "solve_rate": round(solved / len(tasks), 4) if tasks else None,
        "ci95": list(interval) if interval else None,
        "cost_usd": round(cost, 8),
        "per_verified_usd": round(cost / solved, 8) if solved else None,
        "mean_attempts": round(sum(len(t.attempts) for t in tasks) / len(tasks), 3)
        if tasks
        else None,
        "escalation_rate": _escalated(tasks),
    }
    missing = [r for r in data.ladder if r not in grid.rungs]
    notes = []
    if data.ladder and any(_moved(t, data.ladder[0]) for t in tasks):
        notes.append(
            "some tasks did not start on the ladder's first rung (a workflow or routing rule "
            "moved them): the replayed numbers are not this ladder's alone"
        )
    if missing:
        return {
            "actual": actual,
            "projected": None,
            "why": f"no shadow of {', '.join(missing)}: {AGAIN}",
            "notes": notes,
        }
    return {"actual": actual, "projected": summary(project(grid, data.ladder)), "notes": notes}


def _moved(task: TaskResult, first: str) -> bool:
    """The task's first attempt was on another rung, and not because the first passed itself
    over (a search rung with no failing test to search against passes over alone too)."""
    if not task.attempts or task.attempts[0].rung == first:
        return False
    decision = task.attempts[0].decision
    return decision is None or first not in {r.rung for r in decision.rejected}


def _escalated(tasks: Sequence[TaskResult]) -> float | None:
    if not tasks:
        return None
    climbed = sum(1 for t in tasks if len({a.rung for a in t.attempts}) > 1)
    return round(climbed / len(tasks), 4)


def _groups(  # noqa: PLR0917 - one caller
    data: ReportData,
    grid: Grid,
    ladders: Sequence[tuple[str, ...]],
    floor: float,
    min_group: int,
    overall: list[str],
) -> list[dict[str, Any]]:
    """A recommendation per label and per workflow with at least `min_group` tasks; the
    smaller ones are listed with their size, never recommended from too little data."""
    members: dict[tuple[str, str], list[str]] = {}
    for task in data.tasks:
        for label in task.labels or (NO_LABEL,):
            members.setdefault(("label", label), []).append(task.task_id)
        members.setdefault(("workflow", workflow_of(task)), []).append(task.task_id)
    rows = []
    for (kind, name), ids in sorted(members.items()):
        row: dict[str, Any] = {"kind": kind, "name": name, "tasks": len(ids)}
        if kind == "workflow" and ids == list(grid.tasks):
            row["why"] = "every task: the overall recommendation"
        elif len(ids) < min_group:
            row["why"] = f"{len(ids)} task(s), fewer than {min_group}: not enough to recommend"
        else:
            chosen = _choose(grid, ladders, floor, data.ladder[-1] if data.ladder else None, ids)
            row.update(
                recommended=chosen["recommended"],
                target_solve_rate=chosen["target_solve_rate"],
                saving=chosen["saving"],
            )
            if chosen["recommended"]:
                row.update(_group_block(kind, name, chosen["recommended"]["ladder"], overall))
        rows.append(row)
    return rows


def _cells(grid: Grid) -> list[dict[str, Any]]:
    """Every outcome the projections rest on, with the run folder it comes from."""
    rows: list[dict[str, Any]] = []
    for task_id in grid.tasks:
        for rung in grid.rungs:
            cell = grid.cells.get((rung, task_id))
            if cell is None:
                rows.append({"task": task_id, "rung": rung, "gap": grid.gaps[(rung, task_id)]})
                continue
            rows.append({
                "task": task_id,
                "rung": rung,
                "status": cell.status,
                "verified": cell.verified,
                "cost_usd": round(cell.cost_usd, 8),
                "attempts": cell.attempts,
                "run_dir": cell.run_dir,
            })  # fmt: skip
    return rows


def _block(grid: Grid, recommended: dict[str, Any] | None) -> str:
    """The recommendation as `[[ladder]]` entries to paste into the config: each rung as the
    batch ran it (or its name and model only, for a batch recorded before rung configs were)."""
    if recommended is None:
        return ""
    parts = ["# cascade report --ladders: the cheapest ladder at the floor"]
    for rung in recommended["ladder"]:
        config = dict(grid.configs.get(rung) or {"name": rung})
        config.setdefault("name", rung)
        parts.append("")
        parts.append("[[ladder]]")
        if len(config) == 1:
            parts.append("# this rung's settings are not in the batch: copy them from the config")
        for key in ("name", "model", *sorted(set(config) - {"name", "model"})):
            if key in config:
                parts.append(f"{key} = {toml_value(config[key])}")
    return "\n".join(parts) + "\n"


def _rungs_of(overall: dict[str, Any]) -> list[str]:
    recommended = overall.get("recommended")
    return list(recommended["ladder"]) if recommended else []


def _group_block(kind: str, name: str, rungs: list[str], overall: list[str]) -> dict[str, str]:
    """For a label, a `[[workflows]]` entry whose tasks may use only these rungs; for a
    workflow, the `ladder` line to add to its entry. The rungs climb in the config's ladder
    order, so a block is given only when they keep the recommended ladder's order."""
    at = iter(overall)
    if not all(rung in at for rung in rungs):  # not a subsequence of the overall ladder
        return {
            "block_why": f"its ladder ({' → '.join(rungs)}) is not a part of the recommended "
            f"one ({' → '.join(overall) or 'none'}) in the same order: run these tasks with a "
            "config of their own"
        }
    line = f"ladder = {{ rungs = {toml_value(rungs)} }}"
    if kind == "workflow":
        if name == DEFAULT_WORKFLOW:
            return {"block_why": "the default workflow climbs the [[ladder]] itself"}
        return {"ready_block": line + "\n", "block_why": f"add this line to workflow {name!r}"}
    if name == NO_LABEL:
        return {"block_why": "tasks without a label: no workflow can match them by one"}
    lines = [
        "# A new workflow takes the default gate, proof, review and apply, and the first",
        "# workflow that matches wins: place it after those that must keep a stricter path.",
        "[[workflows]]",
        f"name = {toml_value(f'label {name}')}",
        f"match = {{ labels = [{toml_value(name)}] }}",
        line,
    ]
    return {"ready_block": "\n".join(lines) + "\n"}


def toml_value(value: Any) -> str:
    """A TOML value for what a rung's config holds: strings, numbers, booleans, lists and
    tables (inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped, the rest as it is
    (a character TOML cannot hold, a lone surrogate, becomes U+FFFD)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else _string(key)
