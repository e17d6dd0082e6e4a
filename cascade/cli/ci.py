"""`cascade ci github`: the entry point the GitHub Action runs. Inputs arrive as options and
environment variables, never as text spliced into a shell script."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascade.cli.failures import reported
from cascade.cli.options import SandboxOption

ci_app = typer.Typer(
    name="ci",
    help="Run cascade inside a CI system.",
    no_args_is_help=True,
    add_completion=False,
)


@ci_app.command("github")
def github(
    label: Annotated[
        str, typer.Option(help="The issue label that asks for a fix (`issues: labeled`).")
    ] = "cascade",
    config: Annotated[
        Path | None,
        typer.Option(help="A config file instead of cascade.toml (workspace-relative)."),
    ] = None,
    sandbox: SandboxOption = None,
    artifact_name: Annotated[
        str, typer.Option(help="The proof artifact's name, for the PR body and the comment.")
    ] = "",
) -> None:
    """Handle one GitHub Actions event (GITHUB_EVENT_PATH): an issue labelled LABEL, or an issue
    comment starting with /fix from an OWNER, MEMBER or COLLABORATOR. A verified patch becomes the
    branch cascade/<issue> and a draft pull request; otherwise the summary goes on the issue.

    Outputs (GITHUB_OUTPUT): verified, patch-path, proof-path, cost-usd, pr-url.
    Exit codes: 0 verified (or not asked to run), 1 no verified patch, 2 usage/config, 3 infra.
    """
    from cascade.ci.job import CIOptions, run_ci

    options = CIOptions(
        label=label, config_file=config, backend=sandbox or None, artifact_name=artifact_name
    )
    with reported():
        code = run_ci(options, os.environ, lambda line: typer.echo(line, err=True), sys.stderr)
    raise typer.Exit(code)
