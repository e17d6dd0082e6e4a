"""The lint gate calibrated for code it did not write (issue #16, finding 3), with real ruff in real
git repositories: without a ruff configuration only correctness rules block and the rest is
advice; a repository's own configuration blocks on all its rules; a finding on a line the patch
edited is matched with the old line's; advice reaches the model, summary.md and the PR body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cascade.ci.publish import ReportLinks, render_report
from cascade.core.gate import summarize
from cascade.proof.log import ProofLog
from cascade.proof.verify import format_report, verify_run
from cascade.records import Issue, Task, Verdict
from cascade.testing import make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.edited_lines import file_edits
from evaluators.patch_files import parse_diff
from evaluators.ruff_gate import ARTIFACT, RuffConfig, RuffEvaluator
from evaluators.ruff_policy import LintPolicy, policy_for
from sandboxes.local_sandbox import LocalSandbox
from tests.test_proof import DIFF, PROOF_TEST, PROVING, _attempt, _outcome, _seal

TASK = Task(issue=Issue(id="L-16", title="scale"), repo="/unused", base_commit="HEAD")
SCALE = '''\
"""Scaling, written long before ruff."""


def check(factor):
    if factor <= 0:
        raise ValueError("bad factor: %r" % factor)
    return factor


def describe(factor):
    return "factor %r" % (factor,)


def total(n):
    result = 0
    for i in range(0, n + 1):
        result += i
    return result


def spread(n):
    for i in range(0, n):
        print(i)
    first = 1
    second = 2
    return first + second


def show():
    return missing_name
'''
# A pyproject.toml without a [tool.ruff] table is no ruff configuration.
LEGACY = {"pyproject.toml": '[project]\nname = "legacy"\n', "legacy/scale.py": SCALE}
STRICT = {**LEGACY, "ruff.toml": '[lint]\nselect = ["F", "PIE", "UP"]\n'}
TOO_LARGE = '    if factor > 100:\n        raise ValueError("factor too large: %r" % factor)\n'
FIXED_CHECK = SCALE.replace("    return factor\n", TOO_LARGE + "    return factor\n", 1)
EDITED_LOOP = SCALE.replace("range(0, n + 1)", "range(0, n + 2)")


async def _open(tmp_path: Path, files: Mapping[str, str]) -> LocalSandbox:
    repo = make_repo(tmp_path / "repo", files)
    return await LocalSandbox.open(repo, "HEAD")


@pytest.fixture
async def legacy(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    box = await _open(tmp_path, LEGACY)
    try:
        yield box
    finally:
        await box.close()


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    box = await _open(tmp_path, STRICT)
    try:
        yield box
    finally:
        await box.close()


async def _gate(
    box: LocalSandbox, files: Mapping[str, str], config: RuffConfig | None = None
) -> Verdict:
    evaluator = RuffEvaluator(config)
    base = await evaluator.baseline(box, TASK)
    await box.write_files({path: text.encode() for path, text in files.items()})
    return await evaluator.evaluate(box, TASK, await canonical_patch(box), base)


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.split("\n"), 1) if needle in line)


def _blocked(verdict: Verdict) -> list[tuple[int, str]]:
    return [(f.line, f.rule) for f in verdict.findings]


def _advised(verdict: Verdict) -> list[tuple[int, str]]:
    return [(f.line, f.rule) for f in verdict.advisories]


def _sarif(verdict: Verdict) -> list[tuple[str, int, str, str]]:
    """(rule, line, baselineState, level) of each result in the SARIF artifact."""
    doc = json.loads(verdict.artifacts[ARTIFACT])
    return sorted(
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["baselineState"],
            r["level"],
        )
        for r in doc["runs"][0]["results"]
    )


# -- what blocks -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_old_style_formatting_in_an_old_style_file_only_advises(legacy: LocalSandbox) -> None:
    verdict = await _gate(legacy, {"legacy/scale.py": FIXED_CHECK})
    assert verdict.passed, verdict.feedback
    assert verdict.findings == ()
    line = _line(FIXED_CHECK, "factor too large")
    assert _advised(verdict) == [(line, "UP031")]
    assert verdict.feedback.startswith("Advisory only, not blocking:")
    assert f"legacy/scale.py:{line}: UP031" in verdict.feedback
    assert ("UP031", line, "new", "note") in _sarif(verdict)


@pytest.mark.anyio
async def test_a_new_undefined_name_blocks_and_advice_rides_along(legacy: LocalSandbox) -> None:
    source = FIXED_CHECK.replace("    return factor\n", "    return factor * scale_of\n", 1)
    verdict = await _gate(legacy, {"legacy/scale.py": source})
    assert not verdict.passed
    assert _blocked(verdict) == [(_line(source, "scale_of"), "F821")]
    assert _advised(verdict) == [(_line(source, "too large"), "UP031")]
    blocking, advice = verdict.feedback.split("\n\n")
    assert "F821 Undefined name `scale_of`" in blocking and "UP031" not in blocking
    assert advice.startswith("Advisory only, not blocking:") and "UP031" in advice


@pytest.mark.anyio
async def test_the_repos_own_configuration_blocks_on_its_rules(strict: LocalSandbox) -> None:
    verdict = await _gate(strict, {"legacy/scale.py": FIXED_CHECK})
    assert not verdict.passed
    assert _blocked(verdict) == [(_line(FIXED_CHECK, "factor too large"), "UP031")]
    assert verdict.advisories == ()


@pytest.mark.anyio
async def test_a_configuration_in_a_subfolder_governs_only_that_folder(tmp_path: Path) -> None:
    files = {
        "strict/ruff.toml": '[lint]\nextend-select = ["UP"]\n',
        "strict/a.py": "X = 1\n",
        "loose/b.py": "Y = 1\n",
    }
    box = await _open(tmp_path, files)
    try:
        added = "def f(x):\n    return 'x=%r' % x\n"
        verdict = await _gate(box, {"strict/a.py": added, "loose/b.py": added})
    finally:
        await box.close()
    assert [(f.path, f.rule) for f in verdict.findings] == [("strict/a.py", "UP031")]
    assert [(f.path, f.rule) for f in verdict.advisories] == [("loose/b.py", "UP031")]


@pytest.mark.anyio
async def test_the_block_option_overrides_the_default(legacy: LocalSandbox) -> None:
    verdict = await _gate(legacy, {"legacy/scale.py": FIXED_CHECK}, RuffConfig(block=("F", "UP")))
    assert _blocked(verdict) == [(_line(FIXED_CHECK, "factor too large"), "UP031")]


def test_the_block_option_names_rules_as_ruff_does() -> None:
    with pytest.raises(ValidationError, match="'f401' is not a ruff rule code or prefix"):
        RuffConfig(block=("F", "f401"))


@pytest.mark.parametrize(
    ("policy", "rule", "blocks"),
    [
        (policy_for(False, None), "F821", True),
        (policy_for(False, None), "F811", True),
        (policy_for(False, None), "F401", False),  # an unused import is untidy, not wrong
        (policy_for(False, None), "invalid-syntax", True),
        (policy_for(False, None), "E902", True),
        (policy_for(False, None), "B006", False),
        (policy_for(False, None), "B020", True),
        (policy_for(False, None), "UP031", False),
        (policy_for(True, None), "UP031", True),
        (policy_for(True, None, ("UP",)), "UP031", False),
        (LintPolicy(("E",)), "EXE001", False),  # a prefix is a linter's code, not its letters
        (LintPolicy(("PL",)), "PLE0101", True),
        (LintPolicy(("F",), ("F4",)), "F401", False),  # the longer selector wins
        (LintPolicy(("F401",), ("F",)), "F401", True),
        (LintPolicy((), ("ALL",)), "invalid-syntax", True),  # never advice
    ],
)
def test_policy_selectors(policy: LintPolicy, rule: str, blocks: bool) -> None:
    assert policy.blocks(rule) is blocks


# -- matching that survives an edit ----------------------------------------------------------


@pytest.fixture(params=[(LEGACY, "note"), (STRICT, "error")], ids=["no-config", "own-config"])
async def either(request: Any, tmp_path: Path) -> AsyncIterator[tuple[LocalSandbox, str]]:
    """A repository without a ruff configuration (PIE808 advises) and one with (it blocks)."""
    files, level = request.param
    box = await _open(tmp_path, files)
    try:
        yield box, level
    finally:
        await box.close()


@pytest.mark.anyio
async def test_an_edited_line_keeps_its_old_finding(either: tuple[LocalSandbox, str]) -> None:
    box, level = either
    verdict = await _gate(box, {"legacy/scale.py": EDITED_LOOP})
    assert verdict.passed, verdict.feedback
    assert verdict.findings == verdict.advisories == () and verdict.feedback == ""
    assert ("PIE808", _line(EDITED_LOOP, "n + 2"), "unchanged", level) in _sarif(verdict)


@pytest.mark.anyio
async def test_a_finding_moved_within_its_function_is_kept(strict: LocalSandbox) -> None:
    moved = SCALE.replace(
        "    for i in range(0, n):\n        print(i)\n    first = 1\n    second = 2\n",
        "    first = 1\n    second = 2\n    for i in range(0, n + 1):\n        print(i)\n",
    )
    evaluator = RuffEvaluator()
    base = await evaluator.baseline(strict, TASK)
    await strict.write_files({"legacy/scale.py": moved.encode()})
    patch = await canonical_patch(strict)
    # The premise: the loop left one change block of `spread` and arrived in another.
    [diff] = parse_diff(patch.diff)
    edits = file_edits(diff, SCALE, moved)
    old, new = _line(SCALE, "range(0, n)"), _line(moved, "second = 2") + 1
    assert edits.removed[old] != edits.written[new]
    assert edits.old_scope(old) == edits.new_scope(new) == "spread"
    verdict = await evaluator.evaluate(strict, TASK, patch, base)
    assert verdict.passed, verdict.feedback


@pytest.mark.anyio
async def test_an_edit_plus_a_new_line_with_the_same_rule_is_caught(strict: LocalSandbox) -> None:
    source = EDITED_LOOP.replace(
        "    return result\n", "    for j in range(0, n):\n        result -= j\n    return result\n"
    )
    verdict = await _gate(strict, {"legacy/scale.py": source})
    assert _blocked(verdict) == [(_line(source, "for j in"), "PIE808")]


@pytest.mark.anyio
async def test_a_copy_of_an_old_bad_line_elsewhere_is_caught(strict: LocalSandbox) -> None:
    source = SCALE + "\n\ndef again(n):\n    for i in range(0, n + 1):\n        print(i)\n"
    verdict = await _gate(strict, {"legacy/scale.py": source})
    assert _blocked(verdict) == [(_line(source, "def again") + 1, "PIE808")]


@pytest.mark.anyio
async def test_moving_a_finding_into_another_function_is_caught(strict: LocalSandbox) -> None:
    source = SCALE.replace("    for i in range(0, n):\n        print(i)\n", "").replace(
        "    result = 0\n", "    result = 0\n    for k in range(0, n):\n        print(k)\n"
    )
    verdict = await _gate(strict, {"legacy/scale.py": source})
    assert _blocked(verdict) == [(_line(source, "for k in"), "PIE808")]


@pytest.mark.anyio
async def test_an_edited_line_with_another_undefined_name_is_caught(legacy: LocalSandbox) -> None:
    kept = SCALE.replace("return missing_name", "return missing_name or None")
    verdict = await _gate(legacy, {"legacy/scale.py": kept})
    assert verdict.passed, verdict.feedback
    await legacy.reset()
    other = SCALE.replace("return missing_name", "return other_missing_name")
    verdict = await _gate(legacy, {"legacy/scale.py": other})
    assert _blocked(verdict) == [(_line(other, "other_missing_name"), "F821")]


# -- where advice shows ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_advice_reaches_the_model_the_summary_and_the_pr_body(
    legacy: LocalSandbox, tmp_path: Path
) -> None:
    ruff = await _gate(legacy, {"legacy/scale.py": FIXED_CHECK})
    assert ruff.passed and ruff.advisories
    ruff = ruff.model_copy(update={"artifacts": {}})  # the engine keeps blob digests here
    failed = Verdict(evaluator="pytest", passed=False, feedback="test_x failed")
    # Rejected for another reason: the model hears the advice too, labelled, after the failure.
    told = summarize([ruff, failed], 10_000)
    assert told.index("[pytest] test_x failed") < told.index("[ruff] Advisory only, not blocking")
    assert summarize([ruff], 10_000) == f"[ruff] {ruff.feedback}"

    log = ProofLog.create(tmp_path / "runs", "run-1")
    passed = Verdict(evaluator="pytest", passed=True, tests={PROOF_TEST: "passed"})
    base = log.put_blob(json.dumps({PROOF_TEST: PROVING[0].base}, sort_keys=True, indent=1))
    attempts = [
        _attempt(log, 1, "cheap", "rejected", verdicts=(ruff, failed), feedback=told),
        _attempt(log, 2, "mid", "edit_error", error="no SEARCH match"),
        _attempt(
            log, 3, "strong", "verified", verdicts=(ruff, passed), proving=PROVING,
            baseline_sha256=base, patch_sha256=log.put_blob(DIFF),
        ),
    ]  # fmt: skip
    for attempt in attempts:
        log.append(attempt)
    _seal(log, attempts)
    report = verify_run(log.run_dir)
    assert report.ok, format_report(report)
    summary = (log.run_dir / "summary.md").read_text()
    advice = summary[summary.index("## Advice (not blocking)") :]
    line = _line(FIXED_CHECK, "factor too large")
    assert "attempt #3" in advice and f"`legacy/scale.py:{line}` UP031" in advice

    issue = Issue(id="#16", title="scale")
    body = render_report(_outcome(log), attempts, issue, ReportLinks("proof", ""))
    assert "| `ruff` | ✓ passed | 0 (+1 advisory) |" in body
    assert "**Advisory, not blocking** (listed in the proof's summary.md): `ruff` `UP031`" in body


def test_rules_the_gates_own_args_select_block() -> None:
    # `args = ["--extend-select", "B"]` asks for bugbear: its rules block, not only advise.
    asked = policy_for(False, None, (), ("--extend-select", "B", "--select=UP,SIM"))
    for code in ("B006", "UP031", "SIM103", "F821"):
        assert asked.blocks(code), code
    plain = policy_for(False, None)
    assert not plain.blocks("B006") and not plain.blocks("UP031")
