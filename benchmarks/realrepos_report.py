"""The real-repositories benchmark's scoring and report: the verdict a run came to (from the
engine's outcome and attempt records), how it compares with the expected one, the totals and
per-task p50 time, and the Markdown page. Pure functions, tested without network or Docker."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from benchmarks.realrepos_suite import GATE, Expected
from cascade.records import Attempt

Verdict = Literal["verified", "rejected", "unproven", "error"]
# `unexpected`: neither accepted nor an error, but not the rejection expected (a wrong patch
# that passed the gate and stayed unproven).
Status = Literal["ok", "false_accept", "false_reject", "infra_error", "unexpected"]
_VERDICTS: Mapping[str, Verdict] = {
    "verified": "verified",
    "unproven": "unproven",
    "exhausted": "rejected",
    "budget_exhausted": "rejected",
    "error": "error",
}
WHY_CHARS = 300


class Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunResult(Row):
    task: str
    library: str
    situation: str
    patch: str
    kind: str
    expect: Expected
    by: str = ""  # the evaluator expected to reject it
    verdict: Verdict
    status: Status
    why: str = ""
    rejected_by: str = ""
    rules: tuple[str, ...] = ()
    outcome: str  # the engine's RunStatus ("" when the harness failed before it)
    run_id: str = ""
    time_s: float

    @property
    def name(self) -> str:
        return f"{self.task}/{self.patch}"


class TaskResult(Row):
    task: str
    library: str
    sha256: str
    situation: str
    note: str
    build_s: float
    time_s: float  # build and every run
    runs: tuple[RunResult, ...]
    error: str = ""


def verdict_of(
    status: str, error: str, attempts: Sequence[Attempt]
) -> tuple[Verdict, str, tuple[str, ...], str]:
    """(verdict, rejecting evaluator, its finding rules, why) of one run. A patch that did not
    apply, or a last attempt that broke on infrastructure, is an error, not a rejection."""
    fixes = [a for a in attempts if a.role == "fix"]
    last = fixes[-1] if fixes else None
    if status == "error":
        return "error", "", (), error[:WHY_CHARS]
    if last is not None and last.status == "edit_error":
        return "error", "", (), f"the scripted patch did not apply: {last.error[:WHY_CHARS]}"
    if last is not None and last.status == "infra_error":
        return "error", "", (), last.error[:WHY_CHARS]
    verdict = _VERDICTS.get(status, "error")
    failed = next((v for v in last.verdicts if not v.passed), None) if last else None
    if failed is None:
        return verdict, "", (), ""
    rules = tuple(sorted({f.rule for f in failed.findings if f.rule}))
    first = next((f.message for f in failed.findings if f.message), failed.feedback)
    return verdict, failed.evaluator, rules, " ".join(first.split())[:WHY_CHARS]


def judge(expect: Expected, verdict: Verdict, rejected_by: str, by: str) -> tuple[Status, str]:
    """How a run's verdict compares with the expected one."""
    if verdict == "error":
        return "infra_error", ""
    if expect == "verified":
        if verdict == "verified":
            return "ok", ""
        return "false_reject", f"{verdict}" + (f" by {rejected_by}" if rejected_by else "")
    if verdict == "verified":
        return "false_accept", "verified"
    if verdict == "unproven":
        return "unexpected", "passed the gate; unproven"
    if by and rejected_by != by:
        return "ok", f"rejected by {rejected_by}, expected {by}"
    return "ok", ""


def p50(samples: Sequence[float]) -> float:
    return round(statistics.median(samples), 2) if samples else 0.0


def summarize(
    tasks: Sequence[TaskResult], *, backend: str, machine: Mapping[str, str], wall_s: float
) -> dict[str, Any]:
    runs = [r for t in tasks for r in t.runs]

    def named(status: Status, correct_only: bool = False) -> list[str]:
        return [
            r.name for r in runs if r.status == status and (r.kind == "correct" or not correct_only)
        ]

    situations: dict[str, dict[str, Any]] = {}
    for t in tasks:
        row = situations.setdefault(t.situation, {"tasks": [], "runs": 0, "ok": 0})
        row["tasks"].append(t.task)
        row["runs"] += len(t.runs)
        row["ok"] += sum(r.status == "ok" for r in t.runs)
    libraries = {t.library: t.sha256 for t in tasks}
    correct = [r for r in runs if r.kind == "correct"]
    return {
        "schema_version": 1,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": dict(machine),
        "sandbox": backend,
        "gate": list(GATE),
        "libraries": [{"pin": pin, "sha256": digest} for pin, digest in libraries.items()],
        "totals": {
            "tasks": len(tasks),
            "runs": len(runs),
            "ok": len(named("ok")),
            "correct_verified": sum(r.verdict == "verified" for r in correct),
            "correct": len(correct),
            "false_accepts": named("false_accept"),
            "false_rejects": named("false_reject"),
            "infra_errors": named("infra_error"),
            "infra_errors_on_correct": named("infra_error", correct_only=True),
            "unexpected": named("unexpected"),
        },
        "timing": {
            "wall_s": round(wall_s, 1),
            "task_p50_s": p50([t.time_s for t in tasks]),
            "run_p50_s": p50([r.time_s for r in runs]),
            "correct_run_p50_s": p50([r.time_s for r in correct]),
            "run_max_s": max((r.time_s for r in runs), default=0.0),
        },
        "by_situation": situations,
        "tasks": [t.model_dump(mode="json") for t in tasks],
    }


def markdown(result: Mapping[str, Any]) -> str:
    totals, timing = result["totals"], result["timing"]
    pins = ", ".join(f"`{lib['pin']}`" for lib in result["libraries"])
    lines = [
        "# Real-repositories benchmark",
        "",
        f"{result['when']} · sandbox `{result['sandbox']}` · {result['machine']['platform']}",
        "",
        f"{totals['tasks']} tasks over PyPI source distributions fetched at run time ({pins}), "
        f"{totals['runs']} runs of `cascade fix` with a scripted model answering each patch. "
        "Gate: " + " → ".join(f"`{name}`" for name in result["gate"]) + ".",
        "",
        "| | count |",
        "|---|---:|",
        f"| correct patches verified | {totals['correct_verified']} / {totals['correct']} |",
        f"| **false accepts** (a patch that should fail was verified) | "
        f"**{len(totals['false_accepts'])}** |",
        f"| **false rejects** (a correct patch was not verified) | "
        f"**{len(totals['false_rejects'])}** |",
        f"| **infrastructure errors on correct patches** | "
        f"**{len(totals['infra_errors_on_correct'])}** |",
        f"| infrastructure errors, all patches | {len(totals['infra_errors'])} |",
        f"| not verified, but not rejected either (unproven) | {len(totals['unexpected'])} |",
        "",
        f"Per-task time (build + its {_runs_per_task(result)} runs): p50 "
        f"{timing['task_p50_s']:.1f} s. Per run: p50 {timing['run_p50_s']:.1f} s, correct "
        f"patches p50 {timing['correct_run_p50_s']:.1f} s, max {timing['run_max_s']:.1f} s. "
        f"Whole run: {timing['wall_s']:.0f} s.",
        "",
        "| task | library | situation | patch | kind | expected | verdict | status | time |",
        "|---|---|---|---|---|---|---|---|---:|",
    ]
    for task in result["tasks"]:
        for r in task["runs"]:
            said = r["verdict"] + (f" by {r['rejected_by']}" if r["rejected_by"] else "")
            rules = f" ({', '.join(r['rules'])})" if r["rules"] else ""
            status = r["status"] if r["status"] == "ok" else f"**{r['status']}**"
            lines.append(
                f"| {r['task']} | {r['library']} | {r['situation']} | {r['patch']} | "
                f"{r['kind']} | {r['expect']} | {said}{rules} | {status} | {r['time_s']:.1f} s |"
            )
    lines += ["", "| situation | tasks | runs as expected |", "|---|---|---:|"]
    for name, row in result["by_situation"].items():
        lines.append(f"| {name} | {', '.join(row['tasks'])} | {row['ok']} / {row['runs']} |")
    lines += ["", "| task | situation | what it tests | build | total |", "|---|---|---|---:|---:|"]
    for task in result["tasks"]:
        lines.append(
            f"| {task['task']} | {task['situation']} | {task['note']} | {task['build_s']:.1f} s | "
            f"{task['time_s']:.1f} s |"
        )
    lines += ["", *_problem_lines(result)]
    return "\n".join(lines) + "\n"


def _runs_per_task(result: Mapping[str, Any]) -> str:
    counts = sorted({len(t["runs"]) for t in result["tasks"]})
    return "/".join(str(c) for c in counts) or "0"


def _problem_lines(result: Mapping[str, Any]) -> list[str]:
    rows = [r for t in result["tasks"] for r in t["runs"] if r["status"] != "ok" or r["why"]]
    if not rows:
        return ["Every run came out as expected.", ""]
    lines = ["| run | status | the gate's reason, or what went wrong |", "|---|---|---|"]
    for r in rows:
        why = (r["why"] or "-").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['task']}/{r['patch']} | {r['status']} | {why} |")
    return [*lines, ""]
