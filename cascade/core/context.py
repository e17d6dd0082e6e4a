"""What a model is shown of the repository: the most relevant source files, whole, within a token
budget. With a fault localisation, its most suspicious functions lead (numbered, suspicious
lines marked) and their files come first; then files named in the issue or in the target tests'
failures, then files ranked by how many of the issue's identifiers they contain. Hidden tests
are never candidates."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from cascade.core.localise import Localisation
from cascade.core.localised import Suspect, suspects
from cascade.protocols import Sandbox
from cascade.records import Task
from cascade.workspace.checkout import read_blobs

TokenCounter = Callable[[str], int]

MAX_FILE_BYTES = 100_000  # larger files are listed, never inlined
LISTING_MAX = 300  # paths in the repository listing
TEXT_SUFFIXES = (
    ".py", ".pyi", ".toml", ".cfg", ".ini", ".txt", ".md", ".rst", ".json", ".yaml", ".yml",
    ".js", ".ts", ".tsx", ".go", ".rs", ".java", ".c", ".h", ".cpp", ".rb", ".sh",
)  # fmt: skip
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{3,}")
_TRACE_PATH = re.compile(r"([\w./-]+\.py)(?::\d+|\", line \d+)")
# Words too common in issue prose to say anything about where the code is.
_STOP = frozenset(
    {
        "that", "this", "with", "from", "have", "when", "then", "than", "they", "them", "were",
        "will", "would", "should", "could", "there", "their", "what", "which", "while", "where",
        "after", "before", "into", "other", "only", "same", "some", "such", "also", "like", "just",
        "return", "returns", "none", "true", "false", "self", "print", "test", "tests", "expected",
        "instead", "because", "does", "still", "each", "every", "more", "most", "must", "need",
        "needs", "make", "made", "used", "using", "value", "values", "line", "lines", "file",
        "files", "error", "errors", "python", "issue", "please", "def", "class", "import",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ContextFile:
    path: str
    text: str
    why: str  # "named in the issue", "in a failing test's traceback", "matches: a, b"


@dataclass(frozen=True)
class Context:
    files: tuple[ContextFile, ...]
    listing: tuple[str, ...]  # tracked paths (capped), so the model knows what else exists
    omitted: tuple[str, ...]  # relevant files left out for the budget
    tokens: int
    suspects: tuple[Suspect, ...] = ()  # from fault localisation, most suspicious first


async def tracked_files(sandbox: Sandbox) -> list[str]:
    result = await sandbox.exec(["git", "ls-files", "-z"], timeout=60)
    if result.exit_code != 0:
        return []
    return sorted(p for p in result.stdout.split("\0") if p)


async def build_context(
    sandbox: Sandbox,
    task: Task,
    failures: Mapping[str, str],
    *,
    budget: int,
    count: TokenCounter,
    paths: Sequence[str] | None = None,
    localisation: Localisation | None = None,
    show: int = 0,
) -> Context:
    """Pick files for the prompt. `failures` maps target test ids to their (scrubbed) failure
    text at baseline; `count` is the rung model's token counter; the `show` most suspicious
    functions of `localisation` lead, within the same budget."""
    issue = task.issue
    hidden = set(issue.hidden_files) | {t.split("::", 1)[0] for t in issue.hidden_tests}
    candidates = [p for p in (paths if paths is not None else await tracked_files(sandbox))]
    candidates = [p for p in candidates if p not in hidden]
    wanted = [p for p in candidates if p.endswith(TEXT_SUFFIXES) or "." not in p.rsplit("/", 1)[-1]]
    # The sandbox holds exactly the base commit's tree: read it from git on the host in one
    # process, not one sandbox call per file (a round trip each, whatever the backend).
    blobs = await anyio.to_thread.run_sync(
        read_blobs, Path(task.repo), task.base_commit, wanted, MAX_FILE_BYTES
    )
    texts = {
        path: data.decode("utf-8", errors="replace")
        for path, data in blobs.items()
        if b"\0" not in data
    }
    prose = f"{issue.title}\n{issue.body}"
    ranked = rank_files(prose, texts, tests=issue.tests, failures=failures.values())
    leads: list[Suspect] = []
    used = 0
    for suspect in suspects(localisation, texts, show) if localisation else ():
        cost = count(f"{suspect.label}\n```\n{suspect.excerpt}\n```\n")
        if used + cost <= budget // 3:  # the leads never crowd out the files they point into
            leads.append(suspect)
            used += cost
    first: dict[str, str] = {}
    for lead in leads:
        first.setdefault(lead.path, f"fault localisation: {lead.name} ranks {lead.rank}")
    ranked = [*first.items(), *((p, why) for p, why in ranked if p not in first)]
    chosen: list[ContextFile] = []
    omitted: list[str] = []
    for path, why in ranked:
        cost = count(f"{path}\n```\n{texts[path]}\n```\n")
        if used + cost <= budget:
            chosen.append(ContextFile(path, texts[path], why))
            used += cost
        else:
            omitted.append(path)
    return Context(
        files=tuple(chosen),
        listing=tuple(candidates[:LISTING_MAX]),
        omitted=tuple(omitted),
        tokens=used,
        suspects=tuple(leads),
    )


def rank_files(
    prose: str,
    texts: Mapping[str, str],
    *,
    tests: Iterable[str] = (),
    failures: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """(path, why) for the files worth showing, most relevant first. Pure, so it is
    table-tested."""
    first: dict[str, str] = {}
    for path in texts:
        if _named_in(path, prose):
            first.setdefault(path, "named in the issue")
    for test in tests:
        path = test.split("::", 1)[0]
        if path in texts:
            first.setdefault(path, "holds a target test")
    for text in failures:
        for match in _TRACE_PATH.finditer(text):
            named = match.group(1).removeprefix("./")
            for path in texts:
                if named == path or named.endswith("/" + path):
                    first.setdefault(path, "in a failing test's traceback")
    # A target test imports the code under test: `from pkg.mod import x` names pkg/mod.py.
    for path in list(first):
        for module in re.findall(r"^\s*(?:from|import)\s+([\w.]+)", texts[path], re.M):
            for candidate in _module_paths(module):
                if candidate in texts:
                    first.setdefault(candidate, f"imported by {path}")
    words = {w for w in _IDENT.findall(prose) if w.lower() not in _STOP}
    scored: list[tuple[int, str, str]] = []
    for path, text in texts.items():
        if path in first or not path.endswith((".py", ".pyi")):
            continue
        found = sorted(w for w in words if re.search(rf"\b{re.escape(w)}\b", text))
        if found:
            defined = sum(1 for w in found if re.search(rf"(?:def|class)\s+{w}\b", text))
            scored.append((len(found) + 2 * defined, path, "matches: " + ", ".join(found[:6])))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [*first.items(), *((path, why) for _, path, why in scored)]


def _named_in(path: str, prose: str) -> bool:
    if path in prose:
        return True
    if path.endswith(".py"):
        module = path[:-3].replace("/", ".").removesuffix(".__init__")
        if "." in module and re.search(rf"\b{re.escape(module)}\b", prose):
            return True
    return False


def _module_paths(module: str) -> list[str]:
    base = module.replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py", f"src/{base}.py", f"src/{base}/__init__.py"]


def litellm_counter(model: str) -> TokenCounter:
    """litellm's token count for `model` (its tokenizer when known, a default one otherwise)."""
    import litellm

    def count(text: str) -> int:
        return int(litellm.token_counter(model=model, text=text))

    return count
