"""The tests gate: run pytest in the sandbox and judge the patch against the base commit's results
(targets and hidden tests must pass; nothing that passed before may fail). Hidden test files, and
an accepted reproduction's test files, are copied in only for the run; hidden ones are never
named in feedback. It runs tests by name, so it also says how the task's named tests come out
at the base commit (`base_outcomes`) and after the patch (`Verdict.tests`): what proves a fix."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import anyio
from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Finding, Issue, Patch, Task, Verdict
from evaluators.junit import CaseResult, exception_summary, trim_failure
from evaluators.pytest_run import (
    PytestRun,
    existing_files,
    run_problem,
    run_pytest,
    tail,
    workspace_root,
)
from evaluators.regressions import (
    Scrubber,
    feedback,
    file_of,
    findings,
    judge,
    lookup,
)

LOG_LINES = 200
FLAKY = "flaky"  # finding rule: failed once, passed on the re-run; does not fail the verdict
MAX_RERUN = 10


class PytestConfig(BaseModel):
    """`[gate.options.pytest]` (or the older `[gate.pytest]` table, folded into it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    args: tuple[str, ...] = ()
    timeout: float = Field(default=600.0, gt=0)
    run_full_suite: bool = True
    rerun_failures: bool = True  # re-run once what newly failed; a flip is flaky, not blame


class PytestEvaluator:
    name = "pytest"
    config_model: ClassVar[type[PytestConfig]] = PytestConfig

    def __init__(self, config: PytestConfig | None = None) -> None:
        self.config = config or PytestConfig()

    async def baseline(self, sandbox: Sandbox, task: Task) -> dict[str, Any]:
        """The whole suite at the base commit. Raises InfraError when pytest cannot run there at
        all (a timeout, a usage error): no patch could be judged against that. Hidden files are
        copied in only when they could change other tests (see `_shared`); either way their
        tests are left out when a patch is judged."""
        started = time.monotonic()
        issue = task.issue
        shared = _shared(issue)
        # target_failures reach the prompt: no workspace paths, nothing naming a hidden test.
        scrub = Scrubber(issue.hidden_tests, issue.hidden_files, await workspace_root(sandbox))
        async with _hidden_files(sandbox, {} if shared else issue.hidden_files):
            run = await self._run(sandbox, [])
        problem = run_problem(run)
        if run.results is None or (problem and run.exit_code != 5):
            detail = problem or f"no readable JUnit report ({run.problem})"
            raise InfraError(f"pytest cannot run the suite at the base commit: {detail}")
        outcomes = {
            nodeid: result.outcome
            for nodeid, result in sorted(run.results.items())
            if shared or not _is_hidden(nodeid, issue)
        }
        # Every failure's text, not only the targets': the baseline does not depend on which
        # tests an issue names, so the gate can share it between tasks on the same commit.
        failures = {
            nodeid: scrub(trim_failure(result.text or result.message)) or result.outcome
            for nodeid, result in sorted(run.results.items())
            if nodeid in outcomes and result.outcome in ("failed", "error")
        }
        return {
            "outcomes": outcomes,
            "failures": failures,
            "exit_code": run.exit_code,
            "duration_s": round(time.monotonic() - started, 3),
        }

    def baseline_key(self, task: Task) -> str:
        """What of the task the baseline depends on: nothing when its hidden files are plain
        test modules (`_shared`), else the hidden files copied in for it."""
        issue = task.issue
        if _shared(issue):
            return ""
        return repr((sorted(issue.hidden_files.items()), sorted(issue.hidden_tests)))

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        started = time.monotonic()
        issue = task.issue
        scrub = Scrubber(issue.hidden_tests, issue.hidden_files, await workspace_root(sandbox))
        focus = [*task.targets, *issue.hidden_tests]
        runs: list[PytestRun] = []
        only: set[str] | None = None
        async with _hidden_files(sandbox, _copied(task)):
            # Fail fast: the issue's own tests first, the whole suite only when they pass.
            paths = await existing_files(sandbox, focus)
            if paths:
                runs.append(await self._run(sandbox, paths))
            if focus:
                said = self._assess(runs[-1] if runs else None, task, scrub)
                if said[0]:
                    return self._verdict(runs, said, started, task)
            if self.config.run_full_suite or not focus:
                runs.append(await self._run(sandbox, []))
            else:
                only = set(paths)
            before = dict(baseline.get("outcomes", {}))  # judge() leaves the hidden ones out
            rerun, flaky = await self._rerun_failures(sandbox, runs[-1], task, before, only)
        for nodeid in flaky:  # not held against the patch; reported as flaky instead
            before.pop(nodeid, None)
        said = self._assess(runs[-1], task, scrub, before, only)
        notes = tuple(
            Finding(message=f"{n}: failed, then passed on a re-run (flaky)", rule=FLAKY)
            for n in sorted(flaky)
        )
        return self._verdict(runs, said, started, task, flaky=notes, rerun=rerun)

    async def base_outcomes(self, sandbox: Sandbox, task: Task) -> dict[str, str]:
        """How the task's targets and hidden tests (the reproduction's among them) come out at
        the base commit: one run of their files, with the hidden and reproduction files in."""
        named = list(dict.fromkeys((*task.targets, *task.issue.hidden_tests)))
        if not named:
            return {}
        async with _hidden_files(sandbox, _copied(task)):
            paths = await existing_files(sandbox, named)
            run = await self._run(sandbox, paths) if paths else None
        if run is not None and run.results is None:
            detail = run_problem(run) or run.problem
            raise InfraError(f"pytest cannot run the task's tests at the base commit: {detail}")
        results = (run.results or {}) if run is not None else {}
        return {test: outcome_text(lookup(results, test)) for test in named}

    async def _rerun_failures(
        self,
        sandbox: Sandbox,
        run: PytestRun,
        task: Task,
        before: Mapping[str, str],
        only: set[str] | None,
    ) -> tuple[PytestRun | None, set[str]]:
        """Run once more each test that passed at baseline and failed now; those that pass the
        second time are flaky. Targets and hidden tests are not re-run: they must pass."""
        if run_problem(run) or not self.config.rerun_failures:
            return None, set()
        issue = task.issue
        failures = judge(
            run.results or {},
            targets=task.targets,
            hidden=issue.hidden_tests,
            hidden_files=issue.hidden_files,
            baseline=before,
            only_files=only,
        )
        suspects = [
            f.nodeid
            for f in failures
            if f.kind == "regression" and f.result is not None and f.result.outcome == "failed"
        ]
        if not suspects or len(suspects) > MAX_RERUN:  # many failures at once are not flakes
            return None, set()
        again = await self._run(sandbox, suspects)
        results = again.results or {}
        return again, {n for n in suspects if (r := results.get(n)) and r.outcome == "passed"}

    def _assess(
        self,
        run: PytestRun | None,
        task: Task,
        scrub: Scrubber,
        before: Mapping[str, str] | None = None,
        only: set[str] | None = None,
    ) -> tuple[str, tuple[Finding, ...]]:
        """Feedback and findings ("" and none: passed). Without `before`, targets and hidden
        tests only; with it, also everything that passed at baseline (in `only` files)."""
        problem, text = self._broken(run, scrub) if run is not None else ("", "")
        if problem:
            return text, (Finding(message=f"the test run broke: {problem}", rule="run"),)
        issue = task.issue
        failures = judge(
            (run.results or {}) if run is not None else {},
            targets=task.targets,
            hidden=issue.hidden_tests,
            hidden_files=issue.hidden_files,
            baseline=before,
            only_files=only,
        )
        if not failures:
            return "", ()
        hidden = issue.hidden_tests
        return feedback(failures, hidden, scrub), findings(failures, hidden, scrub)

    async def _run(self, sandbox: Sandbox, paths: Sequence[str]) -> PytestRun:
        return await run_pytest(sandbox, paths, args=self.config.args, timeout=self.config.timeout)

    def _broken(self, run: PytestRun, scrub: Scrubber) -> tuple[str, str]:
        """(problem, feedback) for a run that broke as a whole, or ("", "") when it did not.
        The base commit ran, so a broken run after the patch is the patch's fault."""
        problem = run_problem(run)
        if not problem:
            return "", ""
        if run.timed_out:
            return problem, (
                f"The {problem}. Your change may loop forever or be far slower than before; "
                "fix the code so the tests finish."
            )
        end = _scrub_lines(tail(run.output, 40), scrub)
        if run.exit_code == 5:
            return problem, (
                "pytest collected no tests after your change: were test files deleted, "
                f"renamed or emptied? The end of pytest's output:\n{end}"
            )
        return problem, (
            f"The test run broke after your change: {problem}. It ran at the base commit, so "
            "something in your change (for example an import or syntax error that stops "
            f"collection) is the cause. The end of pytest's output:\n{end}"
        )

    def _verdict(
        self,
        runs: Sequence[PytestRun],
        said: tuple[str, tuple[Finding, ...]],
        started: float,
        task: Task,
        *,
        flaky: tuple[Finding, ...] = (),
        rerun: PytestRun | None = None,
    ) -> Verdict:
        text, found = said
        logs = "\n\n".join(
            f"$ pytest {' '.join(r.paths) or '(full suite)'}\n{r.output}"
            for r in (*runs, *((rerun,) if rerun else ()))
        )
        artifacts = {"pytest.log": tail(logs, LOG_LINES)}
        if runs and runs[-1].xml:
            artifacts["junit.xml"] = runs[-1].xml
        return Verdict(
            evaluator=self.name,
            passed=not text and not found,
            feedback=text,
            findings=found + flaky,
            duration_s=round(time.monotonic() - started, 3),
            artifacts=artifacts,
            tests=_named_outcomes(runs, task),
        )


def outcome_text(result: CaseResult | None) -> str:
    """One test's outcome as the proof records it: passed, skipped, missing, or failed/error
    with the first line of what was raised."""
    if result is None:
        return "missing"
    if result.outcome in ("passed", "skipped"):
        return result.outcome
    lines = exception_summary(result).strip().splitlines()
    return f"{result.outcome}: {lines[0][:200]}" if lines else result.outcome


def _named_outcomes(runs: Sequence[PytestRun], task: Task) -> dict[str, str]:
    """The outcome of each target and hidden test in the last run that ran its file."""
    named = dict.fromkeys((*task.targets, *task.issue.hidden_tests))
    out: dict[str, str] = {}
    for test in named:
        for run in reversed(runs):
            result = lookup(run.results or {}, test)
            if result is not None:
                out[test] = outcome_text(result)
                break
        else:
            out[test] = "missing"
    return out


def _copied(task: Task) -> dict[str, str]:
    """The files copied in for a run: the hidden tests', then the reproduction's."""
    repro = task.reproduction.files if task.reproduction else {}
    return {**task.issue.hidden_files, **repro}


def _shared(issue: Issue) -> bool:
    """Whether the baseline can be run without the issue's hidden files, and so be shared by
    every task on the commit: they are all test modules (`test_*.py`, `*_test.py`: no conftest,
    fixture or data file that could change how other tests run) and hold every hidden test. A
    hidden module that replaces a public one has the public one run at baseline instead; either
    way its file's tests are left out when a patch is judged (`judge`'s `hidden_files`)."""
    files = issue.hidden_files
    modules = all(_is_test_module(path) for path in files)
    return modules and all(file_of(nodeid) in files for nodeid in issue.hidden_tests)


def _is_test_module(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _is_hidden(nodeid: str, issue: Issue) -> bool:
    return nodeid in issue.hidden_tests or file_of(nodeid) in issue.hidden_files


@asynccontextmanager
async def _hidden_files(sandbox: Sandbox, files: Mapping[str, str]) -> AsyncIterator[None]:
    """Copy hidden test files in for the run; put back what was there before, always."""
    if not files:
        yield
        return
    saved = {path: await sandbox.read_file(path) for path in files}
    try:
        await sandbox.write_files({path: src.encode() for path, src in files.items()})
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await sandbox.write_files(saved)


def _scrub_lines(text: str, scrub: Scrubber) -> str:
    """Drop lines that name a hidden test and the indented lines under them (a traceback frame
    there quotes its source), and make the rest fit for a model."""
    kept: list[str] = []
    dropping = False
    for line in text.splitlines():
        if scrub.names_hidden(line):
            dropping = True
        elif not (dropping and line[:1].isspace()):
            dropping = False
            kept.append(line)
    return scrub("\n".join(kept))
