"""Reads what a report is computed from: replay batch folders (ledger + runs), single run
folders, or a runs folder of `cascade fix` runs; a batch's shadow runs come along as
baselines. Reading only, and only complete records: a torn tail is dropped, never guessed at.
Each run folder's proof is checked on the way (`cascade.proof.verify`, ~5 ms a run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.errors import UsageError
from cascade.proof.run_folder import OUTCOME_FILE, RunFolder
from cascade.proof.verify import verify_run
from cascade.records import Attempt, RunOutcome
from cascade.replay.batch import (
    BATCH_FILE,
    LEDGER_FILE,
    RUNS_DIR,
    SHADOW_DIR,
    load_issue,
    read_header,
)
from cascade.replay.ledger import read_ledger


@dataclass(frozen=True)
class ProofCheck:
    """What `cascade proof verify` says of a run folder, in a table cell's worth of words."""

    ok: bool
    status: str


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    outcome: RunOutcome
    attempts: tuple[Attempt, ...]
    labels: tuple[str, ...] = ()
    source: str = ""  # the folder it was read from
    title: str = ""  # the issue's title (untrusted text: escape wherever it is shown)
    run_dir: str = ""  # the run folder, when there is one
    proof: ProofCheck | None = None  # None: not checked (no run folder, or not asked)
    node: str | None = None  # the cluster node that ran it (`--executor ray`); None: local


# What to do about tasks that ended in an infrastructure error (the report and `cascade replay`).
RETRY_ADVICE = (
    "fix the cause, then replay again with --retry-errors to run them again (a plain resume "
    "counts them as finished)"
)


@dataclass
class ReportData:
    sources: list[str] = field(default_factory=list)
    ladder: tuple[str, ...] = ()
    gate: tuple[str, ...] = ()
    base_commits: set[str] = field(default_factory=set)
    tasks: list[TaskResult] = field(default_factory=list)  # in the order they finished
    planned: set[str] = field(default_factory=set)  # ids the batches set out to finish
    aborted_attempts: list[Attempt] = field(default_factory=list)
    aborted_runs: int = 0
    budget_notes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shadows: dict[str, ReportData] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    models: dict[str, str] = field(default_factory=dict)  # rung -> its model string
    config_files: list[str] = field(default_factory=list)  # the configs the batches ran with
    rung_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # rung -> settings

    @property
    def not_started(self) -> list[str]:
        finished = {t.task_id for t in self.tasks}
        return sorted(self.planned - finished)


def load(
    paths: list[Path],
    *,
    with_shadows: bool = True,
    verify: bool = True,
    verify_shadows: bool = False,
) -> ReportData:
    """`verify`: check each run folder's proof; `verify_shadows`: the shadows' runs too (they
    are not shown, but `--ladders` projects from them)."""
    data = ReportData()
    for path in paths:
        if not path.is_dir():
            raise UsageError(f"{path}: no such folder (expected a replay batch or a run folder)")
        if (path / BATCH_FILE).is_file():
            _load_batch(path, data, with_shadows, verify, verify_shadows)
        elif (path / OUTCOME_FILE).is_file():
            _add_run(data, path, path, verify)
        else:
            runs = sorted(p for p in path.iterdir() if (p / OUTCOME_FILE).is_file())
            if not runs:
                raise UsageError(
                    f"{path} holds no replay batch ({BATCH_FILE}) and no sealed runs "
                    f"({OUTCOME_FILE}); give a batch folder, a run folder or a runs folder"
                )
            latest: dict[str, Path] = {}
            for run in runs:  # run ids sort by time: the last run of a task wins
                task_id = RunFolder(run).outcome().task_id
                if task_id in latest:
                    data.notes.append(f"{path}: {task_id} ran more than once; the last run counts")
                latest[task_id] = run
            for run in latest.values():
                _add_run(data, run, path, verify)
        data.sources.append(str(path))
    return data


def _load_batch(
    path: Path, data: ReportData, with_shadows: bool, verify: bool, verify_shadows: bool = False
) -> None:
    header = read_header(path)
    _same(data, "ladder", header.ladder, path)
    _same(data, "gate", header.gate, path)
    data.base_commits.add(header.base_commit)
    for rung, model in zip(header.ladder, header.models, strict=False):
        data.models.setdefault(rung, model)
    for settings in header.rungs:
        data.rung_configs.setdefault(str(settings.get("name", "")), dict(settings))
    if header.config_file not in data.config_files:
        data.config_files.append(header.config_file)
    state = read_ledger(path / LEDGER_FILE)
    if state.bad_lines or state.torn_tail:
        data.notes.append(
            f"{path}: {state.bad_lines + state.torn_tail} torn ledger line(s) skipped "
            "(an interrupted write; nothing after it was lost)"
        )
    runs = path / RUNS_DIR
    errored = 0
    for task_id in state.finished:
        line = state.tasks[task_id].done
        if line is None or line.outcome is None:
            continue
        errored += 1 if line.outcome.status == "error" else 0
        run = RunFolder(runs / line.run_id)
        result = TaskResult(
            task_id=line.task,
            outcome=line.outcome,
            attempts=run.attempts(),
            labels=line.labels,
            source=str(path),
            title=_title(path, line.task, run),
            run_dir=str(run.path),
            proof=check_proof(run.path) if verify else None,
            node=line.node or None,
        )
        _add(data, result, path)
    for task_state in state.tasks.values():
        for run_id in sorted(task_state.aborted):
            data.aborted_runs += 1
            data.aborted_attempts += RunFolder(runs / run_id).attempts()
    if errored:
        data.notes.append(
            f"{path}: {errored} task(s) ended in an infrastructure error: {RETRY_ADVICE}"
        )
    data.planned |= set(state.plan)
    data.budget_notes += [f"{path}: {line.reason}" for line in state.budget_stops]
    shadow_root = path / SHADOW_DIR
    if with_shadows and shadow_root.is_dir():
        for shadow in sorted(p for p in shadow_root.iterdir() if (p / BATCH_FILE).is_file()):
            into = data.shadows.setdefault(shadow.name, ReportData())
            _load_batch(shadow, into, with_shadows=False, verify=verify_shadows)
            into.sources.append(str(shadow))


def _add_run(data: ReportData, run_dir: Path, path: Path, verify: bool) -> None:
    """A sealed `cascade fix` run; its receipt names the ladder it climbed."""
    run = RunFolder(run_dir)
    outcome = run.outcome()
    _same(data, "ladder", run.ladder(), path)
    attempts = run.attempts()
    for attempt in attempts:
        data.models.setdefault(attempt.rung, attempt.model)
    result = TaskResult(
        outcome.task_id, outcome, attempts, source=str(run_dir),
        title=_title(None, outcome.task_id, run), run_dir=str(run_dir),
        proof=check_proof(run_dir) if verify else None,
    )  # fmt: skip
    _add(data, result, path)


def check_proof(run_dir: Path) -> ProofCheck:
    """The run's proof as `cascade proof verify RUN` judges it (without a key)."""
    report = verify_run(run_dir)
    if not report.ok:
        more = f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        return ProofCheck(False, f"broken: {report.problems[0]}{more}")
    if not report.sealed:
        return ProofCheck(False, f"not sealed ({report.records} record(s) intact)")
    signing = {"signed": "signed", "unsigned": "unsigned", "legacy": "legacy receipt"}
    return ProofCheck(True, f"intact, {signing.get(report.signing, report.signing)}")


def _title(batch: Path | None, task_id: str, run: RunFolder) -> str:
    """The issue's title: from the batch's snapshot of it, else the run summary's heading."""
    if batch is not None:
        try:
            return load_issue(batch, task_id).title
        except UsageError:
            pass
    try:
        heading = run.summary_file.read_text(encoding="utf-8").partition("\n")[0]
    except OSError:
        return ""
    prefix = f"# {task_id}: "
    return heading.removeprefix(prefix) if heading.startswith(prefix) else ""


def _add(data: ReportData, result: TaskResult, path: Path) -> None:
    if result.task_id in data.seen:
        data.notes.append(f"{path}: {result.task_id} is also in an earlier folder; kept the first")
        return
    data.seen.add(result.task_id)
    data.tasks.append(result)
    if result.outcome.base_commit:
        data.base_commits.add(result.outcome.base_commit)


def _same(data: ReportData, name: str, value: tuple[str, ...], path: Path) -> None:
    current: tuple[str, ...] = getattr(data, name)
    if current and current != value and data.sources:
        data.notes.append(f"{path}: its {name} ({' → '.join(value)}) differs from the others'")
    if not current or not data.sources:
        setattr(data, name, value)
