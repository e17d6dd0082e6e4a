"""The real-repositories suite's vocabulary and its builder: pinned PyPI source distributions,
fetched at benchmark time (`pip download`, cached under benchmarks/.cache/, checked against a
pinned sha256), unpacked into a fresh git repository per task with the task's bug injected, its
issue and hidden tests under `.cascade/` and a `cascade.toml`, exactly as a user's checkout would
hold them. Nothing of the libraries is committed to this repository.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cascade.models.cassette import CassetteEntry
from cascade.testing import git

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "sdists"
RUNG = "scripted"  # the one rung of every task's ladder; its model is the patch under test
# The rung replays a cassette holding the correct patch, so `cascade fix <ID>` in a kept task
# repository replays the fix; the benchmark swaps in a scripted model answering each patch.
CASSETTE = ".cascade/answers.jsonl"
REPLAY_MODEL = "replay/bench"
GATE = ("diff_scope", "ruff", "mypy", "pytest")
PYTEST_TIMEOUT = 120.0  # seconds per pytest run: a hang costs this much, not the 600 s default
# What an sdist holds that a source checkout does not: generated metadata. Without PKG-INFO a
# version computed from git (hatch-vcs, setuptools-scm) has nothing to fall back on.
SDIST_ONLY = ("PKG-INFO",)
SDIST_ONLY_DIRS = ("*.egg-info",)

PatchKind = Literal["correct", "do-nothing", "wrong-fix", "test-tampering"]
Expected = Literal["verified", "rejected"]
Situation = Literal[
    "control", "hangs-at-base", "pyi-stubs", "older-style", "git-setup", "order-dependent"
]


@dataclass(frozen=True)
class Library:
    """One pinned source distribution."""

    name: str  # as PyPI spells it
    version: str
    sha256: str  # of the .tar.gz, so a changed upload is caught, not benchmarked

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Edit:
    """Replace the one occurrence of `search` in `path` by `replace`; an empty `search` creates
    the file. Used both to inject a bug at build time and as a patch's search/replace block."""

    path: str
    search: str
    replace: str

    def apply(self, root: Path) -> None:
        target = root / self.path
        if not self.search:
            if target.exists():
                raise ValueError(f"{self.path} already exists")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.replace, encoding="utf-8")
            return
        text = target.read_text(encoding="utf-8")
        found = text.count(self.search)
        if found != 1:
            raise ValueError(f"{self.path}: the search text occurs {found} times, not once")
        target.write_text(text.replace(self.search, self.replace), encoding="utf-8")

    def block(self) -> str:
        """The edit as the search/replace block a model would write."""
        for part in (self.search, self.replace):
            if part and not part.endswith("\n"):
                raise ValueError(f"{self.path}: search/replace text must end with a newline")
        return f"{self.path}\n<<<<<<< SEARCH\n{self.search}=======\n{self.replace}>>>>>>> REPLACE\n"


@dataclass(frozen=True)
class PatchSpec:
    name: str
    kind: PatchKind
    edits: tuple[Edit, ...]
    expect: Expected
    by: str = ""  # the evaluator expected to reject it (said in the report; not scored)

    def answer(self) -> str:
        """The scripted model's whole answer: prose, then the blocks."""
        blocks = "\n".join(edit.block() for edit in self.edits)
        return f"Here is my change ({self.name}).\n\n{blocks}"


@dataclass(frozen=True)
class RealTask:
    id: str
    library: Library
    situation: Situation
    title: str
    body: str
    bug: tuple[Edit, ...]  # applied to the pristine sdist: the base commit is the buggy one
    hidden: Mapping[str, str]  # repo path -> source of a hidden test file
    hidden_tests: tuple[str, ...]
    patches: tuple[PatchSpec, ...]
    tests: tuple[str, ...] = ()  # visible tests the issue names (in the base commit)
    added: tuple[Edit, ...] = ()  # files or tests added at build time, before the bug
    setup: tuple[str, ...] = ()  # `[sandbox] setup`
    tag: str = ""  # a git tag on the base commit
    note: str = ""  # what the situation tests, for the report
    drop: tuple[str, ...] = SDIST_ONLY

    def patch(self, name: str) -> PatchSpec:
        return next(p for p in self.patches if p.name == name)


def problems(tasks: tuple[RealTask, ...]) -> list[str]:
    """What is inconsistent in a suite definition (checked without network or Docker)."""
    found: list[str] = []
    ids = [t.id for t in tasks]
    found += [f"task id {i!r} repeated" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for task in tasks:
        kinds = [p.kind for p in task.patches]
        names = [p.name for p in task.patches]
        if kinds.count("correct") != 1:
            found.append(f"{task.id}: needs exactly one correct patch")
        if len(set(names)) != len(names):
            found.append(f"{task.id}: patch names repeat")
        for patch in task.patches:
            want = "verified" if patch.kind == "correct" else "rejected"
            if patch.expect != want:
                found.append(f"{task.id}/{patch.name}: a {patch.kind} patch must be {want}")
            if not patch.edits:
                found.append(f"{task.id}/{patch.name}: no edits")
            try:
                patch.answer()
            except ValueError as exc:
                found.append(f"{task.id}/{patch.name}: {exc}")
        for node in (*task.hidden_tests, *task.tests):
            if "::" not in node:
                found.append(f"{task.id}: {node!r} is not a pytest node id")
        for node in task.hidden_tests:
            if node.split("::", 1)[0] not in task.hidden:
                found.append(f"{task.id}: no hidden file for {node!r}")
        if not task.bug:
            found.append(f"{task.id}: no bug injected")
    return found


# --- fetching and building -----------------------------------------------------------------


def fetch(library: Library, cache: Path = CACHE) -> Path:
    """The library's sdist, downloaded once with pip (no wheels, no dependencies) into its own
    cache folder and checked against the pinned sha256."""
    folder = cache / f"{library.name}-{library.version}"
    found = sorted(folder.glob("*.tar.gz")) if folder.is_dir() else []
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", "--dest", str(folder), library.pin]  # fmt: skip
        run = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
        found = sorted(folder.glob("*.tar.gz"))
        if run.returncode != 0 or len(found) != 1:
            raise RuntimeError(f"pip download {library.pin} failed: {run.stderr.strip()[-800:]}")
    sdist = found[0]
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != library.sha256:
        raise RuntimeError(f"{sdist.name}: sha256 {digest}, pinned {library.sha256}")
    return sdist


def unpack(sdist: Path, dest: Path) -> None:
    """The sdist's single top folder's contents into `dest` (which must not exist)."""
    with tempfile.TemporaryDirectory(prefix="cascade-sdist-") as tmp, tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data")
        tops = list(Path(tmp).iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise RuntimeError(f"{sdist.name}: expected one top folder, found {len(tops)}")
        shutil.copytree(tops[0], dest)


def config_toml(task: RealTask, backend: str, pytest_timeout: float = PYTEST_TIMEOUT) -> str:
    """The task repository's cascade.toml: one rung, the full gate, and no reproduce stage (the
    hidden tests prove a fix; a patch without proof ends `unproven`)."""
    lines = [
        f"# cascade configuration of the real-repositories benchmark task {task.id}",
        "[[ladder]]",
        f'name = "{RUNG}"',
        f'model = "{REPLAY_MODEL}"',
        f'cassette = "{CASSETTE}"',
        "attempts = 1",
        "",
        "[sandbox]",
        f'backend = "{backend}"',
    ]
    if task.setup:
        lines.append("setup = [" + ", ".join(_toml_str(c) for c in task.setup) + "]")
    lines += [
        "",
        "[gate]",
        "evaluators = [" + ", ".join(_toml_str(e) for e in GATE) + "]",
        "",
        "[gate.options.pytest]",
        f"timeout = {pytest_timeout:g}",
        "",
        "[reproduce]",
        'when = "never"',
    ]
    return "\n".join(lines) + "\n"


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def issue_md(task: RealTask) -> str:
    def listed(key: str, items: tuple[str, ...]) -> list[str]:
        return [f"{key}:", *(f'  - "{item}"' for item in items)] if items else []

    front = [
        "---",
        f"id: {task.id}",
        f"title: {_toml_str(task.title)}",
        *listed("tests", task.tests),
        *listed("hidden_tests", task.hidden_tests),
        "---",
    ]
    return "\n".join(front) + "\n\n" + task.body.strip() + "\n"


@dataclass(frozen=True)
class Built:
    task: RealTask
    repo: Path
    commit: str


def build(
    task: RealTask,
    dest: Path,
    *,
    backend: str = "docker",
    pytest_timeout: float = PYTEST_TIMEOUT,
    cache: Path = CACHE,
) -> Built:
    """A git repository at `dest` holding the library at its pinned version with the task's
    additions and bug, its cascade.toml, issue and hidden tests, in one commit (tagged when the
    task says so)."""
    unpack(fetch(task.library, cache), dest)
    for name in task.drop:
        (dest / name).unlink(missing_ok=True)
    for pattern in SDIST_ONLY_DIRS:
        for folder in [*dest.glob(pattern), *dest.glob(f"*/{pattern}")]:
            shutil.rmtree(folder)
    for edit in (*task.added, *task.bug):
        edit.apply(dest)
    (dest / "cascade.toml").write_text(config_toml(task, backend, pytest_timeout), encoding="utf-8")
    issues = dest / ".cascade" / "issues"
    issues.mkdir(parents=True, exist_ok=True)
    (issues / f"{task.id}.md").write_text(issue_md(task), encoding="utf-8")
    correct = next(p for p in task.patches if p.kind == "correct")
    entry = CassetteEntry(task=task.id, model=REPLAY_MODEL, attempt=1, content=correct.answer())
    (dest / CASSETTE).write_text(entry.to_line(), encoding="utf-8")
    for path, source in task.hidden.items():
        if (dest / path).exists():
            raise ValueError(f"{task.id}: hidden file {path} would shadow a file of the repo")
        target = dest / ".cascade" / "hidden" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    message = f"{task.library.pin} with the bug of {task.id}"
    git(dest, "commit", "-q", "--no-verify", "-m", message)
    if task.tag:
        git(dest, "tag", "-a", task.tag, "-m", task.tag)
    return Built(task, dest, git(dest, "rev-parse", "HEAD").strip())
