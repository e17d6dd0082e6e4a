"""The edit format: parse a model's answer into edits, and resolve a search/replace block against
a file. Matching is exact, then whitespace-tolerant; an ambiguous or unmatched block is refused
with feedback written for the model, never fuzz-placed. Applying them is `edit_apply`'s job."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from cascade.errors import EditError
from cascade.records import Edit

# Markers are matched on the stripped line; 5-9 characters, as models miscount them (aider).
SEARCH = re.compile(r"^<{5,9} SEARCH>?$")
DIVIDER = re.compile(r"^={5,9}$")
REPLACE = re.compile(r"^>{5,9} REPLACE<?$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`]*?)\s*$")
PATH = re.compile(r"^[\w.+@~-]+(?:/[\w.+@~-]+)*$")
HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
EMPTY_ORIGINAL = re.compile(r"^ -0,0 ")  # a hunk header after its @@: the file had no lines
DIFF_METADATA = re.compile(r"^(?:diff --git |index |(?:new|deleted) file mode|(?:old|new) mode)")
SHOWN_LINES = 8  # file lines quoted back when a SEARCH is not found

FORMAT_HELP = """\
Write each change as a search/replace block: the file path alone on a line, then

src/pkg/mod.py
<<<<<<< SEARCH
def area(r):
    return 3.14 * r * r
=======
def area(r):
    return math.pi * r * r
>>>>>>> REPLACE

SEARCH copies the current lines exactly, with enough of them to match one place only.
An empty SEARCH creates a new file. Paths are relative to the repository root."""


@dataclass
class _Fence:
    start: int  # index of the opening line
    marker: str
    info: str
    has_block: bool = False  # holds search/replace blocks, so it is not itself an edit


def parse_edits(text: str) -> list[Edit]:
    """The edits in a model's answer, in order; prose around them is ignored."""
    lines = text.replace("\r\n", "\n").split("\n")
    edits: list[Edit] = []
    fence: _Fence | None = None
    last_path = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if SEARCH.match(line.strip()):
            last_path = _path_before(lines, i, last_path)
            edit, i = _search_block(lines, i, last_path, len(edits) + 1)
            edits.append(edit)
            if fence is not None:
                fence.has_block = True
            continue
        match = FENCE.match(line)
        if fence is None and match:
            fence = _Fence(i, match[1], match[2])
        elif fence is not None and match and not match[2] and _closes(match[1], fence.marker):
            if not fence.has_block:
                edits.extend(_fenced(lines, fence, i))
            fence = None
        i += 1
    if fence is not None and not fence.has_block and _fenced(lines, fence, len(lines)):
        raise EditError(f"A code fence is never closed (was the answer cut off?).\n\n{FORMAT_HELP}")
    if not edits:
        raise EditError(
            "Your answer contains no edits (a code block only counts when its file path is "
            f"alone on the line before it).\n\n{FORMAT_HELP}"
        )
    return edits


def _closes(marker: str, opening: str) -> bool:
    return marker[0] == opening[0] and len(marker) >= len(opening)


def _path_before(lines: list[str], at: int, last_path: str) -> str:
    """The path line above a SEARCH marker, looking past blank and fence lines. A block that
    directly follows another one (nothing but fences between) keeps its path."""
    for j in range(at - 1, max(-1, at - 6), -1):
        stripped = lines[j].strip()
        if not stripped:
            continue
        if REPLACE.match(stripped):
            return last_path
        match = FENCE.match(lines[j])
        if match:
            if path := _info_path(match[2]):
                return path
            continue
        return _path_of(stripped, strict=False)
    return ""


def _path_of(line: str, *, strict: bool) -> str:
    """The path a line holds alone (`src/x.py`, **`src/x.py`**, File: src/x.py), else ''.
    Strict (before a bare code block, where prose is likelier) asks for a slash or extension."""
    text = line.strip().lstrip("#* ")
    text = re.sub(r"^(?:file(?:name)?|path)\s*:\s*", "", text, flags=re.IGNORECASE)
    text = text.strip("`*'\": ").removeprefix("./")
    if not PATH.match(text) or (strict and "/" not in text and not re.search(r"\.\w+$", text)):
        return ""
    return text


def _info_path(info: str) -> str:
    """A path given in a fence's info string: ```path=src/x.py, or ```src/x.py."""
    if match := re.search(r"(?:^|\s)path=(\S+)", info):
        return _path_of(match[1], strict=False)
    return _path_of(info, strict=True) if info and " " not in info else ""


def check_path(path: str) -> str:
    """`path`, unless it is absolute or climbs out of the workspace or into `.git/`: a first
    line of defence (the scope gate checks more)."""
    parts = re.split(r"[\\/]", path)
    if path.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", path):
        raise EditError(f"{path}: paths must be relative to the repository root, not absolute.")
    # Any spelling git treats as its own directory (`.GIT`, `.git.`): git refuses to add it, and
    # that is the answer's fault, not the machine's.
    if ".." in parts or any(p.lower().rstrip(". ") == ".git" for p in parts):
        raise EditError(f"{path}: paths may not contain `..` or point into `.git/`.")
    return path


def _malformed(number: int, problem: str) -> EditError:
    return EditError(f"Block {number} is malformed: {problem}.\n\n{FORMAT_HELP}")


def _search_block(lines: list[str], at: int, path: str, number: int) -> tuple[Edit, int]:
    if not path:
        raise _malformed(number, "the line before `<<<<<<< SEARCH` must be the file path alone")
    search: list[str] = []
    j = at + 1
    while j < len(lines) and not DIVIDER.match(lines[j].strip()):
        if SEARCH.match(lines[j].strip()) or REPLACE.match(lines[j].strip()):
            break
        search.append(lines[j])
        j += 1
    if j == len(lines) or not DIVIDER.match(lines[j].strip()):
        raise _malformed(number, f"the SEARCH section for {path} has no `=======` line")
    replace: list[str] = []
    j += 1
    while j < len(lines) and not REPLACE.match(lines[j].strip()):
        if SEARCH.match(lines[j].strip()):
            break
        replace.append(lines[j])
        j += 1
    if j == len(lines) or not REPLACE.match(lines[j].strip()):
        raise _malformed(number, f"the block for {path} does not end with `>>>>>>> REPLACE`")
    # A SEARCH holding only blank lines means "create", as the model cannot match blank lines.
    found = _join(search) if any(s.strip() for s in search) else ""
    edit = Edit(path=check_path(path), kind="search_replace", search=found, replace=_join(replace))
    return edit, j + 1


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _fenced(lines: list[str], fence: _Fence, end: int) -> list[Edit]:
    """A closed code block without search/replace blocks: a diff, a whole file, or prose."""
    body = lines[fence.start + 1 : end]
    kind = (fence.info.lower().split() or [""])[0]
    first = next((line for line in body if line.strip()), "")
    if kind in {"diff", "patch", "udiff"} or first.startswith(("--- ", "diff --git")):
        return _parse_udiff(body)
    path = _info_path(fence.info)
    if not path and fence.start > 0:
        path = _path_of(lines[fence.start - 1], strict=True)
    return [Edit(path=check_path(path), kind="whole_file", replace=_join(body))] if path else []


def _diff_path(header: str, prefix: str) -> str | None:
    raw = header[4:].split("\t", maxsplit=1)[0].strip().strip('"')
    return None if raw == "/dev/null" else check_path(raw.removeprefix(prefix))


def _parse_udiff(body: list[str]) -> list[Edit]:
    """One udiff edit per file, headers rewritten to a/ b/ so `git apply` (-p1) reads them."""
    files: list[tuple[str, list[str]]] = []
    pairs = zip(body, [*body[1:], ""], strict=True)
    for line, after in pairs:
        if line.startswith("--- ") and after.startswith("+++ "):
            next(pairs)  # the +++ line, consumed here
            old, new = _diff_path(line, "a/"), _diff_path(after, "b/")
            path = new or old
            if path is None:
                raise EditError(f"A diff has /dev/null on both sides.\n\n{FORMAT_HELP}")
            head = [
                f"--- a/{old}" if old else "--- /dev/null",
                f"+++ b/{new}" if new else "+++ /dev/null",
            ]
            files.append((path, head))
        elif DIFF_METADATA.match(line):
            continue
        elif line.startswith("@@") and not HUNK.match(line):
            raise EditError(
                f"The hunk header `{line[:60]}` has no line numbers; write `@@ -12,6 +12,7 @@` "
                "(counts may be approximate), or use search/replace blocks instead."
            )
        elif files:
            files[-1][1].append(line)
        elif line.startswith(("@@", "+", "-")):
            raise EditError("Each file's diff must start with `--- a/path` and `+++ b/path` lines.")
    edits = []
    for path, text in files:
        while text and not text[-1].strip():
            text.pop()  # the blank line before the closing fence is not context
        if not any(line.startswith("@@") for line in text):
            raise EditError(f"The diff for {path} has no `@@` hunk.")
        # git finds a hunk by its context or removed lines; one made only of added lines would
        # be placed by its line number alone, which is guesswork.
        # A hunk numbered `-0,0` is the exception: the file is empty, so there is one place.
        hunks = "\n".join(text[2:]).split("\n@@")
        if text[0] != "--- /dev/null" and any(
            all(line.startswith("+") for line in hunk.split("\n")[1:])
            and not EMPTY_ORIGINAL.match(hunk.lstrip("@"))
            for hunk in hunks
        ):
            raise EditError(f"A hunk for {path} has only added lines: include context lines.")
        edits.append(Edit(path=path, kind="udiff", diff=_join(text)))
    if not edits:
        raise EditError(f"A diff block holds no file changes.\n\n{FORMAT_HELP}")
    return edits


def resolve(original: str | None, edit: Edit) -> str:
    """The new content of `edit.path` (None: the file does not exist) after a search/replace or
    whole-file edit. Raises EditError with feedback for the model."""
    if edit.kind == "whole_file":
        text = edit.replace
        return text + "\n" if text and not text.endswith("\n") else text
    if edit.kind != "search_replace":
        raise ValueError(f"resolve() cannot apply a {edit.kind} edit")
    if original is not None and "\r\n" in original:
        # Keep a CRLF file CRLF: the model writes LF, so match and edit in LF and convert back.
        return resolve(original.replace("\r\n", "\n"), edit).replace("\n", "\r\n")
    path = edit.path
    if not edit.search:
        if original:
            raise EditError(
                f"{path} already exists; an empty SEARCH only creates new files. "
                "SEARCH for the lines to change instead."
            )
        return edit.replace
    if original is None:
        raise EditError(
            f"{path} does not exist. Check the path; to create the file, leave SEARCH empty."
        )
    lines, want, new = _lines(original), _lines(edit.search), _lines(edit.replace)
    n = len(want)
    starts = range(len(lines) - n + 1)
    hits = [i for i in starts if lines[i : i + n] == want]
    if not hits:  # trailing whitespace and a missing final newline do not count
        hits = [i for i in starts if all(map(_same_rstripped, lines[i : i + n], want))]
    shifts: list[tuple[str, str]] = [("", "")] * len(hits)
    if not hits:  # the whole block indented more or less than the file: re-indent the replacement
        for i in starts:
            if (shift := _indent_shift(lines[i : i + n], want)) is not None:
                hits.append(i)
                shifts.append(shift)
    if len(hits) > 1:
        where = ", ".join(str(i + 1) for i in hits[:8]) + (", …" if len(hits) > 8 else "")
        raise EditError(
            f"SEARCH matches {len(hits)} places in {path} (lines {where}). "
            "Add a few surrounding lines to SEARCH so that it matches exactly one place."
        )
    if not hits:
        raise EditError(_not_found(path, lines, want))
    i, shift = hits[0], shifts[0]
    return "".join(lines[:i] + [_reindent(line, shift) for line in new] + lines[i + n :])


def _lines(text: str) -> list[str]:
    """Lines with their newlines, split on \\n only (str.splitlines also splits on \\f, \\x1c…)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _same_rstripped(have: str, want: str) -> bool:
    return have.rstrip() == want.rstrip()


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _indent_shift(have: list[str], want: list[str]) -> tuple[str, str] | None:
    """(drop, add) turning every SEARCH line's indentation into the file's, if one uniform shift
    does so for all non-blank lines; None otherwise."""
    shift: tuple[str, str] | None = None
    for file_line, search_line in zip(have, want, strict=True):
        if file_line.strip() != search_line.strip():
            return None
        if not search_line.strip():
            continue
        hl, wl = _lead(file_line), _lead(search_line)
        if shift is None:
            if hl.endswith(wl):
                shift = ("", hl[: len(hl) - len(wl)])
            elif wl.endswith(hl):
                shift = (wl[: len(wl) - len(hl)], "")
            else:
                return None
        drop, add = shift
        if not wl.startswith(drop) or add + wl[len(drop) :] != hl:
            return None
    return shift


def _reindent(line: str, shift: tuple[str, str]) -> str:
    drop, add = shift
    if not line.strip():
        return line
    if drop:  # drop what indentation the line has, up to the shift
        return line[min(len(drop), len(_lead(line))) :]
    return add + line


def hunk_not_found(path: str, original: str | None, diff: str) -> str:
    """Why a udiff edit did not apply, in the words a SEARCH miss gets: the first hunk whose
    context and removed lines are not in the file, and the file's closest lines ("" when every
    hunk's lines are there: git refused it for another reason)."""
    headers = [line for line in diff.split("\n") if line.startswith("--- ")]
    if headers != [f"--- a/{path}"]:  # a new, deleted, renamed or multi-file diff: git's words
        return ""
    if original is None:
        return f"{path} does not exist; a diff that creates it starts with `--- /dev/null`."
    lines = _lines(original.replace("\r\n", "\n"))
    for number, hunk in enumerate(diff.split("\n@@")[1:], 1):
        want = [
            line[1:] + "\n" for line in hunk.split("\n")[1:] if line[:1] in (" ", "-") or line == ""
        ]
        while want and not want[-1].strip():
            want.pop()
        n = len(want)
        if n and not any(
            all(map(_same_rstripped, lines[i : i + n], want)) for i in range(len(lines) - n + 1)
        ):
            head = (
                f"Hunk {number}: its context and - lines are not in {path}; they must copy the "
                "current lines exactly."
            )
            return _not_found(path, lines, want, head)
    return ""


def _not_found(path: str, lines: list[str], want: list[str], head: str = "") -> str:
    head = head or f"SEARCH was not found in {path}; it must copy the current lines exactly."
    start = _closest(lines, want)
    if start is None:
        return f"{head} Nothing in the file ({len(lines)} lines) resembles it; re-read the file."
    end = min(len(lines), start + max(len(want), 3) + 1, start + SHOWN_LINES)
    start = max(0, start - 1)
    shown = "\n".join(f"{k + 1:>5} | {lines[k].rstrip()[:120]}" for k in range(start, end))
    return f"{head} The closest lines in {path} are:\n{shown}\nCopy the lines to change from there."


def _closest(lines: list[str], want: list[str]) -> int | None:
    """Where the SEARCH most likely meant to start: the longest run of identical (stripped)
    lines, else the line most like SEARCH's first line."""
    have = [line.strip() or "\0" for line in lines]
    need = [line.strip() or "\1" for line in want]  # blank lines never anchor a match
    matcher = difflib.SequenceMatcher(None, have, need, autojunk=False)
    block = max(matcher.get_matching_blocks(), key=lambda b: b.size)
    if block.size:
        return max(0, block.a - block.b)
    first = next((line for line in need if line != "\1"), "")
    if not first:
        return None
    # Compare with each line's start only, so that a long line is not penalised for its tail.
    heads = (line[: 2 * len(first)] for line in have[:5000])
    ratios = [difflib.SequenceMatcher(None, head, first).ratio() for head in heads]
    best = max(range(len(ratios)), key=ratios.__getitem__, default=None)
    return best if best is not None and ratios[best] >= 0.5 else None
