"""The tests gate: run pytest in the sandbox and judge the patch against the base commit's results
(targets and hidden tests must pass; nothing that passed before may fail), with the base's test
configuration and proving tests whatever the patch changed (evaluators/trusted_files.py), and a
run that changes the workspace while it runs refused. Hidden test files are copied in only for a
run of their own, after every run whose words may reach the next model; a hidden test's failure
is told by its number and exception type, never its message. It runs tests by name, so it also
says how the task's named tests come out at the base commit (`base_outcomes`) and after the patch
(`Verdict.tests`): what proves a fix."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Finding, Issue, Patch, Task, Verdict
from evaluators.infrastructure import Tool
from evaluators.junit import CaseResult, trim_failure
from evaluators.named_tests import named_outcomes, new_test_modules, outcome_text
from evaluators.pytest_run import (
    DEFAULT_TEST_TIMEOUT,
    PytestRun,
    existing_files,
    run_problem,
    run_pytest,
    tail,
    workspace_root,
)
from evaluators.regressions import (
    Said,
    Scrubber,
    feedback,
    file_of,
    findings,
    judge,
    lookup,
    order_dependent,
    scrub_lines,
    tampered,
)
from evaluators.trusted_files import trusted_files

LOG_LINES = 200
FLAKY = "flaky"  # finding rule: failed once, passed on the re-run; does not fail the verdict
MAX_RERUN = 10
TOOLS: tuple[Tool, ...] = ("pytest",)


class PytestConfig(BaseModel):
    """`[gate.options.pytest]` (or the older `[gate.pytest]` table, folded into it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    args: tuple[str, ...] = ()
    timeout: float = Field(default=600.0, gt=0)  # one pytest run, the whole suite included
    # One test (setup, call, teardown): past it the test fails as timed out and the run goes
    # on. 0: no deadline but `timeout`.
    test_timeout: float = Field(default=DEFAULT_TEST_TIMEOUT, ge=0)
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
        tests are left out when a patch is judged. Files the suite itself changes as it runs
        (`touched`, only when there are any) are not held against a patch."""
        started = time.monotonic()
        issue = task.issue
        shared = _shared(issue)
        # target_failures reach the prompt: no workspace paths, nothing naming a hidden test.
        scrub = Scrubber(issue.hidden_tests, issue.hidden_files, await workspace_root(sandbox))
        async with trusted_files(sandbox, None, TOOLS, copied={} if shared else issue.hidden_files):
            run = await self._run(sandbox, [])
        problem = run_problem(run)
        if run.results is None or (problem and run.exit_code != 5):
            detail = problem or f"no complete report ({run.problem})"
            raise InfraError(f"pytest cannot run the suite at the base commit: {detail}")
        outcomes = {
            nodeid: result.outcome
            for nodeid, result in sorted(run.results.items())
            if shared or not _is_hidden(nodeid, issue)
        }
        # Every failure's text, not only the targets': the baseline does not depend on which
        # tests an issue names, so the gate can share it between tasks on the same commit.
        failures = _failure_texts(run.results, scrub, keep=outcomes)
        facts: dict[str, Any] = {
            "outcomes": outcomes,
            "failures": failures,
            "exit_code": run.exit_code,
            "duration_s": round(time.monotonic() - started, 3),
        }
        if run.touched:
            facts["touched"] = sorted(run.touched)
        return facts

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
        """Fail fast: the targets' files, then the whole suite (with a re-run of what newly
        failed), then the hidden tests by themselves. When the hidden files are more than test
        modules (`_shared` is False) they are in the workspace for every run, and no run's
        text is quoted."""
        started = time.monotonic()
        issue = task.issue
        apart = _shared(issue)
        said = Said(
            Scrubber(issue.hidden_tests, issue.hidden_files, await workspace_root(sandbox)),
            quote=apart or not issue.hidden_files,
            excused=frozenset(baseline.get("touched", ())),
        )
        focus = [*task.targets, *(() if apart else issue.hidden_tests)]
        at_base = dict(baseline.get("outcomes", {}))
        runs: list[PytestRun] = []
        copied = _copied(task, hidden=not apart)
        async with trusted_files(
            sandbox, patch, TOOLS, proving=_proving(task), copied=copied, test_tree=True
        ):
            paths = await existing_files(sandbox, focus)
            if paths:
                runs.append(await self._run(sandbox, paths))
            if focus:
                verdict = self._assess(runs, task, said, hidden=not apart, at_base=at_base)
                if verdict[0]:
                    return self._verdict(runs, verdict, started, task)
            only: set[str] | None = None
            if self.config.run_full_suite or not focus:
                # The patch's own new test modules stay out: imported in the same process, one
                # could rebind the code that the suite's tests call and hide a regression.
                ignore = new_test_modules(patch, set(copied))
                runs.append(await self._run(sandbox, [], ignore=ignore))
            else:
                only = set(paths)
            before = dict(baseline.get("outcomes", {}))  # judge() leaves the hidden ones out
            rerun, flaky = await self._rerun_failures(sandbox, runs[-1], task, before, only)
            for nodeid in flaky:  # not held against the patch; reported as flaky instead
                before.pop(nodeid, None)
            also = (rerun,) if rerun else ()
            verdict = self._assess(
                runs, task, said, before=before, only=only, hidden=not apart, also=also,
                at_base=at_base,
            )  # fmt: skip
            notes = tuple(
                Finding(message=f"{n}: failed, then passed on a re-run (flaky)", rule=FLAKY)
                for n in sorted(flaky)
            )
            if verdict[0] or not (apart and issue.hidden_tests):
                return self._verdict(runs, verdict, started, task, flaky=notes, rerun=rerun)
            # Last: a run with the hidden files in, whose output no model sees.
            async with trusted_files(sandbox, None, TOOLS, copied=issue.hidden_files):
                hidden_paths = await existing_files(sandbox, issue.hidden_tests)
                secret = await self._run(sandbox, hidden_paths) if hidden_paths else None
        closed = Said(said.scrub, quote=False, excused=said.excused)
        verdict = self._assess([secret] if secret else [], task, closed, targets=False)
        return self._verdict(runs, verdict, started, task, flaky=notes, rerun=rerun, secret=secret)

    async def base_outcomes(self, sandbox: Sandbox, task: Task) -> dict[str, str]:
        """How the task's targets and hidden tests (the reproduction's among them) come out at
        the base commit: one run of their files, with the hidden and reproduction files in."""
        return (await self.base_failures(sandbox, task))[0]

    async def base_failures(
        self, sandbox: Sandbox, task: Task
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """`base_outcomes`, and from the same run what the prompt is told of the targets: the
        `outcomes` and scrubbed `failures` of what ran, as the baseline has them (so the first
        model call need not wait for the whole suite). Nothing of that run is told when the issue
        has hidden files: they were in the workspace for it."""
        named = list(dict.fromkeys((*task.targets, *task.issue.hidden_tests)))
        if not named:
            return {}, {}
        issue = task.issue
        async with trusted_files(sandbox, None, TOOLS, copied=_copied(task, hidden=True)):
            paths = await existing_files(sandbox, named)
            run = await self._run(sandbox, paths) if paths else None
        if run is not None and run.results is None:
            detail = run_problem(run) or run.problem
            raise InfraError(f"pytest cannot run the task's tests at the base commit: {detail}")
        results = (run.results or {}) if run is not None else {}
        outcomes = {test: outcome_text(lookup(results, test)) for test in named}
        if issue.hidden_files or issue.hidden_tests:
            return outcomes, {}
        scrub = Scrubber((), {}, await workspace_root(sandbox))
        ran = {nodeid: result.outcome for nodeid, result in sorted(results.items())}
        return outcomes, {"outcomes": ran, "failures": _failure_texts(results, scrub, keep=ran)}

    async def _rerun_failures(
        self,
        sandbox: Sandbox,
        run: PytestRun,
        task: Task,
        before: Mapping[str, str],
        only: set[str] | None,
    ) -> tuple[PytestRun | None, set[str]]:
        """Run the same tests once more when a few that passed at baseline failed now; those
        that pass the second time, in the same run order, are flaky. Targets and hidden tests are
        not excused: they must pass."""
        if run_problem(run) or run.touched or not self.config.rerun_failures:
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
        # The whole run again, not the suspects alone: a test that fails only after others ran
        # (state the patch leaves behind) must fail again here, not be excused as flaky.
        again = await self._run(sandbox, list(run.paths))
        results = again.results or {}
        return again, {n for n in suspects if (r := results.get(n)) and r.outcome == "passed"}

    def _assess(
        self,
        runs: Sequence[PytestRun],
        task: Task,
        said: Said,
        *,
        before: Mapping[str, str] | None = None,
        only: set[str] | None = None,
        targets: bool = True,
        hidden: bool = True,
        also: Sequence[PytestRun] = (),
        at_base: Mapping[str, str] | None = None,
    ) -> tuple[str, tuple[Finding, ...]]:
        """Feedback and findings ("" and none: passed) for the last of `runs`, after checking
        that none of them (nor of `also`) changed the workspace. Without `before`, targets and
        hidden tests only; with it, also everything that passed at baseline (in `only`)."""
        moved = sorted({path for run in (*runs, *also) for path in run.touched} - said.excused)
        if moved:
            return tampered(moved, said.scrub)
        run = runs[-1] if runs else None
        problem, text = self._broken(run, said) if run is not None else ("", "")
        if problem:
            return text, (Finding(message=f"the test run broke: {problem}", rule="run"),)
        issue = task.issue
        failures = judge(
            (run.results or {}) if run is not None else {},
            targets=task.targets if targets else (),
            hidden=issue.hidden_tests if hidden else (),
            hidden_files=issue.hidden_files,
            baseline=before,
            only_files=only,
            at_base=at_base,
            stopped=run.stopped if run is not None else "",
        )
        if not failures:
            return "", ()
        if run is not None and len(runs) > 1 and not run.paths and runs[0].paths:
            # The full suite after the targets' own files: say what passed there only.
            alone = runs[0]
            failures = order_dependent(
                failures, alone.order(), alone.results or {}, run.order(),
                lambda nodeid: _is_hidden(nodeid, issue),
            )  # fmt: skip
        named, scrub, quote = issue.hidden_tests, said.scrub, said.quote
        return (
            feedback(failures, named, scrub, quote=quote),
            findings(failures, named, scrub, quote=quote),
        )

    async def _run(
        self, sandbox: Sandbox, paths: Sequence[str], *, ignore: Sequence[str] = ()
    ) -> PytestRun:
        args = (*self.config.args, *(f"--ignore={path}" for path in ignore))
        return await run_pytest(
            sandbox,
            paths,
            args=args,
            timeout=self.config.timeout,
            test_timeout=self.config.test_timeout,
        )

    def _broken(self, run: PytestRun, said: Said) -> tuple[str, str]:
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
        end = scrub_lines(tail(run.output, 40), said.scrub) if said.quote else ""
        shown = f" The end of pytest's output:\n{end}" if end else ""
        if run.exit_code == 5:
            return problem, (
                "pytest collected no tests after your change: were test files deleted, "
                f"renamed or emptied?{shown}"
            )
        return problem, (
            f"The test run broke after your change: {problem}. It ran at the base commit, so "
            "something in your change (for example an import or syntax error that stops "
            f"collection) is the cause.{shown}"
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
        secret: PytestRun | None = None,
    ) -> Verdict:
        text, found = said
        logs = "\n\n".join(
            f"$ pytest {' '.join(r.paths) or '(full suite)'}\n{r.output}"
            for r in (*runs, *((rerun,) if rerun else ()))
        )
        if secret is not None:
            logs += "\n\n$ pytest (the hidden tests)\n[output withheld]"
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
            tests=named_outcomes([*runs, *((secret,) if secret else ())], task),
        )


def _copied(task: Task, *, hidden: bool) -> dict[str, str]:
    """The files copied in for a run: the hidden tests' (when `hidden`), the reproduction's."""
    repro = task.reproduction.files if task.reproduction else {}
    return {**(task.issue.hidden_files if hidden else {}), **repro}


def _proving(task: Task) -> set[str]:
    """The modules of the issue's own tests: judged as the base commit has them."""
    repro = task.reproduction.files if task.reproduction else {}
    return {file_of(t) for t in task.issue.tests} - set(repro)


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


def _failure_texts(
    results: Mapping[str, CaseResult], scrub: Scrubber, *, keep: Mapping[str, str]
) -> dict[str, str]:
    """Each failed or erroring test of `keep`: its text as the prompt may be told it (trimmed,
    scrubbed), or its outcome when it has none."""
    return {
        nodeid: scrub(trim_failure(result.text or result.message)) or result.outcome
        for nodeid, result in sorted(results.items())
        if nodeid in keep and result.outcome in ("failed", "error")
    }
