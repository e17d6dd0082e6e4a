"""Which new ruff findings reject a patch and which only advise. A repository that configures ruff
has chosen its rules: they all block. One that does not gets ruff's default set, most of which is
style the code never followed, so only findings that mean wrong behaviour block there; the rest
are advice, shown to the model and the reviewer but never a rejection."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass

from cascade.errors import InfraError
from cascade.protocols import Sandbox

CONFIG_NAMES = ("ruff.toml", ".ruff.toml", "pyproject.toml")
# Findings that are not rules: a file ruff cannot parse is never a correct answer.
SYNTAX = frozenset({"invalid-syntax", "syntax"})
ALL = "ALL"

# What blocks by default in a repository without a ruff configuration: findings that mean the
# code raises, or silently does something other than it says. Each entry is a ruff code or prefix.
CORRECTNESS: tuple[str, ...] = (
    "F",  # pyflakes: undefined and redefined names, broken format strings, `return` outside a
    # function, `assert (x, y)`, `is` against a literal... (less the four below)
    "E9",  # the file cannot be read or parsed
    "PLE",  # pylint errors: `await` outside async, bad `__len__` return types, logging arguments
    "B002",  # `++x` is `x`
    "B003",  # assigning `os.environ` does not change the environment of subprocesses
    "B005",  # `.strip("http://")` strips characters, not a prefix
    "B012",  # `return`/`break` in `finally` swallows the exception
    "B015",  # a comparison whose result is thrown away (a missing `assert`)
    "B016",  # `raise "text"` is a TypeError
    "B020",  # the loop variable overwrites the iterable
    "B025",  # a second handler for the same exception never runs
    "B029",  # `except ():` catches nothing
    "B030",  # `except` of something that is not an exception class is a TypeError
    "B031",  # a `groupby` group used twice is empty the second time
    "B032",  # `x.y: int` where `x.y = int` was meant
    "B035",  # a dict comprehension with a constant key keeps one item
    "PLW0129",  # `assert "text"` always passes
    "PLW0177",  # a comparison with NaN is always false
    "PLW0711",  # `except A or B` catches only A
    "PLW1501",  # an `open()` mode that raises ValueError
    "RUF018",  # an assignment inside `assert` disappears under `python -O`
)
# Pyflakes findings that are untidiness, not wrong behaviour: an unused import (often a
# re-export, or imported for its side effects), an unused variable or annotation, an f-string
# without placeholders. They advise even where `F` blocks.
UNTIDY: tuple[str, ...] = ("F401", "F841", "F842", "F541")

_CODE = re.compile(r"([A-Z]+)([0-9]*)")
_PYLINT = ("PLC", "PLE", "PLR", "PLW")  # selected together as `PL`


@dataclass(frozen=True)
class LintPolicy:
    """Rules that block, and exceptions that only advise; the longest matching selector wins,
    as in ruff's own `select`/`ignore`, and a tie goes to `advise`."""

    block: tuple[str, ...]
    advise: tuple[str, ...] = ()

    def blocks(self, rule: str) -> bool:
        if rule in SYNTAX:
            return True
        blocking = max((_specificity(s, rule) for s in self.block), default=-1)
        advising = max((_specificity(s, rule) for s in self.advise), default=-1)
        return blocking > advising


def policy_for(
    governed: bool,
    block: Sequence[str] | None,
    advise: Sequence[str] = (),
    args: Sequence[str] = (),
) -> LintPolicy:
    """The policy for a file: `block` as configured, else everything where the repository
    configures ruff for the file (`governed`), else the correctness set and every rule the
    gate's own `args` select (`--select`/`--extend-select`: asked for, so they block)."""
    if block is not None:
        return LintPolicy(tuple(block), tuple(advise))
    if governed:
        return LintPolicy((ALL,), tuple(advise))
    return LintPolicy((*CORRECTNESS, *selected(args)), (*UNTIDY, *advise))


def selected(args: Sequence[str]) -> tuple[str, ...]:
    """The rule selectors of `--select X,Y` / `--extend-select=X` among ruff arguments."""
    found: list[str] = []
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name not in ("--select", "--extend-select"):
            continue
        if not eq:
            value = args[i + 1] if i + 1 < len(args) else ""
        found += [v.strip().upper() for v in value.split(",") if v.strip()]
    return tuple(found)


def governs(config_dirs: Sequence[str], path: str) -> bool:
    """Whether a ruff configuration in one of these folders ("" is the root) applies to `path`:
    ruff uses the closest one in the folders above a file."""
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    return any(d in ("", folder) or folder.startswith(d + "/") for d in config_dirs)


async def ruff_config_dirs(sandbox: Sandbox, args: Sequence[str]) -> list[str]:
    """The folders of the base commit that hold a ruff configuration: `ruff.toml`,
    `.ruff.toml`, or a `pyproject.toml` with a `[tool.ruff]` table. `--isolated` among the
    gate's ruff arguments means none count; `--config` means the whole repository is
    configured (by the workflow)."""
    if "--isolated" in args:
        return []
    if any(a == "--config" or a.startswith("--config=") for a in args):
        return [""]
    specs = [spec for name in CONFIG_NAMES for spec in (name, f"*/{name}")]
    result = await sandbox.exec(["git", "ls-files", "-z", "--", *specs], timeout=60)
    if result.exit_code != 0:
        raise InfraError(f"git ls-files failed in the sandbox: {result.stderr.strip()[:300]}")
    dirs: set[str] = set()
    for path in filter(None, result.stdout.split("\0")):
        folder, _, name = path.rpartition("/")
        if name == "pyproject.toml" and not _has_ruff_table(await sandbox.read_file(path)):
            continue
        dirs.add(folder)
    return sorted(dirs)


def _has_ruff_table(data: bytes | None) -> bool:
    try:
        tool = tomllib.loads((data or b"").decode("utf-8", "replace")).get("tool", {})
    except tomllib.TOMLDecodeError:
        return False  # ruff itself refuses such a file, and says so at baseline
    return isinstance(tool, dict) and "ruff" in tool


def _specificity(selector: str, rule: str) -> int:
    """How much of `rule` the selector names (its length), or -1 when it does not select it.
    `E` selects `E902` but not `EXE001`; `PL` selects every pylint code."""
    if selector == ALL:
        return 0
    if selector == rule:
        return len(selector)
    want, have = _CODE.fullmatch(selector), _CODE.fullmatch(rule)
    if not want or not have:
        return -1
    letters_match = want[1] == have[1] or (want[1] == "PL" and have[1] in _PYLINT)
    return len(selector) if letters_match and have[2].startswith(want[2]) else -1
