"""Options that several commands share, defined once so their help says the same thing."""

from __future__ import annotations

from typing import Annotated

import typer

SandboxOption = Annotated[
    str | None,
    typer.Option(
        help="Sandbox backend: auto, docker, local (unsafe), or a plugin (an entry point of "
        "cascade.sandboxes or a module:Class path)."
    ),
]
