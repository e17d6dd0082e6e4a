"""How the type gate runs mypy on a repository: on the repo's own config and targets when it
declares them, else on what a mypy user would name (its top-level packages and modules, stubs
taking the place of their modules). Also reads mypy's `-O json` lines, and keeps the errors a
user would call errors when the repository has no mypy configuration at all."""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from evaluators.findings import ToolFinding, relative, tail

# mypy's own order: the first of these that is a mypy config is the one it reads.
CONFIG_FILES = ("mypy.ini", ".mypy.ini", "pyproject.toml", "setup.cfg")
TARGET_KEYS = ("files", "packages", "modules")
_LINE_REF = re.compile(r"\bline \d+")
# Names mypy's own directory walk passes over (and any name starting with a dot).
_UNWALKED = ("__pycache__", "site-packages", "node_modules")
# Without any mypy configuration, only these count: mistakes that fail at run time or contradict
# an annotation the code states. Left out: what asks for more annotations (`var-annotated`,
# `has-type`), imports mypy cannot follow (`import-not-found`, `import-untyped`), redefinitions
# that are Python idioms (`no-redef`: a fallback import), design checks (`override`,
# `method-assign`, `empty-body`) and the catch-all `misc`. A code newer mypy adds stays out
# until it is listed here.
LENIENT_CODES = frozenset(
    {
        "syntax", "name-defined", "used-before-def", "attr-defined", "union-attr", "call-arg",
        "arg-type", "call-overload", "return-value", "return", "assignment", "index", "operator",
        "list-item", "dict-item", "typeddict-item", "typeddict-unknown-key", "valid-type",
        "type-var", "func-returns-value", "abstract", "str-format", "unused-coroutine",
        "truthy-function", "top-level-await", "await-not-async",
    }
)  # fmt: skip


@dataclass(frozen=True)
class RepoMypy:
    has_config: bool
    has_targets: bool  # the config says what to check (`files`, `packages`, `modules`)
    path: str = ""  # the config file mypy reads, when there is one


async def repo_mypy(sandbox: Sandbox) -> RepoMypy:
    for name in CONFIG_FILES:
        data = await sandbox.read_file(name)
        if data is not None:
            targets = _targets_in(name, data.decode("utf-8", "replace"))
            if targets is not None:
                return RepoMypy(True, targets, name)
    return RepoMypy(False, False)


def _targets_in(name: str, text: str) -> bool | None:
    """Whether this config names targets; None when it is not a mypy config at all."""
    if name == "pyproject.toml":
        try:
            table = tomllib.loads(text).get("tool", {}).get("mypy")
        except tomllib.TOMLDecodeError:
            return None
        return any(k in table for k in TARGET_KEYS) if isinstance(table, dict) else None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None if name == "setup.cfg" else False
    if not parser.has_section("mypy"):
        # mypy reads mypy.ini and .mypy.ini even without a [mypy] section; setup.cfg it skips.
        return None if name == "setup.cfg" else False
    return any(parser.has_option("mypy", k) for k in TARGET_KEYS)


async def tracked_python(sandbox: Sandbox) -> list[str]:
    """Every Python file of the base commit (the workspace's only commit)."""
    argv = ["git", "ls-files", "-z", "--", "*.py", "*.pyi"]
    result = await sandbox.exec(argv, timeout=60)
    if result.exit_code != 0:
        raise InfraError(f"git ls-files failed in the sandbox: {result.stderr.strip()[:300]}")
    return sorted(p for p in result.stdout.split("\0") if p)


def module_targets(
    tracked: Sequence[str], left_out: Collection[str]
) -> tuple[list[str], list[str]]:
    """What to give mypy to check the `tracked` Python files but those `left_out`, as its users
    do: each top-level directory holding one (mypy walks it, names each module by its packages
    and takes a stub `x.pyi` for its module `x.py`, as for an import) and each top-level module.
    Returns (targets, `--exclude` patterns): a file left out in a walked directory is excluded
    by name. A file the walk passes over (under a dot-directory) is named itself."""
    kept = [p for p in tracked if p not in left_out]
    walked = {p.split("/", 1)[0] for p in kept if "/" in p and _walked(p)}
    named = [p for p in kept if "/" not in p or not _walked(p)]
    # A top-level module beside a directory of its name: mypy's walk, as Python, takes the package.
    named = [p for p in named if "/" in p or p.rsplit(".", 1)[0] not in walked]
    skipped = sorted(p for p in left_out if p.split("/", 1)[0] in walked)
    return sorted(walked) + unstubbed(named), [f"^{re.escape(p)}$" for p in skipped]


def _walked(path: str) -> bool:
    """Whether mypy's walk of the path's top-level directory reaches the file."""
    return not any(n.startswith(".") or n in _UNWALKED for n in path.split("/")[1:])


def unstubbed(paths: Iterable[str], stubs: Collection[str] = ()) -> list[str]:
    """`paths` but each module `x.py` whose stub `x.pyi` is among them or in `stubs`: mypy reads
    a module's stub in its place, and named both files it stops at a "Duplicate module"."""
    given = list(paths)
    found = {*given, *stubs}
    return sorted(p for p in given if not (p.endswith(".py") and p + "i" in found))


# Parses each file with the sandbox's Python and, with "stamp", sets its mtime from a hash of
# its content (in 2001-2017: far from any checkout time; the same for the same content, and
# different, but for a 1 in 5e8 chance, for different content).
_PREPARE = """\
import ast, hashlib, json, os, sys, warnings
warnings.simplefilter("ignore")
bad = {}
for path in sys.argv[2:]:
    if not os.path.isfile(path):
        bad[path] = None
        continue
    with open(path, "rb") as f:
        source = f.read()
    if sys.argv[1] == "stamp":
        digest = hashlib.sha256(source).digest()
        when = 1_000_000_000 + int.from_bytes(digest[:4], "big") % 500_000_000
        os.utime(path, (when, when))
    try:
        ast.parse(source, path)
    except (SyntaxError, ValueError) as exc:
        bad[path] = [getattr(exc, "lineno", 0) or 0, str(getattr(exc, "msg", exc))]
print(json.dumps(bad))
"""


async def prepare(
    sandbox: Sandbox, paths: Sequence[str], stamp: bool
) -> tuple[dict[str, ToolFinding], set[str]]:
    """The files among `paths` that the sandbox's Python cannot parse, as syntax findings: mypy
    stops at the first such file, so they are kept out of its run; and those absent for the run
    (a patch's `mypy/` package is test infrastructure, so not there while mypy runs). With
    `stamp`, also give each file an mtime that stands for its content: mypy reuses a cache entry
    whose path, whole-second mtime and size match without hashing the file, so a same-size patch
    written within a second of the last run would otherwise get the old results."""
    if not paths:
        return {}, set()
    argv = ["python", "-I", "-c", _PREPARE, "stamp" if stamp else "check", *paths]
    result = await sandbox.exec(argv, timeout=300)
    try:
        bad = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise InfraError(f"could not read the Python files: {tail(result.stderr)}") from None
    broken = {
        path: ToolFinding(path=path, line=int(found[0]), rule="syntax", message=found[1])
        for path, found in bad.items()
        if found is not None
    }
    return broken, {path for path, found in bad.items() if found is None}


def parse_errors(output: str, roots: Sequence[str]) -> list[ToolFinding] | None:
    """The errors in mypy's `-O json` output (notes dropped), or None when no line was JSON."""
    found: list[ToolFinding] = []
    seen_json = False
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        seen_json = True
        if not isinstance(item, dict) or item.get("severity") != "error":
            continue
        column = item.get("column")
        found.append(
            ToolFinding(
                path=relative(str(item.get("file", "")), roots),
                line=max(int(item.get("line") or 0), 0),
                column=int(column) + 1 if isinstance(column, int) and column >= 0 else 0,
                rule=str(item.get("code") or "error"),
                message=str(item.get("message", "")),
            )
        )
    return found if seen_json else None


def key(finding: ToolFinding) -> tuple[str, str, str]:
    """Path, code and message: a line number inside the message ("defined on line 12") is
    dropped so that it survives the line moving. Any syntax error counts as the same one: mypy
    words them differently from the parser that found them at baseline."""
    if finding.rule == "syntax":
        return finding.path, finding.rule, ""
    return finding.path, finding.rule, _LINE_REF.sub("line N", finding.message)


def is_duplicate_module(finding: ToolFinding) -> bool:
    return finding.message.startswith("Duplicate module named")


def lenient(findings: Iterable[ToolFinding]) -> list[ToolFinding]:
    """The findings a user without any mypy configuration would call errors (`LENIENT_CODES`),
    and those without a code: mypy's blocking errors ("Duplicate module"), after which it checked
    nothing else."""
    return [f for f in findings if f.rule in LENIENT_CODES or f.rule == "error"]


def config_hint(mode: str, repo: RepoMypy, targets: Sequence[str], args: Sequence[str]) -> str:
    """The settings to change when mypy cannot check the base commit as configured."""
    where = [f"`[gate.options.mypy] targets` ({', '.join(targets)})"] if mode == "targets" else []
    if repo.path:
        where.append(f"the repository's mypy configuration ({repo.path})")
    if args:
        where.append(f"`[gate.options.mypy] args` ({' '.join(args)})")
    fix = f"fix {' or '.join(where)}, or " if where else ""
    if mode != "targets":
        fix += "name what to check in cascade.toml (`[gate.options.mypy] targets = [...]`), or "
    return f'{fix}remove "mypy" from `[gate] evaluators`'
