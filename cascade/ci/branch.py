"""The branch the Action pushes: a temporary worktree at the base commit with exactly the verified
patch staged, one commit by the bot identity, and a push that never forces — a new branch
`cascade/<issue>`, or one more commit on top of it when a reviewer asked for a change. Git runs
with argv lists; no issue or comment text ever reaches a shell."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cascade.errors import InfraError, SourceError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
# The sandbox's canonical diff (edit_apply.DIFF), with the user's diff settings pinned so that
# the same change gives the same bytes here.
STAGED_DIFF = (
    "-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false", "-c", "diff.algorithm=myers",
    "-c", "diff.relative=false", "-c", "core.quotePath=true",
    "diff", "--cached", "--no-color", "--no-ext-diff", "--no-renames",
)  # fmt: skip


@dataclass(frozen=True)
class Moved:
    """The branch is not where the run started from any more (someone pushed, or deleted it):
    nothing was pushed. `found` is its commit now, "" when it is gone."""

    found: str


class PatchBranch:
    """A temporary worktree of `workspace` at `base` with the verified patch staged, so the
    checkout itself is never touched. `files` is what git staged; `push` (a new branch) or
    `push_onto` (the branch that is at `base`) commits and pushes."""

    def __init__(self, workspace: Path, base: str, patch: Path) -> None:
        self.workspace = workspace
        self.base = base
        self.patch = patch.resolve()
        self.files: list[str] = []
        self.diff = ""
        self._tmp = Path(tempfile.mkdtemp(prefix="cascade-branch-"))
        self.tree = self._tmp / "tree"

    def __enter__(self) -> PatchBranch:
        try:
            git_out(
                self.workspace, "worktree", "add", "--detach", "--quiet", str(self.tree), self.base
            )
            git_out(self.tree, "apply", "--index", "--whitespace=nowarn", str(self.patch))
            staged = git_out(self.tree, *STAGED_DIFF, "--name-only", "-z", "HEAD")
            self.diff = git_out(self.tree, *STAGED_DIFF, "--full-index", "--binary", "HEAD")
        except BaseException:
            self._cleanup()
            raise
        self.files = [name for name in staged.split("\0") if name]
        return self

    @property
    def sha256(self) -> str:
        """Of the staged change, diffed as the sandbox diffs."""
        return hashlib.sha256(self.diff.encode()).hexdigest()

    def holds(self, patch: str) -> bool:
        """Whether the staged change is exactly `patch`: file by file, byte for byte. (A patch
        with a reproduction lists the test's files first, git lists every file by path.)"""
        return file_sections(self.diff) == file_sections(patch)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()

    def push(self, branch: str, message: str, remote: str = "origin") -> str:
        """Commit the staged patch with the bot identity and push it as a new branch; an existing
        branch is never overwritten. Returns the commit sha."""
        sha = self._commit(message)
        proc = run_git(self.tree, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}")
        if proc.returncode != 0:
            why = redact(proc.stderr.strip())
            if "rejected" in why or "already exists" in why:
                raise SourceError(
                    f"{remote} already has a branch {branch} (an earlier run's pull request?); "
                    f"it is never overwritten: delete it, then ask again ({why})"
                )
            raise SourceError(f"git push of {branch} to {remote} failed: {why}")
        return sha

    def push_onto(self, branch: str, message: str, remote: str = "origin") -> str | Moved:
        """Commit the staged patch on top of `base`, where `branch` stood when the run began, and
        push it as a fast-forward: no --force, no lease, no `+`. A branch that moved meanwhile
        is left as it is (`Moved`); checked before the push, and the remote refuses a push that
        is not a fast-forward of what it holds by then. Returns the new commit's sha."""
        now = remote_head(self.tree, branch, remote)
        if now != self.base:
            return Moved(now)
        sha = self._commit(message)
        proc = run_git(self.tree, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}")
        if proc.returncode != 0:
            why = redact(proc.stderr.strip())
            now = remote_head(self.tree, branch, remote)
            if "rejected" in why and now != self.base:
                return Moved(now)
            raise SourceError(f"git push of one commit onto {branch} to {remote} failed: {why}")
        return sha

    def _commit(self, message: str) -> str:
        identity = ("-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}")
        git_out(self.tree, *identity, "-c", "commit.gpgsign=false", "commit", "--quiet",
                "--no-verify", "-m", message)  # fmt: skip
        return git_out(self.tree, "rev-parse", "HEAD").strip()

    def _cleanup(self) -> None:
        run_git(self.workspace, "worktree", "remove", "--force", str(self.tree))
        shutil.rmtree(self._tmp, ignore_errors=True)
        run_git(self.workspace, "worktree", "prune")


def file_sections(diff: str) -> list[str]:
    """A git diff cut before each `diff --git` line, sorted: the same list for the same change,
    whatever order its files were listed in."""
    return sorted(part for part in re.split(r"(?m)^(?=diff --git )", diff) if part)


def fetch_branch(workspace: Path, branch: str, remote: str = "origin") -> str:
    """Fetch `branch` from `remote` into the checkout's object store (no local branch is made or
    moved) and return its commit. The caller has checked the name: `cascade/<number>`."""
    git_out(workspace, "fetch", "--quiet", "--no-tags", remote, f"refs/heads/{branch}")
    return git_out(workspace, "rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}").strip()


def remote_head(cwd: Path, branch: str, remote: str = "origin") -> str:
    """The commit `branch` is at on `remote` now ("" when it has no such branch)."""
    listed = git_out(cwd, "ls-remote", "--heads", remote, f"refs/heads/{branch}")
    for line in listed.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return ""


def current_branch(workspace: Path) -> str:
    """The branch the checkout is on ("" when detached): the pull request's base."""
    proc = run_git(workspace, "symbolic-ref", "--quiet", "--short", "HEAD")
    return proc.stdout.strip() if proc.returncode == 0 else ""


def run_git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No prompt for credentials in CI: a push without them must fail, not hang.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False, env=env
    )


def git_out(cwd: Path, *args: str) -> str:
    proc = run_git(cwd, *args)
    if proc.returncode != 0:
        verb = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        raise InfraError(f"git {verb} failed in {cwd}: {redact(proc.stderr.strip())}")
    return proc.stdout


def redact(text: str) -> str:
    return re.sub(r"//[^@/\s]+@", "//***@", text)
