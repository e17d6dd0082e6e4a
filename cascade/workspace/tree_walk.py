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


def tree_state(root: str, skip: frozenset[str]) -> dict[str, str]:
    """Content digests, except for files over LARGE and past BUDGET (a sparse 16 TB file must
    not stall the gate): those are known by size, inode and times, and ctime cannot be set back
    by an unprivileged process, so a change to them still shows."""
    out: dict[str, str] = {}
    left = BUDGET
    for top, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(
            d for d in dirs if d not in skip and not os.path.islink(os.path.join(top, d))
        )
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                continue
            digest = hashlib.sha256(oct(st.st_mode).encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode) and st.st_size <= min(LARGE, left):
                left -= st.st_size
                _hash_file(path, digest)
            elif stat.S_ISREG(st.st_mode):
                known = (st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
                digest.update(("stat:" + ":".join(map(str, known))).encode())
            out[os.path.relpath(path, root)] = digest.hexdigest()
    return out


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
