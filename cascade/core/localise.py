"""Spectrum-based fault localisation, pure: from which statements each test ran and how each test
came out, rank statements and functions by how suspicious they are (Ochiai, DStar reported too).
The sandbox side that measures the spectra is evaluators/localisation.py.

Conventions, fixed here so every reader of a `Localisation` agrees:
- Counts per statement: `ef`/`ep` the failing/passing tests that ran it, `nf`/`np` those that
  did not. Ochiai = ef / sqrt((ef + nf) * (ef + ep)), 0 when no failing test ran it. DStar
  (star 2) = ef**2 / (ep + nf); when ep + nf == 0 and ef > 0 (every failing test and no passing
  one ran it) it is `math.inf` (written "Infinity" in JSON), and 0 when ef == 0.
- Ranking is by Ochiai alone, compared exactly (as the fraction ef**2 / (ef + ep): F is the same
  for all), so equal scores tie even where floats would round apart. A tie group shares one rank,
  the pessimistic one: the position of its last member (a statement ranked 3 is found within
  three inspections, whatever order its ties are read in), and `tied` is the group's size. Within
  a group, and for the output, statements are ordered by (path, line).
- A function (or method) scores the max of its statements' scores; a statement belongs to the
  innermost function whose span holds it, and a statement in no function (module or class body)
  is ranked only as a statement. Function names are Python's `__qualname__`: `Class.method`,
  `outer.<locals>.inner`; a span runs from the first decorator (or the `def`) to the last line.
- A statement in a test file is never a suspect: test files are the rule the gate uses
  (evaluators/trusted_files.py `under_tests`): a `tests/` or `test/` folder anywhere, `test_*.py`,
  `*_test.py`, `conftest.py`. Paths outside the workspace (absolute, `../`) are left out too.
- Which tests count: a failing test is one of the proving tests (`failing`; a node id also names
  its parametrised cases, a file its tests) whose outcome is failed or error; a passing test is
  any that passed. The rest (skipped, failures that are not proving tests, proving tests that
  passed) are left out and counted by reason.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from pydantic import ConfigDict, Field

from cascade.records import Record

VERSION = 1
TOP = 50  # statements and functions kept in a Localisation
FAILED = ("failed", "error")
TEST_DIRS = ("tests", "test")


@dataclass(frozen=True)
class Spectra:
    """What one measured run saw: each test's outcome ("passed", "failed", "error", "skipped")
    and, per test, the workspace-relative file -> lines it executed (setup to teardown). Lines
    run outside any test (imports, collection) are in no test's spectrum; `unattributed` counts
    them."""

    outcomes: Mapping[str, str]
    lines: Mapping[str, Mapping[str, frozenset[int]]]
    unattributed: int = 0
    duration_s: float = 0.0
    capped: int = 0  # tests collected but not run: over the cap on how many run


class FunctionSpan(NamedTuple):
    name: str  # qualified, as __qualname__
    first: int  # the first decorator's line, or the `def` line
    last: int


class Score(NamedTuple):
    path: str
    line: int
    ef: int
    ep: int
    nf: int
    np: int

    @property
    def ochiai(self) -> float:
        return ochiai(self.ef, self.ep, self.nf)

    @property
    def dstar(self) -> float:
        return dstar(self.ef, self.ep, self.nf)

    @property
    def key(self) -> Fraction:
        """Ochiai's order, exactly: Ochiai**2 * F = ef**2 / (ef + ep)."""
        return Fraction(self.ef * self.ef, self.ef + self.ep) if self.ef else Fraction(0)


class _Scored(Record):
    # DStar may be infinite: JSON has no infinity, so it is written as the string "Infinity"
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")


class SuspectLine(_Scored):
    path: str
    line: int
    ochiai: float
    dstar: float
    ef: int
    ep: int
    nf: int
    np: int
    rank: int  # the last position of its tie group (pessimistic)
    tied: int  # statements sharing this score, itself included


class SuspectFunction(_Scored):
    path: str
    name: str
    first: int
    last: int
    line: int  # its most suspicious statement (the first, by line, among equals)
    ochiai: float
    dstar: float
    rank: int
    tied: int


class Localisation(Record):
    """Ranked suspects and what was counted; numbers, paths, lines and function names only (no
    test names: a hidden test's id must not reach whoever reads this)."""

    version: int = VERSION
    statements: tuple[SuspectLine, ...] = ()
    functions: tuple[SuspectFunction, ...] = ()
    failing: int = 0  # tests counted as failing
    passing: int = 0  # tests counted as passing
    suspects: int = 0  # statements with a score above 0, before the top-N cut
    ignored: dict[str, int] = Field(default_factory=dict)  # tests left out, by reason
    left_out: dict[str, int] = Field(default_factory=dict)  # statements left out, by reason
    missing: int = 0  # proving tests that did not run at all
    proving_passed: int = 0  # proving tests that passed in this run (counted as passing)
    duration_s: float = 0.0

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)


def ochiai(ef: int, ep: int, nf: int) -> float:
    denominator = (ef + nf) * (ef + ep)
    return ef / math.sqrt(denominator) if ef and denominator else 0.0


def dstar(ef: int, ep: int, nf: int, star: int = 2) -> float:
    if ef == 0:
        return 0.0
    return math.inf if ep + nf == 0 else ef**star / (ep + nf)


def is_test_path(path: str) -> bool:
    """The gate's test-file rule (`under_tests`), for a workspace-relative path."""
    *folders, name = path.split("/")
    return (
        any(part in TEST_DIRS for part in folders)
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def _outside(path: str) -> bool:
    return path.startswith(("/", "../")) or path == ".."


def is_named(nodeid: str, names: Iterable[str]) -> bool:
    """Whether a test node id is one of `names`: the id itself, a parametrised case of it, a test
    in a class or file it names."""
    return any(nodeid == n or nodeid.startswith((f"{n}[", f"{n}::")) for n in names if n)


@dataclass(frozen=True)
class Counted:
    failed: frozenset[str]
    passed: frozenset[str]
    ignored: dict[str, int]  # tests not counted, by reason
    missing: int  # proving tests (names) that no outcome matches
    proving_passed: int  # proving tests that passed, counted as passing


def count_tests(outcomes: Mapping[str, str], failing: Collection[str] | None) -> Counted:
    """Which tests count, and why the others do not (see the module docstring). `failing` None:
    every failed or errored test counts as failing."""
    failed: set[str] = set()
    passed: set[str] = set()
    ignored: dict[str, int] = {}
    proving_passed = 0
    for nodeid, outcome in outcomes.items():
        proving = failing is None or is_named(nodeid, failing)
        if outcome == "passed":
            passed.add(nodeid)
            proving_passed += failing is not None and proving
            continue
        if outcome in FAILED and proving:
            failed.add(nodeid)
            continue
        reason = f"{outcome}, not a proving test" if outcome in FAILED else outcome
        ignored[reason] = ignored.get(reason, 0) + 1
    missing = 0
    for name in set(failing or ()):
        missing += not any(is_named(nodeid, (name,)) for nodeid in outcomes)
    return Counted(frozenset(failed), frozenset(passed), ignored, missing, proving_passed)


def score_statements(
    spectra: Spectra,
    failing: Collection[str] | None,
    *,
    is_test: Callable[[str], bool] = is_test_path,
) -> tuple[list[Score], Counted, dict[str, int]]:
    """Every statement a counted test ran, scored, in rank order ((-score, path, line)); the tests
    counted; the statements left out, by reason."""
    counted = count_tests(spectra.outcomes, failing)
    runs: dict[tuple[str, int], list[int]] = {}  # (path, line) -> [ef, ep]
    left: dict[str, set[tuple[str, int]]] = {
        "in a test file": set(),
        "outside the workspace": set(),
    }
    for nodeid in sorted(counted.failed | counted.passed):
        slot = 0 if nodeid in counted.failed else 1
        for path, lines in spectra.lines.get(nodeid, {}).items():
            reason = "outside the workspace" if _outside(path) else ""
            reason = reason or ("in a test file" if is_test(path) else "")
            for line in lines:
                if reason:
                    left[reason].add((path, line))
                    continue
                runs.setdefault((path, line), [0, 0])[slot] += 1
    f, p = len(counted.failed), len(counted.passed)
    scores = [Score(path, line, ef, ep, f - ef, p - ep) for (path, line), (ef, ep) in runs.items()]
    scores.sort(key=lambda s: (-s.key, s.path, s.line))
    return scores, counted, {k: len(v) for k, v in left.items() if v}


def ranks(keys: Sequence[Fraction]) -> list[tuple[int, int]]:
    """(rank, tied) for keys sorted best first: equal keys share their group's last position."""
    out: list[tuple[int, int]] = []
    start = 0
    while start < len(keys):
        end = start
        while end + 1 < len(keys) and keys[end + 1] == keys[start]:
            end += 1
        out.extend([(end + 1, end - start + 1)] * (end - start + 1))
        start = end + 1
    return out


def rank_functions(
    scores: Sequence[Score], spans: Mapping[str, Sequence[FunctionSpan]]
) -> list[SuspectFunction]:
    """Functions holding a scored statement, ranked by their best statement's Ochiai (ties as for
    statements, then by path and first line); `dstar` is the best of its statements' DStar."""
    best: dict[tuple[str, FunctionSpan], Score] = {}
    top_dstar: dict[tuple[str, FunctionSpan], float] = {}
    for score in scores:
        span = innermost(spans.get(score.path, ()), score.line)
        if span is None:
            continue
        slot = (score.path, span)
        held = best.get(slot)
        if held is None or (score.key, -score.line) > (held.key, -held.line):
            best[slot] = score
        top_dstar[slot] = max(top_dstar.get(slot, 0.0), score.dstar)
    order = sorted(best.items(), key=lambda kv: (-kv[1].key, kv[0][0], kv[0][1].first))
    placed = ranks([s.key for _, s in order])
    return [
        SuspectFunction(
            path=slot[0],
            name=slot[1].name,
            first=slot[1].first,
            last=slot[1].last,
            line=s.line,
            ochiai=s.ochiai,
            dstar=top_dstar[slot],
            rank=rank,
            tied=tied,
        )
        for (slot, s), (rank, tied) in zip(order, placed, strict=True)
    ]


def innermost(spans: Iterable[FunctionSpan], line: int) -> FunctionSpan | None:
    holding = [s for s in spans if s.first <= line <= s.last]
    return max(holding, key=lambda s: (s.first, -s.last), default=None)


def function_spans(source: str) -> list[FunctionSpan]:
    """Every function and method in a Python source text, by `__qualname__`, decorators included
    in its span; [] when the text does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found: list[FunctionSpan] = []

    def visit(body: Iterable[ast.AST], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                name = prefix + node.name
                found.append(FunctionSpan(name, first, node.end_lineno or node.lineno))
                visit(ast.iter_child_nodes(node), f"{name}.<locals>.")
            elif isinstance(node, ast.ClassDef):
                visit(ast.iter_child_nodes(node), f"{prefix}{node.name}.")
            elif not isinstance(node, (ast.Lambda, ast.expr)):
                visit(ast.iter_child_nodes(node), prefix)  # if/try/with/for bodies

    visit(tree.body, "")
    return sorted(found, key=lambda s: (s.first, s.name))


def rank_spectra(
    spectra: Spectra,
    failing: Collection[str] | None,
    spans: Mapping[str, Sequence[FunctionSpan]],
    *,
    top: int = TOP,
    is_test: Callable[[str], bool] = is_test_path,
) -> Localisation:
    """The ranked result: the `top` most suspicious statements and functions (those scoring 0,
    run by passing tests only, are counted in `left_out`, never listed)."""
    scores, counted, left = score_statements(spectra, failing, is_test=is_test)
    ignored = dict(counted.ignored)
    if spectra.capped:
        ignored["not run: over the cap on tests"] = spectra.capped
    suspects = [s for s in scores if s.ef]
    if len(suspects) < len(scores):
        left["run by passing tests only"] = len(scores) - len(suspects)
    placed = ranks([s.key for s in suspects])
    statements = tuple(
        SuspectLine(
            path=s.path,
            line=s.line,
            ochiai=s.ochiai,
            dstar=s.dstar,
            ef=s.ef,
            ep=s.ep,
            nf=s.nf,
            np=s.np,
            rank=rank,
            tied=tied,
        )
        for s, (rank, tied) in zip(suspects[:top], placed, strict=False)
    )
    if spectra.unattributed:
        left["run outside any test (imports, collection)"] = spectra.unattributed
    return Localisation(
        statements=statements,
        functions=tuple(rank_functions(suspects, spans)[:top]),
        failing=len(counted.failed),
        passing=len(counted.passed),
        suspects=len(suspects),
        ignored=dict(sorted(ignored.items())),
        left_out=dict(sorted(left.items())),
        missing=counted.missing,
        proving_passed=counted.proving_passed,
        duration_s=spectra.duration_s,
    )


def suspect_files(
    spectra: Spectra,
    failing: Collection[str] | None,
    *,
    limit: int,
    is_test: Callable[[str], bool] = is_test_path,
) -> list[str]:
    """The files holding a statement some counted failing test ran, most suspicious first: those
    whose function spans the ranking of functions needs."""
    scores, _, _ = score_statements(spectra, failing, is_test=is_test)
    return list(dict.fromkeys(s.path for s in scores if s.ef))[:limit]
