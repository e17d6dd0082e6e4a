"""The ladder's memory: what past runs in `.cascade/runs` say about each rung — for learned skip
(how often a rung verified similar tasks) and for `cascade ladder stats`. Reads the proof logs
tolerantly: a torn or foreign run is passed over, never an error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from cascade.config import LearnedSkipConfig
from cascade.core.ladder import SkipStats
from cascade.errors import InfraError
from cascade.proof.run_folder import RunFolder

ANSWERED = frozenset({"verified", "unproven", "rejected", "edit_error", "empty_patch", "cancelled"})
ALL = "*"  # the bucket of every task, whatever its labels


@dataclass(frozen=True)
class PastRun:
    run_id: str
    labels: tuple[str, ...]
    tried: tuple[str, ...]  # rungs that answered at least once, in order
    verified_rung: str = ""
    unproven_rung: str = ""  # passed every check there, but nothing proved it: not verified


def load_runs(runs_dir: Path, exclude: str = "") -> list[PastRun]:
    """Every readable run under `runs_dir`, oldest first (run ids sort by time)."""
    if not runs_dir.is_dir():
        return []
    runs = []
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir() and p.name != exclude):
        run = _read_run(run_dir)
        if run is not None:
            runs.append(run)
    return runs


def _read_run(run_dir: Path) -> PastRun | None:
    try:
        records = RunFolder(run_dir).records()  # a torn line is passed over
    except InfraError:
        return None  # an unreadable run tells the ladder nothing
    labels: tuple[str, ...] = ()
    tried: list[str] = []
    verified = unproven = ""
    for record in records:
        if record.get("role", "fix") != "fix":
            continue  # the reproduce stage's rungs wrote tests, not fixes
        decision = record.get("decision") or {}
        labels = labels or tuple(str(x) for x in decision.get("labels") or ())
        rung, status = str(record.get("rung", "")), record.get("status")
        if status in ANSWERED and rung and rung not in tried:
            tried.append(rung)
        if status == "verified":
            verified = rung
        if status == "unproven":
            unproven = rung
    if not tried:
        return None
    return PastRun(run_dir.name, labels, tuple(tried), verified, unproven)


async def learned_stats(
    cfg: LearnedSkipConfig, runs_dir: Path, run_id: str, labels: Sequence[str]
) -> dict[str, SkipStats]:
    """The stats learned skip decides on, for a task with `labels`; {} when it is off. Read in a
    worker thread: a long history is many files."""
    if not cfg.enabled:
        return {}
    runs = await anyio.to_thread.run_sync(load_runs, runs_dir, run_id)
    return similar_stats(runs, labels, cfg.window)


def similar_stats(
    runs: Sequence[PastRun], labels: Sequence[str], window: int
) -> dict[str, SkipStats]:
    """Per rung, over the last `window` runs similar to a task with `labels` (sharing a label;
    every run when the task has none) that tried the rung: how many it verified."""
    similar = [r for r in runs if not labels or set(r.labels) & set(labels)]
    described = f"label {', '.join(labels)}" if labels else "all tasks"
    return _per_rung(similar, window, described)


def _per_rung(runs: Sequence[PastRun], window: int, described: str) -> dict[str, SkipStats]:
    rungs: list[str] = []
    for run in runs:
        rungs += [r for r in run.tried if r not in rungs]
    stats = {}
    for rung in rungs:
        last = [r for r in runs if rung in r.tried][-window:]
        verified = sum(1 for r in last if r.verified_rung == rung)
        unproven = sum(1 for r in last if r.unproven_rung == rung)
        stats[rung] = SkipStats(len(last), verified, described, unproven)
    return stats


def stats_table(runs: Sequence[PastRun], window: int) -> list[tuple[str, str, SkipStats]]:
    """(rung, label, stats) for every rung, over all runs (label `*`) and per label seen."""
    labels: list[str] = sorted({label for run in runs for label in run.labels})
    rows: list[tuple[str, str, SkipStats]] = []
    buckets: Iterable[tuple[str, Sequence[PastRun]]] = [(ALL, runs)] + [
        (label, [r for r in runs if label in r.labels]) for label in labels
    ]
    for label, members in buckets:
        described = "all tasks" if label == ALL else f"label {label}"
        for rung, stat in _per_rung(members, window, described).items():
            rows.append((rung, label, stat))
    return rows
