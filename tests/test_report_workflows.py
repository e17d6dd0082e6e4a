"""`cascade report` per workflow: tasks, verified, needs review, unproven, escalation and cost per
verified patch for each workflow the runs took (numbers checked against a hand count), a report
of one default workflow that stays as it was, and runs sealed before outcomes named their
workflow, which are counted as "(not recorded)" rather than guessed at or crashed on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.proof.log import ProofLog
from cascade.proof.run_folder import OUTCOME_FILE
from cascade.records import (
    AppliedPolicy,
    Attempt,
    Decision,
    RunOutcome,
    RunStatus,
    Verdict,
    WorkflowChoice,
)
from cascade.report.data import ReportData, TaskResult, load
from cascade.report.numbers import NOT_RECORDED, build_report
from cascade.report.render import write_report

runner = CliRunner()
BASE = "0" * 40
PATHS = {
    "docs": WorkflowChoice(
        name="docs", matched=("every path inside docs/**",), gate=("diff_scope",),
        proof="reproduce never", ladder="start cheap, ceiling cheap", apply="draft_pr",
    ),
    "security": WorkflowChoice(
        name="security", matched=("label security",), gate=("diff_scope", "pytest", "coverage"),
        proof="reproduce always, independent", review="human", ladder="start cheap, ceiling "
        "strong", apply="draft_pr", reviewers=("org/security",),
    ),
    "default": WorkflowChoice(
        name="default", gate=("diff_scope", "pytest"), proof="reproduce missing",
        ladder="start cheap, ceiling strong",
    ),
}  # fmt: skip


def attempt(
    task: str,
    seq: int,
    rung: str,
    status: str,
    cost: float,
    *,
    flow: str = "",
    raised: tuple[str, ...] = (),
) -> Attempt:
    """One gated fix attempt; the first of a run says its workflow when `flow` is given (runs
    older than workflows say nothing)."""
    choice = PATHS[flow] if flow and seq == 1 else None
    policy = AppliedPolicy(workflow=flow, raised_by=raised) if flow else None
    return Attempt(
        run_id=f"r-{task}", task_id=task, seq=seq, rung=rung, model=f"m/{rung}", attempt=1,
        status=status, cost_usd=cost, duration_s=1.0,  # type: ignore[arg-type]
        verdicts=(Verdict(evaluator="pytest", passed=status == "verified"),),
        decision=Decision(kind="start" if seq == 1 else "climb", why="-", workflow=choice),
        policy=policy,
    )  # fmt: skip


def task(
    task_id: str,
    status: RunStatus,
    attempts: list[Attempt],
    *,
    workflow: str = "",
    needs_review: bool = False,
) -> TaskResult:
    won = next((a for a in attempts if a.status == "verified"), None)
    outcome = RunOutcome(
        run_id=f"r-{task_id}", task_id=task_id, status=status, run_dir="", base_commit=BASE,
        attempts=len(attempts), cost_usd=round(sum(a.cost_usd for a in attempts), 8),
        duration_s=1.0, verified_rung=won.rung if won else "", workflow=workflow,
        needs_review=needs_review, reviewers=("org/security",) if needs_review else (),
        error="boom" if status == "error" else "",
    )  # fmt: skip
    return TaskResult(task_id, outcome, tuple(attempts), ("bug",), source="test", title=task_id)


def mixed() -> list[TaskResult]:
    """Nine tasks of three workflows and one older run. By hand, per workflow:
    docs      D1 unproven; D2 verified, needs review (its patch touched security's paths); D3
              exhausted on its only rung — 3 tasks, 1 verified, 1 unproven, none escalated,
              $0.06 in all, $0.06 per verified patch.
    security  S1 verified on the second rung, needs review; S2 exhausted after climbing; E1 an
              error whose outcome names no workflow but whose first attempt does — 3 tasks, 1
              verified, 2 of 3 started escalated, $1.40, $1.40 per verified patch.
    default   F1 verified; F2 an error before any attempt — 2 tasks, 1 verified, 0 of 1 started
              escalated, $0.10.
    (not recorded)  O1, verified, sealed before runs said their workflow — $0.05."""
    return [
        task("D1", "unproven", [attempt("D1", 1, "cheap", "unproven", 0.01, flow="docs")],
             workflow="docs"),
        task("D2", "verified", [attempt("D2", 1, "cheap", "verified", 0.02, flow="docs",
                                        raised=("security",))],
             workflow="docs", needs_review=True),
        task("D3", "exhausted", [attempt("D3", 1, "cheap", "rejected", 0.01, flow="docs"),
                                 attempt("D3", 2, "cheap", "rejected", 0.02, flow="docs")],
             workflow="docs"),
        task("S1", "verified", [attempt("S1", 1, "cheap", "rejected", 0.1, flow="security"),
                                attempt("S1", 2, "strong", "verified", 0.4, flow="security")],
             workflow="security", needs_review=True),
        task("S2", "exhausted", [attempt("S2", 1, "cheap", "rejected", 0.2, flow="security"),
                                 attempt("S2", 2, "strong", "rejected", 0.5, flow="security")],
             workflow="security"),
        task("E1", "error", [attempt("E1", 1, "cheap", "rejected", 0.2, flow="security")]),
        task("F1", "verified", [attempt("F1", 1, "cheap", "verified", 0.1, flow="default")],
             workflow="default"),
        task("F2", "error", [], workflow="default"),
        task("O1", "verified", [attempt("O1", 1, "cheap", "verified", 0.05)]),
    ]  # fmt: skip


def data_of(tasks: list[TaskResult]) -> ReportData:
    data = ReportData(sources=["test"], ladder=("cheap", "strong"), gate=("diff_scope", "pytest"))
    data.tasks = tasks
    data.seen = {t.task_id for t in tasks}
    return data


def test_the_numbers_per_workflow_match_a_hand_count() -> None:
    report = build_report(data_of(mixed()))
    flows = report["workflows"]
    assert list(flows) == ["docs", "security", "default", NOT_RECORDED]  # largest first
    docs, security, default, old = (flows[n] for n in flows)
    assert (docs["tasks"], docs["verified"], docs["needs_review"], docs["unproven"]) == (3, 1, 1, 1)
    assert docs["exhausted"] == 1 and docs["escalation_rate"] == 0.0
    assert docs["cost_usd"] == docs["per_verified_usd"] == pytest.approx(0.06)
    assert docs["raised_by"] == {"security": 1}
    assert docs["path"]["gate"] == ["diff_scope"] and docs["path"]["proof"] == "reproduce never"
    assert (security["tasks"], security["verified"], security["needs_review"]) == (3, 1, 1)
    assert security["error"] == 1 and security["exhausted"] == 1  # E1, by its first attempt
    assert security["escalation_rate"] == round(2 / 3, 4)
    assert security["cost_usd"] == pytest.approx(1.4)
    assert security["per_verified_usd"] == pytest.approx(1.4)
    assert security["path"]["review"] == "human" and security["raised_by"] == {}
    assert (default["tasks"], default["verified"], default["error"]) == (2, 1, 1)
    assert default["escalation_rate"] == 0.0  # F2 never started: not in the denominator
    assert default["per_verified_usd"] == pytest.approx(0.1)
    assert (old["tasks"], old["verified"], old["path"]) == (1, 1, None)
    assert old["cost_usd"] == pytest.approx(0.05)
    # The whole batch: two verified patches wait for a person, and the headline says so.
    assert report["tasks"]["needs_review"] == 2 and report["tasks"]["verified"] == 4
    assert "2 of the verified patches wait for a person's review." in report["headline"]["text"]
    assert report["escalation_rate"] == round(2 / 8, 4)  # S1 and S2 of the 8 that started
    rows = {r["task"]: r for r in report["task_rows"]}
    assert rows["E1"]["workflow"] == "security" and rows["O1"]["workflow"] == NOT_RECORDED
    assert rows["S1"]["needs_review"] is True and rows["F1"]["needs_review"] is False


def _table(md: str, section: str) -> list[list[str]]:
    body = md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in body.splitlines()
        if line.startswith("| ")
    ]


def test_the_table_in_markdown_html_and_json(tmp_path: Path) -> None:
    report = build_report(data_of(mixed()))
    write_report(report, tmp_path, charts=False)
    md = (tmp_path / "report.md").read_text()
    head, *rows = _table(md, "Per workflow")
    assert head == ["workflow", "tasks", "verified", "needs review", "unproven", "other",
                    "escalated", "cost", "per verified"]  # fmt: skip
    assert rows == [
        ["docs", "3", "1", "1", "1", "1", "0%", "$0.0600", "$0.0600"],
        ["security", "3", "1", "1", "0", "2", "67%", "$1.4000", "$1.4000"],
        ["default", "2", "1", "0", "0", "1", "0%", "$0.1000", "$0.1000"],
        ["(not recorded)", "1", "1", "0", "0", "0", "0%", "$0.0500", "$0.0500"],
    ]
    assert md.index("## Outcomes") < md.index("## Per workflow") < md.index("## Per rung")
    assert "- docs: gate diff_scope; reproduce never; review none; start cheap, ceiling cheap" in md
    assert "1 task(s) held to 'security' too (a traceback or patch touched its paths)" in md
    assert "- (not recorded): runs that do not say" in md
    # Each task names its workflow, and a verified one that waits for review says so.
    tasks = {row[0]: row for row in _table(md, "Tasks")[1:]}
    assert tasks["S1"][3:5] == ["security", "verified, needs review"]
    assert tasks["O1"][3:5] == [NOT_RECORDED, "verified"]
    html = (tmp_path / "report.html").read_text()
    table = html.split('id="workflows-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 4 and "<td>(not recorded)</td>" in table
    assert '<td class="num">67%</td>' in table
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["workflows"] == report["workflows"]


def test_one_default_workflow_keeps_the_report_as_it_was(tmp_path: Path) -> None:
    plain = [
        task("F1", "verified", [attempt("F1", 1, "cheap", "verified", 0.1, flow="default")],
             workflow="default"),
        task("O1", "exhausted", [attempt("O1", 1, "cheap", "rejected", 0.05)],
             workflow="default"),
    ]  # fmt: skip
    report = build_report(data_of(plain))
    assert list(report["workflows"]) == ["default"]  # the JSON always has the numbers
    write_report(report, tmp_path, charts=False)
    md = (tmp_path / "report.md").read_text()
    assert "## Per workflow" not in md
    assert 'id="workflows' not in (tmp_path / "report.html").read_text()
    assert _table(md, "Tasks")[0][:4] == ["task", "title", "labels", "status"]
    assert "review" not in report["headline"]["text"]
    # One workflow that is not the default is worth its row: it says which path every task took.
    docs = [task("D1", "unproven", [attempt("D1", 1, "cheap", "unproven", 0.01, flow="docs")],
                 workflow="docs")]  # fmt: skip
    write_report(build_report(data_of(docs)), tmp_path / "docs", charts=False)
    assert "## Per workflow" in (tmp_path / "docs" / "report.md").read_text()


def _seal(runs: Path, result: TaskResult) -> Path:
    log = ProofLog.create(runs, result.outcome.run_id)
    for record in result.attempts:
        log.append(record)
    outcome = result.outcome.model_copy(update={"run_dir": str(log.run_dir)})
    log.seal(outcome, result.attempts, None, result.title, ["cheap", "strong"])
    return log.run_dir


def _as_older(run: Path) -> None:
    """outcome.json as cascade wrote it before workflows: without the fields they added."""
    outcome: dict[str, Any] = json.loads((run / OUTCOME_FILE).read_text())
    for key in ("workflow", "needs_review", "review_why", "reviewers", "apply"):
        outcome.pop(key)
    (run / OUTCOME_FILE).write_text(json.dumps(outcome, indent=2))


def test_runs_older_than_workflows_are_counted_not_guessed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    by_id = {t.task_id: t for t in mixed()}
    for name in ("D2", "S1", "F1"):
        _seal(runs, by_id[name])
    _as_older(_seal(runs, by_id["O1"]))
    _as_older(_seal(runs, by_id["E1"]))  # older outcome, but its first attempt names it
    flows = build_report(load([runs], verify=False))["workflows"]
    assert {n: r["tasks"] for n, r in flows.items()} == {
        "security": 2, "default": 1, "docs": 1, NOT_RECORDED: 1,
    }  # fmt: skip
    assert flows["security"]["needs_review"] == 1 and flows[NOT_RECORDED]["needs_review"] == 0
    result = runner.invoke(app, ["report", str(runs), "--json", "--no-charts"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["workflows"] == json.loads(json.dumps(flows))
    md = (runs / "report.md").read_text()
    assert "| (not recorded) | 1 | 1 | 0 | 0 | 0 | 0% | $0.0500 | $0.0500 |" in md
