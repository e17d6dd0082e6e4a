"""The baseline-relative pytest gate, run for real: a tiny repository in tmp_path, a LocalSandbox,
and pytest inside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cascade.core.gate import target_failures
from cascade.records import Issue, Patch, Task, Verdict
from cascade.testing import git as _git
from cascade.testing import make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.junit import CaseResult, node_id, parse_junit
from evaluators.pytest_gate import PytestConfig, PytestEvaluator
from evaluators.regressions import FEEDBACK_CHARS, Failure, Scrubber, feedback
from sandboxes.local_sandbox import LocalSandbox

CALC = """\
def add(a, b):
    return a - b


def mul(a, b):
    return a * b
"""
FIXED_ADD = CALC.replace("a - b", "a + b")
TESTS = """\
import pytest

from calc import add, mul


def test_add():
    assert add(2, 2) == 4


def test_mul():
    assert mul(2, 3) == 6


@pytest.mark.parametrize("a,b,c", [(1, 2, 3), (2, 2, 4)])
def test_mul_param(a, b, c):
    assert mul(a, b) == c


def test_broken_before():
    assert mul(0, 1) == 1


class TestGroup:
    def test_inner(self):
        assert mul(1, 1) == 1
"""
OTHER = "from calc.extra import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
HIDDEN_PATH = "tests/test_hidden_secret_sauce.py"
HIDDEN_NAME = "test_add_negative_numbers_secretly"
HIDDEN_BODY = "add(-1, -2) == -3"
HIDDEN = f"from calc import add\n\n\ndef {HIDDEN_NAME}():\n    assert {HIDDEN_BODY}\n"
TARGET = "tests/test_calc.py::test_add"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {
        "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
        "calc/__init__.py": CALC,
        "calc/extra.py": "def double(x):\n    return 2 * x\n",
        "tests/test_calc.py": TESTS,
        "tests/test_other.py": OTHER,
    }
    return make_repo(tmp_path / "repo", files)


@pytest.fixture
async def sandbox(repo: Path) -> AsyncIterator[LocalSandbox]:
    box = await LocalSandbox.open(repo, _git(repo, "rev-parse", "HEAD").strip())
    try:
        yield box
    finally:
        await box.close()


def _task(repo: Path, tests: tuple[str, ...] = (TARGET,), hidden: bool = False) -> Task:
    issue = Issue(
        id="T-1",
        title="add is wrong",
        tests=tests,
        hidden_tests=(f"{HIDDEN_PATH}::{HIDDEN_NAME}",) if hidden else (),
        hidden_files={HIDDEN_PATH: HIDDEN} if hidden else {},
    )
    return Task(issue=issue, repo=str(repo), base_commit="HEAD")


async def _patch(box: LocalSandbox, files: dict[str, str]) -> Patch:
    await box.write_files({path: text.encode() for path, text in files.items()})
    return await canonical_patch(box)


async def _gate(
    box: LocalSandbox, task: Task, files: dict[str, str], config: PytestConfig | None = None
) -> tuple[Verdict, dict[str, Any]]:
    """Baseline on the clean tree, then the patch, then the verdict."""
    evaluator = PytestEvaluator(config)
    base = await evaluator.baseline(box, task)
    patch = await _patch(box, files)
    return await evaluator.evaluate(box, task, patch, base), base


async def _changed(box: LocalSandbox) -> list[str]:
    """Paths that differ from the base commit, untracked ones included."""
    argv = ["git", "status", "--porcelain", "--untracked-files=all"]
    return [line[3:] for line in (await box.exec(argv, timeout=30)).stdout.splitlines()]


@pytest.mark.anyio
async def test_baseline_shape_and_parametrized_ids(sandbox: LocalSandbox, repo: Path) -> None:
    base = await PytestEvaluator().baseline(sandbox, _task(repo, hidden=True))
    assert set(base) == {"outcomes", "failures", "exit_code", "duration_s"}
    assert base["exit_code"] == 1
    assert base["outcomes"] == {
        "tests/test_calc.py::TestGroup::test_inner": "passed",
        "tests/test_calc.py::test_add": "failed",
        "tests/test_calc.py::test_broken_before": "failed",
        "tests/test_calc.py::test_mul": "passed",
        "tests/test_calc.py::test_mul_param[1-2-3]": "failed",
        "tests/test_calc.py::test_mul_param[2-2-4]": "passed",
        "tests/test_other.py::test_double": "passed",
    }
    targets = target_failures({"pytest": base}, [TARGET, "tests/test_calc.py::test_mul_param"])
    assert list(targets) == [TARGET, "tests/test_calc.py::test_mul_param"]
    assert "assert 0 == 4" in targets[TARGET]
    assert "tests/test_calc.py::test_mul" not in target_failures(
        {"pytest": base}, ["tests/test_calc.py::test_mul"]
    )
    assert HIDDEN_NAME not in repr(base) and "secret" not in repr(base)
    assert await _changed(sandbox) == []


@pytest.mark.anyio
async def test_correct_patch_passes_despite_preexisting_failures(
    sandbox: LocalSandbox, repo: Path
) -> None:
    # test_broken_before and test_mul_param[1-2-3] fail before and after: not the patch's fault.
    verdict, _ = await _gate(sandbox, _task(repo), {"calc/__init__.py": FIXED_ADD})
    assert verdict.passed, verdict.feedback
    assert verdict.evaluator == "pytest"
    assert "junit.xml" in verdict.artifacts and "pytest.log" in verdict.artifacts


@pytest.mark.anyio
async def test_regression_is_caught(sandbox: LocalSandbox, repo: Path) -> None:
    broken = FIXED_ADD.replace("a * b", "a + b")
    verdict, _ = await _gate(sandbox, _task(repo), {"calc/__init__.py": broken})
    assert not verdict.passed
    assert verdict.feedback.startswith("The tests below fail after your change.")
    assert "tests/test_calc.py::test_mul (it passed before your change)" in verdict.feedback
    assert "assert 5 == 6" in verdict.feedback
    # test_mul_param[1-2-3] failed before too, so it is not blamed on the patch.
    assert "test_mul_param[1-2-3]" not in verdict.feedback
    rules = {(f.rule, f.path) for f in verdict.findings}
    assert rules == {("regression", "tests/test_calc.py")}
    assert sorted(f.line for f in verdict.findings) == [11, 25]
    assert "tests/test_calc.py::TestGroup::test_inner (it passed" in verdict.feedback


@pytest.mark.anyio
async def test_hidden_test_is_enforced_without_leaking(sandbox: LocalSandbox, repo: Path) -> None:
    task = _task(repo, hidden=True)
    evaluator = PytestEvaluator()
    base = await evaluator.baseline(sandbox, task)
    cheat = CALC.replace("return a - b", "return 4 if (a, b) == (2, 2) else a - b")
    verdict = await evaluator.evaluate(
        sandbox, task, await _patch(sandbox, {"calc/__init__.py": cheat}), base
    )
    assert not verdict.passed
    # Its number and the type of what it raised: never the message, which quotes its asserts.
    assert "hidden test #1 failed: AssertionError" in verdict.feedback
    shown = verdict.feedback + repr(verdict.findings)
    for secret in (HIDDEN_NAME, HIDDEN_PATH, "secret", HIDDEN_BODY, "add(-1", "1 == -3"):
        assert secret not in shown
    assert [f.rule for f in verdict.findings] == ["hidden"]
    assert await _changed(sandbox) == ["calc/__init__.py"]

    await sandbox.reset()
    good = await evaluator.evaluate(
        sandbox, task, await _patch(sandbox, {"calc/__init__.py": FIXED_ADD}), base
    )
    assert good.passed, good.feedback
    assert await _changed(sandbox) == ["calc/__init__.py"]


@pytest.mark.anyio
async def test_hidden_files_put_back_over_existing_file(sandbox: LocalSandbox, repo: Path) -> None:
    # A hidden file that shadows a tracked one: the tracked content comes back afterwards.
    issue = Issue(
        id="T-2",
        title="t",
        hidden_tests=("tests/test_other.py::test_double",),
        hidden_files={"tests/test_other.py": OTHER + "\n\ndef test_more():\n    assert 0\n"},
    )
    task = Task(issue=issue, repo=str(repo), base_commit="HEAD")
    verdict, _ = await _gate(sandbox, task, {"calc/__init__.py": FIXED_ADD})
    assert verdict.passed, verdict.feedback
    assert await sandbox.read_file("tests/test_other.py") == OTHER.encode()
    assert await _changed(sandbox) == ["calc/__init__.py"]


@pytest.mark.anyio
async def test_missing_target_fails(sandbox: LocalSandbox, repo: Path) -> None:
    tests = (TARGET, "tests/test_calc.py::test_nope", "tests/test_gone.py::test_x")
    verdict, base = await _gate(sandbox, _task(repo, tests), {"calc/__init__.py": FIXED_ADD})
    targets = target_failures({"pytest": base}, tests)
    assert targets["tests/test_gone.py::test_x"] == "not found at the base commit"
    assert not verdict.passed
    for nodeid in tests[1:]:
        assert f"FAILED {nodeid} (a target test of this issue, not found" in verdict.feedback
    assert TARGET not in verdict.feedback
    assert {f.rule for f in verdict.findings} == {"target"}


@pytest.mark.anyio
async def test_parametrized_target_and_function_wide_target(
    sandbox: LocalSandbox, repo: Path
) -> None:
    param = "tests/test_calc.py::test_mul_param[2-2-4]"
    verdict, _ = await _gate(sandbox, _task(repo, (param,)), {"calc/__init__.py": FIXED_ADD})
    assert verdict.passed, verdict.feedback
    await sandbox.reset()
    # A bare function name stands for all its parameter sets; [1-2-2] still fails.
    wide = _task(repo, ("tests/test_calc.py::test_mul_param",))
    verdict, _ = await _gate(sandbox, wide, {"calc/__init__.py": FIXED_ADD})
    assert not verdict.passed
    head = "FAILED tests/test_calc.py::test_mul_param (a target test of this issue)"
    assert head in verdict.feedback and "assert 2 == 3" in verdict.feedback


@pytest.mark.anyio
async def test_collection_error_is_blamed_on_the_patch(sandbox: LocalSandbox, repo: Path) -> None:
    files = {"calc/__init__.py": FIXED_ADD, "calc/extra.py": "def double(x) return x\n"}
    verdict, _ = await _gate(sandbox, _task(repo), files)
    assert not verdict.passed
    assert (
        "ERROR tests/test_other.py (could not be collected after your change; "
        "1 test that passed before no longer run)"
    ) in verdict.feedback
    assert "SyntaxError: expected ':'" in verdict.feedback
    assert 'File "calc/extra.py", line 1' in verdict.feedback  # relative, not the temp dir
    # Frames from pytest and importlib are noise for a model.
    assert "importlib" not in verdict.feedback and "_pytest" not in verdict.feedback


@pytest.mark.anyio
async def test_a_deleted_test_still_judges(sandbox: LocalSandbox, repo: Path) -> None:
    # Deleting the test of what the patch breaks hides nothing: the verdict comes from the base
    # commit's tests (the scope gate refuses the deletion itself).
    evaluator, task = PytestEvaluator(), _task(repo)
    base = await evaluator.baseline(sandbox, task)
    await sandbox.write_files({"tests/test_other.py": None})
    broken = "def double(x):\n    return 3 * x\n"
    patch = await _patch(sandbox, {"calc/__init__.py": FIXED_ADD, "calc/extra.py": broken})
    verdict = await evaluator.evaluate(sandbox, task, patch, base)
    assert not verdict.passed
    assert "FAILED tests/test_other.py::test_double (it passed before your change)" in (
        verdict.feedback
    )
    assert (await sandbox.read_file("tests/test_other.py")) is None  # the patch's tree, back


@pytest.mark.anyio
async def test_broken_conftest_breaks_the_run(tmp_path: Path) -> None:
    # The base's conftest imports what the patch breaks. (A conftest the patch writes never
    # runs: the base commit's test configuration judges every patch.)
    files = {
        "calc/__init__.py": CALC,
        "calc/extra.py": "def double(x):\n    return 2 * x\n",
        "tests/conftest.py": "import calc.extra\n",
        "tests/test_calc.py": TESTS,
    }
    repo = make_repo(tmp_path / "with_conftest", files)
    box = await LocalSandbox.open(repo, _git(repo, "rev-parse", "HEAD").strip())
    try:
        patch = {"calc/__init__.py": FIXED_ADD, "calc/extra.py": "import not_a_module\n"}
        verdict, _ = await _gate(box, _task(repo), patch)
    finally:
        await box.close()
    assert not verdict.passed
    assert verdict.feedback.startswith("The test run broke after your change: pytest exit 4")
    assert "No module named 'not_a_module'" in verdict.feedback
    assert [f.rule for f in verdict.findings] == ["run"]


@pytest.mark.anyio
async def test_hidden_collection_error_names_only_the_exception(
    sandbox: LocalSandbox, repo: Path
) -> None:
    # A feature's hidden test imports what does not exist yet: the file cannot be collected.
    hidden = f"from calc import sub\n\n\ndef {HIDDEN_NAME}():\n    assert sub(3, 1) == 2\n"
    issue = Issue(
        id="T-3",
        title="add sub",
        hidden_tests=(f"{HIDDEN_PATH}::{HIDDEN_NAME}",),
        hidden_files={HIDDEN_PATH: hidden},
    )
    task = Task(issue=issue, repo=str(repo), base_commit="HEAD")
    evaluator = PytestEvaluator()
    base = await evaluator.baseline(sandbox, task)
    assert "secret" not in repr(base)
    wrong = await evaluator.evaluate(sandbox, task, await _patch(sandbox, {}), base)
    assert not wrong.passed
    assert "hidden test #1 failed: ImportError" in wrong.feedback
    assert "cannot import" not in wrong.feedback + repr(wrong.findings)
    assert "secret" not in wrong.feedback + repr(wrong.findings)
    await sandbox.reset()
    sub = CALC + "\n\ndef sub(a, b):\n    return a - b\n"
    right = await evaluator.evaluate(
        sandbox, task, await _patch(sandbox, {"calc/__init__.py": sub}), base
    )
    assert right.passed, right.feedback


@pytest.mark.anyio
async def test_broken_target_module_fails_fast(sandbox: LocalSandbox, repo: Path) -> None:
    verdict, _ = await _gate(sandbox, _task(repo), {"calc/__init__.py": "def add(:\n"})
    assert not verdict.passed
    assert f"ERROR {TARGET} (a target test of this issue)" in verdict.feedback
    assert "SyntaxError" in verdict.feedback
    # Only the focused run happened: the full suite's other file never ran.
    assert "test_other" not in verdict.artifacts["junit.xml"]


@pytest.mark.anyio
async def test_no_tests_collected_is_not_a_pass(sandbox: LocalSandbox, repo: Path) -> None:
    config = PytestConfig(args=("-k", "no_such_test"))
    verdict, base = await _gate(sandbox, _task(repo, ()), {"calc/__init__.py": FIXED_ADD}, config)
    assert base["exit_code"] == 5 and base["outcomes"] == {}
    assert not verdict.passed
    assert "collected no tests" in verdict.feedback


@pytest.mark.anyio
async def test_timeout_is_a_failed_verdict(sandbox: LocalSandbox, repo: Path) -> None:
    evaluator = PytestEvaluator(PytestConfig(timeout=3))
    task = _task(repo)
    base = await evaluator.baseline(sandbox, task)
    loop = CALC.replace("return a - b", "while True:\n        pass")
    verdict = await evaluator.evaluate(
        sandbox, task, await _patch(sandbox, {"calc/__init__.py": loop}), base
    )
    assert not verdict.passed
    assert verdict.feedback.startswith("The test run timed out after 3 s.")
    assert await _changed(sandbox) == ["calc/__init__.py"]


def test_node_ids_from_junit_xml() -> None:
    cases = [
        ("tests.test_a", "test_p[1-x y]", "tests/test_a.py", "tests/test_a.py::test_p[1-x y]"),
        ("t.test_a.TestC.TestIn", "test_i", "t/test_a.py", "t/test_a.py::TestC::TestIn::test_i"),
        ("tests.v1.2.test_b", "test_q", "tests/v1.2/test_b.py", "tests/v1.2/test_b.py::test_q"),
        ("tests.test_d.TestD", "test_inh", "tests/base.py", "tests/test_d.py::TestD::test_inh"),
        ("", "tests.sub.test_e", "tests/sub/test_e.py", "tests/sub/test_e.py"),
    ]  # fmt: skip
    for classname, name, file, expected in cases:
        assert node_id(classname, name, file) == expected
    xml = (
        '<testsuites><testsuite><testcase classname="t.test_x" name="test_y" file="t/test_x.py">'
        '<failure message="assert 0">E   assert 0</failure></testcase>'
        '<testcase classname="t.test_x" name="test_y" file="t/test_x.py">'
        '<error message="failed on teardown">boom</error></testcase></testsuite></testsuites>'
    )
    assert parse_junit(xml)["t/test_x.py::test_y"].outcome == "failed"


def test_feedback_is_capped_and_hidden_text_scrubbed() -> None:
    long_text = "\n".join(f"E   assert {i} == {i + 1}" for i in range(200))
    failures = [
        Failure(
            "regression", f"tests/test_x.py::test_{i}", CaseResult("x", "failed", "", long_text)
        )
        for i in range(20)
    ]
    text = feedback(failures, (), Scrubber((), ()))
    assert len(text) <= FEEDBACK_CHARS
    assert text.endswith("more failing test(s), not shown.")
    assert "FAILED tests/test_x.py::test_0 (it passed before your change)" in text

    scrub = Scrubber([f"{HIDDEN_PATH}::{HIDDEN_NAME}"], [HIDDEN_PATH], root="/w/")
    leak = CaseResult(
        HIDDEN_PATH,
        "error",
        "collection failure",
        f"{HIDDEN_PATH}:1: in <module>\n    from calc import {HIDDEN_NAME}\n"
        f"E   ImportError: cannot import name '{HIDDEN_NAME}' from 'calc' (/w/calc/__init__.py)",
    )
    hidden = [Failure("hidden", f"{HIDDEN_PATH}::{HIDDEN_NAME}", leak)]
    text = feedback(hidden, [f"{HIDDEN_PATH}::{HIDDEN_NAME}"], scrub)
    assert text.endswith("hidden test #1 failed: ImportError")
    assert "cannot import" not in text
