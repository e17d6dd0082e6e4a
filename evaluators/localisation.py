"""Fault localisation's measurement, in the sandbox at its current (base) tree: pytest under
coverage.py with one dynamic context per test node id (parametrised cases apart), each test's
outcome, read back as spectra for cascade/core/localise.py to rank. It never judges a patch and
runs before any model answer; nothing it returns is text from the run (numbers, paths, lines).

How: a runner script and an rc file written under `.git/` (outside the tree and any patch, as
the coverage gate's data) run `python -m coverage run <runner> <pytest args>`; the runner is
`python -m pytest` with one plugin object that switches coverage's context to each test's node
id at its start and back to "" at its end, and writes the outcomes to a JSON file. Coverage runs
the ctrace core (sys.monitoring, the default on 3.14, cannot switch contexts). A second script
reads the data file (`contexts_by_lineno`) into JSON there. Every file is deleted afterwards."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from cascade.core.localise import (
    TOP,
    FunctionSpan,
    Localisation,
    Spectra,
    function_spans,
    is_named,
    rank_spectra,
    suspect_files,
)
from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import ExecResult
from cascade.workspace.tree import SKIP_DIRS
from evaluators.pytest_run import existing_files
from evaluators.regressions import file_of
from evaluators.trusted_files import under_tests

DATA_DIR = ".git"
MAX_FILES = 100  # suspicious files whose source is read for function spans
MAX_SOURCE = 1_000_000  # bytes: a bigger file is ranked by statements only
READ_TIMEOUT = 120.0  # seconds for reading the data back, apart from the cap on the test runs
NOT_SOURCE = frozenset({*SKIP_DIRS, "site-packages", "dist-packages", ".venv", "venv", ".tox"})

RC = """\
[run]
relative_files = True
core = ctrace
omit = */{name}-*
"""
# The runner: argv[1] is the spec (proving test names, the cap on others, the outcomes file),
# the rest pytest's arguments. sys.path[0] is the workspace, as under `python -m pytest`.
RUNNER = """\
import json, os, sys
sys.path[0] = os.getcwd()
import coverage
import pytest

SPEC = json.loads(sys.argv[1])


def named(nodeid, names):
    return any(nodeid == n or nodeid.startswith((n + "[", n + "::")) for n in names if n)


class Localise:
    def __init__(self):
        self.cov = coverage.Coverage.current()
        self.outcomes = {}
        self.foreign = False
        self.deselected = 0

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        cap = SPEC["max_tests"]
        if cap is None:
            return
        keep, drop, others = [], [], 0
        for item in items:
            if named(item.nodeid, SPEC["failing"]):
                keep.append(item)
            elif others < cap:
                others += 1
                keep.append(item)
            else:
                drop.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
            self.deselected = len(drop)

    def pytest_runtest_logstart(self, nodeid, location):
        if self.cov is not None:
            self.foreign = self.foreign or coverage.Coverage.current() is not self.cov
            self.cov.switch_context(nodeid)

    def pytest_runtest_logfinish(self, nodeid, location):
        if self.cov is not None:
            self.cov.switch_context("")

    def pytest_runtest_logreport(self, report):
        if report.when == "call":  # an xfail is "skipped", an xpass "passed"
            self.outcomes[report.nodeid] = report.outcome
        elif report.when == "setup" and not report.passed:
            self.outcomes[report.nodeid] = "error" if report.failed else "skipped"
        elif report.when == "teardown" and report.failed:
            if self.outcomes.get(report.nodeid, "passed") == "passed":
                self.outcomes[report.nodeid] = "error"

    def pytest_sessionfinish(self, session):
        with open(SPEC["out"], "w") as out:
            json.dump({"outcomes": self.outcomes, "measured": self.cov is not None,
                       "foreign": self.foreign, "deselected": self.deselected}, out)


raise SystemExit(pytest.main(sys.argv[2:], plugins=[Localise()]))
"""
# argv: the data file, the output. Writes {"contexts": [names], "files": {path: {line: [ids]}}}.
READER = """\
import json, sys
from coverage import CoverageData
data = CoverageData(basename=sys.argv[1])
data.read()
names, files = {}, {}
for path in sorted(data.measured_files()):
    lines = {}
    for line, contexts in sorted(data.contexts_by_lineno(path).items()):
        lines[line] = sorted(names.setdefault(c, len(names)) for c in contexts)
    files[path] = lines
with open(sys.argv[2], "w") as out:
    json.dump({"contexts": list(names), "files": files}, out)
"""


async def collect_spectra(
    sandbox: Sandbox, failing: Sequence[str], *, timeout: float, max_tests: int | None = None
) -> Spectra:
    """Every test of the configured suite (pytest with no paths) under coverage, one context per
    test; with `max_tests`, the proving tests (`failing`) and the first `max_tests` others in
    collection order. Proving tests the suite did not collect (a file outside `testpaths`) run
    next, in the same data. The test runs have `timeout` seconds between them (exceeded: an
    InfraError naming the cap); reading the data back has READ_TIMEOUT of its own."""
    measure = _Measure(sandbox, tuple(failing), time.monotonic(), timeout)
    try:
        await sandbox.write_files(
            {measure.runner: RUNNER.encode(), measure.rc: RC.format(name=measure.name).encode()}
        )
        outcomes, capped = await measure.run((), max_tests, append=False)
        unseen = [n for n in failing if not any(is_named(o, (n,)) for o in outcomes)]
        ran = {file_of(o) for o in outcomes}
        files = [f for f in await existing_files(sandbox, unseen) if f not in ran] if unseen else []
        if files:
            cap = None if max_tests is None else 0
            more, _ = await measure.run(files, cap, append=True)  # its others: none at a cap
            outcomes.update(more)
        read = ["python", "-c", READER, measure.data, measure.report]
        result = await sandbox.exec(read, timeout=READ_TIMEOUT)
        raw = await sandbox.read_file(measure.report)
    finally:
        with anyio.CancelScope(shield=True):
            await sandbox.write_files(dict.fromkeys(measure.created))
    if raw is None:
        raise InfraError(f"localisation: coverage's data could not be read: {_tail(result)}")
    try:
        lines, unattributed = _spectra(_json(raw, "coverage's data"))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        what = f"localisation: coverage's data is not what the reader writes: {exc}"
        raise InfraError(what) from exc
    return Spectra(
        outcomes=outcomes,
        lines=lines,
        unattributed=unattributed,
        capped=capped,
        duration_s=round(time.monotonic() - measure.started, 3),
    )


async def localise(
    sandbox: Sandbox,
    failing: Sequence[str],
    *,
    timeout: float,
    top: int = TOP,
    max_tests: int | None = None,
) -> Localisation:
    """Spectra, then the function spans of the suspicious files (read from the sandbox), ranked."""
    spectra = await collect_spectra(sandbox, failing, timeout=timeout, max_tests=max_tests)
    spans: dict[str, list[FunctionSpan]] = {}
    for path in suspect_files(spectra, failing, limit=MAX_FILES, is_test=under_tests):
        source = await sandbox.read_file(path)
        if source is not None and len(source) <= MAX_SOURCE:
            spans[path] = function_spans(source.decode("utf-8", errors="replace"))
    return rank_spectra(spectra, failing, spans, top=top, is_test=under_tests)


@dataclass(frozen=True)
class _Measure:
    """One measurement: its files under `.git/` (one token names them all) and its clock."""

    sandbox: Sandbox
    failing: tuple[str, ...]
    started: float
    timeout: float
    name: str = field(default_factory=lambda: f"cascade-localise-{secrets.token_hex(6)}")

    def _path(self, what: str) -> str:
        return f"{DATA_DIR}/{self.name}-{what}"

    @property
    def runner(self) -> str:
        return self._path("run.py")

    @property
    def rc(self) -> str:
        return self._path("rc")

    @property
    def data(self) -> str:
        return self._path("data")

    @property
    def report(self) -> str:
        return self._path("spectra.json")

    @property
    def created(self) -> list[str]:
        outcomes = [self._path(f"outcomes-{n}.json") for n in (1, 2)]
        return [self.runner, self.rc, self.data, f"{self.data}-journal", self.report, *outcomes]

    async def run(
        self, paths: Sequence[str], max_tests: int | None, *, append: bool
    ) -> tuple[dict[str, str], int]:
        """One measured pytest run (the second appends to the first's data): node id -> outcome,
        and how many tests the cap left out."""
        out = self._path(f"outcomes-{2 if append else 1}.json")
        spec = json.dumps({"failing": list(self.failing), "max_tests": max_tests, "out": out})
        argv = [
            *("python", "-m", "coverage", "run", f"--rcfile={self.rc}", f"--data-file={self.data}"),
            *(("--append",) if append else ()),
            *(self.runner, spec, "-p", "no:cacheprovider", "-q", "--no-header", "--tb=no"),
            *("--continue-on-collection-errors", *paths),
        ]
        left = self.timeout - (time.monotonic() - self.started)
        if left <= 0:
            raise _timed_out(self.timeout)
        result = await self.sandbox.exec(argv, timeout=left, env={"PYTHONDONTWRITEBYTECODE": "1"})
        if result.timed_out:
            raise _timed_out(self.timeout)
        raw = await self.sandbox.read_file(out)
        if raw is None or result.exit_code not in (0, 1, 5):
            raise InfraError(
                f"localisation: the measured test run ended with exit {result.exit_code} "
                f"and {'no' if raw is None else 'a'} report: {_tail(result)}"
            )
        report = _json(raw, "the test run's report")
        if not isinstance(report, dict) or not isinstance(report.get("outcomes"), dict):
            raise InfraError("localisation: the test run's report is not the runner's")
        if not report.get("measured"):
            raise InfraError("localisation: the test run was not under coverage")
        if report.get("foreign"):
            raise InfraError(
                "localisation: another coverage measurement (pytest-cov in addopts?) replaced "
                "cascade's during the run, so the per-test contexts are incomplete"
            )
        outcomes = {str(k): str(v) for k, v in report["outcomes"].items()}
        return outcomes, int(report.get("deselected") or 0)


def _spectra(raw: Any) -> tuple[dict[str, dict[str, frozenset[int]]], int]:
    """Per test, the workspace files and lines it ran; and how many lines ran outside any test."""
    contexts = [str(c) for c in raw["contexts"]]
    files: dict[str, dict[str, list[int]]] = raw["files"]
    per_test: dict[str, dict[str, set[int]]] = {}
    unattributed = 0
    for path, by_line in files.items():
        if not _is_source(path):
            continue
        for line, ids in by_line.items():
            tests = [contexts[i] for i in ids if contexts[i]]
            unattributed += not tests and not under_tests(path)
            for test in tests:
                per_test.setdefault(test, {}).setdefault(path, set()).add(int(line))
    frozen = {t: {p: frozenset(ls) for p, ls in by.items()} for t, by in per_test.items()}
    return frozen, unattributed


def _is_source(path: str) -> bool:
    """A workspace file: relative (coverage's `relative_files` keeps what lies outside the
    workspace absolute), Python, and not in a tool's or an environment's folder."""
    parts = path.split("/")
    return (
        not path.startswith(("/", "../"))
        and path.endswith(".py")
        and not NOT_SOURCE.intersection(parts[:-1])
    )


def _timed_out(timeout: float) -> InfraError:
    return InfraError(f"localisation: the test run exceeded its cap of {timeout:g} s")


def _tail(result: ExecResult) -> str:
    return (result.stderr.strip() or result.stdout.strip())[-400:]


def _json(raw: bytes, what: str) -> Any:
    """Text the sandbox wrote, as JSON; anything else is the sandbox's fault, not the run's."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InfraError(f"localisation: {what} is not JSON: {exc}") from exc
