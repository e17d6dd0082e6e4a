"""Why a test fails, read from its JUnit entry as `--tb=short` writes it: an assertion, an exception
raised in the repository's code, a name a feature request asks for — or a mistake in the test
itself, a module that cannot be collected, pytest's own failure. The reproduction judge accepts
the first three kinds only. Pure functions over the report and a few facts about the workspace."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from evaluators.diff_scope import TEST_PATHS
from evaluators.junit import CaseResult, trim_failure
from evaluators.path_globs import first_match
from evaluators.regressions import file_of

ACCEPTED = frozenset({"assertion", "exception", "missing_symbol"})
NOT_FAILING = frozenset({"passes_at_base", "skipped"})
Where = Literal["test", "repo", "outside"]

_FRAME = re.compile(r"^(\S.*?):(\d+|\?+): in (\S.*)$")
_CHAINS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_TYPE = re.compile(r"([A-Za-z_][\w.]*)(?:: ?(.*))?")
_WRAPPED = re.compile(r'failed on (?:setup|teardown) with "(.*)"', re.S)
_FIXTURE = re.compile(r"fixture '([^']+)' not found")
_INSTALLED = re.compile(r"(?:^|/)(?:site|dist)-packages/(.+)$")
_CANNOT_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'(?: \((.*)\))?")
_NO_MODULE = re.compile(r"No module named '([\w.]+)'")
_MODULE_ATTR = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
_CLASS_ATTR = re.compile(r"(?:'(\w+)' object|type object '(\w+)') has no attribute '(\w+)'")
_KWARG = re.compile(r"([\w.]+)\(\) got an unexpected keyword argument '(\w+)'")
_SYNTAX = frozenset({"SyntaxError", "IndentationError", "TabError"})
# Kinds as precise for a module that cannot be imported as for one test; others become
# `collection_error`, whose advice is to move the code into a test function.
_KEPT_AT_COLLECTION = frozenset(
    {"missing_symbol", "unasked_symbol", "syntax_error", "missing_module", "name_error_in_test"}
)
_SYNTAX_AT = re.compile(r'File "[^"]*", line (\d+)')
_QUOTED_TRACE = frozenset({"error_in_test", "collection_error", "pytest_internal", "syntax_error"})

ADVICE = {
    "syntax_error": "a syntax error in the test itself; send the test again as valid Python",
    "name_error_in_test": "an error in the test itself, not the issue; import what you use",
    "missing_fixture": (
        "no conftest or plugin defines that fixture, and conftest files may not be changed; "
        "build what the test needs inside the test module"
    ),
    "missing_module": (
        "that module exists neither in the repository nor in its environment; import the "
        "repository's modules by their real names"
    ),
    "error_in_test": (
        "raised in the test itself, not in the repository's code: make the test reach the "
        "code the issue is about and assert on what that code does"
    ),
    "collection_error": (
        "the module fails while pytest imports it; only the import of a name the issue asks "
        "for may fail there: move every other call into a test function"
    ),
    "explicit_fail": (
        "pytest.fail() says nothing about the code's behaviour: assert on what the code "
        "returns, or call it and let its exception propagate (pytest.raises when the issue "
        "expects an exception)"
    ),
    "pytest_internal": "the failure comes from pytest or a plugin, not from the repository",
    "unasked_symbol": (
        "the issue does not ask for that name: a missing name reproduces a feature request "
        "only when the issue names it; for a bug, call the code by the names it has and "
        "assert on what it does"
    ),
}


@dataclass(frozen=True)
class RepoFacts:
    """What the classifier knows about the workspace: its absolute path, its Python files (as
    `git ls-files` lists them), which of them are tests, and which names its source defines."""

    root: str = ""
    files: frozenset[str] = frozenset()
    test_paths: tuple[str, ...] = TEST_PATHS
    defined: frozenset[str] = frozenset()  # class and function names outside the tests
    # The words of the title and body; None when unknown. A missing name reproduces
    # the issue only when the issue names it (a feature request says what to add): a test that
    # imports a name from the wrong module must not become the proof of a fix that adds it.
    asked: frozenset[str] | None = None

    def is_test(self, path: str) -> bool:
        return first_match(path, (*self.test_paths, "**/conftest.py")) is not None

    def where(self, path: str) -> Where:
        """Whose code a traceback path is: a test's, the repository's, or anything else's (the
        interpreter, pytest, plugins, installed libraries). An installed copy of a repository
        module (`site-packages/pkg/mod.py` for `src/pkg/mod.py`) counts as the repository's."""
        root = self.root.rstrip("/") + "/" if self.root.strip("/") else ""
        if root and path.startswith(root):
            path = path[len(root) :]
        installed = _INSTALLED.search(path)
        if installed:
            rest = installed[1]
            mine = any(f == rest or f.endswith("/" + rest) for f in self._sources())
            return "repo" if mine else "outside"
        if path.startswith(("/", "<", "../")) or not path:
            return "outside"
        return "test" if self.is_test(path) else "repo"

    def module(self, dotted: str) -> Where | None:
        """Where a module or package of this dotted name lives in the workspace (None: nowhere).
        Matched by path suffix, so `src/` layouts and `pythonpath` settings need no config."""
        rel = dotted.replace(".", "/")
        hits = [
            f
            for f in self.files
            if any(f == p or f.endswith("/" + p) for p in (rel + ".py", rel + "/__init__.py"))
            or f.startswith(rel + "/")
            or f"/{rel}/" in f
        ]
        if not hits:
            return None
        return "test" if all(self.is_test(f) for f in hits) else "repo"

    def _sources(self) -> list[str]:
        return [f for f in self.files if not self.is_test(f)]


@dataclass(frozen=True)
class Diagnosis:
    nodeid: str
    kind: str
    exception: str = ""  # the exception's type as pytest printed it ("" when none)
    summary: str = ""  # one line: the assertion, or `Type: message`
    line: int = 0  # the line of the test's file where it failed (0: unknown)
    origin: str = ""  # `path:line` of the frame that raised, when it is in the workspace
    trace: str = ""  # the trimmed traceback

    @property
    def accepted(self) -> bool:
        return self.kind in ACCEPTED

    @property
    def failing(self) -> bool:
        return self.kind not in NOT_FAILING

    def describe(self) -> str:
        """One paragraph for the model that wrote the test."""
        if self.kind == "missing_fixture":
            return f"{self.nodeid}: {self.summary} — {ADVICE[self.kind]}."
        at = f" (at {self.origin})" if self.origin and self.kind == "error_in_test" else ""
        what = "fails with " if "::" in self.nodeid else "cannot be collected: "
        text = f"{self.nodeid} {what}{self.summary}{at} — {ADVICE.get(self.kind, self.kind)}."
        if self.kind in _QUOTED_TRACE and self.trace:
            text += "\n" + self.trace
        return text


@dataclass(frozen=True)
class _Frame:
    path: str
    line: int
    where: Where
    source: str


def classify(result: CaseResult, repo: RepoFacts) -> Diagnosis:
    """The kind of one new test's result at the base commit (see `ADVICE` and `ACCEPTED`)."""
    if result.outcome in ("passed", "skipped"):
        kind = "passes_at_base" if result.outcome == "passed" else "skipped"
        return Diagnosis(result.nodeid, kind, summary=result.message.strip()[:200])
    text = result.text or result.message
    section = _last_section(text)
    frames = _frames(section, repo)
    exception, message = _exception(result, section)
    origin = next((f for f in reversed(frames) if f.where != "outside"), None)
    own = [f for f in frames if f.path == file_of(result.nodeid)]
    kind = _kind(exception, message, text, origin, repo)
    if kind == "missing_symbol" and repo.asked is not None:
        name = missing_name(message)
        if name is None or name not in repo.asked:
            kind = "unasked_symbol"
    if result.is_collection and kind not in _KEPT_AT_COLLECTION:
        kind = "collection_error"
    if fixture := _FIXTURE.search(text):
        summary = f"fixture '{fixture[1]}' not found"
    elif not exception or (exception == "AssertionError" and message.startswith("assert")):
        summary = message
    else:
        summary = f"{exception}: {message}" if message else exception
    line = own[-1].line if own else 0
    trace = trim_failure(text, max_lines=12, max_chars=800)
    if kind == "syntax_error":  # the `E` lines quote the line and point at the error
        e_lines = [x for x in section if x.startswith("E ")]
        trace = "\n".join(e_lines[-8:])
        line = int(at[1]) if (at := _SYNTAX_AT.search(trace)) else line
    return Diagnosis(
        nodeid=result.nodeid,
        kind=kind,
        exception=exception,
        summary=summary[:200],
        line=line,
        origin=f"{origin.path}:{origin.line}" if origin else "",
        trace=trace,
    )


def missing_name(message: str) -> str | None:
    """The name a missing-symbol failure says is missing (a module's last part for a module)."""
    for pattern, group in ((_CANNOT_IMPORT, 1), (_MODULE_ATTR, 2), (_CLASS_ATTR, 3), (_KWARG, 2)):
        if found := pattern.search(message):
            return str(found[group])
    if found := _NO_MODULE.search(message):
        return str(found[1]).rpartition(".")[2]
    return None


def asked_words(*texts: str) -> frozenset[str]:
    """The identifiers an issue's text mentions (`truncate_words`, `DateRange.covers` gives
    both parts)."""
    return frozenset(w for text in texts for w in re.findall(r"[A-Za-z_]\w*", text))


def wanted_names(result: CaseResult) -> set[str]:
    """Class and function names whose definition in the repository decides this result's kind
    (`'Wallet' object has no attribute 'balance'`, `fmt() got an unexpected keyword ...`)."""
    _, message = _exception(result, _last_section(result.text or result.message))
    names: set[str] = set()
    if found := _CLASS_ATTR.search(message):
        names.add(found[1] or found[2])
    if found := _KWARG.search(message):
        names.add(_callable_name(found[1]))
    return names


def _kind(exception: str, message: str, text: str, origin: _Frame | None, repo: RepoFacts) -> str:
    base = exception.rsplit(".", 1)[-1]
    if _FIXTURE.search(text):
        return "missing_fixture"
    if base in _SYNTAX:
        return "syntax_error"
    if origin is None:
        return "pytest_internal"  # no frame in the workspace: pytest's or a plugin's own code
    if origin.where == "repo":
        return "exception"  # raised in the repository's code, its own asserts included
    # Raised in the test itself (or in a test helper).
    if base == "AssertionError":
        return "assertion"
    if base == "Failed":
        if "DID NOT RAISE" in message or "DID NOT WARN" in message:
            return "assertion"
        return "explicit_fail" if "fail(" in origin.source else "pytest_internal"
    if base == "NameError":
        return "name_error_in_test"
    if base in ("ImportError", "ModuleNotFoundError"):
        return _import_kind(message, repo)
    if base == "AttributeError" and _missing_attribute(message, repo):
        return "missing_symbol"
    if base == "TypeError" and (found := _KWARG.search(message)):
        return "missing_symbol" if _callable_name(found[1]) in repo.defined else "error_in_test"
    return "error_in_test"


def _import_kind(message: str, repo: RepoFacts) -> str:
    """A name or module the repository lacks is what a feature request asks for; a module that
    exists nowhere, or a wrong name from someone else's module, is the test's mistake."""
    if found := _CANNOT_IMPORT.search(message):
        path = found[3] or ""
        if path and path != "unknown location":
            where: Where | None = repo.where(path)
        else:
            where = repo.module(found[2])
        return "missing_symbol" if where == "repo" else "error_in_test"
    if (found := _NO_MODULE.search(message)) and "is not a package" not in message:
        if repo.module(found[1]) is not None:
            return "error_in_test"  # it is in the workspace, but not importable by that name
        parent = found[1].rpartition(".")[0]
        # a new module inside one of the repository's packages, or a module nobody has
        return "missing_symbol" if parent and repo.module(parent) == "repo" else "missing_module"
    return "error_in_test"


def _missing_attribute(message: str, repo: RepoFacts) -> bool:
    if "partially initialized module" in message:
        return False  # a circular import, not a missing name
    if found := _MODULE_ATTR.search(message):
        return repo.module(found[1]) == "repo"
    if found := _CLASS_ATTR.search(message):
        return (found[1] or found[2]) in repo.defined
    return False


def _callable_name(qualname: str) -> str:
    """`Wallet.__init__` -> `Wallet`, `money.fmt` -> `fmt`: the name a definition would have."""
    parts = [p for p in qualname.split(".") if not (p.startswith("__") and p.endswith("__"))]
    return parts[-1] if parts else qualname


def _last_section(text: str) -> list[str]:
    """The traceback of the exception that was raised last (after any chained causes)."""
    lines = text.splitlines()
    cut = max((i for i, line in enumerate(lines) if line.strip() in _CHAINS), default=-1)
    return lines[cut + 1 :]


def _frames(lines: list[str], repo: RepoFacts) -> list[_Frame]:
    frames: list[_Frame] = []
    for i, line in enumerate(lines):
        found = _FRAME.match(line)
        if not found:
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        source = following.strip() if following[:1].isspace() else ""
        number = int(found[2]) if found[2].isdigit() else 0
        frames.append(_Frame(found[1], number, repo.where(found[1]), source))
    return frames


def _exception(result: CaseResult, section: list[str]) -> tuple[str, str]:
    """(type, first line of the message): from the report's message when it says, else from the
    traceback's `E` lines (a collection error's message is only "collection failure")."""
    message = result.message.strip()
    if wrapped := _WRAPPED.fullmatch(message):
        message = wrapped[1].strip()
    first = message.splitlines()[0].strip() if message else ""
    if first and first != "collection failure":
        found = _TYPE.fullmatch(first)
        if found and _class_like(found[1]):
            return found[1], (found[2] or "").strip()
        if first.split(" ", 1)[0] == "assert":
            return "AssertionError", first
    e_lines = [line[1:].strip() for line in section if line.startswith("E ")]
    for line in reversed(e_lines):
        found = _TYPE.fullmatch(line)
        if found and _class_like(found[1]):
            return found[1], (found[2] or "").strip()
    if any(line.split(" ", 1)[0] == "assert" for line in e_lines):
        return "AssertionError", next(x for x in e_lines if x.split(" ", 1)[0] == "assert")
    return "", first


def _class_like(name: str) -> bool:
    return name.rsplit(".", 1)[-1][:1].isupper()
