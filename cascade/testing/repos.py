"""Real git repositories for tests of anything that takes a checkout: git with a fixed identity
(and no signing, whatever the host's config says), and a one-commit repository builder."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

IDENTITY = ("-c", "user.name=cascade-test", "-c", "user.email=t@localhost")


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity; its stdout, or CalledProcessError."""
    argv = ["git", "-C", str(repo), *IDENTITY, "-c", "commit.gpgsign=false", *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, files: Mapping[str, str], *, branch: str = "main") -> Path:
    """A real git repository at `root` holding `files` in one commit."""
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "init", "-q", "-b", branch)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root
