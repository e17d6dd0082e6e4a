"""The tests gate: run pytest in the sandbox and judge the patch against the base commit's results
(targets and hidden tests must pass; nothing that passed before may fail). Hidden test files are
copied in only for the run and never named in feedback."""

from __future__ import annotations

import secrets
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Finding, Issue, Patch, Task, Verdict
from evaluators.junit import CaseResult, JunitError, parse_junit, trim_failure
from evaluators.regressions import (
    Scrubber,
    feedback,
    file_of,
    findings,
    judge,
)

REPORT_DIR = ".git"  # inside .git, so the report never shows in the tree or the patch
LOG_LINES = 200
FLAKY = "flaky"  # finding rule: failed once, passed on the re-run; does not fail the verdict
MAX_RERUN = 10
# Runs "$@" (pytest), then prints a marker line and the JUnit report, removes it, and exits
# with pytest's own code.
RUN_AND_REPORT = (
    'r="$1"; m="$2"; shift 2; "$@"; c=$?; printf \'\\n%s\\n\' "$m"; '
    'cat "$r" 2>/dev/null; rm -f "$r"; exit $c'
)
EXIT_MEANING = {2: "interrupted", 3: "internal error", 4: "usage error"}


@dataclass(frozen=True)
class _Run:
    paths: tuple[str, ...]  # what was asked for; () is the full suite
    exit_code: int
    timed_out: bool
    output: str
    xml: str
    results: dict[str, CaseResult] | None  # None: no readable JUnit report
    problem: str = ""  # why the report could not be read


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
        scrub = Scrubber(issue.hidden_tests, issue.hidden_files, await _workspace(sandbox))
        async with _hidden_files(sandbox, {} if shared else issue.hidden_files):
            run = await self._run(sandbox, [])
        problem = self._run_problem(run)
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
        scrub = Scrubber(issue.hidden_tests, issue.hidden_files, await _workspace(sandbox))
        focus = [*issue.tests, *issue.hidden_tests]
        runs: list[_Run] = []
        only: set[str] | None = None
        async with _hidden_files(sandbox, issue.hidden_files):
            # Fail fast: the issue's own tests first, the whole suite only when they pass.
            paths = await _existing_files(sandbox, focus)
            if paths:
                runs.append(await self._run(sandbox, paths))
            if focus:
                said = self._assess(runs[-1] if runs else None, issue, scrub)
                if said[0]:
                    return self._verdict(runs, said, started)
            if self.config.run_full_suite or not focus:
                runs.append(await self._run(sandbox, []))
            else:
                only = set(paths)
            before = dict(baseline.get("outcomes", {}))  # judge() leaves the hidden ones out
            rerun, flaky = await self._rerun_failures(sandbox, runs[-1], issue, before, only)
        for nodeid in flaky:  # not held against the patch; reported as flaky instead
            before.pop(nodeid, None)
        said = self._assess(runs[-1], issue, scrub, before, only)
        notes = tuple(
            Finding(message=f"{n}: failed, then passed on a re-run (flaky)", rule=FLAKY)
            for n in sorted(flaky)
        )
        return self._verdict(runs, said, started, flaky=notes, rerun=rerun)

    async def _rerun_failures(
        self,
        sandbox: Sandbox,
        run: _Run,
        issue: Issue,
        before: Mapping[str, str],
        only: set[str] | None,
    ) -> tuple[_Run | None, set[str]]:
        """Run once more each test that passed at baseline and failed now; those that pass the
        second time are flaky. Targets and hidden tests are not re-run: they must pass."""
        if self._run_problem(run) or not self.config.rerun_failures:
            return None, set()
        failures = judge(
            run.results or {},
            targets=issue.tests,
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
        run: _Run | None,
        issue: Issue,
        scrub: Scrubber,
        before: Mapping[str, str] | None = None,
        only: set[str] | None = None,
    ) -> tuple[str, tuple[Finding, ...]]:
        """Feedback and findings ("" and none: passed). Without `before`, targets and hidden
        tests only; with it, also everything that passed at baseline (in `only` files)."""
        problem, text = self._broken(run, scrub) if run is not None else ("", "")
        if problem:
            return text, (Finding(message=f"the test run broke: {problem}", rule="run"),)
        failures = judge(
            (run.results or {}) if run is not None else {},
            targets=issue.tests,
            hidden=issue.hidden_tests,
            hidden_files=issue.hidden_files,
            baseline=before,
            only_files=only,
        )
        if not failures:
            return "", ()
        hidden = issue.hidden_tests
        return feedback(failures, hidden, scrub), findings(failures, hidden, scrub)

    async def _run(self, sandbox: Sandbox, paths: Sequence[str]) -> _Run:
        token = secrets.token_hex(6)
        report = f"{REPORT_DIR}/cascade-junit-{token}.xml"
        marker = f"@@cascade-junit-{token}@@"
        pytest = [
            *("python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=short"),
            *("-o", "junit_family=xunit1", "--continue-on-collection-errors"),
            *self.config.args,
            f"--junitxml={report}",
            *paths,
        ]
        # One sandbox call, not three (run, read the report, delete it): a sandbox call is a
        # round trip. The report follows the run's output after a marker no test can predict.
        argv = ["sh", "-c", RUN_AND_REPORT, "sh", report, marker, *pytest]
        env = {"PYTHONDONTWRITEBYTECODE": "1"}
        result = await sandbox.exec(argv, timeout=self.config.timeout, env=env)
        stdout, found, tail = result.stdout.rpartition(f"\n{marker}\n")
        data: bytes | None = tail.encode() if found else None
        if not found:  # killed, or the output was cut short: fetch the report by itself
            try:
                data = await sandbox.read_file(report)
            finally:
                with anyio.CancelScope(shield=True):
                    await sandbox.write_files({report: None})
            stdout = result.stdout
        output = "\n".join(x for x in (stdout, result.stderr) if x.strip())
        xml = data.decode("utf-8", errors="replace") if data else ""
        results: dict[str, CaseResult] | None = None
        problem = "pytest wrote no report"
        if xml:
            try:
                results, problem = parse_junit(xml), ""
            except JunitError as exc:
                problem = str(exc)
        return _Run(tuple(paths), result.exit_code, result.timed_out, output, xml, results, problem)

    def _run_problem(self, run: _Run) -> str:
        """Why this run says nothing about the tests, or "" when its results can be judged."""
        if run.timed_out:
            return f"test run timed out after {self.config.timeout:g} s"
        if run.exit_code in EXIT_MEANING:
            return f"pytest exit {run.exit_code} ({EXIT_MEANING[run.exit_code]})"
        if run.exit_code == 5:
            return "pytest collected no tests (exit 5)"
        if run.exit_code not in (0, 1):
            return f"pytest ended with exit code {run.exit_code} (killed or crashed?)"
        if run.results is None:
            return f"pytest wrote no readable JUnit report ({run.problem})"
        return ""

    def _broken(self, run: _Run, scrub: Scrubber) -> tuple[str, str]:
        """(problem, feedback) for a run that broke as a whole, or ("", "") when it did not.
        The base commit ran, so a broken run after the patch is the patch's fault."""
        problem = self._run_problem(run)
        if not problem:
            return "", ""
        if run.timed_out:
            return problem, (
                f"The {problem}. Your change may loop forever or be far slower than before; "
                "fix the code so the tests finish."
            )
        tail = _scrub_lines(_tail(run.output, 40), scrub)
        if run.exit_code == 5:
            return problem, (
                "pytest collected no tests after your change: were test files deleted, "
                f"renamed or emptied? The end of pytest's output:\n{tail}"
            )
        return problem, (
            f"The test run broke after your change: {problem}. It ran at the base commit, so "
            "something in your change (for example an import or syntax error that stops "
            f"collection) is the cause. The end of pytest's output:\n{tail}"
        )

    def _verdict(
        self,
        runs: Sequence[_Run],
        said: tuple[str, tuple[Finding, ...]],
        started: float,
        *,
        flaky: tuple[Finding, ...] = (),
        rerun: _Run | None = None,
    ) -> Verdict:
        text, found = said
        logs = "\n\n".join(
            f"$ pytest {' '.join(r.paths) or '(full suite)'}\n{r.output}"
            for r in (*runs, *((rerun,) if rerun else ()))
        )
        artifacts = {"pytest.log": _tail(logs, LOG_LINES)}
        if runs and runs[-1].xml:
            artifacts["junit.xml"] = runs[-1].xml
        return Verdict(
            evaluator=self.name,
            passed=not text and not found,
            feedback=text,
            findings=found + flaky,
            duration_s=round(time.monotonic() - started, 3),
            artifacts=artifacts,
        )


_ROOTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


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


async def _workspace(sandbox: Sandbox) -> str:
    """The workspace's absolute path, to make paths in tracebacks relative ("" if unknown).
    Asked once per sandbox."""
    if sandbox not in _ROOTS:
        result = await sandbox.exec(["pwd"], timeout=30)
        _ROOTS[sandbox] = result.stdout.strip() if result.exit_code == 0 else ""
    return _ROOTS[sandbox]


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


async def _existing_files(sandbox: Sandbox, nodeids: Sequence[str]) -> list[str]:
    """The test files of these node ids that exist; pytest refuses a whole run over one missing
    node id (exit 4), so files are run and ids looked up in the results instead."""
    wanted = [
        path
        for path in dict.fromkeys(file_of(n) for n in nodeids)
        if not (path.startswith(("-", "/")) or ".." in path.split("/"))
    ]
    if not wanted:
        return []
    script = 'for f; do if [ -f "$f" ]; then printf \'%s\\0\' "$f"; fi; done'
    result = await sandbox.exec(["sh", "-c", script, "sh", *wanted], timeout=30)
    present = set(result.stdout.split("\0"))
    return [path for path in wanted if path in present]


def _tail(text: str, lines: int) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept)[-20_000:]


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
