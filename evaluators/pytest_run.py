"""Run pytest in a sandbox the one way cascade's evaluators do (the tests gate and the reproduction
judge): evaluators/sealed_session.py runs it, its source (after its child's) the command, with a
deadline for each test; what that reports — each test's outcome under pytest's own node id
(a test past its deadline failed as timed out), whether pytest finished its session, which files
changed while it ran — is read back here, with why a run says nothing about the tests when it
does not. The report is the last line of the run's output, written after everything the tests
started has ended; output cut by the sandbox's cap means something else wrote there, and the
run has no report."""

from __future__ import annotations

import ast
import base64
import binascii
import json
import secrets
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import anyio

from cascade.protocols import Sandbox
from cascade.workspace.tree import SKIP_DIRS
from evaluators.junit import CaseResult, junit_xml, results_from
from evaluators.regressions import file_of
from evaluators.sealed_session import FILE_MARKER, MARKER

REPORT_DIR = ".git"  # a report too big for the output goes here: never in the tree or the patch
EXIT_MEANING = {2: "interrupted", 3: "internal error", 4: "usage error"}
MAX_REPORT = 64 << 20  # bytes of decompressed report read at most
TRUNCATED = "[output truncated]"
DEFAULT_TEST_TIMEOUT = 60.0  # seconds one test may run (setup, call, teardown) before it fails


@dataclass(frozen=True)
class PytestRun:
    paths: tuple[str, ...]  # what was asked for; () is the full suite
    exit_code: int
    timed_out: bool
    output: str
    xml: str  # the results as JUnit XML, for the record
    results: dict[str, CaseResult] | None  # None: no complete report
    problem: str = ""  # why there is no report
    timeout: float = 0.0  # the limit the run had
    touched: tuple[str, ...] = ()  # workspace files whose inode changed while it ran
    stopped: str = ""  # the last test killed at its deadline when tests were left unrun

    def order(self) -> list[str]:
        """The tests in the order they ran (collection errors, reported first, left out)."""
        return [n for n, r in (self.results or {}).items() if not r.is_collection]


@cache
def session_source() -> str:
    """The program: the child's module, then the parent's without its `__future__` import and
    its import of the child (what it imports is already defined above it)."""
    here = Path(__file__).parent
    parent = (here / "sealed_session.py").read_text(encoding="utf-8")
    lines = parent.splitlines(keepends=True)
    for node in reversed(ast.parse(parent).body):
        if isinstance(node, ast.ImportFrom) and node.module in (
            "__future__",
            "evaluators.sealed_child",
        ):
            del lines[node.lineno - 1 : node.end_lineno]
    return (here / "sealed_child.py").read_text(encoding="utf-8") + "\n\n" + "".join(lines)


async def run_pytest(
    sandbox: Sandbox,
    paths: Sequence[str],
    *,
    args: Sequence[str] = (),
    timeout: float = 600.0,
    test_timeout: float = DEFAULT_TEST_TIMEOUT,
) -> PytestRun:
    """One pytest run over `paths` (node ids or files; none: the configured suite), within
    `timeout` seconds, each test within `test_timeout` (0: no deadline). `args` come after
    cascade's own options, so a later `--tb` there wins."""
    spill = f"{REPORT_DIR}/cascade-session-{secrets.token_hex(6)}.b64"
    pytest = [
        *("-p", "no:cacheprovider", "-q", "--tb=short", "--continue-on-collection-errors"),
        *args,
        *paths,
    ]
    spec = {"args": pytest, "skip": list(SKIP_DIRS), "report": spill, "deadline": test_timeout}
    argv = ["python", "-I", "-B", "-c", session_source(), json.dumps(spec)]
    result = await sandbox.exec(argv, timeout=timeout, env={"PYTHONDONTWRITEBYTECODE": "1"})
    log, kind, payload = _last_line(result.stdout)
    if kind == FILE_MARKER:  # one more round trip, for a report too big for the output
        try:
            raw = await sandbox.read_file(spill)
            payload = raw.decode("ascii", "replace") if raw else ""
        finally:
            with anyio.CancelScope(shield=True):
                await sandbox.write_files({spill: None})
    output = "\n".join(x for x in (log, result.stderr) if x.strip())
    report, problem = _report(payload) if kind else (None, _missing(result.stdout))
    results: dict[str, CaseResult] | None = None
    if report is not None:
        if isinstance(report.get("end"), int):
            results = results_from(r for r in report.get("records", ()) if isinstance(r, dict))
        else:
            problem = (
                "pytest did not finish its session: the test process was killed, crashed or "
                "replaced itself (exec) before it ended"
            )
    touched = tuple(str(p) for p in (report or {}).get("touched", ()))
    return PytestRun(
        paths=tuple(paths),
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        output=output,
        xml=junit_xml(results) if results is not None else "",
        results=results,
        problem=problem,
        timeout=timeout,
        touched=touched,
        stopped=str((report or {}).get("stopped") or ""),
    )


def _last_line(stdout: str) -> tuple[str, str, str]:
    """(the output before it, its marker or "", its payload) of the run's last line."""
    body, _, last = stdout.rstrip("\n").rpartition("\n")
    for marker in (MARKER, FILE_MARKER):
        if last.startswith(marker + " "):
            return body, marker, last[len(marker) + 1 :]
    return stdout, "", ""


def _report(payload: str) -> tuple[dict[str, Any] | None, str]:
    try:
        inflate = zlib.decompressobj()
        data = inflate.decompress(base64.b64decode(payload, validate=True), MAX_REPORT)
        report = json.loads(data)
    except (binascii.Error, zlib.error, ValueError) as exc:
        return None, f"the run's report is unreadable: {exc}"
    if not isinstance(report, dict) or inflate.unconsumed_tail:
        return None, "the run's report is unreadable"
    return report, ""


def _missing(stdout: str) -> str:
    if stdout.rstrip().endswith(TRUNCATED):
        return "its output was cut: something besides pytest wrote to it"
    return "the run ended without a report"


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
        return f"pytest gave no complete report ({run.problem})"
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
