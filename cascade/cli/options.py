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


def check_cost_cap(value: float | None) -> None:
    """`--max-cost-usd`, refused alike by every command that takes it: a cap of $0 (or less)
    would start nothing and say nothing useful."""
    if value is not None and value <= 0:
        from cascade.errors import UsageError

        raise UsageError(f"--max-cost-usd must be more than 0, not {value:g}")
