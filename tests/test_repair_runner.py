"""The candidates' runner (cascade/repair/runner.py) as it runs in a sandbox, here with this
interpreter in a temporary folder: a skipped proving test is not a pass, proving tests that pass
without a candidate stop the search, a collection error elsewhere does not switch the check
against the rest of the suite off, an endless candidate is killed at its timeout and the next one
runs, every file is put back; and what the search makes of a candidate: an edit that gives
exactly the tested file, or none."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cascade.config import RepairConfig
from cascade.errors import InfraError
from cascade.repair.mutate import Mutant, mutants
from cascade.repair.runner import RUNNER
from cascade.repair.search import _answer, _Log, _results

CODE = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"
TESTS = (
    "from m import f, g\n\n\ndef test_f():\n    assert f() == 3\n\n\n"
    "def test_g():\n    assert g() == 2\n"
)


def run_runner(
    root: Path, candidates: list[str], tests: str = TESTS, **spec: Any
) -> list[dict[str, Any]]:
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "m.py").write_text(CODE)
    (root / "tests" / "test_m.py").write_text(tests)
    (root / ".git").mkdir(exist_ok=True)
    (root / ".git" / "run.py").write_text(RUNNER)
    body = {
        "tests": ["tests/test_m.py::test_f"], "test_timeout": 10.0, "suite_timeout": 30.0,
        "work": ".git/w", "results": ".git/results.jsonl", "originals": {"m.py": CODE},
        "floor": 2.0, "factor": 10.0, "limit": None,
        "candidates": [{"id": i, "path": "m.py", "source": c} for i, c in enumerate(candidates)],
        **spec,
    }  # fmt: skip
    (root / ".git" / "spec.json").write_text(json.dumps(body))
    subprocess.run(
        [sys.executable, ".git/run.py", ".git/spec.json"],
        cwd=root, check=True, timeout=120, env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin"},
    )  # fmt: skip
    assert (root / "m.py").read_text() == CODE  # every candidate put back
    return [json.loads(x) for x in (root / ".git" / "results.jsonl").read_text().splitlines()]


def results(lines: list[dict[str, Any]]) -> list[str]:
    return [line["result"] for line in lines if "id" in line]


def test_the_first_candidate_that_passes_ends_the_batch(tmp_path: Path) -> None:
    wrong, right, later = (CODE.replace("return 1", f"return {n}") for n in (2, 3, 4))
    lines = run_runner(tmp_path, [wrong, right, later])
    assert results(lines) == ["failed", "passed"]
    assert lines[0]["base_passed"] is False and 2.0 <= lines[0]["limit"] <= 10.0


def test_a_skipped_proving_test_is_not_a_pass(tmp_path: Path) -> None:
    skips = CODE.replace("return 1", "__import__('pytest').skip('no')")
    assert results(run_runner(tmp_path, [skips])) == ["failed"]


def test_proving_tests_that_pass_without_a_candidate_stop_the_search(tmp_path: Path) -> None:
    lines = run_runner(tmp_path, [CODE.replace("return 1", "return 3")], tests=TESTS + "\n")
    assert results(lines) == ["passed"]  # the control: they fail without it
    passing = TESTS.replace("f() == 3", "f() == 1")
    lines = run_runner(tmp_path / "p", [CODE.replace("return 1", "return 3")], tests=passing)
    assert lines == [{"limit": lines[0]["limit"], "base_seconds": lines[0]["base_seconds"],
                      "base_passed": True}]  # fmt: skip


def test_a_collection_error_elsewhere_keeps_the_suite_check(tmp_path: Path) -> None:
    """A candidate that passes test_f but breaks test_g is caught even though another test file
    cannot be imported (pytest exits 2 on that without --continue-on-collection-errors)."""
    (tmp_path / "tests").mkdir(parents=True)
    (tmp_path / "tests" / "test_optional.py").write_text("import not_installed_optional_dep\n")
    both = "def f():\n    return 3\n\n\ndef g():\n    return 3\n"
    right = CODE.replace("return 1", "return 3")
    lines = run_runner(tmp_path, [both, right])
    assert results(lines) == ["broke", "passed"]
    assert lines[1]["base_failed"] == ["tests/test_m.py::test_f"]
    assert lines[2]["broke"] == ["tests/test_m.py::test_g"]


def test_an_endless_candidate_is_killed_at_its_timeout(tmp_path: Path) -> None:
    endless = CODE.replace("return 1", "while True:\n        pass")
    right = CODE.replace("return 1", "return 3")
    began = time.monotonic()
    # 4 s: long enough for the right candidate's tests on a loaded machine (1.5 s was not,
    # beside a second test worker), short enough to show the endless one is cut.
    lines = run_runner(tmp_path, [endless, right], test_timeout=4)
    assert results(lines) == ["timeout", "passed"]
    assert lines[1]["seconds"] < 6 and time.monotonic() - began < 30
    alive = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, check=False)
    assert alive.stdout == b""  # no test left running


def test_results_that_are_not_the_runners_are_an_infrastructure_error() -> None:
    assert _results(b'{"id": 0, "result": "passed", "seconds": 1}\n')[0]["id"] == 0
    for garbage in (b'{"id": 0, "resu', b"[1, 2]\n", b'{"id": "x", "seconds": 1, "result": 1}'):
        with pytest.raises(InfraError, match="results cannot be read"):
            _results(garbage)


def one(source: str, line: int, operator: str) -> Mutant:
    return next(m for m in mutants("m.py", source, [line]) if m.operator == operator)


def test_an_answer_gives_exactly_the_tested_file_or_none() -> None:
    log = _Log(0.0, RepairConfig(), set())
    crlf = "def f(a):\r\n    return a + 1\r\n"
    mutant = one(crlf, 2, "arith_op")
    assert _answer(mutant, crlf, log) is not None  # a CRLF file stays CRLF
    no_newline = "def f(a):\n    return a + 1"
    assert _answer(one(no_newline, 2, "arith_op"), no_newline, log) is not None
    # a line in the block that reads as an edit marker: no edit could be trusted to say it
    rst = (
        'def f(a):\n    """Sum.\n\n    =======\n    """\n    return a + 1\n\n\n'
        "def g():\n    return 0\n"
    )
    twice = rst + rst.replace("def f", "def h").replace("def g", "def k")
    assert _answer(one(twice, 6, "arith_op"), twice, log) is None
