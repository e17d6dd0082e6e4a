"""`cascade route ISSUE-ID` and `cascade replay --plan`: the path a task would take, said before
anything is spent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cascade.cli.failures import reported

if TYPE_CHECKING:
    from cascade.records import Issue
    from cascade.wiring.settings import LoadedConfig


def route_cmd(
    issue_id: Annotated[str, typer.Argument(help="ISSUE-7, owner/repo#123, '#123' or a URL.")],
    repo: Annotated[Path, typer.Option(help="The repository checkout.")] = Path(),
    config: Annotated[
        Path | None, typer.Option(help="A config file instead of cascade.toml.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='One object: {"issue", "workflow": {name, matched, passed_over}, '
            '"context_tokens", "facts", "gate", "proof", "review", "reviewers", "apply", '
            '"route": {start, ceiling, rungs, because, passed_over}, "budget", '
            '"first_call_usd_at_most", "problems"}.',
        ),
    ] = False,
) -> None:
    """Say the path a task would take, in the order it is decided — its workflow (the first
    `[[workflows]]` entry it matches, and why the others were passed over), context, scope, the
    gate that would judge it, what must prove a patch, review and delivery, then the model's
    start rung and ceiling, the budget and the most its first model call can cost — without
    calling a model, reading a cassette or opening a sandbox.

    Exit codes: 0 said, 2 usage or configuration error, 3 the issue source cannot be reached."""
    from cascade.wiring.route_plan import plan, render
    from cascade.wiring.run_issue import RunFlags, load_for_run
    from cascade.wiring.settings import repo_root
    from cascade.wiring.sources import source_for
    from cascade.workspace.checkout import files_at

    with reported():
        start = repo.resolve()
        root = repo_root(start)
        loaded = load_for_run(root, RunFlags(config), start=start)
        source, ref = source_for(issue_id, loaded.config, root)
        chosen = plan(loaded, source.get(ref), set(files_at(root)))
    typer.echo(json.dumps(chosen.doc, indent=2) if as_json else render(chosen))


def plan_backlog(loaded: LoadedConfig, repo: Path, issues: list[Issue], as_json: bool) -> int:
    """`--plan`: each task's path and the traffic split, before trusting the router."""
    from collections import Counter

    from cascade.wiring.route_plan import plan, render
    from cascade.wiring.workflows import workflows_of
    from cascade.workspace.checkout import files_at

    tracked = set(files_at(repo))
    flows = workflows_of(loaded)
    plans = [plan(loaded, issue, tracked, flows) for issue in issues]
    by_workflow = Counter(p.workflow for p in plans)
    split = Counter(p.start for p in plans)
    ceilings = Counter(p.ceiling for p in plans)
    first_usd = sum(p.first_call_usd for p in plans)
    if as_json:
        doc = {
            "tasks": len(plans), "by_workflow": dict(by_workflow), "by_start": dict(split),
            "by_ceiling": dict(ceilings),
            "first_calls_usd_at_most": round(first_usd, 6), "plans": [p.doc for p in plans],
        }  # fmt: skip
        typer.echo(json.dumps(doc, indent=2))
        return 0
    for p in plans:
        typer.echo(render(p))
    lanes = ", ".join(f"{n} {name}" for name, n in by_workflow.most_common())
    by = ", ".join(f"{n} start on {rung}" for rung, n in split.most_common())
    typer.echo(
        f"\n{len(plans)} task(s): workflows {lanes}; {by}; first calls at most "
        f"${first_usd:.4f} in all (nothing was run)"
    )
    return 0
