"""Spot a patch that silences a gate instead of satisfying it: a suppression comment (`# noqa`,
`# ruff: noqa`, `# type: ignore`, `# mypy: ignore-errors`, `# pyright: ignore`, `# pragma: no
cover`) written on a line of a Python file. Comments are found with `tokenize`, so text inside a
string is not one; a suppression the patch only carried over from a line it removed is not new."""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from collections.abc import Iterator

from cascade.records import Finding
from evaluators.patch_files import FileDiff, old_text

RULE = "suppression_added"
# (tool, directive) in a comment, matched case-insensitively and loose about spaces, as ruff
# matches (NOQA, `ruff : noqa`); mypy is stricter, so none of its own is missed. `codes` tells one
# suppression from another (`noqa: F401` is not a bare `noqa`). These comments spell directives
# without their hash, or ruff would read them as its own.
_IN_COMMENTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (tool, re.compile(pattern, re.IGNORECASE))
    for tool, pattern in (
        # File-wide: `ruff: noqa`, `flake8: noqa: E501`, `ruff: isort: skip_file`.
        ("ruff", r"#\s*(?:ruff|flake8)\s*:(?P<codes>[^#]*)"),
        ("ruff", r"#\s*noqa(?![\w-])(?:\s*:\s*(?P<codes>[a-z]+[0-9]+(?:[\s,]+[a-z]+[0-9]+)*))?"),
        ("ruff", r"#\s*isort\s*:\s*(?P<codes>skip\w*|off)"),
        ("mypy", r"#\s*type\s*:\s*ignore(?:\s*\[(?P<codes>[^\]]*)\])?"),
        # Inline config (`ignore-errors`, `disable-error-code=…`): mypy reads it only in a
        # comment that starts its line, so one after code is just a comment.
        ("mypy", r"^#\s*mypy\s*:(?P<codes>[^#]*)"),
        ("pyright", r"#\s*pyright\s*:(?!\s*strict\b)(?P<codes>[^#]*)"),
    )
)
# coverage matches its exclusions against whole source lines: a string holding one counts too.
_IN_LINES = (("coverage", re.compile(r"#\s*pragma[:\s]?\s*no\s*(?P<codes>cover|branch)", re.I)),)
FIX = (  # the directives without their hash: coverage would read one even in a string
    "Fix what ruff, mypy or coverage report instead of silencing it: write no suppression "
    "comments (noqa, ruff: noqa, type: ignore, mypy: ignore-errors, pragma: no cover)."
)

Key = tuple[str, str]  # (tool, its codes normalized)
Comment = tuple[int, str]  # (column, text from the `#`)


def suppression_findings(diff: FileDiff, new_text: str | None) -> list[Finding]:
    """A finding for each line of a Python file on which the patch writes a suppression that
    none of the lines it removed from that file had. `new_text` is the patched file as the
    sandbox holds it (None: unread); when it is not what the hunks say, the patch's lines are
    read alone, a `#` outside quotes on the line starting a comment."""
    added, removed = _changed_lines(diff)
    new_comments: dict[int, list[Comment]] = {}
    old_comments: dict[int, list[Comment]] = {}
    if new_text is not None and _holds(new_text, added):
        new_comments = _comments(new_text)
        if diff.status == "modified":
            old_comments = _comments(old_text(new_text, diff))
    carried = Counter(
        key
        for number, text in removed
        for key, _ in _directives(old_comments.get(number, _line_comment(text)), text)
    )
    found: list[Finding] = []
    for number, text in added:
        fresh: list[str] = []
        for key, written in _directives(new_comments.get(number, _line_comment(text)), text):
            if carried[key] > 0:
                carried[key] -= 1
            else:
                fresh.append(f"`{written}` ({key[0]})")
        if fresh:
            message = f"adds {', '.join(fresh)}, which silences a gate instead of fixing the code"
            found.append(Finding(rule=RULE, path=diff.path, line=number, message=message))
    return found


def _changed_lines(diff: FileDiff) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(added, removed): each line's number in the patched, resp. the base, file and its text."""
    added: list[tuple[int, str]] = []
    removed: list[tuple[int, str]] = []
    for hunk in diff.hunks:
        old_no, new_no = hunk.old_start, hunk.new_start
        for line in hunk.lines:
            kind, text = line[:1], line[1:]
            if kind == "+":
                added.append((new_no, text))
            elif kind == "-":
                removed.append((old_no, text))
            old_no += kind in (" ", "-")
            new_no += kind in (" ", "+")
    return added, removed


def _holds(text: str, added: list[tuple[int, str]]) -> bool:
    lines = text.split("\n")
    return all(0 < n <= len(lines) and lines[n - 1] == t for n, t in added)


def _comments(text: str) -> dict[int, list[Comment]]:
    """Line number -> the comments on it, for every line tokenized. A line the tokenizer did not
    reach (the file stops being Python before it) is left out: its text is read alone."""
    found: dict[int, list[Comment]] = {}
    reached = 0  # lines before this one were read whole
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                found.setdefault(token.start[0], []).append((token.start[1], token.string))
            reached = token.end[0]
    except (tokenize.TokenError, SyntaxError, ValueError, RecursionError):
        pass
    else:
        reached = text.count("\n") + 2
    for number in range(1, reached):
        found.setdefault(number, [])
    return found


def _line_comment(line: str) -> list[Comment]:
    """The comment on one line read alone: from the first `#` outside a quoted string."""
    quote = ""
    i = 0
    while i < len(line):
        if quote:
            if line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif line[i] == "#":
            return [(i, line[i:])]
        elif line[i] in "'\"":
            quote = line[i] * 3 if line.startswith(line[i] * 3, i) else line[i]
            i += len(quote)
            continue
        i += 1
    return []


def _directives(comments: list[Comment], line: str) -> Iterator[tuple[Key, str]]:
    """Each suppression on one line, in its comments or (coverage's) anywhere on it: its key and
    its text as written."""
    for column, text in comments:
        for tool, pattern in _IN_COMMENTS:
            if not (pattern.pattern.startswith("^") and column):
                yield from _matches(tool, pattern, text)
    for tool, pattern in _IN_LINES:
        yield from _matches(tool, pattern, line)


def _matches(tool: str, pattern: re.Pattern[str], text: str) -> Iterator[tuple[Key, str]]:
    for match in pattern.finditer(text):
        codes = sorted(re.split(r"[\s,]+", (match["codes"] or "").strip().lower()))
        yield (tool, " ".join(codes)), match[0].strip()
