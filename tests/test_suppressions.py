"""The scope gate refuses a patch that switches a gate off with a suppression comment (`noqa`,
`ruff: noqa`, `type: ignore`, `mypy: ignore-errors`, `pyright: ignore`, `pragma: no cover`)
instead of fixing what the gate reports: on real diffs of a tiny repository, and end to end
through the real ruff gate on the local sandbox."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cascade.core.gate import Gate
from cascade.records import Issue, Patch, Task, Verdict
from cascade.testing import DirectorySandbox, git, make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.diff_scope import DiffScopeConfig, DiffScopeEvaluator
from evaluators.ruff_gate import RuffEvaluator
from sandboxes.local_sandbox import LocalSandbox

RULE = "suppression_added"
CALC = "import os\n\n\ndef add(a, b):\n    return a - b\n\n\ndef home():\n    return os.sep\n"
FIXED = CALC.replace("a - b", "a + b")
SUPPRESSED = "def sub(a, b):\n    return a - b  # noqa: E501\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n"
PYPROJECT = '[project]\nname = "calc"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
FILES = {
    "pyproject.toml": PYPROJECT,
    "calc/__init__.py": CALC,
    "calc/sub.py": SUPPRESSED,
    "tests/test_calc.py": TESTS,
}

# (the patched calc/__init__.py, the line the suppression is on)
AT_THE_END = {
    "noqa": "x = 1  # noqa",
    "NOQA": "x = 1  # NOQA",
    "no space": "x = 1  #noqa",
    "noqa with a code": "x = undefined  # noqa: F821",
    "noqa after a comment": "x = 1  # why not # noqa:F821,E501",
    "type ignore spaced": "x: int = ''  #  type:ignore",
    "type ignore with a code and a reason": "x: int = ''  # type: ignore[assignment]  # explain",
    "pyright": "x: int = ''  # pyright: ignore",
    "pragma no cover": "def never():  # pragma: no cover\n    return 1",
    "PRAGMA no branch": "if add(1, 1):  # PRAGMA: NO BRANCH\n    pass",
}
AT_THE_TOP = {
    "ruff noqa": "# ruff: noqa",
    "ruff noqa with a code": "# ruff: noqa: E501",
    "ruff noqa spaced": "#ruff : noqa",
    "flake8 noqa": "# flake8: noqa",
    "mypy ignore-errors": "# mypy: ignore-errors",
    "mypy disable-error-code": "# mypy: disable-error-code=assignment",
    "file-wide type ignore": "# type: ignore",
    "isort skip_file": "# isort: skip_file",
}
VARIANTS = {
    **{name: (f"{FIXED}\n\n{line}\n", FIXED.count("\n") + 3) for name, line in AT_THE_END.items()},
    **{name: (f"{line}\n{FIXED}", 1) for name, line in AT_THE_TOP.items()},
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


@pytest.fixture
def box(repo: Path) -> DirectorySandbox:
    return DirectorySandbox(repo)


def _task(repo: Path | str = "/unused", commit: str = "HEAD") -> Task:
    return Task(issue=Issue(id="Q-1", title="fix add"), repo=str(repo), base_commit=commit)


async def _judge(
    box: DirectorySandbox, files: dict[str, str | None], config: DiffScopeConfig | None = None
) -> Verdict:
    await box.write_files({p: None if t is None else t.encode() for p, t in files.items()})
    patch = await canonical_patch(box)
    return await DiffScopeEvaluator(config).evaluate(box, _task(), patch, {})


def _suppressions(verdict: Verdict) -> list[tuple[str, int]]:
    return [(f.path, f.line) for f in verdict.findings if f.rule == RULE]


@pytest.mark.anyio
@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_each_suppression_a_patch_adds_is_refused(
    box: DirectorySandbox, variant: str
) -> None:
    text, line = VARIANTS[variant]
    verdict = await _judge(box, {"calc/__init__.py": text})
    assert not verdict.passed
    assert _suppressions(verdict) == [("calc/__init__.py", line)], verdict.feedback
    assert f"calc/__init__.py:{line}: adds `" in verdict.feedback
    assert "instead of silencing it" in verdict.feedback


@pytest.mark.anyio
async def test_a_new_file_and_a_file_the_sandbox_lacks_are_judged(box: DirectorySandbox) -> None:
    verdict = await _judge(box, {"calc/extra.py": "x = 1\ny = 2  # type: ignore\n"})
    assert _suppressions(verdict) == [("calc/extra.py", 2)]
    # The workspace does not hold the patched file: the patch's lines are read alone.
    await box.write_files({"calc/extra.py": None})
    verdict = await DiffScopeEvaluator().evaluate(box, _task(), _forged("calc/gone.py"), {})
    assert _suppressions(verdict) == [("calc/gone.py", 1)]


@pytest.mark.anyio
async def test_text_no_tool_reads_as_a_suppression_is_not_one(box: DirectorySandbox) -> None:
    strings = (
        'TAG = "# noqa"\n'
        "IGNORE = '# type: ignore'  # a plain comment\n"
        'DOC = """\n# type: ignore\n# ruff: noqa\n# mypy: ignore-errors\n"""\n'
        "PLUGINS = 1  # mypy: reads inline config only from a comment that starts its line\n"
    )
    verdict = await _judge(box, {"calc/__init__.py": FIXED + strings})
    assert verdict.passed, verdict.feedback


@pytest.mark.anyio
async def test_coverage_pragma_in_a_string_still_counts(box: DirectorySandbox) -> None:
    # coverage excludes a line whose text matches its pragma, strings and all.
    text = FIXED + "\n\ndef never():\n    return '# pragma: no cover'\n"
    verdict = await _judge(box, {"calc/__init__.py": text})
    assert _suppressions(verdict) == [("calc/__init__.py", 13)]


@pytest.mark.anyio
async def test_a_suppression_already_on_an_edited_line_is_not_added(
    box: DirectorySandbox,
) -> None:
    edited = SUPPRESSED.replace("a - b", "b - a")  # the line is removed and written again
    verdict = await _judge(box, {"calc/sub.py": edited, "calc/__init__.py": FIXED})
    assert verdict.passed, verdict.feedback
    # Widened to every rule, it is a new suppression.
    verdict = await _judge(box, {"calc/sub.py": SUPPRESSED.replace("noqa: E501", "noqa")})
    assert _suppressions(verdict) == [("calc/sub.py", 2)]


@pytest.mark.anyio
async def test_test_files_are_left_to_the_test_rules(box: DirectorySandbox) -> None:
    verdict = await _judge(box, {"tests/test_calc.py": f"# ruff: noqa\n{TESTS}x = 1  # noqa\n"})
    assert verdict.passed, verdict.feedback


@pytest.mark.anyio
async def test_allow_suppressions_turns_the_rule_off(box: DirectorySandbox) -> None:
    text, _ = VARIANTS["ruff noqa"]
    config = DiffScopeConfig(allow_suppressions=True)
    verdict = await _judge(box, {"calc/__init__.py": text}, config)
    assert verdict.passed, verdict.feedback


def _forged(path: str) -> Patch:
    """A new file at `path` that the workspace does not hold."""
    diff = (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n"
        f"index {'0' * 40}..{'1' * 40}\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n"
        "+x = 1  # NoQA\n"
    )
    return Patch(diff=diff, sha256=hashlib.sha256(diff.encode()).hexdigest(), files=(path,))


UNDEFINED = "\n\ndef sub(a, b):\n    return a - c\n"


@pytest.mark.anyio
async def test_ruff_noqa_no_longer_hides_an_undefined_name(repo: Path) -> None:
    """The bypass: `ruff: noqa` on top of a file hides a new undefined name from the ruff gate.
    With the rule, diff_scope refuses it before ruff runs; without it, the gate lets it through."""
    commit = git(repo, "rev-parse", "HEAD").strip()
    task = _task(repo, commit)

    async def verdicts(config: DiffScopeConfig, text: str) -> dict[str, set[str]]:
        box = await LocalSandbox.open(repo, commit)
        try:
            gate = Gate([DiffScopeEvaluator(config), RuffEvaluator()])
            base = await gate.baseline(box, task)
            await box.write_files({"calc/__init__.py": text.encode()})
            judged = await gate.run(box, task, await canonical_patch(box), base)
            return {v.evaluator: {f.rule for f in v.findings} for v in judged if not v.passed}
        finally:
            await box.close()

    plain, silenced = FIXED + UNDEFINED, "# ruff: noqa\n" + FIXED + UNDEFINED
    assert await verdicts(DiffScopeConfig(), plain) == {"ruff": {"F821"}}
    assert await verdicts(DiffScopeConfig(), silenced) == {"diff_scope": {RULE}}
    assert await verdicts(DiffScopeConfig(allow_suppressions=True), silenced) == {}
