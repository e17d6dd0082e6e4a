"""`cascade ladder stats`: how often each rung verified, over all past runs and per label, and
whether learned skip would pass it over with the configured thresholds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cascade.cli.failures import reported

ladder_app = typer.Typer(
    rich_markup_mode=None, help="Inspect the ladder's history.", no_args_is_help=True
)


@ladder_app.command("stats")
def stats(
    repo: Annotated[Path, typer.Option(help="The repository whose runs to read.")] = Path(),
    config: Annotated[
        Path | None, typer.Option(help="A config file instead of cascade.toml.")
    ] = None,
    runs: Annotated[
        Path | None,
        typer.Option(help="Where run folders go (default: .cascade/runs, or [run] out)."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='One object: {"runs", "folder", "learned_skip": {…}, "rows": [{rung, label, '
            "tried, verified, unproven, rate, skip}]}.",
        ),
    ] = False,
) -> None:
    """Per rung and label: tasks that tried the rung (the last `window`), how many it verified,
    and whether learned skip would skip it."""
    from cascade.core.history import load_runs, stats_table
    from cascade.wiring.settings import load_config

    with reported():
        loaded = load_config(repo.resolve(), config)
    cfg = loaded.config.policy.learned_skip
    folder = runs.resolve() if runs else loaded.path(loaded.config.run.out)
    past = load_runs(folder)
    order = {r.name: i for i, r in enumerate(loaded.config.ladder)}
    rows = sorted(
        stats_table(past, cfg.window), key=lambda r: (r[1] != "*", r[1], order.get(r[0], 99))
    )
    table = []
    for rung, label, stat in rows:
        rate = stat.verified / stat.tried if stat.tried else 0.0
        if order.get(rung) == len(order) - 1:
            skip = "never (the top rung)"
        elif stat.tried < cfg.min_tasks:
            skip = f"no ({stat.tried} < {cfg.min_tasks} tasks)"
        else:
            skip = "yes" if rate < cfg.min_success else "no"
        table.append(
            {"rung": rung, "label": label, "tried": stat.tried, "verified": stat.verified,
             "unproven": stat.unproven, "rate": round(rate, 4), "skip": skip}
        )  # fmt: skip
    if as_json:
        skip_cfg = cfg.model_dump(mode="json")
        doc = {"runs": len(past), "folder": str(folder), "learned_skip": skip_cfg, "rows": table}
        typer.echo(json.dumps(doc, indent=2))
        return
    if not past:
        # Nothing wrong: a new repository has no history yet.
        typer.echo(f"no runs with answered attempts under {folder} yet: nothing to count")
        return
    state = "on" if cfg.enabled else "off"
    typer.echo(
        f"{len(past)} run(s) in {folder} · learned skip {state}: skip below "
        f"{cfg.min_success:.0%} of at least {cfg.min_tasks} of the last {cfg.window} tasks"
    )
    head = f"{'rung':<16} {'label':<16} {'tried':>5} {'verified':>8} {'unproven':>8} {'rate':>6}"
    typer.echo(f"{head}  skip")
    for row in table:
        typer.echo(
            f"{row['rung']:<16} {row['label']:<16} {row['tried']:>5} {row['verified']:>8} "
            f"{row['unproven']:>8} {row['rate']:>6.0%}  {row['skip']}"
        )
