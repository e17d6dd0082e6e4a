"""A local sandbox whose process was killed (SIGKILL: no cleanup ran) is removed by the next
process that opens one; a live owner's, a folder being made, and another user's never are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cascade.testing.repos import git, make_repo
from sandboxes.local_leftovers import OWNER_FILE, PREFIX, _started, _where, mark_owner, sweep

OPEN = """
import sys, time, anyio
from sandboxes.local_sandbox import LocalSandbox

async def main():
    box = await LocalSandbox.open(__import__("pathlib").Path(sys.argv[1]), sys.argv[2])
    print(box._root, flush=True)
    if sys.argv[3] == "wait":
        time.sleep(600)
    await box.close()

anyio.run(main)
"""


def _folder(tmp: Path, name: str, owner: str | None) -> Path:
    root = tmp / f"{PREFIX}{name}"
    (root / "work").mkdir(parents=True)
    if owner is not None:
        (root / OWNER_FILE).write_text(owner)
    return root


def test_only_folders_whose_owner_is_gone_are_swept(tmp_path: Path) -> None:
    done = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    dead = f"{done.pid} {_started(done.pid)} {_where()}\n"
    done.wait()
    me = _folder(tmp_path, "live", None)
    mark_owner(me)
    gone = _folder(tmp_path, "dead", dead)
    reused = _folder(tmp_path, "reused", f"{os.getpid()} 1 {_where()}\n")  # pid reused
    elsewhere = _folder(tmp_path, "elsewhere", f"{done.pid} 1 otherhost/pid:[1]\n")
    making = _folder(tmp_path, "making", None)  # mkdtemp'd, owner not written yet
    garbled = _folder(tmp_path, "garbled", "not a pid")
    other = tmp_path / "unrelated-dir"
    other.mkdir()
    (other / OWNER_FILE).write_text(dead)
    assert sorted(sweep(tmp_path)) == sorted([gone, reused])
    assert me.is_dir() and making.is_dir() and garbled.is_dir() and other.is_dir()
    assert elsewhere.is_dir()  # another host's or container's process: not ours to judge
    assert not gone.exists() and not reused.exists()


def test_a_sigkilled_processs_sandbox_is_removed_by_the_next_one(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    commit = git(repo, "rev-parse", "HEAD").strip()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    argv = [sys.executable, "-c", OPEN, str(repo), commit]
    killed = subprocess.Popen([*argv, "wait"], env=env, stdout=subprocess.PIPE, text=True)
    assert killed.stdout is not None
    left = Path(killed.stdout.readline().strip())
    assert left.parent == temp and (left / OWNER_FILE).is_file()
    alive = [p for p in temp.iterdir() if p.name.startswith(PREFIX)]
    # While its owner runs, another process's sandbox opens and closes beside it: it stays.
    subprocess.run([*argv, "close"], env=env, check=True, capture_output=True)
    assert [p for p in temp.iterdir() if p.name.startswith(PREFIX)] == alive
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    time.sleep(0.1)
    assert left.is_dir()  # no cleanup ran
    subprocess.run([*argv, "close"], env=env, check=True, capture_output=True)
    assert not left.exists()
    assert [p for p in temp.iterdir() if p.name.startswith(PREFIX)] == []


def test_where_proc_is_another_namespaces_nothing_is_judged_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `unshare --pid` without a new /proc, a pid read there is another namespace's: an
    owner written so is never judged gone, and a sweeper there removes nothing."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = f"{done.pid} {_started(done.pid)} {_where()}\n"
    done.wait()
    gone = _folder(tmp_path, "dead", dead)
    real = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real + 1)  # /proc/self is not us
    assert _where() == ""
    unsure = _folder(tmp_path, "unsure", None)
    mark_owner(unsure)
    assert (unsure / OWNER_FILE).read_text().split()[1] == "unknown"
    assert sweep(tmp_path) == [] and gone.is_dir()
    monkeypatch.setattr(os, "getpid", lambda: real)
    assert sweep(tmp_path) == [gone] and unsure.is_dir()
