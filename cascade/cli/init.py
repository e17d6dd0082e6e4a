"""`cascade init`: write a commented cascade.toml with a ladder from what is available here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cascade.cli.failures import reported


def init(
    repo: Annotated[Path, typer.Option(help="The repository to write cascade.toml into.")] = Path(),
    ollama_url: Annotated[
        str, typer.Option(help="Where to look for a local Ollama.")
    ] = "http://localhost:11434",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Print the file instead of writing it.")
    ] = False,
) -> None:
    """Write a commented cascade.toml with a ladder from what is available here.

    The ladder: a local Ollama if it answers, then the providers whose API keys are set, cheap
    to strong by litellm's price map; and the default gate. Nothing is called but Ollama's
    model list.
    """
    from cascade.wiring.starter import hosted_rungs, local_rung, ollama_models, render, write

    with reported():
        local = local_rung(ollama_models(ollama_url), ollama_url)
        rungs = ([local] if local else []) + hosted_rungs(os.environ)
        from importlib.metadata import entry_points

        available = sorted(ep.name for ep in entry_points(group="cascade.evaluators"))
        text = render(rungs, available)
        if stdout:
            typer.echo(text)
            return
        path = write(repo.resolve(), text, force=force)
    names = " → ".join(r.name for r in rungs) or "the default (needs OPENAI_API_KEY)"
    typer.echo(f"wrote {path}: ladder {names}", err=True)
