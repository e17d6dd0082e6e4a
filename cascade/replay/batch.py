"""A batch folder: `batch.json` (what is being replayed, at which commit, with which ladder),
`ledger.jsonl`, `issues/` (a snapshot of every issue started) and `runs/<run-id>/` (each task's
proof). Opening it takes a lock, repairs a torn ledger line, and settles runs a killed process
left open: sealed ones are recovered, the others are marked aborted (never deleted)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cascade.errors import InfraError, UsageError
from cascade.proof.run_folder import RunFolder
from cascade.records import SCHEMA_VERSION, Issue, RunOutcome
from cascade.replay.ledger import JsonlWriter, LedgerLine, LedgerState, now, read_ledger
from cascade.workspace.untracked import ignore_in_git

BATCH_FILE = "batch.json"
LEDGER_FILE = "ledger.jsonl"
RUNS_DIR = "runs"
ISSUES_DIR = "issues"
SHADOW_DIR = "shadow"
ABORTED_FILE = "ABORTED"
LOCK_FILE = ".lock"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BatchHeader(BaseModel):
    """What a batch replays; a resumed batch must agree with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    backlog: str
    repo: str
    base_commit: str
    shard: str = "1/1"
    ladder: tuple[str, ...]
    models: tuple[str, ...] = ()  # each rung's model string
    # Each rung's settings as the batch ran them (those not at their defaults), for the ready
    # `[[ladder]]` block of `cascade report --ladders`; () in a batch written before them.
    rungs: tuple[dict[str, Any], ...] = ()
    gate: tuple[str, ...]
    config_file: str = ""
    shadow_of: str = ""  # for a shadow batch: the folder of the batch it shadows
    merged_from: tuple[str, ...] = ()
    created_at: str = ""


def safe_name(task_id: str) -> str:
    """A folder-safe form of an issue id; a digest suffix keeps two ids that flatten alike
    apart."""
    flat = _UNSAFE.sub("_", task_id).strip("._-")[:80] or "task"
    if flat != task_id:
        flat += "-" + hashlib.sha256(task_id.encode("utf-8")).hexdigest()[:8]
    return flat if flat[0].isalnum() else "t" + flat


def read_header(path: Path) -> BatchHeader:
    file = path / BATCH_FILE
    try:
        return BatchHeader.model_validate_json(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} is not a replay batch folder (no {BATCH_FILE})") from None
    except (OSError, ValidationError) as exc:
        raise UsageError(f"{file} cannot be read: {exc}") from exc


def write_header(path: Path, header: BatchHeader) -> None:
    _write_text(path / BATCH_FILE, header.model_dump_json(indent=2) + "\n")


class BatchDir:
    """An open, locked batch folder. Use `open`; one process at a time holds it."""

    def __init__(self, path: Path, header: BatchHeader, lock: IO[bytes]) -> None:
        self.path = path
        self.header = header
        self._lock = lock
        self.runs_dir = path / RUNS_DIR
        self.ledger = JsonlWriter(path / LEDGER_FILE)
        self.state: LedgerState = read_ledger(path / LEDGER_FILE)
        self.notes: list[str] = []  # what opening it found worth saying

    @classmethod
    def open(cls, path: Path, header: BatchHeader) -> BatchDir:
        """Create the folder, or resume it when `header` matches what it was started with."""
        try:
            (path / RUNS_DIR).mkdir(parents=True, exist_ok=True)
            ignore_in_git(path)  # under .cascade/ (the default place): never in `git status`
            (path / ISSUES_DIR).mkdir(exist_ok=True)
            lock = (path / LOCK_FILE).open("ab")
        except OSError as exc:
            raise UsageError(f"--out {path}: cannot create the batch folder: {exc}") from exc
        try:
            # The kernel drops the lock when the holder dies, SIGKILL included.
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise UsageError(f"--out {path}: another replay is running on this folder") from None
        notes = []
        try:
            if (path / BATCH_FILE).exists():
                old = _agree(path, read_header(path), header)
                if not old.rungs and header.rungs:  # begun before headers held them
                    old = old.model_copy(update={"rungs": header.rungs})
                    write_header(path, old)
                elif old.rungs != header.rungs:
                    notes.append(
                        "the rungs' settings differ from those this batch began with "
                        f"({BATCH_FILE} keeps those, and a report's ready [[ladder]] shows them)"
                    )
                header = old
            else:
                write_header(path, header.model_copy(update={"created_at": now()}))
            opened = cls(path, header, lock)
            opened.notes = notes
            return opened
        except BaseException:
            lock.close()
            raise

    def close(self) -> None:
        self._lock.close()

    def settle(self) -> list[str]:
        """Deal with runs a previous process left open; return one message per run."""
        messages: list[str] = []
        for task_id, state in sorted(self.state.tasks.items()):
            for run_id in state.open_runs:
                outcome = RunFolder(self.runs_dir / run_id).sealed_outcome()
                if outcome is not None and state.done is None:
                    labels = self.issue(task_id).labels if self.has_issue(task_id) else ()
                    self.done(task_id, outcome, labels, recovered=True)
                    messages.append(f"{task_id}: run {run_id} was sealed; its result is kept")
                else:
                    self.abort(task_id, run_id, "the replay stopped before the run was sealed")
                    messages.append(f"{task_id}: run {run_id} was cut short; marked aborted")
        return messages

    def start(self, issue: Issue) -> str:
        """Log the start of a new run of `issue` and return its run id. The ledger line comes
        first: every run folder is then named by a start line."""
        # The issue as this run sees it: the last run of a task is the one that finishes it.
        _write_text(self._issue_file(issue.id), issue.model_dump_json(indent=2) + "\n")
        state = self.state.task(issue.id)
        base, number = safe_name(issue.id), len(state.runs) + 1
        while (self.runs_dir / f"{base}.r{number}").exists():
            number += 1  # never reuse a folder, whatever the ledger says
        run_id = f"{base}.r{number}"
        self._append(LedgerLine(event="start", at=now(), task=issue.id, run_id=run_id))
        return run_id

    def done(
        self,
        task_id: str,
        outcome: RunOutcome,
        labels: Sequence[str] = (),
        *,
        recovered: bool = False,
        node: str = "",
    ) -> None:
        line = LedgerLine(
            event="done",
            at=now(),
            task=task_id,
            run_id=outcome.run_id,
            labels=tuple(labels),
            outcome=outcome,
            recovered=recovered,
            node=node or None,
        )
        self._append(line)

    def abort(self, task_id: str, run_id: str, reason: str) -> None:
        run_dir = self.runs_dir / run_id
        if run_dir.is_dir():
            _write_text(run_dir / ABORTED_FILE, f"{now()} {reason}\n")
        self._append(LedgerLine(event="aborted", at=now(), task=task_id, run_id=run_id,
                                reason=reason))  # fmt: skip

    def retry(self, task_id: str, run_id: str) -> None:
        """Reopen a task whose run `run_id` ended in error, to run it again; that run is kept,
        marked as superseded like any aborted run."""
        run_dir = self.runs_dir / run_id
        if run_dir.is_dir():
            _write_text(run_dir / ABORTED_FILE, f"{now()} superseded: replay --retry-errors\n")
        self._append(LedgerLine(event="retry", at=now(), task=task_id, run_id=run_id,
                                reason="replay --retry-errors"))  # fmt: skip

    def plan(self, task_ids: Sequence[str]) -> None:
        self._append(LedgerLine(event="plan", at=now(), tasks=tuple(task_ids)))

    def budget_stop(self, spent_usd: float, not_started: int, limit: float) -> None:
        reason = f"spent ${spent_usd:.4f} of the ${limit:.4f} budget (--max-cost-usd)"
        line = LedgerLine(
            event="budget_stop",
            at=now(),
            reason=reason,
            spent_usd=round(spent_usd, 8),
            not_started=not_started,
        )
        self._append(line)

    def has_issue(self, task_id: str) -> bool:
        return self._issue_file(task_id).is_file()

    def issue(self, task_id: str) -> Issue:
        return load_issue(self.path, task_id)

    def _issue_file(self, task_id: str) -> Path:
        return self.path / ISSUES_DIR / f"{safe_name(task_id)}.json"

    def _append(self, line: LedgerLine) -> None:
        self.ledger.append(line.model_dump(mode="json", exclude_none=True))
        self.state.add(line)


def load_issue(batch: Path, task_id: str) -> Issue:
    path = batch / ISSUES_DIR / f"{safe_name(task_id)}.json"
    try:
        return Issue.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise UsageError(f"issue snapshot {path} cannot be read: {exc}") from exc


def _agree(path: Path, old: BatchHeader, new: BatchHeader) -> BatchHeader:
    """A resumed batch keeps its base commit; anything else that differs is a usage error."""
    for name in ("backlog", "shard", "ladder", "models", "gate", "shadow_of"):
        before, now_ = getattr(old, name), getattr(new, name)
        if before != now_:
            raise UsageError(
                f"--out {path} holds a batch with {name} {_show(before)}, but this command has "
                f"{_show(now_)}; resume with the same settings or pick another --out"
            )
    return old


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return " → ".join(value) or "(none)"
    return json.dumps(value)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InfraError(f"cannot write {path}: {exc}") from exc
