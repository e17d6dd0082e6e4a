"""What every sandbox starts from: the tree of the base commit (without `.cascade/`, which holds
hidden tests and proof) as a tar, and the commands that make it a one-commit git repo."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from cascade.errors import SandboxError, UsageError
from cascade.protocols import Sandbox

# Never copied into a workspace: hidden tests and earlier proof live there.
EXCLUDED = (".cascade",)

GIT_IDENTITY = ("-c", "user.name=cascade", "-c", "user.email=cascade@localhost")

INIT_SCRIPT = (
    "git init -q -b cascade-base . && "
    "git config core.autocrlf false && git config commit.gpgsign false && "
    "git add -A && "
    "git -c user.name=cascade -c user.email=cascade@localhost commit -q --allow-empty "
    "-m 'cascade: base'"
)


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git on the user's repository (host side), returning stdout."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise SandboxError("git is not installed (it is needed to read the repository)") from exc
    if check and proc.returncode != 0:
        raise SandboxError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def files_at(repo: Path, rev: str = "HEAD") -> list[str]:
    """The files of `rev` in the host's repository, as git lists them (none when it cannot
    say: not a repository, no such revision)."""
    return [
        p
        for p in git(repo, "ls-tree", "-r", "-z", "--name-only", rev, check=False).split("\0")
        if p
    ]


def resolve_commit(repo: Path, rev: str = "HEAD") -> str:
    """The full sha of `rev`, or a usage error when `repo` is not a git checkout."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        if not (repo / ".git").exists():
            raise UsageError(f"{repo} is not a git repository (cascade works on a checkout)")
        raise UsageError(f"{rev!r} is not a commit in {repo}")
    return proc.stdout.strip()


def archive(repo: Path, commit: str) -> bytes:
    """A tar of the commit's tree, `.cascade/` left out. Only tracked files: ignored files and
    untracked secrets in the checkout never reach a sandbox."""
    pathspec = [":(exclude)" + p for p in EXCLUDED]
    proc = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit, "--", ".", *pathspec],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SandboxError(f"git archive {commit} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def read_blobs(repo: Path, commit: str, paths: Sequence[str], max_bytes: int) -> dict[str, bytes]:
    """The content at `commit` of each of `paths` no larger than `max_bytes` (missing and
    larger ones left out), read with two git processes whatever the number of paths."""
    usable = [p for p in paths if "\n" not in p]  # cat-file reads one name a line
    if not usable:
        return {}
    names = "".join(f"{commit}:{p}\n" for p in usable).encode()
    sizes = _cat_file(repo, "--batch-check", names).decode("utf-8", "replace").splitlines()
    small = [p for p, line in zip(usable, sizes, strict=False) if _blob_size(line) <= max_bytes]
    if not small:
        return {}
    out = _cat_file(repo, "--batch", "".join(f"{commit}:{p}\n" for p in small).encode())
    blobs: dict[str, bytes] = {}
    at = 0
    for path in small:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) != 3 or header[1] != b"blob":
            continue  # "<name> missing"
        size = int(header[2])
        blobs[path] = out[at : at + size]
        at += size + 1  # the content, then a newline
    return blobs


def _blob_size(line: str) -> int:
    parts = line.split()
    return int(parts[2]) if len(parts) == 3 and parts[1] == "blob" else 1 << 62


def _cat_file(repo: Path, mode: str, names: bytes) -> bytes:
    proc = subprocess.run(
        ["git", "-C", str(repo), "cat-file", mode], input=names, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise SandboxError(f"git cat-file failed in {repo}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


async def reset_workspace(sandbox: Sandbox) -> None:
    """Back to the base commit with untracked files gone: the same two git commands everywhere."""
    script = "git reset -q --hard HEAD && git clean -q -fdx"
    result = await sandbox.exec(["sh", "-c", script], timeout=60)
    if result.exit_code != 0:
        raise SandboxError(f"reset failed: {(result.stderr or result.stdout).strip()}")
