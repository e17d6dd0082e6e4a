"""The report names the cluster nodes that ran a batch (`cascade replay --executor ray`): per node
its tasks, verified, errors, cost and busy time (checked against sums taken here), a node column
in the task table, both only when a done line names a node; and the nodes of two shards add up
when they are reported together or merged."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.proof.log import ProofLog
from cascade.replay.batch import LEDGER_FILE, RUNS_DIR, BatchHeader, write_header
from cascade.replay.ledger import JsonlWriter, LedgerLine, now
from cascade.report.data import TaskResult, load
from cascade.report.nodes import NO_NODE
from cascade.report.numbers import build_report
from cascade.report.render import write_report
from tests.report_synthetic import LADDER, MODELS, synthetic_batch

NODES = ("vm/7414bd6e", "gpu-2/0c1d2e3f", "vm/01ab23cd")
runner = CliRunner()


def tasks_on_nodes() -> list[tuple[TaskResult, str | None]]:
    """Twelve synthetic tasks spread over three nodes, one of them an infrastructure error and
    the last one without a node (a run recovered from its sealed folder names none)."""
    tasks = synthetic_batch(12, labels=3, shadow=False).tasks
    broken = tasks[4].outcome.model_copy(
        update={"status": "error", "error": "node lost", "verified_rung": ""}
    )
    tasks[4] = TaskResult(tasks[4].task_id, broken, tasks[4].attempts, tasks[4].labels,
                          title=tasks[4].title)  # fmt: skip
    placed: list[tuple[TaskResult, str | None]] = [
        (t, NODES[i % len(NODES)]) for i, t in enumerate(tasks)
    ]
    placed[-1] = (placed[-1][0], None)
    return placed


def write_batch(folder: Path, placed: list[tuple[TaskResult, str | None]], shard: str) -> Path:
    """A batch folder as `cascade replay` leaves it: the header, a sealed run a task and the
    ledger's plan, start and done lines (each done line with the node, when it has one). The
    synthetic runs' proofs do not hold up (a verified run without a patch): not what is tested
    here, so the report is read without checking them."""
    folder.mkdir(parents=True)
    header = BatchHeader(
        backlog="backlog.jsonl", repo="repo", base_commit="0" * 40, shard=shard, ladder=LADDER,
        models=tuple(MODELS[r] for r in LADDER), gate=("diff_scope", "pytest"),
    )  # fmt: skip
    write_header(folder, header)
    ledger = JsonlWriter(folder / LEDGER_FILE)
    lines = [LedgerLine(event="plan", at=now(), tasks=tuple(t.task_id for t, _ in placed))]
    for task, node in placed:
        log = ProofLog.create(folder / RUNS_DIR, task.outcome.run_id)
        for attempt in task.attempts:
            log.append(attempt)
        outcome = task.outcome.model_copy(update={"run_dir": str(log.run_dir)})
        log.seal(outcome, task.attempts, None, task.title, LADDER)
        lines += [
            LedgerLine(event="start", at=now(), task=task.task_id, run_id=outcome.run_id),
            LedgerLine(event="done", at=now(), task=task.task_id, run_id=outcome.run_id,
                       labels=task.labels, outcome=outcome, node=node),
        ]  # fmt: skip
    for line in lines:
        ledger.append(line.model_dump(mode="json", exclude_none=True))
    return folder


def expected_nodes(placed: list[tuple[TaskResult, str | None]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for task, node in placed:
        row = out.setdefault(
            node or NO_NODE,
            {"tasks": 0, "verified": 0, "errors": 0, "cost_usd": [], "busy_s": []},
        )
        row["tasks"] += 1
        row["verified"] += task.outcome.status == "verified"
        row["errors"] += task.outcome.status == "error"
        row["cost_usd"].append(task.outcome.cost_usd)
        row["busy_s"].append(task.outcome.duration_s)
    return out


def check_nodes(report: dict[str, Any], placed: list[tuple[TaskResult, str | None]]) -> None:
    expected = expected_nodes(placed)
    assert [r["node"] for r in report["nodes"]] == sorted(expected)
    for row in report["nodes"]:
        want = expected[row["node"]]
        assert set(row) == {"node", "tasks", "verified", "errors", "cost_usd", "busy_s"}
        assert (row["tasks"], row["verified"], row["errors"]) == (
            want["tasks"], want["verified"], want["errors"],
        )  # fmt: skip
        assert row["cost_usd"] == pytest.approx(math.fsum(want["cost_usd"]), abs=1e-8)
        assert row["busy_s"] == pytest.approx(math.fsum(want["busy_s"]), abs=1e-3)
    assert sum(r["tasks"] for r in report["nodes"]) == report["tasks"]["total"]
    assert sum(r["errors"] for r in report["nodes"]) == report["tasks"]["error"] == 1


def _table(md: str, section: str) -> list[list[str]]:
    body = md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in body.splitlines()
        if line.startswith("| ")
    ]


def test_the_report_names_each_node_with_its_numbers(tmp_path: Path) -> None:
    placed = tasks_on_nodes()
    batch = write_batch(tmp_path / "batch", placed, "1/1")
    report = build_report(load([batch], verify=False))
    check_nodes(report, placed)
    rows = {r["task"]: r for r in report["task_rows"]}
    assert [rows[t.task_id]["node"] for t, _ in placed] == [n for _, n in placed]

    write_report(report, batch, charts=False)
    assert json.loads((batch / "report.json").read_text())["nodes"] == report["nodes"]
    md = (batch / "report.md").read_text()
    assert md.index("## Cost, time, tokens") < md.index("## Nodes") < md.index("## Baselines")
    head, *table = _table(md, "Nodes")
    assert head == ["node", "tasks", "verified", "errors", "cost", "busy time"]
    by_node = {row[0]: row for row in table}
    assert set(by_node) == {*NODES, "(not recorded)"}
    for r in report["nodes"]:
        assert by_node[r["node"]][1:] == [
            str(r["tasks"]), str(r["verified"]), str(r["errors"]), f"${r['cost_usd']:.4f}",
            f"{r['busy_s']:.1f} s",
        ]  # fmt: skip
    # The task table names each task's node; the one whose done line names none shows a dash.
    head, *table = _table(md, "Tasks")
    assert head[8] == "node"
    assert {row[0]: row[8] for row in table} == {t.task_id: n or "—" for t, n in placed}
    html = (batch / "report.html").read_text()
    nodes_html = html.split('id="nodes-table"')[1].split("</table>")[0]
    assert nodes_html.count("<tr>") == 1 + 4 and "<td>vm/7414bd6e</td>" in nodes_html
    assert "<th>node</th>" in html.split('id="tasks-table"')[1].split("</table>")[0]


def test_a_local_batch_has_no_nodes_and_no_nodes_section(tmp_path: Path) -> None:
    placed = [(task, None) for task, _ in tasks_on_nodes()]
    batch = write_batch(tmp_path / "batch", placed, "1/1")
    report = build_report(load([batch], verify=False))
    assert report["nodes"] == []
    assert all(r["node"] is None for r in report["task_rows"])
    write_report(report, batch, charts=False)
    assert json.loads((batch / "report.json").read_text())["nodes"] == []
    md = (batch / "report.md").read_text()
    assert "## Nodes" not in md
    assert "node" not in _table(md, "Tasks")[0]
    html = (batch / "report.html").read_text()
    assert 'id="nodes' not in html and "<th>node</th>" not in html


def test_the_nodes_of_two_shards_add_up_reported_together_or_merged(tmp_path: Path) -> None:
    placed = tasks_on_nodes()
    whole = build_report(load([write_batch(tmp_path / "whole", placed, "1/1")], verify=False))
    first = write_batch(tmp_path / "s1", placed[::2], "1/2")
    second = write_batch(tmp_path / "s2", placed[1::2], "2/2")
    together = build_report(load([first, second], verify=False))
    check_nodes(together, placed)
    assert together["nodes"] == whole["nodes"]
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["report", "merge", str(first), str(second), "--out",
                                 str(merged), "--no-charts"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads((merged / "report.json").read_text())
    assert report["nodes"] == whole["nodes"]
    assert "## Nodes" in (merged / "report.md").read_text()
