"""The workspace walk behind the gate's tamper check (cascade/workspace/tree.py): path -> digest
of mode and content, for every file and link outside the skipped directories. Standard library only:
its source also runs inside sandboxes, as a script (`python -I -c`) and as part of the Docker
sandbox's command server (sandboxes/agent_main.py), where no cascade package is installed."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import sys

LARGE = 64 << 20  # bytes: a bigger file is known by its inode's stat, not its content
BUDGET = 1 << 30  # bytes of content hashed per walk; past it, every file is known by its stat
MAX_DEPTH = 256  # directory levels below the root that the walk descends


def tree_state(root: str, skip: frozenset[str]) -> dict[str, str]:
    """Content digests, except for files over LARGE and past BUDGET (a sparse 16 TB file must
    not stall the gate): those are known by size, inode and times, and ctime cannot be set back
    by an unprivileged process, so a change to them still shows. The walk keeps its own stack
    (a tree thousands of levels deep must not overflow Python's), stops descending at MAX_DEPTH
    (what lies deeper is one entry: a tree that deep is itself a change the check reports), and
    an entry it cannot read is an entry saying so, never an exception."""
    out: dict[str, str] = {}
    left = BUDGET
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        top, depth = stack.pop()
        try:
            names = sorted(os.listdir(top))
        except OSError as exc:
            out[_rel(top, root) + "/"] = f"unlistable: {exc.errno}"
            continue
        below: list[tuple[str, int]] = []
        for name in names:
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError as exc:
                out[_rel(path, root)] = f"unreadable: {exc.errno}"
                continue
            if stat.S_ISDIR(st.st_mode):
                if name in skip:
                    continue
                if depth + 1 > MAX_DEPTH:
                    out[_rel(path, root) + "/"] = "deeper than the walk goes"
                else:
                    below.append((path, depth + 1))
                continue
            digest = hashlib.sha256(oct(st.st_mode).encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(_readlink(path).encode())
            elif stat.S_ISREG(st.st_mode) and st.st_size <= min(LARGE, left):
                left -= st.st_size
                _hash_file(path, digest)
            elif stat.S_ISREG(st.st_mode):
                known = (st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
                digest.update(("stat:" + ":".join(map(str, known))).encode())
            out[_rel(path, root)] = digest.hexdigest()
        stack.extend(reversed(below))  # depth first, in name order: the budget is spent alike
    return out


def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root)


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError as exc:
        return f"unreadable: {exc.errno}"


def _hash_file(path: str, digest: hashlib._Hash) -> None:
    # O_NONBLOCK|O_NOFOLLOW: a file swapped for a FIFO or a link after lstat cannot stall the
    # walk or lead it out of the tree; it reads as whatever it is now, which differs anyway.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        digest.update(f"unreadable: {exc.errno}".encode())
        return
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            digest.update(b"not a regular file")
            return
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


@functools.cache
def source() -> str:
    """This module's text, to run where cascade is not installed (read once)."""
    with open(__file__, encoding="utf-8") as handle:
        return handle.read()


if __name__ == "__main__":  # python -I -c SOURCE SKIPPED_DIR...
    print(json.dumps(tree_state(".", frozenset(sys.argv[1:]))))
