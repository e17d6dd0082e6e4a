"""Where a patch rewrote a file, so a finding on a line it edited can be matched with the one the
old line had: each run of removed and added lines between context lines is one change block,
and each line's enclosing function is known on both sides."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from evaluators.patch_files import FileDiff


@dataclass(frozen=True)
class FileEdits:
    """One file's edits: old line -> change block for the lines the patch removed, new line ->
    change block for the lines it wrote (1-based, block ids count from 0 per file); and the file
    before and after, for the functions around a line (worked out only when asked)."""

    removed: Mapping[int, int]
    written: Mapping[int, int]
    old_text: str = ""
    new_text: str = ""

    def old_scope(self, line: int) -> str:
        """The qualified name of the function around an old line ("" outside any)."""
        return self._old_functions.get(line, "")

    def new_scope(self, line: int) -> str:
        return self._new_functions.get(line, "")

    @cached_property
    def _old_functions(self) -> dict[int, str]:
        return function_lines(self.old_text)

    @cached_property
    def _new_functions(self) -> dict[int, str]:
        return function_lines(self.new_text)


def file_edits(diff: FileDiff, old_text: str = "", new_text: str = "") -> FileEdits:
    removed: dict[int, int] = {}
    written: dict[int, int] = {}
    block = -1
    in_block = False
    for hunk in diff.hunks:
        old_no, new_no = hunk.old_start, hunk.new_start
        in_block = False
        for line in hunk.lines:
            kind = line[:1]
            if kind in ("-", "+") and not in_block:
                block += 1
                in_block = True
            if kind == "-":
                removed[old_no] = block
                old_no += 1
            elif kind == "+":
                written[new_no] = block
                new_no += 1
            elif kind == " ":
                in_block = False
                old_no += 1
                new_no += 1
    return FileEdits(removed, written, old_text, new_text)


def function_lines(text: str) -> dict[int, str]:
    """Line -> qualified name of the innermost function (decorators included) around it. Empty
    when the text does not parse with this Python: then no finding is matched by function."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return {}
    lines: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        # Statements only (functions are statements): their nesting is bounded by the parser,
        # where an expression's is not.
        for child in _statements(node):
            name = prefix
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                    end = child.end_lineno or child.lineno
                    # Outer functions are visited first: inner ones overwrite their lines.
                    lines.update(dict.fromkeys(range(first, end + 1), name))
                name += "."
            visit(child, name)

    visit(tree, "")
    return lines


def _statements(node: ast.AST) -> list[ast.AST]:
    """The statements directly inside a node, and its `except` and `case` clauses."""
    found: list[ast.AST] = []
    for name in ("body", "orelse", "finalbody", "handlers", "cases"):
        value = getattr(node, name, None)
        if isinstance(value, list):
            found += [
                v for v in value if isinstance(v, ast.stmt | ast.excepthandler | ast.match_case)
            ]
    return found
