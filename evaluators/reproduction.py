"""The reproduction judge: a test written before any fix is accepted only when it touches tests
alone and fails at the base commit for the issue's reason (an assertion, an exception raised in
the repository's code, or a name a feature request asks for), fails the same way again, and
breaks no test that passed before. Its failing tests become the run's proving tests."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Finding, Issue, Patch, Scope, Task, Verdict
from evaluators.diff_scope import (
    TEST_CHANGES_LABEL,
    TEST_PATHS,
    DiffScopeConfig,
    DiffScopeEvaluator,
)
from evaluators.failure_kinds import Diagnosis, RepoFacts, asked_words, classify, wanted_names
from evaluators.junit import CaseResult
from evaluators.patch_files import DiffError, parse_diff
from evaluators.pytest_run import (
    DEFAULT_TEST_TIMEOUT,
    PytestRun,
    run_pytest,
    tail,
    workspace_root,
)
from evaluators.regressions import Failure, Scrubber, file_of, judge, lookup
from evaluators.reproduction_problems import (
    Problem,
    breaks,
    broken,
    feedback,
    flaky,
    no_tests,
    not_failing,
    scope_problem,
    wrong_reason,
)

LOG_LINES = 100  # per run
MAX_RERUN = 10  # tests that broke with the candidate in place, re-run to tell a flake from blame
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
_GREP_LINE = re.compile(r"^(.*?):\d+:\s*(?:async\s+)?(?:def|class)\s+(\w+)")


class ReproductionConfig(BaseModel):
    """The reproduce stage's options; the registry merges `[gate.options.pytest]`'s `args`,
    `timeout` and `test_timeout` under them, so a candidate runs as the gate's pytest would."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    args: tuple[str, ...] = ()  # extra pytest arguments (`--tb=short` is forced after them)
    timeout: float = Field(default=600.0, gt=0)  # per pytest run
    test_timeout: float = Field(default=DEFAULT_TEST_TIMEOUT, ge=0)  # per test (0: none)
    test_paths: tuple[str, ...] = TEST_PATHS  # the only files a reproduction may write
    reruns: int = Field(default=1, ge=0, le=5)  # more runs of its files: must fail the same way


class ReproductionEvaluator:
    """Judges a reproduce attempt's patch in a sandbox at the base commit. Hidden test files are
    never copied in, and ids of hidden tests in the baseline are ignored."""

    name = "reproduction"
    config_model: ClassVar[type[ReproductionConfig]] = ReproductionConfig

    def __init__(self, config: ReproductionConfig | None = None) -> None:
        self.config = config or ReproductionConfig()

    def baseline_key(self, task: Task) -> str:
        return ""  # see `baseline`

    async def baseline(self, sandbox: Sandbox, task: Task) -> dict[str, Any]:
        """Nothing of its own: the engine hands `evaluate` the pytest evaluator's baseline (its
        `outcomes` and `failures` for the whole suite at the base commit)."""
        return {}

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        """`baseline` is the pytest evaluator's. Accepted when at least one new test fails for
        an accepted reason and none fails for another; new tests that pass beside it are
        allowed (a sanity check) but not listed in `tests`."""
        started = time.monotonic()
        if not isinstance(baseline.get("outcomes"), Mapping):
            raise InfraError("the reproduction judge needs the pytest baseline's `outcomes`")
        issue = task.issue
        scrub = Scrubber(issue.hidden_tests, issue.hidden_files, await workspace_root(sandbox))
        before = {
            nodeid: str(outcome)
            for nodeid, outcome in baseline["outcomes"].items()
            if not _hidden(nodeid, issue)
        }
        runs: list[PytestRun] = []
        accepted: dict[str, Diagnosis] = {}
        problems = await self._scope(sandbox, task, patch)
        if not problems:
            accepted, problems = await self._judge(sandbox, issue, patch, before, runs)
        return self._verdict(started, scrub, runs, {} if problems else accepted, problems)

    async def _scope(self, sandbox: Sandbox, task: Task, patch: Patch) -> list[Problem]:
        """diff_scope with the test paths as the only allowed ones. The issue's own scope (often
        `deny = ["tests/**"]`) and its allow-test-changes label speak for the fix: a
        reproduction writes tests where tests live, and never changes scaffolding or weakens
        an existing test."""
        issue = task.issue
        labels = tuple(label for label in issue.labels if label != TEST_CHANGES_LABEL)
        own = issue.model_copy(update={"scope": Scope(), "labels": labels})
        paths = self.config.test_paths
        scope = DiffScopeEvaluator(DiffScopeConfig(allow=paths, test_paths=paths))
        verdict = await scope.evaluate(sandbox, task.model_copy(update={"issue": own}), patch, {})
        if verdict.passed:
            return []
        return [scope_problem(verdict.findings, paths)]

    async def _judge(
        self,
        sandbox: Sandbox,
        issue: Issue,
        patch: Patch,
        before: Mapping[str, str],
        runs: list[PytestRun],
    ) -> tuple[dict[str, Diagnosis], list[Problem]]:
        """Fail fast, cheapest first: the candidate's files, then `reruns` more runs of them,
        then the whole suite with them in place."""
        files = _test_modules(patch)
        if not files:
            return {}, [no_tests(patch.files)]
        facts = await self._facts(sandbox)
        facts = dataclasses.replace(facts, asked=asked_words(issue.title, issue.body))
        first = await self._run(sandbox, files, runs)
        if first.exit_code == 5 and not first.timed_out:
            return {}, [no_tests(files)]
        if stop := broken(first, "your test"):
            return {}, stop
        new = {
            nodeid: result
            for nodeid, result in sorted((first.results or {}).items())
            if file_of(nodeid) in files and nodeid not in before and not _hidden(nodeid, issue)
        }
        if not new:
            return {}, [no_tests(files)]
        facts = await self._with_names(sandbox, facts, new.values())
        found = [classify(result, facts) for result in new.values()]
        problems = [wrong_reason(d) for d in found if d.failing and not d.accepted]
        broke = self._regressions(first, issue, before, new, set(files))
        problems += [breaks(broke)] if broke else []
        accepted = {d.nodeid: d for d in found if d.accepted}
        if problems or not accepted:
            return {}, problems or [not_failing(found)]
        for _ in range(self.config.reruns):
            # By file, not node id: pytest refuses a run naming an id that no longer exists.
            again = await self._run(sandbox, files, runs)
            if problems := broken(again, "your test") or flaky(accepted, again, facts, "again"):
                return {}, problems
        full = await self._run(sandbox, [], runs)
        problems = broken(full, "the whole suite with your test in place")
        problems = problems or flaky(accepted, full, facts, "with the whole suite")
        if not problems:
            broke = self._regressions(full, issue, before, new, None)
            broke = await self._excuse_flakes(sandbox, broke, files, runs)
            problems = [breaks(broke)] if broke else []
        return accepted, problems

    async def _run(
        self, sandbox: Sandbox, paths: Sequence[str], runs: list[PytestRun]
    ) -> PytestRun:
        # `--tb=short` last: the classifier reads its `path:line: in function` frame lines.
        args = (*self.config.args, "--tb=short")
        run = await run_pytest(
            sandbox,
            paths,
            args=args,
            timeout=self.config.timeout,
            test_timeout=self.config.test_timeout,
        )
        runs.append(run)
        return run

    async def _facts(self, sandbox: Sandbox) -> RepoFacts:
        """The workspace's Python files, listed before any candidate code has run."""
        argv = ["git", "ls-files", "-z", "--", "*.py"]
        listing = await sandbox.exec(argv, timeout=60, env=GIT_ENV)
        files = listing.stdout.split("\0") if listing.exit_code == 0 else []
        root = await workspace_root(sandbox)
        return RepoFacts(root, frozenset(p for p in files if p), self.config.test_paths)

    async def _with_names(
        self, sandbox: Sandbox, facts: RepoFacts, results: Iterable[CaseResult]
    ) -> RepoFacts:
        """Which of the class and function names the failures mention the repository's source
        defines (one grep), so `'Wallet' object has no attribute 'x'` can be told from
        `'NoneType' object has no attribute 'x'`."""
        names = sorted(set().union(*(wanted_names(r) for r in results)))
        if not names:
            return facts
        pattern = (
            r"^[[:space:]]*(async[[:space:]]+)?(def|class)[[:space:]]+"
            rf"({'|'.join(names)})([^[:alnum:]_]|$)"
        )
        script = 'git ls-files -z -- "*.py" | xargs -0 -r grep -HnE -e "$1" --'
        result = await sandbox.exec(["sh", "-c", script, "sh", pattern], timeout=60, env=GIT_ENV)
        defined = {
            found[2]
            for line in result.stdout.splitlines()
            if (found := _GREP_LINE.match(line)) and not facts.is_test(found[1])
        }
        return dataclasses.replace(facts, defined=frozenset(defined & set(names)))

    def _regressions(
        self,
        run: PytestRun,
        issue: Issue,
        before: Mapping[str, str],
        new: Mapping[str, CaseResult],
        only: set[str] | None,
    ) -> list[Failure]:
        """Tests that passed at the base commit and do not pass now. The candidate's own module
        that cannot be collected is its test, not a regression, unless it held such tests."""
        failures = judge(
            run.results or {},
            targets=(),
            hidden=(),
            hidden_files=issue.hidden_files,
            baseline=before,
            only_files=only,
        )
        held = {file_of(nodeid) for nodeid, outcome in before.items() if outcome == "passed"}
        return [f for f in failures if not (f.nodeid in new and f.nodeid not in held)]

    async def _excuse_flakes(
        self, sandbox: Sandbox, broke: list[Failure], files: list[str], runs: list[PytestRun]
    ) -> list[Failure]:
        """Run what broke once more, after the candidate's files in the same session: a test
        that passes then is a flake of the suite, not the candidate's doing."""
        suspects = [
            f.nodeid
            for f in broke
            if f.result is not None and f.result.outcome == "failed" and not f.result.is_collection
        ]
        if not suspects or len(suspects) > MAX_RERUN:
            return broke
        again = await self._run(sandbox, [*files, *suspects], runs)
        results = again.results or {}
        passed = {n for n in suspects if (r := lookup(results, n)) and r.outcome == "passed"}
        return [f for f in broke if f.nodeid not in passed]

    def _verdict(
        self,
        started: float,
        scrub: Scrubber,
        runs: Sequence[PytestRun],
        accepted: Mapping[str, Diagnosis],
        problems: Sequence[Problem],
    ) -> Verdict:
        # Each run's own end, so the whole suite's output does not push the candidate's out.
        logs = "\n\n".join(
            f"$ pytest {' '.join(r.paths) or '(full suite)'}\n{tail(r.output, LOG_LINES)}"
            for r in runs
        )
        artifacts = {"pytest.log": scrub(logs)} if runs else {}
        if runs and runs[0].xml:
            artifacts["junit.xml"] = runs[0].xml  # the candidate's files at the base commit
        passed = bool(accepted) and not problems
        found = tuple(_scrubbed(f, scrub) for p in problems for f in p.findings)
        return Verdict(
            evaluator=self.name,
            passed=passed,
            feedback="" if passed else scrub(feedback(problems)),
            findings=found,
            duration_s=round(time.monotonic() - started, 3),
            artifacts=artifacts,
            tests={n: scrub(f"{d.kind}: {d.summary}") for n, d in accepted.items()}
            if passed
            else {},
        )


def _scrubbed(finding: Finding, scrub: Scrubber) -> Finding:
    return finding.model_copy(update={"message": scrub(finding.message)})


def _hidden(nodeid: str, issue: Issue) -> bool:
    return nodeid in issue.hidden_tests or file_of(nodeid) in issue.hidden_files


def _test_modules(patch: Patch) -> list[str]:
    """The Python files the patch adds or changes: what pytest is pointed at first."""
    try:
        files = parse_diff(patch.diff)
    except DiffError:
        return []
    return [f.path for f in files if f.status != "deleted" and f.path.endswith(".py")]
