"""The AST rules for changed test files, table-tested on source text before and after, and the
way `weakening` picks between them and the line rules on real diffs in a DirectorySandbox."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from cascade.testing import DirectorySandbox, make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.patch_files import FileDiff, parse_diff
from evaluators.weakening import weakening
from evaluators.weakening_ast import module_findings

OLD = """\
import pytest
from calc import add


@pytest.fixture
def two():
    return 2


def test_add(two):
    total = add(two, 2)
    assert total == 4
    for i in range(3):
        assert add(i, 0) == i


@pytest.mark.skip(reason="slow")
def test_slow():
    assert add(1, 1) == 2


class TestCalc:
    def test_negative(self):
        assert add(-1, -1) == -2
"""
FIRST = "    total = add(two, 2)\n"
LOOP = "        assert add(i, 0) == i\n"
NEG = "        assert add(-1, -1) == -2\n"
SLOW = '@pytest.mark.skip(reason="slow")\ndef test_slow():\n    assert add(1, 1) == 2\n'


def _findings(new: str, old: str | None = OLD) -> list[tuple[str, str]]:
    before = ast.parse(old) if old is not None else None
    found = module_findings("tests/test_calc.py", before, ast.parse(new))
    return [(f.rule, f.message) for f in found]


@pytest.mark.parametrize(
    ("new", "rule", "says"),
    [
        # (a) an early exit, a wrapper, or a change anywhere in an existing test
        (OLD.replace(FIRST, "    return\n" + FIRST), "test_weakened",
         "test_add: a `return` now comes before its original statements"),
        (OLD.replace(FIRST, "    if True:\n        return\n" + FIRST), "test_weakened",
         "test_add: `if True:` now comes before its original statements and can `return`"),
        (OLD.replace(FIRST, "    total = 4\n"), "test_weakened",
         "test_add: changes `total = add(two, 2)` to `total = 4`"),
        (OLD.replace("    assert total == 4\n",
                     "    try:\n        assert total == 4\n    except AssertionError:\n"
                     "        pass\n"),
         "test_weakened", "test_add: wraps its original `assert total == 4` in `try:`"),
        (OLD.replace(LOOP, LOOP + "        break\n"), "test_weakened",
         "test_add: adds `break` inside `for i in range(3):`"),
        (OLD.replace(NEG, "        pass\n"), "test_weakened",
         "TestCalc::test_negative: its original statements are gone"),
        (OLD.replace(LOOP, LOOP + "    yield\n"), "test_weakened",
         "test_add: now contains `yield`"),
        (OLD.replace("def test_add", "async def test_add"), "test_weakened",
         "test_add: changed between `def` and `async def`"),
        (OLD.replace("def test_add(two)", "def test_add(two, fake)"), "test_weakened",
         "test_add: its signature changed from `(two)` to `(two, fake)`"),
        (OLD.replace(NEG, "        self.skipTest('later')\n" + NEG), "test_skipped",
         "TestCalc::test_negative: now skips itself (`self.skipTest('later')`)"),
        (OLD.replace("import pytest\n", "import pytest\nfrom pytest import mark as m\n")
         .replace("def test_add", "@m.xfail\ndef test_add"), "test_skipped",
         "test_add: now carries `@m.xfail`"),
        # (b) redefined, rebound or deleted further down
        (OLD + "\n\ndef test_add():  # type: ignore[no-redef]\n    pass\n", "test_weakened",
         "test_add: is defined again at line 27"),
        (OLD + "\n    def test_negative(self):\n        pass\n", "test_weakened",
         "TestCalc::test_negative: is defined again"),
        (OLD + "\ntest_add = None\n", "test_weakened",
         "test_add: is bound again at line 26 (`test_add = None`)"),
        (OLD + "\ndel test_add\n", "test_weakened", "test_add: is bound again"),
        (OLD.replace(SLOW, "if False:\n" + textwrap.indent(SLOW, "    ")), "test_weakened",
         "test_slow: was removed or renamed (or moved into a block)"),
        # names existing tests use, and what surrounds them
        (OLD + "\n\ndef add(a, b):\n    return a + b\n", "test_weakened",
         "binds `add` again at line 27 (`def add(a, b):`)"),
        (OLD + "\nfrom fakes import *\n", "test_weakened", "binds a `*` import again"),
        (OLD.replace("from calc import add", "from calc_fake import add"), "test_weakened",
         "no longer imports `from calc import add`"),
        (OLD.replace("return 2", "return 0"), "test_weakened",
         "changes or removes the fixture `two` (line 6 before the patch)"),
        # (c) marks that reach every test
        (OLD + "\npytestmark = pytest.mark.skip\n", "test_skipped", "sets `pytestmark` to skip"),
        (OLD + "\npytestmark = pytest.mark.filterwarnings('ignore')\n", "test_weakened",
         "sets `pytestmark`, which changes how its existing tests are collected"),
        (OLD + "\n__test__ = False\n", "test_weakened", "sets `__test__`"),
        (OLD.replace("class TestCalc:", "@pytest.mark.xfail\nclass TestCalc:"), "test_skipped",
         "TestCalc: now carries `@pytest.mark.xfail`"),
        (OLD.replace("class TestCalc:", "class TestCalc(Base):"), "test_weakened",
         "TestCalc: its base classes changed"),
        # (d) plugins, hooks, setup, fixtures and code that run around existing tests
        (OLD + "\npytest_plugins = ['evil']\n", "test_weakened",
         "sets `pytest_plugins`, which loads plugins into the whole test session"),
        (OLD + "\n\ndef pytest_generate_tests(metafunc):\n    pass\n", "test_weakened",
         "adds the hook `pytest_generate_tests`"),
        (OLD + "\n\ndef setup_function():\n    pass\n", "test_weakened",
         "adds `setup_function`, which runs around each existing test"),
        (OLD + "\n    def setup_method(self):\n        pass\n", "test_weakened",
         "TestCalc: adds `setup_method`"),
        (OLD + "\n\n@pytest.fixture(autouse=True)\ndef fake(monkeypatch):\n    pass\n",
         "test_weakened", "adds the autouse fixture `fake`"),
        (OLD + "\n\n@pytest.fixture(name='two')\ndef zero():\n    return 0\n", "test_weakened",
         "adds a fixture `two` that replaces the one existing tests request"),
        (OLD + "\nimport calc\ncalc.add = max\n", "test_weakened",
         "changes `calc.add` when the file is imported"),
        (OLD + "\n_ = setattr(calc, 'add', max)\n", "test_weakened",
         "calls `setattr(calc, 'add', max)` when the file is imported"),
        (OLD + "\nimport sys\nsys.path.insert(0, 'x')\n", "test_weakened",
         "adds code that runs when the file is imported, before its existing tests"),
        (OLD + "\n\nclass Fake:\n    calc.add = max\n", "test_weakened",
         "changes `calc.add` when the file is imported"),
        # a new test that is skipped from the start
        (OLD + "\n\n@pytest.mark.xfail\ndef test_later():\n    assert add(0, 1) == 1\n",
         "test_skipped", "adds a skip or xfail (`pytest.mark.xfail`)"),
    ],
)  # fmt: skip
def test_weakening_rules(new: str, rule: str, says: str) -> None:
    assert new != OLD
    found = _findings(new)
    assert any(r == rule and says in message for r, message in found), found
    assert all(m.endswith("fix the code, not the test") for _, m in found), found


@pytest.mark.parametrize(
    "new",
    [
        # (e) the same AST: reformatted, continuation lines joined, comments, moved tests
        OLD.replace(
            "    assert total == 4\n", "    assert (\n        total\n        == 4\n    )\n"
        ),
        OLD.replace(FIRST, "    # two and two\n    total = add(two,  2)  # noqa\n"),
        OLD.replace(SLOW + "\n\n", "") + "\n\n" + SLOW,
        # growing at the end, new tests, helpers, fixtures, constants, imports name by name
        OLD.replace(LOOP, LOOP + "    assert add(0, 0) == 0\n    return\n"),
        OLD.replace("from calc import add", "from calc import add, sub")
        + "\nCASES = [(1, 2)]\n\n\n@pytest.fixture\ndef three():\n    return 3\n\n\n"
        "def _check(a, b):\n    assert sub(a, b) == a - b\n\n\n"
        "@pytest.mark.parametrize('a,b', CASES)\ndef test_sub(a, b, three):\n"
        "    _check(a, b)\n\n\nclass TestMore:\n    def test_zero(self):\n"
        "        assert add(0, 0) == 0\n",
        OLD + "\n    def test_positive(self):\n        assert add(1, 1) == 2\n",
        OLD.replace(FIRST, '    """Two and two."""\n' + FIRST),
        # losing a skip asks more of the code, not less
        OLD.replace('@pytest.mark.skip(reason="slow")\n', ""),
    ],
)  # fmt: skip
def test_allowed_edits(new: str) -> None:
    assert new != OLD
    assert _findings(new) == []


def test_a_new_file_may_patch_at_import_but_not_load_plugins() -> None:
    # Import-time patching in a new file is judged by the runs it breaks (the reproduction
    # judge's breaks_other_tests); only plugins and skips are refused up front.
    assert _findings("import calc\n\ncalc.SYMBOL = 'x'\n", old=None) == []
    assert _findings("pytest_plugins = ['evil']\n", old=None) == [
        (
            "test_weakened",
            "sets `pytest_plugins`, which loads plugins into the whole test session"
            " — fix the code, not the test",
        )
    ]
    skipped = _findings("import pytest\n\npytestmark = pytest.mark.skip\n", old=None)
    assert [rule for rule, _ in skipped] == ["test_skipped"]


async def _diff(tmp_path: Path, old: str, new: str) -> tuple[DirectorySandbox, FileDiff]:
    box = DirectorySandbox(make_repo(tmp_path / "repo", {"tests/test_x.py": old}))
    await box.write_files({"tests/test_x.py": new.encode()})
    [diff] = parse_diff((await canonical_patch(box)).diff)
    return box, diff


@pytest.mark.anyio
async def test_a_test_file_that_stops_parsing_is_refused(tmp_path: Path) -> None:
    box, diff = await _diff(tmp_path, OLD, OLD.replace("def test_add(two):", "def test_add(two:"))
    [finding] = await weakening(diff, box)
    assert finding.rule == "test_weakened"
    assert finding.message.startswith("no longer parses (line 10:")


@pytest.mark.anyio
async def test_a_file_broken_at_base_falls_back_to_the_line_rules(tmp_path: Path) -> None:
    broken = "def test_a(:\n    assert 1 == 1\n"
    box, diff = await _diff(tmp_path, broken, broken.replace("1 == 1", "1"))
    [finding] = await weakening(diff, box)
    assert (finding.rule, finding.message) == (
        "test_weakened",
        "removes or changes an assertion (`assert 1 == 1`)",
    )


@pytest.mark.anyio
async def test_a_workspace_that_is_not_the_patch_falls_back_to_the_line_rules(
    tmp_path: Path,
) -> None:
    box, diff = await _diff(tmp_path, OLD, OLD.replace(FIRST, "    return\n" + FIRST))
    await box.write_files({"tests/test_x.py": b"something else\n"})
    # The early return is invisible to the line rules; what the patch says is all they judge.
    assert await weakening(diff, box) == []
