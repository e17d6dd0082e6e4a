"""Local sandboxes left behind by a process that was killed (SIGKILL, a lost machine): each
workspace names its owner — pid and the kernel's start time of that pid, so a reused pid is not
taken for the owner, with the host and pid namespace it runs in — and the next local sandbox
this user opens removes those whose owner is gone. A folder without an owner file (being made,
or made by an older cascade), or owned from another host or container (whose processes this one
cannot see), is left alone."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "cascade-local-"
OWNER_FILE = "owner"


def _started(pid: int) -> str:
    """The pid's start time in clock ticks since boot (/proc/<pid>/stat field 22), "" when the
    process is gone or the system has no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: count after its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def _where() -> str:
    """This host and pid namespace: the processes whose pids this one can look up; "" when
    /proc is not this namespace's (`unshare --pid` without a new /proc: its pids and start
    times would be another namespace's) or cannot be read — then nothing is swept."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return ""
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{os.uname().nodename}/{namespace}".replace(" ", "_")


def mark_owner(root: Path) -> None:
    """Name this process as the owner of the workspace at `root` (where its pid cannot be
    checked, an owner no sweep will ever judge gone)."""
    pid, where = os.getpid(), _where()
    owner = f"{pid} {_started(pid)} {where}" if where else f"{pid} unknown"
    (root / OWNER_FILE).write_text(owner + "\n", encoding="utf-8")


def _gone(root: Path) -> bool:
    try:
        pid_text, started, where = (root / OWNER_FILE).read_text(encoding="utf-8").split()
        pid = int(pid_text)
    except (OSError, ValueError, UnicodeDecodeError):
        return False  # no owner file (yet), or not one of ours: never guessed at
    here = _where()
    if not here or where != here:
        return False  # an owner whose process this one cannot look up
    return _started(pid) != started


def sweep(tmp: Path | None = None) -> list[Path]:
    """Remove this user's local sandboxes whose owner process is gone; return them."""
    folder = Path(tmp or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return []
    for root in candidates:
        try:
            if root.is_symlink() or not root.is_dir() or root.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if _gone(root):
            # coreutils `rm`: a tree too deep for shutil.rmtree's recursion still goes.
            try:
                subprocess.run(["rm", "-rf", "--", str(root)], check=False, capture_output=True)
            except OSError:
                return removed
            if not root.exists():
                removed.append(root)
    if removed:
        log.info("removed %d local sandbox(es) left by processes that are gone", len(removed))
    return removed
