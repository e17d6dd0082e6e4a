"""Spot a patch that makes tests easier to pass instead of making the code right. A changed test
module is judged on its AST before and after the patch (`weakening_ast`): the old text is rebuilt
from the patched file in the sandbox and the patch's hunks. The older line rules below judge
only what has no AST to compare: a file that did not parse at the base commit, a new file that
does not parse (pytest judges it), or a workspace that does not hold what the patch says."""

from __future__ import annotations

import ast
import re
from collections import Counter

from cascade.protocols import Sandbox
from cascade.records import Finding
from evaluators.patch_files import FileDiff, old_text
from evaluators.weakening_ast import FIX, module_findings

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


async def weakening(diff: FileDiff, sandbox: Sandbox) -> list[Finding]:
    """Findings for one changed test file (deletion is checked by the caller). `sandbox` holds
    the patched workspace."""
    if not diff.path.endswith(".py"):
        return []
    data = await sandbox.read_file(diff.path)
    new_text = data.decode("utf-8", "replace") if data is not None else None
    if new_text is None or not _matches(new_text, diff):
        return line_findings(diff)  # the workspace is not the patch's: judge the patch alone
    before: ast.Module | None = None
    if diff.status == "modified":
        parsed = _parse(old_text(new_text, diff))
        if isinstance(parsed, str):
            return line_findings(diff)  # broken at the base commit: no old AST to compare
        before = parsed
    after = _parse(new_text)
    if isinstance(after, str):
        if before is None:
            return line_findings(diff)  # a new file that pytest cannot collect: it judges it
        what = f"no longer parses ({after}), so its existing tests cannot run or be checked"
        return [Finding(rule="test_weakened", path=diff.path, message=f"{what}{FIX}")]
    try:
        return module_findings(diff.path, before, after)
    except RecursionError:
        what = "is nested too deeply to check its tests; write flatter code"
        return [Finding(rule="test_weakened", path=diff.path, message=what)]


def _parse(text: str) -> ast.Module | str:
    """The module, or why it does not parse."""
    try:
        return ast.parse(text)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return str(exc) or type(exc).__name__


def _matches(new_text: str, diff: FileDiff) -> bool:
    """Whether the file holds what the patch's hunks say the patched file holds."""
    lines = new_text.split("\n")
    for hunk in diff.hunks:
        wanted = [line[1:] for line in hunk.lines if line[:1] in (" ", "+")]
        start = hunk.new_start - 1 if hunk.new_count else hunk.new_start
        if lines[start : start + len(wanted)] != wanted:
            return False
    return True


def line_findings(diff: FileDiff) -> list[Finding]:
    """The patch's own lines, judged without the file: a new skip, an assertion line removed
    or changed, a test function removed or renamed."""
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
