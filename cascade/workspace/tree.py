"""A snapshot of a sandbox workspace (path -> digest of mode and content), taken inside the
sandbox, so the gate can see whether anything changed the tree while an evaluator ran."""

from __future__ import annotations

import json
from collections.abc import Mapping

from cascade.errors import SandboxError
from cascade.protocols import Sandbox, TreeWalkingSandbox
from cascade.workspace import tree_walk

# Caches that tools write as a side effect are not the tree; `.git` holds our own reports.
SKIP_DIRS = (".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis")


async def snapshot(sandbox: Sandbox) -> dict[str, str]:
    """A sandbox may walk its tree itself (`TreeWalkingSandbox`, with the same rules as
    cascade/workspace/tree_walk.py: the Docker sandbox's pid 1 does, with no process to start);
    one that does not, or answers None, has it walked by a script run in it."""
    if isinstance(sandbox, TreeWalkingSandbox):
        state = await sandbox.tree_state(SKIP_DIRS)
        if state is not None:
            return {str(k): str(v) for k, v in state.items()}
    argv = ["python", "-I", "-c", tree_walk.source(), *SKIP_DIRS]
    result = await sandbox.exec(argv, timeout=120)
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
