"""The baseline-relative mypy gate, run for real: tiny repositories in tmp_path, a LocalSandbox,
and mypy inside it."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from cascade.errors import GateConfigError, InfraError
from cascade.records import Issue, Task, Verdict
from cascade.testing import make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.mypy_gate import ARTIFACT, PACKAGE_BASES, MypyConfig, MypyEvaluator
from sandboxes.local_sandbox import LocalSandbox
from tests.system_python import SystemPythonSandbox, python_without

CORE = """\
def add(a: int, b: int) -> int:
    return a + b


def broken() -> str:
    return 1
"""
USE = "from calc.core import add\n\n\ndef total() -> int:\n    return add(1, 2)\n"
BASE_FILES = {"calc/__init__.py": "", "calc/core.py": CORE, "calc/use.py": USE}
TASK = Task(issue=Issue(id="M-1", title="types"), repo="/unused", base_commit="HEAD")
OLD_ERROR = ("calc/core.py", "return-value")


@pytest.fixture
def config() -> MypyConfig:
    return MypyConfig()


class _Repo:
    """Opens LocalSandboxes on small repositories and closes them all at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.boxes: list[LocalSandbox] = []

    async def open(self, files: Mapping[str, str], cls: type[LocalSandbox] = LocalSandbox) -> Any:
        repo = make_repo(self.root / f"repo{len(self.boxes)}", files)
        box = await cls.open(repo, "HEAD")
        self.boxes.append(box)
        return box


@pytest.fixture
async def repos(tmp_path: Path) -> AsyncIterator[_Repo]:
    made = _Repo(tmp_path)
    try:
        yield made
    finally:
        for box in made.boxes:
            await box.close()


async def _gate(
    box: LocalSandbox, config: MypyConfig, files: Mapping[str, str | None]
) -> tuple[Verdict, dict[str, Any]]:
    evaluator = MypyEvaluator(config)
    base = await evaluator.baseline(box, TASK)
    await box.write_files({p: None if t is None else t.encode() for p, t in files.items()})
    return await evaluator.evaluate(box, TASK, await canonical_patch(box), base), base


def _line(result: dict[str, Any]) -> int:
    line: int = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    return line


def _found(verdict: Verdict) -> list[tuple[str, str]]:
    return [(f.path, f.rule) for f in verdict.findings]


@pytest.mark.anyio
async def test_baseline_without_a_mypy_config(repos: _Repo, config: MypyConfig) -> None:
    box = await repos.open({**BASE_FILES, "scripts/tool.py": "import not_installed_pkg\n"})
    base = await MypyEvaluator(config).baseline(box, TASK)
    assert base["mode"] == "files" and base["flags"] == ["--ignore-missing-imports"]
    found = [(f["path"], f["line"], f["rule"]) for f in base["findings"]]
    assert found == [("calc/core.py", 6, "return-value")]  # the missing import is tolerated
    assert json.loads(json.dumps(base)) == base
    assert (await box.exec(["git", "status", "--porcelain"], timeout=30)).stdout == ""


@pytest.mark.anyio
async def test_new_type_error_fails_and_old_one_is_not_reported(
    repos: _Repo, config: MypyConfig
) -> None:
    box = await repos.open(BASE_FILES)
    patched = CORE + '\n\nLIMIT: int = "ten"\n'
    verdict, _ = await _gate(box, config, {"calc/core.py": patched})
    assert not verdict.passed
    assert [(f.path, f.line, f.rule) for f in verdict.findings] == [
        ("calc/core.py", 9, "assignment")
    ]
    assert (
        'calc/core.py:9: assignment Incompatible types in assignment (expression has type "str", '
        'variable has type "int")'
    ) in verdict.feedback
    assert "Incompatible return value" not in verdict.feedback
    results = json.loads(verdict.artifacts[ARTIFACT])["runs"][0]["results"]
    states = {(r["ruleId"], r["baselineState"], _line(r)) for r in results}
    assert states == {("return-value", "unchanged", 6), ("assignment", "new", 9)}
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "calc/core.py", "uriBaseId": "%SRCROOT%"}


@pytest.mark.anyio
async def test_a_second_error_with_an_old_message_is_new(repos: _Repo, config: MypyConfig) -> None:
    # Word for word the old error's message: counted, and the one on a written line is blamed.
    box = await repos.open(BASE_FILES)
    patched = CORE + "\n\ndef other() -> str:\n    return 2\n"
    verdict, _ = await _gate(box, config, {"calc/core.py": patched})
    assert [(f.line, f.rule) for f in verdict.findings] == [(10, "return-value")]


@pytest.mark.anyio
async def test_same_size_patch_in_the_same_second_is_not_judged_from_the_cache(
    repos: _Repo, config: MypyConfig
) -> None:
    # `int` -> `str` keeps the size; the mtime is pinned to the base file's, as when a patch
    # lands within the second of the baseline run. mypy must not reuse its cached result.
    box = await repos.open({**BASE_FILES, "calc/limits.py": "LIMIT: int = 10\n"})
    evaluator = MypyEvaluator(config)
    base = await evaluator.baseline(box, TASK)
    target = box.workdir / "calc" / "limits.py"
    before = target.stat()
    target.write_text("LIMIT: str = 10\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    verdict = await evaluator.evaluate(box, TASK, await canonical_patch(box), base)
    assert _found(verdict) == [("calc/limits.py", "assignment")]


@pytest.mark.anyio
async def test_old_errors_moved_down_are_tolerated(repos: _Repo, config: MypyConfig) -> None:
    # `already defined on line N` changes with the shift; the key drops that number. (With a
    # mypy config: without one, `no-redef` is not counted at all.)
    redefined = CORE + "\n\ndef add(a: int, b: int) -> int:\n    return a\n"
    box = await repos.open({**BASE_FILES, "calc/core.py": redefined, "mypy.ini": "[mypy]\n"})
    header = '"""Arithmetic."""\n\n# one\n# two\n'
    verdict, base = await _gate(box, config, {"calc/core.py": header + redefined})
    assert verdict.passed, verdict.feedback
    assert {f["rule"] for f in base["findings"]} == {"return-value", "no-redef"}
    results = json.loads(verdict.artifacts[ARTIFACT])["runs"][0]["results"]
    assert sorted(map(_line, results)) == [10, 13]


@pytest.mark.anyio
async def test_fixing_an_error_and_untyped_imports_are_fine(
    repos: _Repo, config: MypyConfig
) -> None:
    box = await repos.open(BASE_FILES)
    fixed = "import not_installed_pkg\n\n\n" + CORE.replace("return 1", 'return "1"')
    verdict, _ = await _gate(box, config, {"calc/core.py": fixed})
    assert verdict.passed, verdict.feedback


@pytest.mark.anyio
async def test_syntax_error_and_unchanged_files(repos: _Repo, config: MypyConfig) -> None:
    box = await repos.open(BASE_FILES)
    evaluator = MypyEvaluator(config)
    base = await evaluator.baseline(box, TASK)
    await box.write_files({"calc/core.py": CORE.replace("-> int:", "-> int").encode()})
    verdict = await evaluator.evaluate(box, TASK, await canonical_patch(box), base)
    assert not verdict.passed
    assert _found(verdict) == [("calc/core.py", "syntax")]
    await box.reset()
    # A change to a non-Python file runs nothing.
    await box.write_files({"README.md": b"hi\n"})
    verdict = await evaluator.evaluate(box, TASK, await canonical_patch(box), base)
    assert verdict.passed and verdict.artifacts == {}


@pytest.mark.anyio
async def test_repo_config_with_files_checks_the_whole_project(
    repos: _Repo, config: MypyConfig
) -> None:
    pyproject = '[tool.mypy]\nfiles = ["calc"]\n'
    box = await repos.open({**BASE_FILES, "pyproject.toml": pyproject})
    # A changed signature breaks a caller in a file the patch did not touch.
    changed = CORE.replace("def add(a: int, b: int) -> int:", "def add(a: str, b: str) -> str:")
    verdict, base = await _gate(box, config, {"calc/core.py": changed})
    assert base["mode"] == "config" and base["flags"] == []
    assert not verdict.passed
    assert ("calc/use.py", "return-value") in _found(verdict)
    await box.reset()
    # The repo's settings apply: without `ignore_missing_imports`, a missing module is an error.
    verdict, _ = await _gate(box, config, {"calc/core.py": "import not_installed_pkg\n" + CORE})
    assert _found(verdict) == [("calc/core.py", "import-not-found")]


@pytest.mark.anyio
async def test_repo_settings_apply_to_changed_files(repos: _Repo, config: MypyConfig) -> None:
    box = await repos.open({**BASE_FILES, "mypy.ini": "[mypy]\ndisallow_untyped_defs = True\n"})
    verdict, base = await _gate(box, config, {"calc/extra.py": "def f(x):\n    return x\n"})
    assert base["mode"] == "files" and base["flags"] == []
    assert _found(verdict) == [("calc/extra.py", "no-untyped-def")]


@pytest.mark.anyio
async def test_targets_from_the_gate_config(repos: _Repo) -> None:
    box = await repos.open({**BASE_FILES, "other/x.py": "y: int = 'no'\n"})
    config = MypyConfig(targets=("calc",))
    verdict, base = await _gate(box, config, {"calc/use.py": USE + "\nz: str = 1\n"})
    assert base["mode"] == "targets"
    assert {f["path"] for f in base["findings"]} == {"calc/core.py"}  # other/ is not a target
    assert _found(verdict) == [("calc/use.py", "assignment")]


@pytest.mark.anyio
async def test_a_patch_that_removes_a_target_fails(repos: _Repo) -> None:
    box = await repos.open(BASE_FILES)
    config = MypyConfig(targets=("calc/use.py",))
    verdict, _ = await _gate(box, config, {"calc/use.py": None})
    assert not verdict.passed
    assert _found(verdict) == [("", "mypy_failed")]
    assert "calc/use.py: error: Cannot read file" in verdict.feedback


@pytest.mark.anyio
async def test_a_missing_target_at_baseline_is_a_configuration_error(repos: _Repo) -> None:
    box = await repos.open(BASE_FILES)
    config = MypyConfig(targets=("nowhere.py",))
    with pytest.raises(GateConfigError) as caught:
        await MypyEvaluator(config).baseline(box, TASK)
    said = str(caught.value)
    assert said.startswith("mypy cannot check this repository as configured: fix `[gate.options")
    assert "`[gate.options.mypy] targets` (nowhere.py)" in said
    assert "nowhere.py: error: Cannot read file" in said and caught.value.exit_code == 2


@pytest.mark.anyio
async def test_duplicate_modules_and_unparsable_files_at_baseline(
    repos: _Repo, config: MypyConfig
) -> None:
    files = {
        **BASE_FILES,
        "docs/conftest.py": "a: int = 1\n",
        "examples/conftest.py": "a: int = 1\n",  # same module name without package bases
        "tests/fixtures/py2.py": 'print "hello"\n',  # not Python 3 at all
        "tests/fixtures/py2_too.py": "exec 'x = 1'\n",
    }
    box = await repos.open(files)
    # The patch also edits a file that stays unparsable: its syntax error is an old one.
    patch = {"calc/use.py": USE + "\nz: str = 1\n", "tests/fixtures/py2.py": 'print "bye"\n'}
    verdict, base = await _gate(box, config, patch)
    assert base["flags"] == ["--ignore-missing-imports", "--explicit-package-bases"]
    found = {(f["path"], f["rule"]) for f in base["findings"]}
    assert found == {
        ("tests/fixtures/py2.py", "syntax"),
        ("tests/fixtures/py2_too.py", "syntax"),
        OLD_ERROR,
    }
    assert _found(verdict) == [("calc/use.py", "assignment")]


@pytest.mark.anyio
async def test_new_modules_of_one_name_are_told_apart_by_their_paths(
    repos: _Repo, config: MypyConfig
) -> None:
    # No duplicate at baseline, so no `--explicit-package-bases`; the patch adds two.
    box = await repos.open(BASE_FILES)
    added = {"checks/a/conftest.py": "v: int = 1\n", "checks/b/conftest.py": "v: int = ''\n"}
    verdict, base = await _gate(box, config, added)
    assert PACKAGE_BASES not in base["flags"]
    assert _found(verdict) == [("checks/b/conftest.py", "assignment")]


@pytest.mark.anyio
async def test_a_mypy_package_in_the_repo_does_not_replace_mypy(
    repos: _Repo, config: MypyConfig
) -> None:
    box = await repos.open(BASE_FILES)
    files = {"mypy/__init__.py": "", "mypy/__main__.py": "", "calc/x.py": "v: int = ''\n"}
    verdict, _ = await _gate(box, config, files)
    assert _found(verdict) == [("calc/x.py", "assignment")]


@pytest.mark.anyio
async def test_missing_mypy_is_an_infrastructure_error(repos: _Repo, tmp_path: Path) -> None:
    bin_dir = python_without("mypy", tmp_path)
    box = await repos.open(BASE_FILES, SystemPythonSandbox)
    box.bin_dir = bin_dir
    with pytest.raises(InfraError, match="No module named mypy"):
        await MypyEvaluator().baseline(box, TASK)
