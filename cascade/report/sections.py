"""What a replay report says, section by section, from the report dict (`cascade.report.numbers`):
the headline and where its numbers come from first, then outcomes, workflows, rungs, cost, the
cluster nodes (when any ran a task), baselines, labels, failures, charts, and every task linked
to its run's summary and patch with the run's proof status. Plain text only; `render` (Markdown)
and `page` (HTML) escape it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.report.document import (
    Block,
    Bullets,
    Cell,
    Document,
    Images,
    Link,
    Mark,
    Section,
    Table,
    Text,
    relative_href,
)
from cascade.report.headline import money
from cascade.report.ladder_section import ladders_section
from cascade.report.numbers import NOT_RECORDED
from cascade.report.provenance import price_summary
from cascade.workflow_config import DEFAULT_WORKFLOW

TITLE = "Replay report"


def usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def sec(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def report_document(
    report: dict[str, Any], out: Path, charts: list[Path], skipped: list[str]
) -> Document:
    """`out` is the report's folder: links to run folders are relative to it."""
    flows = shows_workflows(report)
    nodes = report["nodes"]  # [] when the batch ran locally
    return Document(
        TITLE,
        [
            Section("", _lead(report), id="lead"),
            # Right after the headline, for people who would rather look than read.
            Section("Charts", (Images(tuple(charts), tuple(skipped)),), id="charts"),
            Section("Outcomes", _outcomes(report), id="outcomes"),
            *([Section("Per workflow", _workflows(report), id="workflows")] if flows else []),
            Section("Per rung", (_rungs(report["rungs"]),), id="rungs"),
            Section("Cost, time, tokens", (_cost(report),), id="cost"),
            *([Section("Nodes", _nodes(nodes), id="nodes")] if nodes else []),
            Section("Baselines", _baselines(report["baselines"]), id="baselines"),
            *([ladders_section(report["ladders"], out)] if "ladders" in report else []),
            Section("Per label", (_labels(report["labels"]),), id="labels"),
            Section("Where patches fail", _failures(report["failures"]), id="failures"),
            Section("Tasks", (_tasks(report["task_rows"], out, flows, bool(nodes)),), id="tasks"),
            Section("Prices", (_prices(report["provenance"]["prices"]),), id="prices"),
            *(
                [Section("Notes", (Bullets(tuple(report["notes"])),), id="notes")]
                if report["notes"]
                else []
            ),
        ],
    )


def written_by(p: dict[str, Any]) -> str:
    """'Written 2026-12-06 13:06 UTC by cascade 0.1.0 (litellm 1.110.2)'."""
    when = p["generated_at"][:16].replace("T", " ")
    return f"Written {when} UTC by cascade {p['cascade_version']} (litellm {p['litellm_version']})"


def provenance_line(report: dict[str, Any]) -> str:
    p = report["provenance"]
    return (
        f"{written_by(p)}. Prices: {price_summary(p['prices'])}. The 95% interval is the "
        f"{report['headline']['interval']} interval of the verified share."
    )


def _lead(report: dict[str, Any]) -> tuple[Block, ...]:
    blocks: list[Block] = [
        Text(report["headline"]["text"], strong=True, id="headline"),
        Text(provenance_line(report), id="provenance"),
        Text(
            f"Ladder: {' → '.join(report['ladder']) or '—'} · "
            f"{'default workflow gate' if shows_workflows(report) else 'gate'}: "
            f"{', '.join(report['gate']) or '—'} · base commit: "
            f"{', '.join(c[:12] for c in report['base_commits']) or '—'}"
        ),
    ]
    if report["budget"]["stopped"]:
        blocks.append(
            Text(
                "Stopped by the budget (--max-cost-usd): no new task was started once it was "
                "spent; tasks in flight finished. " + " ".join(report["budget"]["notes"]),
                strong=True,
            )
        )
    return tuple(blocks)


def _outcomes(report: dict[str, Any]) -> tuple[Block, ...]:
    t, att = report["tasks"], report["attempts"]
    statuses = [s for s in t["statuses"] if s != "verified"]
    head = ("tasks", "verified", *(s.replace("_", " ") for s in statuses), "solve rate",
            "not started", "aborted runs")  # fmt: skip
    values = (t["total"], t["verified"], *(t[s] for s in statuses), pct(t["solve_rate"]),
              len(t["not_started"]), t["aborted_runs"])  # fmt: skip
    table = Table(head, [tuple(str(v) for v in values)], frozenset(range(len(head))))
    spread = ", ".join(
        f"{count} task{'s' if count != 1 else ''} took {n}"
        for n, count in att["per_task_histogram"].items()
    )
    text = (
        f"Escalation rate: {pct(report['escalation_rate'])} of tasks climbed past their first "
        f"rung. Attempts: {att['total']} ({att['per_task_mean'] or 0:.2f} per task, at most "
        f"{att['per_task_max']}{'; ' + spread if spread else ''})."
    )
    return table, Text(text)


def shows_workflows(report: dict[str, Any]) -> bool:
    """Whether the report shows its per-workflow table (and each task's workflow): not when
    every task ran the one default workflow (or older runs that did not say) and none waits
    for review — then it would repeat the outcomes table in one row."""
    names = list(report["workflows"])
    plain = len(names) <= 1 and all(n in (DEFAULT_WORKFLOW, NOT_RECORDED) for n in names)
    return not plain or report["tasks"]["needs_review"] > 0


def _workflows(report: dict[str, Any]) -> tuple[Block, ...]:
    rows: list[tuple[Cell, ...]] = [
        (name, str(r["tasks"]), str(r["verified"]), str(r["needs_review"]), str(r["unproven"]),
         str(r["tasks"] - r["verified"] - r["unproven"]), pct(r["escalation_rate"]),
         usd(r["cost_usd"]), usd(r["per_verified_usd"]))
        for name, r in report["workflows"].items()
    ]  # fmt: skip
    head = ("workflow", "tasks", "verified", "needs review", "unproven", "other", "escalated",
            "cost", "per verified")  # fmt: skip
    notes = []
    for name, r in report["workflows"].items():
        path = r["path"]
        if path:
            said = (
                f"{name}: gate {', '.join(path['gate']) or '—'}; {path['proof']}; review "
                f"{path['review']}; {path['ladder']}; delivered as {path['apply']}"
            )
        elif name == NOT_RECORDED:
            said = f"{name}: runs that do not say (sealed before cascade recorded workflows)"
        else:
            said = f"{name}: no run of it made an attempt that recorded its path"
        for other, n in r["raised_by"].items():
            said += f"; {n} task(s) held to {other!r} too (a traceback or patch touched its paths)"
        notes.append(said)
    lead = Text(
        "Each task runs the first workflow its issue matches. Needs review: verified, and held "
        "for a person's approval (counted in verified too). Other: exhausted, over budget or "
        "error. Escalated: tasks that climbed past their first rung."
    )
    table = Table(head, rows, frozenset(range(1, 9)), id="workflows-table")
    return lead, table, Bullets(tuple(notes))


def _rungs(rungs: dict[str, dict[str, Any]]) -> Table:
    rows: list[tuple[Cell, ...]] = [
        (name, str(r["verified"]), str(r["tasks_reached"]), str(r["attempts"]),
         usd(r["cost_usd"]), f"{r['tokens_in']}/{r['tokens_out']}")
        for name, r in rungs.items()
    ]  # fmt: skip
    head = ("rung", "verified", "tasks reached", "attempts", "cost", "tokens in/out")
    return Table(head, rows, frozenset(range(1, 6)))


def _cost(report: dict[str, Any]) -> Bullets:
    cost, time_, tok = report["cost"], report["time"], report["tokens"]
    return Bullets(
        (
            f"Total cost: {usd(cost['total_usd'])}; per verified patch: "
            f"{usd(cost['per_verified_usd'])}; spent on tasks that ended unverified: "
            f"{usd(cost['unverified_usd'])}",
            f"Aborted runs (cut short and re-run): {usd(cost['aborted_runs_usd'])}; "
            f"all spent: {usd(cost['all_spent_usd'])}",
            f"Wall time per task: p50 {sec(time_['task_p50_s'])}, p95 {sec(time_['task_p95_s'])};"
            f" per attempt: p50 {sec(time_['attempt_p50_s'])}, "
            f"p95 {sec(time_['attempt_p95_s'])}",
            f"Tokens: {tok['in']} in, {tok['out']} out",
        )
    )


def _nodes(nodes: list[dict[str, Any]]) -> tuple[Block, ...]:
    rows: list[tuple[Cell, ...]] = [
        (r["node"], str(r["tasks"]), str(r["verified"]), str(r["errors"]), usd(r["cost_usd"]),
         sec(r["busy_s"]))
        for r in nodes
    ]  # fmt: skip
    head = ("node", "tasks", "verified", "errors", "cost", "busy time")
    lead = Text(
        "The cluster nodes that ran the tasks (host/node id). Busy time: the sum of their tasks' "
        "wall time, which overlaps when a node runs several at once."
    )
    return lead, Table(head, rows, frozenset(range(1, 6)), id="nodes-table")


def _baselines(rows: list[dict[str, Any]]) -> tuple[Block, ...]:
    table: list[tuple[Cell, ...]] = []
    notes = []
    for row in rows:
        if not row["available"]:
            table.append((row["name"], "—", "—", "—", "—", "—"))
            notes.append(f"{row['name']}: cannot be computed — {row['why']}")
            continue
        ratio = row.get("cascade_cost_ratio")
        table.append(
            (row["name"], f"{row['verified']}/{row['tasks']}", pct(row["solve_rate"]),
             usd(row["cost_usd"]), usd(row["per_verified_usd"]),
             "—" if ratio is None else f"{ratio:.2f}")
        )  # fmt: skip
    head = ("strategy", "verified", "solve rate", "cost", "per verified", "cascade cost ÷ this")
    blocks: list[Block] = [
        Text("Computed only from runs that actually happened; a row without numbers says why."),
        Table(head, table, frozenset(range(1, 6)), id="baselines-table"),
    ]
    return (*blocks, Bullets(tuple(notes))) if notes else tuple(blocks)


def _labels(labels: dict[str, dict[str, Any]]) -> Table:
    rows: list[tuple[Cell, ...]] = []
    for name, r in labels.items():
        unverified = r["tasks"] - r["verified"] - r["error"]
        rows.append(
            (name, str(r["tasks"]), str(r["verified"]), str(unverified), str(r["error"]),
             pct(r["solve_rate"]), usd(r["cost_usd"]), usd(r["per_verified_usd"]))
        )  # fmt: skip
    head = ("label", "tasks", "verified", "unverified", "error", "solve rate", "cost",
            "per verified")  # fmt: skip
    return Table(head, rows, frozenset(range(1, 8)))


def _failures(failures: dict[str, Any]) -> tuple[Block, ...]:
    rows: list[tuple[Cell, ...]] = [
        (name, str(r["ran"]), str(r["rejected"]), str(r["tasks"]), str(r["final_blocker"]))
        for name, r in failures["evaluators"].items()
    ]
    head = ("evaluator", "ran", "rejected", "tasks it rejected",
            "last blocker of unverified tasks")  # fmt: skip
    statuses = ", ".join(f"{k} {v}" for k, v in failures["attempt_statuses"].items())
    blocks: list[Block] = [
        Table(head, rows, frozenset(range(1, 5))),
        Text(f"Attempt statuses: {statuses or '—'}."),
    ]
    errors = tuple(f"error in {e['task']}: {e['error']}" for e in failures["errors"])
    return (*blocks, Bullets(errors)) if errors else tuple(blocks)


def _tasks(rows: list[dict[str, Any]], out: Path, flows: bool, nodes: bool) -> Table:
    """`flows`: a column for each task's workflow, and a status that says it waits for review;
    `nodes`: a column for the cluster node that ran each task."""
    cells: list[tuple[Cell, ...]] = []
    for r in rows:
        files = tuple(
            Link(name, relative_href(r[key], out))
            for name, key in (("summary", "summary_md"), ("patch", "patch_diff"))
            if r.get(key)
        )
        proof = r.get("proof")
        status = r["status"] + (", needs review" if r.get("needs_review") else "")
        row: tuple[Cell, ...] = (
            r["task"], r.get("title", ""), ", ".join(r["labels"]), status,
            " → ".join(r["rungs"]), str(r["attempts"]), usd(r["cost_usd"]),
            f"{r['duration_s']:.1f}", *((r.get("node") or "—",) if nodes else ()),
            Mark(proof["status"], proof["ok"]) if proof else "—", files or "—",
        )  # fmt: skip
        cells.append((*row[:3], r.get("workflow", NOT_RECORDED), *row[3:]) if flows else row)
    head = ("task", "title", "labels", "status", "rungs", "attempts", "cost", "seconds",
            *(("node",) if nodes else ()), "proof", "files")  # fmt: skip
    if flows:
        return Table((*head[:3], "workflow", *head[3:]), cells, frozenset({6, 7, 8}),
                     id="tasks-table")  # fmt: skip
    return Table(head, cells, frozenset({5, 6, 7}), id="tasks-table")


def _prices(prices: list[dict[str, Any]]) -> Table:
    def per_mtok(value: float | None) -> str:
        return "—" if value is None else money(value)

    rows: list[tuple[Cell, ...]] = [
        (p["rung"], p["model"] or "—", per_mtok(p["input_usd_per_mtok"]),
         per_mtok(p["output_usd_per_mtok"]), p["source"], p["where"])
        for p in prices
    ]  # fmt: skip
    head = ("rung", "model", "input per 1M tokens", "output per 1M tokens", "source", "from")
    return Table(head, rows, frozenset({2, 3}))
