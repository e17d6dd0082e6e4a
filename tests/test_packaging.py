"""What the package declares is what it uses: every third-party module the installed code imports
comes from a declared dependency, every declared dependency is imported, the constraints file
pins each one inside its declared range, and the licence file is the declared licence."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PACKAGES = ("cascade", "evaluators", "sandboxes")
# Imported by code that runs inside the sandbox, with the sandbox's (or the user's) Python: the
# gate's own tools, not cascade's dependencies.
IN_SANDBOX = {"pytest"}
# Imported by name only when present (an extra).
OPTIONAL = {"matplotlib": "charts", "ray": "ray"}


def _imported_top_names() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names


def _third_party(names: set[str]) -> dict[str, set[str]]:
    """Import name -> the distributions that provide it (the standard library and our own
    packages left out)."""
    import sys

    provided = packages_distributions()
    found: dict[str, set[str]] = {}
    for name in names - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}:
        found[name] = {canonicalize_name(d) for d in provided.get(name, [])}
    return found


def _declared() -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, PROJECT["dependencies"])}


def test_every_import_is_declared_and_every_dependency_imported() -> None:
    declared = _declared()
    used: set[str] = set()
    undeclared = []
    for name, dists in sorted(_third_party(_imported_top_names()).items()):
        if name in IN_SANDBOX or name in OPTIONAL:  # an extra's: checked below
            continue
        if not dists & set(declared):
            undeclared.append(f"{name} (from {sorted(dists) or 'nothing installed'})")
        used |= dists
    assert undeclared == [], "imported but not declared in [project] dependencies"
    assert sorted(set(declared) - used) == [], "declared but never imported"


def test_optional_imports_have_their_extra() -> None:
    extras = PROJECT["optional-dependencies"]
    for module, extra in OPTIONAL.items():
        names = {canonicalize_name(Requirement(r).name) for r in extras[extra]}
        assert canonicalize_name(module) in names


def test_the_constraints_pin_each_dependency_inside_its_range() -> None:
    pins: dict[str, Version] = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = Version(version)
    dev = [Requirement(r) for r in PROJECT["optional-dependencies"]["dev"]]
    for requirement in [*_declared().values(), *dev]:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]} outside {requirement.specifier}"
        )


def test_the_licence_file_is_the_declared_licence() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert re.search(r"Copyright \(c\) \d{4} ", text)
