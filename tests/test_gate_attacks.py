"""Issue 14's attacks on what the test run reports: each is a patch that was verified although it
fixes nothing (or that made the next prompt carry a hidden test). Run on both sandboxes where the
sandbox takes part. The package under test is `calc`, whose `add` subtracts; the target test is
tests/test_calc.py::test_add."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cascade.core.gate import Gate, summarize
from cascade.protocols import Evaluator, Sandbox
from cascade.records import Issue, Patch, Scope, Task, Verdict
from cascade.testing import git, make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.diff_scope import DiffScopeEvaluator
from evaluators.mypy_gate import MypyEvaluator
from evaluators.pytest_gate import PytestEvaluator
from evaluators.ruff_gate import RuffEvaluator
from sandboxes.local_sandbox import LocalSandbox

CALC = "def add(a, b):\n    return a - b\n"
FIXED = CALC.replace("a - b", "a + b")
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n"
PYPROJECT = '[project]\nname = "calc"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
TARGET = "tests/test_calc.py::test_add"
LABEL = "allow-test-changes"  # the workflow that lets a patch change tests: judged as the base

# A plugin that reports every test as passed.
EVIL_PLUGIN = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {"pyproject.toml": PYPROJECT, "calc/__init__.py": CALC, "tests/test_calc.py": TESTS}
    return make_repo(tmp_path / "repo", files)


def _task(
    repo: Path,
    *,
    scope: Scope | None = None,
    labels: tuple[str, ...] = (),
    hidden: Mapping[str, str] | None = None,
    hidden_tests: tuple[str, ...] = (),
) -> Task:
    issue = Issue(
        id="A-1",
        title="add subtracts",
        tests=(TARGET,),
        scope=scope or Scope(),
        labels=labels,
        hidden_files=dict(hidden or {}),
        hidden_tests=hidden_tests,
    )
    commit = git(repo, "rev-parse", "HEAD").strip()
    return Task(issue=issue, repo=str(repo), base_commit=commit)


async def _patched(box: Sandbox, files: Mapping[str, str | None]) -> Patch:
    await box.write_files({p: None if t is None else t.encode() for p, t in files.items()})
    return await canonical_patch(box)


async def _judge(
    opener: Any,
    repo: Path,
    evaluators: Sequence[Evaluator],
    files: Mapping[str, str | None],
    tasks: Sequence[Task],
) -> list[list[Verdict]]:
    """One sandbox: baselines on the clean tree, the patch, then each task's verdicts."""
    box = await opener(repo, tasks[0].base_commit)
    try:
        gate = Gate(list(evaluators))
        bases = [await gate.baseline(box, task) for task in tasks]
        patch = await _patched(box, files)
        return [await gate.run(box, t, patch, b) for t, b in zip(tasks, bases, strict=True)]
    finally:
        await box.close()


def _verified(verdicts: Sequence[Verdict]) -> bool:
    """Every stage passed and the target test, failing at the base commit, passes."""
    tests = {t: o for v in verdicts for t, o in v.tests.items()}
    return bool(verdicts) and all(v.passed for v in verdicts) and tests.get(TARGET) == "passed"


def _failed(verdicts: Sequence[Verdict]) -> dict[str, set[str]]:
    return {v.evaluator: {f.rule for f in v.findings} for v in verdicts if not v.passed}


# -- 4: the report is rewritten after the tests ran ----------------------------------------------

REWRITE_REPORT = (
    """\
import atexit
import pathlib
import re
import sys


def _hide_failures():
    reports = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--junitxml=")]
    reports += [str(p) for p in pathlib.Path(".git").glob("*.xml")]
    for name in reports:
        path = pathlib.Path(name)
        if path.exists():
            text = re.sub(r"<failure.*?</failure>", "", path.read_text(), flags=re.S)
            path.write_text(text.replace('failures="1"', 'failures="0"'))


atexit.register(_hide_failures)


"""
    + CALC
)


@pytest.mark.anyio
async def test_an_atexit_hook_cannot_rewrite_the_report(repo: Path, opener: Any) -> None:
    # Only the package may change, and only the package does.
    task = _task(repo, scope=Scope(allow=("calc/**",)))
    evaluators = [DiffScopeEvaluator(), PytestEvaluator()]
    files = {"calc/__init__.py": REWRITE_REPORT}
    [verdicts] = await _judge(opener, repo, evaluators, files, [task])
    assert not _verified(verdicts)
    assert _failed(verdicts) == {"pytest": {"target"}}
    assert f"FAILED {TARGET}" in summarize(verdicts, 10_000)


# -- 5: a plugin that marks every test passed ----------------------------------------------------

PLUGIN_ROUTES: dict[str, dict[str, str]] = {
    "addopts in pyproject.toml": {
        "pyproject.toml": PYPROJECT + 'addopts = "-p evil_plugin"\n',
        "evil_plugin.py": EVIL_PLUGIN,
    },
    "a new pytest.ini": {
        "pytest.ini": "[pytest]\naddopts = -p evil_plugin\n",
        "evil_plugin.py": EVIL_PLUGIN,
    },
    "pytest_plugins in a test module": {
        "tests/test_calc.py": 'pytest_plugins = ["evil_plugin"]\n' + TESTS,
        "evil_plugin.py": EVIL_PLUGIN,
    },
    "a dist-info entry point": {
        "evil-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
        "evil-1.0.dist-info/entry_points.txt": "[pytest11]\nevil = evil_plugin\n",
        "evil_plugin.py": EVIL_PLUGIN,
    },
}


@pytest.mark.anyio
@pytest.mark.parametrize("route", list(PLUGIN_ROUTES))
async def test_a_plugin_from_the_patch_never_judges(repo: Path, opener: Any, route: str) -> None:
    plain, allowed = _task(repo), _task(repo, labels=(LABEL,))
    evaluators = [DiffScopeEvaluator(), PytestEvaluator()]
    scoped, judged = await _judge(opener, repo, evaluators, PLUGIN_ROUTES[route], [plain, allowed])
    # Refused before anything runs (a test module's `pytest_plugins` line is also the
    # test-weakening check's to refuse, and a path gets one finding)...
    rules = _failed(scoped)
    either = {"test_weakened"} if "test module" in route else set()
    assert list(rules) == ["diff_scope"] and rules["diff_scope"] <= {"test_infrastructure", *either}
    assert "test_infrastructure" not in summarize(scoped, 10_000)  # words, not rule names
    # ...and where the workflow allows test changes, judged with the base's configuration.
    assert not _verified(judged)
    assert "pytest" in _failed(judged)


# -- 6: a test package's __init__ that patches the code under test ------------------------------

MONKEYPATCH_INIT = "import calc\n\ncalc.add = lambda a, b: a + b\n"


@pytest.mark.anyio
async def test_a_new_test_package_init_never_judges(repo: Path, opener: Any) -> None:
    plain, allowed = _task(repo), _task(repo, labels=(LABEL,))
    evaluators = [DiffScopeEvaluator(), PytestEvaluator()]
    files = {"tests/__init__.py": MONKEYPATCH_INIT}
    scoped, judged = await _judge(opener, repo, evaluators, files, [plain, allowed])
    assert _failed(scoped) == {"diff_scope": {"test_infrastructure"}}
    assert "tests/__init__.py" in summarize(scoped, 10_000)
    assert not _verified(judged)
    assert _failed(judged) == {"pytest": {"target"}}


# -- 10: rewrite a test, re-execute pytest, restore the test at exit -----------------------------

# The easy test puts the original back: at exit (the finding's words), or as soon as it is
# imported, so that the tree is whole again before the run even ends.
RESTORES = {
    "at exit": "import atexit, os, pathlib\n\n"
    "atexit.register(lambda: pathlib.Path(__file__).write_text(os.environ['CASCADE_KEEP']))\n",
    "at import": "import os, pathlib\n\n"
    "pathlib.Path(__file__).write_text(os.environ['CASCADE_KEEP'])\n",
}
REEXEC = """\
import os
import pathlib
import sys

_TEST = pathlib.Path("tests/test_calc.py")
if "CASCADE_KEEP" not in os.environ:
    os.environ["CASCADE_KEEP"] = _TEST.read_text()
    _TEST.write_text({easy!r})
    sys.stdout.flush()
    sys.stderr.flush()
    with open("/proc/self/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\\0")[:-1]]
    os.execv(sys.executable, argv)


"""


@pytest.mark.anyio
@pytest.mark.parametrize("restore", list(RESTORES))
async def test_rewriting_a_test_during_the_run_is_seen(
    repo: Path, opener: Any, restore: str
) -> None:
    task = _task(repo, scope=Scope(allow=("calc/**",)))
    evaluators = [DiffScopeEvaluator(), PytestEvaluator()]
    easy = RESTORES[restore] + "\n\ndef test_add():\n    assert True\n"
    files = {"calc/__init__.py": REEXEC.format(easy=easy) + CALC}
    [verdicts] = await _judge(opener, repo, evaluators, files, [task])
    assert not _verified(verdicts)
    pytest_verdict = next(v for v in verdicts if v.evaluator == "pytest")
    assert not pytest_verdict.passed
    changed = [f.path for v in verdicts for f in v.findings if f.rule == "evaluator_tampered"]
    assert "tests/test_calc.py" in changed


# -- 11: lint and type configuration that silences the new findings ------------------------------

TYPE_ERROR = '\n\nLIMIT: int = "ten"\n'
LINT_ERROR = '\n\nDEBUG = __name__ is "calc"\n'  # F632: blocks even where ruff is not configured

SILENCERS: dict[str, tuple[dict[str, str], set[str]]] = {
    "ruff.toml": (
        {"ruff.toml": 'exclude = ["calc"]\n', "calc/__init__.py": FIXED + LINT_ERROR},
        {"ruff"},
    ),
    "mypy.ini": (
        {"mypy.ini": "[mypy]\nignore_errors = True\n", "calc/__init__.py": FIXED + TYPE_ERROR},
        {"mypy"},
    ),
    # Both tools' tables in one file: ruff and mypy (one stage, concurrently) take turns at it.
    "pyproject.toml": (
        {
            "pyproject.toml": PYPROJECT + '\n[tool.ruff]\nexclude = ["calc"]\n\n'
            "[tool.mypy]\nignore_errors = true\n",
            "calc/__init__.py": FIXED + LINT_ERROR + TYPE_ERROR,
        },
        {"ruff", "mypy"},
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("config", list(SILENCERS))
async def test_new_tool_configuration_does_not_silence_findings(repo: Path, config: str) -> None:
    files, tools = SILENCERS[config]
    plain, allowed = _task(repo), _task(repo, labels=(LABEL,))
    evaluators = [DiffScopeEvaluator(), RuffEvaluator(), MypyEvaluator()]
    scoped, judged = await _judge(LocalSandbox.open, repo, evaluators, files, [plain, allowed])
    assert _failed(scoped) == {"diff_scope": {"test_infrastructure"}}
    assert config in summarize(scoped, 10_000)
    # Judged with the base's configuration, and the patch's own put back (no tampering seen).
    assert set(_failed(judged)) == tools


# -- 12: the patch reads a hidden test and raises its asserts ------------------------------------

HIDDEN_PATH = "tests/test_withheld.py"
HIDDEN_TEST = f"{HIDDEN_PATH}::test_large_sum"
HIDDEN = "from calc import add\n\n\ndef test_large_sum():\n    assert add(1000, 11345) == 12345\n"
READS_TESTS = """\
import pathlib


def add(a, b):
    seen = [
        p.read_text() for p in pathlib.Path("tests").glob("test_*.py") if p.name != "test_calc.py"
    ]
    if seen:
        raise ValueError("".join(seen))
    return a + b
"""


@pytest.mark.anyio
async def test_hidden_tests_never_speak(repo: Path, opener: Any) -> None:
    task = _task(repo, hidden={HIDDEN_PATH: HIDDEN}, hidden_tests=(HIDDEN_TEST,))
    evaluators = [DiffScopeEvaluator(), PytestEvaluator()]
    [verdicts] = await _judge(opener, repo, evaluators, {"calc/__init__.py": READS_TESTS}, [task])
    assert not _verified(verdicts)
    said = summarize(verdicts, 100_000) + repr([v.findings for v in verdicts])
    for secret in ("12345", "11345", "large_sum", "withheld"):
        assert secret not in said
    assert "hidden test #1 failed: ValueError" in said


# -- 17: a noisy failing test at the base commit -------------------------------------------------

NOISY = "def test_noisy():\n    print('x' * 3_000_000)\n    assert False\n"


@pytest.mark.anyio
async def test_a_noisy_baseline_still_yields_its_report(tmp_path: Path, opener: Any) -> None:
    files = {"calc/__init__.py": CALC, "tests/test_calc.py": TESTS, "tests/test_noisy.py": NOISY}
    repo = make_repo(tmp_path / "noisy", files)
    task = _task(repo)
    patch = {"calc/__init__.py": FIXED}
    [verdicts] = await _judge(opener, repo, [PytestEvaluator()], patch, [task])
    assert _verified(verdicts), summarize(verdicts, 10_000)


# -- a new test module that "fixes" the code at import ---------------------------------------------

FIXES_AT_IMPORT = "import calc\n\ncalc.add = lambda a, b: a + b\n\n\ndef test_helper():\n    pass\n"


@pytest.mark.anyio
async def test_a_new_test_module_cannot_fix_the_code_for_the_target(
    repo: Path, opener: Any
) -> None:
    # The fix lives in a new test module, not in the code: imported in the same pytest process
    # as the target test, it rebinds `calc.add` before the target runs. Nothing in the package
    # changed; the patch must not be verified.
    files = {"tests/test_zz_helper.py": FIXES_AT_IMPORT}
    task = _task(repo)
    (verdicts,) = await _judge(
        opener, repo, [DiffScopeEvaluator(), PytestEvaluator()], files, [task]
    )
    assert not _verified(verdicts), [(v.evaluator, v.passed, v.tests) for v in verdicts]


MUL = "\n\ndef mul(a, b):\n    return a * b\n"
MUL_TEST = "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
HIDES_A_REGRESSION = (
    "import calc\n\ncalc.mul = lambda a, b: a * b\n\n\ndef test_helper():\n    pass\n"
)


@pytest.mark.anyio
async def test_a_new_test_module_cannot_hide_a_regression(tmp_path: Path, opener: Any) -> None:
    # The patch fixes `add`, breaks `mul`, and adds a test module that rebinds `mul` at import:
    # in one pytest process with the suite, the broken `mul` is never seen. The patch's own new
    # test modules stay out of the regression run.
    files = {
        "pyproject.toml": PYPROJECT,
        "calc/__init__.py": CALC + MUL,
        "tests/test_calc.py": TESTS,
        "tests/test_mul.py": MUL_TEST,
    }
    repo = make_repo(tmp_path / "repo", files)
    broken = FIXED + MUL.replace("a * b", "a + b")
    patch = {"calc/__init__.py": broken, "tests/test_aa_helper.py": HIDES_A_REGRESSION}
    task = _task(repo)
    (verdicts,) = await _judge(
        opener, repo, [DiffScopeEvaluator(), PytestEvaluator()], patch, [task]
    )
    assert not _verified(verdicts)
    assert _failed(verdicts) == {"pytest": {"regression"}}


# -- review: what the tests read, and what they import, is the base's ---------------------------

GOLDEN = "[[2, 2, 4], [1, 2, 3]]\n"
GOLDEN_TEST = (
    "import json\nimport pathlib\n\nfrom calc import add\n\n"
    "CASES = json.loads((pathlib.Path(__file__).parent / 'golden' / 'cases.json').read_text())\n"
    "\n\ndef test_add():\n    for a, b, want in CASES:\n        assert add(a, b) == want\n"
)
# Expected values rewritten to what the broken code gives: no check looks at a data file.
CHEAT_GOLDEN = "[[2, 2, 0], [1, 2, -1]]\n"
SHADOW = "def add(a, b):\n    return a + b\n"  # tests/calc.py: imported before the package


@pytest.mark.anyio
async def test_the_tests_data_files_are_the_bases(tmp_path: Path, opener: Any) -> None:
    files = {
        "pyproject.toml": PYPROJECT,
        "calc/__init__.py": CALC,
        "tests/test_calc.py": GOLDEN_TEST,
        "tests/golden/cases.json": GOLDEN,
    }
    repo = make_repo(tmp_path / "repo", files)
    patch = {"tests/golden/cases.json": CHEAT_GOLDEN}
    gate = [DiffScopeEvaluator(), PytestEvaluator()]
    (verdicts,) = await _judge(opener, repo, gate, patch, [_task(repo)])
    assert not _verified(verdicts)
    assert _failed(verdicts) == {"pytest": {"target"}}


@pytest.mark.anyio
async def test_a_module_in_the_tests_cannot_stand_in_for_the_code(repo: Path, opener: Any) -> None:
    # pytest puts tests/ on sys.path first (rootdir-relative imports): `from calc import add` in
    # the test would load tests/calc.py, not the package. The patch only adds that file.
    gate = [DiffScopeEvaluator(), PytestEvaluator()]
    (verdicts,) = await _judge(opener, repo, gate, {"tests/calc.py": SHADOW}, [_task(repo)])
    assert not _verified(verdicts)
    assert _failed(verdicts) == {"pytest": {"target"}}


# An AST check reads statements; code can hide in a decorator of a new helper. The appended
# helper rebinds `mul` for the tests of its module at import: judged with the base's version of
# the module, the regression shows whatever the AST check makes of it.
DECORATED = (
    "\n\n@(lambda f: globals().__setitem__('mul', lambda a, b: a * b) or f)\n"
    "def _helper():\n    pass\n"
)


@pytest.mark.anyio
async def test_code_hidden_in_an_existing_test_module_never_runs(
    tmp_path: Path, opener: Any
) -> None:
    files = {
        "pyproject.toml": PYPROJECT,
        "calc/__init__.py": CALC + MUL,
        "tests/test_calc.py": TESTS,
        "tests/test_mul.py": MUL_TEST,
    }
    repo = make_repo(tmp_path / "repo", files)
    broken = FIXED + MUL.replace("a * b", "a + b")
    patch = {"calc/__init__.py": broken, "tests/test_mul.py": MUL_TEST + DECORATED}
    gate = [PytestEvaluator()]  # the AST check aside: the run alone must not be fooled
    (verdicts,) = await _judge(opener, repo, gate, patch, [_task(repo)])
    assert not _verified(verdicts)
    assert _failed(verdicts) == {"pytest": {"regression"}}


# An issue (or a hidden test from GitHub) may name a test file: a test of it that failed at the
# base commit and is skipped now must not let the file "pass" because its other tests do.
TWO_TESTS = TESTS + "\n\ndef test_exported():\n    assert callable(add)\n"
SKIPS = "import unittest\n\n\ndef add(a, b):\n    raise unittest.SkipTest('later')\n"


@pytest.mark.anyio
async def test_a_skip_is_not_a_fix_of_a_test_named_by_its_file(tmp_path: Path, opener: Any) -> None:
    files = {"pyproject.toml": PYPROJECT, "calc/__init__.py": CALC, "tests/test_calc.py": TWO_TESTS}
    repo = make_repo(tmp_path / "repo", files)
    issue = _task(repo).issue.model_copy(update={"tests": ("tests/test_calc.py",)})
    task = _task(repo).model_copy(update={"issue": issue})
    (verdicts,) = await _judge(
        opener, repo, [PytestEvaluator()], {"calc/__init__.py": SKIPS}, [task]
    )
    assert _failed(verdicts) == {"pytest": {"target"}}
    assert "skipped now" in verdicts[-1].feedback


# A regression that shows only after another test ran (state the patch leaves behind) passes
# when re-run alone: it must be re-run as it ran, or it is excused as flaky.
STATEFUL = (
    "_calls = []\n\n\ndef add(a, b):\n    _calls.append(1)\n    return a + b\n\n\n"
    "def mul(a, b):\n    return a * b + (1 if _calls else 0)\n"
)


@pytest.mark.anyio
async def test_a_regression_after_another_test_is_not_flaky(tmp_path: Path, opener: Any) -> None:
    files = {
        "pyproject.toml": PYPROJECT,
        "calc/__init__.py": CALC + MUL,
        "tests/test_calc.py": TESTS,
        "tests/test_mul.py": MUL_TEST,
    }
    repo = make_repo(tmp_path / "repo", files)
    (verdicts,) = await _judge(
        opener, repo, [PytestEvaluator()], {"calc/__init__.py": STATEFUL}, [_task(repo)]
    )
    assert not _verified(verdicts)
    assert _failed(verdicts) == {"pytest": {"regression"}}


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["coverage.py", "coverage/__init__.py", "pytest.py"])
async def test_a_module_named_like_a_tool_is_refused(repo: Path, path: str) -> None:
    # `python -m coverage` puts the workspace first on the path: a root coverage.py would be the
    # coverage that measures the patch.
    box = await LocalSandbox.open(repo, git(repo, "rev-parse", "HEAD").strip())
    try:
        patch = await _patched(box, {path: "print('measured: everything')\n"})
        verdict = await DiffScopeEvaluator().evaluate(box, _task(repo), patch, {})
    finally:
        await box.close()
    assert {f.rule for f in verdict.findings} == {"test_infrastructure"}
