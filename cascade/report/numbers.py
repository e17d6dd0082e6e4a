"""The numbers of a replay report, as one JSON-able dict: outcomes, rungs, workflows, cost, time,
tokens, cluster nodes, where patches fail, and counterfactual baselines computed only from data
that holds them (a baseline the data cannot support is listed with the reason, never estimated)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, get_args

from cascade.proof.log import first_choice
from cascade.proof.run_folder import PATCH_FILE, SUMMARY_FILE
from cascade.records import SCHEMA_VERSION, RunStatus
from cascade.report.data import ReportData, TaskResult
from cascade.report.headline import build_headline
from cascade.report.nodes import node_rows
from cascade.report.provenance import provenance

NO_LABEL = "(no label)"
# A run sealed before outcomes named their workflow (or an error sealed outside the engine,
# before its first attempt): which one it ran is not on record, and is not guessed.
NOT_RECORDED = "(not recorded)"


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    value = ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
    return round(value, 3)


def _ratio(a: float, b: float, digits: int = 4) -> float | None:
    return round(a / b, digits) if b else None


def _money(value: float) -> float:
    return round(value, 8)


def _outcomes(tasks: Sequence[TaskResult]) -> dict[str, int]:
    """A count for every run status the records know (verified, exhausted, error, ...)."""
    counts = Counter(t.outcome.status for t in tasks)
    return {s: counts.get(s, 0) for s in get_args(RunStatus)}


def _rungs_used(task: TaskResult) -> list[str]:
    return list(dict.fromkeys(a.rung for a in task.attempts))


def _escalation_rate(tasks: Sequence[TaskResult]) -> float | None:
    """The share of the tasks that made an attempt which climbed past their first rung."""
    started = [t for t in tasks if t.attempts]
    return _ratio(sum(1 for t in started if len(_rungs_used(t)) > 1), len(started))


def workflow_of(task: TaskResult) -> str:
    """The workflow the run says it took: its outcome's, else its first attempt's decision."""
    if task.outcome.workflow:
        return task.outcome.workflow
    choice = first_choice(task.attempts)
    return choice.name if choice is not None else NOT_RECORDED


def build_report(data: ReportData) -> dict[str, Any]:
    tasks, ladder = data.tasks, list(data.ladder)
    attempts = [a for t in tasks for a in t.attempts]
    outcomes = _outcomes(tasks)
    verified = outcomes["verified"]
    total_cost = sum(t.outcome.cost_usd for t in tasks)
    unverified_cost = sum(t.outcome.cost_usd for t in tasks if t.outcome.status != "verified")
    aborted_cost = sum(a.cost_usd for a in data.aborted_attempts)
    per_task_attempts = [len(t.attempts) for t in tasks]
    report = {
        "schema_version": SCHEMA_VERSION,
        "sources": data.sources,
        "ladder": ladder,
        "gate": list(data.gate or dict.fromkeys(v.evaluator for a in attempts for v in a.verdicts)),
        "base_commits": sorted(data.base_commits),
        "tasks": {
            "total": len(tasks),
            **outcomes,
            "statuses": list(outcomes),
            "solve_rate": _ratio(verified, len(tasks)),
            "needs_review": sum(1 for t in tasks if t.outcome.needs_review),
            "not_started": data.not_started,
            "aborted_runs": data.aborted_runs,
        },
        "budget": {"stopped": bool(data.budget_notes), "notes": data.budget_notes},
        "rungs": _rungs(tasks, ladder),
        "escalation_rate": _escalation_rate(tasks),
        "attempts": {
            "total": len(attempts),
            "per_task_mean": _ratio(sum(per_task_attempts), len(tasks), 3),
            "per_task_max": max(per_task_attempts, default=0),
            "per_task_histogram": {
                str(k): v for k, v in sorted(Counter(per_task_attempts).items())
            },
        },
        "cost": {
            "total_usd": _money(total_cost),
            "per_verified_usd": _ratio(total_cost, verified, 8),
            "unverified_usd": _money(unverified_cost),
            "aborted_runs_usd": _money(aborted_cost),
            "all_spent_usd": _money(total_cost + aborted_cost),
        },
        "time": {
            "task_p50_s": percentile([t.outcome.duration_s for t in tasks], 0.5),
            "task_p95_s": percentile([t.outcome.duration_s for t in tasks], 0.95),
            "attempt_p50_s": percentile([a.duration_s for a in attempts], 0.5),
            "attempt_p95_s": percentile([a.duration_s for a in attempts], 0.95),
        },
        "tokens": {
            "in": sum(a.usage.prompt_tokens for a in attempts),
            "out": sum(a.usage.completion_tokens for a in attempts),
        },
        "labels": _labels(tasks),
        "workflows": _workflows(tasks),
        "failures": _failures(tasks),
        "baselines": _baselines(data),
        "nodes": node_rows(tasks),  # [] unless a task ran on a cluster node
        "task_rows": [_row(t) for t in tasks],
        "notes": data.notes,
        "provenance": provenance(ladder, data.models, data.config_files),
    }
    report["headline"] = build_headline(report)
    return report


def _rungs(tasks: Sequence[TaskResult], ladder: list[str]) -> dict[str, dict[str, Any]]:
    names = list(dict.fromkeys([*ladder, *(a.rung for t in tasks for a in t.attempts)]))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        tried = [a for t in tasks for a in t.attempts if a.rung == name]
        out[name] = {
            "verified": sum(1 for t in tasks if t.outcome.verified_rung == name),
            "attempts": len(tried),
            "tasks_reached": sum(1 for t in tasks if name in _rungs_used(t)),
            "cost_usd": _money(sum(a.cost_usd for a in tried)),
            "tokens_in": sum(a.usage.prompt_tokens for a in tried),
            "tokens_out": sum(a.usage.completion_tokens for a in tried),
        }
    return out


def _labels(tasks: Sequence[TaskResult]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[TaskResult]] = {}
    for task in tasks:
        for label in task.labels or (NO_LABEL,):
            groups.setdefault(label, []).append(task)
    out: dict[str, dict[str, Any]] = {}
    for label, members in sorted(groups.items()):
        outcomes = _outcomes(members)
        cost = math.fsum(t.outcome.cost_usd for t in members)  # the same in any task order
        by_rung = Counter(t.outcome.verified_rung for t in members if t.outcome.verified_rung)
        out[label] = {
            "tasks": len(members),
            **outcomes,
            "solve_rate": _ratio(outcomes["verified"], len(members)),
            "verified_by_rung": dict(sorted(by_rung.items())),
            "cost_usd": _money(cost),
            "per_verified_usd": _ratio(cost, outcomes["verified"], 8),
        }
    return out


def _workflows(tasks: Sequence[TaskResult]) -> dict[str, dict[str, Any]]:
    """Per workflow, the largest first: outcomes, how many verified patches wait for a person's
    review, escalation, cost, and the stricter workflows that judged some of its tasks' patches
    (`raised_by`: workflow -> tasks)."""
    groups: dict[str, list[TaskResult]] = {}
    for task in tasks:
        groups.setdefault(workflow_of(task), []).append(task)
    out: dict[str, dict[str, Any]] = {}
    for name, members in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        outcomes = _outcomes(members)
        cost = math.fsum(t.outcome.cost_usd for t in members)  # the same in any task order
        raisers: Counter[str] = Counter()
        for task in members:
            raisers.update({w for a in task.attempts if a.policy for w in a.policy.raised_by})
        choice = next(filter(None, (first_choice(t.attempts) for t in members)), None)
        out[name] = {
            "tasks": len(members),
            **outcomes,
            "needs_review": sum(1 for t in members if t.outcome.needs_review),
            "solve_rate": _ratio(outcomes["verified"], len(members)),
            "escalation_rate": _escalation_rate(members),
            "cost_usd": _money(cost),
            "per_verified_usd": _ratio(cost, outcomes["verified"], 8),
            "raised_by": dict(sorted(raisers.items())),
            # The path its first recorded decision set (None: no run of it recorded one).
            "path": None if choice is None else {
                "gate": list(choice.gate), "proof": choice.proof, "review": choice.review,
                "ladder": choice.ladder, "apply": choice.apply,
            },
        }  # fmt: skip
    return out


def _failures(tasks: Sequence[TaskResult]) -> dict[str, Any]:
    """Where patches fail: per evaluator (rejections, tasks, final blocker of unverified tasks),
    and the attempts that never reached the gate."""
    evaluators: dict[str, dict[str, int]] = {}
    statuses: Counter[str] = Counter()
    for task in tasks:
        touched: set[str] = set()
        for attempt in task.attempts:
            statuses[attempt.status] += 1
            for verdict in attempt.verdicts:
                row = evaluators.setdefault(
                    verdict.evaluator, {"ran": 0, "rejected": 0, "tasks": 0, "final_blocker": 0}
                )
                row["ran"] += 1
                if not verdict.passed:
                    row["rejected"] += 1
                    touched.add(verdict.evaluator)
        for name in touched:
            evaluators[name]["tasks"] += 1
        last = task.attempts[-1] if task.attempts else None
        if task.outcome.status != "verified" and last is not None:
            for verdict in last.verdicts:
                if not verdict.passed:
                    evaluators[verdict.evaluator]["final_blocker"] += 1
    return {
        "evaluators": dict(sorted(evaluators.items())),
        "attempt_statuses": dict(sorted(statuses.items())),
        "errors": [
            {"task": t.task_id, "error": t.outcome.error.splitlines()[0][:300]}
            for t in tasks
            if t.outcome.status == "error" and t.outcome.error
        ],
    }


def _summary(name: str, tasks: Iterable[TaskResult], cost: float, count: int) -> dict[str, Any]:
    solved = sum(1 for t in tasks if t.outcome.status == "verified")
    return {
        "name": name,
        "available": True,
        "tasks": count,
        "verified": solved,
        "solve_rate": _ratio(solved, count),
        "cost_usd": _money(cost),
        "per_verified_usd": _ratio(cost, solved, 8),
    }


def _baselines(data: ReportData) -> list[dict[str, Any]]:
    tasks, ladder = data.tasks, list(data.ladder)
    cascade_cost = sum(t.outcome.cost_usd for t in tasks)
    rows = [{**_summary("cascade (this run)", tasks, cascade_cost, len(tasks)), "kind": "cascade"}]
    if len(ladder) > 1:
        rows.append(_cheapest_only(tasks, ladder[0], cascade_cost))
        strongest = ladder[-1]
        shadow = next(
            (s for name, s in sorted(data.shadows.items()) if list(s.ladder) == [strongest]), None
        )
        if shadow is None:
            rows.append(
                _unavailable(
                    f"always strongest rung ({strongest})", _why_no_strongest(tasks, strongest)
                )
            )
    for name, shadow in sorted(data.shadows.items()):
        label = (
            f"always strongest rung ({ladder[-1]})"
            if ladder and list(shadow.ladder) == [ladder[-1]]
            else f"shadow ladder {' → '.join(shadow.ladder)} ({name})"
        )
        rows.append(_from_shadow(label, shadow, tasks, cascade_cost))
    return rows


def _why_no_strongest(tasks: Sequence[TaskResult], strongest: str) -> str:
    reached = sum(1 for t in tasks if strongest in _rungs_used(t))
    again = "Replay with `--shadow strongest` to run it alone on every task."
    if reached < len(tasks):
        return (
            f"the strongest rung answered only {reached} of the {len(tasks)} task(s), those "
            f"that reached it; its answers to the others are not in this data. {again}"
        )
    return (
        f"every task reached the strongest rung, but after cheaper rungs: their attempts (and "
        f"the feedback its prompts carried) are not what it alone would have done. {again}"
    )


def _cheapest_only(tasks: Sequence[TaskResult], first: str, cascade_cost: float) -> dict[str, Any]:
    """The cascade's first rung, alone: exact from the data when every task started there,
    because until that rung ends the cascade and the single-rung ladder make the same calls."""
    name = f"cheapest rung alone ({first})"
    if any(t.attempts and t.attempts[0].rung != first for t in tasks):
        why = "some tasks did not start on the first rung (--start-at, or a workflow's ladder)"
        return _unavailable(name, why)
    solved = [t for t in tasks if t.outcome.verified_rung == first]
    cost = sum(a.cost_usd for t in tasks for a in t.attempts if a.rung == first)
    row = _summary(name, solved, cost, len(tasks))
    row["kind"] = "derived"
    row["cascade_cost_ratio"] = _ratio(cascade_cost, cost)
    return row


def _from_shadow(
    label: str, shadow: ReportData, tasks: Sequence[TaskResult], cascade_cost: float
) -> dict[str, Any]:
    by_id = {t.task_id: t for t in shadow.tasks}
    missing = [t.task_id for t in tasks if t.task_id not in by_id]
    if missing:
        return _unavailable(
            label,
            f"the shadow run covers {len(tasks) - len(missing)} of {len(tasks)} task(s) "
            f"(missing: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''})",
        )
    chosen = [by_id[t.task_id] for t in tasks]
    cost = sum(t.outcome.cost_usd for t in chosen)
    row = _summary(label, chosen, cost, len(tasks))
    row["kind"] = "shadow"
    row["cascade_cost_ratio"] = _ratio(cascade_cost, cost)
    row["sources"] = shadow.sources
    return row


def _unavailable(name: str, why: str) -> dict[str, Any]:
    return {"name": name, "available": False, "why": why}


def _row(task: TaskResult) -> dict[str, Any]:
    o = task.outcome
    usage_in = sum(a.usage.prompt_tokens for a in task.attempts)
    usage_out = sum(a.usage.completion_tokens for a in task.attempts)
    run = Path(task.run_dir) if task.run_dir else None
    return {
        "task": task.task_id,
        "title": task.title,
        "labels": list(task.labels),
        "status": o.status,
        "workflow": workflow_of(task),
        "needs_review": o.needs_review,
        "verified_rung": o.verified_rung,
        "rungs": _rungs_used(task),
        "attempts": len(task.attempts),
        "cost_usd": _money(o.cost_usd),
        "cost_by_rung": {
            r: _money(sum(a.cost_usd for a in task.attempts if a.rung == r))
            for r in _rungs_used(task)
        },
        "tokens_in": usage_in,
        "tokens_out": usage_out,
        "duration_s": o.duration_s,
        "node": task.node,
        "run_id": o.run_id,
        "error": o.error.splitlines()[0][:300] if o.error else "",
        # Absolute paths (the renderers link them relative to the report's folder); "" when absent.
        "run_dir": str(run or ""),
        "summary_md": str(run / SUMMARY_FILE) if run and (run / SUMMARY_FILE).is_file() else "",
        "patch_diff": str(run / PATCH_FILE) if run and (run / PATCH_FILE).is_file() else "",
        "proof": None if task.proof is None else {"ok": task.proof.ok, "status": task.proof.status},
    }
