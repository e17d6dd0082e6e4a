"""The real-repositories tasks, part two: six and inflection (no ruff configuration, an older
style that the correct fixes keep), toolz (an order-dependent test beside the target) and idna
(a control with its own ruff settings). See `realrepos_tasks.py` for part one."""

from __future__ import annotations

from benchmarks.realrepos_suite import Edit, Library, PatchSpec, RealTask

SIX = Library("six", "1.17.0", "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81")
INFLECTION = Library(
    "inflection", "0.5.1", "1a29730d366e996aaacffb2f1f1cb9593dc38e2ddd30c91250c6dde09ea9b417"
)
TOOLZ = Library(
    "toolz", "1.0.0", "2c86e3d9a04798ac556793bced838816296a2f085017664e4995cb40a1047a02"
)
IDNA = Library("idna", "3.10", "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9")


def _pytest_config(name: str, text: str) -> Edit:
    return Edit(name, "", text)


# --- SIX-1: six, `%` formatting in a file without ruff configuration --------------------------

_ENSURE_OK = """\
    elif PY3 and isinstance(s, binary_type):
        return s.decode(encoding, errors)
    elif not isinstance(s, (text_type, binary_type)):
        raise TypeError("not expecting type '%s'" % type(s))
    return s
"""
_ENSURE_BUG = """\
    elif PY3 and isinstance(s, binary_type):
        return s.decode(encoding, errors)
    return s
"""

SIX_1 = RealTask(
    id="SIX-1",
    library=SIX,
    situation="older-style",
    title="ensure_str returns non-strings unchanged",
    body="""
`six.ensure_str(8)` returns `8`; like `ensure_binary` and `ensure_text` it should raise
`TypeError` for anything that is neither text nor bytes.
""",
    bug=(Edit("six.py", _ENSURE_OK, _ENSURE_BUG),),
    hidden={
        "test_ensure_types.py": """\
import pytest

import six


@pytest.mark.parametrize("value", [8, 1.5, None, ["a"]])
def test_ensure_str_refuses_other_types(value):
    with pytest.raises(TypeError, match="not expecting type"):
        six.ensure_str(value)
""",
    },
    hidden_tests=("test_ensure_types.py::test_ensure_str_refuses_other_types",),
    note="the fix adds a `%`-formatted line, as the file's other checks are written (ruff UP031)",
    patches=(
        PatchSpec("correct", "correct", (Edit("six.py", _ENSURE_BUG, _ENSURE_OK),), "verified"),
        PatchSpec(
            "do-nothing",
            "do-nothing",
            (
                Edit(
                    "six.py",
                    _ENSURE_BUG,
                    _ENSURE_BUG.replace(
                        "    return s\n",
                        "    # Anything else is returned as it is.\n    return s\n",
                    ),
                ),
            ),
            "rejected",
            by="pytest",
        ),
        PatchSpec(  # refuses None only: the other types still pass through
            "none-only",
            "wrong-fix",
            (
                Edit(
                    "six.py",
                    _ENSURE_BUG,
                    _ENSURE_BUG.replace(
                        "    return s\n",
                        "    elif s is None:\n"
                        "        raise TypeError(\"not expecting type '%s'\" % type(s))\n"
                        "    return s\n",
                    ),
                ),
            ),
            "rejected",
            by="pytest",
        ),
        PatchSpec(
            "ini-deselects",
            "test-tampering",
            (_pytest_config("pytest.ini", '[pytest]\naddopts = -k "not ensure"\n'),),
            "rejected",
            by="diff_scope",
        ),
    ),
)

# --- INF-1: inflection, an edit on a line that already has a ruff finding ---------------------

_INF = "inflection/__init__.py"
_ORD_OK = '    return "{}{}".format(number, ordinal(number))\n'
_ORD_BUG = '    return "{}{}".format(abs(int(number)), ordinal(number))\n'

INF_1 = RealTask(
    id="INF-1",
    library=INFLECTION,
    situation="older-style",
    title="ordinalize drops the sign of negative numbers",
    body="""
`inflection.ordinalize(-11)` returns `'11th'`; the documented result is `'-11th'`.
""",
    bug=(Edit(_INF, _ORD_OK, _ORD_BUG),),
    hidden={
        "test_ordinalize_sign.py": """\
import inflection


def test_ordinalize_keeps_the_sign():
    assert inflection.ordinalize(-21) == "-21st"
    assert inflection.ordinalize(-11) == "-11th"
    assert inflection.ordinalize(3) == "3rd"
""",
    },
    hidden_tests=("test_ordinalize_sign.py::test_ordinalize_keeps_the_sign",),
    note="the fix rewrites a line that has a ruff finding (UP032) at base, keeping `.format`",
    patches=(
        PatchSpec("correct", "correct", (Edit(_INF, _ORD_BUG, _ORD_OK),), "verified"),
        PatchSpec(
            "do-nothing",
            "do-nothing",
            (Edit(_INF, _ORD_BUG, "    # The suffix follows the number.\n" + _ORD_BUG),),
            "rejected",
            by="pytest",
        ),
        PatchSpec(  # abs() of the string forms the visible tests pass ("1", "-1") fails
            "abs-number",
            "wrong-fix",
            (Edit(_INF, _ORD_BUG, '    return "{}{}".format(number, ordinal(abs(number)))\n'),),
            "rejected",
            by="pytest",
        ),
        PatchSpec(
            "weaken-assert",
            "test-tampering",
            (
                Edit(
                    "test_inflection.py",
                    "    assert ordinalized == inflection.ordinalize(number)\n",
                    '    assert ordinalized.lstrip("-") == inflection.ordinalize(number)\n',
                ),
            ),
            "rejected",
            by="diff_scope",
        ),
    ),
)

# --- TLZ-1: toolz, an order-dependent test in the target's file --------------------------------

_MEMO = "toolz/functoolz.py"
_KEY_OK = "                    frozenset(kwargs.items()) if kwargs else None,\n"
_KEY_BUG = "                    frozenset(kwargs) if kwargs else None,\n"
_TARGET = """

def test_memoize_kwargs_by_value():
    def f(x, y=0):
        return x + y

    mf = memoize(f)
    assert mf(1, y=2) == 3
    assert mf(1, y=5) == 6


def test_doubled_was_computed_by_an_earlier_module():
    # Order-dependent: test_dicttoolz.py, collected first, made the one call.
    from memo_helpers import CALLS, doubled

    assert CALLS == [21]
    assert doubled(21) == 42
    assert CALLS == [21]  # served from the cache
"""

TLZ_1 = RealTask(
    id="TLZ-1",
    library=TOOLZ,
    situation="order-dependent",
    title="memoize caches keyword calls by keyword name only",
    body="""
A memoized function called as `mf(1, y=2)` and then `mf(1, y=5)` returns the first result
twice: the cache key holds the keyword names but not their values.
`toolz/tests/test_functoolz.py::test_memoize_kwargs_by_value` shows it.
""",
    added=(
        Edit(
            "toolz/tests/memo_helpers.py",
            "",
            "from toolz import memoize\n\nCALLS = []\n\n\n@memoize\ndef doubled(x):\n"
            "    CALLS.append(x)\n    return 2 * x\n",
        ),
        Edit(
            "toolz/tests/test_dicttoolz.py",
            "    assert merge_with(sum, d) == {1: 1}\n",
            "    assert merge_with(sum, d) == {1: 1}\n\n\ndef test_doubled_fills_its_cache():\n"
            "    from memo_helpers import doubled\n\n    assert doubled(21) == 42\n",
        ),
        Edit(
            "toolz/tests/test_functoolz.py",
            "    assert excepting.__doc__ == excepts.__doc__\n",
            "    assert excepting.__doc__ == excepts.__doc__\n" + _TARGET,
        ),
    ),
    bug=(Edit(_MEMO, _KEY_OK, _KEY_BUG),),
    tests=("toolz/tests/test_functoolz.py::test_memoize_kwargs_by_value",),
    hidden={
        "toolz/tests/test_memoize_keywords.py": """\
from toolz import memoize


def test_memoize_tells_keywords_apart():
    def f(x, y=0, z=0):
        return x + 10 * y + 100 * z

    mf = memoize(f)
    assert mf(1, y=2) == 21
    assert mf(1, y=5) == 51
    assert mf(1, z=2) == 201
    assert mf(1, y=2, z=3) == 321
    assert mf(1, z=3, y=2) == 321
""",
    },
    hidden_tests=("toolz/tests/test_memoize_keywords.py::test_memoize_tells_keywords_apart",),
    note="the target's file holds a test that passes only after test_dicttoolz.py has run",
    patches=(
        PatchSpec("correct", "correct", (Edit(_MEMO, _KEY_BUG, _KEY_OK),), "verified"),
        PatchSpec(
            "do-nothing",
            "do-nothing",
            (Edit(_MEMO, _KEY_BUG, "                    # keyword arguments\n" + _KEY_BUG),),
            "rejected",
            by="pytest",
        ),
        PatchSpec(  # values without names: mf(1, y=2) and mf(1, z=2) share a key
            "values-only",
            "wrong-fix",
            (
                Edit(
                    _MEMO,
                    _KEY_BUG,
                    "                    tuple(kwargs.values()) if kwargs else None,\n",
                ),
            ),
            "rejected",
            by="pytest",
        ),
        PatchSpec(
            "weaken-target",
            "test-tampering",
            (
                Edit(
                    "toolz/tests/test_functoolz.py",
                    "    assert mf(1, y=5) == 6\n",
                    "    assert mf(1, y=5) in (3, 6)\n",
                ),
            ),
            "rejected",
            by="diff_scope",
        ),
    ),
)

# --- IDNA-1: idna, a control (its own ruff settings, modern style) ----------------------------

_IDNA = "idna/core.py"
_LEN_OK = "    if len(label) > (254 if trailing_dot else 253):\n"
_LEN_BUG = "    if len(label) > (253 if trailing_dot else 254):\n"

IDNA_1 = RealTask(
    id="IDNA-1",
    library=IDNA,
    situation="control",
    title="valid_string_length swaps the limits for a trailing dot",
    body="""
`idna.valid_string_length("a" * 254, trailing_dot=False)` is `True`: a name is at most 253
octets, 254 only with its trailing dot. With a trailing dot it now refuses 254.
""",
    bug=(Edit(_IDNA, _LEN_OK, _LEN_BUG),),
    hidden={
        "tests/test_string_length.py": """\
import idna


def test_string_length_limits():
    assert idna.valid_string_length("a" * 253, False)
    assert not idna.valid_string_length("a" * 254, False)
    assert idna.valid_string_length("a" * 254, True)
    assert not idna.valid_string_length("a" * 255, True)
""",
    },
    hidden_tests=("tests/test_string_length.py::test_string_length_limits",),
    note="a library with its own ruff settings, written in a current style",
    patches=(
        PatchSpec("correct", "correct", (Edit(_IDNA, _LEN_BUG, _LEN_OK),), "verified"),
        PatchSpec(
            "do-nothing",
            "do-nothing",
            (Edit(_IDNA, _LEN_BUG, "    # The limit depends on the trailing dot.\n" + _LEN_BUG),),
            "rejected",
            by="pytest",
        ),
        PatchSpec(  # one limit for both: 254 octets without a dot pass
            "one-limit",
            "wrong-fix",
            (Edit(_IDNA, _LEN_BUG, "    if len(label) > 254:\n"),),
            "rejected",
            by="pytest",
        ),
        PatchSpec(
            "conftest-deselects",
            "test-tampering",
            (
                Edit(
                    "tests/conftest.py",
                    "",
                    "def pytest_collection_modifyitems(items):\n"
                    '    items[:] = [i for i in items if "length" not in i.name]\n',
                ),
            ),
            "rejected",
            by="diff_scope",
        ),
    ),
)

TASKS_TWO = (SIX_1, INF_1, TLZ_1, IDNA_1)
