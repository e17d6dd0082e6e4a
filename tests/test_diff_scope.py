"""The scope gate on real diffs: a tiny repository in tmp_path, a DirectorySandbox over it, the
change made in the checkout and read back with `canonical_patch`. Paths git itself refuses to
track (`..`, `.GIT/`) are judged on a diff written the way git would write it."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from pathlib import Path

import pytest

from cascade.records import Issue, Patch, Scope, Task, Verdict
from cascade.testing import DirectorySandbox, make_repo
from cascade.testing import git as _git
from cascade.workspace.apply import canonical_patch
from evaluators.diff_scope import DiffScopeConfig, DiffScopeEvaluator
from evaluators.path_globs import match_glob

CALC = "def add(a, b):\n    return a - b\n"
TESTS = """\
import pytest

from calc import add


def test_add():
    assert add(2, 2) == 4


@pytest.mark.skip(reason="slow")
def test_slow():
    assert add(1, 1) == 2


def test_negative():
    assert add(-1, -1) == -2
"""
PYPROJECT = """\
[project]
name = "calc"

[tool.cascade]
ladder = []

[tool.cascade.gate]
evaluators = ["pytest"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""
FILES = {
    "calc/__init__.py": CALC,
    "tests/test_calc.py": TESTS,
    "tests/conftest.py": "import pytest\n",
    "tests/fixtures/data.json": '{"a": 1}\n',
    "pyproject.toml": PYPROJECT,
    "run.sh": "echo hi\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


@pytest.fixture
def box(repo: Path) -> DirectorySandbox:
    return DirectorySandbox(repo)


def _task(scope: Scope | None = None, labels: tuple[str, ...] = ()) -> Task:
    issue = Issue(id="S-1", title="fix add", scope=scope or Scope(), labels=labels)
    return Task(issue=issue, repo="/unused", base_commit="HEAD")


async def _judge(
    box: DirectorySandbox,
    files: dict[str, str | bytes | None],
    config: DiffScopeConfig | None = None,
    task: Task | None = None,
) -> Verdict:
    """Write (None: delete) files in the workspace, take the canonical patch, judge it."""
    writes = {p: d.encode() if isinstance(d, str) else d for p, d in files.items()}
    await box.write_files(writes)
    return await _evaluate(box, await canonical_patch(box), config, task)


async def _evaluate(
    box: DirectorySandbox,
    patch: Patch,
    config: DiffScopeConfig | None = None,
    task: Task | None = None,
) -> Verdict:
    evaluator = DiffScopeEvaluator(config)
    task = task or _task()
    assert await evaluator.baseline(box, task) == {}
    return await evaluator.evaluate(box, task, patch, {})


def _rules(verdict: Verdict) -> set[tuple[str, str]]:
    return {(f.rule, f.path) for f in verdict.findings}


def _forged(path: str) -> Patch:
    """A new file at `path`, as `git diff` would print it if git tracked such a path."""
    diff = (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n"
        f"index {'0' * 40}..{'1' * 40}\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n"
    )
    return Patch(diff=diff, sha256=hashlib.sha256(diff.encode()).hexdigest(), files=(path,))


@pytest.mark.anyio
async def test_source_change_and_new_test_file_pass(box: DirectorySandbox) -> None:
    new_test = "from calc import add\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"
    files = {
        "calc/__init__.py": CALC.replace("a - b", "a + b"),
        "tests/test_zero.py": new_test,
        "docs/a b ä.md": "odd name\n",  # quoted by git in the diff header
    }
    verdict = await _judge(box, dict(files))
    assert verdict.passed, verdict.feedback
    assert verdict.evaluator == "diff_scope" and verdict.findings == () and verdict.feedback == ""


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("../outside.py", "path_parent"),
        ("calc/../../outside.py", "path_parent"),
        ("calc\\..\\..\\outside.py", "path_parent"),
        ("/etc/cron.d/job", "path_absolute"),
        ("C:/Windows/evil.py", "path_drive"),
        ("c:evil.py", "path_drive"),
        (".git/hooks/pre-commit", "git_dir"),
        (".GIT/config", "git_dir"),
        ("vendor/.Git/hooks/post-checkout", "git_dir"),
        (".git./config", "git_dir"),
        ("GIT~1/config", "git_dir"),
        ("sub/.GitModules", "gitmodules"),
    ],
)
async def test_paths_outside_the_repo_are_refused(
    box: DirectorySandbox, path: str, rule: str
) -> None:
    verdict = await _evaluate(box, _forged(path))
    assert not verdict.passed
    assert _rules(verdict) == {(rule, path)}
    assert path in verdict.feedback


@pytest.mark.anyio
async def test_gitmodules_from_a_real_diff(box: DirectorySandbox) -> None:
    modules = '[submodule "x"]\n\tpath = x\n\turl = https://example.invalid/x\n'
    verdict = await _judge(box, {".gitmodules": modules})
    assert _rules(verdict) == {("gitmodules", ".gitmodules")}


@pytest.mark.anyio
async def test_symlink_is_refused(box: DirectorySandbox) -> None:
    os.symlink("../../../etc/passwd", box.workdir / "calc" / "passwd")
    verdict = await _judge(box, {})
    assert _rules(verdict) == {("symlink", "calc/passwd")}


@pytest.mark.anyio
async def test_symlink_replacing_a_file_is_refused(box: DirectorySandbox) -> None:
    (box.workdir / "run.sh").unlink()
    os.symlink("calc/__init__.py", box.workdir / "run.sh")
    verdict = await _judge(box, {})
    assert _rules(verdict) == {("symlink", "run.sh")}


@pytest.mark.anyio
async def test_gitlink_is_refused(box: DirectorySandbox) -> None:
    nested = box.workdir / "vendored"
    nested.mkdir()
    _git(nested, "init", "-q")
    _git(nested, "commit", "-q", "--allow-empty", "-m", "inner")
    verdict = await _judge(box, {})
    assert _rules(verdict) == {("gitlink", "vendored")}


@pytest.mark.anyio
async def test_mode_change_is_refused(box: DirectorySandbox) -> None:
    (box.workdir / "run.sh").chmod(0o755)
    verdict = await _judge(box, {})
    assert _rules(verdict) == {("mode_change", "run.sh")}
    assert "100644 -> 100755" in verdict.feedback


@pytest.mark.anyio
async def test_new_executable_file_is_refused(box: DirectorySandbox) -> None:
    (box.workdir / "tool.sh").write_text("rm -rf /\n")
    (box.workdir / "tool.sh").chmod(0o755)
    verdict = await _judge(box, {})
    assert _rules(verdict) == {("mode_change", "tool.sh")}


@pytest.mark.anyio
async def test_binary_file_is_refused(box: DirectorySandbox) -> None:
    verdict = await _judge(box, {"calc/blob.bin": b"\x00\x01\x02binary\x00"})
    assert _rules(verdict) == {("binary", "calc/blob.bin")}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        ".github/workflows/ci.yml",
        ".gitlab-ci.yml",
        ".circleci/config.yml",
        "Jenkinsfile",
        "azure-pipelines.yml",
        "poetry.lock",
        "uv.lock",
        "web/package-lock.json",  # lock files are denied at any depth
        "Cargo.lock",
        "cascade.toml",
        ".cascade/issues/7.md",
    ],
)
async def test_default_denies(box: DirectorySandbox, path: str) -> None:
    verdict = await _judge(box, {path: "x\n"})
    assert _rules(verdict) == {("denied_path", path)}
    # Turning the defaults off lets the same patch through.
    await box.reset()
    verdict = await _judge(box, {path: "x\n"}, DiffScopeConfig(default_deny=False))
    assert verdict.passed, verdict.feedback


@pytest.mark.anyio
async def test_cascade_table_in_pyproject_is_denied(box: DirectorySandbox) -> None:
    other = PYPROJECT.replace('name = "calc"', 'name = "calc"\nversion = "1.0"')
    assert (await _judge(box, {"pyproject.toml": other})).passed
    await box.reset()
    gutted = PYPROJECT.replace('evaluators = ["pytest"]', "evaluators = []")
    verdict = await _judge(box, {"pyproject.toml": gutted})
    assert _rules(verdict) == {("denied_path", "pyproject.toml")}
    assert "[tool.cascade]" in verdict.feedback
    await box.reset()
    # Removing the table entirely counts too, and so does deleting the file.
    verdict = await _judge(box, {"pyproject.toml": PYPROJECT.partition("[tool.cascade]")[0]})
    assert _rules(verdict) == {("denied_path", "pyproject.toml")}
    await box.reset()
    verdict = await _judge(box, {"pyproject.toml": None})
    assert _rules(verdict) == {("denied_path", "pyproject.toml")}


@pytest.mark.anyio
async def test_allow_and_deny_from_config_and_issue(box: DirectorySandbox) -> None:
    fix = CALC.replace("a - b", "a + b")
    files: dict[str, str | bytes | None] = {"calc/__init__.py": fix, "docs/notes.md": "n\n"}
    # The issue narrows what may change.
    verdict = await _judge(box, dict(files), task=_task(Scope(allow=("calc/**",))))
    assert _rules(verdict) == {("outside_allow", "docs/notes.md")}
    assert "`calc/**`" in verdict.feedback
    # Config and issue allow lists both apply: a path must match each.
    config = DiffScopeConfig(allow=("calc/**", "docs/**"))
    task = _task(Scope(allow=("calc/*.py",)))
    assert _rules(await _evaluate(box, await canonical_patch(box), config, task)) == {
        ("outside_allow", "docs/notes.md")
    }
    # Deny wins over allow, from config or from the issue.
    task = _task(Scope(allow=("**",), deny=("docs/**",)))
    verdict = await _evaluate(box, await canonical_patch(box), None, task)
    assert _rules(verdict) == {("denied_path", "docs/notes.md")}
    config = DiffScopeConfig(deny=("calc/__init__.py",))
    verdict = await _evaluate(box, await canonical_patch(box), config)
    assert _rules(verdict) == {("denied_path", "calc/__init__.py")}


@pytest.mark.anyio
async def test_a_named_allow_lifts_a_default_deny_but_a_catch_all_does_not(
    box: DirectorySandbox,
) -> None:
    await box.write_files({".github/workflows/ci.yml": b"on: push\n"})
    patch = await canonical_patch(box)
    named = _task(Scope(allow=(".github/workflows/*.yml",)))
    assert (await _evaluate(box, patch, task=named)).passed
    catch_all = _task(Scope(allow=("**",)))
    verdict = await _evaluate(box, patch, task=catch_all)
    assert _rules(verdict) == {("denied_path", ".github/workflows/ci.yml")}


@pytest.mark.anyio
async def test_max_files_and_max_changed_lines(box: DirectorySandbox) -> None:
    files: dict[str, str | bytes | None] = {
        f"calc/m{i}.py": "".join(f"x{j} = {j}\n" for j in range(4)) for i in range(3)
    }
    verdict = await _judge(box, files, DiffScopeConfig(max_files=2, max_changed_lines=11))
    assert _rules(verdict) == {("too_many_files", ""), ("too_many_lines", "")}
    assert "changes 3 files; at most 2" in verdict.feedback
    assert "changes 12 lines; at most 11" in verdict.feedback
    within = DiffScopeConfig(max_files=3, max_changed_lines=12)
    assert (await _evaluate(box, await canonical_patch(box), within)).passed


@pytest.mark.anyio
async def test_deleting_a_test_file_is_refused(box: DirectorySandbox) -> None:
    verdict = await _judge(box, {"tests/test_calc.py": None})
    assert _rules(verdict) == {("test_deleted", "tests/test_calc.py")}
    assert "leave existing tests" in verdict.feedback


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ("def test_add():\n", "@pytest.mark.xfail\ndef test_add():\n", "test_skipped"),
        ("def test_add():\n", "@pytest.mark.skipif(True, reason='x')\ndef test_add():\n",
         "test_skipped"),
        ("def test_add():\n", "def test_add():\n    pytest.skip('later')\n", "test_skipped"),
        ("    assert add(2, 2) == 4\n", "    assert add(2, 2) == 0\n", "test_weakened"),
        ("    assert add(2, 2) == 4\n", "    add(2, 2)\n", "test_weakened"),
        ("def test_negative():\n", "def _test_negative():\n", "test_weakened"),
    ],
)  # fmt: skip
async def test_weakening_an_existing_test_is_refused(
    box: DirectorySandbox, old: str, new: str, rule: str
) -> None:
    assert old in TESTS
    verdict = await _judge(box, {"tests/test_calc.py": TESTS.replace(old, new, 1)})
    assert _rules(verdict) == {(rule, "tests/test_calc.py")}
    # The issue (by label) or the config can allow it.
    allowed = _task(labels=("allow-test-changes",))
    assert (await _evaluate(box, await canonical_patch(box), task=allowed)).passed
    config = DiffScopeConfig(allow_test_changes=True)
    assert (await _evaluate(box, await canonical_patch(box), config)).passed


@pytest.mark.anyio
async def test_strengthening_reformatting_or_moving_tests_is_fine(box: DirectorySandbox) -> None:
    slow = '@pytest.mark.skip(reason="slow")\ndef test_slow():\n    assert add(1, 1) == 2\n\n\n'
    assert slow in TESTS
    stronger = (
        TESTS.replace(
            "assert add(2, 2) == 4", "assert add(2,  2) == 4\n    assert add(0, 0) == 0"
        ).replace(slow, "")  # moved, skip and all, to the end: no new skip, no lost assert
        + "\n\ndef test_more():\n    assert add(1, 2) == 3\n\n\n"
        + slow
    )
    verdict = await _judge(box, {"tests/test_calc.py": stronger, "tests/test_new.py": "x = 1\n"})
    assert verdict.passed, verdict.feedback


@pytest.mark.anyio
async def test_skip_in_a_new_test_file_is_refused(box: DirectorySandbox) -> None:
    source = "import pytest\n\npytestmark = pytest.mark.skip\n\n\ndef test_x():\n    assert 1\n"
    verdict = await _judge(box, {"calc/feature_test.py": source})
    assert _rules(verdict) == {("test_skipped", "calc/feature_test.py")}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path", ["tests/conftest.py", "conftest.py", "calc/sub/conftest.py", "tests/fixtures/data.json"]
)
async def test_test_scaffolding_is_protected(box: DirectorySandbox, path: str) -> None:
    verdict = await _judge(box, {path: "changed = True\n"})
    assert _rules(verdict) == {("protected_path", path)}
    config = DiffScopeConfig(allow_test_changes=True)
    assert (await _evaluate(box, await canonical_patch(box), config)).passed


@pytest.mark.anyio
async def test_diff_that_disagrees_with_its_file_list_is_refused(box: DirectorySandbox) -> None:
    await box.write_files({"calc/__init__.py": CALC.replace("-", "+").encode()})
    real = await canonical_patch(box)
    forged = real.model_copy(update={"files": ("calc/__init__.py", "tests/test_calc.py")})
    verdict = await _evaluate(box, forged)
    assert [f.rule for f in verdict.findings] == ["malformed_diff"]
    prose = real.model_copy(update={"diff": "Here is my fix: add a + b\n"})
    verdict = await _evaluate(box, prose)
    assert [f.rule for f in verdict.findings] == ["malformed_diff"]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/pkg/a.py", False),  # `*` stays within one directory
        ("src/**/*.py", "src/a.py", True),  # `**/` is zero or more directories
        ("src/**/*.py", "src/p/q/a.py", True),
        ("**/conftest.py", "conftest.py", True),
        ("**/conftest.py", "a/b/conftest.py", True),
        ("**", "any/path/at/all", True),
        (".github/**", ".github/workflows/ci.yml", True),
        (".github/**", "x/.github/ci.yml", False),  # anchored at the repo root
        ("docs/", "docs/a/b.md", True),
        ("*.lock", "poetry.lock", True),
        ("*.lock", "web/poetry.lock", False),
        ("test_?.py", "test_a.py", True),
        ("test_?.py", "test_/.py", False),
        ("data/[ab].json", "data/b.json", True),
        ("data/[!ab].json", "data/c.json", True),
        ("data/[!ab].json", "data/a.json", False),
        ("a+b(c).txt", "a+b(c).txt", True),  # regex characters are literal
        ("src/*", "src/", True),
    ],
)
def test_glob_semantics(pattern: str, path: str, matches: bool) -> None:
    assert match_glob(path, pattern) is matches


def test_glob_star_differs_from_fnmatch() -> None:
    # The reason for our own matcher: fnmatch would let `src/*.py` reach into subpackages.
    assert fnmatch.fnmatchcase("src/pkg/a.py", "src/*.py")
    assert not match_glob("src/pkg/a.py", "src/*.py")


# Issue 14, findings 7-9: test edits are judged on the AST of the test file before and after.
REPORT_TESTS = """\
from calc import add


def test_total():
    lines = [add(1, 2)]
    assert lines == [
        3,
    ]
"""


@pytest.mark.anyio
async def test_return_before_the_asserts_of_each_test_is_refused(box: DirectorySandbox) -> None:
    # Finding 7: every assert is kept, but none of them runs any more.
    early = TESTS.replace("():\n", "():\n    return\n")
    assert early.count("    return\n") == 3
    verdict = await _judge(box, {"tests/test_calc.py": early})
    assert _rules(verdict) == {("test_weakened", "tests/test_calc.py")}
    assert len(verdict.findings) == 3
    assert "test_add: a `return` now comes before its original statements" in verdict.feedback
    assert "fix the code, not the test" in verdict.feedback
    allowed = _task(labels=("allow-test-changes",))
    assert (await _evaluate(box, await canonical_patch(box), task=allowed)).passed


@pytest.mark.anyio
async def test_redefining_a_test_further_down_is_refused(box: DirectorySandbox) -> None:
    # Finding 8: the later `def` replaces the original at import; only mypy's no-redef saw it.
    shadowed = TESTS + "\n\ndef test_add():  # type: ignore[no-redef]\n    pass\n"
    verdict = await _judge(box, {"tests/test_calc.py": shadowed})
    assert _rules(verdict) == {("test_weakened", "tests/test_calc.py")}
    assert "test_add: is defined again" in verdict.feedback
    await box.reset()
    verdict = await _judge(box, {"tests/test_calc.py": TESTS + "\ntest_negative = None\n"})
    assert _rules(verdict) == {("test_weakened", "tests/test_calc.py")}
    assert "test_negative: is" in verdict.feedback


@pytest.mark.anyio
async def test_editing_the_continuation_line_of_an_assert_is_refused(tmp_path: Path) -> None:
    # Finding 9: the line that starts the assert is untouched; its expression is not.
    base = {
        "calc/__init__.py": "def add(a, b):\n    return a + b\n",
        "tests/test_r.py": REPORT_TESTS,
    }
    box = DirectorySandbox(make_repo(tmp_path / "report", base))
    broken = "def add(a, b):\n    return a - b\n"
    hidden = REPORT_TESTS.replace("    ]\n", "    ] or lines\n")
    verdict = await _judge(box, {"calc/__init__.py": broken, "tests/test_r.py": hidden})
    assert _rules(verdict) == {("test_weakened", "tests/test_r.py")}
    assert "test_total: changes the assert" in verdict.feedback
    await box.reset()
    # Joining the assert onto one line is the same assert.
    joined = REPORT_TESTS.replace("[\n        3,\n    ]", "[3]")
    assert (await _judge(box, {"tests/test_r.py": joined})).passed
