"""A target test that passes with its own file alone but fails in the full suite (issue 16,
finding 7): the feedback says it failed only in the full run, and after which tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade.records import Issue, Task
from cascade.testing import git, make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.junit import CaseResult
from evaluators.pytest_gate import PytestEvaluator
from evaluators.regressions import Failure, order_dependent
from sandboxes.local_sandbox import LocalSandbox

PYPROJECT = '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
GREET = 'def greet(name):\n    return "hi " + name\n'
# The fix reads a module global that another test file sets: right alone, wrong after it.
FIXED = 'PREFIX = "hello"\n\n\ndef greet(name):\n    return f"{PREFIX} {name}"\n'
SETS_PREFIX = (
    "import greeting\n\n\ndef test_prefix_can_change():\n"
    '    greeting.PREFIX = "yo"\n    assert greeting.PREFIX == "yo"\n'
)
TARGET = "tests/test_greet.py::test_greet"
TESTS = (
    'from greeting import greet\n\n\ndef test_greet():\n    assert greet("bob") == "hello bob"\n'
)


@pytest.mark.anyio
async def test_a_target_failing_only_in_the_full_run_says_after_which_tests(
    tmp_path: Path,
) -> None:
    files = {
        "pyproject.toml": PYPROJECT,
        "greeting.py": GREET,
        "tests/test_greet.py": TESTS,
        "tests/test_aaa_setup.py": "def test_nothing():\n    assert True\n",
        "tests/test_config.py": SETS_PREFIX,
    }
    repo = make_repo(tmp_path / "repo", files)
    commit = git(repo, "rev-parse", "HEAD").strip()
    issue = Issue(id="O-1", title="greet says hi", tests=(TARGET,))
    task = Task(issue=issue, repo=str(repo), base_commit=commit)
    evaluator = PytestEvaluator()
    box = await LocalSandbox.open(repo, commit)
    try:
        base = await evaluator.baseline(box, task)
        await box.write_files({"greeting.py": FIXED.encode()})
        verdict = await evaluator.evaluate(box, task, await canonical_patch(box), base)
    finally:
        await box.close()
    assert base["outcomes"][TARGET] == "failed"
    assert not verdict.passed
    assert (
        f"FAILED {TARGET} (a target test of this issue; it passed when run with its own file "
        "alone, but fails in the full test run, where 2 other test(s) ran before it (the last: "
        "tests/test_aaa_setup.py::test_nothing, tests/test_config.py::test_prefix_can_change)"
    ) in verdict.feedback
    (finding,) = verdict.findings
    assert "fails in the full test run" in finding.message
    assert "tests/test_config.py::test_prefix_can_change" in finding.message


def test_only_tests_new_before_it_are_named_and_never_hidden_ones() -> None:
    target = "tests/test_t.py::test_b"
    failed = CaseResult(target, "failed", "AssertionError: assert 1 == 2")
    alone = ["tests/test_t.py::test_a", target]
    full = [
        "tests/test_1.py::test_x",
        "tests/test_hidden.py::test_secret",
        "tests/test_2.py::test_y",
        "tests/test_3.py::test_z",
        "tests/test_4.py::test_w",
        "tests/test_t.py::test_a",
        target,
    ]
    passed = {n: CaseResult(n, "passed") for n in alone}
    failures = [Failure("target", target, failed), Failure("hidden", "tests/test_h.py::t", None)]
    out = order_dependent(failures, alone, passed, full, lambda n: "hidden" in n)
    assert out[1] == failures[1]  # a hidden test is never described
    context = out[0].context
    assert "4 other test(s) ran before it" in context
    assert "the last: tests/test_2.py::test_y, tests/test_3.py::test_z, tests/test_4.py::" in (
        context
    )
    assert "test_secret" not in context and "test_1.py" not in context
    assert "test_t.py::test_a" not in context  # it ran before it alone too
