"""Classic program repair's mutation step, pure: from a Python file and the lines fault localisation
ranks most suspicious, the small textual changes (mutants) the classic operators make to the
statements on those lines, each a whole new file for the caller to run the proving tests against.

Conventions:
- A line selects the statements that start on it, with all the expressions they hold themselves
  (an `if`'s test, an assignment's value, a call's arguments), never those of the statements
  nested in their bodies: those have lines of their own. A line inside a statement that started
  earlier (a multi-line header or call) selects that statement's expressions starting on it.
- Mutants come by the lines' order, then by operator (`OPERATORS`), then by place in the file.
  Each replaces one span and leaves the rest of the file byte-identical; each parses and differs
  from the original and from every mutant before it.
- String constants, docstrings, f-strings and annotations are never touched; a `def` offers only
  its default values, a `class` line nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from cascade.repair.operators import TABLE, Node, Source


@dataclass(frozen=True)
class Mutant:
    """One candidate: `before` (an exact substring of the original) replaced by `after`, giving the
    whole new file `source`. `line` is where the mutated node starts."""

    path: str
    line: int
    operator: str
    before: str
    after: str
    source: str


OPERATORS: tuple[str, ...] = tuple(name for name, _ in TABLE)  # in the order tried for a line


def mutants(path: str, source: str, lines: Sequence[int], *, limit: int = 1000) -> list[Mutant]:
    """The mutants of the statements on `lines` (most suspicious first; repeats ignored), at most
    `limit`, in the order of the module docstring. Source that does not parse has none."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: a null byte
        return []
    src = Source(source, tree)
    statements = [(s, _own_expressions(s)) for s in ast.walk(tree) if isinstance(s, ast.stmt)]
    seen = {source}

    def candidates() -> Iterator[Mutant]:
        for line in dict.fromkeys(lines):
            nodes = _nodes_on(line, statements)
            for name, operator in TABLE:
                for edit in (edit for node in nodes for edit in operator(node, src)):
                    text = source[: edit.start] + edit.after + source[edit.end :]
                    if text not in seen and _parses(text):
                        seen.add(text)
                        before = source[edit.start : edit.end]
                        yield Mutant(path, edit.line, name, before, edit.after, text)

    return list(islice(candidates(), max(limit, 0)))


def _own_expressions(statement: ast.stmt) -> list[ast.expr]:
    """Every expression `statement` holds itself, not through the statements in its body."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        defaults = [*statement.args.defaults, *statement.args.kw_defaults]
        roots: list[ast.AST] = [default for default in defaults if default is not None]
    elif isinstance(statement, ast.ClassDef):
        roots = []
    else:
        roots = [
            item
            for field, value in ast.iter_fields(statement)
            if field != "annotation"
            for item in (value if isinstance(value, list) else [value])
            if isinstance(item, ast.expr | ast.withitem)
        ]
    found: list[ast.expr] = []
    while roots:  # a stack, not recursion: `a + b + ...` nests as deep as it is long
        node = roots.pop()
        if not isinstance(node, ast.JoinedStr):  # f-strings stay as written
            found += [node] if isinstance(node, ast.expr) else []
            roots.extend(ast.iter_child_nodes(node))
    return found


def _nodes_on(line: int, statements: list[tuple[ast.stmt, list[ast.expr]]]) -> list[Node]:
    """The statements starting on `line` with their expressions, and the expressions starting on
    it of a statement that started earlier; outer nodes before inner, then by place."""
    nodes: list[Node] = []
    for statement, expressions in statements:
        if statement.lineno == line:
            nodes += [statement, *expressions]
        elif statement.lineno < line <= max((e.end_lineno or 0 for e in expressions), default=0):
            nodes += [e for e in expressions if e.lineno == line]
    return sorted(nodes, key=_position)


def _position(node: Node) -> tuple[int, int, int, int]:
    return (node.lineno, node.col_offset, -(node.end_lineno or 0), -(node.end_col_offset or 0))


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True
