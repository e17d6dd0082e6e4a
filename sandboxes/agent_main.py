"""The sandbox container's pid 1: an init that reaps orphans and ends the container after its TTL,
and a command server on its stdin, so that a command costs a fork here instead of a `docker exec`
(about 60 ms each on this machine; this: a few).

Standard library only: its source is the container's command (`python3 -c`), nothing from
cascade is installed in the image. One JSON request per line on stdin, one JSON response per line
on stdout, matched by `id`:

    {"id": 1, "op": "run", "argv": [...], "env": {...}}      -> {"id": 1, "code": 0,
                                                                  "out": b64, "err": b64}
    {"id": 2, "op": "read", "path": "rel/path"}               -> {"id": 2, "data": b64 | null}
    {"id": 3, "op": "write", "files": [["rel/path", b64 | null], ...]}   -> {"id": 3}
    {"id": 4, "op": "snapshot", "skip": [".git", ...]}        -> {"id": 4, "tree": {path: digest}}

and `{"id": n, "unavailable": "why"}` to every request when it cannot serve safely (it could not
make itself non-dumpable): nothing is run, and the host uses `docker exec` instead.

The snapshot is the gate's tamper check walk; its code (cascade/workspace/tree_walk.py) comes as the
third argument, so the walk has one definition wherever it runs.

and `{"id": n, "error": "..."}` when a request cannot be served. Paths are relative to the
workspace and already checked by the host. Single-threaded (a selector over stdin, the children's
pipes and a SIGCHLD wake-up pipe), so a process-limited sandbox cannot starve it of threads;
it makes itself non-dumpable, so code in the sandbox cannot ptrace it to forge a response, and
as the namespace's init it ignores every signal (SIGKILL included) that code there could send
it, having no handler but SIGCHLD's."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

MAX_OUTPUT = 2_000_000  # bytes kept per stream, as the host keeps from a `docker exec`
DRAIN_S = 0.2  # after a command exits, how long its pipes may stay open (a leftover holding them)


class Job:
    def __init__(self, rid: int, proc: subprocess.Popen[bytes]) -> None:
        self.rid = rid
        self.proc = proc
        self.bufs = {"out": bytearray(), "err": bytearray()}
        self.open = 2
        self.code: int | None = None
        self.exited_at = 0.0


Walker = Callable[[str, frozenset[str]], dict[str, str]]


class Agent:
    def __init__(
        self, workdir: str, ttl: float, walker: Walker | None = None, refuse: str = ""
    ) -> None:
        self.workdir = workdir
        self.refuse = refuse  # non-empty: answer every request `unavailable`, run nothing
        self.walker = walker
        self.deadline = time.monotonic() + ttl
        self.sel = selectors.DefaultSelector()
        self.jobs: dict[int, Job] = {}  # pid -> job
        self.pending = b""

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake_w)
        # No SIGTERM handler: as init, it then ignores SIGTERM from code in the sandbox, which
        # could otherwise end the container mid-run. The host removes containers with SIGKILL.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(wake_r, selectors.EVENT_READ, "wake")
        self.sel.register(0, selectors.EVENT_READ, "stdin")
        while (left := self.deadline - time.monotonic()) > 0:
            wait = min(left, 60.0)
            if any(job.code is not None for job in self.jobs.values()):
                wait = min(wait, DRAIN_S)  # a finished command whose pipes are still open
            try:
                for key, _ in self.sel.select(wait):
                    if key.data == "wake":
                        _drain(wake_r)
                    elif key.data == "stdin":
                        self.read_requests()
                    else:
                        self.read_output(key.fileobj, *key.data)
                self.reap()
                self.finish_done()
            except Exception as exc:
                print(f"agent: {exc!r}", file=sys.stderr, flush=True)

    # -- requests -----------------------------------------------------------------------------

    def read_requests(self) -> None:
        chunk = os.read(0, 1 << 20)
        if not chunk:  # the host went away: stay on as the reaper until the TTL
            self.sel.unregister(0)
            return
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if line.strip():
                self.handle(line)

    def handle(self, line: bytes) -> None:
        rid = -1
        try:
            request = json.loads(line)
            rid = int(request["id"])
            op = request["op"]
            if self.refuse:  # the host then does it all through `docker exec`
                self.respond({"id": rid, "unavailable": self.refuse})
                return
            if op == "run":
                self.start(rid, request["argv"], request.get("env") or {})
            elif op == "read":
                self.respond({"id": rid, "data": self.read_file(request["path"])})
            elif op == "write":
                self.write_files(request["files"])
                self.respond({"id": rid})
            elif op == "snapshot" and self.walker is not None:
                tree = self.walker(self.workdir, frozenset(request["skip"]))
                self.respond({"id": rid, "tree": tree})
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:
            self.respond({"id": rid, "error": f"{type(exc).__name__}: {exc}"})

    def start(self, rid: int, argv: list[str], env: dict[str, str]) -> None:
        proc = subprocess.Popen(
            argv, cwd=self.workdir, env={**os.environ, **env},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        job = Job(rid, proc)
        self.jobs[proc.pid] = job
        for name, pipe in (("out", proc.stdout), ("err", proc.stderr)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            self.sel.register(pipe, selectors.EVENT_READ, (job, name))

    def read_output(self, pipe: Any, job: Job, name: str) -> None:
        fd = pipe.fileno()
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if chunk:
            buf = job.bufs[name]
            if len(buf) < MAX_OUTPUT:
                buf.extend(chunk[: MAX_OUTPUT - len(buf)])
            return
        self.close_pipe(pipe, job)

    def close_pipe(self, pipe: Any, job: Job) -> None:
        self.sel.unregister(pipe)
        pipe.close()
        job.open -= 1

    def reap(self) -> None:
        """Every exited child: ours get their exit code, orphans are just reaped."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.jobs.get(pid)
            if job is not None:
                code = os.waitstatus_to_exitcode(status)
                job.code = 128 - code if code < 0 else code  # killed by a signal: 128 + signo
                job.proc.returncode = job.code  # so Popen never waits for it itself
                job.exited_at = time.monotonic()

    def finish_done(self) -> None:
        now = time.monotonic()
        for pid, job in list(self.jobs.items()):
            if job.code is None:
                continue
            if job.open and now - job.exited_at < DRAIN_S:
                continue
            for pipe in (job.proc.stdout, job.proc.stderr):  # a leftover still holds them
                if pipe is not None and not pipe.closed:
                    self.read_output(pipe, job, "out" if pipe is job.proc.stdout else "err")
                    if not pipe.closed:
                        self.close_pipe(pipe, job)
            del self.jobs[pid]
            self.respond({"id": job.rid, "code": job.code,
                          "out": _b64(job.bufs["out"]), "err": _b64(job.bufs["err"])})  # fmt: skip

    def respond(self, message: dict[str, object]) -> None:
        data = json.dumps(message).encode() + b"\n"
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(1, view) :]
            except BlockingIOError:
                time.sleep(0.001)

    # -- files --------------------------------------------------------------------------------

    def read_file(self, path: str) -> str | None:
        """The file's bytes, following links as the sandbox user would; None when it is not
        a regular file. Opened without blocking and checked before reading: a FIFO (or a link
        to one, or to pid 1's own stdin) planted by code in the sandbox must not stall init."""
        try:
            fd = os.open(os.path.join(self.workdir, path), os.O_RDONLY | os.O_NONBLOCK)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        with os.fdopen(fd, "rb") as handle:
            return _b64(handle.read())

    def write_files(self, files: list[list[str | None]]) -> None:
        """Writes replace what was there (a link is replaced, not followed) and keep an
        executable file executable; deletes of missing files are fine, of directories not."""
        for path, data in files:
            assert path is not None
            target = os.path.join(self.workdir, path)
            if data is None:
                if os.path.isdir(target) and not os.path.islink(target):
                    raise IsADirectoryError(f"could not delete {path}: a directory")
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target)
                continue
            os.makedirs(os.path.dirname(target) or ".", mode=0o755, exist_ok=True)
            mode = 0o644
            if os.path.lexists(target):
                if os.path.isfile(target) and not os.path.islink(target):
                    mode = 0o755 if os.access(target, os.X_OK) else 0o644
                os.unlink(target)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            try:
                os.fchmod(fd, mode)
                view = memoryview(base64.b64decode(data))
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)


def _b64(data: bytes | bytearray) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _undumpable() -> str:
    """No ptrace, no /proc/<pid>/mem or fd/ for processes of the same user (prctl
    PR_SET_DUMPABLE 0). Returns why not, or "": without it a test could forge answers."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(4, 0, 0, 0, 0) != 0:
            return f"prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}"
    except (ImportError, OSError, AttributeError) as exc:
        return f"cannot make itself non-dumpable: {exc!r}"
    return ""


def _walker(source: str) -> Walker:
    namespace: dict[str, object] = {"__name__": "tree_walk"}
    exec(compile(source, "tree_walk", "exec"), namespace)  # noqa: S102 - our own module's source
    return namespace["tree_state"]  # type: ignore[return-value]


def main(argv: list[str]) -> None:
    """argv: TTL seconds, the workspace, and optionally the tree walk's source."""
    ttl, workdir = float(argv[0]), argv[1]
    # Python handles SIGINT itself, and a handled signal reaches init: ignored, it does not.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    refuse = _undumpable()
    Agent(workdir, ttl, _walker(argv[2]) if len(argv) > 2 else None, refuse).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
