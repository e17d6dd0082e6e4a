"""The `[sandbox] setup` commands inside the setup container: one time budget for all, output
streamed line by line to a progress callback, the first failure raised with its output's tail."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from typing import Any

from cascade.errors import SandboxError
from sandboxes.container_spec import USER
from sandboxes.docker_api import VENV, WORKDIR

TAIL_LINES = 25  # lines of a failing command's output quoted in the error
# Each command gets what is left of the budget; afterwards every process of the sandbox user goes
# (setsid daemons too), so none holds the exec's output open or lives on into the image.
WRAPPER = (
    't=$1; shift; timeout --signal=KILL "$t" "$@"; rc=$?; kill -KILL -1 2>/dev/null; exit "$rc"'
)


def run_setup(
    client: Any,
    container: Any,
    setup: Sequence[str],
    *,
    env: dict[str, str],
    budget: float,
    progress: Callable[[str], None],
    prepare: str = "",
) -> None:
    """Run each command as the sandbox user in /workspace of the running `container`, within one
    time budget; SandboxError naming the first that fails, its exit code and its last output.
    `prepare`, a script run first (the git metadata's index), fails as cascade's own step."""
    deadline = time.monotonic() + budget
    check = f"test -w {VENV} || test ! -e {VENV}"
    code, _ = _exec(client, container, ["sh", "-c", check], lambda _line: None)
    if code != 0:
        raise SandboxError(
            f"{VENV} in the sandbox image is not writable by the sandbox user: rebuild the image "
            "with `cascade sandbox build` (setup commands install into it)"
        )
    if prepare:
        code, tail = _exec(client, container, ["sh", "-c", prepare], lambda _line: None)
        if code != 0:
            output = "\n".join(tail) or "(no output)"
            raise SandboxError(
                f"could not give setup the git metadata (exit {code}): {output}; set "
                "[sandbox] setup_git = false to run setup without it"
            )
    for command in setup:
        left = deadline - time.monotonic()
        if left < 1:
            raise SandboxError(f"setup ran out of time ({budget:g}s) before {command!r}")
        progress(f"$ {command}")
        started = time.monotonic()
        argv = ["sh", "-c", WRAPPER, "sh", f"{left:.0f}", "sh", "-c", command]
        code, tail = _exec(client, container, argv, lambda line: progress(f"  {line}"), env)
        if code == 0:
            continue
        why = f"exit {code}"
        if code == 137 and time.monotonic() - started >= left - 1:
            why = f"killed after the {budget:g}s setup timeout"
        output = "\n".join(tail) or "(no output)"
        raise SandboxError(f"setup command {command!r} failed ({why}); last output:\n{output}")


def _exec(
    client: Any,
    container: Any,
    argv: list[str],
    on_line: Callable[[str], None],
    env: dict[str, str] | None = None,
) -> tuple[int, list[str]]:
    """Run argv as the sandbox user in /workspace; each output line (stdout and stderr, as they
    come) goes to `on_line`. Returns the exit code and the last TAIL_LINES lines."""
    api = client.api
    exec_id = api.exec_create(
        container.id, argv, user=USER, workdir=WORKDIR, environment=env or None
    )["Id"]
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    pending = b""
    for chunk in api.exec_start(exec_id, stream=True):
        *lines, pending = (pending + chunk).split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace").rstrip("\r")
            tail.append(line)
            on_line(line)
    if pending:
        tail.append(pending.decode(errors="replace"))
        on_line(tail[-1])
    return int(api.exec_inspect(exec_id)["ExitCode"]), list(tail)
