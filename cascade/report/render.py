"""Renders a report dict (from `cascade.report.numbers`) as Markdown, and as PNG charts when
matplotlib is importable (it is not a dependency): cost per task by rung, cumulative verified
vs spend."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

from cascade.proof.summary import cell

log = logging.getLogger(__name__)

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
COST_CHART = "cost_per_task.png"
CURVE_CHART = "verified_vs_spend.png"


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _sec(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def render_markdown(report: dict[str, Any], charts: list[str] | None = None) -> str:
    t, cost, time_, tok = report["tasks"], report["cost"], report["time"], report["tokens"]
    att = report["attempts"]
    lines = [
        "# Replay report",
        "",
        f"Ladder: {' → '.join(report['ladder']) or '—'} · gate: {', '.join(report['gate']) or '—'}"
        f" · base commit: {', '.join(c[:12] for c in report['base_commits']) or '—'}",
        "",
        "## Outcomes",
        "",
        *_outcome_table(t),
        "",
    ]
    if report["budget"]["stopped"]:
        lines += ["**Stopped by the budget** (`--max-cost-usd`): no new task was started once it "
                  "was spent; tasks in flight finished.", ""]  # fmt: skip
        lines += [f"- {cell(note)}" for note in report["budget"]["notes"]] + [""]
    lines += [
        f"Escalation rate: {_pct(report['escalation_rate'])} of tasks climbed past their first "
        f"rung. Attempts: {att['total']} ({att['per_task_mean'] or 0:.2f} per task, at most "
        f"{att['per_task_max']}; histogram {json.dumps(att['per_task_histogram'])}).",
        "",
        "## Per rung",
        "",
        "| rung | verified | tasks reached | attempts | cost | tokens in/out |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["rungs"].items():
        lines.append(
            f"| {cell(name)} | {r['verified']} | {r['tasks_reached']} | {r['attempts']} "
            f"| {_usd(r['cost_usd'])} | {r['tokens_in']}/{r['tokens_out']} |"
        )
    lines += [
        "",
        "## Cost, time, tokens",
        "",
        f"- Total cost: {_usd(cost['total_usd'])}; **per verified patch: "
        f"{_usd(cost['per_verified_usd'])}**; spent on tasks that ended unverified: "
        f"{_usd(cost['unverified_usd'])}",
        f"- Aborted runs (cut short and re-run): {_usd(cost['aborted_runs_usd'])}; "
        f"all spent: {_usd(cost['all_spent_usd'])}",
        f"- Wall time per task: p50 {_sec(time_['task_p50_s'])}, p95 {_sec(time_['task_p95_s'])};"
        f" per attempt: p50 {_sec(time_['attempt_p50_s'])}, p95 {_sec(time_['attempt_p95_s'])}",
        f"- Tokens: {tok['in']} in, {tok['out']} out",
        "",
    ]
    lines += _baselines(report["baselines"]) + _labels(report["labels"])
    lines += _failures(report["failures"]) + _tasks(report["task_rows"])
    if report["notes"]:
        lines += ["## Notes", ""] + [f"- {cell(n)}" for n in report["notes"]] + [""]
    if charts:
        lines += ["## Charts", ""] + [f"![{Path(c).stem}]({Path(c).name})" for c in charts] + [""]
    return "\n".join(lines)


def _outcome_table(t: dict[str, Any]) -> list[str]:
    statuses = [s for s in t["statuses"] if s != "verified"]
    head = ["tasks", "verified", *(s.replace("_", " ") for s in statuses), "solve rate",
            "not started", "aborted runs"]  # fmt: skip
    values = [t["total"], t["verified"], *(t[s] for s in statuses), _pct(t["solve_rate"]),
              len(t["not_started"]), t["aborted_runs"]]  # fmt: skip
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---:|" * len(head),
        "| " + " | ".join(str(v) for v in values) + " |",
    ]


def _baselines(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Baselines",
        "",
        "Computed only from runs that actually happened; a row without numbers says why.",
        "",
        "| strategy | verified | solve rate | cost | per verified | cascade cost ÷ this |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for row in rows:
        if not row["available"]:
            lines.append(f"| {cell(row['name'])} | — | — | — | — | — |")
            notes.append(f"- {cell(row['name'])}: cannot be computed — {cell(row['why'])}")
            continue
        ratio = row.get("cascade_cost_ratio")
        lines.append(
            f"| {cell(row['name'])} | {row['verified']}/{row['tasks']} | {_pct(row['solve_rate'])}"
            f" | {_usd(row['cost_usd'])} | {_usd(row['per_verified_usd'])} "
            f"| {'—' if ratio is None else f'{ratio:.2f}'} |"
        )
    return [*lines, "", *notes, ""] if notes else [*lines, ""]


def _labels(labels: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "## Per label",
        "",
        "| label | tasks | verified | unverified | error | solve rate | cost | per verified |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in labels.items():
        unverified = r["tasks"] - r["verified"] - r["error"]
        lines.append(
            f"| {cell(name)} | {r['tasks']} | {r['verified']} | {unverified} | {r['error']} "
            f"| {_pct(r['solve_rate'])} | {_usd(r['cost_usd'])} | {_usd(r['per_verified_usd'])} |"
        )
    return [*lines, ""]


def _failures(failures: dict[str, Any]) -> list[str]:
    lines = [
        "## Where patches fail",
        "",
        "| evaluator | ran | rejected | tasks it rejected | last blocker of unverified tasks |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in failures["evaluators"].items():
        lines.append(
            f"| {cell(name)} | {r['ran']} | {r['rejected']} | {r['tasks']} | {r['final_blocker']} |"
        )
    statuses = ", ".join(f"{k} {v}" for k, v in failures["attempt_statuses"].items())
    lines += ["", f"Attempt statuses: {statuses or '—'}.", ""]
    lines += [f"- error in {cell(e['task'])}: {cell(e['error'])}" for e in failures["errors"]]
    return [*lines, ""] if failures["errors"] else lines


def _tasks(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Tasks",
        "",
        "| task | labels | status | rungs | attempts | cost | seconds |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {cell(r['task'])} | {cell(', '.join(r['labels']))} | {r['status']} "
            f"| {cell(' → '.join(r['rungs']))} | {r['attempts']} | {_usd(r['cost_usd'])} "
            f"| {r['duration_s']:.1f} |"
        )
    return [*lines, ""]


def write_report(report: dict[str, Any], out: Path, *, charts: bool = True) -> list[Path]:
    """Write report.json, report.md and (with matplotlib) the charts into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    pngs = _charts(report, out) if charts else []
    written = [out / REPORT_JSON, out / REPORT_MD, *pngs]
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    text = render_markdown(report, [str(p) for p in pngs])
    (out / REPORT_MD).write_text(text, encoding="utf-8")
    return written


def _charts(report: dict[str, Any], out: Path) -> list[Path]:
    try:
        # Imported by name: matplotlib is optional and has no stubs here.
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg")  # files only, no display
        plt: Any = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        log.info("matplotlib is not installed: no charts")
        return []
    rows, ladder = report["task_rows"], list(report["rungs"])
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(rows)), 4))
    bottom = [0.0] * len(rows)
    for rung in ladder:
        values = [r["cost_by_rung"].get(rung, 0.0) for r in rows]
        ax.bar([r["task"] for r in rows], values, bottom=bottom, label=rung)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("cost (USD)")
    ax.set_title("Cost per task, by rung")
    ax.legend()
    ax.tick_params(axis="x", labelrotation=60)
    fig.tight_layout()
    fig.savefig(out / COST_CHART)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    spend, solved, xs, ys = 0.0, 0, [0.0], [0]
    for r in rows:
        spend += r["cost_usd"]
        solved += r["status"] == "verified"
        xs.append(spend)
        ys.append(solved)
    ax.step(xs, ys, where="post", label="cascade")
    ax.set_xlabel("cumulative spend (USD)")
    ax.set_ylabel("verified patches")
    ax.set_title("Verified patches vs spend (in finishing order)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / CURVE_CHART)
    plt.close(fig)
    return [out / COST_CHART, out / CURVE_CHART]
