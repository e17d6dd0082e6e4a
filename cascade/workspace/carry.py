"""What an agent changed in its sandbox, carried into the sandbox that judges it: the files whose
content or mode differ from the snapshot taken before the agent's first command are read out of
its workspace as bytes (with their executable bit), and written into a fresh sandbox at the same
commit, whose own `git diff` is then the patch. Nothing of the agent's sandbox is trusted but
its files' bytes: not its `.git` (a commit, a moved HEAD, a clean filter or an attribute planted
there changes what its `git diff` says), not its processes, not what it left in caches or
outside the tree. Bytes, not a diff's text, travel: no text round trip can lose a CRLF, an
encoding, a binary file, an empty file or an unusual file name.

A symbolic link is carried as a copy of what it points to (the gate refuses links anyway); a
process the agent left running can still be writing while the files are read, so the sizes are
checked before and after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cascade.core.edits import check_path
from cascade.errors import EditError, SandboxError
from cascade.protocols import Sandbox
from cascade.records import Patch
from cascade.workspace.apply import MAX_PATCH_BYTES, canonical_patch
from cascade.workspace.tree import changed, snapshot

MAX_FILES = 500  # changed paths; more is a generated tree, not a fix


@dataclass(frozen=True)
class Carried:
    """The agent's changes: each changed path's bytes (None: deleted), and which of the files
    written are executable."""

    files: Mapping[str, bytes | None]
    executable: frozenset[str] = frozenset()

    def summary(self) -> str:
        gone = ", ".join(p for p, data in self.files.items() if data is None)
        kept = ", ".join(p for p, data in self.files.items() if data is not None)
        parts = [f"changed {kept}" if kept else "", f"deleted {gone}" if gone else ""]
        return "; ".join(p for p in parts if p) or "no changes"


async def take_changes(agent: Sandbox, before: Mapping[str, str]) -> Carried:
    """The files of `agent` that differ from `before` (its snapshot at the base commit). An
    `EditError` (the answer's fault) when they are too many or too large."""
    paths = sorted(changed(before, await snapshot(agent)))
    for path in paths:
        _check_name(path)
    if len(paths) > MAX_FILES:
        raise EditError(
            f"The workspace has {len(paths):,} changed files; at most {MAX_FILES} are taken. "
            "Remove generated files before submitting."
        )
    stats = await _stats(agent, paths)
    total = sum(size for size, _ in stats.values())
    if total > MAX_PATCH_BYTES:
        raise EditError(
            f"The changed files hold {total:,} bytes; at most {MAX_PATCH_BYTES:,} are taken. "
            "Make the smallest change that resolves the issue (no generated or large files)."
        )
    files: dict[str, bytes | None] = {}
    for path in paths:
        files[path] = await agent.read_file(path) if path in stats else None
    read = sum(len(data) for data in files.values() if data is not None)
    if read > MAX_PATCH_BYTES:  # grown since `stat`: a process the agent left running
        raise EditError(f"The changed files grew to {read:,} bytes while being read.")
    for path, data in files.items():
        # git diffs a file with no NUL in its first 8,000 bytes as text, and the patch is kept
        # as text: a non-UTF-8 one would be tested as one thing and stored as another.
        if data is not None and b"\0" not in data[:8000]:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise EditError(f"{path} is not UTF-8 text; write it as UTF-8.") from None
    executable = frozenset(p for p, (_, x) in stats.items() if x and files.get(p) is not None)
    return Carried(files, executable)


async def put_changes(sandbox: Sandbox, carried: Carried) -> Patch:
    """Write the changes into `sandbox` (at the base commit) and return its canonical patch:
    deletions first (a file may replace a folder), then the files, then their modes."""
    gone = {p: None for p, data in carried.files.items() if data is None}
    if gone:
        await sandbox.write_files(gone)
        parents = sorted({p.rsplit("/", 1)[0] for p in gone if "/" in p})
        for chunk in _chunks(parents):  # folders left empty (git keeps none): out of the way
            argv = ["rmdir", "-p", "--ignore-fail-on-non-empty", "--", *chunk]
            await sandbox.exec(argv, timeout=60)
    written = {p: data for p, data in carried.files.items() if data is not None}
    if written:
        await sandbox.write_files(written)
        plain = written.keys() - carried.executable
        for flag, paths in (("+x", carried.executable), ("-x", plain)):
            for chunk in _chunks(sorted(paths)):
                result = await sandbox.exec(["chmod", flag, "--", *chunk], timeout=60)
                if result.exit_code != 0:
                    raise SandboxError(f"chmod {flag} failed: {result.stderr.strip()[:300]}")
    patch = await canonical_patch(sandbox)
    unshipped = sorted(set(written) - set(patch.files))
    if unshipped:  # on disk for the tests, but git leaves them out of the patch
        await sandbox.reset()
        raise EditError(
            f"{', '.join(unshipped)}: git does not track these (ignored by the repository's "
            ".gitignore, or inside a nested repository), so they would be tested but never "
            "shipped. Leave them out, or change a tracked file instead."
        )
    return patch


def _chunks(paths: list[str], size: int = 100) -> list[list[str]]:
    return [paths[i : i + size] for i in range(0, len(paths), size)]


def _check_name(path: str) -> None:
    """A carried path must be one an edit could name (`check_path`: no `..`, nothing of git's
    own), and UTF-8 (a name that is not would be matched, read and written as another)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise EditError(f"{path!r}: file names must be UTF-8.") from None
    check_path(path)


async def _stats(agent: Sandbox, paths: list[str]) -> dict[str, tuple[int, bool]]:
    """Size and executable bit of each path that is still a file (`stat`, argv only: no shell
    reads a path); a path missing here was deleted."""
    stats: dict[str, tuple[int, bool]] = {}
    for start in range(0, len(paths), 100):
        chunk = paths[start : start + 100]
        argv = ["stat", "-L", "--printf", "%s %a\\0%n\\0", "--", *chunk]
        result = await agent.exec(argv, timeout=60)
        fields = result.stdout.split("\0")
        for head, name in zip(fields[0::2], fields[1::2], strict=False):
            size, _, mode = head.partition(" ")
            if size.isdigit() and name in chunk:
                stats[name] = (int(size), bool(int(mode or "0", 8) & 0o111))
        if result.exit_code not in (0, 1):  # 1: some path is gone (deleted), said above
            raise SandboxError(f"cannot read the agent's workspace (stat exit {result.exit_code})")
    return stats
