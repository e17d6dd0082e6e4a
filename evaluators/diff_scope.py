"""The scope gate: the first and cheapest check, on the patch text alone, before anything runs.
It refuses paths outside the repository or into git's own files, links, mode changes, binaries,
denied or protected paths, oversized patches, patches that delete, skip or weaken tests, and
changes to the test and tool configuration that judges a patch (evaluators/infrastructure.py),
and suppression comments that switch a gate off (evaluators/suppressions.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cascade.protocols import Sandbox
from cascade.records import Finding, Patch, Task, Verdict
from evaluators.patch_files import PYTHON_SUFFIXES, DiffError, FileDiff, parse_diff
from evaluators.path_globs import first_match
from evaluators.scope_rules import (
    cascade_config_changed,
    infrastructure_problems,
    kind_problem,
    path_problem,
)
from evaluators.suppressions import FIX as SUPPRESSION_FIX
from evaluators.suppressions import RULE as SUPPRESSION
from evaluators.suppressions import suppression_findings
from evaluators.weakening import weakening

CI_FILES = (
    ".github/**", ".gitlab-ci.yml", ".gitlab/**", ".circleci/**", "**/Jenkinsfile",
    "azure-pipelines.yml", ".azure-pipelines/**", ".travis.yml", "appveyor.yml", ".appveyor.yml",
    "bitbucket-pipelines.yml", ".buildkite/**", ".drone.yml", ".woodpecker.yml", ".woodpecker/**",
)  # fmt: skip
LOCK_FILES = tuple(
    f"**/{name}"
    for name in (
        "poetry.lock", "uv.lock", "Pipfile.lock", "pdm.lock", "pylock.toml", "package-lock.json",
        "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock",
        "Cargo.lock", "Gemfile.lock", "composer.lock", "go.sum", "flake.lock", "Podfile.lock",
        "mix.lock", "pubspec.lock", "gradle.lockfile", "packages.lock.json",
    )
)  # fmt: skip
CASCADE_FILES = ("cascade.toml", ".cascade/**")
DEFAULT_DENY = (*CI_FILES, *LOCK_FILES, *CASCADE_FILES)
TEST_PATHS = ("**/tests/**", "**/test/**", "**/test_*.py", "**/*_test.py")
PROTECTED = ("**/conftest.py", "**/fixtures/**", "**/testdata/**", "**/test_data/**")
TEST_CHANGES_LABEL = "allow-test-changes"  # an issue label that lifts the test rules


class DiffScopeConfig(BaseModel):
    """`[gate.options.diff_scope]`. The issue's own `scope` narrows `allow` and adds to `deny`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow: tuple[str, ...] = ()  # when set, every changed path must match one of these
    deny: tuple[str, ...] = ()  # wins over any allow
    default_deny: bool = True  # CI config, lock files, cascade's own config
    max_files: int = Field(default=20, ge=1)
    max_changed_lines: int = Field(default=1000, ge=1)  # added + removed
    allow_test_changes: bool = False  # lets a patch delete, skip or rewrite tests
    test_paths: tuple[str, ...] = TEST_PATHS
    protected: tuple[str, ...] = PROTECTED  # test scaffolding: no change at all by default
    # Lets a patch write suppression comments (noqa, type: ignore, pragma: no cover and the
    # like) outside the test paths, which have their own rules.
    allow_suppressions: bool = False


class DiffScopeEvaluator:
    """Globs: `**` crosses `/`, `*` does not, anchored at the repo root. An explicit deny (config
    or issue) always wins; a default deny is lifted only by an allow glob with a literal start
    (`.github/workflows/ci.yml`, not `**`). Test rules are lifted by `allow_test_changes` or
    by the issue label `allow-test-changes`."""

    name = "diff_scope"
    runs_code = False  # reads the patch and the files it changes: no tamper check needed
    config_model: ClassVar[type[DiffScopeConfig]] = DiffScopeConfig

    def __init__(self, config: DiffScopeConfig | None = None) -> None:
        self.config = config or DiffScopeConfig()

    def baseline_key(self, task: Task) -> str:
        """The baseline depends on the commit and config only: shared by every task on it."""
        return ""

    async def baseline(self, sandbox: Sandbox, task: Task) -> dict[str, Any]:
        return {}  # the patch alone is judged

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        started = time.monotonic()
        try:
            files = parse_diff(patch.diff)
        except DiffError as exc:
            problem = Finding(rule="malformed_diff", message=f"the patch cannot be read: {exc}")
            return self._verdict([problem], started)
        found = self._inventory(files, patch)
        tests_free = self.config.allow_test_changes or TEST_CHANGES_LABEL in task.issue.labels
        safe = [f for f in files if not any(p.path == f.path for p in found)]
        for diff in safe:
            found.extend(await self._path_rules(diff, task, tests_free, sandbox))
        found.extend(self._limits(files))
        pyproject = next((f for f in safe if f.path == "pyproject.toml"), None)
        judged = any(f.path == "pyproject.toml" for f in found)
        if pyproject and not judged and self._guards_cascade_config(task):
            # The one file the gate reads: cascade's config can live inside pyproject.toml.
            new = await sandbox.read_file("pyproject.toml")
            if cascade_config_changed(pyproject, (new or b"").decode("utf-8", "replace")):
                message = "changes [tool.cascade] in pyproject.toml (cascade's own config)"
                found.append(Finding(rule="denied_path", path="pyproject.toml", message=message))
        if not tests_free:  # what judges the patch; with the label, the base's judges it anyway
            rest = [f for f in safe if not any(p.path == f.path for p in found)]
            found.extend(await infrastructure_problems(sandbox, rest, self.config.test_paths))
        if not self.config.allow_suppressions:
            rest = [f for f in safe if not any(p.path == f.path for p in found)]
            found.extend(await self._suppressions(rest, sandbox))
        return self._verdict(found, started)

    def _inventory(self, files: list[FileDiff], patch: Patch) -> list[Finding]:
        """Path safety and file kinds, and that the diff names what the patch says it changes."""
        found: list[Finding] = []
        named = {f.path for f in files}
        if named != set(patch.files):
            odd = sorted(named.symmetric_difference(patch.files))
            message = f"the diff and the patch's file list disagree about {', '.join(odd[:5])}"
            found.append(Finding(rule="malformed_diff", message=message))
        for diff in files:
            problem = path_problem(diff.path) or kind_problem(diff)
            if problem:
                rule, message = problem
                found.append(Finding(rule=rule, path=diff.path, message=message))
        return found

    async def _path_rules(
        self, diff: FileDiff, task: Task, tests_free: bool, sandbox: Sandbox
    ) -> list[Finding]:
        path, scope = diff.path, task.issue.scope
        if task.reproduction is not None and path in task.reproduction.files:
            # No label or option lifts this: the test that proves the fix is not the fix's.
            why = "holds the reproduction test that proves this fix; it is locked: change the code"
            return [_finding("locked_test", path, f"{why} so that the test passes")]
        denied = first_match(path, (*self.config.deny, *scope.deny))
        if denied:
            return [_finding("denied_path", path, f"matches the deny glob `{denied}`")]
        for allow in (self.config.allow, scope.allow):
            if allow and not first_match(path, allow):
                globs = ", ".join(f"`{g}`" for g in allow)
                return [_finding("outside_allow", path, f"is outside the allowed paths {globs}")]
        default = first_match(path, DEFAULT_DENY) if self.config.default_deny else None
        if default and not _lifted(path, (*self.config.allow, *scope.allow)):
            what = "CI config, lock files and cascade's own config may not be changed"
            return [_finding("denied_path", path, f"matches `{default}`: {what}")]
        if tests_free:
            return []
        if first_match(path, self.config.protected):
            return [_finding("protected_path", path, "is test scaffolding (conftest, fixtures)")]
        if not first_match(path, self.config.test_paths):
            return []
        if diff.status == "deleted":
            return [_finding("test_deleted", path, "deletes a test file")]
        return await weakening(diff, sandbox)

    async def _suppressions(self, files: list[FileDiff], sandbox: Sandbox) -> list[Finding]:
        """Suppression comments the patch writes into Python files outside the test paths."""
        found: list[Finding] = []
        for diff in files:
            if diff.status == "deleted" or not diff.path.endswith(PYTHON_SUFFIXES):
                continue
            if first_match(diff.path, self.config.test_paths):
                continue
            data = await sandbox.read_file(diff.path)
            new_text = None if data is None else data.decode("utf-8", "replace")
            found.extend(suppression_findings(diff, new_text))
        return found

    def _limits(self, files: list[FileDiff]) -> list[Finding]:
        found: list[Finding] = []
        if len(files) > self.config.max_files:
            message = f"changes {len(files)} files; at most {self.config.max_files} are allowed"
            found.append(Finding(rule="too_many_files", message=message))
        lines = sum(len(f.added) + len(f.removed) for f in files)
        if lines > self.config.max_changed_lines:
            limit = self.config.max_changed_lines
            message = f"changes {lines} lines; at most {limit} are allowed"
            found.append(Finding(rule="too_many_lines", message=message))
        return found

    def _guards_cascade_config(self, task: Task) -> bool:
        allow = (*self.config.allow, *task.issue.scope.allow)
        return self.config.default_deny and not _lifted("pyproject.toml", allow)

    def _verdict(self, found: list[Finding], started: float) -> Verdict:
        return Verdict(
            evaluator=self.name,
            passed=not found,
            feedback=_feedback(found),
            findings=tuple(found),
            duration_s=round(time.monotonic() - started, 3),
        )


def _finding(rule: str, path: str, message: str) -> Finding:
    return Finding(rule=rule, path=path, message=message)


def _lifted(path: str, allow: Iterable[str]) -> bool:
    """An allow glob names this path on purpose: it starts with a literal name, not a wildcard."""
    return any(re.match(r"[^*?\[]", glob) and first_match(path, [glob]) for glob in allow)


def _feedback(found: list[Finding]) -> str:
    if not found:
        return ""
    lines = [
        "Your patch was rejected before any test ran, because of what it changes:",
        *(
            f"- {_where(f)}: {f.message}" if f.path else f"- the patch {f.message}"
            for f in found[:20]
        ),
    ]
    if len(found) > 20:
        lines.append(f"- … and {len(found) - 20} more")
    rules = {f.rule for f in found}
    if rules & {"test_deleted", "test_skipped", "test_weakened", "protected_path"}:
        lines.append("Fix the code under test; leave existing tests, their asserts and fixtures.")
    if "test_infrastructure" in rules:
        lines.append("Leave test and tool configuration as it is: fix the code itself.")
    if SUPPRESSION in rules:
        lines.append(SUPPRESSION_FIX)
    if rules & {"too_many_files", "too_many_lines"}:
        lines.append("Make the smallest change that resolves the issue.")
    lines.append("Send your edits again without these changes.")
    return "\n".join(lines)


def _where(finding: Finding) -> str:
    return f"{finding.path}:{finding.line}" if finding.line else finding.path
