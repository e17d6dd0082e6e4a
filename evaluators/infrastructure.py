"""What judges a patch besides the tests themselves: the files that configure pytest, ruff, mypy and
coverage (whole files, or their sections of pyproject.toml, setup.cfg and tox.ini), conftest
files, a test package's `__init__.py`, and files that run or register code when Python starts
(`*.pth`, `sitecustomize.py`, package metadata that can declare a pytest plugin). The scope gate
refuses changes to them, and the evaluators run with the base commit's versions
(evaluators/trusted_files.py). Pure functions of paths and texts."""

from __future__ import annotations

import configparser
import fnmatch
import re
import tomllib
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from evaluators.path_globs import first_match

Tool = Literal["pytest", "ruff", "mypy", "coverage"]
TOOLS: tuple[Tool, ...] = ("pytest", "ruff", "mypy", "coverage")
RUNS_PYTHON: frozenset[Tool] = frozenset({"pytest", "mypy", "coverage"})  # mypy: its plugins

# Files that are one tool's configuration as a whole, in any directory (pytest and ruff look
# for theirs in the directories above the files they work on, mypy and coverage at the root).
WHOLE_FILES: dict[str, Tool] = {
    "pytest.ini": "pytest", ".pytest.ini": "pytest", "pytest.toml": "pytest",
    ".pytest.toml": "pytest", "conftest.py": "pytest", "ruff.toml": "ruff", ".ruff.toml": "ruff",
    "mypy.ini": "mypy", ".mypy.ini": "mypy", ".coveragerc": "coverage",
}  # fmt: skip
SHARED_FILES = ("pyproject.toml", "setup.cfg", "tox.ini")
# The sections of setup.cfg and tox.ini each tool reads (pyproject.toml: the `tool.<name>` table).
INI_SECTIONS: dict[Tool, tuple[str, ...]] = {
    "pytest": ("pytest", "tool:pytest"),
    "ruff": (),
    "mypy": ("mypy", "mypy-*"),
    "coverage": ("coverage:*",),
}
STARTUP_NAMES = ("sitecustomize.py", "usercustomize.py")
# Top-level modules the gate's tools import: one at the repository's root would be imported in
# their place wherever the workspace is on the path (`python -m coverage` puts it first).
TOOL_MODULES = ("pytest", "_pytest", "pluggy", "coverage", "mypy", "ruff", "py")
METADATA_DIRS = (".dist-info", ".egg-info")
WHAT: dict[Tool, str] = {
    "pytest": "pytest's configuration",
    "ruff": "ruff's configuration",
    "mypy": "mypy's configuration",
    "coverage": "coverage's configuration",
}
_PLUGINS = re.compile(r"\bpytest_plugins\b")
_TOML_HEADER = re.compile(r"^\s*\[\[?\s*tool\s*\.\s*(\w+)")
_INI_HEADER = re.compile(r"^\s*\[([^\]]+)\]")


def whole_file(path: str, test_paths: Sequence[str]) -> tuple[frozenset[Tool], str] | None:
    """(the tools it judges, why) for a file that judges as a whole, or None."""
    parts = path.split("/")
    name = parts[-1]
    if name in WHOLE_FILES:
        tool = WHOLE_FILES[name]
        what = "a conftest file, which sets up the tests" if name == "conftest.py" else WHAT[tool]
        return frozenset({tool}), f"is {what}"
    if any(part.endswith(METADATA_DIRS) for part in parts[:-1]):
        why = "is package metadata, which can register a pytest plugin that reports the tests"
        return RUNS_PYTHON, why
    if name in STARTUP_NAMES or name.endswith(".pth"):
        return RUNS_PYTHON, "runs code whenever Python starts"
    top = parts[0].removesuffix(".py") if len(parts) > 1 or name.endswith(".py") else ""
    if top in TOOL_MODULES and (len(parts) > 1 or name.endswith(".py")):
        return RUNS_PYTHON, f"would be imported in place of the `{top}` the gate runs"
    if name == "__init__.py" and first_match(path, test_paths):
        return frozenset({"pytest"}), "is a test package's `__init__.py`: it runs before the tests"
    return None


def is_shared(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in SHARED_FILES


def changed_tools(path: str, old: str | None, new: str | None) -> set[Tool]:
    """The tools whose sections of a shared configuration file differ between two versions (None:
    no such file). Compared parsed, so that a dotted key or a moved table counts as what it is;
    a version that does not parse is compared by its section lines instead."""
    name = path.rsplit("/", 1)[-1]
    before, after = _parsed(name, old or ""), _parsed(name, new or "")
    if before is None or after is None:
        before, after = _lines(name, old or ""), _lines(name, new or "")
    return {tool for tool in TOOLS if before.get(tool) != after.get(tool)}


def parses(path: str, text: str) -> bool:
    return _parsed(path.rsplit("/", 1)[-1], text) is not None


def loads_plugins(path: str, added: Iterable[str]) -> bool:
    """Whether lines a patch adds to a Python file name `pytest_plugins` (outside comments),
    which makes pytest import those modules as plugins when it collects the file."""
    if not path.endswith(".py"):
        return False
    return any(_PLUGINS.search(line.split("#", 1)[0]) for line in added)


def _parsed(name: str, text: str) -> dict[Tool, Any] | None:
    """Each tool's part of the file, parsed; None when it does not parse."""
    if name == "pyproject.toml":
        try:
            table = tomllib.loads(text).get("tool", {})
        except tomllib.TOMLDecodeError:
            return None
        return {t: table.get(t) for t in TOOLS} if isinstance(table, dict) else {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    found: dict[Tool, Any] = {}
    for tool in TOOLS:
        names = [s for s in parser.sections() if _matches(s, INI_SECTIONS[tool])]
        found[tool] = {s: dict(parser.items(s, raw=True)) for s in names}
    return found


def _lines(name: str, text: str) -> dict[Tool, list[str]]:
    """Each tool's section lines as text, for a file that does not parse."""
    found: dict[Tool, list[str]] = {t: [] for t in TOOLS}
    inside: Tool | None = None
    for line in text.split("\n"):
        header = (_TOML_HEADER if name == "pyproject.toml" else _INI_HEADER).match(line)
        if header or line.lstrip().startswith("["):
            inside = _tool_of(name, header[1].strip()) if header else None
        if inside and line.strip() and not line.lstrip().startswith(("#", ";")):
            found[inside].append(line.strip())
    return found


def _tool_of(name: str, section: str) -> Tool | None:
    for tool in TOOLS:
        if (name == "pyproject.toml" and section == tool) or _matches(section, INI_SECTIONS[tool]):
            return tool
    return None


def _matches(section: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(section, pattern) for pattern in patterns)
