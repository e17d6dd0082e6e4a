"""What every sandbox starts from: the tree of the base commit (without `.cascade/`, which holds
hidden tests and proof) as a tar, and the commands that make it a one-commit git repo."""

from __future__ import annotations

import subprocess
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


async def reset_workspace(sandbox: Sandbox) -> None:
    """Back to the base commit with untracked files gone: the same two git commands everywhere."""
    script = "git reset -q --hard HEAD && git clean -q -fdx"
    result = await sandbox.exec(["sh", "-c", script], timeout=60)
    if result.exit_code != 0:
        raise SandboxError(f"reset failed: {(result.stderr or result.stdout).strip()}")
