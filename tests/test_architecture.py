"""The layering contract, checked on the source with `ast`: which package may import which, and the
size limits that keep every module small enough to read (and for a model to edit). Imports inside
functions and under `if TYPE_CHECKING:` count: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cascade", "evaluators", "sandboxes")
MAX_TOP_LEVEL_MODULES = 15  # cascade/*.py, __init__.py included
MAX_MODULE_LINES = 400

# The contract, lowest layer first. Rows are packages; "cascade" is the top-level modules (records,
# protocols, config, errors, validation). A package may always import itself; an import that its
# row does not list is a violation. An entry may also name one module (cli.progress for ci).
A = {"cascade"}
B = {"cascade.core", "cascade.workspace", "cascade.proof"}
C = {"cascade.models", "cascade.sources", "cascade.repair", "evaluators", "sandboxes"}
D = {"cascade.wiring"}
E = {"cascade.replay", "cascade.report"}
# fmt: off
MAY_IMPORT: dict[str, set[str]] = {
    "cascade":           set(),                                 # (a) no cascade subpackage
    "cascade.core":      A | B,                                 # (b) the engine: the three
    "cascade.workspace": A | B,                                 #     may use each other
    "cascade.proof":     A | B,
    "cascade.models":    A | B,                                 # (c) adapters: never each other
    "cascade.sources":   A | B,
    "cascade.repair":    A | B,
    "evaluators":        A | B,
    "sandboxes":         A | B,
    "cascade.wiring":    A | B | C,                             # (d) configuration -> parts
    "cascade.replay":    A | B | C | D,                         # (e) batches and their report;
    "cascade.report":    A | B | C | D | {"cascade.replay"},    #     the report reads ledgers
    "cascade.testing":   A | B | C | D,                         # fakes: no row lists testing
    "cascade.cli":       A | B | C | D | E | {"cascade.ci"},    # (f) the edges
    "cascade.ci":        A | B | C | D | E | {"cascade.cli.progress"},
}
# fmt: on


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def package_of(module: str) -> str:
    """The row of MAY_IMPORT a dotted module name belongs to."""
    if module == "cascade.__main__":  # `python -m cascade`: the command line, at an edge
        return "cascade.cli"
    parts = module.split(".")
    if parts[0] == "cascade" and len(parts) > 1 and (ROOT / "cascade" / parts[1]).is_dir():
        return f"cascade.{parts[1]}"
    return parts[0]


def modules() -> Iterator[tuple[str, Path]]:
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Each first-party module that `path` imports, with the line: ast.walk reaches function bodies
    and `if TYPE_CHECKING:` blocks as well as the top of the file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (path.name == "__init__.py")]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from cascade import errors` depends on cascade.errors, not on the package cascade
            targets = [
                f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base
                for alias in node.names
            ]
        else:
            continue
        for target in dict.fromkeys(targets):  # once per module a statement imports
            if target.split(".")[0] in PACKAGES:
                yield target, node.lineno


def test_every_module_has_a_row() -> None:
    # a new subpackage must take its place in the table, or the contract would not cover it
    found = {package_of(module) for module, _ in modules()}
    assert found == set(MAY_IMPORT), f"packages without a row: {found - set(MAY_IMPORT)}"


@pytest.mark.parametrize("package", MAY_IMPORT)
def test_no_package_imports_a_layer_above_it(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    violations = [
        f"{path.relative_to(ROOT)}:{line}: {module} imports {target}"
        for module, path in modules()
        if package_of(module) == package
        for target, line in imports(module, path)
        if package_of(target) not in allowed and target not in allowed
    ]
    rule = f"{package} may import only {', '.join(sorted(allowed))}"
    assert not violations, rule + ":\n" + "\n".join(violations)


def test_the_top_level_stays_small() -> None:
    top = sorted(path.name for path in (ROOT / "cascade").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_module_is_too_long() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for _, path in modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "\n".join(long)
