"""A changed test module judged on its AST before and after the patch. In a file that already
existed, every existing test (module-level `test*` functions, `test*` methods of `Test*` and
`TestCase` classes) must still be there, defined once and changed only by growing at its end,
and what surrounds the tests stays as it was: imports name by name, helpers, fixtures, constants
and blocks AST-equal. New code there may not rebind a name the file already binds, change how
its tests are collected (`pytestmark`, `__test__`, `pytest_*` hooks, setup or teardown functions,
autouse fixtures, a fixture shadowing one existing tests request) or run code at import. In a
new file, `pytest_plugins` (plugins for the whole session) and new skips are refused; what its
import-time code does to other tests is left to the runs that see it (`breaks_other_tests`)."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cascade.records import Finding
from evaluators.weakening_body import (
    Def,
    Names,
    blocks,
    compare_test,
    decorator_change,
    dump,
    short,
)
from evaluators.weakening_scope import (
    aliases,
    bindings,
    bound,
    class_header,
    fixture_of,
    header_calls,
    import_time,
    is_other,
    is_test_class,
    no_op,
    patched_target,
    plain_assignment,
    requested_fixtures,
    take,
)

FIX = " — fix the code, not the test"
MODULE_SETUP = frozenset(
    {"setup_module", "teardown_module", "setup_function", "teardown_function", "setup",
     "teardown", "setUpModule", "tearDownModule"}
)  # fmt: skip
CLASS_SETUP = frozenset(
    {"setup_method", "teardown_method", "setup_class", "teardown_class", "setup", "teardown",
     "setUp", "tearDown", "setUpClass", "tearDownClass", "asyncSetUp", "asyncTearDown"}
)  # fmt: skip
# Names pytest or unittest read to decide what a file or class collects and how it runs it.
COLLECTION = frozenset(
    {"pytestmark", "pytest_plugins", "__test__", "__unittest_skip__", "__unittest_skip_why__",
     "__unittest_expecting_failure__"}
)  # fmt: skip


def module_findings(path: str, old: ast.Module | None, new: ast.Module) -> list[Finding]:
    """Findings for one test module; `old` is None when the patch creates it."""
    judge = _ModuleJudge(path, old, new)
    if old is None:
        judge.plugins(new.body)
    else:
        judge.scope(old.body, new.body, "")
    judge.new_skips(old, new)
    unique = {(f.rule, f.message): f for f in judge.found}
    return list(unique.values())


@dataclass(frozen=True)
class _Scope:
    """What a new statement in an existing module or test class body is judged against."""

    qual: str  # "" for the module, "TestX::" for a class
    params: set[str]  # fixtures its existing tests request
    known: set[str]  # names it bound before the patch
    tests: set[str]  # its existing tests and test classes

    @property
    def where(self) -> str:
        return f"{self.qual.removesuffix('::')}: " if self.qual else ""


class _ModuleJudge:
    def __init__(self, path: str, old: ast.Module | None, new: ast.Module) -> None:
        self.path = path
        self.before = Names(old or ast.Module(body=[], type_ignores=[]))
        self.after = Names(new)
        self.found: list[Finding] = []

    def add(self, rule: str, message: str, node: ast.AST | None = None) -> None:
        line = getattr(node, "lineno", 0) if node is not None else 0
        self.found.append(Finding(rule=rule, path=self.path, message=message, line=line))

    def scope(self, old: list[ast.stmt], new: list[ast.stmt], qual: str) -> None:
        """The module body (qual "") or an existing test class body (qual "TestX::")."""
        old_binds, new_binds = bindings(old), bindings(new)
        tests = {s.name: s for s in old if isinstance(s, Def) and s.name.startswith("test")}
        classes = {s.name: s for s in old if is_test_class(s, self.before)}
        for name, old_def in tests.items():
            defs = [s for s in new if isinstance(s, Def) and s.name == name]
            if self._kept(qual + name, defs, len(old_binds[name]), new_binds.get(name, [])):
                change = compare_test(old_def, defs[-1], self.before, self.after)
                if change:
                    self.add(change[0], f"{qual}{name}: {change[1]}{FIX}", defs[-1])
        for name, old_class in classes.items():
            found = [s for s in new if isinstance(s, ast.ClassDef) and s.name == name]
            if self._kept(qual + name, found, len(old_binds[name]), new_binds.get(name, [])):
                self._test_class(old_class, found[-1], f"{qual}{name}")
        params = requested_fixtures(old, self.before)
        context = _Scope(qual, params, set(old_binds), {*tests, *classes})
        self._surroundings(old, new, context)
        self._rebinds(old_binds, new_binds, context)

    def _kept(
        self, label: str, defs: Sequence[ast.stmt], count: int, binds: list[ast.stmt]
    ) -> bool:
        """Whether an existing test or test class is still defined, and only once."""
        if not defs:
            what = "was removed or renamed (or moved into a block), so it no longer runs"
            self.add("test_weakened", f"{label}: {what}{FIX}")
            return False
        if len(binds) > count:
            other = max(
                (s for s in binds if s is not defs[0]), key=lambda s: s.lineno, default=defs[-1]
            )
            if isinstance(other, Def | ast.ClassDef):
                what = (
                    f"is defined again at line {other.lineno}; the later definition replaces "
                    "the original, so pytest runs only that one"
                )
            else:
                what = (
                    f"is bound again at line {other.lineno} (`{short(other)}`), which replaces it"
                )
            self.add("test_weakened", f"{label}: {what}{FIX}", other)
            return False
        return True

    def _test_class(self, old: ast.ClassDef, new: ast.ClassDef, label: str) -> None:
        change = decorator_change(old.decorator_list, new.decorator_list, self.before, self.after)
        if not change and class_header(old) != class_header(new):
            change = "test_weakened", "its base classes changed"
        if change:
            self.add(change[0], f"{label}: {change[1]}{FIX}", new)
            return
        self.scope(old.body, new.body, f"{label}::")

    def _surroundings(self, old: list[ast.stmt], new: list[ast.stmt], scope: _Scope) -> None:
        """Imports (alias by alias) and every other old statement must still be there; each new
        statement is judged by what it can do to the existing tests."""
        for alias in aliases(old) - aliases(new):
            what = f"no longer imports `{alias}`, which existing tests may use"
            self.add("test_weakened", f"{scope.where}{what}{FIX}")
        left = Counter(dump(s) for s in old if is_other(s, scope.tests))
        for stmt in new:
            if is_other(stmt, scope.tests) and not take(left, dump(stmt)):
                self._new_statement(stmt, scope)
        for stmt in old:
            if is_other(stmt, scope.tests) and take(left, dump(stmt)):
                what = (
                    f"changes or removes {self._label(stmt)} (line {stmt.lineno} before the patch)"
                )
                self.add("test_weakened", f"{scope.where}{what}, which existing tests rely on{FIX}")

    def _label(self, stmt: ast.stmt) -> str:
        if isinstance(stmt, Def):
            kind = "the fixture" if fixture_of(stmt, self.before) else "the function"
            return f"{kind} `{stmt.name}`"
        if isinstance(stmt, ast.ClassDef):
            return f"the class `{stmt.name}`"
        return f"`{short(stmt)}`"

    def _new_statement(self, stmt: ast.stmt, scope: _Scope) -> None:
        where = scope.where
        if isinstance(stmt, Def):
            if not stmt.name.startswith("test"):  # a new test is welcome
                self._new_function(stmt, scope)
        elif isinstance(stmt, ast.ClassDef):
            self.leaks(stmt.body, where)  # a new class's body runs at import
        elif isinstance(stmt, ast.Import | ast.ImportFrom) or bound(stmt) & scope.tests:
            pass  # judged by `_rebinds` and `_kept`
        elif plain_assignment(stmt):
            names = sorted(bound(stmt) & COLLECTION)
            if names and self.after.skips(stmt):
                what = f"sets `{names[0]}` to skip or xfail its tests (`{short(stmt)}`)"
                self.add("test_skipped", f"{where}{what}{FIX}", stmt)
            elif names and names[0] != "pytest_plugins":
                what = f"sets `{names[0]}`, which changes how its existing tests are collected"
                self.add("test_weakened", f"{where}{what}{FIX}", stmt)
            else:
                self._leak(stmt, where)
        elif isinstance(stmt, ast.If | ast.Try | ast.TryStar) and not header_calls(stmt):
            for block in blocks(stmt):
                for child in block:
                    if not no_op(child):
                        self._new_statement(child, scope)
        elif patched_target(stmt, self.after):
            self._leak(stmt, where)
        else:
            what = (
                f"adds code that runs when the file is imported, before its existing tests "
                f"(`{short(stmt)}`, line {stmt.lineno}); put new setup inside a new test"
            )
            self.add("test_weakened", f"{where}{what}{FIX}", stmt)

    def _new_function(self, stmt: Def, scope: _Scope) -> None:
        fixture = fixture_of(stmt, self.after)
        in_class = bool(scope.qual)
        if not in_class and stmt.name.startswith("pytest_"):
            what = f"adds the hook `{stmt.name}`, which pytest applies to its existing tests too"
        elif stmt.name in (CLASS_SETUP if in_class else MODULE_SETUP):
            what = f"adds `{stmt.name}`, which runs around each existing test"
        elif fixture and fixture[1]:
            what = f"adds the autouse fixture `{fixture[0]}`, which runs around each existing test"
        elif fixture and fixture[0] in scope.params and stmt.name not in scope.known:
            what = f"adds a fixture `{fixture[0]}` that replaces the one existing tests request"
        else:
            return  # an edited old function is reported as changed by `_surroundings`
        self.add("test_weakened", f"{scope.where}{what}{FIX}", stmt)

    def _rebinds(
        self, old: dict[str, list[ast.stmt]], new: dict[str, list[ast.stmt]], scope: _Scope
    ) -> None:
        """A new binding of a name the file already binds (`def add` beside `from calc import
        add`) changes what existing tests call; a new star import may rebind anything."""
        for name in sorted({*old, "*"} - scope.tests):
            was, now = old.get(name, []), new.get(name, [])
            if len(now) <= len(was):
                continue
            kept = Counter(dump(s) for s in was)
            extra = [s for s in now if not take(kept, dump(s))] or now
            shown = "a `*` import" if name == "*" else f"`{name}`"
            what = (
                f"binds {shown} again at line {extra[-1].lineno} (`{short(extra[-1])}`); the "
                "file already binds it and existing tests may use it"
            )
            self.add("test_weakened", f"{scope.where}{what}{FIX}", extra[-1])

    def plugins(self, body: Sequence[ast.stmt]) -> None:
        """A new file may do as it likes at import, except load plugins for the whole run."""
        for stmt in import_time(body):
            if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
                self._leak(stmt, "", plugins_only=True)

    def leaks(self, body: Sequence[ast.stmt], where: str) -> None:
        """The body of a new class in an existing file runs at import, before existing tests:
        patching another module there reaches them."""
        for stmt in import_time(body):
            self._leak(stmt, where)

    def _leak(self, stmt: ast.stmt, where: str, plugins_only: bool = False) -> None:
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign) and "pytest_plugins" in (
            bound(stmt)
        ):
            what = "sets `pytest_plugins`, which loads plugins into the whole test session"
            self.add("test_weakened", f"{where}{what}{FIX}", stmt)
            return
        change = "" if plugins_only else patched_target(stmt, self.after)
        if change:
            what = (
                f"{change} when the file is imported (line {stmt.lineno}), which every later "
                "test would see; patch inside a test with the `monkeypatch` fixture"
            )
            self.add("test_weakened", f"{where}{what}{FIX}", stmt)

    def new_skips(self, old: ast.Module | None, new: ast.Module) -> None:
        """A skip or xfail anywhere in the file that was not there before (a new test's, or
        `pytestmark` in a new file), unless a finding already named it."""
        if any(f.rule == "test_skipped" for f in self.found):
            return
        extra = Counter(self.after.skips(new)) - Counter(self.before.skips(old) if old else [])
        if extra:
            first = next(iter(extra))
            self.add("test_skipped", f"adds a skip or xfail (`{first}`){FIX}")
