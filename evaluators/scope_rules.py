"""Per-file rules of the scope gate that need no configuration: where a path may point, what
kind of file a patch may write, whether it touches cascade's own `[tool.cascade]` table, and
whether it changes what judges it (test and tool configuration, evaluators/infrastructure.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cascade.protocols import Sandbox
from cascade.records import Finding
from evaluators.infrastructure import WHAT, changed_tools, is_shared, loads_plugins, whole_file
from evaluators.patch_files import FileDiff, old_text

REGULAR = "100644"
EXECUTABLE = "100755"
SYMLINK = "120000"
GITLINK = "160000"
INFRASTRUCTURE = "test_infrastructure"
BASE_JUDGES = "the base commit's test and tool configuration judges every patch"
# A table header that opens cascade's section of pyproject.toml, and any other header.
_CASCADE_HEADER = re.compile(r"^\s*\[\[?\s*tool\s*\.\s*cascade\s*[.\]]")
_HEADER = re.compile(r"^\s*\[")


def path_problem(path: str) -> tuple[str, str] | None:
    """(rule, message) when the path leaves the repository or reaches git's own files. Both
    separators count (a Windows checkout reads `\\` as one) and so do the names Windows and
    macOS treat as `.git` (`.GIT`, `.git.`, `git~1`)."""
    parts = re.split(r"[\\/]", path)
    if path.startswith(("/", "\\")):
        return "path_absolute", "is an absolute path; paths must be relative to the repo root"
    if re.match(r"[A-Za-z]:", path):
        return "path_drive", "starts with a Windows drive letter; paths must be relative"
    if ".." in parts:
        return "path_parent", "climbs out of the repository with `..`"
    names = [part.lower().rstrip(". ") for part in parts]
    if any(name in (".git", "git~1") for name in names):
        return "git_dir", "points into `.git/`, git's own data, which a patch may not touch"
    if any(name in (".gitmodules", "gitmod~1") for name in names):
        return "gitmodules", "changes `.gitmodules` (submodules are not allowed)"
    return None


def kind_problem(diff: FileDiff) -> tuple[str, str] | None:
    """(rule, message) when the patch writes anything but a regular text file of the same mode."""
    modes = {diff.old_mode, diff.new_mode}
    if SYMLINK in modes:
        return "symlink", "is a symbolic link; write regular files only"
    if GITLINK in modes:
        return "gitlink", "is a submodule (gitlink); write regular files only"
    if diff.old_mode and diff.new_mode and diff.old_mode != diff.new_mode:
        return "mode_change", f"changes the file mode {diff.old_mode} -> {diff.new_mode}"
    if diff.status == "added" and diff.new_mode != REGULAR:
        what = "an executable file" if diff.new_mode == EXECUTABLE else f"mode {diff.new_mode}"
        return "mode_change", f"creates {what}; new files must be regular, non-executable"
    if diff.binary:
        return "binary", "is a binary file; a patch may change text files only"
    return None


def cascade_config_changed(diff: FileDiff, new_text: str) -> bool:
    """Whether a patch to pyproject.toml changes its `[tool.cascade...]` tables, compared as text
    (so a patch that breaks the TOML is judged too)."""
    before = old_text(new_text, diff) if diff.status != "added" else ""
    after = new_text if diff.status != "deleted" else ""
    return _cascade_tables(before) != _cascade_tables(after)


def _cascade_tables(text: str) -> list[str]:
    kept: list[str] = []
    inside = False
    for line in text.split("\n"):
        if _HEADER.match(line):
            inside = bool(_CASCADE_HEADER.match(line))
        if inside and line.strip() and not line.lstrip().startswith("#"):
            kept.append(line.strip())
    return kept


async def infrastructure_problems(
    sandbox: Sandbox, files: Sequence[FileDiff], test_paths: Sequence[str]
) -> list[Finding]:
    """A `test_infrastructure` finding for each file that configures how the patch is judged:
    a tool's whole configuration file, a tool's sections of a shared one (pyproject.toml,
    setup.cfg, tox.ini: read in the sandbox and compared parsed), a test package's `__init__.py`,
    code run at Python's start, and `pytest_plugins` written into a Python file."""
    found: list[Finding] = []
    for diff in files:
        whole = whole_file(diff.path, test_paths)
        if whole is not None:
            message = f"{whole[1]}; {BASE_JUDGES}"
            found.append(Finding(rule=INFRASTRUCTURE, path=diff.path, message=message))
        elif is_shared(diff.path):
            data = None if diff.status == "deleted" else await sandbox.read_file(diff.path)
            new = (data or b"").decode("utf-8", "replace")
            old = None if diff.status == "added" else old_text(new, diff)
            tools = changed_tools(diff.path, old, None if diff.status == "deleted" else new)
            if tools:
                what = " and ".join(WHAT[tool] for tool in sorted(tools))
                message = f"changes {what} in it; {BASE_JUDGES}"
                found.append(Finding(rule=INFRASTRUCTURE, path=diff.path, message=message))
        elif loads_plugins(diff.path, diff.added):
            message = (
                "loads pytest plugins (`pytest_plugins`), which can report the tests as they "
                "please; plugins come from the base commit's configuration"
            )
            found.append(Finding(rule=INFRASTRUCTURE, path=diff.path, message=message))
    return found
