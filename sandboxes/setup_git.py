"""The git metadata `[sandbox] setup` runs with, so `git describe` and setuptools-scm see the
real version: the history reachable from the base commit and the tags reachable from it, fetched
on the host into a fresh repository (no hooks, no other branch), copied into the setup workspace
as `.git` with a detached HEAD. What it adds to the environment's key: the commit and its tags."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cascade.errors import SandboxError

# Run in the setup workspace once `.git` is in: an index of HEAD, refreshed against the tree.
# The tree is the `git archive` every sandbox gets, so paths it leaves out or rewrites
# (`.cascade/`, export-ignore, export-subst) would look changed: they are marked skip-worktree,
# and git sees the clean checkout of the base commit that a build would see.
PREPARE = (
    "git read-tree HEAD && { git update-index -q --refresh >/dev/null || true; } && "
    "git diff-files --name-only -z | xargs -0 -r git update-index --skip-worktree --"
)
OPT_OUT = "set [sandbox] setup_git = false to run setup without it"


def git_facts(repo: Path, commit: str) -> dict[str, Any]:
    """What the metadata gives setup: the full commit id, each tag reachable from it with the
    object it names, and the nearest of them (`git describe --tags --abbrev=0`), which is what
    the environment's key holds: a new commit reuses the environment until a new tag is
    reachable (a version derived from git then reads as of the commit setup ran at, e.g.
    1.2.1.dev3 instead of .dev5), so `[sandbox] setup` does not run again on every commit."""
    sha = _git(repo, "rev-parse", "--verify", f"{commit}^{{commit}}").strip()
    listing = _git(
        repo, "for-each-ref", f"--merged={sha}", "--format=%(refname) %(objectname)", "refs/tags"
    )
    tags = dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)
    described = subprocess.run(
        ["git", "-C", str(repo), "describe", "--tags", "--abbrev=0", sha],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    name = f"refs/tags/{described.stdout.strip()}" if described.returncode == 0 else ""
    nearest = f"{name} {tags.get(name, '')}" if name else ""
    return {"commit": sha, "tags": tags, "nearest": nearest}


@contextmanager
def git_tar(repo: Path, facts: dict[str, Any], uid: int) -> Iterator[IO[bytes]]:
    """A tar of `.git` for the setup workspace (in a temporary file, read from the start):
    `facts["commit"]` as a detached HEAD, its history and its tags, owned by `uid`."""
    with tempfile.TemporaryDirectory(prefix="cascade-setup-git-") as tmp:
        work = Path(tmp) / "work"
        _git(Path(tmp), "init", "-q", "--template=", str(work))
        refspecs = "".join(f"{name}:{name}\n" for name in facts["tags"])
        # --update-shallow: from a shallow clone (CI checkouts) the copy is shallow as well,
        # instead of a history with its parents missing
        fetch = ["fetch", "-q", "--update-shallow", "--no-tags", "--stdin", str(repo)]
        _git(work, *fetch, facts["commit"], stdin=refspecs)
        _git(work, "update-ref", "--no-deref", "HEAD", facts["commit"])
        with tempfile.TemporaryFile() as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.add(work / ".git", arcname=".git", filter=lambda info: _owned(info, uid))
            handle.seek(0)
            yield handle


def _owned(info: tarfile.TarInfo, uid: int) -> tarfile.TarInfo | None:
    if not (info.isfile() or info.isdir()):
        return None  # a fresh repository holds nothing else
    info.uid = info.gid = uid
    info.uname = info.gname = ""
    return info


def _git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["git", "-C", str(cwd), *args], input=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        detail = proc.stderr.strip()[-500:]
        raise SandboxError(
            f"could not give setup the git metadata (git {args[0]}: {detail}); {OPT_OUT}"
        )
    return proc.stdout
