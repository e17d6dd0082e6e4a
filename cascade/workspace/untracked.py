"""Folders cascade writes inside a repository (run folders, replay batches, caches) ignore
themselves in git, as tools' cache folders do: a `.gitignore` holding `*` (which ignores the
`.gitignore` too), so a run never shows in `git status`. Only folders under a `.cascade/` folder:
a folder the user chose elsewhere (`--out results/`) may be one they mean to commit."""

from __future__ import annotations

from pathlib import Path

IGNORE_ALL = "# written by cascade: what cascade writes here is not source\n*\n"


def ignore_in_git(folder: Path) -> None:
    """Write `folder/.gitignore` when `folder` is inside a `.cascade/` folder and has none; an
    existing one (the user's) is kept. Best effort: a read-only folder fails elsewhere first."""
    if ".cascade" not in folder.resolve().parts[:-1]:
        return
    marker = folder / ".gitignore"
    try:
        with marker.open("x", encoding="utf-8") as handle:
            handle.write(IGNORE_ALL)
    except OSError:  # there already (the user's own is kept), or not writable
        return
