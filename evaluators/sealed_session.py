"""The test run as the tests gate runs it in the sandbox: a parent that never imports the
workspace's code, and pytest in a forked child (evaluators/sealed_child.py) whose results come to
the parent as they happen.

Shipped as source (`python -I -B -c <the child's source, then this file's> <spec>`, see
evaluators/pytest_run.py): standard library and pytest only, nothing from cascade. What it is
for, against code under test that runs inside pytest and wants to decide its own verdict:

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
- Each test has a deadline (`spec["deadline"]` seconds, 0: none), kept here, where each test's
  start is seen: the child is sent INTERRUPT, and the test fails as timed out (see the child). One
  still running GRACE_S later has its stack dumped and its process killed; it is recorded as a
  failed test, and the tests not yet run go on in a new child, up to MAX_KILLS times.

The parent ends with pytest's exit code (128 + n for a signal n; at least 1 when a test had to
be killed), and the last line it prints is `MARKER <base64 of zlib of JSON>`, the JSON
{"records": [one per report], "end": pytest's exit status or null, "touched": [paths],
"stopped": the last test killed when tests were left unrun, else ""}; or `FILE_MARKER <path>`
when the report is too big for the output, written to that path instead.
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
from typing import Any

from evaluators.sealed_child import (  # shipped: pasted above this file (see pytest_run.py)
    DUMP,
    INTERRUPT,
    MAX_TEXT,
    PR_SET_DUMPABLE,
    TIMED_OUT,
    cap,
    child,
    prctl,
)

MARKER = "@@cascade-session-report@@"
FILE_MARKER = "@@cascade-session-report-file@@"
OUTPUT_BUDGET = 1_500_000  # bytes this program writes; the sandboxes keep 2,000,000 per stream
REPORT_BUDGET = 1_200_000  # a bigger report goes to a file (`spec["report"]`) instead
MAX_TOUCHED = 200
DRAIN_S = 1.0  # after pytest ends, how long its pipes may still deliver
GRACE_S = 5.0  # after the interrupt, how long a test may take to fail and tear down (at most)
DUMP_S = 1.0  # how long a stuck test's stack dump may take
MAX_KILLS = 5  # tests killed at their deadline before the rest are left unrun
KILLED = "; it did not respond to the interrupt, so its process was killed"
PR_SET_CHILD_SUBREAPER = 36


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


class Round:
    """One child's run, as the parent follows it: its records up to the session's end (what comes
    after is not pytest's), the tests it started, and the one it killed for its deadline."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.end: int | None = None
        self.started: list[str] = []
        self.collected = -1  # unknown
        self.running = ""  # the test between its start and its finish
        self.since = 0.0
        self.interrupted = False
        self.hung = ""  # the test whose process was killed, with where it was stuck
        self.stuck = ""
        self.pending = bytearray()
        self.log = bytearray()
        self.dropped = 0
        self.code = 0

    def take(self, chunk: bytes) -> None:
        self.pending += chunk
        *lines, rest = bytes(self.pending).split(b"\n")
        self.pending = bytearray(rest)
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or self.end is not None:
                continue
            if "end" in record:
                self.end = int(record["end"])
            elif isinstance(record.get("start"), str):
                self.running, self.since, self.interrupted = (
                    record["start"],
                    time.monotonic(),
                    False,
                )
                self.started.append(self.running)
            elif "finish" in record:
                self.running = ""
            elif isinstance(record.get("collected"), int):
                self.collected = record["collected"]
            elif isinstance(record.get("id"), str):
                self.records.append(record)

    def due(self, limit: float) -> float | None:
        """When the running test's next step (interrupt, kill) is due, or None."""
        if not (limit > 0 and self.running and not self.hung):
            return None
        return self.since + limit + (min(GRACE_S, max(limit, 1.0)) if self.interrupted else 0)

    def timed_out(self, limit: float) -> dict[str, Any]:
        message = "Failed: " + TIMED_OUT.format(limit) + KILLED
        text = cap(self.stuck + "\nE   " + message)
        record = {"id": self.hung, "when": "call", "outcome": "failed", "crash": message}
        return {**record, "text": text, "xfail": None, "skip": None}


def enforce(pid: int, run: Round, limit: float, dump_fd: int) -> None:
    """The running test is past its deadline: interrupt it, or, past the grace too, kill it."""
    if not run.interrupted:
        run.interrupted = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, INTERRUPT)
        return
    run.hung, run.stuck = run.running, stack(pid, dump_fd)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stack(pid: int, fd: int) -> str:
    """Where the stuck test is, from its faulthandler dump, as `--tb=short` would show it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, DUMP)
    raw = bytearray()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    until = time.monotonic() + DUMP_S
    while (left := until - time.monotonic()) > 0 and sel.select(min(left, 0.2) if raw else left):
        chunk = os.read(fd, 1 << 16)
        if not chunk or len(raw) > MAX_TEXT:
            break
        raw += chunk
    sel.close()
    blocks = raw.decode(errors="replace").split("\n\n")
    block = next((b for b in blocks if "_pytest/runner.py" in b), blocks[0])
    root = os.getcwd() + os.sep
    lines: list[str] = []
    for line in reversed(block.splitlines()[1:]):  # most recent call last, as pytest shows it
        found = line.strip().removeprefix('File "').rsplit('", line ', 1)
        if len(found) == 2 and " in " in found[1]:
            number, func = found[1].split(" in ", 1)
            lines.append(f"{found[0].removeprefix(root)}:{number}: in {func}")
    # From the first frame in the workspace on: what is above it is pytest's own machinery.
    first = next((i for i, line in enumerate(lines) if not line.startswith(("/", "<"))), 0)
    lines = lines[first:]
    return "\n".join(lines) if lines else "(no stack: the process did not answer the dump signal)"


def collect(pid: int, fds: tuple[int, int, int], limit: float) -> Round:
    """Follow the child until it has ended and its pipes are drained (or DRAIN_S has passed),
    keeping its deadlines."""
    report_fd, log_fd, dump_fd = fds
    run = Round()
    sel = selectors.DefaultSelector()
    for fd in (report_fd, log_fd):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    try:
        pidfd = os.pidfd_open(pid)
        sel.register(pidfd, selectors.EVENT_READ)
    except (AttributeError, OSError):
        pidfd = -1  # polled instead
    code: int | None = None
    until = 0.0
    while True:
        reading = any(fd in sel.get_map() for fd in (report_fd, log_fd))
        if code is not None and (not reading or time.monotonic() >= until):
            break
        due = run.due(limit) if code is None else until
        wait = None if due is None else max(0.0, due - time.monotonic())
        if code is None and pidfd < 0:
            wait = min(wait if wait is not None else 0.05, 0.05)
        for key, _ in sel.select(wait):
            fd = int(key.fd)
            if fd == pidfd:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                sel.unregister(fd)
            elif fd == report_fd:
                run.take(chunk)
            else:
                run.log += chunk
                if len(run.log) > 2 * OUTPUT_BUDGET:
                    run.dropped += len(run.log) - OUTPUT_BUDGET
                    del run.log[: len(run.log) - OUTPUT_BUDGET]
        if code is None and (due := run.due(limit)) is not None and time.monotonic() >= due:
            enforce(pid, run, limit, dump_fd)
        if code is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                if pidfd >= 0:
                    sel.unregister(pidfd)
                    os.close(pidfd)
                sweep()  # what held their pipes goes with them
                until = time.monotonic() + DRAIN_S
    if run.interrupted and run.running and run.end is None and not run.hung:
        run.hung = run.running  # it died of the interrupt: its handler was replaced
        run.stuck = "(no stack: the test process ended on the interrupt)"
    run.code = code if code >= 0 else 128 - code
    return run


def rounds(spec: dict[str, Any]) -> tuple[list[Round], str]:
    """Children until one ends its session, each leaving out the tests that ran in those before
    it; and the last test killed when MAX_KILLS left tests unrun ("" when none were)."""
    done: list[Round] = []
    skip: list[str] = []
    limit = float(spec.get("deadline") or 0)
    while True:
        pipes = [os.pipe() for _ in range(3)]  # report, log, dump; close-on-exec: an `exec`
        sys.stdout.flush()  # in the child loses them
        pid = os.fork()
        if pid == 0:
            (report_r, report_w), (log_r, log_w), (dump_r, dump_w) = pipes
            for fd in (report_r, log_r, dump_r):
                os.close(fd)
            os.dup2(log_w, 1)
            os.dup2(log_w, 2)
            os.close(log_w)
            child(spec, report_w, dump_w, skip)
        for _, write in pipes:
            os.close(write)
        try:
            run = collect(pid, (pipes[0][0], pipes[1][0], pipes[2][0]), limit)
        finally:
            for read, _ in pipes:
                os.close(read)
        done.append(run)
        skip += run.started
        if not run.hung:
            return done, ""
        run.records.append(run.timed_out(limit))
        left = max(run.collected - len(run.started), 0)
        stop = not left or len(done) >= MAX_KILLS
        then = f"{left} test(s) {'not run' if stop else 'to run in a new process'}"
        run.log += f"\n[{run.hung} was killed at its deadline; {then}]\n".encode()
        if stop:
            return done, run.hung if left else ""


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
    done, stopped = rounds(spec)
    last = done[-1]
    end, code = (1, 1) if last.hung else (last.end, last.code)
    if len(done) > 1 and code in (0, 5):  # a test was killed: the run failed
        end, code = (1 if end is not None else None), 1
    report = {
        "records": [record for run in done for record in run.records],
        "end": end,
        "touched": touched(since, spec["skip"]),
        "stopped": stopped,
    }
    log = b"".join(bytes(run.log) for run in done)
    emit(report, log, sum(run.dropped for run in done), spec["report"])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
