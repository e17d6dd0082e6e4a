"""What the reproduction judge tells the model that wrote a test: each problem as findings (one
per test or path, `rule` = its kind) and one paragraph of feedback, precise enough to act on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cascade.records import Finding
from evaluators.failure_kinds import Diagnosis, RepoFacts, classify
from evaluators.junit import exception_summary
from evaluators.pytest_run import PytestRun, run_problem, tail
from evaluators.regressions import Failure, file_of, lookup

FEEDBACK_CHARS = 4000
HEAD = "Your test was not accepted as a reproduction of the issue."
CLOSING = (
    "A reproduction is a new test that fails now, for the reason the issue describes, and will "
    "pass once the issue is fixed. Send the test again."
)


@dataclass(frozen=True)
class Problem:
    findings: tuple[Finding, ...]
    text: str  # its paragraph of the feedback


def scope_problem(findings: Sequence[Finding], paths: Sequence[str]) -> Problem:
    """diff_scope's findings, told as a reproduction's: a path outside the test paths is
    `not_tests_only`; the rest keep their rules."""
    globs = ", ".join(f"`{g}`" for g in paths)
    found = tuple(
        Finding(
            rule="not_tests_only",
            path=f.path,
            message=f"changes {f.path}: a reproduction may only add or change tests ({globs})",
        )
        if f.rule == "outside_allow"
        else f
        for f in findings
    )
    lines = [
        f"- it {f.message}"
        if f.rule == "not_tests_only"
        else (f"- {f.path}: {f.message}" if f.path else f"- the patch {f.message}")
        for f in found[:20]
    ]
    rules = {f.rule for f in found}
    if "not_tests_only" in rules:
        lines.append("Write only a test: the fix is written later, in its own step.")
    if "test_skipped" in rules:
        lines.append("A reproduction must run and fail at the base commit: no skip or xfail.")
    if rules & {"test_deleted", "test_weakened", "protected_path"}:
        lines.append(
            "Add new tests; leave existing tests, their asserts and the test scaffolding "
            "(conftest.py, fixtures) as they are."
        )
    text = "It was rejected before it ran, because of what it changes:\n" + "\n".join(lines)
    return Problem(found, text)


def broken(run: PytestRun, what: str) -> list[Problem]:
    """A run that says nothing about single tests: timed out, or pytest itself failed."""
    problem = run_problem(run)
    if not problem:
        return []
    if run.timed_out:
        text = (
            f"The {problem} while running {what}. If the issue is a hang, make the test fail "
            "instead of hanging: run the call in a thread and assert it finishes in a few seconds."
        )
        return [Problem((Finding(rule="timeout", message=problem),), text)]
    text = f"pytest could not run {what}: {problem}. The end of its output:\n{tail(run.output, 20)}"
    return [Problem((Finding(rule="pytest_internal", message=problem),), text)]


def no_tests(files: Sequence[str]) -> Problem:
    named = ", ".join(files) or "your patch"
    message = f"pytest collected no new test from {named}"
    text = (
        f"{message}: add a new test function (`def test_...():`) to a test module such as "
        "`tests/test_<topic>.py`; changing an existing test does not make a new one."
    )
    return Problem((Finding(rule="no_tests", message=message),), text)


def wrong_reason(diagnosis: Diagnosis) -> Problem:
    finding = Finding(
        rule=diagnosis.kind,
        path=file_of(diagnosis.nodeid),
        line=diagnosis.line,
        message=f"{diagnosis.nodeid}: {diagnosis.summary}",
    )
    return Problem((finding,), diagnosis.describe())


def not_failing(found: Sequence[Diagnosis]) -> Problem:
    passing = [d for d in found if d.kind == "passes_at_base"]
    rule = "passes_at_base" if passing else "skipped"
    tests = passing or [d for d in found if d.kind == "skipped"]
    findings = tuple(
        Finding(rule=rule, path=file_of(d.nodeid), message=f"{d.nodeid}: {rule.replace('_', ' ')}")
        for d in tests
    )
    names = ", ".join(d.nodeid for d in tests[:10])
    if passing:
        text = (
            f"Your test passes at the base commit, so it does not reproduce the issue: {names}. "
            "Assert the behaviour the issue asks for, which the code does not have yet."
        )
    else:
        why = tests[0].summary if tests and tests[0].summary else "no reason given"
        text = (
            f"pytest skipped your test at the base commit ({names}: {why}); it must run and fail."
        )
    return Problem(findings, text)


def flaky(
    accepted: Mapping[str, Diagnosis], run: PytestRun, facts: RepoFacts, when: str
) -> list[Problem]:
    """Each accepted test must fail again with the same kind and exception type."""
    results = run.results or {}
    changed: list[tuple[str, str]] = []
    for nodeid, first in accepted.items():
        result = lookup(results, nodeid)
        now = classify(result, facts) if result is not None else None
        if now is not None and (now.kind, now.exception) == (first.kind, first.exception):
            continue
        if now is None:
            changed.append((nodeid, f"was not run {when}"))
        elif now.kind == "passes_at_base":
            changed.append((nodeid, f"passed {when}"))
        else:
            changed.append((nodeid, f"failed with {now.summary} {when}"))
    if not changed:
        return []
    findings = tuple(
        Finding(
            rule="flaky",
            path=file_of(n),
            message=f"{n}: first failed with {accepted[n].summary}, then {how}",
        )
        for n, how in changed
    )
    lines = "\n".join(f"- {f.message}" for f in findings)
    text = (
        f"Your test does not fail the same way every time:\n{lines}\nA reproduction must be "
        "deterministic: no dependence on time, randomness, test order, the network, or files "
        "a test leaves behind."
    )
    return [Problem(findings, text)]


def breaks(failures: Sequence[Failure]) -> Problem:
    findings = tuple(
        Finding(
            rule="breaks_other_tests",
            path=file_of(f.nodeid),
            message=f"{f.nodeid}: "
            + (f.note or (exception_summary(f.result) if f.result else "failed")),
        )
        for f in failures
    )
    lines = "\n".join(f"- {f.message}" for f in findings[:10])
    more = f"\n- … and {len(findings) - 10} more" if len(findings) > 10 else ""
    text = (
        f"With your test in place, tests that passed at the base commit fail:\n{lines}{more}\n"
        "Your test must not change what other tests see (module globals, environment "
        "variables, the working directory, files): use the monkeypatch and tmp_path fixtures, "
        "which undo themselves."
    )
    return Problem(findings, text)


def feedback(problems: Sequence[Problem]) -> str:
    out = HEAD
    sections = [p.text for p in problems if p.text]
    for i, section in enumerate(sections):
        more = f"\n\n... and {len(sections) - i} more problem(s), not shown."
        if i > 0 and len(out) + len(section) + len(more) + len(CLOSING) > FEEDBACK_CHARS:
            return f"{out}{more}\n\n{CLOSING}"
        out += "\n\n" + section
    return f"{out}\n\n{CLOSING}"
