"""The key of a per-repository environment image: a digest of the base image, the setup commands
and the repository's dependency files at a commit, all read from git (never the working tree), so
a change anywhere else in the repository reuses the environment; and, when setup is given the git
metadata, the commit and its tags (what `git describe` can see)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cascade.errors import SandboxError
from cascade.workspace.checkout import EXCLUDED

KEY_VERSION = "1"  # bump when the way an environment is built changes: every key changes with it
DEPENDENCY_NAMES = frozenset(
    ("pyproject.toml", "setup.py", "setup.cfg", "poetry.lock", "uv.lock", "Pipfile.lock")
)
DEPENDENCY_GLOBS = ("requirements*.txt", "constraints*.txt")
MAX_DEPTH = 2  # directories above a dependency file: `libs/core/setup.py` counts


def environment_key(
    base_id: str,
    setup: Sequence[str],
    repo: Path,
    commit: str,
    git: Mapping[str, Any] | None = None,
) -> str:
    """sha256 (first 32 hex digits) of the base image id, the setup commands, the path and
    content of every dependency file of `commit`, read from git (never the working tree), and
    `git`: what the git metadata given to setup holds (setup_git.git_facts), when it has any."""
    files = {
        path: hashlib.sha256(_git(repo, "show", f"{commit}:{path}")).hexdigest()
        for path in dependency_files(repo, commit)
    }
    payload: dict[str, Any] = {
        "version": KEY_VERSION,
        "base": base_id,
        "setup": list(setup),
        "files": files,
    }
    if git is not None:  # absent, not null: keys of environments without it stay as they were
        # The nearest reachable tag, not the commit: one environment per release, not per commit.
        payload["git"] = {"nearest": git["nearest"]} if "nearest" in git else dict(git)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def dependency_files(repo: Path, commit: str) -> list[str]:
    """The dependency files tracked at `commit`, at most MAX_DEPTH directories deep, sorted: the
    names above, and any `.txt` in a `requirements/` folder (a common layout)."""
    listing = _git(repo, "ls-tree", "-r", "-z", "--full-tree", commit)
    found = []
    for entry in listing.split(b"\0"):
        meta, _, raw_path = entry.partition(b"\t")
        if meta.split(b" ")[1:2] != [b"blob"]:
            continue  # submodules (commits) have no content here
        path = raw_path.decode(errors="surrogateescape")
        parts = path.split("/")
        if len(parts) > MAX_DEPTH + 1 or parts[0] in EXCLUDED:
            continue
        name, folder = parts[-1], parts[-2] if len(parts) > 1 else ""
        if (
            name in DEPENDENCY_NAMES
            or any(fnmatch.fnmatchcase(name, pattern) for pattern in DEPENDENCY_GLOBS)
            or (folder == "requirements" and name.endswith(".txt"))  # requirements/dev.txt
        ):
            found.append(path)
    return sorted(found)


def _git(repo: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()
        raise SandboxError(f"git {' '.join(args)} failed in {repo}: {detail}")
    return proc.stdout
