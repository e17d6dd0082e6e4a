"""One existing test before and after a patch, compared on the AST. A test may only grow at the
end: its decorators and signature stay as they were, and its original statements still open its
body, AST-equal and in order, so every original assert still runs first, on the same values.
Reformatting is invisible to the AST; a changed continuation line or an early `return` is not."""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator, Sequence

SKIP_CALLS = frozenset(
    {"skipTest", "SkipTest", "importorskip", "skipIf", "skipUnless", "expectedFailure"}
)
SKIP_MARKS = frozenset({"skip", "skipif", "xfail"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
Def = ast.FunctionDef | ast.AsyncFunctionDef


class Names:
    """Dotted names as a module spells them, resolved through its imports, so that
    `from pytest import mark` or `import pytest as pt` still name pytest's skip and xfail."""

    def __init__(self, tree: ast.Module) -> None:
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def dotted(self, node: ast.AST) -> str:
        """`pytest.mark.skip` for that expression; "" for anything but names and attributes."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else ""
        return ""

    def skips(self, *nodes: ast.AST) -> list[str]:
        """The skip and xfail references under `nodes`: marks, `pytest.skip`, `self.skipTest`,
        `SkipTest`, unittest's skip decorators."""
        found: list[str] = []
        for top in nodes:
            for node in ast.walk(top):
                if isinstance(node, ast.Name | ast.Attribute) and _is_skip(
                    name := self.dotted(node)
                ):
                    found.append(name)
        return found


def compare_test(old: Def, new: Def, before: Names, after: Names) -> tuple[str, str] | None:
    """(rule, what changed) for one existing test, or None when it only grew at the end."""
    marks = decorator_change(old.decorator_list, new.decorator_list, before, after)
    if marks:
        return marks
    if type(old) is not type(new):
        return "test_weakened", "changed between `def` and `async def`"
    if dump(old.args) != dump(new.args):
        was, now = ast.unparse(old.args), ast.unparse(new.args)
        return "test_weakened", f"its signature changed from `({was})` to `({now})`"
    if len(after.skips(*new.body)) > len(before.skips(*old.body)):
        kept = {dump(s) for s in old.body}
        added = (s for s in new.body if dump(s) not in kept and after.skips(s))
        stmt = next(added, new.body[0])
        return "test_skipped", f"now skips itself (`{short(stmt)}`)"
    if _yields(new.body) and not _yields(old.body):
        return "test_weakened", "now contains `yield`, so pytest no longer runs it as a test"
    change = _body_change(old.body, new.body, inside="")
    return ("test_weakened", change) if change else None


def decorator_change(
    old: Sequence[ast.expr], new: Sequence[ast.expr], before: Names, after: Names
) -> tuple[str, str] | None:
    """(rule, what changed) unless the decorators are the same, or lost only skips and xfails:
    running a test that used to be skipped asks more of the code, not less."""
    if len(after.skips(*new)) > len(before.skips(*old)):
        mark = next(d for d in reversed(new) if after.skips(d))
        return "test_skipped", f"now carries `@{short(mark)}`"
    left = list(new)
    for decorator in old:
        if left and dump(left[0]) == dump(decorator):
            left.pop(0)
        elif not before.skips(decorator):
            break
    else:
        if not left:
            return None
    now, was = _decorators(new), _decorators(old)
    return "test_weakened", f"its decorators changed (now {now}; before {was})"


def _body_change(old: Sequence[ast.stmt], new: Sequence[ast.stmt], inside: str) -> str | None:
    """What breaks "the original statements come first, unchanged". At the top of the test
    (`inside` empty) statements may follow them; inside a block they may not (a `break` after
    an assert in a loop skips the later rounds)."""
    old, new = _strip(old), _strip(new)
    for i, stmt in enumerate(old):
        if i >= len(new):
            if i == 0:
                return f"its original statements are gone (it began with `{short(stmt)}`)"
            return f"its original statements from `{short(stmt)}` on are gone"
        if dump(new[i]) != dump(stmt):
            change = _difference(stmt, new, i)
            if change:
                return change
    if inside and len(new) > len(old):
        return (
            f"adds `{short(new[len(old)])}` inside `{inside}`, among its original statements; "
            "add new checks at the end of the test"
        )
    return None


def _difference(stmt: ast.stmt, new: Sequence[ast.stmt], i: int) -> str | None:
    target, got = dump(stmt), new[i]
    if any(dump(s) == target for s in new[i + 1 :]):
        if isinstance(got, ast.Return | ast.Raise):
            kind = "a `return`" if isinstance(got, ast.Return) else "a `raise`"
            return f"{kind} now comes before its original statements, so they never run"
        exits = [n for n in own_nodes([got]) if isinstance(n, ast.Return | ast.Raise)]
        if exits:
            kind = "`return`" if isinstance(exits[0], ast.Return) else "`raise`"
            return (
                f"`{short(got)}` now comes before its original statements and can {kind} "
                "before they run"
            )
        return (
            f"`{short(got)}` now comes before its original statements (`{short(stmt)}`); "
            "new code goes after them"
        )
    if any(dump(s) == target for s in ast.walk(got) if isinstance(s, ast.stmt) and s is not got):
        return f"wraps its original `{short(stmt)}` in `{short(got)}`"
    if isinstance(stmt, ast.Assert):
        verb = "changes the assert" if isinstance(got, ast.Assert) else "replaces the assert"
        link = "to" if isinstance(got, ast.Assert) else "with"
        return f"{verb} `{short(stmt)}` {link} `{short(got)}`"
    if type(stmt) is type(got) and _header(stmt) == _header(got):
        for was, now in zip(blocks(stmt), blocks(got), strict=True):
            change = _body_change(was, now, inside=short(stmt))
            if change:
                return change
        return None  # only no-ops differ
    return f"changes `{short(stmt)}` to `{short(got)}`"


def _strip(body: Sequence[ast.stmt]) -> list[ast.stmt]:
    """Without `pass`, `...` and docstrings, which do nothing wherever they stand."""
    return [
        s
        for s in body
        if not isinstance(s, ast.Pass)
        and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]


def blocks(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists inside a compound statement: body, else, finally, handlers, cases."""
    found = [
        value
        for field in ("body", "orelse", "finalbody")
        if isinstance(value := getattr(node, field, None), list)
    ]
    found += [handler.body for handler in getattr(node, "handlers", ())]
    return found + [case.body for case in getattr(node, "cases", ())]


def _header(node: ast.stmt) -> str:
    """The statement without its blocks: `if x:`, `for a in b:`, `except E as e:`."""
    bare = copy.copy(node)
    for field in ("body", "orelse", "finalbody"):
        if isinstance(getattr(bare, field, None), list):
            setattr(bare, field, [])
    if isinstance(bare, ast.Try | ast.TryStar):
        bare.handlers = [
            ast.ExceptHandler(type=h.type, name=h.name, body=[]) for h in bare.handlers
        ]
    if isinstance(bare, ast.Match):
        bare.cases = [ast.match_case(pattern=c.pattern, guard=c.guard, body=[]) for c in bare.cases]
    return dump(bare)


def _yields(body: Sequence[ast.stmt]) -> bool:
    """A `yield` of the test's own (not of a nested function) makes it a generator."""
    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in own_nodes(body))


def own_nodes(nodes: Sequence[ast.AST]) -> Iterator[ast.AST]:
    """Every node under `nodes` that runs in their own scope: not inside a nested def, lambda
    or class."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, _SCOPES))


def _is_skip(name: str) -> bool:
    parts = name.split(".")
    last, before = parts[-1], parts[-2] if len(parts) > 1 else ""
    return (
        last in SKIP_CALLS
        or (before == "mark" and last in SKIP_MARKS)
        or (before in ("pytest", "unittest") and last in ("skip", "xfail"))
    )


def _decorators(decorators: Sequence[ast.expr]) -> str:
    return ", ".join(f"`@{short(d)}`" for d in decorators) or "none"


def dump(node: ast.AST) -> str:
    return ast.dump(node)  # no line numbers: moving or reformatting code does not change it


def dumps(nodes: Sequence[ast.AST]) -> list[str]:
    return [dump(n) for n in nodes]


def short(node: ast.AST, limit: int = 80) -> str:
    """The first line of the node's source, as `ast.unparse` writes it."""
    text = ast.unparse(node).split("\n")[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"
