"""The one way to run an issue: configuration (with the command's flags as named overrides),
the base commit, the assembled parts, the issue read through the registry's source, a proof log,
the engine's climb, and a sealed run whatever happens. `cascade fix`, `cascade ci github` and each
task of `cascade replay` all go through `IssueRunner`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade.core.engine import Engine
from cascade.core.events import Event
from cascade.errors import ConfigError, UsageError
from cascade.proof.log import ProofLog, new_run_id
from cascade.proof.outcome import error_outcome
from cascade.proof.run_folder import RunFolder
from cascade.proof.signing import Signer, load_signer
from cascade.records import Issue, RunOutcome, Task
from cascade.wiring.assemble import Parts, assemble
from cascade.wiring.registry import prepare_sandbox
from cascade.wiring.settings import LoadedConfig, load_config
from cascade.wiring.sources import source_for
from cascade.workspace.checkout import resolve_commit

log = logging.getLogger(__name__)

OnEvent = Callable[[Event], None]
Adapt = Callable[[Engine], Engine]  # a batch's limits and shared purse, put around an engine


@dataclass(frozen=True)
class RunFlags:
    """What a command's flags say about the configuration; each set flag becomes an override
    whose origin is the flag, so `config show` and errors name it."""

    config_file: Path | None = None
    backend: str | None = None  # --sandbox
    max_cost_usd: float | None = None  # --max-cost-usd


def load_for_run(
    repo: Path,
    flags: RunFlags = RunFlags(),
    environ: Mapping[str, str] | None = None,
    start: Path | None = None,
) -> LoadedConfig:
    """The configuration of `repo` (a folder, or a UsageError) with the flags on top; its file
    found from `start` (a folder inside the repository, default `repo`) upward."""
    overrides: dict[str, tuple[Any, str]] = {}
    if flags.backend is not None:
        overrides["sandbox.backend"] = (flags.backend, "--sandbox")
    if flags.max_cost_usd is not None:
        overrides["budget.max_cost_usd"] = (flags.max_cost_usd, "--max-cost-usd")
    return load_config(repo, flags.config_file, overrides, environ, start)


@dataclass(frozen=True)
class IssueRunner:
    """Runs issues of one repository, at one base commit, with one configuration's parts."""

    parts: Parts
    repo: Path
    commit: str
    runs_dir: Path  # a run folder per run is made under this
    signer: Signer | None = None  # signs each run's receipt ([proof] key)

    @classmethod
    def prepare(
        cls,
        loaded: LoadedConfig,
        repo: Path,
        *,
        record: Path | None = None,
        runs_dir: Path | None = None,
        commit: str | None = None,
        progress: Callable[[str], None] | None = None,
        sandbox_here: bool = True,
    ) -> IssueRunner:
        """Load the signing key, resolve the base commit (HEAD unless given) and build the
        parts; the key, cassettes and the sandbox backend (its image, and the Python it runs)
        are checked now, before any issue is read. With `progress`, a `[sandbox] setup`
        environment is built now too, shown there (a batch's tasks then share it). Without
        `sandbox_here` (a cluster's driver: its nodes open the sandboxes) the backend is not
        checked here."""
        signer = _signer(loaded)
        base = commit or resolve_commit(repo)
        parts = assemble(loaded, record=record)
        if sandbox_here:
            line = prepare_sandbox(loaded.config.sandbox, parts.backend, repo, base, progress)
            if line:
                (progress or log.info)(line)
        out = runs_dir.resolve() if runs_dir else loaded.path(loaded.config.run.out)
        return cls(parts, repo, base, out, signer)

    @property
    def ladder(self) -> list[str]:
        return [r.name for r in self.parts.loaded.config.ladder]

    def read_issue(self, ref: str) -> Issue:
        """The issue a command-line reference names, from the source the registry builds for it."""
        source, issue_id = source_for(ref, self.parts.loaded.config, self.repo)
        return source.get(issue_id)

    def new_run(
        self,
        *,
        run_id: str | None = None,
        start_at: str | None = None,
        on_event: OnEvent | None = None,
        adapt: Adapt | None = None,
    ) -> IssueRun:
        """One run's engine; a bad `start_at` is a UsageError here, before any work."""
        run_id = run_id or new_run_id()
        engine = self.parts.engine(run_id, on_event, start_at=start_at)
        return IssueRun(self, adapt(engine) if adapt else engine, run_id)


@dataclass(frozen=True)
class IssueRun:
    runner: IssueRunner
    engine: Engine
    run_id: str

    async def __call__(self, issue: Issue) -> RunOutcome:
        """Make the proof log, climb, and return the sealed outcome. The engine seals on every
        cascade error; anything else that escapes it (a bug in an adapter) is logged, becomes
        this run's error outcome, and the run is sealed here so its folder is a whole proof."""
        runner = self.runner
        proof = ProofLog.create(runner.runs_dir, self.run_id, runner.signer)
        task = Task(issue=issue, repo=str(runner.repo), base_commit=runner.commit)
        started = time.monotonic()
        try:
            return await self.engine.run(task, proof)
        except Exception as exc:
            log.warning("run %s of %s failed: %r", self.run_id, issue.id, exc,
                        exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
            run, duration = RunFolder(proof.run_dir), time.monotonic() - started
            error = describe(exc)
            outcome = error_outcome(run, issue.id, runner.commit, error, duration_s=duration)
            if not run.sealed:
                try:
                    proof.seal(outcome, run.attempts(), None, issue.title, runner.ladder)
                except Exception:  # the run keeps its attempts; the caller records the error
                    log.exception("could not seal the failed run %s", self.run_id)
            return outcome


def _signer(loaded: LoadedConfig) -> Signer | None:
    """The `[proof] key`, read here on the host: the key object stays in this process and the
    file is never in a sandbox (sandboxes get a `git archive` of the base commit, nothing else)."""
    key = loaded.config.proof.key
    if not key:
        return None
    try:
        return load_signer(loaded.path(key, loaded.config_dir))
    except UsageError as exc:
        raise ConfigError(f"[proof] key (from {loaded.origin('proof.key')}): {exc}") from exc


def describe(exc: BaseException) -> str:
    """`Type: message`; for an exception group (a task group inside the engine), its leaves."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
