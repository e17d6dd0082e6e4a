"""How every command ends on a failure: a CascadeError becomes `error: <message>` on stderr and
its exit code (2 usage, 3 infrastructure), Ctrl-C becomes exit 130; never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer


@contextmanager
def reported(interrupted: str = "interrupted") -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        typer.echo(interrupted, err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        # Imported here: `cascade --help` must not pay for the error tree's records (pydantic).
        from cascade.errors import CascadeError

        if not isinstance(exc, CascadeError):
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None


def usage_error(message: str) -> Exception:
    """A UsageError (exit 2), its class imported only when one is raised."""
    from cascade.errors import UsageError

    return UsageError(message)
