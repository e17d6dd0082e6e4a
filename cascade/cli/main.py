"""The `cascade` command line. Sync typer commands at the edge; async work runs via anyio.run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from cascade.cli.ci import ci_app
from cascade.cli.failures import reported
from cascade.cli.fix import fix
from cascade.cli.init import init
from cascade.cli.ladder import ladder_app
from cascade.cli.options import SandboxOption
from cascade.cli.replay import replay
from cascade.cli.report import report_app
from cascade.cli.sandbox import sandbox_app

app = typer.Typer(
    help="Turn an issue into a verified patch, cheapest model first, with proof.",
    no_args_is_help=True,
)
proof_app = typer.Typer(help="Check the proof of a run.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)
app.command("fix")(fix)
app.command("replay")(replay)
app.add_typer(report_app, name="report")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(proof_app, name="proof")
app.add_typer(config_app, name="config")
app.command("init")(init)
app.add_typer(ladder_app, name="ladder")
app.add_typer(ci_app, name="ci")


@proof_app.command("verify")
def proof_verify(
    run_dir: Path = typer.Argument(..., help="A run folder, .cascade/runs/<id>"),
    reexecute: bool = typer.Option(
        False,
        "--reexecute",
        help="Also apply the run's recorded patches again at its base commit, each in a fresh "
        "sandbox, and run the gate (as --repo's configuration has it now): exit 1 if any "
        "verdict comes out differently. No model is called.",
    ),
    repo: Path = typer.Option(Path("."), help="With --reexecute: the repository of the run."),
    config: Path | None = typer.Option(None, help="With --reexecute: a config file."),
    sandbox: SandboxOption = None,
) -> None:
    """Check the hash chain, every blob's digest and the receipt; exit 0 only when intact.

    Exit codes: 0 intact (and, with --reexecute, every verdict the same), 1 not, 2 usage,
    3 infrastructure (with --reexecute: a patch could not be applied or gated again)."""
    from cascade.proof.verify import format_report, verify_run

    if not run_dir.is_dir():
        typer.echo(f"error: {run_dir} is not a run folder", err=True)
        raise typer.Exit(2)
    report = verify_run(run_dir)
    typer.echo(format_report(report))
    if not report.ok or not reexecute:
        raise typer.Exit(0 if report.ok else 1)
    from cascade.cli.regate import regate_folder
    from cascade.replay.regate import render_regate

    with reported():
        result = regate_folder(run_dir, repo, config, sandbox, 1)
    typer.echo(render_regate(result))
    data = result.to_json()
    if data["errors"] or data["skipped"]:
        typer.echo("re-executed: some patches could not be judged again (see above)")
        raise typer.Exit(3)
    if data["changed"]:
        typer.echo("re-executed: the verdicts are not reproduced (see above)")
        raise typer.Exit(1)
    said = "every verdict is the same" if data["patches"] else "no patch was gated in this run"
    typer.echo(f"re-executed: {said}")


@config_app.command("show")
def config_show(
    repo: Path = typer.Option(Path("."), help="The repository whose config to read."),
    config: Path | None = typer.Option(None, help="A config file instead of cascade.toml."),
) -> None:
    """Print every resolved value and where it came from."""
    from cascade.wiring.settings import flatten, load_config

    with reported():
        loaded = load_config(repo.resolve(), config)
    for key, value in flatten(loaded.config.model_dump(mode="json")).items():
        typer.echo(f"{key} = {json.dumps(value)}    # {loaded.origin(key)}")


def main() -> None:
    # Prices come from the map that ships with the installed litellm: the same figures on every
    # run of one install (the costs in a proof can be checked later), and no fetch from GitHub
    # when litellm is imported (offline, that fetch stalls ~7 s and warns). Setting
    # LITELLM_LOCAL_MODEL_COST_MAP=False asks litellm for its live map instead.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    app()
