"""The type gate: mypy before and after the patch, passing when there is no type error that was
not there at the base commit (matched by path, code and message, so moved lines don't count).
Runs the repo's own mypy config and targets when it has them, else the changed files; the config
as the base commit has it (a patch's changes to it are swapped out for the run). A mypy that
stops at the base commit as configured is the configuration's problem (GateConfigError)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import GateConfigError, InfraError
from cascade.protocols import Sandbox
from cascade.records import Finding, Patch, Task, Verdict
from evaluators import sarif
from evaluators.findings import (
    MAX_FINDINGS,
    ToolFinding,
    feedback,
    infra_problem,
    new_indices,
    read_patch,
    run_tool,
    tail,
    tool_verdict,
)
from evaluators.infrastructure import Tool
from evaluators.mypy_setup import (
    CONFIG_FILES,
    RepoMypy,
    config_hint,
    is_duplicate_module,
    key,
    lenient,
    module_targets,
    parse_errors,
    prepare,
    repo_mypy,
    tracked_python,
    unstubbed,
)
from evaluators.patch_files import PYTHON_SUFFIXES, by_path, python_files
from evaluators.trusted_files import trusted_files

log = logging.getLogger(__name__)

ARTIFACT = "mypy.sarif.json"
MYPY_URI = "https://mypy-lang.org/"
PACKAGE_BASES = "--explicit-package-bases"
# Inside .git: never in the tree, and kept across tries, so later runs are incremental. One per
# workspace: mypy trusts a cache entry whose relative path, mtime and size match, which files of
# another workspace can easily do.
CACHE_DIR = ".git/cascade-mypy-cache"
Mode = Literal["targets", "config", "files"]
EXIT_2 = "mypy exit 2"  # a usage or configuration error, or sources mypy will not take
TOOLS: tuple[Tool, ...] = ("mypy",)


class MypyConfig(BaseModel):
    """`[gate.options.mypy]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[str, ...] = ()  # what to check; default: the repo config's, else changed files
    args: tuple[str, ...] = ()  # extra mypy arguments
    timeout: float = Field(default=600.0, gt=0)
    feedback_chars: int = Field(default=2000, ge=200)


@asynccontextmanager
async def _without(sandbox: Sandbox, paths: Sequence[str]) -> AsyncIterator[None]:
    """`paths` removed from the workspace for the span, and put back after, always."""
    if not paths:
        yield
        return
    saved = {p: await sandbox.read_file(p) for p in paths}
    await sandbox.write_files(dict.fromkeys(paths))
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await sandbox.write_files(saved)


@dataclass(frozen=True)
class _Run:
    errors: list[ToolFinding]
    exit_code: int
    problem: str = ""  # why there is no result to judge
    timed_out: bool = False

    @property
    def duplicates(self) -> bool:
        return self.exit_code == 2 and any(map(is_duplicate_module, self.errors))


class MypyEvaluator:
    """Three modes, fixed at baseline: `targets` (from this config) and `config` (the repo's
    mypy config names its files) check the whole configured project, so a patch that breaks a
    caller elsewhere fails; `files` checks the changed files (at baseline, the repo's top-level
    packages and modules, as `mypy` users name them). With no mypy configuration at all (the
    repo's or this config's), missing imports are tolerated and only errors a user would call
    errors count (`mypy_setup.LENIENT_CODES`)."""

    name = "mypy"
    config_model: ClassVar[type[MypyConfig]] = MypyConfig

    def __init__(self, config: MypyConfig | None = None) -> None:
        self.config = config or MypyConfig()

    def baseline_key(self, task: Task) -> str:
        """The baseline depends on the commit and config only: shared by every task on it."""
        return ""

    async def baseline(self, sandbox: Sandbox, task: Task) -> dict[str, Any]:
        started = time.monotonic()
        repo = await repo_mypy(sandbox)
        mode: Mode = "targets" if self.config.targets else "config" if repo.has_targets else "files"
        flags = [] if repo.has_config else ["--ignore-missing-imports"]
        gentle = not (repo.has_config or self.config.targets or self.config.args)
        kept: list[ToolFinding] = []
        excluded: list[str] = []
        targets = self._targets(mode, [])
        if mode == "files":
            # Files that are not Python 3 (fixtures, templates) would stop mypy one at a time.
            tracked = await tracked_python(sandbox)
            broken, absent = await prepare(sandbox, tracked, stamp=False)
            kept = list(broken.values())
            targets, excluded = module_targets(tracked, {*broken, *absent})
        found, blocked = await self._base_run(sandbox, mode, flags, targets, excluded, repo)
        findings = [*kept, *found]
        return {
            "mode": mode,
            "flags": flags,
            "lenient": gentle,
            "findings": [f.to_json() for f in (lenient(findings) if gentle else findings)],
            "blocked": blocked,
            "duration_s": round(time.monotonic() - started, 3),
        }

    async def _base_run(  # noqa: PLR0917 - the baseline's state, passed once
        self,
        sandbox: Sandbox,
        mode: Mode,
        flags: list[str],
        targets: list[str],
        excluded: list[str],
        repo: RepoMypy,
    ) -> tuple[list[ToolFinding], bool]:
        """(errors, blocked) at the base commit; `flags` may gain `--explicit-package-bases`.
        mypy's exit 2 is a usage or configuration error, or sources it will not take: given the
        same commit and settings it comes back every time, so it is a GateConfigError naming
        the setting to change, which the engine does not retry. A mypy that cannot run at all
        (missing, killed, timed out) is an InfraError."""
        if mode == "files" and not targets:
            return [], False
        walk = [arg for pattern in excluded for arg in ("--exclude", pattern)]
        while True:
            run = await self._mypy(sandbox, [*flags, *walk], targets)
            if run.timed_out or (run.problem and run.exit_code != 2):
                raise InfraError(f"mypy cannot check the base commit: {run.problem}")
            if run.exit_code != 2:
                return run.errors, False
            if run.duplicates and PACKAGE_BASES not in flags:
                flags.append(PACKAGE_BASES)  # module names from paths: no two alike
                continue
            if run.errors and all(f.rule == "syntax" for f in run.errors):
                # The repo's own mypy stops here too; what it does report is still the baseline.
                log.warning("mypy stops at a syntax error at the base commit: %s", run.errors[0])
                return run.errors, True
            break
        said = run.problem.removeprefix(f"{EXIT_2}: ") or "; ".join(
            f"{f.path}: {f.message}" for f in run.errors[:3]
        )
        hint = config_hint(mode, repo, self.config.targets, self.config.args)
        raise GateConfigError(
            f"mypy cannot check this repository as configured: {hint}. At the base commit it "
            f"stops with exit 2, which trying again does not change: {' '.join(said.split())}"
        )

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        started = time.monotonic()
        mode: Mode = baseline.get("mode", "files")
        diffs = by_path(read_patch(patch))
        changed = python_files(diffs.values())
        # A whole-project run also changes when a module is deleted or the mypy config edited.
        touched = any(p.endswith(PYTHON_SUFFIXES) or p in CONFIG_FILES for p in diffs)
        relevant = changed or (mode != "files" and touched)
        if not relevant:
            return Verdict(evaluator=self.name, passed=True)
        # A changed module's stub, when it had one at the base commit, is what mypy reads for
        # it. A stub the patch adds does not stand in for its module: a patch could otherwise
        # hide a module's new errors behind a stub that says what it likes. It gets its own run.
        added = {p for p, d in diffs.items() if d.status == "added" and p.endswith(".pyi")}
        stubs = [p + "i" for p in changed if p.endswith(".py") and p + "i" not in added]
        stubs = stubs if mode == "files" else []
        modules = [p[:-1] for p in added]
        async with trusted_files(sandbox, patch, TOOLS, exclusive=True):
            listed = sorted({*changed, *stubs, *modules})
            broken, absent = await prepare(sandbox, listed, stamp=True)
            # Changed-files mode leaves out what does not parse, as at baseline; a whole-project
            # run meets it in mypy itself, which stops there and reports it.
            present = [p for p in changed if p not in broken and p not in absent]
            there = [p for p in stubs if p not in broken and p not in absent]
            # New stubs beside a module that is there: out of the tree for the main run (else
            # every importer, and the module itself, would be checked against them), then
            # checked on their own.
            own = [p for p in sorted(added) if p in present and p[:-1] not in absent]
            targets = unstubbed([p for p in present if p not in own], there)
            targets = targets if mode == "files" else []
            run = _Run([], 0)
            async with _without(sandbox, own):
                if targets or mode != "files":
                    run = await self._run(sandbox, baseline.get("flags", []), mode, targets)
            if own and not run.problem:
                stubs_run = await self._run(sandbox, baseline.get("flags", []), "files", own)
                run = _Run([*run.errors, *stubs_run.errors], run.exit_code, stubs_run.problem)
        if run.problem:
            text = f"mypy could not check your change: {run.problem}"
            return tool_verdict(
                self.name, started, text, (Finding(rule="mypy_failed", message=text),)
            )
        before = [ToolFinding.from_json(f) for f in baseline.get("findings", [])]
        after = [*run.errors, *(broken.values() if mode == "files" else ())]
        if baseline.get("lenient", False):
            after = lenient(after)
        if mode == "files":  # errors mypy found in modules the changed files import are not judged
            before = [f for f in before if f.path in changed]
            after = [f for f in after if f.path in changed]
        fresh_lines = {path: diff.added_line_numbers() for path, diff in diffs.items()}
        new = new_indices(list(map(key, before)), list(map(key, after)), after, fresh_lines)
        doc = sarif.mark(sarif.build("mypy", MYPY_URI, after), new)
        artifacts = {ARTIFACT: sarif.dump(doc)}
        fresh = [after[i] for i in sorted(new, key=lambda i: (after[i].path, after[i].line))]
        if not fresh:
            return tool_verdict(self.name, started, "", (), artifacts)
        head = (
            f"mypy reports {len(fresh)} new type error(s) after your change (errors that were "
            "there before are not counted). Fix the types; do not add `# type: ignore`:"
        )
        text = feedback(head, fresh, self.config.feedback_chars)
        shown = tuple(f.as_finding() for f in fresh[:MAX_FINDINGS])
        return tool_verdict(self.name, started, text, shown, artifacts)

    async def _run(
        self, sandbox: Sandbox, flags: Sequence[str], mode: Mode, targets: Sequence[str]
    ) -> _Run:
        """mypy after the patch; changed files whose module names collide (two `conftest.py`)
        are named by their paths, as at a baseline that met the same."""
        run = await self._mypy(sandbox, flags, self._targets(mode, targets))
        if run.duplicates and PACKAGE_BASES not in flags:
            run = await self._mypy(sandbox, [*flags, PACKAGE_BASES], self._targets(mode, targets))
        return run

    def _targets(self, mode: Mode, changed: Sequence[str]) -> list[str]:
        if mode == "targets":
            return list(self.config.targets)
        return [] if mode == "config" else list(changed)  # `config`: mypy reads its own

    async def _mypy(self, sandbox: Sandbox, flags: Sequence[str], targets: Sequence[str]) -> _Run:
        # `-I`: a `mypy/` package in the repo (or added by a patch) must not stand in for mypy.
        argv = [
            *("python", "-I", "-m", "mypy", "-O", "json", "--cache-dir", CACHE_DIR),
            *flags,
            *self.config.args,
            *(("--", *targets) if targets else ()),
        ]
        run = await run_tool(sandbox, argv, self.config.timeout)
        infra = infra_problem(run, "mypy")
        if infra:
            raise InfraError(infra)
        result = run.result
        if result.timed_out:
            why = f"mypy timed out after {self.config.timeout:g} s"
            return _Run([], result.exit_code, why, timed_out=True)
        errors = parse_errors(run.output, run.roots)
        if result.exit_code == 0 and errors is None:
            return _Run([], 0)
        if result.exit_code not in (1, 2) or errors is None:
            detail = tail(result.stderr or run.output)
            return _Run([], result.exit_code, f"mypy exit {result.exit_code}: {detail}")
        return _Run(errors, result.exit_code)
