"""Fault localisation: the ranking on hand-worked spectra (cascade/core/localise.py), function spans
from source, and the measurement on a real repository in a local sandbox
(evaluators/localisation.py)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from cascade.config import SandboxConfig
from cascade.core.localise import (
    FunctionSpan,
    Localisation,
    Spectra,
    dstar,
    function_spans,
    is_test_path,
    ochiai,
    rank_spectra,
    score_statements,
)
from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.testing import make_repo
from cascade.wiring.registry import sandbox_opener
from evaluators.localisation import collect_spectra, localise
from evaluators.trusted_files import under_tests

# Two failing tests (f1, f2), three passing (p1, p2, p3); what each ran of m.py and its test file.
OUTCOMES = {"f1": "failed", "f2": "error", "p1": "passed", "p2": "passed", "p3": "passed"}
RAN = {
    "f1": {1, 2, 3, 5},
    "f2": {1, 3, 5, 6},
    "p1": {1, 4, 5},
    "p2": {4, 5},
    "p3": {4, 5},
}
SPANS = {"m.py": [FunctionSpan("a", 1, 3), FunctionSpan("b", 4, 6)]}


def spectra(outcomes: dict[str, str] = OUTCOMES, ran: dict[str, set[int]] = RAN) -> Spectra:
    also = {"tests/test_m.py": frozenset({1}), "/usr/lib/x.py": frozenset({7})}
    lines = {t: {"m.py": frozenset(ls), **also} for t, ls in ran.items()}
    return Spectra(outcomes=outcomes, lines=lines)


def test_ochiai_and_dstar_by_hand() -> None:
    # F = 2, P = 3.                ef ep nf np   Ochiai = ef/sqrt(F*(ef+ep))   DStar = ef²/(ep+nf)
    # line 1: f1 f2 p1             2  1  0  2    2/sqrt(2*3) = 0.81650        4/(1+0) = 4
    # line 2: f1                   1  0  1  3    1/sqrt(2*1) = 0.70711        1/(0+1) = 1
    # line 3: f1 f2                2  0  0  3    2/sqrt(2*2) = 1              4/0     = inf
    # line 4: p1 p2 p3             0  3  2  0    0                            0
    # line 5: all five             2  3  0  0    2/sqrt(2*5) = 0.63246        4/3
    # line 6: f2                   1  0  1  3    0.70711 (ties line 2)        1
    result = rank_spectra(spectra(), ["f1", "f2"], SPANS)
    got = {(s.line, s.ef, s.ep, s.nf, s.np): (s.ochiai, s.dstar) for s in result.statements}
    assert got == {
        (3, 2, 0, 0, 3): (1.0, math.inf),
        (1, 2, 1, 0, 2): (pytest.approx(2 / math.sqrt(6)), 4.0),
        (2, 1, 0, 1, 3): (pytest.approx(1 / math.sqrt(2)), 1.0),
        (6, 1, 0, 1, 3): (pytest.approx(1 / math.sqrt(2)), 1.0),
        (5, 2, 3, 0, 0): (pytest.approx(2 / math.sqrt(10)), pytest.approx(4 / 3)),
    }
    assert pytest.approx(0.81650, abs=1e-5) == ochiai(2, 1, 0)
    assert dstar(2, 0, 0) == math.inf and dstar(0, 0, 0) == 0.0 and dstar(0, 5, 2) == 0.0
    assert (result.failing, result.passing, result.suspects) == (2, 3, 5)


def test_ties_share_the_pessimistic_rank_in_path_and_line_order() -> None:
    result = rank_spectra(spectra(), ["f1", "f2"], SPANS)
    ranked = [(s.line, s.rank, s.tied) for s in result.statements]
    # lines 2 and 6 tie for positions 3-4: both are rank 4, and the group's size is said
    assert ranked == [(3, 1, 1), (1, 2, 1), (2, 4, 2), (6, 4, 2), (5, 5, 1)]
    # Equal scores tie exactly, though their floats need not be equal: with F = 4,
    # (ef=1, ep=0) and (ef=2, ep=2) are both 1/2; ef²/(ef+ep) is compared as a fraction.
    odd = Spectra(
        outcomes={"f1": "failed", "f2": "failed", "f3": "failed", "f4": "failed", "p1": "passed",
                  "p2": "passed"},
        lines={"f1": {"m.py": frozenset({1, 2})}, "f2": {"m.py": frozenset({2})},
               "p1": {"m.py": frozenset({2})}, "p2": {"m.py": frozenset({2})}},
    )  # fmt: skip
    tied = rank_spectra(odd, None, {}).statements
    assert [(s.line, s.rank, s.tied) for s in tied] == [(1, 2, 2), (2, 2, 2)]


def test_a_statement_no_failing_test_runs_scores_zero_and_is_not_listed() -> None:
    scores, _, _ = score_statements(spectra(), ["f1", "f2"])
    line4 = next(s for s in scores if s.line == 4)
    assert (line4.ochiai, line4.dstar, line4.ef, line4.ep) == (0.0, 0.0, 0, 3)
    result = rank_spectra(spectra(), ["f1", "f2"], SPANS)
    assert 4 not in [s.line for s in result.statements]
    assert result.left_out["run by passing tests only"] == 1


def test_functions_take_their_best_statement() -> None:
    result = rank_spectra(spectra(), ["f1", "f2"], SPANS)
    functions = [(f.name, f.line, f.ochiai, f.dstar, f.rank) for f in result.functions]
    # b's Ochiai is line 6's; its DStar is the best of its statements' (line 5's 4/3)
    assert functions == [
        ("a", 3, 1.0, math.inf, 1),
        ("b", 6, pytest.approx(1 / math.sqrt(2)), pytest.approx(4 / 3), 2),
    ]
    nested = {"m.py": [FunctionSpan("a", 1, 6), FunctionSpan("a.<locals>.b", 2, 3)]}
    names = {f.name: f.line for f in rank_spectra(spectra(), ["f1", "f2"], nested).functions}
    assert names == {"a": 1, "a.<locals>.b": 3}  # a statement counts for its innermost function


PATHS = ("tests/x.py", "a/test/b.py", "test_a.py", "pkg/a_test.py", "pkg/conftest.py", "pkg/mod.py",
         "testing/x.py", "contest.py", "pkg/tests.py", "test_data.json")  # fmt: skip


def test_tests_and_outside_files_are_never_suspects() -> None:
    result = rank_spectra(spectra(), ["f1", "f2"], SPANS)
    assert {s.path for s in result.statements} == {"m.py"}
    assert result.left_out["in a test file"] == 1
    assert result.left_out["outside the workspace"] == 1
    for path in PATHS:
        assert is_test_path(path) == under_tests(path), path  # the gate's own rule


def test_which_tests_count() -> None:
    outcomes = {
        "t.py::f[1]": "failed",
        "t.py::f[2]": "passed",
        "t.py::other": "failed",
        "t.py::skip": "skipped",
        "t.py::ok": "passed",
    }
    ran = {n: {1} for n in outcomes}
    result = rank_spectra(spectra(outcomes, ran), ["t.py::f", "t.py::gone"], {})
    assert (result.failing, result.passing, result.proving_passed, result.missing) == (1, 2, 1, 1)
    assert result.ignored == {"failed, not a proving test": 1, "skipped": 1}


def test_the_result_is_deterministic_and_round_trips() -> None:
    shuffled = list(RAN.items())
    random.Random(7).shuffle(shuffled)
    one = rank_spectra(spectra(), ["f1", "f2"], SPANS).to_json()
    two = rank_spectra(spectra(ran=dict(shuffled)), ["f2", "f1"], SPANS).to_json()
    assert one == two and '"Infinity"' in one
    assert Localisation.model_validate_json(one).statements[0].dstar == math.inf


SOURCE = """\
import functools


def plain():
    return 1


@functools.lru_cache
@functools.wraps(plain)
def decorated(x):
    return x


class Shape:
    def area(self):
        def helper():
            return 2
        return helper()

    class Inner:
        async def fetch(self):
            return 3


async def outer():
    def inner():
        pass
    return inner


if True:
    def conditional():
        pass

square = lambda x: x * x
"""


def test_function_spans() -> None:
    assert function_spans(SOURCE) == [
        FunctionSpan("plain", 4, 5),
        FunctionSpan("decorated", 8, 11),  # from the first decorator
        FunctionSpan("Shape.area", 15, 18),
        FunctionSpan("Shape.area.<locals>.helper", 16, 17),
        FunctionSpan("Shape.Inner.fetch", 21, 22),
        FunctionSpan("outer", 25, 28),
        FunctionSpan("outer.<locals>.inner", 26, 27),
        FunctionSpan("conditional", 32, 33),
    ]
    assert function_spans("def broken(:\n") == []


# A module with a one-token bug: `in_range`'s upper bound should be `<=`.
CALC = """\
def clamp(x, low, high):
    if x < low:
        return low
    if x > high:
        return high
    return x


def in_range(x, low, high):
    if low > high:
        low, high = high, low
    return low <= x < high


def mean(values):
    return sum(values) / len(values)


def scale(values, factor):
    return [v * factor for v in values]


def describe(x):
    if in_range(x, 0, 10):
        return "small"
    return "large"
"""
TESTS = """\
import pytest

from calc import clamp, describe, in_range, mean, scale


def test_clamp_low():
    assert clamp(-5, 0, 10) == 0


def test_clamp_high():
    assert clamp(50, 0, 10) == 10


def test_clamp_inside():
    assert clamp(5, 0, 10) == 5


def test_mean():
    assert mean([1, 2, 3]) == 2


def test_scale():
    assert scale([1, 2], 3) == [3, 6]


def test_inside():
    assert in_range(5, 0, 10)


def test_below():
    assert not in_range(-1, 0, 10)


def test_describe_large():
    assert describe(20) == "large"


def test_upper_bound_is_inside():
    assert in_range(10, 0, 10)


@pytest.mark.parametrize("x", [pytest.param(0, id="zero"), pytest.param(5, id="five"),
                               pytest.param(10, id="ten")])
def test_cases(x):
    assert in_range(x, 0, 10)
"""
MORE = """\
import pytest

from calc import mean


@pytest.fixture
def broken():
    raise RuntimeError("no database")


def test_needs_fixture(broken):
    assert mean([1]) == 1


@pytest.mark.skip(reason="later")
def test_later():
    assert mean([2]) == 2


@pytest.mark.xfail(reason="known")
def test_known():
    assert mean([]) == 0
"""
FILES = {
    "calc.py": CALC,
    "tests/test_calc.py": TESTS,
    "tests/test_more.py": MORE,
    "pytest.ini": "[pytest]\ntestpaths = tests\n",
    "repro/test_repro.py": "from calc import in_range\n\n\ndef test_repro():\n"
    "    assert in_range(3, 0, 3)\n",
}
FAILING = "tests/test_calc.py::test_upper_bound_is_inside"


async def _open(tmp_path: Path, files: dict[str, str]) -> Sandbox:
    repo = make_repo(tmp_path / "repo", files)
    return await sandbox_opener(SandboxConfig(), "local")(repo, "HEAD")


async def _left_behind(box: Sandbox) -> str:
    """What a measurement left: its files under .git/, anything in the tree (bytecode, data)."""
    script = "ls .git | grep localise; git status --porcelain --ignored"
    return (await box.exec(["sh", "-c", script], timeout=30)).stdout


@pytest.mark.anyio
async def test_the_buggy_function_ranks_first(tmp_path: Path) -> None:
    box = await _open(tmp_path, FILES)
    try:
        result = await localise(box, [FAILING], timeout=120)
        left = await _left_behind(box)
    finally:
        await box.close()
    assert result.functions[0].name == "in_range" and result.functions[0].path == "calc.py"
    top3 = [(s.path, s.line) for s in result.statements[:3]]
    assert ("calc.py", 12) in top3, result.statements
    assert result.statements[0].rank <= 3
    # one proving test failed; the other failing case (test_cases[ten]) is not a proving one
    assert (result.failing, result.passing) == (1, 10)
    assert result.ignored == {
        "error, not a proving test": 1,  # a fixture that fails: an error, not a failure
        "failed, not a proving test": 1,
        "skipped": 2,  # a skip and an xfail
    }
    assert all(not is_test_path(s.path) for s in result.statements)
    assert left == ""  # no data, runner or report left, and nothing in the tree


@pytest.mark.anyio
async def test_one_context_per_parametrised_case_and_the_cap(tmp_path: Path) -> None:
    box = await _open(tmp_path, FILES)
    try:
        cases = await collect_spectra(box, ["tests/test_calc.py::test_cases"], timeout=120)
        capped = await collect_spectra(box, [FAILING], timeout=120, max_tests=2)
        outside = await collect_spectra(box, ["repro/test_repro.py::test_repro"], timeout=120)
    finally:
        await box.close()
    ids = [f"tests/test_calc.py::test_cases[{p}]" for p in ("zero", "five", "ten")]
    assert [cases.outcomes[i] for i in ids] == ["passed", "passed", "failed"]
    for nodeid in ids:  # each case has its own spectrum: its test's body, in_range's lines
        assert cases.lines[nodeid] == {"calc.py": {10, 12}, "tests/test_calc.py": {45}}
    assert "tests/test_calc.py::test_cases" not in cases.lines
    # the cap: the proving test and the first two others in collection order
    assert list(capped.outcomes) == [
        "tests/test_calc.py::test_clamp_low",
        "tests/test_calc.py::test_clamp_high",
        FAILING,
    ]
    assert capped.capped == 12  # of the 15 in tests/, 3 ran
    # a proving test outside `testpaths` runs after the suite, into the same data
    assert outside.outcomes["repro/test_repro.py::test_repro"] == "failed"
    assert len(outside.outcomes) == 16
    more = {k.rpartition("::")[2]: v for k, v in outside.outcomes.items() if "more" in k}
    assert more == {"test_needs_fixture": "error", "test_later": "skipped", "test_known": "skipped"}
    assert outside.lines["repro/test_repro.py::test_repro"]["calc.py"] == {10, 12}


@pytest.mark.anyio
async def test_a_run_over_the_cap_is_an_infrastructure_error(tmp_path: Path) -> None:
    slow = "import time\n\n\ndef test_slow():\n    time.sleep(60)\n"
    box = await _open(tmp_path, {"m.py": "X = 1\n", "tests/test_slow.py": slow})
    try:
        with pytest.raises(InfraError, match=r"cap of 2 s"):
            await collect_spectra(box, ["tests/test_slow.py::test_slow"], timeout=2)
        left = await _left_behind(box)
    finally:
        await box.close()
    assert left == ""
