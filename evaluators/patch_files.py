"""Read the canonical patch (`git diff --cached --full-index --binary --no-renames`) back into one
record per file: its path, modes, hunks and whether it is binary. Shared by the scope gate and the
baseline-relative lint and type gates."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_MODE_LINES = {
    "new file mode ": "new",
    "deleted file mode ": "old",
    "old mode ": "old",
    "new mode ": "new",
}
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
PYTHON_SUFFIXES = (".py", ".pyi")


class DiffError(ValueError):
    """The text is not a patch as `git diff` writes it."""


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[str, ...]  # each with its ' ', '+', '-' or '\\' prefix


@dataclass(frozen=True)
class FileDiff:
    path: str
    status: Literal["added", "deleted", "modified"]
    old_mode: str  # "" when the file is new
    new_mode: str  # "" when the file is deleted
    binary: bool
    hunks: tuple[Hunk, ...]

    @property
    def added(self) -> list[str]:
        return [line[1:] for hunk in self.hunks for line in hunk.lines if line[:1] == "+"]

    @property
    def removed(self) -> list[str]:
        return [line[1:] for hunk in self.hunks for line in hunk.lines if line[:1] == "-"]

    def added_line_numbers(self) -> set[int]:
        """Line numbers, in the patched file, of the lines this patch wrote."""
        numbers: set[int] = set()
        for hunk in self.hunks:
            line_no = hunk.new_start
            for line in hunk.lines:
                if line[:1] == "+":
                    numbers.add(line_no)
                if line[:1] in ("+", " "):
                    line_no += 1
        return numbers


def parse_diff(text: str) -> list[FileDiff]:
    """The files of a canonical patch, in order. Hunk lines are read by their counts, so file
    content that looks like a diff header cannot end a file early."""
    lines = text.split("\n")
    files: list[FileDiff] = []
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        if not lines[i].startswith("diff --git "):
            raise DiffError(f"expected `diff --git`, found {lines[i][:80]!r}")
        file, i = _file(lines, i)
        files.append(file)
    return files


def _file(lines: list[str], i: int) -> tuple[FileDiff, int]:
    path = header_path(lines[i][len("diff --git ") :])
    modes = {"old": "", "new": ""}
    status: Literal["added", "deleted", "modified"] = "modified"
    binary = False
    hunks: list[Hunk] = []
    i += 1
    while i < len(lines) and not lines[i].startswith("diff --git "):
        line = lines[i]
        if line.startswith("@@"):
            hunk, i = _hunk(lines, i)
            hunks.append(hunk)
            continue
        if line.startswith("GIT binary patch") or line.startswith("Binary files "):
            binary = True
            i = _skip_binary(lines, i + 1)
            continue
        for prefix, side in _MODE_LINES.items():
            if line.startswith(prefix):
                modes[side] = line[len(prefix) :].strip()
        if line.startswith("new file mode "):
            status = "added"
        elif line.startswith("deleted file mode "):
            status = "deleted"
        elif line.startswith("index ") and " " in line[6:]:
            mode = line.rsplit(" ", 1)[1]  # the mode, when it did not change
            modes = {"old": mode, "new": mode}
        i += 1
    if status == "modified" and not (modes["old"] and modes["new"]):
        raise DiffError(f"{path}: no file mode in the diff header")
    return FileDiff(path, status, modes["old"], modes["new"], binary, tuple(hunks)), i


def _hunk(lines: list[str], i: int) -> tuple[Hunk, int]:
    match = _HUNK.match(lines[i])
    if not match:
        raise DiffError(f"bad hunk header {lines[i][:80]!r}")
    old_start, new_start = int(match[1]), int(match[3])
    old_count = 1 if match[2] is None else int(match[2])
    new_count = 1 if match[4] is None else int(match[4])
    body: list[str] = []
    old_left, new_left = old_count, new_count
    i += 1
    while i < len(lines) and (old_left > 0 or new_left > 0 or lines[i].startswith("\\")):
        line = lines[i]
        kind = line[:1]
        if kind in (" ", "-"):
            old_left -= 1
        if kind in (" ", "+"):
            new_left -= 1
        if kind not in (" ", "-", "+", "\\") or old_left < 0 or new_left < 0:
            raise DiffError(f"hunk body does not match its header at {line[:80]!r}")
        body.append(line)
        i += 1
    if old_left or new_left:
        raise DiffError("the diff ends inside a hunk")
    return Hunk(old_start, old_count, new_start, new_count, tuple(body)), i


def _skip_binary(lines: list[str], i: int) -> int:
    # Base85 lines start with a length letter, never with "diff --git ".
    while i < len(lines) and not lines[i].startswith("diff --git "):
        i += 1
    return i


def header_path(rest: str) -> str:
    """The path of a `diff --git a/P b/P` header (renames are off, so both sides agree)."""
    if rest.startswith('"'):
        old, _ = _unquote(rest, 0)
        if not old.startswith("a/"):
            raise DiffError(f"unexpected diff header {rest[:80]!r}")
        return old[2:]
    size = (len(rest) - len("a/ b/")) // 2
    path = rest[2 : 2 + size]
    if len(rest) % 2 == 0 or rest != f"a/{path} b/{path}":
        raise DiffError(f"unexpected diff header {rest[:80]!r}")
    return path


def _unquote(text: str, start: int) -> tuple[str, int]:
    """git's C-style quoted name starting at text[start] == '"': (name, index after it)."""
    out = bytearray()
    i = start + 1
    while i < len(text) and text[i] != '"':
        char = text[i]
        if char != "\\":
            out += char.encode()
            i += 1
        elif text[i + 1 : i + 2] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        elif re.fullmatch(r"[0-7]{3}", text[i + 1 : i + 4]):
            out.append(int(text[i + 1 : i + 4], 8))
            i += 4
        else:
            raise DiffError(f"bad escape in quoted path {text[start : start + 80]!r}")
    if i >= len(text):
        raise DiffError(f"unterminated quoted path {text[start : start + 80]!r}")
    return out.decode("utf-8", errors="replace"), i + 1


def old_text(new_text: str, diff: FileDiff) -> str:
    """The file as it was before the patch, rebuilt from its patched text and its hunks."""
    new_lines = new_text.split("\n")
    old: list[str] = []
    at = 0  # index into new_lines
    for hunk in diff.hunks:
        # A hunk that only adds lines to an empty range starts after line `new_start`.
        start = hunk.new_start - 1 if hunk.new_count else hunk.new_start
        old.extend(new_lines[at:start])
        at = start
        for line in hunk.lines:
            if line[:1] in (" ", "-"):
                old.append(line[1:])
            if line[:1] in (" ", "+"):
                at += 1
    old.extend(new_lines[at:])
    text = "\n".join(old)
    # "\ No newline at end of file" after a removed line: the old file ended without one.
    return _fix_final_newline(text, new_text, diff)


def _fix_final_newline(text: str, new_text: str, diff: FileDiff) -> str:
    last = diff.hunks[-1].lines if diff.hunks else ()
    no_eol_old = any(
        line.startswith("\\") and k > 0 and last[k - 1][:1] in (" ", "-")
        for k, line in enumerate(last)
    )
    no_eol_new = any(
        line.startswith("\\") and k > 0 and last[k - 1][:1] in (" ", "+")
        for k, line in enumerate(last)
    )
    if no_eol_new and not no_eol_old:
        return text + "\n"
    if no_eol_old and not no_eol_new and text.endswith("\n"):
        return text[:-1]
    return text


def python_files(files: Iterable[FileDiff]) -> list[str]:
    """Python sources the patch left in the tree (deleted ones have nothing to check)."""
    return sorted(
        f.path
        for f in files
        if f.status != "deleted" and f.path.endswith(PYTHON_SUFFIXES) and not f.binary
    )


def by_path(files: Sequence[FileDiff]) -> dict[str, FileDiff]:
    return {f.path: f for f in files}
