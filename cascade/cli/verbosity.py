"""The options every `cascade` command shares: `--version`, and `-v`/`-q` for how much of the log
reaches stderr. Progress lines and results are not log lines: they are printed whatever the level.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError, version

import typer

from cascade import __version__

# Loggers of libraries that speak at INFO about every request; shown only at -vv.
_CHATTY = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "docker", "urllib3")


def version_callback(value: bool) -> None:
    if not value:
        return
    try:
        litellm = version("litellm")
    except PackageNotFoundError:
        litellm = "not installed"
    python = sys.version.split()[0]
    typer.echo(f"cascade {__version__} (litellm {litellm}, Python {python})")
    raise typer.Exit()


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"cascade: {record.levelname.lower()}: {record.getMessage()}"


class _Handler(logging.Handler):
    """Writes to whatever `sys.stderr` is when a record comes (a test runner swaps it); ours, so
    a second configuration replaces it instead of adding another."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never break the run
            self.handleError(record)


def configure_logging(verbose: int, quiet: bool) -> None:
    """WARNING by default (a warning is something a user should read: no isolation, a setting
    ignored), ERROR with -q, INFO with -v (what cascade decided or skipped), DEBUG with -vv (the
    libraries' own logs too). One handler on the root logger, on stderr."""
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if quiet else levels[min(verbose, 2)]
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler()
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(
            logging.DEBUG if verbose >= 2 else max(level, logging.WARNING)
        )
