"""Judge with trusted files only. For the span of an evaluator's runs, the files that judge a patch
are swapped in from trusted sources — of the paths the patch changed, the test and tool
configuration (evaluators/infrastructure.py) and the proving tests' modules at the base commit's
content (`git cat-file` of the workspace's one commit), and the hidden and reproduction files as
the task gives them — and the workspace's own are put back after, always. A patch that slipped a
configuration change past the scope gate (or one whose workflow allows it) is judged with the
base's. One sandbox call reads what is needed, one writes, one puts back."""

from __future__ import annotations

import base64
import json
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Patch
from evaluators.diff_scope import TEST_PATHS
from evaluators.infrastructure import Tool, changed_tools, is_shared, parses, whole_file
from evaluators.patch_files import DiffError, parse_diff
from evaluators.path_globs import first_match

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_NO_REPLACE_OBJECTS": "1",
}
# argv: paths to read now, "--", paths to read at the base commit too. Prints
# {path: [now, base]}, each base64 or null (not a regular file / not in the commit).
_READ = """\
import base64, json, os, subprocess, sys
cut = sys.argv.index("--")
now_only, both = sys.argv[1:cut], sys.argv[cut + 1:]
def b64(data):
    return None if data is None else base64.b64encode(data).decode()
def now(path):
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()
base = {}
if both:
    names = "".join(f"HEAD:{p}\\n" for p in both).encode()
    out = subprocess.run(["git", "cat-file", "--batch"], input=names, capture_output=True).stdout
    at = 0
    for path in both:
        end = out.index(b"\\n", at)
        head = out[at:end].split()
        at = end + 1
        if len(head) == 3 and head[1] == b"blob":
            size = int(head[2])
            base[path] = out[at:at + size]
            at += size + 1
print(json.dumps({p: [b64(now(p)), b64(base.get(p))] for p in [*now_only, *both]}))
"""
_LOCKS: weakref.WeakKeyDictionary[Any, anyio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def trusted_files(
    sandbox: Sandbox,
    patch: Patch | None,
    tools: Iterable[Tool],
    *,
    proving: Iterable[str] = (),
    copied: Mapping[str, str] | None = None,
    exclusive: bool = False,
    test_tree: bool = False,
) -> AsyncIterator[None]:
    """Within: the base commit's version of each path the patch changed that configures one of
    `tools` (or is a module of the proving tests, `proving`), and `copied` as given. A shared
    file (pyproject.toml) is swapped only when the patch changed the tools' sections of it and
    its new text parses (one that does not fails the tool closed). `exclusive`: evaluators
    of one stage (ruff, mypy) may swap the same file; they take turns. `test_tree`: every path
    the patch changed under the test paths is judged as the base commit has it too (one the
    patch added is absent for the run): the tests that judge, their helpers and their data are
    the base's, whatever the patch did to them."""
    copied = dict(copied or {})
    if patch is None:
        judged: list[str] = []
    else:
        judged = _judged(patch, set(tools), set(proving), set(copied) if test_tree else None)
    if not judged and not copied:
        yield
        return
    lock = _LOCKS.setdefault(sandbox, anyio.Lock()) if exclusive else None
    if lock is not None:
        await lock.acquire()
    try:
        states = await _states(sandbox, judged, copied)
        swap = _swap(judged, states, set(tools), set(proving))
        swap.update({path: text.encode() for path, text in copied.items()})
        saved = {path: states[path][0] for path in swap}
        try:
            if swap:
                await sandbox.write_files(swap)
            yield
        finally:
            if swap:
                with anyio.CancelScope(shield=True):
                    await sandbox.write_files(saved)
    finally:
        if lock is not None:
            lock.release()


def _judged(
    patch: Patch, tools: set[Tool], proving: set[str], tree: set[str] | None = None
) -> list[str]:
    """Paths of the patch that may have to be swapped: what configures `tools`, proving test
    modules, and (`tree`, the paths copied in, given) everything under the test paths."""
    try:
        paths = [d.path for d in parse_diff(patch.diff)]
    except DiffError as exc:
        raise InfraError(f"cannot read the canonical patch: {exc}") from exc
    kept: list[str] = []
    for path in paths:
        whole = whole_file(path, TEST_PATHS)
        configures = bool(whole and whole[0] & tools) or is_shared(path) or path in proving
        tested = tree is not None and path not in tree and under_tests(path)
        if configures or tested:
            kept.append(path)
    return kept


def under_tests(path: str) -> bool:
    """Whether a path belongs to the test tree (a test module, its helpers, data, conftest)."""
    return first_match(path, (*TEST_PATHS, "**/conftest.py")) is not None


def _swap(
    judged: list[str],
    states: Mapping[str, tuple[bytes | None, bytes | None]],
    tools: set[Tool],
    proving: set[str],
) -> dict[str, bytes | None]:
    swap: dict[str, bytes | None] = {}
    for path in judged:
        now, base = states[path]
        if now == base:
            continue
        if path in proving:
            if base is not None:  # a proving test the issue names but the base lacks: the patch's
                swap[path] = base
            continue
        if under_tests(path) and not whole_file(path, TEST_PATHS):
            swap[path] = base  # the test tree as the base has it: added files are absent
            continue
        whole = whole_file(path, TEST_PATHS)
        if whole and whole[0] & tools:
            swap[path] = base
            continue
        old, new = _text(base), _text(now)
        if new is not None and not parses(path, new):
            continue  # the tools fail to read it: that fails the patch, it silences nothing
        if changed_tools(path, old, new) & tools:
            swap[path] = base
    return swap


async def _states(
    sandbox: Sandbox, judged: list[str], copied: Mapping[str, str]
) -> dict[str, tuple[bytes | None, bytes | None]]:
    """(now, at the base commit) of each judged path, and now of each copied one."""
    plain = [path for path in copied if path not in judged]
    if not judged:  # no base needed: a read per file costs less than starting Python
        return {path: (await sandbox.read_file(path), None) for path in plain}
    argv = ["python", "-I", "-c", _READ, *plain, "--", *judged]
    result = await sandbox.exec(argv, timeout=120, env=GIT_ENV)
    try:
        data = json.loads(result.stdout)
        return {path: (_bytes(data[path][0]), _bytes(data[path][1])) for path in [*plain, *judged]}
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        detail = (result.stderr or result.stdout).strip()[-300:]
        raise InfraError(f"cannot read the base commit's files in the sandbox: {detail}") from exc


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")
