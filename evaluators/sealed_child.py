"""The child of the sealed test run (evaluators/sealed_session.py): pytest, with a plugin that
streams each report to the parent through a pipe, says when each test starts and ends, and fails
a test whose deadline the parent signals. Shipped as source with the parent, pasted above it
(evaluators/pytest_run.py): standard library and pytest only, and pytest is imported only in
the child, before the workspace is on `sys.path`.

The deadline: the parent sends INTERRUPT once a test has run its deadline. Inside one of the
test's phases (setup, call, teardown) the handler fails it with `timed out after N s (per-test
deadline)`, and pytest's traceback shows where it was: a loop, a sleep, a wait on a lock or a
socket all give way to a Python signal handler. INTERRUPT is a real-time signal, not SIGALRM, so
a suite's own alarms and handlers stay its own; a test that blocks or replaces INTERRUPT, or is
stuck in C code, is the parent's to kill (DUMP asks faulthandler where it is first)."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import sys
import time
from collections.abc import Generator, Sequence
from typing import Any, NoReturn

MAX_TEXT = 16_000  # characters of one failure's text kept (its start and its end)
TIMED_OUT = "timed out after {:g} s (per-test deadline)"
PHASES = ("pytest_runtest_setup", "pytest_runtest_call", "pytest_runtest_teardown")
_RT = getattr(signal, "SIGRTMIN", None)  # None on macOS (the local sandbox)
INTERRUPT = _RT + 6 if _RT else signal.SIGUSR1
DUMP = _RT + 7 if _RT else signal.SIGUSR2
PR_SET_DUMPABLE = 4


class Reporter:
    """The child's plugin: one JSON line per report, written to the parent's pipe; also when each
    test starts and ends (for its deadline), and how many will run. Tests in `skip` (they ran in
    an earlier child) are left out."""

    def __init__(self, fd: int, skip: Sequence[str] = ()) -> None:
        self.fd = fd
        self.done = False
        self.skip = frozenset(skip)
        self.started = 0.0

    def send(self, record: dict[str, Any]) -> None:
        if self.done:
            return
        view = memoryview(json.dumps(record).encode() + b"\n")
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:
            self.done = True  # the parent is gone: nothing will read it

    def pytest_configure(self, config: Any) -> None:
        # Read by pytest's start-up only; the tests see the environment they would otherwise.
        os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        left = [item for item in items if item.nodeid not in self.skip]
        if len(left) < len(items):
            config.hook.pytest_deselected(items=[i for i in items if i.nodeid in self.skip])
            items[:] = left

    def pytest_collection_finish(self, session: Any) -> None:
        self.send({"collected": len(session.items)})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.started = time.monotonic()
        self.send({"start": nodeid})

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.send({"finish": nodeid})

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.send(facts(report, report.when))

    def pytest_collectreport(self, report: Any) -> None:
        if not report.passed and report.nodeid:
            self.send(facts(report, "collect"))

    def pytest_sessionfinish(self, session: Any, exitstatus: Any) -> None:
        self.send({"end": int(exitstatus)})
        self.done = True


class Deadline:
    """The child's side of the deadline: INTERRUPT fails the running test, but only inside one of
    its phases (pytest records what they raise) and only once it has run `limit` seconds (a late
    signal for the previous test is ignored). Its hooks are made wrappers in `child`."""

    def __init__(self, reporter: Reporter, limit: float, fail: Any) -> None:
        self.reporter, self.limit, self.fail = reporter, limit, fail
        self.phase = False

    def within(self) -> Generator[None, Any, None]:
        self.phase = True
        yield
        self.phase = False

    pytest_runtest_setup = pytest_runtest_call = pytest_runtest_teardown = within

    def interrupt(self, signum: int, frame: Any) -> None:
        __tracebackhide__ = True  # pytest shows where the test was, not this handler
        ran = time.monotonic() - self.reporter.started
        if self.phase and ran >= self.limit * 0.9:
            self.phase = False
            self.fail(TIMED_OUT.format(self.limit))


def facts(report: Any, when: str) -> dict[str, Any]:
    """What the host needs of one report to say what pytest's JUnit report would have said."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    skip = list(longrepr) if isinstance(longrepr, tuple) and len(longrepr) == 3 else None
    return {
        "id": report.nodeid,
        "when": when,
        "outcome": report.outcome,
        "crash": cap(str(crash.message)) if crash is not None else None,
        "text": "" if longrepr is None else cap(str(longrepr)),
        "xfail": getattr(report, "wasxfail", None),
        "skip": [str(x) for x in skip] if skip else None,
    }


def cap(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    head = MAX_TEXT // 4
    return text[:head] + "\n[...]\n" + text[-(MAX_TEXT - head) :]


def prctl(option: int, value: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass  # not Linux, or no libc: the run still works, less guarded


def installed_plugins(root: str) -> list[str]:
    """Names of the `pytest11` entry points of distributions outside the workspace."""
    from importlib.metadata import distributions

    inside = os.path.realpath(root) + os.sep
    names: list[str] = []
    for dist in distributions():
        try:
            where = os.path.realpath(str(dist.locate_file(""))) + os.sep
            points = [ep.name for ep in dist.entry_points if ep.group == "pytest11"]
        except Exception:  # noqa: S112 - unreadable metadata: not a plugin we load
            continue
        if not where.startswith(inside):
            names += [name for name in points if name not in names]
    return names


def child(spec: dict[str, Any], fd: int, dump_fd: int, skip: Sequence[str]) -> NoReturn:
    """pytest, as `python -m pytest` would run it in the workspace, reporting to `fd`."""
    code = 3
    try:
        prctl(PR_SET_DUMPABLE, 1)
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        import pytest

        reporter = Reporter(fd, skip)
        used: list[object] = [reporter]
        limit = float(spec.get("deadline") or 0)
        if limit > 0:
            deadline = Deadline(reporter, limit, pytest.fail)
            for name in PHASES:  # marked here: this file imports only the standard library
                pytest.hookimpl(hookwrapper=True)(getattr(Deadline, name))
            signal.signal(INTERRUPT, deadline.interrupt)
            faulthandler.register(DUMP, file=dump_fd, all_threads=True)
            used.append(deadline)
        root = os.getcwd()
        plugins = [arg for name in installed_plugins(root) for arg in ("-p", name)]
        args = [*plugins, *spec["args"]]
        sys.path.insert(0, root)  # the workspace importable, after pytest and its plugins
        sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), *args]
        code = int(pytest.main(args, plugins=used))
    except BaseException:  # reported as pytest's own internal error would be
        import traceback

        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream: nothing more to say
            stream.flush()
    os._exit(code & 0xFF)  # no atexit hooks: code under test has had its say
