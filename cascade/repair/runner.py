"""The candidates' test runs, in the sandbox, many to one `exec`: a runner script imports pytest
once and forks a child per test run, so a candidate costs its tests and not an interpreter,
pytest's import and an exec round trip. The parent never imports the repository's code: each
child imports the candidate's file fresh, and byte code is neither read nor written (a stale one
for a same-sized file rewritten within the same second would run the previous candidate).

One batch: the original files are put back first (a batch cut short by its timeout may have left
a candidate in place), then for each candidate in order: write it, the proving tests (`-x`; a
timeout each — ten times what they take without a candidate, at least two seconds, at most
`test_timeout`; the child's process group killed at it), and when they pass, the visible suite —
no test that passed without a candidate may fail with it (the suite without one runs once, the
first time it is needed); the original back; one JSON line appended to the results file, so a
batch that is killed still says what it finished. It stops at the first candidate that passes.
A skipped proving test is not a pass. The first batch first runs the proving tests without a
candidate: their time sets the timeout, and when they pass there the search stops (this sandbox
does not show the bug). A child dies with the runner (PR_SET_PDEATHSIG; a SIGTERM kills its
group), so a search cut short leaves no test running.
The files it writes live under `.git/` (outside the tree and any patch) and are removed after."""

from __future__ import annotations

RUNNER = r"""
import ctypes, json, os, signal, sys, time
sys.path[0] = os.getcwd()
sys.dont_write_bytecode = True
sys.pycache_prefix = "/nonexistent/cascade-repair"  # never created: no byte code is read
import pytest

SPEC = json.load(open(sys.argv[1]))
QUIET = ["-p", "no:cacheprovider", "-q", "--no-header", "--tb=no"]
SUITE = [*QUIET, "--continue-on-collection-errors"]
OUT = SPEC["work"] + "-outcomes.json"
CURRENT = []  # the child at work: killed with its group when the runner is told to stop


class Outcomes:
    def __init__(self):
        self.failed, self.passed, self.skipped = set(), set(), set()

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.add(report.nodeid)
        elif report.skipped:
            self.skipped.add(report.nodeid)
        elif report.when == "call":
            self.passed.add(report.nodeid)


def child(args):
    os.setpgid(0, 0)
    try:  # PR_SET_PDEATHSIG: the child dies with the runner, whatever kills the runner
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))
    except (OSError, AttributeError):
        pass
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    seen = Outcomes()
    code = 3
    try:
        code = int(pytest.main(args, plugins=[seen]))
    finally:
        with open(OUT, "w") as handle:
            json.dump({"failed": sorted(seen.failed), "passed": len(seen.passed),
                       "skipped": len(seen.skipped)}, handle)
        os._exit(code)


def stop(signum, frame):
    for pid in CURRENT:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)


def run(args, timeout):
    # (exit code, or None when killed at `timeout`; what the tests did, or None)
    try:
        os.unlink(OUT)
    except FileNotFoundError:
        pass
    pid = os.fork()
    if pid == 0:
        child(args)
    CURRENT[:] = [pid]
    deadline = time.monotonic() + timeout
    code = None
    while code is None:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
        elif time.monotonic() >= deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            CURRENT[:] = []
            return None, None
        else:
            time.sleep(0.005)
    CURRENT[:] = []
    try:
        with open(OUT) as handle:
            return code, json.load(handle)
    except (OSError, ValueError):
        return code, None


def proving(timeout):
    # The proving tests pass only when each ran and passed: a skip is not a pass.
    code, seen = run(["-x", *QUIET, *SPEC["tests"]], timeout)
    if code is None:
        return "timeout"
    ok = code == 0 and seen is not None and seen["passed"] > 0 and not seen["skipped"]
    return "passed" if ok else "failed"


def suite():
    # The visible suite's failing tests (a collection error does not stop it), or None.
    code, seen = run(SUITE, SPEC["suite_timeout"])
    if code not in (0, 1) or seen is None:
        return None
    return set(seen["failed"])


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def say(results, line):
    results.write(json.dumps(line) + "\n")
    results.flush()


asked = "base_failed" in SPEC  # the suite without a candidate was run by an earlier batch
base = None if SPEC.get("base_failed") is None else set(SPEC["base_failed"])
for path, text in SPEC["originals"].items():
    write(path, text)
with open(SPEC["results"], "a") as results:
    limit = SPEC.get("limit")
    if limit is None:  # the first batch: the proving tests without a candidate, and their time
        began = time.monotonic()
        without = proving(SPEC["test_timeout"])
        took = time.monotonic() - began
        limit = min(SPEC["test_timeout"], max(SPEC["floor"], SPEC["factor"] * took))
        say(results, {"limit": round(limit, 3), "base_seconds": round(took, 3),
                      "base_passed": without == "passed"})
        if without == "passed":
            sys.exit(0)
    for candidate in SPEC["candidates"]:
        began = time.monotonic()
        path = candidate["path"]
        write(path, candidate["source"])
        try:
            outcome = proving(limit)
            broke = []
            if outcome == "passed" and not asked:
                asked = True
                write(path, SPEC["originals"][path])
                base = suite()
                write(path, candidate["source"])
                say(results, {"base_failed": None if base is None else sorted(base)})
            if outcome == "passed" and base is not None:
                now = suite()
                broke = ["(the suite did not finish)"] if now is None else sorted(now - base)
                outcome = "broke" if broke else outcome
        finally:
            write(path, SPEC["originals"][path])
        say(results, {"id": candidate["id"], "result": outcome, "broke": broke,
                      "seconds": round(time.monotonic() - began, 3)})
        if outcome == "passed":
            break
"""
