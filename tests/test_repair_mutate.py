"""Mutation operators for repair without a model (cascade/repair/mutate.py): each operator's exact
mutants on tiny sources, byte-identical text around every change, the order (lines, then
operators), the limit, and an off-by-one bug whose fix is among the mutants."""

from __future__ import annotations

import ast

import pytest

from cascade.repair.mutate import OPERATORS, Mutant, mutants


def triples(source: str, line: int) -> list[tuple[str, str, str]]:
    return [(m.operator, m.before, m.after) for m in mutants("m.py", source, [line])]


def applied(original: str, mutant: Mutant) -> bool:
    """`mutant.source` is `original` with one occurrence of `before` replaced by `after`."""
    start = original.find(mutant.before)
    while start >= 0:
        end = start + len(mutant.before)
        if original[:start] + mutant.after + original[end:] == mutant.source:
            return True
        start = original.find(mutant.before, start + 1)
    return False


def test_operators_are_tried_in_this_order() -> None:
    assert OPERATORS == (
        "compare_op", "arith_op", "const_pm1", "bound_pm1", "bool_op", "negate", "drop_not",
        "swap_args", "swap_operands", "return_variant", "delete_stmt",
    )  # fmt: skip


# Every mutant of the line, in order: (source, line, [(operator, before, after), ...]).
TABLE: list[tuple[str, int, list[tuple[str, str, str]]]] = [
    (  # the boundary neighbour first, then the flips; the test negated
        "def f(a, b):\n    if a < b:\n        return a\n",
        2,
        [
            ("compare_op", "<", "<="),
            ("compare_op", "<", ">"),
            ("compare_op", "<", ">="),
            ("negate", "a < b", "not (a < b)"),
        ],
    ),
    (
        "def f(x):\n    return x + 1\n",
        2,
        [("arith_op", "+", "-"), ("const_pm1", "1", "2"), ("const_pm1", "1", "0")],
    ),
    (
        "ok = x >= y\nz = 1\n",
        1,
        [
            ("compare_op", ">=", ">"),
            ("compare_op", ">=", "<"),
            ("compare_op", ">=", "<="),
            ("delete_stmt", "ok = x >= y\n", ""),
        ],
    ),
    (
        "assert x is None\n",
        1,
        [
            ("compare_op", "is", "is not"),
            ("negate", "x is None", "not (x is None)"),
            ("delete_stmt", "assert x is None", "pass"),
        ],
    ),
    (
        "def f(x, y):\n    return x not in y\n",
        2,
        [("compare_op", "not in", "in"), ("negate", "x not in y", "not (x not in y)")],
    ),
    (
        "def f(a, b):\n    return a == b\n",
        2,
        [("compare_op", "==", "!="), ("negate", "a == b", "not (a == b)")],
    ),
    (
        "q = a * b // c\n",
        1,
        [
            ("arith_op", "//", "/"),
            ("arith_op", "//", "*"),
            ("arith_op", "*", "/"),
            ("arith_op", "*", "//"),
            ("swap_operands", "a * b // c", "c // (a * b)"),
            ("delete_stmt", "q = a * b // c", "pass"),
        ],
    ),
    (
        "r = a % n\n",
        1,
        [
            ("arith_op", "%", "//"),
            ("swap_operands", "a % n", "n % a"),
            ("delete_stmt", "r = a % n", "pass"),
        ],
    ),
    (
        "x = 0\ny = 0x10\n",
        1,
        [("const_pm1", "0", "1"), ("const_pm1", "0", "-1"), ("delete_stmt", "x = 0\n", "")],
    ),
    (
        "y = 0x10\n",
        1,
        [
            ("const_pm1", "0x10", "0x11"),
            ("const_pm1", "0x10", "0xf"),
            ("delete_stmt", "y = 0x10", "pass"),
        ],
    ),
    (  # -1 as a power's base must stay one operand: (-1) ** 2 is 1, -1 ** 2 is -1
        "y = 0 ** 2\n",
        1,
        [
            ("const_pm1", "0", "1"),
            ("const_pm1", "0", "(-1)"),
            ("const_pm1", "2", "3"),
            ("const_pm1", "2", "1"),
            ("swap_operands", "0 ** 2", "2 ** 0"),
            ("delete_stmt", "y = 0 ** 2", "pass"),
        ],
    ),
    (  # True and False are not integers
        "flag = True\n",
        1,
        [("delete_stmt", "flag = True", "pass")],
    ),
    (
        "for i in range(len(xs)):\n    print(xs[i])\n",
        1,
        [("bound_pm1", "len(xs)", "len(xs) + 1"), ("bound_pm1", "len(xs)", "len(xs) - 1")],
    ),
    (
        "for i in range(len(xs)):\n    print(xs[i])\n",
        2,
        [
            ("bound_pm1", "i", "i + 1"),
            ("bound_pm1", "i", "i - 1"),
            ("delete_stmt", "print(xs[i])", "pass"),
        ],
    ),
    (
        "head = x[:k]\n",
        1,
        [
            ("bound_pm1", "k", "k + 1"),
            ("bound_pm1", "k", "k - 1"),
            ("delete_stmt", "head = x[:k]", "pass"),
        ],
    ),
    (
        "ok = a and b\n",
        1,
        [("bool_op", "and", "or"), ("delete_stmt", "ok = a and b", "pass")],
    ),
    ("if not ready:\n    go()\n", 1, [("drop_not", "not ready", "ready")]),
    (
        "while busy(x):\n    x = step(x)\n",
        1,
        [("negate", "busy(x)", "not busy(x)")],
    ),
    (
        "v = a if c else b\n",
        1,
        [("negate", "c", "not c"), ("delete_stmt", "v = a if c else b", "pass")],
    ),
    (
        "f(a, b, c)\n",
        1,
        [
            ("swap_args", "a, b", "b, a"),
            ("swap_args", "b, c", "c, b"),
            ("delete_stmt", "f(a, b, c)", "pass"),
        ],
    ),
    (  # the operands keep their own parentheses' places
        "d = (a - b) - c\n",
        1,
        [
            ("arith_op", "-", "+"),
            ("arith_op", "-", "+"),
            ("swap_operands", "a - b) - c", "c) - (a - b)"),
            ("swap_operands", "a - b", "b - a"),
            ("delete_stmt", "d = (a - b) - c", "pass"),
        ],
    ),
    (
        "def f():\n    return True\n",
        2,
        [("return_variant", "True", "False")],
    ),
    ("def f(x):\n    return x\n", 2, []),
    (
        "for x in xs:\n    total += x\n",
        2,
        [("arith_op", "+=", "-="), ("delete_stmt", "total += x", "pass")],
    ),
    ("def f(n=3):\n    pass\n", 1, [("const_pm1", "3", "4"), ("const_pm1", "3", "2")]),
    ("class C(Base, metaclass=M):\n    x = 1\n", 1, []),
    ("import os\n", 1, []),
]


@pytest.mark.parametrize(("source", "line", "expected"), TABLE)
def test_each_operator_yields_exactly_these_mutants(
    source: str, line: int, expected: list[tuple[str, str, str]]
) -> None:
    assert triples(source, line) == expected


LOOP = """\
def total(xs):
    total = 0
    for x in xs:
        total += x
        print(x)
    return total
"""


def test_a_statement_with_company_in_its_block_loses_its_whole_line() -> None:
    (deleted,) = [m for m in mutants("m.py", LOOP, [4]) if m.operator == "delete_stmt"]
    assert deleted.before == "        total += x\n"
    assert deleted.source == LOOP.replace("        total += x\n", "")


def test_the_only_statement_of_a_block_becomes_pass() -> None:
    source = "def f(xs):\n    for x in xs:\n        total += x  # sum\n    return 0\n"
    (deleted,) = [m for m in mutants("m.py", source, [3]) if m.operator == "delete_stmt"]
    assert deleted.source == source.replace("total += x  # sum", "pass  # sum")


def test_a_statement_sharing_its_line_becomes_pass() -> None:
    (first, second) = [m.source for m in mutants("m.py", "a = f()\nb = g(); c = h()\n", [2])]
    assert (first, second) == ("a = f()\npass; c = h()\n", "a = f()\nb = g(); pass\n")


def test_docstrings_returns_and_definitions_are_never_deleted() -> None:
    source = '"""Doc."""\nimport os\n\n\ndef f():\n    """Doc."""\n    return os\n'
    assert [m for line in range(1, 8) for m in mutants("m.py", source, [line])] == []


def test_formatting_and_comments_elsewhere_stay_byte_identical() -> None:
    source = "# head  \n\nif  a<b :   # odd spacing\n\tx  =  [1,2]  # tab\r\n"
    first = mutants("m.py", source, [3])[0]
    assert first.source == "# head  \n\nif  a<=b :   # odd spacing\n\tx  =  [1,2]  # tab\r\n"
    for mutant in mutants("m.py", source, [3, 4]):
        assert applied(source, mutant), mutant


def test_non_ascii_text_before_an_operator_on_the_same_line() -> None:
    source = 'label = "日本語 ñ 😀" if n < 10 else "x" + s\n'
    found = mutants("m.py", source, [1])
    assert (found[0].before, found[0].after) == ("<", "<=")
    assert found[0].source == 'label = "日本語 ñ 😀" if n <= 10 else "x" + s\n'
    assert ("arith_op", "+", "-") in [(m.operator, m.before, m.after) for m in found]
    assert all(applied(source, m) for m in found)


def test_an_operator_is_found_past_parentheses_and_comments() -> None:
    source = "ok = ((a)  # why\n      is not None)\n"
    assert mutants("m.py", source, [1])[0].source == "ok = ((a)  # why\n      is None)\n"


def test_nested_bodies_are_not_mutated_through_their_parents_line() -> None:
    source = "if a < b:\n    c = d + 1\nelse:\n    c = 0\n"
    found = mutants("m.py", source, [1])
    assert {m.operator for m in found} == {"compare_op", "negate"}
    assert all(m.source.splitlines()[1:] == source.splitlines()[1:] for m in found)
    assert mutants("m.py", source, [3]) == []  # `else:` holds no statement


def test_a_multi_line_header_mutates_what_starts_on_the_line_asked() -> None:
    source = "if (a < b and\n        c > d):\n    go()\n"
    second = mutants("m.py", source, [2])
    assert [(m.line, m.operator, m.after) for m in second] == [
        (2, "compare_op", ">="),
        (2, "compare_op", "<"),
        (2, "compare_op", "<="),
    ]
    first = [(m.operator, m.after) for m in mutants("m.py", source, [1])]
    assert ("compare_op", ">=") in first  # the statement's first line holds all of it
    assert ("negate", "not (a < b and\n        c > d)") in first


def test_mutants_follow_the_order_of_lines_and_ignore_repeats() -> None:
    found = mutants("m.py", LOOP, [4, 2, 4])
    assert [m.line for m in found] == [4, 4, 2, 2, 2]
    assert found == mutants("m.py", LOOP, [4]) + mutants("m.py", LOOP, [2])
    assert mutants("m.py", LOOP, [99]) == []


def test_the_limit_keeps_the_first_mutants() -> None:
    everything = mutants("m.py", LOOP, [4, 2])
    assert mutants("m.py", LOOP, [4, 2], limit=3) == everything[:3]
    assert mutants("m.py", LOOP, [4, 2], limit=0) == []


@pytest.mark.parametrize("source", ["def f(:\n    pass\n", "x = 1\x00\n"])
def test_source_that_does_not_parse_has_no_mutants(source: str) -> None:
    assert mutants("m.py", source, [1]) == []


def test_strings_docstrings_and_f_strings_are_left_alone() -> None:
    source = 'def f(n):\n    """1 < 2 and 3."""\n    s = "10"\n    return f"{n + 1}"\n'
    assert mutants("m.py", source, [2]) == []
    assert triples(source, 3) == [("delete_stmt", '    s = "10"\n', "")]
    assert triples(source, 4) == []


SAMPLE = """\
import math


class Box:
    \"\"\"A box.\"\"\"

    def area(self, w: int = 2, h: int = 3) -> int:
        if w <= 0 or not h:
            raise ValueError(f"bad {w - 1}")
        size = w * h - (w // 2) ** 2
        while size > 10 and size % 2 == 0:
            size -= 1
        return size if size is not None else -1

    def parts(self, xs: list[int], k: int) -> list[int]:
        out = [x - 1 for x in xs[: len(xs) - 1] if x in (1, 2)]
        out.insert(0, math.floor(k / 2)); out.append(xs[k])
        assert out, "empty"
        return out[1:k]
"""


def test_every_mutant_parses_differs_and_is_one_replacement() -> None:
    lines = range(1, SAMPLE.count("\n") + 2)
    found = mutants("box.py", SAMPLE, lines)
    assert {m.operator for m in found} == set(OPERATORS) - {"return_variant"}
    assert len({m.source for m in found}) == len(found)
    for mutant in found:
        ast.parse(mutant.source)
        assert mutant.source != SAMPLE
        assert mutant.path == "box.py" and mutant.operator in OPERATORS
        assert applied(SAMPLE, mutant), mutant


BUGGY = """\
def total(xs):
    s = 0
    for i in range(len(xs) - 1):
        s += xs[i]
    return s
"""


def run_total(source: str) -> object:
    """`total([1, 2, 3])` as the source defines it, or the exception it raises."""
    namespace: dict[str, object] = {}
    exec(compile(source, "buggy.py", "exec"), namespace)
    total = namespace["total"]
    assert callable(total)
    try:
        return total([1, 2, 3])
    except Exception as exc:
        return exc


def test_an_off_by_one_bug_is_fixed_by_one_of_the_mutants() -> None:
    assert run_total(BUGGY) == 3  # the last item is skipped
    found = mutants("buggy.py", BUGGY, [3, 4])
    fixes = [m for m in found if run_total(m.source) == 6]
    assert [(m.operator, m.line, m.before, m.after) for m in fixes] == [
        ("const_pm1", 3, "1", "0"),  # range(len(xs) - 0)
        ("bound_pm1", 3, "len(xs) - 1", "len(xs)"),  # the fix a person would write
    ]
    assert fixes[1].source == BUGGY.replace("range(len(xs) - 1)", "range(len(xs))")


def test_no_mutant_repeats_another_or_the_original() -> None:
    assert triples("f(x, x)\ng()\n", 1) == [("delete_stmt", "f(x, x)\n", "")]
    header = "if (a < b and\n        c > d):\n    go()\n"
    both = mutants("m.py", header, [1, 2])
    assert both == mutants("m.py", header, [1])  # line 2's mutants were all line 1's already


def test_a_returned_predicate_is_negated() -> None:
    """`return self.items.empty()` where `not` was meant: the call and an attribute get `not`;
    a returned bare name does not (its type would change for nothing)."""
    source = "def has_next(s):\n    return s.done()\n\n\ndef flag(s):\n    return s.ready\n"
    found = [(m.line, m.after) for m in mutants("m.py", source, [2, 6]) if m.operator == "negate"]
    assert found == [(2, "not s.done()"), (6, "not s.ready")]
