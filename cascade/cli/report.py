"""`cascade report DIR...` writes a report (Markdown, JSON, PNG charts when matplotlib is
installed) of replay batches or runs; `cascade report merge DIR... --out M` joins shard batches
into one batch folder first."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cascade.cli.failures import reported
from cascade.errors import UsageError

DEFAULT_COMMAND = "build"


class _ReportGroup(TyperGroup):
    """`cascade report DIR...` means `cascade report build DIR...`; `merge` is a subcommand."""

    # `ctx` is typer's vendored click Context, whose module is private: typed loosely.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    cls=_ReportGroup,
    no_args_is_help=True,
    help="Report on replay batches: cascade report DIR... | cascade report merge DIR... --out M",
)


@report_app.command(DEFAULT_COMMAND)
def build(
    dirs: Annotated[
        list[Path],
        typer.Argument(help="Replay batch folders, run folders, or a runs folder."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the report (default: the one folder given)."),
    ] = None,
    charts: Annotated[bool, typer.Option(help="PNG charts, when matplotlib is installed.")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON report instead of the Markdown.")
    ] = False,
) -> None:
    """Write report.md and report.json; `cascade report DIR...` runs this."""
    with reported():
        if out is None and len(dirs) > 1:
            raise UsageError("several folders: say where the report goes with --out")
        _write(dirs, out or dirs[0], charts, as_json)


@report_app.command("merge")
def merge(
    dirs: Annotated[list[Path], typer.Argument(help="The shards' batch folders.")],
    out: Annotated[Path, typer.Option(help="A new (or empty) folder for the merged batch.")],
    charts: Annotated[bool, typer.Option(help="PNG charts, when matplotlib is installed.")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON report instead of the Markdown.")
    ] = False,
) -> None:
    """Join shard batch folders into one (runs copied, ledgers joined) and report on it."""
    from cascade.replay.merge import merge_batches

    with reported():
        for path in dirs:
            if not path.is_dir():
                raise UsageError(f"{path}: no such folder")
        notes = merge_batches([d.resolve() for d in dirs], out.resolve())
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        _write([out], out, charts, as_json)


def _write(dirs: list[Path], out: Path, charts: bool, as_json: bool) -> dict[str, Any]:
    from cascade.report.data import load
    from cascade.report.numbers import build_report
    from cascade.report.render import render_markdown, write_report

    report = build_report(load([d.resolve() for d in dirs]))
    written = write_report(report, out.resolve(), charts=charts)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_markdown(report, [str(p) for p in written[2:]]) + "\n")
    typer.echo(f"written: {', '.join(str(p) for p in written)}", err=True)
    return report
