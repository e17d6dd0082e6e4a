"""Judge one pytest run against the baseline (targets pass, hidden tests pass, nothing that passed
before fails), and say what failed in words a model can act on without seeing hidden tests: a
hidden test's failure is its number and the type of what it raised, never a message."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cascade.core.gate import TAMPER
from cascade.records import Finding
from evaluators.junit import CaseResult, exception_summary, exception_type, trim_failure
from evaluators.sealed_child import TIMED_OUT

Kind = Literal["target", "hidden", "regression"]

NOT_FOUND = "not found — was it renamed or deleted?"
FEEDBACK_HEAD = "The tests below fail after your change. Fix the code (not the tests)."
FEEDBACK_CHARS = 3000
SHOWN_BEFORE = 3  # tests named as having run before an order-dependent failure
_HUNG = re.compile(re.escape(TIMED_OUT).replace(re.escape("{:g}"), r"([0-9.e+]+)"))
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
    context: str = ""  # said after why it counts: how it failed only in the full run


def hung(result: CaseResult | None) -> str:
    """The deadline a test ran into ("60" for `timed out after 60 s (per-test deadline)`), or
    "" when it did not time out."""
    found = _HUNG.search(result.message) if result is not None else None
    return found[1] if found else ""


def hang_note(result: CaseResult | None) -> str:
    seconds = hung(result)
    if not seconds:
        return ""
    return (
        f"it hung: still running after the {seconds} s per-test deadline (an endless loop, a "
        "wait that never ends, or far slower than before); the traceback shows where it was"
    )


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
    at_base: Mapping[str, str] | None = None,
    stopped: str = "",
) -> list[Failure]:
    """Every reason to reject the run. `baseline` None checks targets and hidden tests only;
    `only_files` limits the regression check to the files that were run. `at_base` (the
    suite's outcomes at the base commit): a target named by its file, class or parametrised
    function passes only if none of its tests that failed there is skipped now. `stopped`: the
    run left tests unrun after killing that one at its deadline, so a missing test did not run."""
    failures: list[Failure] = []
    wanted: list[tuple[Kind, str]] = [("target", t) for t in targets]
    wanted += [("hidden", h) for h in hidden]
    missing = f"it did not run: the run stopped after {stopped} hung" if stopped else NOT_FOUND
    for kind, nodeid in wanted:
        result = lookup(results, nodeid)
        if result is None or result.outcome != "passed":
            failures.append(Failure(kind, nodeid, result, "" if result else missing))
        elif at_base:
            failures += _skipped_now(results, nodeid, kind, at_base)
    if baseline is not None:
        skip = {*targets, *hidden}
        found = _regressions(results, baseline, skip, set(hidden_files), only_files)
        failures += [
            dataclasses.replace(f, note=f"it passed before; {missing}")
            if stopped and f.result is None
            else f
            for f in found
        ]
    return failures


def order_dependent(
    failures: Sequence[Failure],
    alone: Sequence[str],
    alone_results: Mapping[str, CaseResult],
    full: Sequence[str],
    hidden: Callable[[str], bool],
) -> list[Failure]:
    """Each failure of the full run whose test passed in the run of its own file (`alone`, in
    run order) told so, with the last tests that ran before it in the full run but not in that
    one (none of `hidden`'s)."""
    out: list[Failure] = []
    for f in failures:
        ran = lookup(alone_results, f.nodeid) if f.kind != "hidden" else None
        nodeid = f.result.nodeid if f.result is not None else ""
        if ran is None or ran.outcome != "passed" or nodeid not in full:
            out.append(f)
            continue
        seen = set(alone[: alone.index(nodeid)] if nodeid in alone else alone)
        before = [n for n in full[: full.index(nodeid)] if n not in seen and not hidden(n)]
        context = "it passed when run with its own file alone, but fails in the full test run"
        if before:
            last = ", ".join(before[-SHOWN_BEFORE:])
            context += (
                f", where {len(before)} other test(s) ran before it (the last: {last}): state "
                "they leave behind (module globals, caches, environment, files) changes its "
                "outcome"
            )
        out.append(dataclasses.replace(f, context=context))
    return out


def _skipped_now(
    results: Mapping[str, CaseResult], nodeid: str, kind: Kind, at_base: Mapping[str, str]
) -> list[Failure]:
    """The tests under an aggregate id that failed at the base commit and are skipped now: a
    skip is not a fix."""
    return [
        Failure(kind, key, result, "failed at the base commit and is skipped now")
        for key, result in results.items()
        if key.startswith((nodeid + "::", nodeid + "["))
        and result.outcome == "skipped"
        and at_base.get(key) in ("failed", "error")
    ]


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


def _hidden_text(failure: Failure, hidden: Sequence[str]) -> str:
    """Its number and, when Python defines it, the type of what it raised: the message could be
    anything the code under test read (a hidden test's own source, say) and chose to raise."""
    number = _hidden_number(failure, hidden)
    if failure.result is None:
        return f"hidden test #{number} was not found (it could not be run)"
    if hung(failure.result):  # our own words, not the code's: nothing else of the test shows
        return f"hidden test #{number} hung: it ran into the per-test deadline"
    kind = exception_type(failure.result)
    return f"hidden test #{number} failed" + (f": {kind}" if kind else "")


def _raised(result: CaseResult | None, quote: bool) -> str:
    """What a failing test raised: its first line, or (not `quote`) its builtin type only."""
    if result is None:
        return ""
    return exception_summary(result) if quote else exception_type(result) or result.outcome


def findings(
    failures: Sequence[Failure], hidden: Sequence[str], scrub: Scrubber, *, quote: bool = True
) -> tuple[Finding, ...]:
    """One finding per failure; without `quote` (hidden files were in the workspace for the
    run), nothing of what a test raised but its builtin type."""
    out: list[Finding] = []
    for f in failures:
        if f.kind == "hidden":
            out.append(Finding(message=_hidden_text(f, hidden), rule="hidden"))
            continue
        text = f.result.text if f.result and quote else ""
        detail = f.note or _raised(f.result, quote)
        hang = "" if "timed out" in detail else hang_note(f.result)
        detail += "".join(f"; {x}" for x in (hang, f.context) if x)
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
    quote: bool = True,
) -> str:
    """Failing tests for the next attempt, most important first, capped at `limit` chars.
    Without `quote`, each failure's builtin exception type stands for its traceback."""
    order = {"target": 0, "hidden": 1, "regression": 2}
    sections: list[str] = []
    for f in sorted(failures, key=lambda f: order[f.kind]):
        if f.kind == "hidden":
            sections.append(_hidden_text(f, hidden))
            continue
        label = "ERROR" if f.result and f.result.outcome == "error" else "FAILED"
        head = f"{label} {f.nodeid}"
        # A regression's note replaces "it passed before": a file that stopped collecting did not.
        why = f.note if f.kind == "regression" and f.note else _WHY[f.kind]
        why += f", {f.note}" if f.kind == "target" and f.note else ""
        why += "".join(f"; {x}" for x in (hang_note(f.result), f.context) if x)
        if quote:
            body = trim_failure(f.result.text or f.result.message) if f.result else ""
        else:
            body = exception_type(f.result) if f.result else ""
        sections.append(scrub(f"{head} ({why})" + (f"\n{body}" if body else "")))
    out = FEEDBACK_HEAD
    for i, section in enumerate(sections):
        more = f"\n\n... and {len(sections) - i} more failing test(s), not shown."
        if i > 0 and len(out) + len(section) + 2 + len(more) > limit:
            return out + more
        out += "\n\n" + section
    return out


@dataclass(frozen=True)
class Said:
    """How runs may be told to a model: through `scrub`, quoted or not (not: hidden files were
    in the workspace, and the code under test could have read them), and which changed files
    are the suite's own doing (seen at baseline)."""

    scrub: Scrubber
    quote: bool
    excused: frozenset[str]


def tampered(moved: Sequence[str], scrub: Scrubber) -> tuple[str, tuple[Finding, ...]]:
    """Feedback and findings for files that changed while the tests ran."""
    shown = ", ".join(scrub(p) for p in moved[:10])
    more = f" (+{len(moved) - 10} more)" if len(moved) > 10 else ""
    text = (
        f"The workspace changed while the tests ran: {shown}{more}. Code that rewrites tests or "
        "source during the run (even if it puts them back) is refused; make the change in the "
        "patch itself."
    )
    message = "changed while the tests ran"
    return text, tuple(Finding(message=message, path=scrub(p), rule=TAMPER) for p in moved)


def scrub_lines(text: str, scrub: Scrubber) -> str:
    """Drop lines that name a hidden test and the indented lines under them (a traceback frame
    there quotes its source), and make the rest fit for a model."""
    kept: list[str] = []
    dropping = False
    for line in text.splitlines():
        if scrub.names_hidden(line):
            dropping = True
        elif not (dropping and line[:1].isspace()):
            dropping = False
            kept.append(line)
    return scrub("\n".join(kept))
