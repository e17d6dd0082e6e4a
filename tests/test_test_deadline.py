"""A hanging test is a failing test (issue 16, finding 1): each test has a deadline in the sealed
session, a test past it fails as timed out with where it was stuck, and the run goes on. At the
base commit a hang is simply a failing test (a task whose target hangs there is provable); after
the patch, a hang the patch causes is rejected with feedback naming the test that hung."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import pytest

from cascade.config import CascadeConfig
from cascade.records import Issue, Patch, Task
from cascade.testing import git, make_repo
from cascade.wiring.registry import build_reproduction_gate
from cascade.workspace.apply import canonical_patch
from evaluators.junit import CaseResult
from evaluators.pytest_gate import PytestConfig, PytestEvaluator
from evaluators.pytest_run import run_problem, run_pytest
from evaluators.regressions import Scrubber, feedback, findings, judge
from evaluators.reproduction import ReproductionEvaluator
from sandboxes.local_sandbox import LocalSandbox

PYPROJECT = '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
LOOPS = "def add(a, b):\n    while True:\n        pass\n\n\ndef mul(a, b):\n    return a * b\n"
FIXED = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = (
    "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 2) == 4\n\n\n"
    "def test_mul():\n    assert mul(2, 3) == 6\n"
)
OTHER = "def test_other():\n    assert True\n"
TARGET = "tests/test_calc.py::test_add"

# Hangs the interrupt cannot end (it swallows it), a fixture that hangs, and a test that uses
# SIGALRM itself: the deadline must not take its alarm away.
STUBBORN = """\
import signal
import time

import pytest


@pytest.fixture
def stuck():
    time.sleep(1000)


def test_swallows_the_interrupt():
    while True:
        try:
            time.sleep(1000)
        except BaseException:
            pass


def test_fixture_hangs(stuck):
    pass


def test_own_alarm():
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.01)
    while not fired:
        time.sleep(0.01)
    signal.signal(signal.SIGALRM, old)


def test_last():
    assert True
"""


def _repo(tmp_path: Path, files: Mapping[str, str]) -> Path:
    return make_repo(tmp_path / "repo", {"pyproject.toml": PYPROJECT, **files})


def _task(repo: Path) -> Task:
    issue = Issue(id="H-1", title="add never returns", tests=(TARGET,))
    return Task(issue=issue, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())


async def _patch(box: Any, files: Mapping[str, str]) -> Patch:
    await box.write_files({path: text.encode() for path, text in files.items()})
    return await canonical_patch(box)


@pytest.mark.anyio
async def test_a_target_that_hangs_at_base_fails_there_and_proves_the_fix(
    tmp_path: Path, opener: Any
) -> None:
    repo = _repo(tmp_path, {"calc/__init__.py": LOOPS, "tests/test_calc.py": TESTS})
    (repo / "tests/test_other.py").write_text(OTHER)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "another test file, after the hanging one")
    task = _task(repo)
    # The whole run's bound stays, well above one test's deadline.
    evaluator = PytestEvaluator(PytestConfig(timeout=120, test_timeout=2))
    box = await opener(repo, task.base_commit)
    try:
        base = await evaluator.baseline(box, task)  # no infrastructure error
        outcomes = await evaluator.base_outcomes(box, task)
        verdict = await evaluator.evaluate(
            box, task, await _patch(box, {"calc/__init__.py": FIXED}), base
        )
    finally:
        await box.close()
    assert base["outcomes"] == {
        TARGET: "failed",
        "tests/test_calc.py::test_mul": "passed",
        "tests/test_other.py::test_other": "passed",
    }
    assert outcomes[TARGET].startswith("failed: Failed: timed out after 2 s (per-test deadline)")
    # Where it was stuck, for the prompt: the loop in the repository's code.
    assert re.search(r"calc/__init__.py:[23]: in add", base["failures"][TARGET])
    assert verdict.passed, verdict.feedback
    assert verdict.tests[TARGET] == "passed"


@pytest.mark.anyio
async def test_a_test_that_ignores_the_interrupt_is_killed_and_the_run_goes_on(
    tmp_path: Path, opener: Any
) -> None:
    repo = _repo(tmp_path, {"tests/test_stubborn.py": STUBBORN})
    box = await opener(repo, git(repo, "rev-parse", "HEAD").strip())
    try:
        run = await run_pytest(box, [], timeout=120, test_timeout=3)
    finally:
        await box.close()
    assert run_problem(run) == "", run.output
    assert run.exit_code == 1
    results = run.results or {}
    swallowed = results["tests/test_stubborn.py::test_swallows_the_interrupt"]
    assert swallowed.outcome == "failed"
    assert swallowed.message.startswith("Failed: timed out after 3 s (per-test deadline)")
    assert "its process was killed" in swallowed.message
    assert "tests/test_stubborn.py:15: in test_swallows_the_interrupt" in swallowed.text
    fixture = results["tests/test_stubborn.py::test_fixture_hangs"]
    assert fixture.outcome == "error"  # as pytest reports any fixture that fails
    assert "timed out after 3 s (per-test deadline)" in fixture.message
    assert "tests/test_stubborn.py:9: in stuck" in fixture.text
    # The rest ran, in a new test process; the suite's own alarm still reached its handler.
    assert results["tests/test_stubborn.py::test_own_alarm"].outcome == "passed"
    assert results["tests/test_stubborn.py::test_last"].outcome == "passed"
    assert run.stopped == ""


@pytest.mark.anyio
async def test_a_patch_that_makes_a_test_hang_is_told_which(tmp_path: Path) -> None:
    base_code = FIXED.replace("a + b", "a - b")
    repo = _repo(tmp_path, {"calc/__init__.py": base_code, "tests/test_calc.py": TESTS})
    task = _task(repo)
    evaluator = PytestEvaluator(PytestConfig(timeout=120, test_timeout=2))
    box = await LocalSandbox.open(repo, task.base_commit)
    try:
        base = await evaluator.baseline(box, task)
        hangs = FIXED.replace("return a * b", "while True:\n        pass")
        verdict = await evaluator.evaluate(
            box, task, await _patch(box, {"calc/__init__.py": hangs}), base
        )
    finally:
        await box.close()
    assert not verdict.passed
    assert "FAILED tests/test_calc.py::test_mul (it passed before your change; it hung: " in (
        verdict.feedback
    )
    assert "still running after the 2 s per-test deadline" in verdict.feedback
    assert re.search(r"calc/__init__.py:[67]: in mul", verdict.feedback)
    assert "test_add" not in verdict.feedback  # the target passes: only the hang is reported
    (finding,) = verdict.findings
    assert finding.rule == "regression"
    assert finding.message == (
        "tests/test_calc.py::test_mul: Failed: timed out after 2 s (per-test deadline)"
    )


@pytest.mark.anyio
async def test_a_zero_deadline_leaves_only_the_whole_run_bound(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"calc/__init__.py": LOOPS, "tests/test_calc.py": TESTS})
    box = await LocalSandbox.open(repo, git(repo, "rev-parse", "HEAD").strip())
    try:
        run = await run_pytest(box, [], timeout=3, test_timeout=0)
    finally:
        await box.close()
    assert run_problem(run) == "test run timed out after 3 s"
    assert PytestConfig().test_timeout == 60
    with pytest.raises(pydantic.ValidationError):
        PytestConfig(test_timeout=-1)


def test_tests_left_unrun_after_the_last_kill_are_said_not_to_have_run() -> None:
    hung = CaseResult(
        "tests/test_a.py::test_stuck", "failed", "Failed: timed out after 5 s (per-test deadline)"
    )
    results = {hung.nodeid: hung}
    baseline = {hung.nodeid: "passed", "tests/test_b.py::test_after": "passed"}
    failures = judge(
        results, targets=(), hidden=(), baseline=baseline, stopped="tests/test_a.py::test_stuck"
    )
    notes = {f.nodeid: f.note for f in failures}
    assert notes == {
        hung.nodeid: "",
        "tests/test_b.py::test_after": (
            "it passed before; it did not run: the run stopped after "
            "tests/test_a.py::test_stuck hung"
        ),
    }


def test_a_hidden_test_that_hung_says_only_that() -> None:
    secret = "tests/test_secret.py::test_never_shown"
    hung = CaseResult(secret, "failed", "Failed: timed out after 5 s (per-test deadline)")
    (failure,) = judge({secret: hung}, targets=(), hidden=(secret,))
    scrub = Scrubber([secret], {})
    text = feedback([failure], [secret], scrub, quote=False)
    assert text.endswith("\n\nhidden test #1 hung: it ran into the per-test deadline")
    (finding,) = findings([failure], [secret], scrub, quote=False)
    assert finding.message == "hidden test #1 hung: it ran into the per-test deadline"


def test_the_reproduction_runs_with_the_gates_test_deadline() -> None:
    # A reproduction judged under another deadline than the baseline would call a slow test
    # that passed there broken by the candidate.
    config = CascadeConfig.model_validate({"gate": {"options": {"pytest": {"test_timeout": 7}}}})
    (judge,) = build_reproduction_gate(config).evaluators
    assert isinstance(judge, ReproductionEvaluator)
    assert judge.config.test_timeout == 7
