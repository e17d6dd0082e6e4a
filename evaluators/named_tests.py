"""What a pytest run says of the tests a task names (its targets, hidden tests and a
reproduction's), in the words the proof records; and which test modules a patch adds (they never
judge it)."""

from __future__ import annotations

from collections.abc import Sequence

from cascade.records import Patch, Task
from evaluators.diff_scope import TEST_PATHS
from evaluators.junit import CaseResult, exception_summary
from evaluators.patch_files import DiffError, parse_diff
from evaluators.path_globs import first_match
from evaluators.pytest_run import PytestRun
from evaluators.regressions import lookup


def outcome_text(result: CaseResult | None) -> str:
    """One test's outcome as the proof records it: passed, skipped, missing, or failed/error
    with the first line of what was raised."""
    if result is None:
        return "missing"
    if result.outcome in ("passed", "skipped"):
        return result.outcome
    lines = exception_summary(result).strip().splitlines()
    return f"{result.outcome}: {lines[0][:200]}" if lines else result.outcome


def named_outcomes(runs: Sequence[PytestRun], task: Task) -> dict[str, str]:
    """The outcome of each target and hidden test in the last run that ran its file."""
    named = dict.fromkeys((*task.targets, *task.issue.hidden_tests))
    out: dict[str, str] = {}
    for test in named:
        for run in reversed(runs):
            result = lookup(run.results or {}, test)
            if result is not None:
                out[test] = outcome_text(result)
                break
        else:
            out[test] = "missing"
    return out


def new_test_modules(patch: Patch, copied: set[str]) -> list[str]:
    """The test modules the patch adds (not those copied in: hidden and reproduction files)."""
    try:
        files = parse_diff(patch.diff)
    except DiffError:
        return []
    return sorted(
        f.path
        for f in files
        if f.status == "added"
        and f.path.endswith(".py")
        and f.path not in copied
        and first_match(f.path, TEST_PATHS) is not None
    )
