"""The end of `cascade replay`: the report written, the batch summed up on stderr (and as JSON
with --json), and the exit code chosen from the batch folders' ledgers."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def finish(
    out: Path, batches: dict[str, Path], ids: set[str], *, stopped: bool, as_json: bool = False
) -> int:
    """Write the report, sum the batch up on stderr, and choose the exit code."""
    from cascade.report.data import load as load_report
    from cascade.report.numbers import build_report
    from cascade.report.render import write_report

    report = build_report(load_report([out]))
    written = write_report(report, out)
    t = report["tasks"]
    outcomes = "".join(
        f", {t[s]} {s.replace('_', ' ')}" for s in t["statuses"] if s != "verified" and t[s]
    )
    typer.echo(
        f"{t['verified']}/{t['total']} verified{outcomes}; "
        f"cost ${report['cost']['total_usd']:.4f} (per verified patch "
        f"{_usd(report['cost']['per_verified_usd'])})",
        err=True,
    )
    shadows = _shadow_spend(out, batches)
    if shadows:
        each = ", ".join(f"{name} ${usd:.4f}" for name, usd in shadows.items())
        together = report["cost"]["total_usd"] + sum(shadows.values())
        typer.echo(f"shadows: {each}; the batch and its shadows ${together:.4f}", err=True)
    typer.echo(f"report: {written[1]}", err=True)
    # Counted from the ledgers, not this session's tallies: an error an earlier session left
    # stays in the batch (a resume does not run it again), and a shadow the budget kept from
    # running this time still holds its own.
    errored = {label: _errored(path, ids) for label, path in batches.items()}
    code = 3 if any(errored.values()) else 1 if stopped else 0  # 3 first: a re-run goes on
    if any(errored.values()):  # after a budget stop, but does not mend these
        typer.echo(_errored_note(errored), err=True)
    if as_json:
        summary = {
            "out": str(out), "tasks": t, "cost": report["cost"],
            "report": [str(p) for p in written], "errored": errored, "shadows_usd": shadows,
            "budget_stopped": stopped, "exit_code": code,
        }  # fmt: skip
        typer.echo(json.dumps(summary, indent=2))
    return code


def _shadow_spend(out: Path, batches: dict[str, Path]) -> dict[str, float]:
    """What each shadow folder of the command spent, as its ledger says."""
    from cascade.replay.runner import folder_spent

    return {
        label.removeprefix("shadow "): round(folder_spent(path), 8)
        for label, path in batches.items()
        if path != out
    }


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _errored(batch: Path, ids: set[str]) -> list[str]:
    """This shard's tasks whose run ended in error, as the batch folder's ledger records them."""
    from cascade.replay.batch import LEDGER_FILE
    from cascade.replay.ledger import read_ledger

    tasks = read_ledger(batch / LEDGER_FILE).tasks
    done = [tasks[task_id].done for task_id in sorted(ids & tasks.keys())]
    return [d.task for d in done if d and d.outcome and d.outcome.status == "error"]


def _errored_note(errored: dict[str, list[str]]) -> str:
    """The last line of a batch with errors: how many, which, and how to run them again."""
    total = sum(len(ids) for ids in errored.values())
    where = "; ".join(
        f"{len(ids)} in {label} ({', '.join(ids[:5])}{', …' if len(ids) > 5 else ''})"
        for label, ids in errored.items()
        if ids
    )
    from cascade.report.data import RETRY_ADVICE

    return f"{total} task(s) ended in an infrastructure error: {where}; {RETRY_ADVICE}."
