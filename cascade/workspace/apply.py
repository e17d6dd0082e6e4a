"""Apply parsed edits to a sandbox and read back the canonical patch: `git diff` of the
workspace against its base commit, never the model's own diff text."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cascade.core.edits import check_path, hunk_not_found, resolve
from cascade.errors import EditError, SandboxError
from cascade.protocols import Sandbox
from cascade.records import Edit, Patch

PATCH_FILE = ".git/cascade-edit.patch"  # inside .git so `git add -A` never picks it up
DIFF_FILE = ".git/cascade-canonical.diff"  # read back whole: command output may be cut short
MAX_PATCH_BYTES = 1 << 20  # a bigger patch is the answer's problem, refused before it is stored
GIT_TIMEOUT = 60.0
# Renames off: a moved file shows as delete + add, so `files` names both paths for the scope gate.
# No external diff, no textconv: what the diff says is the bytes in the tree, whatever drivers a
# repository's config or attributes name.
DIFF = ("diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames")
# No system or user git config in the sandbox's git runs; the workspace's .git is the host's.
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


async def apply_edits(sandbox: Sandbox, edits: Sequence[Edit]) -> Patch:
    """Apply edits to the sandbox and return the canonical patch. On an EditError the workspace
    is reset first, so the next attempt starts clean."""
    try:
        await _apply(sandbox, edits)
    except EditError:
        await sandbox.reset()
        raise
    return await canonical_patch(sandbox)


async def _apply(sandbox: Sandbox, edits: Sequence[Edit]) -> None:
    # Text edits first, each file read once and written with the others in one call; diffs
    # after, one `git apply` each so that a failure names its block.
    contents: dict[str, str | None] = {}
    for number, edit in enumerate(edits, 1):
        try:
            check_path(edit.path)
            if edit.kind == "udiff":
                continue
            if edit.path not in contents:
                contents[edit.path] = _decode(edit.path, await sandbox.read_file(edit.path))
            contents[edit.path] = resolve(contents[edit.path], edit)
        except EditError as exc:
            raise _blame(number, edit, exc) from None
    await sandbox.write_files({p: c.encode() for p, c in contents.items() if c is not None})
    for number, edit in enumerate(edits, 1):
        if edit.kind != "udiff":
            continue
        await sandbox.write_files({PATCH_FILE: edit.diff.encode()})
        # --unidiff-zero: a hunk without trailing context (common in hand-written diffs) need
        # not sit at the end of the file, nor one numbered 1 at its start; context still places it.
        argv = ["git", "apply", "--recount", "--unidiff-zero", "--whitespace=nowarn", PATCH_FILE]
        try:
            result = await sandbox.exec(argv, timeout=GIT_TIMEOUT)
        finally:
            await sandbox.write_files({PATCH_FILE: None})
        if result.exit_code != 0:
            try:
                original = _decode(edit.path, await sandbox.read_file(edit.path))
                why = hunk_not_found(edit.path, original, edit.diff)
            except EditError as exc:
                why = exc.feedback
            if not why:  # the lines are there: git's own words say what else is wrong
                message = (result.stderr or result.stdout).strip().replace(PATCH_FILE, "<diff>")
                why = f"the diff does not apply:\n{message[:600]}"
            raise _blame(number, edit, EditError(why))


def _decode(path: str, data: bytes | None) -> str | None:
    try:
        return None if data is None else data.decode()
    except UnicodeDecodeError:
        raise EditError(f"{path} is not UTF-8 text; search/replace cannot edit it.") from None


def _blame(number: int, edit: Edit, exc: EditError) -> EditError:
    return EditError(
        f"Block {number} ({edit.path}): {exc.feedback}\n"
        "None of your edits were applied; send them all again with this one fixed."
    )


async def canonical_patch(sandbox: Sandbox) -> Patch:
    """`git diff` of the whole workspace against the base commit: the patch that is gated,
    hashed and kept as proof."""
    await _git(sandbox, "add", "-A")
    await _git(sandbox, *DIFF, "--full-index", "--binary", f"--output={DIFF_FILE}", "HEAD")
    try:
        raw = await sandbox.read_file(DIFF_FILE)
    finally:
        await sandbox.write_files({DIFF_FILE: None})
    if raw is None:
        raise SandboxError("git diff wrote no patch file")
    if len(raw) > MAX_PATCH_BYTES:
        await sandbox.reset()
        raise EditError(
            f"Your edits make a patch of {len(raw):,} bytes; at most {MAX_PATCH_BYTES:,} are "
            "accepted. Make the smallest change that resolves the issue (no generated or "
            "vendored files, no large data)."
        )
    diff = raw.decode("utf-8", errors="replace")
    names = await _git(sandbox, *DIFF, "--name-only", "-z", "HEAD")
    numstat = await _git(sandbox, *DIFF, "--numstat", "HEAD")
    added = removed = 0
    for row in numstat.splitlines():
        plus, minus, _ = row.split("\t", 2)
        if plus.isdigit() and minus.isdigit():  # binary files show "-"
            added, removed = added + int(plus), removed + int(minus)
    return Patch(
        diff=diff,
        sha256=hashlib.sha256(diff.encode()).hexdigest(),
        files=tuple(sorted(name for name in names.split("\0") if name)),
        added=added,
        removed=removed,
    )


async def _git(sandbox: Sandbox, *args: str) -> str:
    result = await sandbox.exec(["git", *args], timeout=GIT_TIMEOUT, env=GIT_ENV)
    if result.exit_code != 0:
        detail = (result.stderr or result.stdout).strip()[:500]
        raise SandboxError(f"git {' '.join(args[:2])} failed (exit {result.exit_code}): {detail}")
    return result.stdout
