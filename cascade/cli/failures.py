"""How every command ends on a failure: a CascadeError becomes `error: <message>` on stderr and
its exit code (2 usage, 3 infrastructure), Ctrl-C becomes exit 130; never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from cascade.errors import CascadeError


@contextmanager
def reported(interrupted: str = "interrupted") -> Iterator[None]:
    try:
        yield
    except CascadeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo(interrupted, err=True)
        raise typer.Exit(130) from None
