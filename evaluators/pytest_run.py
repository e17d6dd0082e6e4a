"""Run pytest in a sandbox the one way cascade's evaluators do (the tests gate and the reproduction
judge): a JUnit report written under `.git/` and streamed back after a marker, read into node ids
and outcomes, and why a run says nothing about the tests when it does not."""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from cascade.protocols import Sandbox
from evaluators.junit import CaseResult, JunitError, parse_junit
from evaluators.regressions import file_of

REPORT_DIR = ".git"  # inside .git, so the report never shows in the tree or the patch
# Runs "$@" (pytest), then prints a marker line and the JUnit report, removes it, and exits
# with pytest's own code.
RUN_AND_REPORT = (
    'r="$1"; m="$2"; shift 2; "$@"; c=$?; printf \'\\n%s\\n\' "$m"; '
    'cat "$r" 2>/dev/null; rm -f "$r"; exit $c'
)
EXIT_MEANING = {2: "interrupted", 3: "internal error", 4: "usage error"}


@dataclass(frozen=True)
class PytestRun:
    paths: tuple[str, ...]  # what was asked for; () is the full suite
    exit_code: int
    timed_out: bool
    output: str
    xml: str
    results: dict[str, CaseResult] | None  # None: no readable JUnit report
    problem: str = ""  # why the report could not be read
    timeout: float = 0.0  # the limit the run had


async def run_pytest(
    sandbox: Sandbox, paths: Sequence[str], *, args: Sequence[str] = (), timeout: float = 600.0
) -> PytestRun:
    """One pytest run over `paths` (node ids or files; none: the configured suite). `args` come
    after cascade's own options, so a later `--tb` there wins."""
    token = secrets.token_hex(6)
    report = f"{REPORT_DIR}/cascade-junit-{token}.xml"
    marker = f"@@cascade-junit-{token}@@"
    pytest = [
        *("python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=short"),
        *("-o", "junit_family=xunit1", "--continue-on-collection-errors"),
        *args,
        f"--junitxml={report}",
        *paths,
    ]
    # One sandbox call, not three (run, read the report, delete it): a sandbox call is a
    # round trip. The report follows the run's output after a marker no test can predict.
    argv = ["sh", "-c", RUN_AND_REPORT, "sh", report, marker, *pytest]
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    result = await sandbox.exec(argv, timeout=timeout, env=env)
    stdout, found, tail_text = result.stdout.rpartition(f"\n{marker}\n")
    data: bytes | None = tail_text.encode() if found else None
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
    return PytestRun(
        tuple(paths), result.exit_code, result.timed_out, output, xml, results, problem, timeout
    )


def run_problem(run: PytestRun) -> str:
    """Why this run says nothing about the tests, or "" when its results can be judged."""
    if run.timed_out:
        return f"test run timed out after {run.timeout:g} s"
    if run.exit_code in EXIT_MEANING:
        return f"pytest exit {run.exit_code} ({EXIT_MEANING[run.exit_code]})"
    if run.exit_code == 5:
        return "pytest collected no tests (exit 5)"
    if run.exit_code not in (0, 1):
        return f"pytest ended with exit code {run.exit_code} (killed or crashed?)"
    if run.results is None:
        return f"pytest wrote no readable JUnit report ({run.problem})"
    return ""


_ROOTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


async def workspace_root(sandbox: Sandbox) -> str:
    """The workspace's absolute path, to make paths in tracebacks relative ("" if unknown).
    Asked once per sandbox."""
    if sandbox not in _ROOTS:
        result = await sandbox.exec(["pwd"], timeout=30)
        _ROOTS[sandbox] = result.stdout.strip() if result.exit_code == 0 else ""
    return _ROOTS[sandbox]


async def existing_files(sandbox: Sandbox, nodeids: Sequence[str]) -> list[str]:
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


def tail(text: str, lines: int) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept)[-20_000:]
