"""The real-repositories benchmark's pure parts, without network or Docker: the suite is
consistent, each patch renders as an answer the engine parses back into its edits, verdicts are
read from attempt records and scored against the expected ones, and the totals count them."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.realrepos import TASKS, choose
from benchmarks.realrepos_report import (
    RunResult,
    TaskResult,
    judge,
    markdown,
    p50,
    summarize,
    verdict_of,
)
from benchmarks.realrepos_suite import Edit, config_toml, issue_md, problems
from cascade.config import CascadeConfig
from cascade.core.edits import parse_edits
from cascade.records import Attempt, Finding, Verdict


def test_suite_is_consistent_and_covers_every_situation() -> None:
    assert problems(TASKS) == []
    assert len({t.library.name for t in TASKS}) >= 5
    situations = {t.situation for t in TASKS}
    assert {"hangs-at-base", "pyi-stubs", "older-style", "git-setup", "order-dependent"} <= (
        situations
    )
    for task in TASKS:
        assert {p.kind for p in task.patches} == {
            "correct", "do-nothing", "wrong-fix", "test-tampering"
        }  # fmt: skip
    git_task = next(t for t in TASKS if t.situation == "git-setup")
    assert git_task.setup and git_task.tag


def test_each_answer_parses_back_into_its_edits() -> None:
    for task in TASKS:
        for patch in task.patches:
            edits = parse_edits(patch.answer())
            assert [(e.path, e.search, e.replace) for e in edits] == [
                (e.path, e.search, e.replace) for e in patch.edits
            ], f"{task.id}/{patch.name}"


def test_the_correct_patch_undoes_the_bug(tmp_path: Path) -> None:
    """Applied to a file holding the bug's replacement text, the correct patch restores the
    original text: the base commit is the buggy one and the fix is the inverse edit."""
    for task in TASKS:
        for bug in task.bug:
            where = tmp_path / task.id / bug.path
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_text(bug.search)
            bug.apply(tmp_path / task.id)
            for edit in task.patch("correct").edits:
                edit.apply(tmp_path / task.id)
            assert where.read_text() == bug.search, task.id


def test_edit_refuses_ambiguous_or_missing_text(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\nx = 1\n")
    with pytest.raises(ValueError, match="2 times"):
        Edit("m.py", "x = 1\n", "x = 2\n").apply(tmp_path)
    with pytest.raises(ValueError, match="0 times"):
        Edit("m.py", "y\n", "z\n").apply(tmp_path)
    with pytest.raises(ValueError, match="already exists"):
        Edit("m.py", "", "new\n").apply(tmp_path)


def test_generated_config_and_issue_are_valid() -> None:
    import tomllib

    import frontmatter

    for task in TASKS:
        config = CascadeConfig.model_validate(tomllib.loads(config_toml(task, "docker", 90)))
        assert config.gate.options["pytest"]["timeout"] == 90
        assert config.sandbox.setup == task.setup
        meta = frontmatter.loads(issue_md(task)).metadata
        assert meta["id"] == task.id and meta.get("hidden_tests") == list(task.hidden_tests)


def test_choose_by_task_or_library() -> None:
    assert [t.id for t in choose(TASKS, ["tlz-1"])] == ["TLZ-1"]
    assert [t.id for t in choose(TASKS, ["six", "IDNA-1"])] == ["SIX-1", "IDNA-1"]
    assert len(choose(TASKS, [])) == len(TASKS)
    with pytest.raises(ValueError, match="nope"):
        choose(TASKS, ["nope"])


@pytest.mark.parametrize(
    ("expect", "verdict", "rejected_by", "status"),
    [
        ("verified", "verified", "", "ok"),
        ("verified", "rejected", "ruff", "false_reject"),
        ("verified", "unproven", "", "false_reject"),
        ("verified", "error", "", "infra_error"),
        ("rejected", "verified", "", "false_accept"),
        ("rejected", "rejected", "pytest", "ok"),
        ("rejected", "rejected", "ruff", "ok"),  # another evaluator: noted, not scored
        ("rejected", "unproven", "", "unexpected"),
        ("rejected", "error", "", "infra_error"),
    ],
)
def test_judge(expect: str, verdict: str, rejected_by: str, status: str) -> None:
    assert judge(expect, verdict, rejected_by, "pytest")[0] == status  # type: ignore[arg-type]


def _attempt(status: str, *verdicts: Verdict, error: str = "") -> Attempt:
    return Attempt.model_validate(
        {"run_id": "r", "task_id": "T-1", "seq": 1, "rung": "scripted", "model": "m",
         "attempt": 1, "status": status, "verdicts": verdicts, "error": error}
    )  # fmt: skip


def test_verdict_of_reads_the_last_fix_attempt() -> None:
    found = (Finding(rule="hidden", message="hidden test #1 failed"),)
    failed = Verdict(evaluator="pytest", passed=False, findings=found)
    passed = Verdict(evaluator="diff_scope", passed=True)
    assert verdict_of("exhausted", "", [_attempt("rejected", passed, failed)]) == (
        "rejected", "pytest", ("hidden",), "hidden test #1 failed"
    )  # fmt: skip
    assert verdict_of("verified", "", [_attempt("verified", passed)])[0] == "verified"
    assert verdict_of("error", "SandboxError: setup failed", [])[:1] == ("error",)
    edit = verdict_of("exhausted", "", [_attempt("edit_error", error="no match")])
    assert edit[0] == "error" and "did not apply" in edit[3]
    infra = verdict_of("exhausted", "", [_attempt("infra_error", error="pytest broke")])
    assert infra == ("error", "", (), "pytest broke")


def _run(task: str, kind: str, status: str, time_s: float) -> RunResult:
    expect = "verified" if kind == "correct" else "rejected"
    verdict = {"ok": expect, "false_reject": "rejected", "false_accept": "verified"}
    return RunResult.model_validate(
        {"task": task, "library": "lib==1", "situation": "control", "patch": kind, "kind": kind,
         "expect": expect, "verdict": verdict.get(status, "error"), "status": status,
         "outcome": "exhausted", "time_s": time_s}
    )  # fmt: skip


def test_summary_counts_and_p50() -> None:
    tasks = [
        TaskResult(task="A-1", library="lib==1", sha256="0", situation="control", note="",
                   build_s=1.0, time_s=10.0,
                   runs=(_run("A-1", "correct", "ok", 4.0), _run("A-1", "wrong-fix", "ok", 2.0))),
        TaskResult(task="B-1", library="lib==1", sha256="0", situation="control", note="",
                   build_s=1.0, time_s=30.0,
                   runs=(_run("B-1", "correct", "infra_error", 6.0),
                         _run("B-1", "do-nothing", "false_accept", 8.0))),
    ]  # fmt: skip
    result = summarize(tasks, backend="docker", machine={"platform": "x"}, wall_s=40.0)
    totals = result["totals"]
    assert totals["false_accepts"] == ["B-1/do-nothing"]
    assert totals["infra_errors_on_correct"] == ["B-1/correct"]
    assert totals["false_rejects"] == [] and totals["ok"] == 2
    assert (totals["correct_verified"], totals["correct"]) == (1, 2)
    assert result["timing"]["task_p50_s"] == 20.0
    assert result["timing"]["run_p50_s"] == 5.0
    assert result["libraries"] == [{"pin": "lib==1", "sha256": "0"}]
    page = markdown(result)
    assert "**false accepts** (a patch that should fail was verified) | **1**" in page
    assert "B-1/do-nothing | false_accept" in page
    assert p50([]) == 0.0
