"""Joins the batch folders of several shards (or machines) into one: run folders and issue
snapshots are copied, ledgers are concatenated, shadows merged by name. The result is itself a
batch folder, so `cascade report` reads it like any other."""

from __future__ import annotations

import shutil
from pathlib import Path

from cascade.errors import UsageError
from cascade.replay.backlog import Shard
from cascade.replay.batch import (
    BATCH_FILE,
    ISSUES_DIR,
    LEDGER_FILE,
    RUNS_DIR,
    SHADOW_DIR,
    BatchHeader,
    read_header,
    write_header,
)
from cascade.replay.ledger import JsonlWriter, LedgerLine, now, read_ledger


def merge_batches(sources: list[Path], out: Path, *, shadow_of: str = "") -> list[str]:
    """Merge `sources` into `out` (new or empty); return notes for the user."""
    if len(sources) < 1:
        raise UsageError("report merge: give at least one batch folder")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out}: the folder exists and is not empty")
    headers = [read_header(path) for path in sources]
    first = headers[0]
    for path, header in zip(sources, headers, strict=True):
        for name in ("ladder", "models", "gate", "base_commit"):
            if getattr(header, name) != getattr(first, name):
                raise UsageError(
                    f"report merge: {path} has a different {name} from {sources[0]}; "
                    "only shards of one batch can be merged"
                )
    notes = _shard_notes(sources, headers)
    (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    (out / ISSUES_DIR).mkdir(exist_ok=True)
    merged = BatchHeader(
        backlog=first.backlog,
        repo=first.repo,
        base_commit=first.base_commit,
        shard="+".join(h.shard for h in headers),
        ladder=first.ladder,
        models=first.models,
        rungs=first.rungs,
        gate=first.gate,
        config_file=first.config_file,
        shadow_of=shadow_of,
        merged_from=tuple(str(p) for p in sources),
        created_at=now(),
    )
    write_header(out, merged)
    ledger = JsonlWriter(out / LEDGER_FILE)
    lines, plan, seen = [], [], set()
    for path in sources:
        state = read_ledger(path / LEDGER_FILE)
        plan += [t for t in state.plan if t not in seen]
        seen |= set(state.plan)
        for task_id, task in state.tasks.items():
            for run_id in task.runs:
                _copy(path / RUNS_DIR / run_id, out / RUNS_DIR / run_id)
                lines.append(LedgerLine(event="start", at=now(), task=task_id, run_id=run_id))
            lines += [
                LedgerLine(event="aborted", at=now(), task=task_id, run_id=r, reason="merged")
                for r in sorted(task.aborted)
            ]
        for task_id in state.finished:
            done = state.tasks[task_id].done
            if done is not None:
                lines.append(done)
        lines += state.budget_stops
        for snapshot in sorted((path / ISSUES_DIR).glob("*.json")):
            if not (out / ISSUES_DIR / snapshot.name).exists():
                shutil.copy2(snapshot, out / ISSUES_DIR / snapshot.name)
    ledger.append(
        LedgerLine(event="plan", at=now(), tasks=tuple(plan)).model_dump(
            mode="json", exclude_none=True
        )
    )
    for line in lines:
        ledger.append(line.model_dump(mode="json", exclude_none=True))
    notes += _merge_shadows(sources, out)
    return notes


def _copy(src: Path, dest: Path) -> None:
    if dest.exists():
        raise UsageError(f"report merge: run {dest.name} appears in more than one folder")
    if src.is_dir():
        shutil.copytree(src, dest)


def _shard_notes(sources: list[Path], headers: list[BatchHeader]) -> list[str]:
    shards: list[Shard] = []
    for path, header in zip(sources, headers, strict=True):
        try:
            shards.append(Shard.parse(header.shard))
        except UsageError:
            return [f"{path} is itself a merged batch ({header.shard}); shard coverage unchecked"]
    counts = {s.count for s in shards}
    if len(counts) != 1:
        return [f"the shards split the backlog differently ({', '.join(map(str, shards))})"]
    count = counts.pop()
    indexes = [s.index for s in shards]
    if len(set(indexes)) != len(indexes):
        raise UsageError(f"report merge: a shard is given twice ({', '.join(map(str, shards))})")
    missing = sorted(set(range(1, count + 1)) - set(indexes))
    if missing:
        return [f"incomplete: shard(s) {', '.join(f'{i}/{count}' for i in missing)} not merged"]
    return []


def _merge_shadows(sources: list[Path], out: Path) -> list[str]:
    names = sorted(
        {p.name for s in sources for p in (s / SHADOW_DIR).glob("*") if (p / BATCH_FILE).is_file()}
    )
    notes: list[str] = []
    for name in names:
        parts = [s / SHADOW_DIR / name for s in sources if (s / SHADOW_DIR / name).is_dir()]
        if len(parts) != len(sources):
            notes.append(f"shadow {name} exists for {len(parts)} of {len(sources)} shard(s)")
        merged = merge_batches(parts, out / SHADOW_DIR / name, shadow_of=str(out))
        notes += [f"shadow {name}: {n}" for n in merged]
    return notes
