"""`cascade replay --regate RUN_DIR`: re-judge an earlier batch's (or run's) recorded patches with
the gate as it is configured now, without calling a model, and say which verdicts change."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import typer

from cascade.errors import UsageError
from cascade.replay.regate import RegateResult, render_regate

if TYPE_CHECKING:
    from cascade.protocols import SandboxOpener


def run_regate(
    run_dir: Path, repo: Path, config_file: Path | None, backend: str | None, concurrency: int
) -> int:
    """Re-gate, print the result, and keep it under RUN_DIR/regate/."""
    result = regate_folder(run_dir, repo, config_file, backend, concurrency)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    where = run_dir.resolve() / "regate"
    where.mkdir(exist_ok=True)
    text = render_regate(result)
    (where / f"{stamp}.md").write_text(text, encoding="utf-8")
    data = json.dumps(result.to_json(), indent=2) + "\n"
    (where / f"{stamp}.json").write_text(data, encoding="utf-8")
    typer.echo(text)
    typer.echo(f"written: {where / stamp}.md and .json", err=True)
    return 0


def regate_folder(
    run_dir: Path, repo: Path, config_file: Path | None, backend: str | None, concurrency: int
) -> RegateResult:
    """Every recorded patch of a batch or run folder, applied again at its base commit in a
    fresh sandbox and judged by the gate as `repo`'s configuration has it now."""
    from cascade.proof.run_folder import RunFolder
    from cascade.replay.batch import BATCH_FILE, LEDGER_FILE, RUNS_DIR, load_issue, read_header
    from cascade.replay.ledger import read_ledger
    from cascade.replay.regate import RegateTask, regate
    from cascade.wiring.registry import build_gate, choose_backend, sandbox_opener
    from cascade.wiring.run_issue import RunFlags, load_for_run
    from cascade.wiring.sources import source_for
    from cascade.wiring.workflows import policy_gates, workflows_of

    run_dir, flags = run_dir.resolve(), RunFlags(config_file, backend)
    tasks: list[RegateTask] = []
    if (run_dir / BATCH_FILE).is_file():
        header = read_header(run_dir)
        repo = Path(header.repo) if Path(header.repo).is_dir() else repo.resolve()
        loaded = load_for_run(repo, flags)
        ledger = read_ledger(run_dir / LEDGER_FILE)
        for task_id in ledger.finished:
            state = ledger.tasks[task_id]
            if state.done is None or state.done.outcome is None:
                continue
            folder = RunFolder(run_dir / RUNS_DIR / state.done.run_id)
            issue = load_issue(run_dir, task_id)
            tasks.append(RegateTask(issue, state.done.outcome, folder.attempts(), folder.path))
    elif RunFolder(run_dir).has_outcome:
        repo = repo.resolve()
        loaded = load_for_run(repo, flags)
        run = RunFolder(run_dir)
        outcome = run.outcome()
        # The task id as the run named it (owner/repo#7 from GitHub, ISSUE-7 from files).
        source, issue_id = source_for(outcome.task_id, loaded.config, repo)
        issue = source.get(issue_id)
        tasks.append(RegateTask(issue, outcome, run.attempts(), run_dir))
    else:
        raise UsageError(f"--regate {run_dir}: not a replay batch folder nor a sealed run folder")
    cfg = loaded.config
    gate = build_gate(cfg.gate)
    backend_name = choose_backend(cfg.sandbox)

    def opener_for(run_id: str) -> SandboxOpener:
        return sandbox_opener(cfg.sandbox, backend_name, run_id)

    typer.echo(
        f"re-gating {len(tasks)} run(s) of {run_dir} with gate {', '.join(gate.names)} (each "
        "patch's workflow's, raised as it was, where its record names one) "
        f"(sandbox {backend_name}); no model is called",
        err=True,
    )
    gate_for = policy_gates(workflows_of(loaded))
    judge = functools.partial(regate, concurrency=concurrency, gate_for=gate_for)
    return anyio.run(judge, tasks, gate, opener_for, repo)
