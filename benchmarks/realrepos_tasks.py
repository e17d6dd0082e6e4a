"""The real-repositories tasks, part one: tabulate (a test that hangs at base), more-itertools
(`.pyi` stubs beside the modules, a mypy config without targets) and termcolor (a version from
git tags, installed by `[sandbox] setup`). Each task: a bug injected into the pinned sdist, a
hidden test that catches it, and four patches — the fix, one that does nothing, a wrong fix and
one that tampers with the test run. Part two is `realrepos_tasks_more.py`."""

from __future__ import annotations

from benchmarks.realrepos_suite import Edit, Library, PatchSpec, RealTask

TABULATE = Library(
    "tabulate", "0.9.0", "0095b12bf5966de529c0feb1fa08671671b3368eec77d7ef7ab114be2c068b3c"
)
MORE_ITERTOOLS = Library(
    "more-itertools", "10.5.0", "5482bfef7849c25dc3c6dd53a6173ae4795da2a41a80faea6700d9f5846c5da6"
)
TERMCOLOR = Library(
    "termcolor", "2.5.0", "998d8d27da6d48442e8e1f016119076b690d962507531df4890fcd2db2ef8a6f"
)

# --- TAB-1: tabulate, a test that hangs at base --------------------------------------------

_TAB = "tabulate/__init__.py"
_EMPTY_LINE = "        elif not cur_line:\n            cur_line.append(reversed_chunks.pop())\n"
_INVERTED = "        elif cur_line:\n            cur_line.append(reversed_chunks.pop())\n"

TAB_1 = RealTask(
    id="TAB-1",
    library=TABULATE,
    situation="hangs-at-base",
    title="Wrapping with break_long_words=False never returns",
    body="""
`_CustomTextWrap(width=5, break_long_words=False).wrap("extraordinarily a b")` never returns. The
standard library's `textwrap.TextWrapper` puts the long word on a line of its own:
`["extraordinarily", "a b"]`.
""",
    bug=(Edit(_TAB, _EMPTY_LINE, _INVERTED),),
    hidden={
        "test/test_textwrapper_unbroken.py": """\
from textwrap import TextWrapper as OTW

from tabulate import _CustomTextWrap as CTW


def test_wrap_keeps_long_words_whole():
    data = "extraordinarily a verylongword b"
    for width in (3, 5, 8):
        orig = OTW(width=width, break_long_words=False)
        cust = CTW(width=width, break_long_words=False)
        assert cust.wrap(data) == orig.wrap(data)
""",
    },
    hidden_tests=("test/test_textwrapper_unbroken.py::test_wrap_keeps_long_words_whole",),
    note="an infinite loop that only the hidden test reaches: at base its run never ends",
    patches=(
        PatchSpec("correct", "correct", (Edit(_TAB, _INVERTED, _EMPTY_LINE),), "verified"),
        PatchSpec(
            "do-nothing",
            "do-nothing",
            (Edit(_TAB, _INVERTED, "        # Keep a long word whole.\n" + _INVERTED),),
            "rejected",
            by="pytest",
        ),
        PatchSpec(  # no hang, but a long word is glued to a line that has text already
            "always-append",
            "wrong-fix",
            (
                Edit(
                    _TAB,
                    _INVERTED,
                    "        else:\n            cur_line.append(reversed_chunks.pop())\n",
                ),
            ),
            "rejected",
            by="pytest",
        ),
        PatchSpec(
            "forge-reports",
            "test-tampering",
            (
                Edit(
                    "conftest.py",
                    "",
                    """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
""",
                ),
            ),
            "rejected",
            by="diff_scope",
        ),
    ),
)

# --- MIT-1: more-itertools, .pyi stubs beside the modules -----------------------------------

_MORE = "more_itertools/more.py"
_CLEARED = """\
            yield from cache
            cache_clear()
            yield x


def strip(iterable, pred):
"""
_UNCLEARED = """\
            yield from cache
            yield x


def strip(iterable, pred):
"""

MIT_1 = RealTask(
    id="MIT-1",
    library=MORE_ITERTOOLS,
    situation="pyi-stubs",
    title="rstrip repeats items that were stripped earlier",
    body="""
`list(rstrip([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2], lambda x: x <= 2))` gives
`[0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3]`: items held back while looking for the end come out again
later. `strip` is wrong the same way. Expected `[0, 1, 2, 3, 0, 1, 2, 3]`.
""",
    bug=(Edit(_MORE, _CLEARED, _UNCLEARED),),
    tests=("tests/test_more.py::StripFunctionTests::test_math",),
    hidden={
        "tests/test_rstrip_cache.py": """\
from unittest import TestCase

import more_itertools as mi


class RStripCacheTests(TestCase):
    def test_held_items_come_out_once(self):
        pred = lambda x: x is None
        iterable = [1, None, 2, None, None, 3, None]
        self.assertEqual(list(mi.rstrip(iterable, pred)), [1, None, 2, None, None, 3])
        self.assertEqual(list(mi.strip([None, *iterable], pred)), [1, None, 2, None, None, 3])
""",
    },
    hidden_tests=("tests/test_rstrip_cache.py::RStripCacheTests::test_held_items_come_out_once",),
    note="the fix edits more.py, beside more.pyi; setup.cfg has [mypy] without files or packages",
    patches=(
        PatchSpec("correct", "correct", (Edit(_MORE, _UNCLEARED, _CLEARED),), "verified"),
        PatchSpec(
            "do-nothing",
            "do-nothing",
            (
                Edit(
                    _MORE,
                    "    cache = []\n    cache_append = cache.append\n",
                    "    cache = []  # items that may belong to the stripped end\n"
                    "    cache_append = cache.append\n",
                ),
            ),
            "rejected",
            by="pytest",
        ),
        PatchSpec(  # rebinding `cache` leaves cache_append filling the old list: items are lost
            "rebind-cache",
            "wrong-fix",
            (
                Edit(
                    _MORE,
                    _UNCLEARED,
                    _UNCLEARED.replace(
                        "            yield from cache\n",
                        "            yield from cache\n            cache = []\n",
                    ),
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
                    "tests/test_more.py",
                    "        self.assertEqual(list(mi.rstrip(iterable, pred)), iterable[:-3])\n",
                    "        self.assertTrue(list(mi.rstrip(iterable, pred)))\n",
                ),
            ),
            "rejected",
            by="diff_scope",
        ),
    ),
)

# --- TRM-1: termcolor, a version from git tags (hatch-vcs) ----------------------------------

_TRM = "src/termcolor/termcolor.py"
_ATTR_OK = "            result = fmt_str % (ATTRIBUTES[attr], result)\n"
_ATTR_BUG = "            result = fmt_str % (ATTRIBUTES[attr], text)\n"

TRM_1 = RealTask(
    id="TRM-1",
    library=TERMCOLOR,
    situation="git-setup",
    title="colored() keeps only the last attribute and drops the colour",
    body="""
`colored("text", "red", attrs=["bold", "underline"], force_color=True)` returns
`"\\x1b[4mtext\\x1b[0m"`: the colour and every attribute but the last are lost.
""",
    bug=(Edit(_TRM, _ATTR_OK, _ATTR_BUG),),
    hidden={
        "tests/test_termcolor_attrs.py": """\
from termcolor import colored


def test_every_attribute_is_kept_with_the_colour():
    text = colored("text", "red", attrs=["bold", "underline"], force_color=True)
    assert text == "\\x1b[4m\\x1b[1m\\x1b[31mtext\\x1b[0m"
""",
    },
    hidden_tests=("tests/test_termcolor_attrs.py::test_every_attribute_is_kept_with_the_colour",),
    # src layout: the tests import the installed package, and hatch-vcs takes its version from
    # `git describe` (there is no PKG-INFO in a checkout to fall back on).
    setup=("python -m pip install --no-deps -e .",),
    tag="2.5.0",
    note="src layout installed by `[sandbox] setup`; hatch-vcs needs the git tag to build",
    patches=(
        PatchSpec("correct", "correct", (Edit(_TRM, _ATTR_BUG, _ATTR_OK),), "verified"),
        PatchSpec(
            "do-nothing",
            "do-nothing",
            (
                Edit(
                    _TRM,
                    "        for attr in attrs:\n",
                    "        # Each attribute wraps what is there so far.\n"
                    "        for attr in attrs:\n",
                ),
            ),
            "rejected",
            by="pytest",
        ),
        PatchSpec(  # a reset after every attribute: the visible single-attribute tests break
            "reset-each",
            "wrong-fix",
            (
                Edit(
                    _TRM,
                    _ATTR_BUG,
                    "            result = fmt_str % (ATTRIBUTES[attr], result) + RESET\n",
                ),
            ),
            "rejected",
            by="pytest",
        ),
        PatchSpec(
            "deselect-by-name",
            "test-tampering",
            (
                Edit(
                    "tests/conftest.py",
                    "",
                    """\
from __future__ import annotations


def pytest_collection_modifyitems(items):
    items[:] = [item for item in items if "attr" not in item.name]
""",
                ),
            ),
            "rejected",
            by="diff_scope",
        ),
    ),
)

TASKS_ONE = (TAB_1, MIT_1, TRM_1)
