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
from cascade.cli.proof import proof_app
from cascade.cli.replay import replay
from cascade.cli.report import report_app
from cascade.cli.sandbox import sandbox_app
from cascade.cli.verbosity import configure_logging, version_callback

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    help="Turn an issue into a verified patch, cheapest model first, with proof.",
    no_args_is_help=True,
    context_settings=HELP,
)
config_app = typer.Typer(
    help="Inspect the resolved configuration.", no_args_is_help=True, context_settings=HELP
)
app.command("fix")(fix)
app.command("replay")(replay)
app.add_typer(report_app, name="report")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(proof_app, name="proof")
app.add_typer(config_app, name="config")
app.command("init")(init)
app.add_typer(ladder_app, name="ladder")
app.add_typer(ci_app, name="ci")


@app.callback()
def main_options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=version_callback,
        is_eager=True,
        help="Print cascade's version (and litellm's, and Python's) and exit.",
    ),
    verbose: int = typer.Option(
        0,
        "--verbose",
        "-v",
        count=True,
        help="More log on stderr: -v what cascade decided or skipped, -vv the libraries' too.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors in the log."),
) -> None:
    """Turn an issue into a verified patch, cheapest model first, with proof."""
    configure_logging(verbose, quiet)


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
