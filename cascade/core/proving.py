"""What proves a fix: a test that fails at the base commit and passes with the patch. The issue's
own tests and hidden tests prove it when they fail at base; otherwise an accepted reproduction
test does. Pure functions of the task, the base outcomes and the verdicts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from cascade.records import Patch, ProofSource, ProvingTest, Task, Verdict

NOTHING_PROVES = (
    "passed every check, but no test shows that it fixes the issue: no test named by the issue "
    "fails at the base commit, and no reproduction test was accepted"
)


def failed(outcome: str) -> bool:
    """Whether an outcome (`passed`, `failed: ...`, `error: ...`, `skipped`, `missing`) fails."""
    return outcome.startswith(("failed", "error"))


def proving_tests(task: Task, base: Mapping[str, str]) -> tuple[ProvingTest, ...]:
    """The task's tests that fail at the base commit (`base`: node id -> outcome there), each
    with where it came from; a reproduction's carry who wrote them."""
    issue, repro = task.issue, task.reproduction
    named: list[tuple[str, ProofSource]] = [(t, "issue") for t in issue.tests]
    named += [(t, "hidden") for t in issue.hidden_tests]
    named += [(t, "reproduction") for t in (repro.tests if repro else ())]
    found: dict[str, ProvingTest] = {}
    for test, source in named:
        outcome = base.get(test, "missing")
        if test in found or not failed(outcome):
            continue
        author = repro if source == "reproduction" and repro else None
        found[test] = ProvingTest(
            test=test,
            source=source,
            base=outcome,
            rung=author.rung if author else "",
            model=author.model if author else "",
        )
    return tuple(found.values())


def proven(proving: Sequence[ProvingTest], verdicts: Sequence[Verdict]) -> tuple[ProvingTest, ...]:
    """The proving tests that the verdicts say pass with the patch, with that outcome."""
    after: dict[str, str] = {}
    for verdict in verdicts:
        after.update(verdict.tests)
    return tuple(
        p.model_copy(update={"after": after[p.test]})
        for p in proving
        if after.get(p.test) == "passed"
    )


def excluded_models(proving: Sequence[ProvingTest], independent: bool) -> frozenset[str]:
    """With `independent`, the models that may not write the fix: the authors of the proving
    tests, when every proving test is a reproduction (an issue's own test is independent)."""
    if not independent or not proving or any(p.source != "reproduction" for p in proving):
        return frozenset()
    return frozenset(p.model for p in proving if p.model)


def combined(first: Patch, second: Patch) -> Patch:
    """Two patches over disjoint files as one (the reproduction's test, then the fix)."""
    diff = first.diff + ("" if first.diff.endswith("\n") or not first.diff else "\n") + second.diff
    files = tuple(dict.fromkeys((*first.files, *second.files)))
    return Patch(
        diff=diff,
        sha256=hashlib.sha256(diff.encode()).hexdigest(),
        files=files,
        added=first.added + second.added,
        removed=first.removed + second.removed,
    )
