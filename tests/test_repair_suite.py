"""The repair benchmark's task suite (benchmarks/tasks/repair, run by benchmarks/repair.py): each
task's base repository fails exactly its issue's tests; its issue and truth.json read and point at
a real line inside the named function; its correct.diff applies and makes every visible and hidden
test pass; each overfit trap's overfit.diff passes the visible tests while a hidden one fails; and
the driver reads a run folder without crashing on what it lacks. Every pytest run is a subprocess
in a temporary copy, so nothing is written beside the tasks."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import frontmatter
import pytest

from evaluators.junit import parse_junit

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "tasks" / "repair"
TASKS = sorted(p.name for p in SUITE.glob("RPR-*") if p.is_dir())
TRAPS = [t for t in TASKS if (SUITE / t / "overfit.diff").is_file()]
TRUTH_KEYS = {"path", "function", "line", "kind", "fix", "mutation_fixable", "overfit_trap"}
GIT = ("git", "-c", "user.name=bench", "-c", "user.email=bench@localhost")


def _truth(task: str) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((SUITE / task / "truth.json").read_text(encoding="utf-8"))
    return truth


def _issue(task: str) -> dict[str, Any]:
    meta: dict[str, Any] = frontmatter.load(str(SUITE / task / "issue.md")).metadata
    return meta


def _issue_tests(task: str) -> list[str]:
    return [str(node) for node in _issue(task)["tests"]]


def _checkout(task: str, dest: Path, *, patch: str = "", hidden: bool = False) -> Path:
    """The task's base repository in a one-commit git repository, `patch` (a diff file of the
    task) applied with `git apply` as a user's tool would, and the hidden tests copied in."""
    shutil.copytree(SUITE / task / "repo", dest)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "base")):
        subprocess.run([*GIT, *args], cwd=dest, check=True, capture_output=True)
    if patch:
        subprocess.run(["git", "apply", str(SUITE / task / patch)], cwd=dest, check=True)
    if hidden:
        shutil.copytree(SUITE / task / "hidden", dest, dirs_exist_ok=True)
    return dest


def _outcomes(repo: Path) -> dict[str, str]:
    """Each test's node id -> passed / failed / error / skipped, from pytest's JUnit report."""
    report = repo.parent / f"{repo.name}-junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-o", "junit_family=xunit1", f"--junitxml={report}"]  # fmt: skip
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        argv, cwd=repo, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert report.is_file(), done.stdout + done.stderr
    outcomes: dict[str, str] = {n: r.outcome for n, r in parse_junit(report.read_text()).items()}
    assert outcomes, done.stdout + done.stderr
    return outcomes


def test_suite_mix() -> None:
    truths = [_truth(t) for t in TASKS]
    assert len(TASKS) >= 20
    assert sum(not t["mutation_fixable"] for t in truths) >= 4
    assert sum(t["overfit_trap"] for t in truths) >= 3
    assert [t for t, truth in zip(TASKS, truths, strict=True) if truth["overfit_trap"]] == TRAPS


@pytest.mark.parametrize("task", TASKS)
def test_issue_and_truth_read(task: str) -> None:
    meta = _issue(task)
    assert meta["id"] == task and meta["title"]
    assert set(meta) <= {"id", "title", "labels", "tests"}  # hidden tests stay unnamed
    assert meta["tests"] and frontmatter.load(str(SUITE / task / "issue.md")).content.strip()
    for node in _issue_tests(task):
        assert (SUITE / task / "repo" / node.split("::")[0]).is_file(), node
    hidden = list((SUITE / task / "hidden" / "tests").glob("test_hidden_*.py"))
    assert hidden and not any((SUITE / task / "repo" / "tests" / h.name).exists() for h in hidden)

    truth = _truth(task)
    assert set(truth) >= TRUTH_KEYS, TRUTH_KEYS - set(truth)
    assert truth["kind"] in ("one-token", "few-token")
    assert isinstance(truth["mutation_fixable"], bool) and isinstance(truth["overfit_trap"], bool)
    source = (SUITE / task / "repo" / truth["path"]).read_text(encoding="utf-8")
    spans = _function_spans(ast.parse(source))
    assert truth["function"] in spans, sorted(spans)
    first, last = spans[truth["function"]]
    assert first <= truth["line"] <= last
    assert source.splitlines()[truth["line"] - 1].strip()


def _function_spans(tree: ast.AST, prefix: str = "") -> dict[str, tuple[int, int]]:
    """Qualname -> (first line, last line) of every function, as core/localise.py names them."""
    spans: dict[str, tuple[int, int]] = {}
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            spans[name] = (first, node.end_lineno or node.lineno)
            spans.update(_function_spans(node, f"{name}.<locals>."))
        elif isinstance(node, ast.ClassDef):
            spans.update(_function_spans(node, f"{prefix}{node.name}."))
        else:
            spans.update(_function_spans(node, prefix))
    return spans


@pytest.mark.parametrize("task", TASKS)
def test_base_fails_exactly_the_issue_tests(task: str, tmp_path: Path) -> None:
    outcomes = _outcomes(_checkout(task, tmp_path / "repo"))
    targets = set(_issue_tests(task))
    assert targets <= set(outcomes), targets - set(outcomes)
    assert {node for node, o in outcomes.items() if o != "passed"} == targets


@pytest.mark.parametrize("task", TASKS)
def test_correct_fix_passes_visible_and_hidden(task: str, tmp_path: Path) -> None:
    repo = _checkout(task, tmp_path / "repo", patch="correct.diff", hidden=True)
    outcomes = _outcomes(repo)
    assert any("/test_hidden_" in node for node in outcomes)
    assert {node: o for node, o in outcomes.items() if o != "passed"} == {}


@pytest.mark.parametrize("task", TRAPS)
def test_overfit_patch_passes_visible_fails_hidden(task: str, tmp_path: Path) -> None:
    repo = _checkout(task, tmp_path / "repo", patch="overfit.diff", hidden=True)
    outcomes = _outcomes(repo)
    failed = {node for node, o in outcomes.items() if o != "passed"}
    assert failed and all("/test_hidden_" in node for node in failed), failed


@pytest.mark.parametrize("task", TASKS)
def test_task_repository_is_ruff_clean(task: str) -> None:
    """Under ruff's default rules, as the gate's ruff sees the repository: run from its root, so
    that the package is first-party to isort (the hidden tests are judged the same way)."""
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.is_file():
        pytest.skip("ruff is not installed beside this interpreter")
    argv = [str(ruff), "check", "--no-cache", "--isolated", "--quiet", ".", "../hidden"]
    done = subprocess.run(
        argv, cwd=SUITE / task / "repo", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_driver_reads_a_run_folder_tolerantly(tmp_path: Path) -> None:
    """benchmarks/repair.py on a run folder with a torn line, records without the repair fields
    and a missing blob: ranks and candidates where they are written, None where they are not."""
    from benchmarks.repair import MODEL, Task, _records, candidates, localisation

    blobs = tmp_path / "blobs"
    blobs.mkdir()
    where = {"functions": [{"path": "pkg/m.py", "name": "f", "rank": 2}, {"path": "x", "rank": 1}],
             "statements": [{"path": "pkg/m.py", "line": 7, "rank": 4}]}  # fmt: skip
    tried = {"tried": [{"operator": "cmp", "result": "failed"},
                       {"operator": "const_pm1", "path": "pkg/m.py", "line": 7,
                        "result": "passed"}]}  # fmt: skip
    (blobs / "loc").write_text(json.dumps(where))
    (blobs / "cand").write_text(json.dumps(tried))
    records = [
        {"model": "other"},
        {"model": MODEL, "status": "rejected", "candidates_sha256": "gone"},
        {"model": MODEL, "status": "verified", "localisation_sha256": "loc",
         "candidates_sha256": "cand"},
    ]  # fmt: skip
    (tmp_path / "attempts.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n{torn")
    truth = {"path": "pkg/m.py", "function": "f", "line": 7}
    read = _records(tmp_path)
    assert len(read) == 3
    assert localisation(read, tmp_path, truth) | {"sha256": ""} == {
        "localised": True, "function_rank": 2, "line_rank": 4, "sha256": ""}  # fmt: skip
    got = candidates(read, tmp_path)
    assert (got["candidates"], got["operator"], got["operator_verified"]) == (2, "const_pm1", True)
    assert localisation([], tmp_path, truth)["localised"] is False
    assert candidates([{"model": MODEL}], tmp_path)["candidates"] is None
    assert Task("RPR-01", SUITE / "RPR-01", truth).repo.is_dir()
