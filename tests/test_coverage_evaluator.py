"""The coverage gate on a real repository, real coverage.py and pytest in a local sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade.records import Issue, Task
from cascade.testing import make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.coverage_gate import CoverageConfig, CoverageEvaluator, changed_lines
from sandboxes.local_sandbox import LocalSandbox

SHAPES = "def area(w, h):\n    return w * h\n"
TESTS = "from shapes import area\n\n\ndef test_area():\n    assert area(2, 3) == 6\n"
# `perimeter` is tested below; `diagonal` and the negative branch of `area` are not.
PATCHED = (
    "def area(w, h):\n"
    "    if w < 0 or h < 0:\n"
    "        raise ValueError('negative')\n"
    "    return w * h\n\n\n"
    "def perimeter(w, h):\n"
    "    # both sides twice\n"
    "    return 2 * (w + h)\n\n\n"
    "def diagonal(w, h):\n"
    "    return (w * w + h * h) ** 0.5\n"
)
NEW_TEST = (
    "from shapes import perimeter\n\n\ndef test_perimeter():\n    assert perimeter(1, 2) == 6\n"
)


@pytest.mark.anyio
async def test_uncovered_changed_lines_fail_above_the_threshold(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"shapes.py": SHAPES, "tests/test_shapes.py": TESTS})
    task = Task(issue=Issue(id="C-1", title="shapes"), repo=str(repo), base_commit="HEAD")
    box = await LocalSandbox.open(repo, "HEAD")
    try:
        await box.write_files(
            {"shapes.py": PATCHED.encode(), "tests/test_perimeter.py": NEW_TEST.encode()}
        )
        patch = await canonical_patch(box)
        strict = CoverageEvaluator(CoverageConfig(min_diff_coverage=0.8))
        verdict = await strict.evaluate(box, task, patch, await strict.baseline(box, task))
        report_only = await CoverageEvaluator().evaluate(box, task, patch, {})
    finally:
        await box.close()
    assert not verdict.passed
    missing = sorted(f.line for f in verdict.findings)
    assert missing == [3, 13], missing  # the raise, and diagonal's body
    assert "shapes.py:3" in verdict.feedback and "shapes.py:13" in verdict.feedback
    assert "coverage.json" in verdict.artifacts
    # Line 8 (a comment) is not executable; lines 2, 4, 7, 9, 12 ran or are definitions.
    assert report_only.passed and [f.line for f in report_only.findings] == [3, 13]


def test_changed_lines_leave_tests_and_deleted_files_out() -> None:
    diff = (
        "diff --git a/pkg/m.py b/pkg/m.py\nindex 1..2 100644\n--- a/pkg/m.py\n+++ b/pkg/m.py\n"
        "@@ -1,1 +1,2 @@\n x = 1\n+y = 2\n"
        "diff --git a/tests/test_m.py b/tests/test_m.py\nindex 1..2 100644\n"
        "--- a/tests/test_m.py\n+++ b/tests/test_m.py\n@@ -1,1 +1,2 @@\n x = 1\n+y = 2\n"
    )
    assert changed_lines(diff) == {"pkg/m.py": {2}}


@pytest.mark.anyio
async def test_a_failing_test_elsewhere_does_not_stop_the_measurement(tmp_path: Path) -> None:
    files = {
        "shapes.py": SHAPES,
        "tests/test_a_broken.py": "def test_known_failure():\n    assert False\n",
        "tests/test_shapes.py": TESTS,
    }
    repo = make_repo(tmp_path / "repo", files)
    task = Task(issue=Issue(id="C-2", title="shapes"), repo=str(repo), base_commit="HEAD")
    box = await LocalSandbox.open(repo, "HEAD")
    try:
        await box.write_files({"shapes.py": SHAPES.replace("w * h", "h * w").encode()})
        patch = await canonical_patch(box)
        strict = CoverageEvaluator(CoverageConfig(min_diff_coverage=1.0))
        verdict = await strict.evaluate(box, task, patch, {})
    finally:
        await box.close()
    assert verdict.passed, verdict.feedback  # test_area (after the broken file) ran the line
