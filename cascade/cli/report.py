"""`cascade report DIR...` writes a report (JSON, Markdown, a self-contained HTML page, PNG charts
when matplotlib is installed) of replay batches or runs; `cascade report merge DIR... --out M`
joins shard batches into one batch folder first; `cascade report compare A B --out C` puts two
batches side by side."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cascade.cli.failures import reported, usage_error

DEFAULT_COMMAND = "build"
# `--ladders`: keep 95% of the best single rung's solve rate, ladders of up to 3 rungs, and a
# recommendation of its own for a label or workflow with 20 tasks or more.
DEFAULT_FLOOR, DEFAULT_MAX_RUNGS, DEFAULT_MIN_GROUP = 0.95, 3, 20
CHARTS_HELP = "PNG charts (needs matplotlib: pip install 'cascade-engine[charts]')."


class _ReportGroup(TyperGroup):
    """`cascade report DIR...` means `cascade report build DIR...`; `merge` and `compare` are
    subcommands (a folder named like one: `cascade report build merge`)."""

    # `ctx` is typer's vendored click Context, whose module is private: typed loosely.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    rich_markup_mode=None,
    cls=_ReportGroup,
    no_args_is_help=True,
    help=(
        "Report on replay batches: cascade report DIR... (report.md, report.html, report.json, "
        "charts) | cascade report merge DIR... --out M | cascade report compare A B --out C "
        "(two batches side by side)"
    ),
)


@report_app.command(DEFAULT_COMMAND)
def build(  # noqa: PLR0917 - typer: one parameter per option
    dirs: Annotated[
        list[Path],
        typer.Argument(help="Replay batch folders, run folders, or a runs folder."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the report (default: the one folder given)."),
    ] = None,
    charts: Annotated[bool, typer.Option(help=CHARTS_HELP)] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON report instead of the Markdown.")
    ] = False,
    ladders: Annotated[
        bool,
        typer.Option(
            "--ladders",
            help="Add a routing review: every ordered ladder of the rungs the batch ran alone "
            "(replay --shadow all), projected from their recorded outcomes (no model is "
            "called): the cost/solve-rate frontier, the cheapest ladder at --floor as a ready "
            "[[ladder]] block, its saving against always-the-strongest, per label and workflow.",
        ),
    ] = False,
    floor: Annotated[
        float,
        typer.Option(
            help="With --ladders: the solve rate to keep, as a fraction of the best single "
            "rung's (above 0, at most 1).",
        ),
    ] = DEFAULT_FLOOR,
    max_rungs: Annotated[
        int, typer.Option(min=1, max=8, help="With --ladders: the longest ladder to project.")
    ] = DEFAULT_MAX_RUNGS,
    min_group: Annotated[
        int,
        typer.Option(
            min=1,
            help="With --ladders: the tasks a label or workflow needs for its own recommendation.",
        ),
    ] = DEFAULT_MIN_GROUP,
) -> None:
    """Write report.md, report.html (one self-contained page) and report.json; `cascade report
    DIR...` runs this. With --ladders: which ladder this backlog should run (`cascade replay
    BACKLOG --shadow all` first, so every rung has run alone on every task)."""
    with reported():
        if out is None and len(dirs) > 1:
            raise usage_error("several folders: say where the report goes with --out")
        if not 0 < floor <= 1:
            raise usage_error(f"--floor {floor}: give a fraction above 0 and at most 1 (0.95)")
        review = LadderAsk(floor, max_rungs, min_group) if ladders else None
        _write(dirs, out or dirs[0], charts, as_json, review)


@report_app.command("merge")
def merge(
    dirs: Annotated[list[Path], typer.Argument(help="The shards' batch folders.")],
    out: Annotated[Path, typer.Option(help="A new (or empty) folder for the merged batch.")],
    charts: Annotated[bool, typer.Option(help=CHARTS_HELP)] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON report instead of the Markdown.")
    ] = False,
) -> None:
    """Join shard batch folders into one (runs copied, ledgers joined) and report on it."""
    from cascade.replay.merge import merge_batches

    with reported():
        for path in dirs:
            if not path.is_dir():
                raise usage_error(f"{path}: no such folder")
        notes = merge_batches([d.resolve() for d in dirs], out.resolve())
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        _write([out], out, charts, as_json)


@report_app.command("compare")
def compare(
    a: Annotated[
        Path, typer.Argument(metavar="A", help="The first batch (or run, or runs folder).")
    ],
    b: Annotated[Path, typer.Argument(metavar="B", help="The second.")],
    out: Annotated[Path, typer.Option(help="Where to write comparison.md/.html/.json.")],
    charts: Annotated[bool, typer.Option(help=CHARTS_HELP)] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON comparison instead of the Markdown.")
    ] = False,
) -> None:
    """Two batches side by side (two ladders, two gate settings, a batch and its shadow):
    verified share with its 95% interval, cost, the metrics next to each other, and the tasks
    whose outcome differs, with an exact McNemar test on the tasks both ran."""
    from cascade.report.comparison import write_comparison
    from cascade.report.data import load
    from cascade.report.numbers import build_report

    with reported():
        if a.resolve() == b.resolve():
            raise usage_error(f"{a} is given twice: compare two different batches")
        reports = [build_report(load([d.resolve()])) for d in (a, b)]
        written = write_comparison(reports[0], reports[1], out.resolve(), charts=charts)
        if as_json:
            sys.stdout.write(written[0].read_text(encoding="utf-8"))
        else:
            sys.stdout.write(written[1].read_text(encoding="utf-8") + "\n")
        typer.echo(f"written: {', '.join(str(p) for p in written)}", err=True)


@dataclass(frozen=True)
class LadderAsk:
    floor: float
    max_rungs: int
    min_group: int


def _write(
    dirs: list[Path], out: Path, charts: bool, as_json: bool, ladders: LadderAsk | None = None
) -> dict[str, Any]:
    from cascade.report.data import load
    from cascade.report.ladder_review import review_ladders
    from cascade.report.numbers import build_report
    from cascade.report.render import write_report

    data = load([d.resolve() for d in dirs], verify_shadows=ladders is not None)
    report = build_report(data)
    if ladders is not None:
        report["ladders"] = review_ladders(
            data, floor=ladders.floor, max_rungs=ladders.max_rungs, min_group=ladders.min_group
        )
    written = write_report(report, out.resolve(), charts=charts)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(written[1].read_text(encoding="utf-8") + "\n")
    typer.echo(f"written: {', '.join(str(p) for p in written)}", err=True)
    return report
