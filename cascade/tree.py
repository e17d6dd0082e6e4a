"""A snapshot of a sandbox workspace (path -> digest of mode and content), taken inside the
sandbox, so the gate can see whether anything changed the tree while an evaluator ran."""

from __future__ import annotations

import json
from collections.abc import Mapping

from cascade.errors import SandboxError
from cascade.protocols import Sandbox

# Caches that tools write as a side effect are not the tree; `.git` holds our own reports.
SKIP_DIRS = (".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis")
SCRIPT = f"""
import hashlib, json, os, stat
skip = set({list(SKIP_DIRS)!r})
out = {{}}
for root, dirs, files in os.walk(".", followlinks=False):
    dirs[:] = sorted(d for d in dirs if d not in skip and not os.path.islink(os.path.join(root, d)))
    for name in dirs + files:
        path = os.path.join(root, name)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and not os.path.islink(path):
            continue
        h = hashlib.sha256(oct(st.st_mode).encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(path).encode())
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        out[path[2:]] = h.hexdigest()
print(json.dumps(out))
"""


async def snapshot(sandbox: Sandbox) -> dict[str, str]:
    result = await sandbox.exec(["python", "-I", "-c", SCRIPT], timeout=120)
    if result.exit_code != 0:
        raise SandboxError(
            f"cannot snapshot the workspace: {(result.stderr or result.stdout)[-300:]}"
        )
    try:
        data = json.loads(result.stdout)
    except ValueError as exc:
        raise SandboxError(f"cannot snapshot the workspace: {exc}") from exc
    return {str(k): str(v) for k, v in data.items()}


def changed(before: Mapping[str, str], after: Mapping[str, str]) -> set[str]:
    """Paths added, removed or modified between two snapshots."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
