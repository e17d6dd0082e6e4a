"""The gate benchmark's task suite (benchmarks/tasks): its manifest as typed records, a check that
every task folder holds what the manifest promises, and a real git checkout of a task repository
with its issues and hidden tests laid out as the `files` issue source expects them.

    benchmarks/tasks/manifest.json          gate config, patch kinds, every task and expectation
    benchmarks/tasks/<repo>/repo/           the repository at its base commit
    benchmarks/tasks/<repo>/tasks/<ID>/     issue.md, hidden/<repo path>, correct.diff,
                                            wrong-<kind>.diff, cheat-<bypass>.diff
                                            or, for an issue that names no test (a reproduction
                                            task): issue.md, repro-*.diff, fix-*.diff
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from cascade.records import Issue, Patch

if TYPE_CHECKING:
    from cascade.protocols import Sandbox

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "benchmarks" / "tasks"
Kind = Literal[
    "correct",
    "breaks-other-test",
    "fails-hidden",
    "lint-error",
    "type-error",
    "edits-test",
    "denied-path",
    "uncovered",
    "cheating",  # looks right to plain tools run in the patched tree, by one of the bypasses below
]
WRONG_KINDS = tuple(k for k in get_args(Kind) if k != "correct")
# How a cheating patch fools a judge that runs in the patched tree: issue 14's bypasses, one
# patch each (manifest.json's `bypasses` says what each does).
Bypass = Literal[
    "plugin-addopts",
    "plugin-pytest-ini",
    "plugin-pytest-plugins",
    "plugin-dist-info",
    "test-package-init",
    "early-return",
    "redefinition",
    "neutered-assert",
    "forged-report",
    "transient-rewrite",
    "ruff-config",
    "mypy-config",
    "test-module-rebinds",
]
# A candidate reproduction test for an issue that names none, by what it does.
ReproKind = Literal[
    "good",  # fails at base on an assertion or an exception in the repository's code
    "missing-symbol",  # a feature request's test: fails importing the name the issue asks for
    "passes-at-base",
    "syntax-error",
    "name-error",
    "missing-fixture",
    "not-tests-only",
    "protected-path",
    "flaky",
    "breaks-other-tests",
    "wrong-name",  # a bug's test that fails importing a name the issue never asks for
]
ACCEPTED_REPROS = ("good", "missing-symbol")
REJECTED_REPROS = tuple(k for k in get_args(ReproKind) if k not in ACCEPTED_REPROS)
FixKind = Literal["correct", "comment-only", "whitespace", "noop-refactor", "stub"]
DO_NOTHING_FIXES = tuple(k for k in get_args(FixKind) if k != "correct")
# How the engine ends a fix: the gate rejected it; it passed, but no test that failed at the base
# commit passes with it; or it passed and such a test proves it.
FixOutcome = Literal["rejected", "unproven", "verified"]
PATCH_FILE = ".git/cascade-bench.patch"
GIT_IDENTITY = ("-c", "user.name=cascade-bench", "-c", "user.email=bench@localhost")
# Left behind by running a task repo's tools in place; never part of its base commit.
TOOL_CACHES = ("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache")


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expectation(Spec):
    """What the gate should say. `by` is the evaluator that should reject first and `rule` a
    rule among its findings; `requires` names an evaluator without which the expectation
    cannot be judged (a coverage evaluator with `min_diff_coverage` > 0 for `uncovered`)."""

    verdict: Literal["accept", "reject"]
    by: str = ""
    rule: str = ""
    requires: str = ""


class Checked(Spec):
    """The patch's premise as checked with plain pytest, ruff, mypy and coverage.py when the
    suite was built (independent of cascade's evaluators)."""

    targets_pass: bool
    hidden_pass: bool
    regressions: int = Field(ge=0)
    new_ruff: tuple[str, ...] = ()
    new_mypy: tuple[str, ...] = ()
    diff_coverage: float = Field(ge=0, le=1)  # of added executable lines, all tests run


class PatchSpec(Spec):
    file: str
    kind: Kind
    expect: Expectation
    note: str
    checked: Checked
    bypass: Bypass | None = None  # a cheating patch's, and only its

    @property
    def expected_file(self) -> str:
        if self.kind == "correct":
            return "correct.diff"
        return f"cheat-{self.bypass}.diff" if self.kind == "cheating" else f"wrong-{self.kind}.diff"


class TaskSpec(Spec):
    id: str
    type: Literal["bug", "feature"]
    targets: tuple[str, ...]
    hidden: tuple[str, ...]
    patches: tuple[PatchSpec, ...]

    @property
    def hidden_files(self) -> list[str]:
        return sorted({node.split("::", 1)[0] for node in self.hidden})


class ReproductionSpec(Spec):
    """A candidate reproduction test, judged by the reproduction evaluator at the base commit.
    A rejected one names the evaluator (`by`, "reproduction") and the finding `rule`."""

    file: str
    kind: ReproKind
    expect: Expectation
    note: str


class FixExpectation(Spec):
    """How the engine should end a fix: `alone`, with the task as its issue gives it (no test
    can prove anything); `with_reproduction`, with each accepted reproduction of the task."""

    alone: FixOutcome
    with_reproduction: FixOutcome


class FixSpec(Spec):
    """`uncovered`: no test of the repository runs the fix's new lines, so a gate with a coverage
    threshold rejects it alone (there `expect.alone` is "rejected", by coverage, instead)."""

    file: str
    kind: FixKind
    expect: FixExpectation
    note: str
    uncovered: bool = False


class ReproductionTaskSpec(Spec):
    """An issue that names no test: candidate reproductions, and fixes (the right one and some
    that change nothing) judged as the engine judges them, with and without a reproduction."""

    id: str
    type: Literal["bug", "feature"]
    reproductions: tuple[ReproductionSpec, ...]
    fixes: tuple[FixSpec, ...]


class RepoSpec(Spec):
    description: str
    mypy: str
    tasks: tuple[TaskSpec, ...]
    reproduction_tasks: tuple[ReproductionTaskSpec, ...] = ()


class GateSpec(Spec):
    evaluators: tuple[str, ...]
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Manifest(Spec):
    schema_version: Literal[1]
    gate: GateSpec
    kinds: dict[str, str]
    reproduction_kinds: dict[str, str] = Field(default_factory=dict)
    fix_kinds: dict[str, str] = Field(default_factory=dict)
    bypasses: dict[str, str] = Field(default_factory=dict)
    repos: dict[str, RepoSpec]

    def task_count(self) -> int:
        return sum(len(repo.tasks) for repo in self.repos.values())

    def reproductions(self) -> list[tuple[str, ReproductionTaskSpec, ReproductionSpec]]:
        """Every candidate reproduction as (repo, task, candidate)."""
        return [
            (name, task, spec)
            for name, repo in self.repos.items()
            for task in repo.reproduction_tasks
            for spec in task.reproductions
        ]


def load_manifest(root: Path = TASKS) -> Manifest:
    return Manifest.model_validate_json((root / "manifest.json").read_text(encoding="utf-8"))


def task_dir(root: Path, repo: str, task_id: str) -> Path:
    return root / repo / "tasks" / task_id


def structure_problems(manifest: Manifest, root: Path = TASKS) -> list[str]:
    """Everything that keeps the suite from being what the manifest says; [] when it is."""
    problems: list[str] = []
    for name, repo in manifest.repos.items():
        if not (root / name / "repo" / "pyproject.toml").is_file():
            problems.append(f"{name}: repo/pyproject.toml is missing")
        on_disk = {p.name for p in (root / name / "tasks").iterdir() if p.is_dir()}
        listed = {t.id for t in repo.tasks} | {t.id for t in repo.reproduction_tasks}
        problems += [
            f"{name}/{t}: a task folder the manifest does not list" for t in on_disk - listed
        ]
        hidden_owner: dict[str, str] = {}
        for task in repo.tasks:
            problems += _task_problems(root, name, task)
            for path in task.hidden_files:
                if path in hidden_owner:
                    problems.append(f"{task.id}: hidden file {path} is also {hidden_owner[path]}'s")
                hidden_owner[path] = task.id
        for case in repo.reproduction_tasks:
            problems += _reproduction_task_problems(root, name, case)
    return problems


def _task_problems(root: Path, repo: str, task: TaskSpec) -> list[str]:
    from cascade.errors import IssueError

    where = task_dir(root, repo, task.id)
    if not (where / "issue.md").is_file():
        return [f"{task.id}: issue.md is missing"]
    problems: list[str] = []
    try:
        issue = read_issue(where, task.id)
    except IssueError as exc:
        return [f"{task.id}: {exc}"]
    if issue.tests != task.targets or issue.hidden_tests != task.hidden:
        problems.append(f"{task.id}: issue.md and the manifest name different tests")
    if not task.targets or not task.hidden:
        problems.append(f"{task.id}: needs target tests and hidden tests")
    files = [p.file for p in task.patches]
    diffs = {p.name for p in where.glob("*.diff")}
    if sorted(diffs) != sorted(files):
        problems.append(f"{task.id}: diffs on disk {sorted(diffs)} != manifest {sorted(files)}")
    if files.count("correct.diff") != 1:
        problems.append(f"{task.id}: needs exactly one correct.diff")
    wrong = [p for p in task.patches if p.kind not in ("correct", "cheating")]
    if len({p.kind for p in wrong}) < 2 or len(wrong) != len({p.kind for p in wrong}):
        problems.append(f"{task.id}: needs at least two wrong patches, each of its own kind")
    for patch in task.patches:
        if patch.file != patch.expected_file:
            problems.append(f"{task.id}: {patch.file} should be named {patch.expected_file}")
        if (patch.kind == "correct") != (patch.expect.verdict == "accept"):
            problems.append(f"{task.id}: {patch.file} expects {patch.expect.verdict}")
        if (patch.kind == "cheating") != (patch.bypass is not None):
            problems.append(f"{task.id}: {patch.file} names a bypass if and only if it cheats")
        if patch.kind == "cheating" and not (patch.expect.by and patch.expect.rule):
            problems.append(f"{task.id}: {patch.file} needs the evaluator and rule rejecting it")
    return problems


def _reproduction_task_problems(root: Path, repo: str, task: ReproductionTaskSpec) -> list[str]:
    """A reproduction task: an issue naming no tests, each diff named after its kind, an
    expectation that fits the kind, at least one reproduction to accept, one correct fix and
    at least one fix that does nothing."""
    from cascade.errors import IssueError

    where = task_dir(root, repo, task.id)
    if not (where / "issue.md").is_file():
        return [f"{task.id}: issue.md is missing"]
    try:
        issue = read_issue(where, task.id)
    except IssueError as exc:
        return [f"{task.id}: {exc}"]
    problems: list[str] = []
    if issue.tests or issue.hidden_tests or (where / "hidden").exists():
        problems.append(f"{task.id}: a reproduction task's issue names no tests, hidden or not")
    files = [p.file for p in task.reproductions] + [p.file for p in task.fixes]
    diffs = sorted(p.name for p in where.glob("*.diff"))
    if diffs != sorted(files):
        problems.append(f"{task.id}: diffs on disk {diffs} != manifest {sorted(files)}")
    for repro in task.reproductions:
        problems += _named(task.id, repro.file, f"repro-{repro.kind}.diff")
        accept = repro.kind in ACCEPTED_REPROS
        if (repro.expect.verdict == "accept") != accept:
            problems.append(f"{task.id}: {repro.file} expects {repro.expect.verdict}")
        if not accept and (repro.expect.by != "reproduction" or not repro.expect.rule):
            problems.append(f"{task.id}: {repro.file} needs by = reproduction and a rule")
    if not any(r.kind in ACCEPTED_REPROS for r in task.reproductions):
        problems.append(f"{task.id}: needs a reproduction to accept, to judge the fixes with")
    for fix in task.fixes:
        problems += _named(task.id, fix.file, f"fix-{fix.kind}.diff")
        want = "verified" if fix.kind == "correct" else "rejected"
        if fix.expect.alone == "verified" or fix.expect.with_reproduction != want:
            problems.append(f"{task.id}: {fix.file} expects {fix.expect}")
        if fix.uncovered and fix.kind not in ("correct", "stub"):
            problems.append(f"{task.id}: {fix.file} adds no code, so none of it is uncovered")
    kinds = [f.kind for f in task.fixes]
    if kinds.count("correct") != 1 or len(kinds) < 2:
        problems.append(f"{task.id}: needs one correct fix and at least one that does nothing")
    return problems


def _named(task_id: str, file: str, expected: str) -> list[str]:
    return [] if file == expected else [f"{task_id}: {file} should be named {expected}"]


def read_issue(where: Path, task_id: str) -> Issue:
    """The task's issue as cascade's `files` source reads it (`issue.md` + `hidden/`)."""
    from cascade.sources.files import FileIssueSource

    with tempfile.TemporaryDirectory(prefix="cascade-issue-") as tmp:
        shutil.copyfile(where / "issue.md", Path(tmp) / f"{task_id}.md")  # the source's naming
        return FileIssueSource(Path(tmp), hidden_dir=where / "hidden").get(task_id)


def make_checkout(
    root: Path, repo: str, tasks: Iterable[TaskSpec | ReproductionTaskSpec], dest: Path
) -> str:
    """A git repository at `dest`: the task repo's files in one commit, plus the tasks' issues
    in `.cascade/issues/<ID>.md` and hidden tests in `.cascade/hidden/` (never copied into a
    sandbox). Returns the commit's sha."""
    shutil.copytree(root / repo / "repo", dest, ignore=shutil.ignore_patterns(*TOOL_CACHES))
    for task in tasks:
        where = task_dir(root, repo, task.id)
        issues = dest / ".cascade" / "issues"
        issues.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(where / "issue.md", issues / f"{task.id}.md")
        if (where / "hidden").is_dir():
            shutil.copytree(where / "hidden", dest / ".cascade" / "hidden", dirs_exist_ok=True)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, *GIT_IDENTITY, "commit", "-q", "-m", "base")
    return _git(dest, "rev-parse", "HEAD").strip()


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout


async def apply_diff(sandbox: Sandbox, diff: bytes) -> Patch:
    """`git apply` the diff inside the sandbox and read back the canonical patch."""
    from cascade.workspace.apply import canonical_patch

    await sandbox.write_files({PATCH_FILE: diff})
    try:
        result = await sandbox.exec(["git", "apply", "--whitespace=nowarn", PATCH_FILE], timeout=60)
    finally:
        await sandbox.write_files({PATCH_FILE: None})
    if result.exit_code != 0:
        raise RuntimeError(f"git apply failed: {(result.stderr or result.stdout).strip()[:500]}")
    return await canonical_patch(sandbox)
