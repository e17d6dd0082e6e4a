"""The statements of one test-module scope (the module, or a class body), read for the scope
gate: what they bind, which are tests, fixtures or setup, and which patch other code when the
file is imported."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TypeGuard

from evaluators.weakening_body import Def, Names, blocks, dump, own_nodes, short

PATCHERS = frozenset({"setattr", "delattr"})
_BLOCKS = (
    ast.If
    | ast.Try
    | ast.TryStar
    | ast.With
    | ast.AsyncWith
    | ast.For
    | ast.AsyncFor
    | ast.While
    | ast.Match
)


def bindings(body: Sequence[ast.stmt]) -> dict[str, list[ast.stmt]]:
    """name -> the statements of this scope that bind it, blocks included, in file order."""
    found: dict[str, list[ast.stmt]] = {}
    for stmt in scope_statements(body):
        for name in bound(stmt):
            found.setdefault(name, []).append(stmt)
    return found


def bound(stmt: ast.stmt) -> set[str]:
    targets: list[ast.expr] = []
    if isinstance(stmt, Def | ast.ClassDef):
        return {stmt.name}
    if isinstance(stmt, ast.Import):
        return {a.asname or a.name.split(".")[0] for a in stmt.names}
    if isinstance(stmt, ast.ImportFrom):
        return {a.asname or a.name for a in stmt.names}
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AugAssign | ast.For | ast.AsyncFor | ast.AnnAssign):
        targets = [stmt.target] if getattr(stmt, "value", True) is not None else []
    elif isinstance(stmt, ast.Delete):
        targets = stmt.targets
    elif isinstance(stmt, ast.With | ast.AsyncWith):
        targets = [i.optional_vars for i in stmt.items if i.optional_vars is not None]
    names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    if isinstance(stmt, ast.Try | ast.TryStar):
        names |= {h.name for h in stmt.handlers if h.name}
    return names


def scope_statements(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of one scope: its body and the blocks in it, not nested defs or classes."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, _BLOCKS):
            for block in blocks(stmt):
                yield from scope_statements(block)


def import_time(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run when the module is imported: its scope, and class bodies in it."""
    for stmt in scope_statements(body):
        yield stmt
        if isinstance(stmt, ast.ClassDef):
            yield from import_time(stmt.body)


def patched_target(stmt: ast.stmt, names: Names) -> str:
    """What a statement changes in place when it runs ("changes `calc.add`", "calls
    `setattr(calc, ...)`", a `mock.patch(...).start()`), or "". Of a block, its header only:
    the statements inside are judged one by one."""
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign | ast.Delete):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        targets = [stmt.target]
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Attribute | ast.Subscript) and isinstance(
                node.ctx, ast.Store | ast.Del
            ):
                return f"changes `{short(node)}`"
    if isinstance(stmt, Def | ast.ClassDef):
        return ""  # their bodies run later; decorators are judged with the definition
    for node in own_nodes(_header_nodes(stmt)):
        if not isinstance(node, ast.Call):
            continue
        if names.dotted(node.func).split(".")[-1] in PATCHERS or (
            isinstance(node.func, ast.Attribute) and node.func.attr == "start"
        ):
            return f"calls `{short(node)}`"
    return ""


def _header_nodes(stmt: ast.stmt) -> list[ast.AST]:
    if isinstance(stmt, ast.If | ast.While):
        return [stmt.test]
    if isinstance(stmt, ast.For | ast.AsyncFor):
        return [stmt.iter]
    if isinstance(stmt, ast.With | ast.AsyncWith):
        return [item.context_expr for item in stmt.items]
    if isinstance(stmt, ast.Match):
        return [stmt.subject]
    return [] if isinstance(stmt, ast.Try | ast.TryStar) else [stmt]


def is_test_class(stmt: ast.stmt, names: Names) -> TypeGuard[ast.ClassDef]:
    return isinstance(stmt, ast.ClassDef) and (
        stmt.name.startswith("Test")
        or any(names.dotted(b).endswith("TestCase") for b in stmt.bases)
    )


def class_header(node: ast.ClassDef) -> list[str]:
    """Its bases and keywords (`metaclass=`); decorators are compared on their own."""
    return [dump(n) for n in (*node.bases, *node.keywords)]


def requested_fixtures(body: Sequence[ast.stmt], names: Names) -> set[str]:
    """The fixtures existing tests in this scope (and its test classes) request by name."""
    found: set[str] = set()
    for stmt in body:
        if isinstance(stmt, Def) and stmt.name.startswith("test"):
            args = stmt.args
            found |= {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        elif is_test_class(stmt, names):
            found |= requested_fixtures(stmt.body, names)
    return found - {"self", "cls"}


def fixture_of(stmt: Def, names: Names) -> tuple[str, bool] | None:
    """(name, autouse) when the function is a fixture (`@pytest.fixture`, `@fixture(...)`)."""
    for decorator in stmt.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        if names.dotted(call.func if call else decorator).split(".")[-1] != "fixture":
            continue
        name, autouse = stmt.name, False
        for keyword in call.keywords if call else ():
            value = keyword.value
            if keyword.arg == "name" and isinstance(value, ast.Constant):
                name = str(value.value)
            if keyword.arg == "autouse":
                autouse = not (isinstance(value, ast.Constant) and not value.value)
        return name, autouse
    return None


def aliases(body: Sequence[ast.stmt]) -> Counter[str]:
    found: Counter[str] = Counter()
    for stmt in body:
        if isinstance(stmt, ast.Import):
            found.update(f"import {short(a)}" for a in stmt.names)
        elif isinstance(stmt, ast.ImportFrom):
            source = "." * stmt.level + (stmt.module or "")
            found.update(f"from {source} import {short(a)}" for a in stmt.names)
    return found


def is_other(stmt: ast.stmt, tests: set[str]) -> bool:
    """Not an existing test or test class, not an import, not a no-op: the rest of the scope."""
    if isinstance(stmt, Def | ast.ClassDef) and stmt.name in tests:
        return False
    return not isinstance(stmt, ast.Import | ast.ImportFrom) and not no_op(stmt)


def no_op(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Pass) or (
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
    )


def plain_assignment(stmt: ast.stmt) -> bool:
    """An assignment to names only (`CASES = [...]`), not to attributes or items."""
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        targets = [stmt.target]
    else:
        return False
    return all(
        isinstance(n, ast.Name | ast.Tuple | ast.List | ast.Starred | ast.expr_context)
        for t in targets
        for n in ast.walk(t)
    )


def header_calls(stmt: ast.stmt) -> bool:
    """Whether a block's own header calls anything (`if install_fake():`)."""
    return any(isinstance(n, ast.Call) for h in _header_nodes(stmt) for n in ast.walk(h))


def take(counts: Counter[str], key: str) -> bool:
    if counts[key] > 0:
        counts[key] -= 1
        return True
    return False
