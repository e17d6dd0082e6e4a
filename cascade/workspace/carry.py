"""What an agent changed in its sandbox, carried into a fresh one: the files whose content or
mode differ from the base commit are read out of the agent's workspace and written into a
fresh sandbox at the same commit, whose own `git diff` is then the patch. Nothing of the agent's
sandbox is trusted but its files' bytes: not its `.git` (a commit, a moved HEAD, a clean filter
or an attribute planted there changes what its `git diff` says), not its processes, not what
it left in caches or outside the tree."""

from __future__ import annotations

from collections.abc import Mapping

from cascade.errors import EditError, SandboxError
from cascade.protocols import Sandbox
from cascade.records import Patch
from cascade.workspace.apply import MAX_PATCH_BYTES, canonical_patch
from cascade.workspace.tree import changed, snapshot

MAX_FILES = 500  # changed paths; more is a generated tree, not a fix


async def carried_patch(agent: Sandbox, fresh: Sandbox) -> Patch:
    """The agent's changes as the canonical patch of `fresh` (a sandbox at the base commit
    nothing has touched). An `EditError` (said to the model's record) when they are too many or
    too large; a `SandboxError` when the agent's workspace cannot be read."""
    paths = sorted(changed(await snapshot(fresh), await snapshot(agent)))
    if len(paths) > MAX_FILES:
        raise EditError(
            f"The workspace has {len(paths):,} changed files; at most {MAX_FILES} are taken. "
            "Remove generated files before submitting."
        )
    files = await _read(agent, paths)
    await fresh.write_files(files)
    return await canonical_patch(fresh)


async def _read(agent: Sandbox, paths: list[str]) -> Mapping[str, bytes | None]:
    """Each changed path's bytes (None: deleted), sizes checked before anything is read."""
    sizes = await _sizes(agent, paths)
    total = sum(sizes.values())
    if total > MAX_PATCH_BYTES:
        raise EditError(
            f"The changed files hold {total:,} bytes; at most {MAX_PATCH_BYTES:,} are taken. "
            "Make the smallest change that resolves the issue (no generated or large files)."
        )
    out: dict[str, bytes | None] = {}
    for path in paths:
        out[path] = await agent.read_file(path) if path in sizes else None
    read = sum(len(data) for data in out.values() if data is not None)
    if read > MAX_PATCH_BYTES:  # grown since `stat` (a process the agent left running)
        raise EditError(f"The changed files grew to {read:,} bytes while being read.")
    return out


async def _sizes(agent: Sandbox, paths: list[str]) -> dict[str, int]:
    """The size of each path that is still a file (`stat`, argv only: no shell reads a path)."""
    sizes: dict[str, int] = {}
    for start in range(0, len(paths), 100):
        chunk = paths[start : start + 100]
        argv = ["stat", "-L", "--printf", "%s\\0%n\\0", "--", *chunk]
        result = await agent.exec(argv, timeout=60)
        fields = result.stdout.split("\0")
        for size, name in zip(fields[0::2], fields[1::2], strict=False):
            if size.isdigit() and name in chunk:
                sizes[name] = int(size)
        if result.exit_code not in (0, 1):  # 1: some path is gone (deleted), said above
            raise SandboxError(f"cannot read the agent's workspace (stat exit {result.exit_code})")
    return sizes
