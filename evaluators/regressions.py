"""Judge one pytest run against the baseline (targets pass, hidden tests pass, nothing that passed
before fails), and say what failed in words a model can act on without seeing hidden tests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cascade.records import Finding
from evaluators.junit import CaseResult, exception_summary, trim_failure

Kind = Literal["target", "hidden", "regression"]

NOT_FOUND = "not found — was it renamed or deleted?"
FEEDBACK_HEAD = "The tests below fail after your change. Fix the code (not the tests)."
FEEDBACK_CHARS = 3000
_WHY: dict[Kind, str] = {
    "target": "a target test of this issue",
    "regression": "it passed before your change",
    "hidden": "",
}


@dataclass(frozen=True)
class Failure:
    kind: Kind
    nodeid: str  # what was asked for; for a hidden test, never shown
    result: CaseResult | None  # None: no such test in the run
    note: str = ""


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def lookup(results: Mapping[str, CaseResult], nodeid: str) -> CaseResult | None:
    """The result for a node id: itself; else its file's (or class's) collection error; else from
    its children (`test_f` stands for every `test_f[...]`, a file for its tests): the first that
    failed, or passed when any passed and the rest were skipped."""
    if nodeid in results:
        return results[nodeid]
    parts = nodeid.split("::")
    for end in range(len(parts) - 1, 0, -1):
        parent = results.get("::".join(parts[:end]))
        if parent is not None and parent.outcome == "error":
            return parent
    children = [r for key, r in results.items() if key.startswith((nodeid + "::", nodeid + "["))]
    bad = [r for r in children if r.outcome in ("failed", "error")]
    if bad or not children:
        return bad[0] if bad else None
    if all(r.outcome == "skipped" for r in children):
        return children[0]
    return CaseResult(nodeid, "passed")


def judge(
    results: Mapping[str, CaseResult],
    *,
    targets: Sequence[str],
    hidden: Sequence[str],
    hidden_files: Iterable[str] = (),
    baseline: Mapping[str, str] | None = None,
    only_files: set[str] | None = None,
) -> list[Failure]:
    """Every reason to reject the run. `baseline` None checks targets and hidden tests only;
    `only_files` limits the regression check to the files that were run."""
    failures: list[Failure] = []
    wanted: list[tuple[Kind, str]] = [("target", t) for t in targets]
    wanted += [("hidden", h) for h in hidden]
    for kind, nodeid in wanted:
        result = lookup(results, nodeid)
        if result is None or result.outcome != "passed":
            failures.append(Failure(kind, nodeid, result, "" if result else NOT_FOUND))
    if baseline is not None:
        skip = {*targets, *hidden}
        failures += _regressions(results, baseline, skip, set(hidden_files), only_files)
    return failures


def _regressions(
    results: Mapping[str, CaseResult],
    baseline: Mapping[str, str],
    skip: set[str],
    hidden_files: set[str],
    only_files: set[str] | None,
) -> list[Failure]:
    lost: dict[str, int] = {}  # collection error -> previously passing tests it swallowed
    found: dict[str, Failure] = {}
    for nodeid, before in baseline.items():
        if before != "passed" or nodeid in skip or file_of(nodeid) in hidden_files:
            continue
        if only_files is not None and file_of(nodeid) not in only_files:
            continue
        result = lookup(results, nodeid)
        if result is None:
            found[nodeid] = Failure("regression", nodeid, None, "it passed before; " + NOT_FOUND)
        elif result.is_collection and result.outcome == "error":
            lost[result.nodeid] = lost.get(result.nodeid, 0) + 1
        elif result.outcome == "skipped":
            note = "it passed before your change and is skipped now"
            found[nodeid] = Failure("regression", nodeid, result, note)
        elif result.outcome != "passed":
            found[nodeid] = Failure("regression", nodeid, result)
    for nodeid, result in results.items():
        new_error = result.is_collection and baseline.get(nodeid) != "error"
        if result.outcome == "error" and (new_error or nodeid in lost):
            if file_of(nodeid) in hidden_files:
                continue
            count = lost.get(nodeid, 0)
            note = "could not be collected after your change" + (
                f"; {count} test{'s' * (count != 1)} that passed before no longer run"
                if count
                else ""
            )
            found[nodeid] = Failure("regression", nodeid, result, note)
    return list(found.values())


class Scrubber:
    """Makes run output fit for a model: workspace paths made relative, and whatever would name
    a hidden test (its paths, module and function names) blanked out."""

    def __init__(
        self, hidden_tests: Iterable[str], hidden_files: Iterable[str], root: str = ""
    ) -> None:
        self.root = root.rstrip("/") + "/" if root.strip("/") else ""
        words: set[str] = set()
        for path in hidden_files:
            stem = path.removesuffix(".py")
            words |= {path, stem, stem.replace("/", "."), stem.rsplit("/", 1)[-1]}
        for nodeid in hidden_tests:
            parts = nodeid.split("::")
            words |= {nodeid, file_of(nodeid), *(p.split("[", 1)[0] for p in parts[1:])}
        words.discard("")
        ordered = sorted(words, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self.root:
            text = text.replace(self.root, "")
        return self._pattern.sub("<hidden>", text) if self._pattern else text

    def names_hidden(self, text: str) -> bool:
        return bool(self._pattern and self._pattern.search(text))


def _line(nodeid: str, text: str) -> int:
    hits = re.findall(re.escape(file_of(nodeid)) + r":(\d+)", text)
    return int(hits[-1]) if hits else 0


def _hidden_number(failure: Failure, hidden: Sequence[str]) -> int:
    return hidden.index(failure.nodeid) + 1 if failure.nodeid in hidden else 0


def _hidden_text(failure: Failure, hidden: Sequence[str], scrub: Scrubber) -> str:
    number = _hidden_number(failure, hidden)
    if failure.result is None:
        return f"hidden test #{number} was not found (it could not be run)"
    return f"hidden test #{number} failed: {scrub(exception_summary(failure.result))}"


def findings(
    failures: Sequence[Failure], hidden: Sequence[str], scrub: Scrubber
) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for f in failures:
        if f.kind == "hidden":
            out.append(Finding(message=_hidden_text(f, hidden, scrub), rule="hidden"))
            continue
        text = f.result.text if f.result else ""
        detail = f.note or (exception_summary(f.result) if f.result else "")
        out.append(
            Finding(
                message=scrub(f"{f.nodeid}: {detail}"),
                path=file_of(f.nodeid),
                line=_line(f.nodeid, text),
                rule=f.kind,
            )
        )
    return tuple(out)


def feedback(
    failures: Sequence[Failure],
    hidden: Sequence[str],
    scrub: Scrubber,
    *,
    limit: int = FEEDBACK_CHARS,
) -> str:
    """Failing tests for the next attempt, most important first, capped at `limit` chars."""
    order = {"target": 0, "hidden": 1, "regression": 2}
    sections: list[str] = []
    for f in sorted(failures, key=lambda f: order[f.kind]):
        if f.kind == "hidden":
            sections.append(_hidden_text(f, hidden, scrub))
            continue
        label = "ERROR" if f.result and f.result.outcome == "error" else "FAILED"
        head = f"{label} {f.nodeid}"
        # A regression's note replaces "it passed before": a file that stopped collecting did not.
        why = f.note if f.kind == "regression" and f.note else _WHY[f.kind]
        why += f", {f.note}" if f.kind == "target" and f.note else ""
        body = trim_failure(f.result.text or f.result.message) if f.result else ""
        sections.append(scrub(f"{head} ({why})" + (f"\n{body}" if body else "")))
    out = FEEDBACK_HEAD
    for i, section in enumerate(sections):
        more = f"\n\n... and {len(sections) - i} more failing test(s), not shown."
        if i > 0 and len(out) + len(section) + 2 + len(more) > limit:
            return out + more
        out += "\n\n" + section
    return out
