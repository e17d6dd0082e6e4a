"""Spot a patch that makes tests easier to pass instead of making the code right: a deleted test
file, a new skip or xfail, an assertion removed or changed, a test function removed or renamed."""

from __future__ import annotations

import re
from collections import Counter

from cascade.records import Finding
from evaluators.patch_files import FileDiff

SKIP = re.compile(
    r"\bpytest\.mark\.(?:skip|skipif|xfail)\b"
    r"|\bpytest\.(?:skip|xfail|importorskip)\s*\("
    r"|\bunittest\.(?:skip|skipIf|skipUnless|expectedFailure)\b"
    r"|\braise\s+(?:unittest\.)?SkipTest\b"
)
# What a test checks with: bare asserts, unittest's assert methods, pytest.raises/warns blocks.
ASSERTION = re.compile(
    r"^(?:assert\b|self\.(?:assert\w*|fail)\s*\(|(?:with\s+)?pytest\.(?:raises|warns)\s*\()"
)
TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(")


def weakening(diff: FileDiff) -> list[Finding]:
    """Findings for one changed test file (deletion is checked by the caller)."""
    if not diff.path.endswith(".py"):
        return []
    found: list[Finding] = []
    added_skips = _skips(diff.added)
    if len(added_skips) > len(_skips(diff.removed)):
        first = added_skips[0]
        found.append(
            Finding(
                rule="test_skipped",
                path=diff.path,
                message=f"adds a skip or xfail to a test (`{_short(first)}`)",
            )
        )
    lost = _lost_assertions(diff.removed, diff.added)
    if lost:
        found.append(
            Finding(
                rule="test_weakened",
                path=diff.path,
                message=f"removes or changes an assertion (`{_short(lost[0])}`)",
            )
        )
    gone = _test_names(diff.removed) - _test_names(diff.added)
    if gone:
        found.append(
            Finding(
                rule="test_weakened",
                path=diff.path,
                message=f"removes or renames test function(s): {', '.join(sorted(gone))}",
            )
        )
    return found


def _skips(lines: list[str]) -> list[str]:
    return [t for line in lines if SKIP.search(t := line.strip()) and not t.startswith("#")]


def _lost_assertions(removed: list[str], added: list[str]) -> list[str]:
    """Removed assertion lines that the patch did not write back; compared without whitespace,
    so reformatting or moving an assertion is not weakening it."""
    written = Counter(re.sub(r"\s+", "", t) for t in _assertion_lines(added))
    lost: list[str] = []
    for text in _assertion_lines(removed):
        key = re.sub(r"\s+", "", text)
        if written[key] > 0:
            written[key] -= 1
        else:
            lost.append(text)
    return lost


def _assertion_lines(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if ASSERTION.match(line.strip())]


def _test_names(lines: list[str]) -> set[str]:
    return {m[1] for line in lines if (m := TEST_DEF.match(line))}


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
