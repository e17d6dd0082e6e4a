"""`cascade ci github`: the entry point the GitHub Action runs. Inputs arrive as options and
environment variables, never as text spliced into a shell script."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascade.cli.failures import reported
from cascade.cli.options import SandboxOption, check_cost_cap

ci_app = typer.Typer(
    rich_markup_mode=None,
    name="ci",
    help="Run cascade inside a CI system.",
    no_args_is_help=True,
    add_completion=False,
)


@ci_app.command("github")
def github(  # noqa: PLR0917 - typer maps each parameter to a flag
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
    max_cost_usd: Annotated[
        float | None,
        typer.Option(help="The most one run may spend on model calls, in US dollars (> 0)."),
    ] = None,
    fail_on_no_patch: Annotated[
        bool,
        typer.Option(
            "--fail-on-no-patch/--no-fail-on-no-patch",
            help="Exit 1 when no patch verifies (the default), or 0: the report is on the issue "
            "either way.",
        ),
    ] = True,
    bot: Annotated[
        str,
        typer.Option(
            help="The login cascade's pull requests are opened as: github-actions[bot] with the "
            "job's token, `<app>[bot]` with a GitHub App's. A /fix on a pull request opened by "
            "anyone else is refused.",
        ),
    ] = "github-actions[bot]",
) -> None:
    """Handle one GitHub Actions event (GITHUB_EVENT_PATH): an issue labelled LABEL, or an issue
    comment starting with /fix from an OWNER, MEMBER or COLLABORATOR. A verified patch becomes the
    branch cascade/<issue> and a draft pull request; otherwise the summary goes on the issue.
    `/fix <what to change>` on cascade's own draft pull request runs again on its branch with
    those words, and a verified patch becomes one more commit on it (never a force-push).

    Outputs (GITHUB_OUTPUT): verified, patch-path, proof-path, cost-usd, pr-url, predicate-type,
    predicate-path.
    Exit codes: 0 verified (or not asked to run), 1 no verified patch (0 with
    --no-fail-on-no-patch), 2 usage/config, 3 infra.
    """
    from cascade.ci.job import CIOptions, run_ci

    options = CIOptions(
        label=label, config_file=config, backend=sandbox or None, artifact_name=artifact_name,
        max_cost_usd=max_cost_usd, fail_on_no_patch=fail_on_no_patch, bot=bot,
    )  # fmt: skip
    with reported():
        check_cost_cap(max_cost_usd)
        code = run_ci(options, os.environ, lambda line: typer.echo(line, err=True), sys.stderr)
    raise typer.Exit(code)
