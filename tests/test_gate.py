"""The gate as a whole, on real repositories and the real pytest evaluator: stage order and
fail-fast, the baseline cache, and tamper detection (a workspace that moves during a run)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cascade.core.gate import TAMPER, Gate, baseline_key
from cascade.protocols import Sandbox
from cascade.records import Issue, Patch, Task, Verdict
from cascade.testing import git, make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.pytest_gate import PytestEvaluator
from sandboxes.local_sandbox import LocalSandbox

CALC = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n"
# Code under test that, while pytest runs, rewrites the target test into one that cannot fail.
# (A conftest the patch writes never runs: the base's test configuration judges every patch.)
CHEAT = (
    "import pathlib\n\n"
    "pathlib.Path('tests/test_calc.py').write_text('def test_add():\\n    assert True\\n')\n\n\n"
    + CALC
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": TESTS})


def _task(repo: Path, tests: tuple[str, ...] = ("tests/test_calc.py::test_add",)) -> Task:
    commit = git(repo, "rev-parse", "HEAD").strip()
    return Task(issue=Issue(id="G-1", title="add", tests=tests), repo=str(repo), base_commit=commit)


async def _patched(box: Sandbox, files: Mapping[str, str]) -> Patch:
    await box.write_files({p: t.encode() for p, t in files.items()})
    return await canonical_patch(box)


class Recorder:
    """A trivial evaluator that records the order it ran in and passes or fails on request."""

    def __init__(self, name: str, calls: list[str], passed: bool = True) -> None:
        self.name, self.calls, self.passed = name, calls, passed
        self.baselines = 0

    def baseline_key(self, task: Task) -> str:
        return ""

    async def baseline(self, sandbox: Any, task: Task) -> dict[str, Any]:
        self.baselines += 1
        return {}

    async def evaluate(
        self, sandbox: Any, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        self.calls.append(self.name)
        return Verdict(evaluator=self.name, passed=self.passed, feedback="no" * (not self.passed))


@pytest.mark.anyio
async def test_code_that_rewrites_tests_is_tampering(repo: Path, opener: Any) -> None:
    task = _task(repo)
    box = await opener(repo, task.base_commit)
    try:
        gate = Gate([PytestEvaluator()])
        base = await gate.baseline(box, task)
        patch = await _patched(box, {"calc.py": CHEAT})
        verdicts = await gate.run(box, task, patch, base)
    finally:
        await box.close()
    assert [v.evaluator for v in verdicts] == ["pytest", TAMPER]
    tamper = verdicts[-1]
    assert not tamper.passed and "tests/test_calc.py" in tamper.feedback
    assert [f.path for f in tamper.findings] == ["tests/test_calc.py"]


@pytest.mark.anyio
async def test_an_honest_patch_is_not_tampering(repo: Path, opener: Any) -> None:
    task = _task(repo)
    box = await opener(repo, task.base_commit)
    try:
        gate = Gate([PytestEvaluator()])
        base = await gate.baseline(box, task)
        patch = await _patched(box, {"calc.py": CALC.replace("a - b", "a + b")})
        verdicts = await gate.run(box, task, patch, base)
    finally:
        await box.close()
    assert [(v.evaluator, v.passed) for v in verdicts] == [("pytest", True)]


@pytest.mark.anyio
async def test_baseline_is_cached_for_a_second_task_on_the_same_commit(repo: Path) -> None:
    calls: list[str] = []
    shared = Recorder("ruff", calls)
    gate = Gate([PytestEvaluator(), shared])
    first, second = _task(repo), _task(repo, ("tests/test_calc.py",))
    box = await LocalSandbox.open(repo, first.base_commit)
    try:
        one = await gate.baseline(box, first)
        two = await gate.baseline(box, second)
    finally:
        await box.close()
    # Both evaluators' baselines are shared: pytest's does not depend on the target tests.
    assert gate.cache_hits == 2 and shared.baselines == 1
    assert one["pytest"] is two["pytest"]
    other_commit = first.model_copy(update={"base_commit": "0" * 40})
    assert baseline_key(shared, other_commit) != baseline_key(shared, first)
    # A hidden conftest could change how every other test runs: that baseline is its own.
    hidden = first.issue.model_copy(update={"hidden_files": {"tests/conftest.py": "x = 1\n"}})
    with_hidden = first.model_copy(update={"issue": hidden})
    pytest_ev = gate.evaluators[-1]
    assert baseline_key(pytest_ev, with_hidden) != baseline_key(pytest_ev, first)


HIDDEN_ADD = "from calc import add\n\n\ndef test_hidden_add():\n    assert add(3, 4) == 7\n"
HIDDEN_NEG = "from calc import add\n\n\ndef test_hidden_neg():\n    assert add(-1, -1) == -2\n"


@pytest.mark.anyio
async def test_tasks_with_different_hidden_test_modules_share_one_baseline(repo: Path) -> None:
    def hidden_task(path: str, source: str, test: str) -> Task:
        task = _task(repo)
        issue = task.issue.model_copy(
            update={"hidden_files": {path: source}, "hidden_tests": (f"{path}::{test}",)}
        )
        return task.model_copy(update={"issue": issue})

    first = hidden_task("tests/test_hidden_a.py", HIDDEN_ADD, "test_hidden_add")
    second = hidden_task("tests/test_hidden_b.py", HIDDEN_NEG, "test_hidden_neg")
    gate = Gate([PytestEvaluator()])
    box = await LocalSandbox.open(repo, first.base_commit)
    try:
        one = await gate.baseline(box, first)
        two = await gate.baseline(box, second)
        # Neither hidden module was copied in for the baseline, so the second task reuses it...
        assert gate.cache_hits == 1 and one["pytest"] is two["pytest"]
        assert not any("hidden" in nodeid for nodeid in one["pytest"]["outcomes"])
        # ...and each task is still judged on its own hidden test, copied in for its run.
        half_fix = await _patched(box, {"calc.py": "def add(a, b):\n    return abs(a) + abs(b)\n"})
        verdicts_one = await gate.run(box, first, half_fix, one)
        verdicts_two = await gate.run(box, second, half_fix, two)
    finally:
        await box.close()
    assert [v.passed for v in verdicts_one] == [True]
    assert [v.passed for v in verdicts_two] == [False]
    assert "test_hidden_neg" not in verdicts_two[0].feedback  # a hidden test is never named


@pytest.mark.anyio
async def test_stages_run_cheap_first_and_stop_at_the_first_failing_stage(repo: Path) -> None:
    calls: list[str] = []
    gate = Gate(
        [
            Recorder("pytest", calls),
            Recorder("mypy", calls, passed=False),
            Recorder("ruff", calls),
            Recorder("diff_scope", calls),
        ],
        check_tamper=False,
    )
    assert gate.names == ["diff_scope", "mypy", "ruff", "pytest"]
    task = _task(repo)
    patch = Patch(diff="", sha256="0", files=())
    verdicts = await gate.run(None, task, patch, {})  # type: ignore[arg-type]
    # lint and types share a stage: both run (concurrently), then the gate stops.
    assert calls[0] == "diff_scope" and sorted(calls[1:]) == ["mypy", "ruff"]
    assert [v.evaluator for v in verdicts] == ["diff_scope", "mypy", "ruff"]


FLIPPER = (
    "import pathlib\n\n\n"
    "def test_sometimes():\n"
    "    if pathlib.Path('flaky_mode').exists():\n"
    "        seen = pathlib.Path('.git/flaky-seen')\n"
    "        if not seen.exists():\n"
    "            seen.write_text('1')\n"
    "            raise AssertionError('first run fails')\n"
)


@pytest.mark.anyio
async def test_a_test_that_flips_on_a_rerun_is_flaky_not_a_regression(tmp_path: Path) -> None:
    files = {"calc.py": CALC, "tests/test_calc.py": TESTS, "tests/test_flip.py": FLIPPER}
    repo = make_repo(tmp_path / "repo", files)
    task = _task(repo)
    box = await LocalSandbox.open(repo, task.base_commit)
    try:
        evaluator = PytestEvaluator()
        base = await evaluator.baseline(box, task)
        fixed = CALC.replace("a - b", "a + b")
        patch = await _patched(box, {"calc.py": fixed, "flaky_mode": "on\n"})
        verdict = await evaluator.evaluate(box, task, patch, base)
    finally:
        await box.close()
    assert base["outcomes"]["tests/test_flip.py::test_sometimes"] == "passed"
    assert verdict.passed, verdict.feedback
    assert [(f.rule, f.message.split(": ")[0]) for f in verdict.findings] == [
        ("flaky", "tests/test_flip.py::test_sometimes")
    ]
