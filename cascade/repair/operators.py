"""The mutation operators of `cascade.repair.mutate`, one function each: given one node (a
statement or an expression) of a statement on a suspicious line, the edits they make to it, as
spans of the original text. `TABLE` holds them in the order they are tried for a line. Pure; an
edit need not parse, the caller checks.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate, pairwise
from typing import NamedTuple, TypeAlias

Node: TypeAlias = ast.stmt | ast.expr


class Edit(NamedTuple):
    """One span of the original, in string offsets, its replacement, and the mutated node's line."""

    start: int
    end: int
    after: str
    line: int


# Python's own line breaks (what `ast` counts lines by); str.splitlines knows more, e.g. \f.
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


class Source:
    """The original text, with `ast` positions turned into string offsets (columns count UTF-8
    bytes), and the two facts about the tree that operators need beyond one node."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.text = text
        self.lines: list[str] = _LINES.findall(text)
        self.starts = list(accumulate(map(len, self.lines), initial=0))
        # Statements alone in their block: deleting one leaves `pass` behind.
        self.lone = {id(b[0]) for n in ast.walk(tree) for b in _blocks(n) if len(b) == 1}
        # Where `-1` needs parentheses to mean itself: a power's base, before an attribute.
        self.tight = {
            id(n.left if isinstance(n, ast.BinOp) else n.value)
            for n in ast.walk(tree)
            if (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow))
            or isinstance(n, ast.Attribute)
        }

    def offset(self, line: int, col: int) -> int:
        if line > len(self.lines):
            return len(self.text)
        return self.starts[line - 1] + len(self.lines[line - 1].encode()[:col].decode())

    def span(self, node: Node) -> tuple[int, int]:
        end_line, end_col = node.end_lineno, node.end_col_offset
        assert end_line is not None and end_col is not None  # ast.parse sets both
        return self.offset(node.lineno, node.col_offset), self.offset(end_line, end_col)

    def segment(self, node: Node) -> str:
        start, end = self.span(node)
        return self.text[start:end]

    def token(self, left: Node, right: Node, expected: str) -> tuple[int, int] | None:
        """The span of the operator between two operands, found by skipping what else may sit
        there (blanks, parentheses, line continuations, comments); None when it does not read
        `expected`, e.g. a comment between `is` and `not`."""
        i, end = self.span(left)[1], self.span(right)[0]
        first = last = -1
        while i < end:
            char = self.text[i]
            if char == "#":
                i = min(self.starts[bisect_right(self.starts, i)], end)
                continue
            if char not in " \t\f\r\n\\()":
                first, last = i if first < 0 else first, i + 1
            i += 1
        if first < 0 or " ".join(self.text[first:last].split()) != expected:
            return None
        return first, last

    def replace_token(
        self, left: Node, right: Node, token: str, alternatives: Sequence[str], line: int
    ) -> Iterator[Edit]:
        span = self.token(left, right, token)
        if span is not None:
            for alternative in alternatives:
                yield Edit(span[0], span[1], alternative, line)

    def swap(self, left: Node, right: Node, *, wrap: bool) -> Edit:
        """`left` and `right` trade places, what lies between them kept; with `wrap`, a compound
        operand moved is parenthesised, so it stays one operand wherever it lands."""
        (left_start, left_end), (right_start, right_end) = self.span(left), self.span(right)
        first, second = self.text[right_start:right_end], self.text[left_start:left_end]
        if wrap:
            first, second = _parenthesised(right, first), _parenthesised(left, second)
        between = self.text[left_end:right_start]
        return Edit(left_start, right_end, first + between + second, left.lineno)


def _blocks(node: ast.AST) -> Iterator[list[ast.stmt]]:
    for _, value in ast.iter_fields(node):
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            yield value


_ATOMS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant)


def _parenthesised(node: Node, text: str) -> str:
    return text if isinstance(node, _ATOMS) else f"({text})"


_COMPARE: dict[type[ast.cmpop], tuple[str, tuple[str, ...]]] = {
    ast.Lt: ("<", ("<=", ">", ">=")),  # the boundary neighbour first, then the flips
    ast.LtE: ("<=", ("<", ">", ">=")),
    ast.Gt: (">", (">=", "<", "<=")),
    ast.GtE: (">=", (">", "<", "<=")),
    ast.Eq: ("==", ("!=",)),
    ast.NotEq: ("!=", ("==",)),
    ast.Is: ("is", ("is not",)),
    ast.IsNot: ("is not", ("is",)),
    ast.In: ("in", ("not in",)),
    ast.NotIn: ("not in", ("in",)),
}
_ARITH: dict[type[ast.operator], tuple[str, tuple[str, ...]]] = {
    ast.Add: ("+", ("-",)),
    ast.Sub: ("-", ("+",)),
    ast.Mult: ("*", ("/", "//")),
    ast.Div: ("/", ("*", "//")),
    ast.FloorDiv: ("//", ("/", "*")),
    ast.Mod: ("%", ("//",)),
}
_BOOL: dict[type[ast.boolop], tuple[str, str]] = {ast.And: ("and", "or"), ast.Or: ("or", "and")}
_NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift)
_DELETABLE = (
    ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Raise, ast.Assert, ast.Delete,
    ast.Break, ast.Continue,
)  # fmt: skip


def _compare_op(node: Node, src: Source) -> Iterator[Edit]:
    if isinstance(node, ast.Compare):
        operands = pairwise([node.left, *node.comparators])
        for op, (left, right) in zip(node.ops, operands, strict=True):
            yield from src.replace_token(left, right, *_COMPARE[type(op)], node.lineno)


def _arith_op(node: Node, src: Source) -> Iterator[Edit]:
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        yield from src.replace_token(node.left, node.right, *_ARITH[type(node.op)], node.lineno)
    elif isinstance(node, ast.AugAssign) and type(node.op) in _ARITH:
        token, alternatives = _ARITH[type(node.op)]
        augmented = [f"{alternative}=" for alternative in alternatives]
        yield from src.replace_token(node.target, node.value, f"{token}=", augmented, node.lineno)


def _const_pm1(node: Node, src: Source) -> Iterator[Edit]:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        start, end = src.span(node)
        for value in (node.value + 1, node.value - 1):
            text = _int_text(value, src.text[start:end])
            tight = value < 0 and id(node) in src.tight
            yield Edit(start, end, f"({text})" if tight else text, node.lineno)


def _int_text(value: int, written: str) -> str:
    """`value` in the base the original literal was written in."""
    base = {"0x": hex, "0o": oct, "0b": bin}.get(written[:2].lower(), str)
    return base(value)


def _bound_pm1(node: Node, src: Source) -> Iterator[Edit]:
    """A `range()` argument, slice bound or index one further or nearer: a name or `len(...)` gets
    `+ 1` and `- 1`; one already offset by a constant (`len(xs) - 1`) loses the offset."""
    for bound in _bounds(node):
        start, end = src.span(bound)
        if (
            isinstance(bound, ast.BinOp)
            and isinstance(bound.op, ast.Add | ast.Sub)
            and isinstance(bound.right, ast.Constant)
            and type(bound.right.value) is int
        ):
            yield Edit(start, end, src.segment(bound.left), bound.lineno)
        elif isinstance(bound, ast.Name | ast.Attribute) or (
            isinstance(bound, ast.Call)
            and isinstance(bound.func, ast.Name)
            and bound.func.id == "len"
        ):
            for offset in (" + 1", " - 1"):
                yield Edit(start, end, src.text[start:end] + offset, bound.lineno)


def _bounds(node: Node) -> list[ast.expr]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        return node.args
    if isinstance(node, ast.Slice):
        return [bound for bound in (node.lower, node.upper) if bound is not None]
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice | ast.Tuple):
        return [node.slice]
    return []


def _bool_op(node: Node, src: Source) -> Iterator[Edit]:
    if isinstance(node, ast.BoolOp):
        token, alternative = _BOOL[type(node.op)]
        for left, right in pairwise(node.values):
            yield from src.replace_token(left, right, token, [alternative], node.lineno)


def _negate(node: Node, src: Source) -> Iterator[Edit]:
    test = _condition(node)
    if test is None or (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)):
        return  # `not not x` is drop_not's business
    start, end = src.span(test)
    text = src.text[start:end]
    yield Edit(start, end, f"not {_parenthesised(test, text)}", test.lineno)


def _condition(node: Node) -> ast.expr | None:
    if isinstance(node, ast.If | ast.While | ast.Assert | ast.IfExp):
        return node.test
    # A returned comparison or predicate: a call or an attribute (`return not s.empty()`).
    returned = ast.Compare | ast.BoolOp | ast.Call | ast.Attribute
    if isinstance(node, ast.Return) and isinstance(node.value, returned):
        return node.value
    return None


def _drop_not(node: Node, src: Source) -> Iterator[Edit]:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        start, end = src.span(node)
        yield Edit(start, end, src.text[start + len("not") : end].lstrip(" \t"), node.lineno)


def _swap_args(node: Node, src: Source) -> Iterator[Edit]:
    if isinstance(node, ast.Call):
        for left, right in pairwise(node.args):
            yield src.swap(left, right, wrap=False)  # commas keep each argument whole


def _swap_operands(node: Node, src: Source) -> Iterator[Edit]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, _NON_COMMUTATIVE):
        yield src.swap(node.left, node.right, wrap=True)


def _return_variant(node: Node, src: Source) -> Iterator[Edit]:
    """`return True` <-> `return False`. (`return not X` for a comparison X is negate's mutant, and
    a returned name or None has no honest variant.)"""
    if (
        isinstance(node, ast.Return)
        and isinstance(node.value, ast.Constant)
        and type(node.value.value) is bool
    ):
        start, end = src.span(node.value)
        yield Edit(start, end, str(not node.value.value), node.lineno)


def _delete_stmt(node: Node, src: Source) -> Iterator[Edit]:
    """A simple statement gone: its whole lines when it has them to itself, else its text; `pass`
    in its place when it is alone in its block. Never a docstring, `return`, definition, import."""
    if not isinstance(node, _DELETABLE) or _is_string(node):
        return
    start, end = src.span(node)
    if id(node) in src.lone:
        yield Edit(start, end, "pass", node.lineno)
        return
    assert node.end_lineno is not None  # ast.parse sets it
    line_start, next_line = src.starts[node.lineno - 1], src.starts[node.end_lineno]
    rest = src.text[end:next_line].strip()
    if not src.text[line_start:start].strip() and (not rest or rest.startswith("#")):
        yield Edit(line_start, next_line, "", node.lineno)
    else:  # shares its line (`a = 1; b = 2`)
        yield Edit(start, end, "pass", node.lineno)


def _is_string(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and (
        isinstance(node.value, ast.JoinedStr)
        or (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
    )


Operator = Callable[[Node, Source], Iterator[Edit]]
TABLE: tuple[tuple[str, Operator], ...] = (
    ("compare_op", _compare_op),
    ("arith_op", _arith_op),
    ("const_pm1", _const_pm1),
    ("bound_pm1", _bound_pm1),
    ("bool_op", _bool_op),
    ("negate", _negate),
    ("drop_not", _drop_not),
    ("swap_args", _swap_args),
    ("swap_operands", _swap_operands),
    ("return_variant", _return_variant),
    ("delete_stmt", _delete_stmt),
)
