"""The `cascade` command line. Sync typer commands at the edge; async work runs via anyio.run."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import NoReturn

import typer

from cascade.cli.ci import ci_app
from cascade.cli.failures import reported
from cascade.cli.fix import fix
from cascade.cli.init import init
from cascade.cli.ladder import ladder_app
from cascade.cli.proof import proof_app
from cascade.cli.replay import replay
from cascade.cli.report import report_app
from cascade.cli.route import route_cmd
from cascade.cli.sandbox import sandbox_app
from cascade.cli.verbosity import configure_logging, version_callback

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    rich_markup_mode=None,
    help="Turn an issue into a verified patch, cheapest model first, with proof.",
    no_args_is_help=True,
    context_settings=HELP,
)
config_app = typer.Typer(
    rich_markup_mode=None,
    help="Inspect the resolved configuration.",
    no_args_is_help=True,
    context_settings=HELP,
)
app.command("fix")(fix)
app.command("replay")(replay)
app.add_typer(report_app, name="report")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(proof_app, name="proof")
app.add_typer(config_app, name="config")
app.command("init")(init)
app.command("route")(route_cmd)
app.add_typer(ladder_app, name="ladder")
app.add_typer(ci_app, name="ci")
cache_app = typer.Typer(
    rich_markup_mode=None,
    help="The baselines kept across runs (.cascade/cache/baselines).",
    no_args_is_help=True,
    context_settings=HELP,
)
app.add_typer(cache_app, name="cache")


@cache_app.command("clear")
def cache_clear(
    repo: Path = typer.Option(Path("."), help="The repository whose cache to clear."),
) -> None:
    """Remove the baselines kept for this repository: the next run takes each again. (Entries
    that were edited, or sealed on another machine, are ignored anyway, never trusted.)"""
    from cascade.core.baseline_store import BaselineStore
    from cascade.wiring.settings import repo_root

    folder = repo_root(repo.resolve()) / ".cascade" / "cache" / "baselines"
    removed = BaselineStore(folder, b"").clear()
    typer.echo(f"removed {removed} baseline(s) from {folder}")


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
    as_json: bool = typer.Option(
        False, "--json", help='One object: {"<key>": {"value": …, "origin": "…"}}.'
    ),
) -> None:
    """Print every setting — each evaluator's and the sandbox backend's options included, with
    their defaults — and where its value came from (default, a file, CASCADE_* or a flag)."""
    from cascade.wiring.settings import load_config
    from cascade.wiring.settings_view import all_settings

    with reported():
        settings = all_settings(load_config(repo.resolve(), config))
    if as_json:
        shown = {
            key: {"value": value, "origin": origin} for key, (value, origin) in settings.items()
        }
        typer.echo(json.dumps(shown, indent=2))
        return
    for key, (value, origin) in settings.items():
        typer.echo(f"{key} = {json.dumps(value)}    # {origin}")


def main() -> None:
    # Prices come from the map that ships with the installed litellm: the same figures on every
    # run of one install (the costs in a proof can be checked later), and no fetch from GitHub
    # when litellm is imported (offline, that fetch stalls ~7 s and warns). Setting
    # LITELLM_LOCAL_MODEL_COST_MAP=False asks litellm for its live map instead.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        app()
    except SystemExit as done:
        leave(done.code)
    leave(0)


def leave(code: str | int | None) -> NoReturn:
    """Exit with `code` as `sys.exit` would, but without tearing the interpreter down once litellm
    is loaded: freeing its thousands of modules and types takes ~1 s after all the work is done.
    As at a normal exit, threads still at work (a sandbox build abandoned on Ctrl-C, which
    removes its container) are waited for and the exit handlers run (logging flushes its
    handlers); then the standard streams are flushed. Every file the commands write is closed by
    then."""
    if "litellm" not in sys.modules:
        sys.exit(code)
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    status = 0 if code is None else code if isinstance(code, int) else 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing can reach it
            stream.flush()
    os._exit(status)
