"""The test run as the tests gate runs it in the sandbox: a parent that never imports the
workspace's code, and pytest in a forked child whose results come to the parent as they happen.

Shipped as source (`python -I -B -c <this file> <spec>`, see evaluators/pytest_run.py): standard
library and pytest only, nothing from cascade. What it is for, against code under test that runs
inside pytest and wants to decide its own verdict:

- The parent makes itself non-dumpable (no ptrace, no /proc/<pid>/mem or fd/ for the sandbox user)
  and a child subreaper: every process the tests leave behind, `setsid` or not, becomes its child
  and is killed once pytest has ended.
- The child reports each test's outcome through a pipe as pytest reports it (no report file that
  an `atexit` hook could rewrite), and says when the session ended. A child that never says so —
  killed, crashed, or replaced by `exec` (the pipe closes on exec) — leaves an incomplete report.
- Each file of the workspace whose inode changed during the run is listed (its ctime is newer than
  the run's start: a file rewritten and put back, even with its mtime restored, still shows).
- pytest's output is kept to its end, within a budget, and the report is written after it: a
  noisy suite cannot push the report out of the sandbox's output cap.
- pytest plugins come only from distributions installed outside the workspace (entry-point
  autoload is off; each one is named with `-p`), and pytest is imported before the workspace is
  on `sys.path`, so a module in the workspace cannot stand in for pytest or a plugin.

The parent ends with pytest's exit code (128 + n for a signal n), and the last line it prints
is `MARKER <base64 of zlib of JSON>`, the JSON {"records": [one per report], "end": pytest's exit
status or null, "touched": [paths]}; or `FILE_MARKER <path>` when the report is too big for the
output, written to that path instead.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import signal
import sys
import time
import zlib
from collections.abc import Sequence
from typing import Any, NoReturn

MARKER = "@@cascade-session-report@@"
FILE_MARKER = "@@cascade-session-report-file@@"
OUTPUT_BUDGET = 1_500_000  # bytes this program writes; the sandboxes keep 2,000,000 per stream
REPORT_BUDGET = 1_200_000  # a bigger report goes to a file (`spec["report"]`) instead
MAX_TEXT = 16_000  # characters of one failure's text kept (its start and its end)
MAX_TOUCHED = 200
DRAIN_S = 1.0  # after pytest ends, how long its pipes may still deliver
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


class Reporter:
    """The child's plugin: one JSON line per report, written to the parent's pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.done = False

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

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.send(facts(report, report.when))

    def pytest_collectreport(self, report: Any) -> None:
        if not report.passed and report.nodeid:
            self.send(facts(report, "collect"))

    def pytest_sessionfinish(self, session: Any, exitstatus: Any) -> None:
        self.send({"end": int(exitstatus)})
        self.done = True


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


def child(spec: dict[str, Any], fd: int) -> NoReturn:
    """pytest, as `python -m pytest` would run it in the workspace, reporting to `fd`."""
    code = 3
    try:
        prctl(PR_SET_DUMPABLE, 1)
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        import pytest

        root = os.getcwd()
        plugins = [arg for name in installed_plugins(root) for arg in ("-p", name)]
        args = [*plugins, *spec["args"]]
        sys.path.insert(0, root)  # the workspace importable, after pytest and its plugins
        sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), *args]
        code = int(pytest.main(args, plugins=[Reporter(fd)]))
    except BaseException:  # reported as pytest's own internal error would be
        import traceback

        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream: nothing more to say
            stream.flush()
    os._exit(code & 0xFF)  # no atexit hooks: code under test has had its say


def children(me: int) -> list[int]:
    try:
        with open(f"/proc/self/task/{me}/children") as listing:
            return [int(pid) for pid in listing.read().split()]
    except OSError:
        pass
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc (macOS with the local sandbox): nothing to sweep this way
        return found
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == me:
                found.append(int(entry))
    return found


def sweep() -> None:
    """Kill what the tests left behind: as the subreaper, every orphan of theirs is our child."""
    me = os.getpid()
    for _ in range(50):
        left = children(me)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in left:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def collect(pid: int, report_fd: int, log_fd: int) -> tuple[bytes, bytes, int, int]:
    """(records, the end of the output, bytes of output dropped, exit code) once pytest ends."""
    sel = selectors.DefaultSelector()
    bufs = {report_fd: bytearray(), log_fd: bytearray()}
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    try:
        pidfd = os.pidfd_open(pid)
        sel.register(pidfd, selectors.EVENT_READ)
    except (AttributeError, OSError):
        pidfd = -1  # polled instead
    code: int | None = None
    until = 0.0
    dropped = 0
    while True:
        reading = any(fd in sel.get_map() for fd in bufs)
        if code is not None and (not reading or time.monotonic() >= until):
            break
        if code is None:
            wait: float | None = None if pidfd >= 0 else 0.05
        else:
            wait = max(0.0, until - time.monotonic())
        for key, _ in sel.select(wait):
            fd = int(key.fd)
            if fd == pidfd:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                sel.unregister(fd)
                continue
            buf = bufs[fd]
            buf += chunk
            if fd == log_fd and len(buf) > 2 * OUTPUT_BUDGET:
                dropped += len(buf) - OUTPUT_BUDGET
                del buf[: len(buf) - OUTPUT_BUDGET]
        if code is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                if pidfd >= 0:
                    sel.unregister(pidfd)
                    os.close(pidfd)
                sweep()  # what held their pipes goes with them
                until = time.monotonic() + DRAIN_S
    code = code if code >= 0 else 128 - code
    return bytes(bufs[report_fd]), bytes(bufs[log_fd]), dropped, code


def records(raw: bytes) -> tuple[list[dict[str, Any]], int | None]:
    """The records up to the session's end (what comes after it is not pytest's), and the end."""
    kept: list[dict[str, Any]] = []
    for line in raw.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if "end" in record:
            return kept, int(record["end"])
        if isinstance(record.get("id"), str):
            kept.append(record)
    return kept, None


def touched(since: int, skip: Sequence[str]) -> list[str]:
    """Files of the workspace whose inode changed after `since` (ns), `skip` dirs left out."""
    found: list[str] = []
    for top, dirs, files in os.walk("."):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(files):
            path = os.path.join(top, name)
            try:
                if os.lstat(path).st_ctime_ns > since:
                    found.append(os.path.relpath(path))
            except OSError:
                continue
            if len(found) >= MAX_TOUCHED:
                return found
    return found


def emit(report: dict[str, Any], log: bytes, dropped: int, spill: str) -> None:
    """The end of the output, then the report, as the last thing this process writes."""
    payload = base64.b64encode(zlib.compress(json.dumps(report).encode(), 6)).decode()
    line = f"{MARKER} {payload}\n"
    if len(line) > REPORT_BUDGET:
        with open(spill, "w") as handle:
            handle.write(payload)
        line = f"{FILE_MARKER} {spill}\n"
    room = OUTPUT_BUDGET - len(line) - 200
    if len(log) > room:
        dropped += len(log) - room
        log = log[len(log) - room :]
    note = f"[... {dropped} bytes of output left out ...]\n".encode() if dropped else b""
    view = memoryview(note + log + b"\n" + line.encode())
    while view:
        view = view[os.write(1, view) :]


def main(argv: Sequence[str]) -> int:
    spec = json.loads(argv[0])
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    import tempfile

    mark, name = tempfile.mkstemp(dir=".git" if os.path.isdir(".git") else None)
    os.unlink(name)
    since = os.fstat(mark).st_ctime_ns  # the run's start, on the file systems' own clock
    os.close(mark)
    report_r, report_w = os.pipe()  # close-on-exec: an `exec` in the child loses it
    log_r, log_w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        os.close(log_r)
        os.dup2(log_w, 1)
        os.dup2(log_w, 2)
        os.close(log_w)
        child(spec, report_w)
    os.close(report_w)
    os.close(log_w)
    raw, log, dropped, code = collect(pid, report_r, log_r)
    found, end = records(raw)
    report = {"records": found, "end": end, "touched": touched(since, spec["skip"])}
    emit(report, log, dropped, spec["report"])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
